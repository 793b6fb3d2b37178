"""Sales Inbox → Templates and Signatures (B6): the list by folder, the editor (a rich-text
region with a toolbar and the smart field menu, its HTML posted in a hidden input and cleaned
on save), read-only shared templates, folders, and signatures per mailbox. Carol gets 404 on
Acme's templates; Bob neither sees Alice's private ones nor changes her shared ones."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from crm import tenancy
from crm.models import Membership
from inbox import mailtemplates
from inbox.models import AccountKind, MailAccount, MailSignature, MailTemplate, TemplateFolder
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox

pytestmark = pytest.mark.django_db


def _save(
    membership: Membership, name: str, *, shared: bool = False, folder_id: int | None = None
) -> MailTemplate:
    with tenancy.bound(membership.company_id, user_id=membership.user_id):
        return mailtemplates.template_save(
            membership=membership,
            name=name,
            subject=f"Subject of {name}",
            body_html=f"<p>Body of {name}, {{{{person.first_name}}}}</p>",
            folder_id=folder_id,
            shared=shared,
        )


def _stored(template_id: int, company_id: int) -> MailTemplate | None:
    with tenancy.bound(company_id):
        return MailTemplate.objects.for_company(company_id).filter(pk=template_id).first()


@pytest.fixture
def alice(cast: Cast) -> Membership:
    return cast.membership(cast.alice, cast.company_a)


@pytest.fixture
def bob(cast: Cast) -> Membership:
    return cast.membership(cast.bob, cast.company_a)


def test_the_list_shows_own_and_shared_templates_by_folder(
    cast: Cast, client_for, alice: Membership, bob: Membership
) -> None:
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        folder = mailtemplates.folder_save(membership=alice, name="Onboarding", company_wide=True)
    _save(alice, "Welcome", shared=True, folder_id=folder.pk)
    _save(alice, "Alice's secret")
    _save(bob, "Bob's own")

    page = client_for(cast.bob).get(reverse("inbox_templates")).content.decode()

    assert "Onboarding" in page
    assert "Company folder" in page
    assert "Welcome" in page
    assert "by Alice Adams" in page
    assert "Bob&#x27;s own" in page
    assert "secret" not in page
    # Bob may delete his own template, not Alice's shared one.
    bobs = re.findall(r'action="/inbox/templates/(\d+)/delete"', page)
    assert len(bobs) == 1
    carols = client_for(cast.carol).get(reverse("inbox_templates")).content.decode()
    assert "Welcome" not in carols
    assert "Onboarding" not in carols


def test_the_sidebar_of_the_sales_inbox_links_templates_and_signatures(
    cast: Cast, client_for
) -> None:
    page = client_for(cast.bob).get(reverse("inbox")).content.decode()

    assert f'href="{reverse("inbox_templates")}"' in page
    assert f'href="{reverse("inbox_signatures")}"' in page


def test_the_editor_is_a_rich_text_region_with_toolbar_and_field_menu(
    cast: Cast, client_for
) -> None:
    page = client_for(cast.alice).get(reverse("inbox_template_new")).content.decode()

    assert 'contenteditable="true"' in page
    assert 'role="toolbar"' in page
    for command in ("bold", "italic", "underline", "insertUnorderedList", "insertOrderedList"):
        assert f'data-editor-command="{command}"' in page
    assert 'data-editor-command="createLink"' in page
    assert 'data-editor-command="blockquote"' in page
    assert '<option value="{{person.first_name}}">First name</option>' in page
    assert '<option value="{{deal.value}}">Value</option>' in page
    assert re.search(r'<input type="hidden" name="body_html" [^>]*data-editor-value>', page)
    assert "<textarea" not in page
    assert "js/templates.js" in page


def test_a_template_is_created_with_its_html_cleaned(
    cast: Cast, client_for, alice: Membership
) -> None:
    client: Client = client_for(cast.alice)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        folder = mailtemplates.folder_save(membership=alice, name="Sales")

    response = client.post(
        reverse("inbox_template_new"),
        {
            "name": "Offer",
            "subject": "Your offer, {{person.first_name}}",
            "body_html": (
                '<p>Dear <b>{{person.first_name}}</b>,</p><img src="x" onerror="alert(1)">'
                '<ul><li>one</li></ul><p><a href="https://acme.test/offer">offer</a></p>'
            ),
            "folder_id": str(folder.pk),
            "shared": "on",
        },
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse("inbox_templates")
    assert "Template saved." in response.content.decode()
    with tenancy.bound(cast.company_a.pk):
        template = MailTemplate.objects.for_company(cast.company_a).get(name="Offer")
    assert (template.folder_id, template.shared, template.owner_id) == (
        folder.pk,
        True,
        cast.alice.pk,
    )
    assert "onerror" not in template.body_html
    assert "<p>Dear <b>{{person.first_name}}</b>,</p>" in template.body_html
    assert '<a href="https://acme.test/offer">offer</a>' in template.body_html

    edit = client.get(reverse("inbox_template_edit", args=[template.pk])).content.decode()
    assert "<p>Dear <b>{{person.first_name}}</b>,</p>" in edit  # in the editor, as HTML
    assert "<code>person.first_name</code>" in edit
    assert f'<option value="{folder.pk}" selected>' in edit


def test_a_refused_save_shows_what_was_typed_cleaned(cast: Cast, client_for) -> None:
    response = client_for(cast.alice).post(
        reverse("inbox_template_new"),
        {"name": " ", "subject": "Kept", "body_html": '<p>Kept</p><img src=x onerror="alert(1)">'},
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "Give the template a name." in page
    assert 'value="Kept"' in page
    assert "<p>Kept</p>" in page
    assert 'onerror="alert(1)"' not in page
    with tenancy.bound(cast.company_a.pk):
        assert not MailTemplate.objects.for_company(cast.company_a).exists()


def test_bob_reads_a_shared_template_but_cannot_change_it(
    cast: Cast, client_for, alice: Membership
) -> None:
    shared = _save(alice, "House style", shared=True)
    client: Client = client_for(cast.bob)
    url = reverse("inbox_template_edit", args=[shared.pk])

    page = client.get(url).content.decode()
    assert "Only its owner or an admin can change it" in page
    assert "Body of House style" in page
    assert 'contenteditable="true"' not in page
    assert f'action="{url}"' not in page

    response = client.post(url, {"name": "Bob's style", "subject": "", "body_html": ""})
    assert response.status_code == 403
    deleted = client.post(reverse("inbox_template_delete", args=[shared.pk]), follow=True)
    assert "Only its owner or an admin can change a shared template." in deleted.content.decode()
    stored = _stored(shared.pk, cast.company_a.pk)
    assert stored is not None
    assert stored.name == "House style"


def test_private_templates_and_other_companies_are_404(
    cast: Cast, client_for, alice: Membership
) -> None:
    private = _save(alice, "Alice's")
    shared = _save(alice, "Everyone's", shared=True)

    for user, template in ((cast.bob, private), (cast.carol, private), (cast.carol, shared)):
        client: Client = client_for(user)
        assert client.get(reverse("inbox_template_edit", args=[template.pk])).status_code == 404
        assert client.post(reverse("inbox_template_delete", args=[template.pk])).status_code == 404
        posted = client.post(
            reverse("inbox_template_edit", args=[template.pk]),
            {"name": "Taken", "subject": "", "body_html": ""},
        )
        assert posted.status_code == 404
    assert _stored(private.pk, cast.company_a.pk) is not None
    assert _stored(shared.pk, cast.company_a.pk) is not None


def test_an_admin_edits_a_shared_template_with_the_shared_switch_locked(
    cast: Cast, client_for, bob: Membership
) -> None:
    bobs = _save(bob, "Bob's pitch", shared=True)
    client: Client = client_for(cast.alice)
    url = reverse("inbox_template_edit", args=[bobs.pk])

    page = client.get(url).content.decode()
    assert re.search(r'<input type="checkbox" name="shared"[^>]* checked disabled', page)
    # A disabled switch is not posted: the template stays shared.
    response = client.post(
        url, {"name": "Bob's pitch, checked", "subject": "S", "body_html": "<p>Better</p>"}
    )

    assert response.status_code == 302
    stored = _stored(bobs.pk, cast.company_a.pk)
    assert stored is not None
    assert (stored.name, stored.body_html, stored.shared, stored.owner_id) == (
        "Bob's pitch, checked",
        "<p>Better</p>",
        True,
        cast.bob.pk,
    )


def test_the_owner_deletes_a_template(cast: Cast, client_for, alice: Membership) -> None:
    template = _save(alice, "Old")

    response = client_for(cast.alice).post(
        reverse("inbox_template_delete", args=[template.pk]), follow=True
    )

    assert "Template Old deleted." in response.content.decode()
    assert _stored(template.pk, cast.company_a.pk) is None


def test_folders_are_created_renamed_and_deleted(cast: Cast, client_for, alice: Membership) -> None:
    client: Client = client_for(cast.alice)
    client.post(reverse("inbox_template_folder_create"), {"name": "Team", "company_wide": "on"})
    with tenancy.bound(cast.company_a.pk):
        folder = TemplateFolder.objects.for_company(cast.company_a).get()
    assert folder.owner_id is None
    template = _save(alice, "Filed", folder_id=folder.pk)

    bob: Client = client_for(cast.bob)
    refused = bob.post(
        reverse("inbox_template_folder_rename", args=[folder.pk]), {"name": "Bob's"}, follow=True
    )
    assert "Only admins change the company&#x27;s folders." in refused.content.decode()
    made = bob.post(
        reverse("inbox_template_folder_create"), {"name": "Mine", "company_wide": "on"}, follow=True
    )
    assert "Only admins make folders for the whole company." in made.content.decode()
    carol: Client = client_for(cast.carol)
    assert carol.post(reverse("inbox_template_folder_delete", args=[folder.pk])).status_code == 404

    client.post(reverse("inbox_template_folder_rename", args=[folder.pk]), {"name": "Sales team"})
    with tenancy.bound(cast.company_a.pk):
        assert TemplateFolder.objects.for_company(cast.company_a).get().name == "Sales team"
    gone = client.post(reverse("inbox_template_folder_delete", args=[folder.pk]), follow=True)
    assert "its templates are in no folder now" in gone.content.decode()
    stored = _stored(template.pk, cast.company_a.pk)
    assert stored is not None
    assert stored.folder_id is None


# --- Signatures ----------------------------------------------------------------------------------


@pytest.fixture
def team_account(cast: Cast, mailbox: Mailbox) -> MailAccount:
    return mailbox.account(
        cast.alice, kind=AccountKind.TEAM, members=[cast.bob], email="sales@acme.test"
    )


def _signatures(company_id: int) -> dict[tuple[int, int | None], str]:
    with tenancy.bound(company_id):
        return {
            (s.account_id, s.user_id): s.body_html
            for s in MailSignature.objects.for_company(company_id)
        }


def test_signatures_are_set_per_mailbox_and_the_teams_by_its_owner(
    cast: Cast, client_for, mailbox: Mailbox, team_account: MailAccount
) -> None:
    alices = mailbox.account(cast.alice)
    alice: Client = client_for(cast.alice)

    page = alice.get(reverse("inbox_signatures")).content.decode()
    assert "alice@acme.test" in page
    assert "sales@acme.test" in page
    assert page.count('name="for_team" value="1"') == 1  # the team mailbox only
    assert '<option value="{{user.name}}">Name</option>' in page
    assert "{{deal.title}}" not in page  # a signature has no deal

    alice.post(
        reverse("inbox_signatures"),
        {"account_id": alices.pk, "for_team": "0", "body_html": "<p>Alice <i>Adams</i></p>"},
    )
    alice.post(
        reverse("inbox_signatures"),
        {"account_id": team_account.pk, "for_team": "1", "body_html": "<p>Acme Sales</p>"},
    )
    assert _signatures(cast.company_a.pk) == {
        (alices.pk, cast.alice.pk): "<p>Alice <i>Adams</i></p>",
        (team_account.pk, None): "<p>Acme Sales</p>",
    }

    bob: Client = client_for(cast.bob)
    bobs_page = bob.get(reverse("inbox_signatures")).content.decode()
    assert "alice@acme.test" not in bobs_page
    assert "<p>Acme Sales</p>" in bobs_page  # shown, read only
    assert 'name="for_team" value="1"' not in bobs_page
    refused = bob.post(
        reverse("inbox_signatures"),
        {"account_id": team_account.pk, "for_team": "1", "body_html": "<p>Bob's team</p>"},
    )
    assert refused.status_code == 400
    assert "owner or an admin" in refused.content.decode()
    saved = bob.post(
        reverse("inbox_signatures"),
        {"account_id": team_account.pk, "for_team": "0", "body_html": "<p>Bob</p>"},
        follow=True,
    )
    assert "Signature saved." in saved.content.decode()
    assert _signatures(cast.company_a.pk)[(team_account.pk, cast.bob.pk)] == "<p>Bob</p>"


def test_carol_cannot_touch_acmes_signatures(
    cast: Cast, client_for, team_account: MailAccount
) -> None:
    carol: Client = client_for(cast.carol)

    page = carol.get(reverse("inbox_signatures")).content.decode()
    assert "sales@acme.test" not in page
    response = carol.post(
        reverse("inbox_signatures"),
        {"account_id": team_account.pk, "for_team": "0", "body_html": "<p>Carol</p>"},
    )
    assert response.status_code == 400
    assert _signatures(cast.company_a.pk) == {}
