"""Webhooks (v1) over the API: list, create, delete, in Pipedrive's Webhook shape."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pytest_django import Settings

from crm import tenancy, webhooks
from crm.models import Webhook
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

WEBHOOK_KEYS = {
    "id", "company_id", "owner_id", "user_id", "event_action", "event_object",
    "subscription_url", "version", "is_active", "add_time", "remove_time", "type",
    "http_auth_user", "http_auth_password", "remove_reason", "last_delivery_time",
    "last_http_status", "admin_id", "name",
}  # fmt: skip
URL = "https://93.184.215.14/hooks/crm"


@pytest.fixture(autouse=True)
def api_urls(settings: Settings) -> None:
    settings.ROOT_URLCONF = "crm.api.urls"


@pytest.fixture
def api(cast: Cast) -> Client:
    return Client()


def _post(api: Client, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = api.post(
        "/api/v1/webhooks", body, content_type="application/json", headers={"x-api-token": token}
    )
    return response.status_code, response.json()


def _get(api: Client, token: str, path: str = "/api/v1/webhooks") -> tuple[int, dict[str, Any]]:
    response = api.get(path, headers={"x-api-token": token})
    return response.status_code, response.json()


def _delete(api: Client, token: str, webhook_id: int) -> tuple[int, dict[str, Any]]:
    response = api.delete(f"/api/v1/webhooks/{webhook_id}", headers={"x-api-token": token})
    return response.status_code, response.json()


def _body(**fields: Any) -> dict[str, Any]:
    return {
        "subscription_url": URL,
        "event_action": "change",
        "event_object": "deal",
        "name": "Deal sync",
        **fields,
    }


def test_an_admin_creates_a_webhook_and_sees_its_secret_once(api: Client, cast: Cast) -> None:
    status, body = _post(
        api, cast.alice_token, _body(http_auth_user="crm", http_auth_password="pw-123")
    )

    assert status == 201
    assert body["success"] is True
    data = body["data"]
    assert set(data) == WEBHOOK_KEYS | {"secret"}
    assert data["company_id"] == cast.company_a.pk
    assert data["owner_id"] == data["user_id"] == data["admin_id"] == cast.alice.pk
    assert (data["event_action"], data["event_object"]) == ("change", "deal")
    assert data["subscription_url"] == URL
    assert data["version"] == "2.0"  # the default, as Pipedrive's since 2025
    assert data["is_active"] == 1
    assert data["type"] == "general"
    assert data["http_auth_user"] == "crm"
    assert data["http_auth_password"] == "***"
    assert data["remove_time"] is None
    assert data["last_delivery_time"] is None
    assert data["last_http_status"] is None
    assert data["add_time"].endswith("Z")
    assert len(data["secret"]) >= 32

    _, listed = _get(api, cast.alice_token)
    [webhook] = listed["data"]
    assert set(webhook) == WEBHOOK_KEYS
    assert webhook["id"] == data["id"]


def test_the_password_is_never_returned(api: Client, cast: Cast) -> None:
    _, created = _post(
        api, cast.alice_token, _body(http_auth_user="crm", http_auth_password="pw-123")
    )
    listed = api.get("/api/v1/webhooks", headers={"x-api-token": cast.alice_token})

    assert "pw-123" not in str(created)
    assert b"pw-123" not in listed.content


def test_a_v1_webhook_for_another_member(api: Client, cast: Cast) -> None:
    status, body = _post(
        api, cast.alice_token, _body(version="1.0", event_action="updated", user_id=cast.bob.pk)
    )

    assert status == 201
    assert (body["data"]["version"], body["data"]["event_action"]) == ("1.0", "updated")
    assert body["data"]["user_id"] == cast.bob.pk
    assert body["data"]["owner_id"] == cast.alice.pk
    assert body["data"]["http_auth_user"] is None
    assert body["data"]["http_auth_password"] is None


def test_a_regular_user_may_not_create_webhooks(api: Client, cast: Cast) -> None:
    status, body = _post(api, cast.bob_token, _body())

    assert status == 403
    assert body["success"] is False
    with tenancy.bound(cast.company_a.pk):
        assert not Webhook.objects.for_company(cast.company_a).exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"subscription_url": None}, "subscription_url"),
        ({"event_action": "added"}, "event_action"),  # a v1 action on a v2 webhook
        ({"event_object": "activity"}, "event_object"),
        ({"version": "3.0"}, "version"),
        ({"name": ""}, "name"),
        ({"subscription_url": "ftp://93.184.215.14/x"}, "subscription_url"),
        ({"subscription_url": "http://169.254.169.254/latest/meta-data/"}, "subscription_url"),
        ({"subscription_url": "http://localhost:8000/"}, "subscription_url"),
        ({"user_id": 99999999}, "user_id"),
        ({"user_id": "abc"}, "user_id"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    api: Client, cast: Cast, settings: Settings, fields: dict[str, Any], field: str
) -> None:
    settings.CRM_OUTBOUND_ALLOW_PRIVATE = False
    body = {key: value for key, value in _body(**fields).items() if value is not None}

    status, answer = _post(api, cast.alice_token, body)

    assert status == 400
    assert answer["success"] is False
    assert field in answer["errors"]


def test_carol_cannot_use_an_acme_user_as_acting_user(api: Client, cast: Cast) -> None:
    status, answer = _post(api, cast.carol_token, _body(user_id=cast.alice.pk))

    assert status == 400
    assert "user_id" in answer["errors"]


def _created(cast: Cast, *, user_id: int | None = None) -> Webhook:
    with tenancy.bound(cast.company_a.pk):
        return webhooks.webhook_create(
            company=cast.company_a, owner=cast.alice, subscription_url=URL,
            event_action="*", event_object="*", name="All", user_id=user_id,
        ).webhook  # fmt: skip


def test_admins_list_every_webhook_and_members_their_own(api: Client, cast: Cast) -> None:
    alices, bobs = _created(cast), _created(cast, user_id=cast.bob.pk)

    _, as_alice = _get(api, cast.alice_token)
    _, as_bob = _get(api, cast.bob_token)
    _, as_carol = _get(api, cast.carol_token)

    assert [w["id"] for w in as_alice["data"]] == [alices.pk, bobs.pk]
    assert [w["id"] for w in as_bob["data"]] == [bobs.pk]
    assert as_carol["data"] == []


def test_an_admin_deletes_a_webhook(api: Client, cast: Cast) -> None:
    webhook = _created(cast)

    status, body = _delete(api, cast.alice_token, webhook.pk)

    assert status == 200
    assert body["data"] == {"id": webhook.pk}
    _, listed = _get(api, cast.alice_token)
    assert listed["data"] == []
    # Deleted once is gone: the second time is a 404.
    assert _delete(api, cast.alice_token, webhook.pk)[0] == 404


def test_carol_gets_404_deleting_acmes_webhook(api: Client, cast: Cast) -> None:
    webhook = _created(cast)

    status, body = _delete(api, cast.carol_token, webhook.pk)

    assert status == 404
    assert body["success"] is False
    with tenancy.bound(cast.company_a.pk):
        assert Webhook.objects.for_company(cast.company_a).get(pk=webhook.pk).is_active


def test_a_regular_user_may_not_delete_webhooks(api: Client, cast: Cast) -> None:
    webhook = _created(cast, user_id=cast.bob.pk)

    assert _delete(api, cast.bob_token, webhook.pk)[0] == 403


def test_unauthenticated_requests_are_401(api: Client, cast: Cast) -> None:
    assert api.get("/api/v1/webhooks").status_code == 401
    assert api.post("/api/v1/webhooks", _body(), content_type="application/json").status_code == 401


def test_the_schema_documents_the_webhook_endpoints(api: Client, cast: Cast) -> None:
    schema = api.get("/api/schema", headers={"accept": "application/json"})

    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/webhooks" in text
    assert "addWebhook" in text
