"""From an API call on an item to a signed delivery at a real receiver: the persons API
publishes item events, webhooks turn them into Pipedrive v2 payloads and Celery posts them."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from crm import services, tenancy
from crm.celery_app import app
from crm.models import Role
from tests.conftest import PASSWORD, Cast
from tests.crm.webhooks.conftest import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def inline_tasks() -> Iterator[None]:
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


def _api(client: Client, method: str, path: str, token: str, body: Any = None) -> Any:
    response = getattr(client, method)(
        path,
        data=json.dumps(body) if body is not None else None,
        content_type="application/json",
        HTTP_X_API_TOKEN=token,
    )
    assert response.status_code in (200, 201), response.content
    return response.json()["data"]


def test_person_changes_over_the_api_reach_a_v2_webhook_signed(
    cast: Cast,
    receiver: Receiver,
    allow_private: None,
    inline_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        hook = _api(
            client,
            "post",
            "/api/v1/webhooks",
            cast.alice_token,
            {
                "name": "test hook",
                "subscription_url": receiver.url(),
                "event_action": "*",
                "event_object": "person",
                "version": "2.0",
            },
        )
    with django_capture_on_commit_callbacks(execute=True):
        person = _api(
            client,
            "post",
            "/api/v2/persons",
            cast.alice_token,
            {
                "name": "Hook Person",
                "emails": [{"value": "hook@example.com", "primary": True}],
            },
        )
    with django_capture_on_commit_callbacks(execute=True):
        _api(
            client,
            "patch",
            f"/api/v2/persons/{person['id']}",
            cast.alice_token,
            {"job_title": "Buyer"},
        )
    with django_capture_on_commit_callbacks(execute=True):
        _api(client, "delete", f"/api/v2/persons/{person['id']}", cast.alice_token)

    assert len(receiver.requests) == 3
    payloads = [json.loads(request.body) for request in receiver.requests]
    assert [p["meta"]["action"] for p in payloads] == ["create", "change", "delete"]
    assert {p["meta"]["entity"] for p in payloads} == {"person"}
    assert {str(p["meta"]["entity_id"]) for p in payloads} == {str(person["id"])}
    assert payloads[0]["data"]["emails"][0]["value"] == "hook@example.com"
    assert payloads[1]["data"]["job_title"] == "Buyer"
    assert payloads[1]["previous"] == {"job_title": ""}
    assert payloads[2]["data"] is None
    for request in receiver.requests:
        expected = hmac.new(hook["secret"].encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-crm-signature"] == f"sha256={expected}"


def test_a_webhook_acting_as_a_user_gets_no_event_for_an_item_they_may_not_see(
    cast: Cast,
    receiver: Receiver,
    allow_private: None,
    inline_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with tenancy.bound(cast.company_a.pk):
        dave = services.user_get_or_create(email="dave@acme.test", password=PASSWORD)
        services.membership_add(company=cast.company_a, user=dave, role=Role.REGULAR)
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        _api(
            client,
            "post",
            "/api/v1/webhooks",
            cast.alice_token,
            {
                "name": "test hook",
                "subscription_url": receiver.url(),
                "event_action": "*",
                "event_object": "person",
                "version": "2.0",
                "user_id": dave.pk,
            },
        )
    with django_capture_on_commit_callbacks(execute=True):
        _api(
            client,
            "post",
            "/api/v2/persons",
            cast.bob_token,
            {"name": "Bob's secret", "visible_to": 1},
        )
        _api(
            client,
            "post",
            "/api/v2/persons",
            cast.bob_token,
            {"name": "Everyone's", "visible_to": 7},
        )
    names = [json.loads(request.body)["data"]["name"] for request in receiver.requests]
    assert names == ["Everyone's"]
