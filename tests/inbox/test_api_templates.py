"""Email templates over the API (`/api/v1/mailbox/mailTemplates`) and `template_id` on
`POST /api/v1/mailbox/mailMessages`: Pipedrive's envelopes and paging, a private template of
someone else is a 404 (Carol's answer for all of Acme's), a shared one a colleague may not
change a 403, and a message sent with a template carries its subject and body, smart fields
filled."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm import tenancy
from crm.api.urls import api_urlpatterns
from inbox import api as inbox_api
from inbox import api_send, api_templates, mailtemplates
from inbox.models import MailAccount, MailMessage, MailTemplate
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.inbox.items import ZOE, make_items

urlpatterns = api_urlpatterns(
    v1=[*api_send.v1_patterns, *api_templates.v1_patterns, *inbox_api.v1_patterns]
)
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]
PATH = "/api/v1/mailbox/mailTemplates"


def call(client: Client, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"headers": {"x-api-token": token}}
    if body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")
    response = getattr(client, method)(path, **kwargs)
    return response.status_code, response.json()


def create(client: Client, token: str, **fields: Any) -> dict[str, Any]:
    status, body = call(client, "post", PATH, token, {"name": "Template", **fields})
    assert status == 201, body
    data: dict[str, Any] = body["data"]
    return data


def test_a_template_is_created_read_changed_and_deleted(api: Client, cast: Cast) -> None:
    status, body = call(
        api,
        "post",
        PATH,
        cast.alice_token,
        {
            "name": "Follow-up",
            "subject": "Next steps for {{deal.title}}",
            "body_html": '<p onmouseover="x()">Hi {{person.first_name}},</p><script>y()</script>',
            "shared_flag": 1,
        },
    )

    assert status == 201, body
    assert body["success"] is True
    data = body["data"]
    assert data["name"] == "Follow-up"
    assert data["body_html"] == "<p>Hi {{person.first_name}},</p>"
    assert data["fields"] == ["deal.title", "person.first_name"]
    assert (data["shared_flag"], data["editable_flag"], data["user_id"]) == (1, 1, cast.alice.pk)
    assert data["folder_id"] is None
    assert data["add_time"].endswith("Z")
    path = f"{PATH}/{data['id']}"

    status, body = call(api, "get", path, cast.alice_token)
    assert status == 200
    assert body["data"]["subject"] == "Next steps for {{deal.title}}"

    status, body = call(api, "patch", path, cast.alice_token, {"subject": "Hello again"})
    assert status == 200, body
    assert body["data"]["subject"] == "Hello again"
    assert body["data"]["name"] == "Follow-up"  # what was not sent stays
    assert body["data"]["body_html"] == "<p>Hi {{person.first_name}},</p>"

    status, body = call(api, "delete", path, cast.alice_token)
    assert status == 200
    assert body == {"success": True, "data": {"id": data["id"]}}
    assert call(api, "get", path, cast.alice_token)[0] == 404


def test_the_list_pages_and_holds_own_and_shared_templates_only(api: Client, cast: Cast) -> None:
    for name in ("b", "a", "c"):
        create(api, cast.alice_token, name=name, shared_flag=True)
    create(api, cast.alice_token, name="Alice private")
    create(api, cast.bob_token, name="Bob private")

    status, body = call(api, "get", f"{PATH}?limit=2", cast.bob_token)
    assert status == 200
    assert [t["name"] for t in body["data"]] == ["a", "b"]
    assert body["additional_data"]["pagination"] == {
        "start": 0,
        "limit": 2,
        "more_items_in_collection": True,
        "next_start": 2,
    }
    status, body = call(api, "get", f"{PATH}?start=2", cast.bob_token)
    assert [t["name"] for t in body["data"]] == ["Bob private", "c"]
    assert body["additional_data"]["pagination"]["more_items_in_collection"] is False
    assert [t["editable_flag"] for t in body["data"]] == [1, 0]

    status, body = call(api, "get", PATH, cast.carol_token)
    assert status == 200
    assert body["data"] == []
    assert call(api, "get", f"{PATH}?limit=501", cast.bob_token)[0] == 400
    assert api.get(PATH).status_code == 401


def test_the_list_costs_the_same_queries_for_many_templates(api: Client, cast: Cast) -> None:
    create(api, cast.alice_token, name="one")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert call(api, "get", PATH, cast.alice_token)[0] == 200
        return len(queries)

    few = count()
    for n in range(6):
        create(api, cast.alice_token, name=f"more {n}", shared_flag=n % 2 == 0)
    assert count() == few


def test_private_templates_are_404_and_shared_ones_403_to_change(api: Client, cast: Cast) -> None:
    private = create(api, cast.alice_token, name="Mine")
    shared = create(api, cast.alice_token, name="Ours", shared_flag=1)

    for method in ("get", "patch", "delete"):
        body = {"name": "x"} if method == "patch" else None
        assert call(api, method, f"{PATH}/{private['id']}", cast.bob_token, body)[0] == 404
        for template in (private, shared):
            path = f"{PATH}/{template['id']}"
            assert call(api, method, path, cast.carol_token, body)[0] == 404

    status, body = call(api, "get", f"{PATH}/{shared['id']}", cast.bob_token)
    assert status == 200
    assert body["data"]["editable_flag"] == 0
    path = f"{PATH}/{shared['id']}"
    assert call(api, "patch", path, cast.bob_token, {"name": "Bob's now"})[0] == 403
    assert call(api, "delete", path, cast.bob_token)[0] == 403
    assert call(api, "get", path, cast.alice_token)[1]["data"]["name"] == "Ours"


def test_an_admin_changes_a_shared_template_but_does_not_unshare_it(
    api: Client, cast: Cast
) -> None:
    bobs = create(api, cast.bob_token, name="Bob's pitch", shared_flag=1)
    path = f"{PATH}/{bobs['id']}"

    status, body = call(api, "patch", path, cast.alice_token, {"body_html": "<p>Better</p>"})
    assert status == 200, body
    assert body["data"]["body_html"] == "<p>Better</p>"
    assert body["data"]["user_id"] == cast.bob.pk

    status, body = call(api, "patch", path, cast.alice_token, {"shared_flag": 0})
    assert status == 400
    assert "shared" in body["errors"]
    assert call(api, "delete", path, cast.alice_token)[0] == 200


def test_bad_input_is_a_400_naming_the_field(api: Client, cast: Cast) -> None:
    status, body = call(api, "post", PATH, cast.alice_token, {"subject": "No name"})
    assert status == 400
    assert "name" in body["errors"]

    status, body = call(api, "get", "/api/v1/mailbox/mailTemplateFolders", cast.alice_token)
    assert (status, body["data"]) == (200, [])
    bob = cast.membership(cast.bob, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.bob.pk):
        bobs_folder = mailtemplates.folder_save(membership=bob, name="Bob's")
    status, body = call(
        api, "post", PATH, cast.alice_token, {"name": "In Bob's", "folder_id": bobs_folder.pk}
    )
    assert status == 400
    assert "folder_id" in body["errors"]


def test_folders_are_listed_and_templates_filed_in_them(api: Client, cast: Cast) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        company = mailtemplates.folder_save(membership=alice, name="Sales", company_wide=True)
        own = mailtemplates.folder_save(membership=alice, name="Mine")
    filed = create(api, cast.alice_token, name="Filed", folder_id=company.pk)
    create(api, cast.alice_token, name="Loose")

    assert (filed["folder_id"], filed["folder_name"]) == (company.pk, "Sales")
    status, body = call(api, "get", f"{PATH}?folder_id={company.pk}", cast.alice_token)
    assert [t["name"] for t in body["data"]] == ["Filed"]
    status, body = call(api, "get", "/api/v1/mailbox/mailTemplateFolders", cast.bob_token)
    assert [(f["id"], f["user_id"], f["editable_flag"]) for f in body["data"]] == [
        (company.pk, None, 0)
    ]
    status, body = call(api, "get", "/api/v1/mailbox/mailTemplateFolders", cast.alice_token)
    assert [f["id"] for f in body["data"]] == [company.pk, own.pk]
    status, body = call(api, "get", "/api/v1/mailbox/mailTemplateFolders", cast.carol_token)
    assert (status, body["data"]) == (200, [])


# --- Sending with a template ---------------------------------------------------------------------


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


def test_a_message_sent_with_a_template_carries_it_filled(
    api: Client, cast: Cast, account: MailAccount
) -> None:
    items = make_items(cast)
    template = create(
        api,
        cast.alice_token,
        name="Renewal",
        subject="{{deal.title}}: our offer",
        body_html="<p>Dear {{person.first_name}},</p><p>{{deal.value}} for {{deal.title}}.</p>",
    )

    status, body = call(
        api,
        "post",
        "/api/v1/mailbox/mailMessages",
        cast.alice_token,
        {
            "account_id": account.pk,
            "to": [ZOE],
            "deal_id": items.deal.pk,
            "template_id": template["id"],
        },
    )

    assert status == 201, body
    assert body["data"]["subject"] == "Renewal <2027> & more: our offer"
    with tenancy.bound(cast.company_a.pk):
        message = MailMessage.objects.for_company(cast.company_a).get(pk=body["data"]["id"])
    assert "<p>Dear Zoë,</p>" in message.body_html
    assert "<p>1,500.50 EUR for Renewal &lt;2027&gt; &amp; more.</p>" in message.body_html
    assert "1,500.50 EUR for Renewal <2027> & more." in message.body_text


def test_a_template_the_sender_may_not_use_is_a_400(
    api: Client, cast: Cast, account: MailAccount
) -> None:
    bobs = create(api, cast.bob_token, name="Bob's own", subject="Bob's")
    with tenancy.bound(cast.company_b.pk):
        carols = MailTemplate.objects.create(
            company=cast.company_b, owner=cast.carol, name="Globex", shared=True
        )

    for template_id in (bobs["id"], carols.pk):
        status, body = call(
            api,
            "post",
            "/api/v1/mailbox/mailMessages",
            cast.alice_token,
            {"account_id": account.pk, "to": [ZOE], "template_id": template_id},
        )
        assert status == 400, body
        assert list(body["errors"]) == ["template_id"]
    with tenancy.bound(cast.company_a.pk):
        assert not MailMessage.objects.for_company(cast.company_a).exists()


def test_a_hidden_deal_is_refused_and_a_hidden_person_fills_nothing(
    api: Client, cast: Cast, mailbox: Mailbox
) -> None:
    items = make_items(cast)
    bobs_account = mailbox.account(cast.bob)
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=bobs_account.pk).update(
            smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none"
        )
    template = create(
        api,
        cast.bob_token,
        name="Hello",
        subject="About {{deal.title}}",
        body_html="<p>Hi {{person.first_name}} of {{organization.name}}</p>",
    )
    send = {"account_id": bobs_account.pk, "template_id": template["id"]}

    status, body = call(
        api,
        "post",
        "/api/v1/mailbox/mailMessages",
        cast.bob_token,
        {**send, "to": [ZOE], "deal_id": items.hidden_deal.pk},
    )
    assert status == 400
    assert list(body["errors"]) == ["deal_id"]

    status, body = call(
        api,
        "post",
        "/api/v1/mailbox/mailMessages",
        cast.bob_token,
        {**send, "to": ["hannah@secret.test"]},
    )
    assert status == 201, body
    assert body["data"]["subject"] == "About"
    with tenancy.bound(cast.company_a.pk):
        message = MailMessage.objects.for_company(cast.company_a).get(pk=body["data"]["id"])
    assert "<p>Hi  of </p>" in message.body_html
    assert "Hannah" not in message.body_html
    assert "Secret" not in message.body_html
