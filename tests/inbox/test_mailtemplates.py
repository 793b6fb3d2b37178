"""`inbox.mailtemplates`: who sees and changes which template, folder and signature (B6).

Alice is an admin of Acme, Bob a regular user there, Carol is in another company: she sees
nothing of Acme's. A private template is its owner's alone (admins included); a shared one
everyone in the company sees and uses, and its owner or an admin changes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from crm import tenancy
from crm.models import Membership
from crm.services import ServiceError
from inbox import mailtemplates
from inbox.models import AccountKind, MailAccount, MailTemplate, TemplateFolder
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox

pytestmark = pytest.mark.django_db


@contextmanager
def acting(membership: Membership) -> Iterator[Membership]:
    with tenancy.bound(membership.company_id, user_id=membership.user_id):
        yield membership


@pytest.fixture
def alice(cast: Cast) -> Membership:
    return cast.membership(cast.alice, cast.company_a)


@pytest.fixture
def bob(cast: Cast) -> Membership:
    return cast.membership(cast.bob, cast.company_a)


@pytest.fixture
def carol(cast: Cast) -> Membership:
    return cast.membership(cast.carol, cast.company_b)


def _template(
    membership: Membership,
    name: str,
    *,
    shared: bool = False,
    folder: TemplateFolder | None = None,
    subject: str = "",
    body_html: str = "<p>Hello</p>",
) -> MailTemplate:
    with acting(membership):
        return mailtemplates.template_save(
            membership=membership,
            name=name,
            subject=subject,
            body_html=body_html,
            folder_id=folder.pk if folder else None,
            shared=shared,
        )


def _visible_names(membership: Membership) -> list[str]:
    with acting(membership):
        return [t.name for t in mailtemplates.templates_visible(membership=membership)]


def _stored(template: MailTemplate) -> MailTemplate:
    with tenancy.bound(template.company_id):
        return MailTemplate.objects.for_company(template.company_id).get(pk=template.pk)


# --- Templates -----------------------------------------------------------------------------------


def test_a_private_template_is_its_owners_alone_admins_included(
    bob: Membership, alice: Membership, carol: Membership
) -> None:
    mine = _template(bob, "Bob's follow-up")

    assert _visible_names(bob) == ["Bob's follow-up"]
    assert _visible_names(alice) == []
    assert _visible_names(carol) == []
    for other in (alice, carol):
        with acting(other):
            assert mailtemplates.access_template(membership=other, template_id=mine.pk) is None
            with pytest.raises(ServiceError) as refused:
                mailtemplates.template_delete(membership=other, template_id=mine.pk)
        # The same answer as for a template that does not exist.
        assert refused.value.field == "id"
        assert "No template" in refused.value.message
    assert _stored(mine).name == "Bob's follow-up"


def test_bob_sees_and_uses_a_shared_template_but_cannot_change_it(
    alice: Membership, bob: Membership, carol: Membership
) -> None:
    shared = _template(alice, "Intro", shared=True)
    _template(alice, "Alice's notes")

    assert _visible_names(bob) == ["Intro"]
    with acting(bob):
        found = mailtemplates.access_template(membership=bob, template_id=shared.pk)
        assert found is not None
        assert not mailtemplates.can_edit_template(membership=bob, template=found)
        with pytest.raises(ServiceError) as refused:
            mailtemplates.template_save(
                membership=bob,
                template_id=shared.pk,
                name="Bob was here",
                subject="",
                body_html="",
                folder_id=None,
                shared=True,
            )
        assert refused.value.field == "id"
        with pytest.raises(ServiceError):
            mailtemplates.template_delete(membership=bob, template_id=shared.pk)
    assert _stored(shared).name == "Intro"
    with acting(carol):
        assert mailtemplates.access_template(membership=carol, template_id=shared.pk) is None


def test_an_admin_changes_a_shared_template_but_only_its_owner_unshares_it(
    alice: Membership, bob: Membership
) -> None:
    bobs = _template(bob, "Pricing", shared=True, subject="Our prices")

    with acting(alice):
        changed = mailtemplates.template_save(
            membership=alice,
            template_id=bobs.pk,
            name="Pricing 2027",
            subject="Our new prices",
            body_html="<p>See attached.</p>",
            folder_id=None,
            shared=True,
        )
        assert changed.owner_id == bob.user_id  # still Bob's
        with pytest.raises(ServiceError) as refused:
            mailtemplates.template_save(
                membership=alice,
                template_id=bobs.pk,
                name="Pricing 2027",
                subject="",
                body_html="",
                folder_id=None,
                shared=False,
            )
    assert refused.value.field == "shared"
    stored = _stored(bobs)
    assert (stored.name, stored.subject, stored.shared) == ("Pricing 2027", "Our new prices", True)

    with acting(bob):  # the owner may unshare it; then it is his alone again
        mailtemplates.template_save(
            membership=bob,
            template_id=bobs.pk,
            name="Pricing 2027",
            subject="Our new prices",
            body_html="<p>See attached.</p>",
            folder_id=None,
            shared=False,
        )
    assert _visible_names(alice) == []
    with acting(alice), pytest.raises(ServiceError):  # out of the admin's reach now
        mailtemplates.template_delete(membership=alice, template_id=bobs.pk)


def test_the_body_is_cleaned_on_save_and_smart_fields_survive(alice: Membership) -> None:
    template = _template(
        alice,
        "  Welcome \n aboard ",
        subject="Hello {{person.first_name}}\r\nBcc: evil@x.test",
        body_html=(
            '<p onclick="steal()">Dear {{person.first_name}},</p>'
            "<script>alert(1)</script>"
            "<p>Your deal <b>{{ deal.title }}</b> is worth {{deal.value}}.</p>"
            '<p><a href="mailto:{{person.email}}">write</a> '
            '<a href="javascript:alert(1)">no</a> <a href="/admin">rel</a></p>'
            '<img src="https://cdn.acme.test/logo.png" alt="Acme">'
            '<ul><li>one</li></ul><blockquote style="color:red;background:url(x)">q</blockquote>'
        ),
    )

    stored = _stored(template)
    assert stored.name == "Welcome aboard"
    assert stored.subject == "Hello {{person.first_name}} Bcc: evil@x.test"  # one line
    body = stored.body_html
    for gone in ("onclick", "<script", "alert(1)", "javascript:", 'href="/admin"'):
        assert gone not in body
    assert "Dear {{person.first_name}}," in body
    assert "<b>{{ deal.title }}</b>" in body
    assert 'href="mailto:{{person.email}}"' in body
    assert '<img src="https://cdn.acme.test/logo.png" alt="Acme">' in body
    assert "<ul><li>one</li></ul>" in body
    assert '<blockquote style="color: red">q</blockquote>' in body


def test_a_template_needs_a_name_and_a_folder_the_user_sees(
    alice: Membership, bob: Membership
) -> None:
    with acting(bob):
        bobs_folder = mailtemplates.folder_save(membership=bob, name="Bob's")
    with acting(alice), pytest.raises(ServiceError) as no_name:
        mailtemplates.template_save(
            membership=alice, name="  ", subject="", body_html="", folder_id=None, shared=False
        )
    assert no_name.value.field == "name"
    with acting(alice), pytest.raises(ServiceError) as not_hers:
        mailtemplates.template_save(
            membership=alice,
            name="Sneaky",
            subject="",
            body_html="",
            folder_id=bobs_folder.pk,
            shared=True,
        )
    assert not_hers.value.field == "folder_id"
    with acting(alice), pytest.raises(ServiceError) as too_big:
        mailtemplates.template_save(
            membership=alice,
            name="Huge",
            subject="",
            body_html="<p>" + "x" * (mailtemplates.MAX_TEMPLATE_HTML + 1) + "</p>",
            folder_id=None,
            shared=False,
        )
    assert too_big.value.field == "body_html"


def test_an_admin_editing_a_template_in_its_owners_folder_leaves_it_there(
    alice: Membership, bob: Membership
) -> None:
    with acting(bob):
        folder = mailtemplates.folder_save(membership=bob, name="Mine")
    bobs = _template(bob, "Offer", shared=True, folder=folder)

    with acting(alice):
        mailtemplates.template_save(
            membership=alice,
            template_id=bobs.pk,
            name="Offer (checked)",
            subject="",
            body_html="<p>Checked</p>",
            folder_id=folder.pk,
            shared=True,
        )
    assert _stored(bobs).folder_id == folder.pk


# --- Folders -------------------------------------------------------------------------------------


def test_company_folders_are_the_admins_and_own_folders_their_owners(
    alice: Membership, bob: Membership, carol: Membership
) -> None:
    with acting(bob), pytest.raises(ServiceError):
        mailtemplates.folder_save(membership=bob, name="Everyone's", company_wide=True)
    with acting(alice):
        company = mailtemplates.folder_save(membership=alice, name="Sales", company_wide=True)
        alices = mailtemplates.folder_save(membership=alice, name="Drafts of mine")
    assert company.owner_id is None
    with acting(bob):
        bobs = mailtemplates.folder_save(membership=bob, name="sales")  # his own: another owner
        seen = [f.name for f in mailtemplates.folders_visible(membership=bob)]
        assert seen == ["Sales", "sales"]  # the company's first
        assert mailtemplates.access_folder(membership=bob, folder_id=alices.pk) is None
        with pytest.raises(ServiceError) as rename:
            mailtemplates.folder_save(membership=bob, folder_id=company.pk, name="Mine now")
        assert rename.value.field == "id"
        with pytest.raises(ServiceError):
            mailtemplates.folder_delete(membership=bob, folder_id=company.pk)
        with pytest.raises(ServiceError) as twice:
            mailtemplates.folder_save(membership=bob, name=" SALES ")
        assert twice.value.field == "name"
        renamed = mailtemplates.folder_save(membership=bob, folder_id=bobs.pk, name="Sales, Bob")
        assert renamed.name == "Sales, Bob"
    with acting(alice):
        assert mailtemplates.folder_save(
            membership=alice, folder_id=company.pk, name="Sales team"
        ).name == ("Sales team")
    with acting(carol):
        assert list(mailtemplates.folders_visible(membership=carol)) == []
        with pytest.raises(ServiceError):
            mailtemplates.folder_delete(membership=carol, folder_id=company.pk)


def test_deleting_a_folder_leaves_its_templates_in_no_folder(
    alice: Membership, bob: Membership
) -> None:
    with acting(alice):
        folder = mailtemplates.folder_save(membership=alice, name="Sales", company_wide=True)
    alices = _template(alice, "Intro", shared=True, folder=folder)
    bobs = _template(bob, "Bob's private", folder=folder)

    with acting(alice):
        mailtemplates.folder_delete(membership=alice, folder_id=folder.pk)

    assert _stored(alices).folder_id is None
    assert _stored(bobs).folder_id is None
    with tenancy.bound(alice.company_id):
        assert not TemplateFolder.objects.for_company(alice.company_id).exists()


def test_templates_come_by_folder_then_name_and_a_colleagues_folder_stays_his(
    alice: Membership, bob: Membership
) -> None:
    with acting(alice):
        company = mailtemplates.folder_save(membership=alice, name="Company", company_wide=True)
        empty = mailtemplates.folder_save(membership=alice, name="Empty")
    with acting(bob):
        bobs_folder = mailtemplates.folder_save(membership=bob, name="Bob's")
    _template(alice, "zeta", folder=company)
    _template(alice, "Alpha", folder=company)
    _template(alice, "Loose")
    _template(bob, "Bob's shared", shared=True, folder=bobs_folder)
    _template(bob, "Bob's private", folder=bobs_folder)

    # By folder name (Bob's folder sorts first, though only he sees it as a folder), then name.
    assert _visible_names(alice) == ["Bob's shared", "Alpha", "zeta", "Loose"]
    with acting(alice):
        groups = mailtemplates.templates_grouped(membership=alice)
    assert [
        (g.folder.name if g.folder else None, [t.name for t in g.templates]) for g in groups
    ] == [
        ("Company", ["Alpha", "zeta"]),
        ("Empty", []),
        (None, ["Bob's shared", "Loose"]),
    ]
    assert groups[1].folder == empty
    with acting(bob):
        bobs_groups = mailtemplates.templates_grouped(membership=bob)
    assert [
        (g.folder.name if g.folder else None, [t.name for t in g.templates]) for g in bobs_groups
    ] == [
        ("Company", []),
        ("Bob's", ["Bob's private", "Bob's shared"]),
    ]


# --- Signatures ----------------------------------------------------------------------------------


@pytest.fixture
def team_account(cast: Cast, mailbox: Mailbox) -> MailAccount:
    """Acme's sales mailbox: Alice owns it, Bob is a member."""
    return mailbox.account(
        cast.alice, kind=AccountKind.TEAM, members=[cast.bob], email="sales@acme.test"
    )


def test_the_signature_is_the_users_own_else_the_teams_else_none(
    alice: Membership, bob: Membership, carol: Membership, team_account: MailAccount
) -> None:
    with acting(bob):
        assert mailtemplates.signature_for(membership=bob, account_id=team_account.pk) == ""
    with acting(alice):
        mailtemplates.signature_save(
            membership=alice,
            account_id=team_account.pk,
            body_html="<p>Acme Sales<br>{{user.name}}</p><script>x()</script>",
            for_team=True,
        )
    with acting(bob):
        assert mailtemplates.signature_for(membership=bob, account_id=team_account.pk) == (
            "<p>Acme Sales<br>{{user.name}}</p>"
        )
        mailtemplates.signature_save(
            membership=bob, account_id=team_account.pk, body_html="<p>Bob, Acme Sales</p>"
        )
        assert mailtemplates.signature_for(membership=bob, account_id=team_account.pk) == (
            "<p>Bob, Acme Sales</p>"
        )
    with acting(alice):  # Bob's own is his: Alice still gets the team's
        assert "Acme Sales<br>" in mailtemplates.signature_for(
            membership=alice, account_id=team_account.pk
        )
    with acting(bob):  # emptied: the team's again
        assert (
            mailtemplates.signature_save(
                membership=bob, account_id=team_account.pk, body_html="<p> <br></p>"
            )
            is None
        )
        assert "Acme Sales<br>" in mailtemplates.signature_for(
            membership=bob, account_id=team_account.pk
        )
    with acting(carol):
        assert mailtemplates.signature_for(membership=carol, account_id=team_account.pk) == ""


def test_only_the_owner_or_an_admin_sets_a_team_signature(
    cast: Cast,
    mailbox: Mailbox,
    alice: Membership,
    bob: Membership,
    carol: Membership,
    team_account: MailAccount,
) -> None:
    with acting(bob), pytest.raises(ServiceError) as member:
        mailtemplates.signature_save(
            membership=bob, account_id=team_account.pk, body_html="<p>Bob's team</p>", for_team=True
        )
    assert member.value.field == "for_team"
    # Bob's own team mailbox, with Alice (an admin) as a member: both may set its signature.
    bobs_team = mailbox.account(
        cast.bob, kind=AccountKind.TEAM, members=[cast.alice], email="support@acme.test"
    )
    with acting(bob):
        mailtemplates.signature_save(
            membership=bob, account_id=bobs_team.pk, body_html="<p>Support</p>", for_team=True
        )
    with acting(alice):
        mailtemplates.signature_save(
            membership=alice,
            account_id=bobs_team.pk,
            body_html="<p>Acme Support</p>",
            for_team=True,
        )
        assert mailtemplates.signature_for(membership=alice, account_id=bobs_team.pk) == (
            "<p>Acme Support</p>"
        )
    alices_own = mailbox.account(cast.alice, email="alice.personal@acme.test")
    with acting(alice), pytest.raises(ServiceError) as personal:
        mailtemplates.signature_save(
            membership=alice, account_id=alices_own.pk, body_html="<p>A</p>", for_team=True
        )
    assert personal.value.field == "for_team"
    for outsider, account in ((bob, alices_own), (carol, team_account)):
        with acting(outsider), pytest.raises(ServiceError) as unreadable:
            mailtemplates.signature_save(
                membership=outsider, account_id=account.pk, body_html="<p>Mine</p>"
            )
        assert unreadable.value.field == "account_id"


def test_signatures_for_user_lists_each_mailbox_they_read(
    cast: Cast,
    mailbox: Mailbox,
    alice: Membership,
    bob: Membership,
    team_account: MailAccount,
) -> None:
    bobs_own = mailbox.account(cast.bob)
    mailbox.account(cast.alice, email="alice.personal@acme.test")  # not Bob's to read
    with acting(alice):
        mailtemplates.signature_save(
            membership=alice, account_id=team_account.pk, body_html="<p>Team</p>", for_team=True
        )
    with acting(bob):
        mailtemplates.signature_save(membership=bob, account_id=bobs_own.pk, body_html="<p>Bob</p>")
        rows = mailtemplates.signatures_for_user(membership=bob)
    assert [(r.account.email_address, r.mine, r.team, r.team_editable) for r in rows] == [
        ("bob@acme.test", "<p>Bob</p>", "", False),
        ("sales@acme.test", "", "<p>Team</p>", False),
    ]
    assert [r.in_use for r in rows] == ["<p>Bob</p>", "<p>Team</p>"]
    with acting(alice):
        alices_rows = mailtemplates.signatures_for_user(membership=alice)
    assert [(r.account.email_address, r.team_editable) for r in alices_rows] == [
        ("alice.personal@acme.test", False),
        ("sales@acme.test", True),
    ]
