"""Linking and sharing over the API (C3, C4, D3; reference 4.7): `PUT mailThreads/{id}`
form-encoded as Pipedrive's clients send it, and `GET {items}/{id}/mailMessages`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from contacts import services as contact_services
from contacts.models import Person
from contacts.services import ContactPoint
from crm import tenancy
from crm.sales import services as sales_services
from crm.sales.models import Deal
from inbox.linking import threads_relink
from inbox.models import AccountKind, MailAccount, MailThread
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db
LIST_ITEM_EXTRAS = {
    "nylas_id", "s3_bucket", "s3_bucket_path", "external_deleted_flag", "mua_message_id",
    "template_id", "timestamp", "item_type", "company_id",
}  # fmt: skip


def call(client: Client, method: str, path: str, token: str, data: dict[str, str] | None = None):
    response = getattr(client, method)(
        path,
        data=urlencode(data or {}),
        content_type="application/x-www-form-urlencoded",
        headers={"x-api-token": token},
    )
    return response.status_code, response.json()


def get(client: Client, path: str, token: str) -> tuple[int, Any]:
    response = client.get(path, headers={"x-api-token": token})
    return response.status_code, response.json()


@pytest.fixture
def world(cast: Cast, mailbox: Mailbox) -> tuple[MailAccount, Person, Deal, MailThread]:
    """Pat (seen by everyone) with an open deal; Alice's account holds a conversation with Pat,
    linked automatically to the deal."""
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
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, subject="Quote", to=account.email_address))
    with tenancy.bound(cast.company_a.pk):
        thread = MailThread.objects.for_company(cast.company_a).get(subject="Quote")
    return account, pat, deal, thread


def test_a_conversation_is_linked_to_the_persons_open_deal_and_says_so(
    api: Client, cast: Cast, world
) -> None:
    _, _, deal, thread = world
    status, body = get(api, f"/api/v1/mailbox/mailThreads/{thread.pk}", cast.alice_token)
    assert status == 200
    data = body["data"]
    assert (data["deal_id"], data["deal_status"], data["lead_id"]) == (deal.pk, "open", None)
    assert data["shared_flag"] == 1


def test_put_links_moves_and_unlinks_and_the_rules_keep_the_choice(
    api: Client, cast: Cast, world
) -> None:
    _, pat, deal, thread = world
    alice = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        lead = sales_services.lead_create(
            company=cast.company_a, membership=alice, fields={"title": "Lead", "person_id": pat.pk}
        )
        project = sales_services.project_create(
            company=cast.company_a, membership=alice, fields={"title": "Rollout"}
        )
    path = f"/api/v1/mailbox/mailThreads/{thread.pk}"

    status, body = call(api, "put", path, cast.alice_token, {"lead_id": str(lead.pk)})
    assert status == 200
    assert (body["data"]["deal_id"], body["data"]["lead_id"]) == (None, str(lead.pk))
    status, body = call(api, "put", path, cast.alice_token, {"project_id": str(project.pk)})
    assert (body["data"]["lead_id"], body["data"]["project_id"]) == (None, project.pk)
    status, body = call(api, "put", path, cast.alice_token, {"project_id": ""})
    assert status == 200
    assert (body["data"]["deal_id"], body["data"]["project_id"]) == (None, None)

    # Unlinked by hand: re-running the automatic rules does not bring the deal back.
    with tenancy.bound(cast.company_a.pk):
        threads_relink(company_id=cast.company_a.pk, thread_ids=[thread.pk])
    assert get(api, path, cast.alice_token)[1]["data"]["deal_id"] is None
    status, body = call(api, "put", path, cast.alice_token, {"deal_id": str(deal.pk)})
    assert body["data"]["deal_id"] == deal.pk


def test_put_changes_sharing_read_and_archived_state(
    api: Client, cast: Cast, world, mailbox: Mailbox
) -> None:
    _, _, _, thread = world
    path = f"/api/v1/mailbox/mailThreads/{thread.pk}"
    status, body = call(
        api,
        "put",
        path,
        cast.alice_token,
        {"shared_flag": "0", "read_flag": "1", "archived_flag": "1"},
    )
    assert status == 200
    data = body["data"]
    assert (data["shared_flag"], data["read_flag"], data["archived_flag"]) == (0, 1, 1)
    assert "archive" in data["folders"]
    assert "inbox" not in data["folders"]
    with tenancy.bound(cast.company_a.pk):
        assert MailThread.objects.for_company(cast.company_a).get(pk=thread.pk).sharing == "private"
    _, inbox = get(api, "/api/v1/mailbox/mailThreads?folder=inbox", cast.alice_token)
    assert inbox["data"] == []

    # A team account's conversations are shared or "team only".
    team = mailbox.account(
        cast.alice, kind=AccountKind.TEAM, members=[cast.bob], email="s@acme.test"
    )
    mailbox.deliver(team, "INBOX", message(7, subject="Team mail", to="s@acme.test"))
    with tenancy.bound(cast.company_a.pk):
        team_thread = MailThread.objects.for_company(cast.company_a).get(subject="Team mail")
    status, body = call(
        api,
        "put",
        f"/api/v1/mailbox/mailThreads/{team_thread.pk}",
        cast.bob_token,
        {"shared_flag": "0"},
    )
    assert status == 200
    with tenancy.bound(cast.company_a.pk):
        assert (
            MailThread.objects.for_company(cast.company_a).get(pk=team_thread.pk).sharing == "team"
        )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"deal_id": "abc"}, "deal_id"),
        ({"deal_id": "999999"}, "deal_id"),
        ({"lead_id": "not-a-uuid"}, "lead_id"),
        ({"shared_flag": "2"}, "shared_flag"),
        ({"archived_flag": "yes"}, "archived_flag"),
    ],
)
def test_put_refuses_bad_input_naming_the_field(
    api: Client, cast: Cast, world, data: dict[str, str], field: str
) -> None:
    _, _, _, thread = world
    status, body = call(
        api, "put", f"/api/v1/mailbox/mailThreads/{thread.pk}", cast.alice_token, data
    )
    assert status == 400
    assert body["success"] is False
    assert field in str(body)


def test_put_links_only_to_items_the_user_can_see_and_one_at_a_time(
    api: Client, cast: Cast, world
) -> None:
    _, pat, deal, thread = world
    bob = cast.membership(cast.bob, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.bob.pk):
        hidden = sales_services.deal_create(
            company=cast.company_a,
            membership=bob,
            fields={"title": "Bob's secret", "person_id": pat.pk, "visible_to": 1},
        )
    carol = cast.membership(cast.carol, cast.company_b)
    with tenancy.bound(cast.company_b.pk, user_id=cast.carol.pk):
        foreign = sales_services.deal_create(
            company=cast.company_b, membership=carol, fields={"title": "Globex deal"}
        )
    path = f"/api/v1/mailbox/mailThreads/{thread.pk}"
    # Alice is an admin: she sees Bob's deal. Make the thread Bob's question instead: as the
    # owner of the conversation only Alice may link it, and she may not link a foreign deal.
    for deal_id in (foreign.pk,):
        status, body = call(api, "put", path, cast.alice_token, {"deal_id": str(deal_id)})
        assert status == 400
        assert "deal_id" in body["error_info"] or "deal_id" in str(body)
    status, body = call(
        api, "put", path, cast.alice_token, {"deal_id": str(deal.pk), "project_id": "1"}
    )
    assert status == 400
    assert hidden.pk != deal.pk


def test_who_sees_a_shared_conversation_on_an_item_may_read_it_but_not_change_it(
    api: Client, cast: Cast, world
) -> None:
    _, _, _, thread = world
    path = f"/api/v1/mailbox/mailThreads/{thread.pk}"
    assert get(api, path, cast.bob_token)[0] == 200
    status, _ = call(api, "put", path, cast.bob_token, {"archived_flag": "1"})
    assert status == 403
    assert call(api, "delete", path, cast.bob_token)[0] == 403
    assert call(api, "put", path, cast.carol_token, {"archived_flag": "1"})[0] == 404
    status, body = call(api, "delete", path, cast.alice_token)
    assert status == 200
    assert body["data"] == {"id": thread.pk}
    assert body["statusCode"] == 2000


def test_an_items_mail_messages_in_pipedrives_shape(
    api: Client, cast: Cast, world, mailbox: Mailbox
) -> None:
    account, pat, deal, _ = world
    mailbox.deliver(
        account,
        "Sent",
        message(0, subject="Re: Quote", sender=account.email_address, to="pat@customer.test"),
    )
    mailbox.deliver(account, "INBOX", message(5, subject="Other", sender="x@else.test", to="a@b"))

    for path in (f"/api/v1/persons/{pat.pk}/mailMessages", f"/api/v1/deals/{deal.pk}/mailMessages"):
        status, body = get(api, path + "?limit=1", cast.alice_token)
        assert status == 200, body
        (item,) = body["data"]
        assert item["object"] == "mailMessage"
        assert item["timestamp"] == item["data"]["message_time"]
        assert set(item["data"]) >= LIST_ITEM_EXTRAS
        assert item["data"]["subject"] == "Re: Quote"  # newest first
        assert "body" not in item["data"]
        assert body["additional_data"]["pagination"]["more_items_in_collection"] is True
        _, page2 = get(api, path + "?start=1&limit=5&include_body=1", cast.alice_token)
        assert [i["data"]["subject"] for i in page2["data"]] == ["Quote"]
        assert "Hello" in page2["data"][0]["data"]["body"]

    assert get(api, "/api/v1/persons/999999/mailMessages", cast.alice_token)[0] == 404
    assert get(api, f"/api/v1/persons/{pat.pk}/mailMessages", cast.carol_token)[0] == 404


def test_an_item_the_user_may_not_see_answers_403(
    api: Client, cast: Cast, mailbox: Mailbox
) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        secret = contact_services.person_create(
            company=cast.company_a,
            membership=alice,
            fields={"name": "Secret", "emails": [ContactPoint("s@x.test")], "visible_to": 1},
        )
    status, body = get(api, f"/api/v1/persons/{secret.pk}/mailMessages", cast.bob_token)
    assert status == 403
    assert body["success"] is False
