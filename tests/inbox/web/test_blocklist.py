"""Settings → Blocked addresses (C5), with mail delivered through the real ingest pipeline and
read back through the mailbox API: an admin's company-wide block hides the mail in every
mailbox, a user's own block in their own mailboxes only, removing a block shows the same
conversation again, and a conversation someone unblocked took part in stays. Bob may not block
for the company; Carol's block is not found from company A."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from crm import tenancy
from inbox import services
from inbox.models import BlockedAddress, MailAccount
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db

PAGE = "/settings/blocked-addresses"
ADD = f"{PAGE}/add"


def remove_url(block_id: int) -> str:
    return f"{PAGE}/{block_id}/remove"


def inbox_subjects(api: Client, token: str) -> dict[str, int]:
    """Subject → thread id of the user's inbox, through the mailbox API."""
    response = api.get("/api/v1/mailbox/mailThreads?folder=inbox", headers={"x-api-token": token})
    assert response.status_code == 200
    return {thread["subject"]: thread["id"] for thread in response.json()["data"] or []}


def blocks_of(cast: Cast) -> list[tuple[str, int | None]]:
    with tenancy.bound(cast.company_a.pk):
        return list(
            BlockedAddress.objects.for_company(cast.company_a)
            .order_by("value")
            .values_list("value", "user_id")
        )


def block_id(cast: Cast, value: str) -> int:
    with tenancy.bound(cast.company_a.pk):
        return BlockedAddress.objects.for_company(cast.company_a).get(value=value).pk


def quote_request(account: MailAccount, *, n: int = 1, subject: str = "Quote") -> bytes:
    return message(
        n,
        subject=subject,
        sender="Pat Customer <pat@customer.test>",
        to=account.email_address,
        message_id=f"<q{n}@customer.test>",
    )


def test_an_admins_company_wide_domain_block_hides_the_mail_in_every_mailbox(
    cast: Cast, client_for, mailbox: Mailbox, api: Client
) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(bobs, "INBOX", quote_request(bobs))
    mailbox.deliver(bobs, "INBOX", message(2, subject="Lunch?", sender="dana@friends.test"))
    assert set(inbox_subjects(api, cast.bob_token)) == {"Quote", "Lunch?"}

    response = client_for(cast.alice).post(
        ADD, {"value": "@Customer.TEST", "scope": "company"}, follow=True
    )

    assert response.redirect_chain == [(PAGE, 302)]
    assert "@customer.test is blocked for the whole company." in response.content.decode()
    assert blocks_of(cast) == [("@customer.test", None)]
    assert set(inbox_subjects(api, cast.bob_token)) == {"Lunch?"}

    # Bob sees the company's list, read-only: no remove button, no company-wide choice.
    page = client_for(cast.bob).get(PAGE).content.decode()
    assert "<code>@customer.test</code>" in page
    assert remove_url(block_id(cast, "@customer.test")) not in page
    assert 'value="company"' not in page


def test_a_regular_user_cannot_block_for_the_whole_company(cast: Cast, client_for) -> None:
    response = client_for(cast.bob).post(ADD, {"value": "@customer.test", "scope": "company"})

    assert response.status_code == 200
    assert "Only admins can block addresses for the whole company." in response.content.decode()
    assert blocks_of(cast) == []


def test_a_personal_block_hides_the_mail_only_in_the_users_own_mailboxes(
    cast: Cast, client_for, mailbox: Mailbox, api: Client
) -> None:
    alices, bobs = mailbox.account(cast.alice), mailbox.account(cast.bob)
    raw = message(
        1,
        subject="Quote",
        sender="pat@customer.test",
        to="alice@acme.test, bob@acme.test",
        message_id="<q1@customer.test>",
    )
    mailbox.deliver(alices, "INBOX", raw)
    mailbox.deliver(bobs, "INBOX", raw)
    before = inbox_subjects(api, cast.bob_token)
    assert set(before) == {"Quote"}

    bob = client_for(cast.bob)
    response = bob.post(ADD, {"value": "Pat@Customer.test"}, follow=True)

    assert "pat@customer.test is blocked in your mailboxes." in response.content.decode()
    assert blocks_of(cast) == [("pat@customer.test", cast.bob.pk)]
    assert inbox_subjects(api, cast.bob_token) == {}
    assert set(inbox_subjects(api, cast.alice_token)) == {"Quote"}
    # Bob's own list is his alone: Alice, an admin, does not see it either.
    assert "pat@customer.test" not in client_for(cast.alice).get(PAGE).content.decode()

    # Unblocking shows the same conversation again, from the mail already stored.
    response = bob.post(remove_url(block_id(cast, "pat@customer.test")), follow=True)

    assert response.redirect_chain == [(PAGE, 302)]
    assert "Unblocked" in response.content.decode()
    assert blocks_of(cast) == []
    assert inbox_subjects(api, cast.bob_token) == before


def test_removing_a_company_wide_block_shows_the_same_conversation_again(
    cast: Cast, client_for, mailbox: Mailbox, api: Client
) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(bobs, "INBOX", quote_request(bobs))
    before = inbox_subjects(api, cast.bob_token)
    alice = client_for(cast.alice)
    alice.post(ADD, {"value": "customer.test", "scope": "company"})
    assert inbox_subjects(api, cast.bob_token) == {}

    # Only an admin removes it: Bob's attempt is not found, and changes nothing.
    blocked = block_id(cast, "@customer.test")
    assert client_for(cast.bob).post(remove_url(blocked)).status_code == 404
    assert inbox_subjects(api, cast.bob_token) == {}

    assert alice.post(remove_url(blocked)).status_code == 302
    assert inbox_subjects(api, cast.bob_token) == before


def test_a_conversation_the_owner_replied_in_is_not_hidden(
    cast: Cast, client_for, mailbox: Mailbox, api: Client
) -> None:
    """Only a conversation whose every sender is blocked is hidden: Alice's own reply is not."""
    alices = mailbox.account(cast.alice)
    sent = datetime.now(UTC) - timedelta(hours=2)
    mailbox.deliver(
        alices, "INBOX",
        message(1, subject="Quote", sender="pat@customer.test", to=alices.email_address,
                message_id="<q1@customer.test>", date=sent),
    )  # fmt: skip
    mailbox.deliver(
        alices, "Sent",
        message(2, subject="Re: Quote", sender=alices.email_address, to="pat@customer.test",
                message_id="<r1@acme.test>", references=["<q1@customer.test>"],
                date=sent + timedelta(hours=1)),
    )  # fmt: skip
    mailbox.deliver(alices, "INBOX", quote_request(alices, n=3, subject="Another quote"))
    assert set(inbox_subjects(api, cast.alice_token)) == {"Quote", "Another quote"}

    client_for(cast.alice).post(ADD, {"value": "@customer.test", "scope": "company"})

    assert set(inbox_subjects(api, cast.alice_token)) == {"Quote"}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("not an address", "“not an address” is not an email address or a domain."),
        ("pat@", "“pat@” is not an email address or a domain."),
        ("@", "“@” is not an email address or a domain."),
        ("   ", "This field is required."),
    ],
)
def test_an_invalid_value_shows_a_field_error_and_blocks_nothing(
    cast: Cast, client_for, value: str, error: str
) -> None:
    response = client_for(cast.alice).post(ADD, {"value": value, "scope": "company"})

    assert response.status_code == 200
    page = response.content.decode()
    # Beside the value field, not above the form.
    assert f'<ul class="errorlist" id="id_value_error"><li>{error}</li></ul>' in page
    assert 'class="form-errors"' not in page
    assert blocks_of(cast) == []


def test_the_same_value_twice_says_it_is_already_blocked(cast: Cast, client_for) -> None:
    alice = client_for(cast.alice)
    alice.post(ADD, {"value": "@customer.test", "scope": "mine"})

    response = alice.post(ADD, {"value": "@CUSTOMER.test", "scope": "mine"})

    assert "@customer.test is already blocked." in response.content.decode()
    assert blocks_of(cast) == [("@customer.test", cast.alice.pk)]


def test_the_page_lists_both_and_is_linked_from_the_settings_navigation(
    cast: Cast, client_for
) -> None:
    alice = client_for(cast.alice)
    alice.post(ADD, {"value": "@customer.test", "scope": "company"})
    alice.post(ADD, {"value": "spam@example.test", "scope": "mine"})

    page = alice.get(PAGE).content.decode()

    assert f'href="{PAGE}" aria-current="page"' in page
    company, mine = page.split("Only my mailboxes</h2>")[0], page.split("Only my mailboxes</h2>")[1]
    assert "<code>@customer.test</code>" in company
    assert "<code>spam@example.test</code>" in mine.split("<h2")[0]
    for value in ("@customer.test", "spam@example.test"):
        assert remove_url(block_id(cast, value)) in page
    assert 'value="company"' in page  # admins choose the scope
    assert f'href="{PAGE}"' in client_for(cast.bob).get("/settings/email-sync").content.decode()


def test_another_companys_block_is_not_found(cast: Cast, client_for) -> None:
    with tenancy.bound(cast.company_b.pk, user_id=cast.carol.pk):
        carols = services.block_add(
            membership=cast.membership(cast.carol, cast.company_b),
            value="@customer.test",
            company_wide=True,
        )
    alice = client_for(cast.alice)
    alice.post(ADD, {"value": "bob@rival.test", "scope": "mine"})

    assert alice.post(remove_url(carols.pk)).status_code == 404
    assert "@customer.test" not in alice.get(PAGE).content.decode()
    with tenancy.bound(cast.company_b.pk):
        assert BlockedAddress.objects.for_company(cast.company_b).filter(pk=carols.pk).exists()
    # A colleague's own block is not found either.
    assert client_for(cast.bob).post(remove_url(block_id(cast, "bob@rival.test"))).status_code == (
        404
    )
    assert blocks_of(cast) == [("bob@rival.test", cast.alice.pk)]


def test_methods_and_csrf_are_enforced(cast: Cast, client_for) -> None:
    alice = client_for(cast.alice)
    assert alice.get(ADD).status_code == 405
    assert alice.get(remove_url(1)).status_code == 405
    assert alice.post(PAGE).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(cast.alice)

    assert strict.post(ADD, {"value": "@customer.test"}).status_code == 403
    assert blocks_of(cast) == []
    assert Client().get(PAGE).status_code == 302  # sign in first
