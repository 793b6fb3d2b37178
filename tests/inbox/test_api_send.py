"""Sending over the API (`POST /api/v1/mailbox/mailMessages`) and the send state on
`GET /api/v1/mailbox/mailMessages/{id}`: the queued message comes back at once with its state;
every refusal is a 400 naming its field, never a 500; a message waiting in the outbox is seen
by the users of the sending mailbox only (Carol gets 404).

Delivery itself is tested against real servers in tests/mailsync/test_outbox.py; here the
outbox row is moved along by hand where a test needs a later state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import tenancy
from crm.api.urls import api_urlpatterns
from crm.sales import services as sales_services
from inbox import api as inbox_api
from inbox import api_send
from inbox.models import MailAccount, MailMessage, MailOutbound, MailThread
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

# These tests route as crm/urls.py does once the outbox's routes are mounted before the
# mailbox's (the lead's change): the module is its own URLconf.
urlpatterns = api_urlpatterns(v1=[*api_send.v1_patterns, *inbox_api.v1_patterns])
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]
PATH = "/api/v1/mailbox/mailMessages"


def post(client: Client, token: str, body: Any) -> tuple[int, Any]:
    response = client.post(
        PATH,
        data=json.dumps(body),
        content_type="application/json",
        headers={"x-api-token": token},
    )
    return response.status_code, response.json()


def get(client: Client, path: str, token: str) -> tuple[int, Any]:
    response = client.get(path, headers={"x-api-token": token})
    return response.status_code, response.json()


@pytest.fixture
def account(cast: Cast, mailbox: Mailbox) -> MailAccount:
    """Alice's mailbox, with an outgoing server."""
    account = mailbox.account(cast.alice)
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none"
        )
    account.refresh_from_db()
    return account


def test_a_message_is_queued_and_comes_back_with_its_state(
    api: Client, cast: Cast, account: MailAccount
) -> None:
    status, body = post(
        api,
        cast.alice_token,
        {
            "account_id": account.pk,
            "to": ["Pat Customer <pat@customer.test>"],
            "cc": ["bob@acme.test"],
            "bcc": ["boss@acme.test"],
            "subject": "Quote",
            "body_html": "<p>Hello <b>Pat</b></p>",
            "tracking": {"opens": True, "links": False},
        },
    )

    assert status == 201, body
    data = body["data"]
    assert data["subject"] == "Quote"
    assert [p["email_address"] for p in data["to"]] == ["pat@customer.test"]
    assert [p["email_address"] for p in data["bcc"]] == ["boss@acme.test"]
    assert data["from"][0]["email_address"] == account.email_address
    assert data["sent_from_pipedrive_flag"] == 1
    assert data["mail_thread_id"] is None  # in a conversation once the server took it
    state = data["send_state"]
    assert state["state"] == "queued"
    assert state["reason"] is None
    assert state["tracking"] == {
        "opens": True,
        "links": False,
        "opened_at": None,
        "open_count": 0,
        "machine_open_count": 0,
        "clicked_at": None,
        "click_count": 0,
    }
    assert state["undo_until"] is None  # an API client has no undo button: it goes at once
    with tenancy.bound(cast.company_a.pk):
        outbound = MailOutbound.objects.for_company(cast.company_a).get(message_id=data["id"])
    assert outbound.envelope_to == ["pat@customer.test", "bob@acme.test", "boss@acme.test"]
    assert outbound.not_before is not None
    assert outbound.not_before <= datetime.now(UTC)

    status, again = get(api, f"{PATH}/{data['id']}?include_body=1", cast.alice_token)
    assert status == 200
    assert again["data"]["send_state"]["state"] == "queued"
    assert "<b>Pat</b>" in again["data"]["body"]
    body_response = api.get(f"{PATH}/{data['id']}/body", headers={"x-api-token": cast.alice_token})
    assert body_response.status_code == 200
    assert b"Hello" in body_response.content


def test_the_get_follows_the_message_through_its_states(
    api: Client, cast: Cast, account: MailAccount
) -> None:
    _, body = post(
        api, cast.alice_token, {"account_id": account.pk, "to": ["a@x.test"], "body_text": "Hi"}
    )
    message_id = body["data"]["id"]
    with tenancy.bound(cast.company_a.pk):
        rows = MailOutbound.objects.for_company(cast.company_a).filter(message_id=message_id)
        rows.update(
            state="failed",
            last_error="The mail server refused the recipient a@x.test (550 5.1.1 unknown).",
            failed_recipients=["a@x.test"],
            attempts=1,
        )

    status, body = get(api, f"{PATH}/{message_id}", cast.alice_token)

    assert status == 200
    state = body["data"]["send_state"]
    assert state["state"] == "failed"
    assert "550 5.1.1" in state["reason"]
    assert state["failed_recipients"] == ["a@x.test"]
    assert state["attempts"] == 1


def test_a_message_waiting_in_the_outbox_is_seen_by_its_mailbox_only(
    api: Client, cast: Cast, account: MailAccount
) -> None:
    _, body = post(
        api, cast.alice_token, {"account_id": account.pk, "to": ["a@x.test"], "subject": "Hi"}
    )
    path = f"{PATH}/{body['data']['id']}"

    assert get(api, path, cast.bob_token)[0] == 404
    assert get(api, path, cast.carol_token)[0] == 404
    assert api.get(f"{path}/body", headers={"x-api-token": cast.carol_token}).status_code == 404
    assert api.get(path).status_code == 401


def test_ordinary_messages_are_served_as_before(
    api: Client, cast: Cast, mailbox: Mailbox, account: MailAccount
) -> None:
    mailbox.deliver(account, "INBOX", message(1, subject="Hello", message_id="<h1@customer.test>"))
    with tenancy.bound(cast.company_a.pk):
        stored = MailMessage.objects.for_company(cast.company_a).get(message_id="h1@customer.test")

    status, body = get(api, f"{PATH}/{stored.pk}", cast.alice_token)

    assert status == 200
    assert body["data"]["subject"] == "Hello"
    assert "send_state" not in body["data"]
    assert get(api, f"{PATH}/{stored.pk}", cast.carol_token)[0] == 404


def test_a_reply_links_and_sends_later(
    api: Client, cast: Cast, mailbox: Mailbox, account: MailAccount
) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        pat = contact_services.person_create(
            company=cast.company_a,
            membership=alice,
            fields={"name": "Pat", "emails": [ContactPoint("pat@customer.test")]},
        )
        deal = sales_services.deal_create(
            company=cast.company_a, membership=alice, fields={"title": "Big", "person_id": pat.pk}
        )
    mailbox.deliver(account, "INBOX", message(1, subject="Quote", message_id="<q1@customer.test>"))
    with tenancy.bound(cast.company_a.pk):
        original = MailMessage.objects.for_company(cast.company_a).get(
            message_id="q1@customer.test"
        )
    send_at = datetime.now(UTC) + timedelta(days=1)

    status, body = post(
        api,
        cast.alice_token,
        {
            "account_id": account.pk,
            "to": ["pat@customer.test"],
            "body_text": "Here it is.",
            "reply_to_message_id": original.pk,
            "deal_id": deal.pk,
            "person_id": pat.pk,
            "send_at": send_at.isoformat(),
        },
    )

    assert status == 201, body
    data = body["data"]
    assert data["subject"] == "Re: Quote"
    assert data["to"][0]["linked_person_id"] == pat.pk
    assert data["send_state"]["send_at"].startswith(send_at.strftime("%Y-%m-%dT%H:%M"))
    with tenancy.bound(cast.company_a.pk):
        outbound = MailOutbound.objects.for_company(cast.company_a).get(message_id=data["id"])
        stored = outbound.message
    assert (outbound.deal_id, outbound.person_id) == (deal.pk, pat.pk)
    assert outbound.reply_to_message_id == original.pk
    assert stored.in_reply_to == "q1@customer.test"
    assert stored.references == ["q1@customer.test"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"account_id": None}, "account_id"),
        ({"account_id": "seven"}, "account_id"),
        ({"to": "pat@customer.test"}, "to"),  # a list, not a string
        ({"to": ["not an address"]}, "to"),
        ({"to": ["a@x.test, b@x.test"]}, "to"),
        ({"to": [], "cc": [], "bcc": []}, "to"),
        ({"cc": ["ünïcode@x.test"]}, "cc"),
        ({"bcc": [f"p{n}@x.test" for n in range(101)]}, "bcc"),
        ({"reply_to_message_id": 999999}, "reply_to_message_id"),
        ({"deal_id": 999999}, "deal_id"),
        ({"lead_id": "not-a-uuid"}, "lead_id"),
        ({"project_id": -1}, "project_id"),
        ({"person_id": 999999}, "person_id"),
        ({"tracking": {"opens": "sometimes"}}, "tracking.opens"),
        ({"tracking": "yes"}, "tracking"),
        ({"send_at": "tomorrow"}, "send_at"),
        ({"send_at": "2001-01-01T00:00:00Z"}, "send_at"),
        ({"send_at": "2999-01-01T00:00:00Z"}, "send_at"),
        ({"subject": "x" * 1000}, "subject"),
        ({"subject": "", "body_text": "", "body_html": ""}, "body"),
    ],
)
def test_refusals_are_400s_naming_the_field(
    api: Client, cast: Cast, account: MailAccount, change: dict[str, Any], field: str
) -> None:
    body = {"account_id": account.pk, "to": ["pat@customer.test"], "subject": "Hi"}
    body.update(change)

    status, answer = post(api, cast.alice_token, body)

    assert status == 400, answer
    assert answer["success"] is False
    assert field in answer["errors"], answer
    with tenancy.bound(cast.company_a.pk):
        assert not MailOutbound.objects.for_company(cast.company_a).exists()


def test_only_mailboxes_the_user_reads_send_and_only_items_they_see_link(
    api: Client, cast: Cast, mailbox: Mailbox, account: MailAccount
) -> None:
    bob = cast.membership(cast.bob, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.bob.pk):
        secret = sales_services.deal_create(
            company=cast.company_a, membership=bob, fields={"title": "Secret", "visible_to": 1}
        )
    bobs = mailbox.account(cast.bob)
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=bobs.pk).update(
            smtp_host="127.0.0.1"
        )
    base = {"to": ["pat@customer.test"], "subject": "Hi"}

    # Alice's account is not Bob's to send from (not even for an admin the other way round).
    assert post(api, cast.bob_token, {**base, "account_id": account.pk})[0] == 400
    assert post(api, cast.alice_token, {**base, "account_id": bobs.pk})[0] == 400
    assert post(api, cast.carol_token, {**base, "account_id": account.pk})[0] == 400
    # Bob's private deal is his: he may link to it; Alice's deal choice must be one she sees.
    status, _ = post(api, cast.bob_token, {**base, "account_id": bobs.pk, "deal_id": secret.pk})
    assert status == 201
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        project_deal = sales_services.deal_create(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            fields={"title": "Alice's"},
        )
    status, answer = post(
        api,
        cast.alice_token,
        {**base, "account_id": account.pk, "deal_id": project_deal.pk, "project_id": 5},
    )
    assert status == 400
    assert "project_id" in answer["errors"]


def test_malformed_bodies_are_400s_not_500s(api: Client, cast: Cast, account: MailAccount) -> None:
    for raw in ("{not json", "[]", '"text"', "null"):
        response = api.post(
            PATH,
            data=raw,
            content_type="application/json",
            headers={"x-api-token": cast.alice_token},
        )
        assert response.status_code == 400, (raw, response.content)


def test_files_go_as_multipart_within_the_mailbox_limit(
    api: Client, cast: Cast, account: MailAccount
) -> None:
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            send_size_limit=100_000
        )
    form = {
        "account_id": str(account.pk),
        "to": ["pat@customer.test", "Lee <lee@customer.test>"],
        "subject": "Files",
        "body_text": "Attached.",
        "tracking.links": "true",
    }
    files = [
        SimpleUploadedFile("offer.pdf", b"%PDF" * 1000, content_type="application/pdf"),
        SimpleUploadedFile("Résumé.txt", "héllo".encode(), content_type="text/plain"),
    ]

    response = api.post(
        PATH, data={**form, "attachments": files}, headers={"x-api-token": cast.alice_token}
    )

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["has_real_attachments_flag"] == 1
    # A plain-text message carries no marks, so nothing is tracked (inbox.sending).
    assert data["send_state"]["tracking"] == {
        "opens": False,
        "links": False,
        "opened_at": None,
        "open_count": 0,
        "machine_open_count": 0,
        "clicked_at": None,
        "click_count": 0,
    }
    assert [p["email_address"] for p in data["to"]] == ["pat@customer.test", "lee@customer.test"]
    with tenancy.bound(cast.company_a.pk):
        stored = MailMessage.objects.for_company(cast.company_a).get(pk=data["id"])
        assert sorted(stored.attachments.values_list("filename", "size")) == [
            ("Résumé.txt", 6),
            ("offer.pdf", 4000),
        ]

    too_big = SimpleUploadedFile("big.bin", b"\0" * 100_001)
    response = api.post(
        PATH, data={**form, "attachments": [too_big]}, headers={"x-api-token": cast.alice_token}
    )
    assert response.status_code == 400
    assert "attachments" in response.json()["errors"]


def test_a_queued_message_is_in_no_conversation_and_no_folder_yet(
    api: Client, cast: Cast, account: MailAccount
) -> None:
    post(api, cast.alice_token, {"account_id": account.pk, "to": ["a@x.test"], "subject": "Hi"})

    with tenancy.bound(cast.company_a.pk):
        assert not MailThread.objects.for_company(cast.company_a).exists()
    status, body = get(api, "/api/v1/mailbox/mailThreads?folder=sent", cast.alice_token)
    assert status == 200
    assert body["data"] == []
