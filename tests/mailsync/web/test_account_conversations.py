"""Settings → Email sync → an account → Conversations (D3, C2): the owner sets the sharing and
linking mode new conversations get; mail delivered through the real ingest pipeline afterwards
follows them while older conversations keep theirs, until the owner applies the default to
them in bulk. Only the sharing choices of the account's kind are offered and accepted; Bob, a
member of Alice's team account, reads the settings but may not change them; Carol gets 404."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils.html import escape

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import tenancy
from crm.sales import services as sales_services
from inbox.models import AccountKind, MailAccount, MailThread
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(cast: Cast) -> Mailbox:
    return Mailbox(cast)


def urls(account: MailAccount) -> dict[str, str]:
    base = f"/settings/email-sync/{account.pk}"
    return {
        "page": base,
        "save": f"{base}/conversations",
        "apply": f"{base}/conversations/apply",
    }


def stored(cast: Cast, account: MailAccount) -> MailAccount:
    with tenancy.bound(cast.company_a.pk):
        return MailAccount.objects.for_company(cast.company_a).get(pk=account.pk)


def sharing_of(cast: Cast, account: MailAccount) -> dict[str, str]:
    """Subject → sharing of the account's conversations."""
    with tenancy.bound(cast.company_a.pk):
        return dict(
            MailThread.objects.for_company(cast.company_a)
            .filter(account=account)
            .values_list("subject", "sharing")
        )


def deliver(mailbox: Mailbox, account: MailAccount, n: int, subject: str) -> None:
    mailbox.deliver(
        account,
        "INBOX",
        message(n, subject=subject, sender="pat@customer.test", to=account.email_address),
    )


def test_the_owner_sets_what_new_conversations_get_and_old_ones_keep_theirs(
    cast: Cast, client_for, mailbox: Mailbox
) -> None:
    account = mailbox.account(cast.alice)
    deliver(mailbox, account, 1, "Before")
    alice: Client = client_for(cast.alice)

    response = alice.post(
        urls(account)["save"], {"default_sharing": "private", "link_mode": "manual"}, follow=True
    )

    assert response.redirect_chain == [(urls(account)["page"], 302)]
    page = response.content.decode()
    assert "Saved. New conversations are private; linking is manual." in page
    assert 'value="private" required id="id_default_sharing_1" checked' in page
    assert 'value="manual" required id="id_link_mode_1" checked' in page
    saved = stored(cast, account)
    assert (saved.default_sharing, saved.link_mode) == ("private", "manual")

    deliver(mailbox, account, 2, "After")

    assert sharing_of(cast, account) == {"Before": "shared", "After": "private"}


def test_applying_the_default_in_bulk_changes_the_old_conversations(
    cast: Cast, client_for, mailbox: Mailbox
) -> None:
    account = mailbox.account(cast.alice)
    deliver(mailbox, account, 1, "First")
    deliver(mailbox, account, 2, "Second")
    alice: Client = client_for(cast.alice)
    alice.post(urls(account)["save"], {"default_sharing": "private", "link_mode": "automatic"})
    deliver(mailbox, account, 3, "Third")

    response = alice.post(urls(account)["apply"], follow=True)

    assert response.redirect_chain == [(urls(account)["page"], 302)]
    assert "2 conversations are now private." in response.content.decode()
    assert sharing_of(cast, account) == dict.fromkeys(("First", "Second", "Third"), "private")

    response = alice.post(urls(account)["apply"], follow=True)
    assert "Every conversation was private already." in response.content.decode()


def test_the_page_offers_the_choices_of_the_accounts_kind_with_the_apply_action(
    cast: Cast, client_for, mailbox: Mailbox
) -> None:
    alice: Client = client_for(cast.alice)
    personal = mailbox.account(cast.alice)
    team = mailbox.account(
        cast.alice, kind=AccountKind.TEAM, members=[cast.alice, cast.bob], email="sales@acme.test"
    )

    personal_page = alice.get(urls(personal)["page"]).content.decode()
    team_page = alice.get(urls(team)["page"]).content.decode()

    assert 'value="private"' in personal_page
    assert 'value="team"' not in personal_page
    assert 'value="team"' in team_page
    assert 'value="private"' not in team_page
    for page in (personal_page, team_page):
        assert 'value="shared" required id="id_default_sharing_0" checked' in page
        assert 'value="automatic" required id="id_link_mode_0" checked' in page
        assert "Automatic: persons and their open deal or lead" in page
        assert "Use for new conversations</button>" in page
        assert "Apply to existing conversations</button>" in page
    assert f'action="{urls(personal)["apply"]}"' in personal_page
    assert "hx-confirm=" in personal_page.split(urls(personal)["apply"])[1].split(">")[0]


@pytest.mark.parametrize(
    ("kind", "refused", "error"),
    [
        (AccountKind.PERSONAL, "team", "A personal account's conversations are Shared or Private."),
        (AccountKind.TEAM, "private", "A team account's conversations are Shared or Team only."),
    ],
)
def test_a_sharing_the_accounts_kind_does_not_offer_is_refused_beside_the_field(
    cast: Cast, client_for, mailbox: Mailbox, kind: str, refused: str, error: str
) -> None:
    members = [cast.alice, cast.bob] if kind == AccountKind.TEAM else []
    account = mailbox.account(cast.alice, kind=kind, members=members)

    response = client_for(cast.alice).post(
        urls(account)["save"], {"default_sharing": refused, "link_mode": "manual"}
    )

    assert response.status_code == 200
    assert (
        f'<ul class="errorlist" id="id_default_sharing_error"><li>{escape(error)}</li></ul>'
        in response.content.decode()
    )
    saved = stored(cast, account)
    assert (saved.default_sharing, saved.link_mode) == ("shared", "automatic")


def test_an_unknown_choice_is_refused(cast: Cast, client_for, mailbox: Mailbox) -> None:
    account = mailbox.account(cast.alice)

    response = client_for(cast.alice).post(
        urls(account)["save"], {"default_sharing": "everyone", "link_mode": "sometimes"}
    )

    page = response.content.decode()
    assert 'id="id_default_sharing_error"' in page
    assert 'id="id_link_mode_error"' in page
    assert stored(cast, account).default_sharing == "shared"


def test_a_member_who_is_not_the_owner_reads_but_cannot_change(
    cast: Cast, client_for, mailbox: Mailbox
) -> None:
    account = mailbox.account(
        cast.alice, kind=AccountKind.TEAM, members=[cast.alice, cast.bob], email="sales@acme.test"
    )
    deliver(mailbox, account, 1, "Hello")
    bob: Client = client_for(cast.bob)

    page = bob.get(urls(account)["page"]).content.decode()
    assert "Only Alice Adams, the account's owner, can change these." in page
    assert urls(account)["save"] not in page
    assert urls(account)["apply"] not in page

    assert bob.post(urls(account)["save"], {"default_sharing": "team"}).status_code == 403
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            default_sharing="team"
        )
    assert bob.post(urls(account)["apply"]).status_code == 403

    assert stored(cast, account).link_mode == "automatic"
    assert sharing_of(cast, account) == {"Hello": "shared"}


def test_another_company_gets_404(cast: Cast, client_for, mailbox: Mailbox) -> None:
    account = mailbox.account(cast.alice)
    carol: Client = client_for(cast.carol)

    assert carol.post(urls(account)["save"], {"default_sharing": "private"}).status_code == 404
    assert carol.post(urls(account)["apply"]).status_code == 404
    assert carol.get(urls(account)["save"]).status_code == 405
    assert stored(cast, account).default_sharing == "shared"


def test_manual_mode_links_new_mail_to_persons_only(
    cast: Cast, client_for, mailbox: Mailbox
) -> None:
    alice_member = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        pat = contact_services.person_create(
            company=cast.company_a,
            membership=alice_member,
            fields={"name": "Pat Customer", "emails": [ContactPoint("pat@customer.test")]},
        )
        deal = sales_services.deal_create(
            company=cast.company_a,
            membership=alice_member,
            fields={"title": "Pat's order", "person_id": pat.pk},
        )
    account = mailbox.account(cast.alice)
    deliver(mailbox, account, 1, "Automatic")
    client_for(cast.alice).post(
        urls(account)["save"], {"default_sharing": "shared", "link_mode": "manual"}
    )
    deliver(mailbox, account, 2, "Manual")

    with tenancy.bound(cast.company_a.pk):
        links = {
            subject: (person_ids, deal_id)
            for subject, person_ids, deal_id in MailThread.objects.for_company(cast.company_a)
            .filter(account=account)
            .values_list("subject", "person_ids", "deal_id")
        }
    assert links == {"Automatic": ([pat.pk], deal.pk), "Manual": ([pat.pk], None)}
