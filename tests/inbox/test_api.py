"""The mailbox API (reference 4.7): threads by folder, a thread, its messages, a message with
its body; shown only to the account's owner and members."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import tenancy
from inbox.models import AccountKind
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
THREAD_KEYS = {
    "id", "account_id", "user_id", "subject", "snippet", "snippet_draft", "snippet_sent",
    "read_flag", "mail_tracking_status", "has_attachments_flag", "has_inline_attachments_flag",
    "has_real_attachments_flag", "deleted_flag", "synced_flag", "smart_bcc_flag",
    "mail_link_tracking_enabled_flag", "parties", "drafts_parties", "folders", "version",
    "message_count", "has_draft_flag", "has_sent_flag", "archived_flag", "shared_flag",
    "external_deleted_flag", "first_message_to_me_flag", "all_messages_sent_flag",
    "last_message_timestamp", "first_message_timestamp", "last_message_sent_timestamp",
    "last_message_received_timestamp", "add_time", "update_time", "deal_id", "deal_status",
    "lead_id",
    "project_id",  # ours: Pipedrive's threads link to deals and leads only
}  # fmt: skip
MESSAGE_KEYS = {
    "id", "from", "to", "cc", "bcc", "body_url", "account_id", "user_id", "mail_thread_id",
    "subject", "snippet", "mail_tracking_status", "mail_link_tracking_enabled_flag", "read_flag",
    "draft", "draft_flag", "synced_flag", "deleted_flag", "has_body_flag", "sent_flag",
    "sent_from_pipedrive_flag", "smart_bcc_flag", "message_time", "add_time", "update_time",
    "has_attachments_flag", "has_inline_attachments_flag", "has_real_attachments_flag",
}  # fmt: skip


def get(client: Client, path: str, token: str) -> tuple[int, Any]:
    response = client.get(path, headers={"x-api-token": token})
    return response.status_code, response.json()


def put_form(client: Client, path: str, token: str, data: dict[str, str]) -> tuple[int, Any]:
    """A PUT as Pipedrive's clients send it: form-encoded."""
    response = client.put(
        path,
        data=urlencode(data),
        content_type="application/x-www-form-urlencoded",
        headers={"x-api-token": token},
    )
    return response.status_code, response.json()


@pytest.fixture
def conversation(cast: Cast, mailbox: Mailbox):
    """Alice's account: a customer's question (linked to a person) and her reply."""
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        person = contact_services.person_create(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            fields={"name": "Pat Customer", "emails": [ContactPoint("pat@customer.test")]},
        )
    account = mailbox.account(cast.alice)
    sent = datetime.now(UTC) - timedelta(hours=3)
    mailbox.deliver(
        account,
        "INBOX",
        message(1, subject="Quote", message_id="<q1@customer.test>", to=account.email_address,
                date=sent, body="Could you send a quote?"),
        flags=["\\Seen"],
    )  # fmt: skip
    mailbox.deliver(
        account,
        "Sent",
        message(2, subject="Re: Quote", message_id="<r1@acme.test>",
                sender=account.email_address, to="Pat Customer <pat@customer.test>",
                references=["<q1@customer.test>"], date=sent + timedelta(hours=1),
                body="Here it is."),
        flags=["\\Seen"],
    )  # fmt: skip
    mailbox.deliver(account, "INBOX", message(3, subject="Newsletter", date=sent))
    return account, person


def test_threads_of_the_inbox_in_pipedrives_shape_newest_first(
    api: Client, cast: Cast, conversation
) -> None:
    account, person = conversation
    status, body = get(api, "/api/v1/mailbox/mailThreads?folder=inbox", cast.alice_token)

    assert status == 200
    threads = body["data"]
    assert [t["subject"] for t in threads] == ["Newsletter", "Quote"]
    assert body["additional_data"]["pagination"]["more_items_in_collection"] is False
    quote = threads[1]
    assert set(quote) == THREAD_KEYS
    assert quote["message_count"] == 2
    assert quote["read_flag"] == 1
    assert threads[0]["read_flag"] == 0
    assert quote["folders"] == ["inbox", "sent"]
    assert quote["has_sent_flag"] == 1
    assert quote["account_id"] == account.pk
    assert quote["user_id"] == cast.alice.pk
    assert ISO_MS.match(quote["last_message_timestamp"])
    assert quote["snippet"].startswith("Here it is.")
    senders = {p["email_address"]: p for p in quote["parties"]["from"]}
    assert senders["pat@customer.test"]["linked_person_id"] == person.pk
    assert senders["pat@customer.test"]["linked_person_name"] == "Pat Customer"


def test_sent_folder_and_bad_folder(api: Client, cast: Cast, conversation) -> None:
    status, body = get(api, "/api/v1/mailbox/mailThreads?folder=sent", cast.alice_token)
    assert status == 200
    assert [t["subject"] for t in body["data"]] == ["Quote"]

    status, body = get(api, "/api/v1/mailbox/mailThreads?folder=spam", cast.alice_token)
    assert status == 400
    assert "folder" in body["error"].lower() or "folder" in str(body)
    status, body = get(api, "/api/v1/mailbox/mailThreads", cast.alice_token)
    assert status == 400


def test_a_thread_its_messages_and_a_message_with_its_body(
    api: Client, cast: Cast, conversation
) -> None:
    _, body = get(api, "/api/v1/mailbox/mailThreads?folder=sent", cast.alice_token)
    thread_id = body["data"][0]["id"]

    status, one = get(api, f"/api/v1/mailbox/mailThreads/{thread_id}", cast.alice_token)
    assert status == 200
    assert one["data"]["id"] == thread_id

    status, listing = get(
        api, f"/api/v1/mailbox/mailThreads/{thread_id}/mailMessages", cast.alice_token
    )
    assert status == 200
    messages = listing["data"]
    assert [m["subject"] for m in messages] == ["Quote", "Re: Quote"]
    assert set(messages[0]) == MESSAGE_KEYS
    assert "body" not in messages[0]
    assert messages[1]["sent_flag"] == 1
    assert messages[0]["sent_flag"] == 0
    assert messages[1]["to"][0]["email_address"] == "pat@customer.test"

    status, detail = get(
        api, f"/api/v1/mailbox/mailMessages/{messages[0]['id']}?include_body=1", cast.alice_token
    )
    assert status == 200
    assert detail["statusCode"] == 2000
    assert detail["service"] == "email-api"
    assert "Could you send a quote?" in detail["data"]["body"]

    response = api.get(
        detail["data"]["body_url"].replace("http://testserver", ""),
        headers={"x-api-token": cast.alice_token},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"Could you send a quote?" in response.content


def test_mail_shows_only_to_the_accounts_owner_and_members(
    api: Client, cast: Cast, mailbox: Mailbox, conversation
) -> None:
    _, body = get(api, "/api/v1/mailbox/mailThreads?folder=inbox", cast.alice_token)
    thread_id = body["data"][0]["id"]
    # Private: shared, it would show to Bob on the person it is linked to (the matrix test).
    status, _ = put_form(
        api, f"/api/v1/mailbox/mailThreads/{thread_id}", cast.alice_token, {"shared_flag": "0"}
    )
    assert status == 200

    # Bob (same company, not a member) and Carol (another company) see nothing of it.
    for token in (cast.bob_token, cast.carol_token):
        status, listing = get(api, "/api/v1/mailbox/mailThreads?folder=inbox", token)
        assert status == 200
        assert listing["data"] == []
        assert get(api, f"/api/v1/mailbox/mailThreads/{thread_id}", token)[0] == 404
        assert get(api, f"/api/v1/mailbox/mailThreads/{thread_id}/mailMessages", token)[0] == 404

    # A team account's mail shows to its members.
    team = mailbox.account(
        cast.alice, kind=AccountKind.TEAM, members=[cast.bob], email="sales@acme.test"
    )
    mailbox.deliver(team, "INBOX", message(9, subject="Team question", to="sales@acme.test"))
    status, listing = get(api, "/api/v1/mailbox/mailThreads?folder=inbox", cast.bob_token)
    assert [t["subject"] for t in listing["data"]] == ["Team question"]


def test_thread_list_queries_stay_constant(
    api: Client, cast: Cast, mailbox: Mailbox, conversation, django_assert_max_num_queries
) -> None:
    account, _ = conversation
    for n in range(10, 40):
        mailbox.deliver(account, "INBOX", message(n))
    with django_assert_max_num_queries(12):
        status, body = get(
            api, "/api/v1/mailbox/mailThreads?folder=inbox&limit=50", cast.alice_token
        )
    assert status == 200
    assert len(body["data"]) == 32
