"""From an item event to a signed POST: matching, visibility, payloads, retries, the sweeper."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.utils import timezone
from pytest_django import Settings

from crm import tasks, tenancy, webhooks
from crm.celery_app import app
from crm.models import Company, User, Webhook, WebhookDelivery
from crm.services import ServiceError
from tests.conftest import Cast
from tests.crm.webhooks.conftest import Answer, Receiver, item_event, publish

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_private")]


@pytest.fixture
def eager() -> Iterator[None]:
    """Enqueued tasks run at once, in this process (retries inline, no countdown waited)."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


def _create(company: Company, owner: User, url: str, **fields: Any) -> webhooks.CreatedWebhook:
    fields.setdefault("event_action", "*")
    fields.setdefault("event_object", "*")
    fields.setdefault("name", "Sync")
    with tenancy.bound(company.pk):
        return webhooks.webhook_create(company=company, owner=owner, subscription_url=url, **fields)


def _deliveries(company: Company) -> list[WebhookDelivery]:
    with tenancy.bound(company.pk):
        return list(WebhookDelivery.objects.for_company(company).order_by("id"))


def _reload(delivery: WebhookDelivery) -> WebhookDelivery:
    with tenancy.bound(delivery.company_id):
        return WebhookDelivery.objects.for_company(delivery.company_id).get(pk=delivery.pk)


def _deliver(delivery: WebhookDelivery) -> Any:
    kwargs = {"company_id": delivery.company_id, "delivery_id": delivery.pk}
    return tasks.webhook_deliver.apply(kwargs=kwargs).get()


def _signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_an_item_event_is_posted_signed_with_basic_auth_to_a_real_receiver(
    cast: Cast, receiver: Receiver, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    created = _create(
        cast.company_a,
        cast.alice,
        receiver.url("/in?source=crm"),
        version="2.0",
        http_auth_user="crm",
        http_auth_password="s3cret:pw",
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        publish(item_event(company_id=cast.company_a.pk, actor_id=cast.bob.pk))

    assert len(callbacks) == 1
    [request] = receiver.requests
    assert request.path == "/in?source=crm"
    assert request.headers["x-crm-signature"] == _signed(created.secret, request.body)
    assert request.headers["x-crm-event"] == "change.deal"
    assert (
        request.headers["authorization"] == "Basic " + base64.b64encode(b"crm:s3cret:pw").decode()
    )
    [delivery] = _deliveries(cast.company_a)
    assert request.headers["x-crm-delivery"] == str(delivery.pk)
    assert json.loads(request.body)["meta"]["entity_id"] == "42"
    assert (delivery.status, delivery.attempts, delivery.last_http_status) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None
    with tenancy.bound(cast.company_a.pk):
        webhook = Webhook.objects.for_company(cast.company_a).get(pk=created.webhook.pk)
    assert webhook.last_http_status == 200
    assert webhook.last_delivery_time is not None


def test_a_signature_with_another_secret_does_not_match(cast: Cast, receiver: Receiver) -> None:
    created = _create(cast.company_a, cast.alice, receiver.url())
    publish(item_event(company_id=cast.company_a.pk))
    _deliver(_deliveries(cast.company_a)[0])

    [request] = receiver.requests
    assert request.headers["x-crm-signature"] == _signed(created.secret, request.body)
    assert request.headers["x-crm-signature"] != _signed("not-the-secret", request.body)
    assert request.headers["x-crm-signature"] != _signed(created.secret, request.body + b" ")


def test_a_5xx_is_retried_and_the_delivery_ends_delivered(cast: Cast, receiver: Receiver) -> None:
    created = _create(cast.company_a, cast.alice, receiver.url(), version="2.0")
    publish(item_event(company_id=cast.company_a.pk))
    receiver.answer(Answer(status=500), Answer(status=200))
    [delivery] = _deliveries(cast.company_a)

    assert _deliver(delivery) == "delivered"

    delivery = _reload(delivery)
    assert (delivery.status, delivery.attempts, delivery.last_http_status) == ("delivered", 2, 200)
    assert delivery.last_error == ""
    first, second = receiver.requests
    assert [json.loads(r.body)["meta"]["attempt"] for r in (first, second)] == [1, 2]
    assert first.headers["x-crm-delivery"] == second.headers["x-crm-delivery"]
    # Each attempt's body is signed as sent.
    assert second.headers["x-crm-signature"] == _signed(created.secret, second.body)


def test_a_v1_retry_counts_in_the_payloads_retry_field(cast: Cast, receiver: Receiver) -> None:
    _create(cast.company_a, cast.alice, receiver.url(), version="1.0")
    publish(item_event(company_id=cast.company_a.pk))
    receiver.answer(Answer(status=503), Answer(status=204, body=b""))

    _deliver(_deliveries(cast.company_a)[0])

    assert [json.loads(r.body)["retry"] for r in receiver.requests] == [0, 1]


def test_a_429_is_retried(cast: Cast, receiver: Receiver) -> None:
    _create(cast.company_a, cast.alice, receiver.url())
    publish(item_event(company_id=cast.company_a.pk))
    receiver.answer(Answer(status=429, headers={"Retry-After": "60"}), Answer(status=200))

    _deliver(_deliveries(cast.company_a)[0])

    assert _reload(_deliveries(cast.company_a)[0]).attempts == 2


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_a_permanent_error_fails_the_delivery_without_retrying(
    cast: Cast, receiver: Receiver, status: int
) -> None:
    _create(cast.company_a, cast.alice, receiver.url())
    publish(item_event(company_id=cast.company_a.pk))
    receiver.answer(Answer(status=status), Answer(status=200))

    assert _deliver(_deliveries(cast.company_a)[0]) == "failed"

    delivery = _reload(_deliveries(cast.company_a)[0])
    assert (delivery.status, delivery.attempts, delivery.last_http_status) == (
        "failed",
        1,
        status,
    )
    assert str(status) in delivery.last_error
    assert len(receiver.requests) == 1


def test_transient_errors_stop_after_the_last_retry(cast: Cast, receiver: Receiver) -> None:
    _create(cast.company_a, cast.alice, receiver.url())
    publish(item_event(company_id=cast.company_a.pk))
    receiver.answer(*[Answer(status=503)] * 20)

    assert _deliver(_deliveries(cast.company_a)[0]) == "failed"

    attempts = len(webhooks.RETRY_DELAYS) + 1
    assert len(receiver.requests) == attempts
    assert _reload(_deliveries(cast.company_a)[0]).attempts == attempts


def test_the_retry_countdown_backs_off_and_honours_retry_after() -> None:
    assert [webhooks.retry_countdown(attempts=n) for n in (1, 2, 3)] == [3.0, 30.0, 150.0]
    delays = [webhooks.retry_countdown(attempts=n) or 0.0 for n in range(1, 7)]
    assert delays == sorted(delays)
    assert min(delays) > 0
    assert webhooks.retry_countdown(attempts=len(webhooks.RETRY_DELAYS) + 1) is None
    # Retry-After lengthens the wait, never shortens it, and is capped.
    assert webhooks.retry_countdown(attempts=1, retry_after=120) == 120.0
    assert webhooks.retry_countdown(attempts=3, retry_after=1) == 150.0
    assert webhooks.retry_countdown(attempts=1, retry_after=10**6) == webhooks.RETRY_AFTER_MAX


def test_a_deleted_webhooks_pending_delivery_fails_without_a_request(
    cast: Cast, receiver: Receiver
) -> None:
    created = _create(cast.company_a, cast.alice, receiver.url())
    publish(item_event(company_id=cast.company_a.pk))
    with tenancy.bound(cast.company_a.pk):
        webhooks.webhook_delete(company=cast.company_a, webhook=created.webhook)

    assert _deliver(_deliveries(cast.company_a)[0]) == "failed"
    assert receiver.requests == []


def test_the_task_is_registered_under_the_name_the_event_handler_enqueues() -> None:
    assert tasks.webhook_deliver.name == webhooks.DELIVER_TASK


# --- Which webhooks an event reaches ----------------------------------------------------------


def test_an_item_the_acting_user_may_not_see_creates_no_delivery(
    cast: Cast, receiver: Receiver
) -> None:
    # Bob (regular) is the acting user: he sees only items listing him.
    _create(cast.company_a, cast.alice, receiver.url(), user_id=cast.bob.pk)

    publish(item_event(company_id=cast.company_a.pk, permitted_user_ids=(cast.alice.pk,)))
    assert _deliveries(cast.company_a) == []

    publish(item_event(company_id=cast.company_a.pk, permitted_user_ids=(cast.bob.pk,)))
    assert len(_deliveries(cast.company_a)) == 1


def test_an_admin_acting_user_sees_every_item(cast: Cast, receiver: Receiver) -> None:
    _create(cast.company_a, cast.alice, receiver.url())

    publish(item_event(company_id=cast.company_a.pk, permitted_user_ids=()))

    assert len(_deliveries(cast.company_a)) == 1


def test_another_companys_events_never_reach_a_webhook(cast: Cast, receiver: Receiver) -> None:
    _create(cast.company_a, cast.alice, receiver.url())

    publish(item_event(company_id=cast.company_b.pk, permitted_user_ids=(cast.carol.pk,)))

    assert _deliveries(cast.company_a) == []
    assert _deliveries(cast.company_b) == []


@pytest.mark.parametrize(
    ("version", "action", "obj", "event_action", "kind", "expected"),
    [
        ("1.0", "updated", "deal", "updated", "deal", 1),
        ("1.0", "added", "deal", "updated", "deal", 0),
        ("1.0", "*", "person", "updated", "deal", 0),
        ("1.0", "*", "*", "merged", "person", 1),
        ("2.0", "change", "deal", "updated", "deal", 1),
        ("2.0", "create", "*", "added", "lead", 1),
        ("2.0", "delete", "deal", "updated", "deal", 0),
        ("2.0", "*", "*", "merged", "person", 2),  # a delete and a change
        ("2.0", "delete", "person", "merged", "person", 1),
        ("2.0", "change", "person", "merged", "person", 1),
    ],
)
def test_webhooks_match_by_version_action_and_object(
    cast: Cast,
    receiver: Receiver,
    version: str,
    action: str,
    obj: str,
    event_action: str,
    kind: str,
    expected: int,
) -> None:
    _create(
        cast.company_a, cast.alice, receiver.url(), version=version,
        event_action=action, event_object=obj,
    )  # fmt: skip
    item = "7"
    publish(
        item_event(
            company_id=cast.company_a.pk,
            kind=kind,
            action=event_action,
            item_id=item,
            current={"id": 8 if event_action == "merged" else 7},
            previous={"id": 7},
            merged_into_id="8" if event_action == "merged" else None,
        )
    )

    assert len(_deliveries(cast.company_a)) == expected


def test_a_removed_webhook_receives_nothing(cast: Cast, receiver: Receiver) -> None:
    created = _create(cast.company_a, cast.alice, receiver.url())
    with tenancy.bound(cast.company_a.pk):
        webhooks.webhook_delete(company=cast.company_a, webhook=created.webhook)

    publish(item_event(company_id=cast.company_a.pk))

    assert _deliveries(cast.company_a) == []


# --- Payload shapes ------------------------------------------------------------------------------

V1_META_KEYS = {
    "v", "action", "object", "id", "company_id", "user_id", "host", "timestamp",
    "timestamp_micro", "permitted_user_ids", "trans_pending", "is_bulk_update",
    "pipedrive_service_name", "webhook_id", "change_source",
}  # fmt: skip
V2_META_KEYS = {
    "action", "entity", "entity_id", "id", "version", "company_id", "user_id", "webhook_id",
    "webhook_owner_id", "attempt", "host", "timestamp", "change_source", "permitted_user_ids",
    "is_bulk_edit", "correlation_id", "type",
}  # fmt: skip


def test_the_v1_payload_has_pipedrives_shape(cast: Cast, receiver: Receiver) -> None:
    created = _create(cast.company_a, cast.alice, receiver.url(), version="1.0")
    publish(
        item_event(
            company_id=cast.company_a.pk,
            actor_id=cast.bob.pk,
            permitted_user_ids=(cast.alice.pk, cast.bob.pk),
            current={"id": 42, "title": "Bigger deal", "value": 20},
            previous={"id": 42, "title": "Big deal", "value": 20},
        )
    )

    payload = _deliveries(cast.company_a)[0].payload
    assert set(payload) == {
        "v", "matches_filters", "meta", "current", "previous", "event", "retry",
    }  # fmt: skip
    assert payload["v"] == 1
    assert payload["event"] == "updated.deal"
    assert payload["retry"] == 0
    assert payload["matches_filters"] == {"current": [], "previous": []}
    assert payload["current"] == {"id": 42, "title": "Bigger deal", "value": 20}
    assert payload["previous"] == {"id": 42, "title": "Big deal", "value": 20}
    meta = payload["meta"]
    assert set(meta) == V1_META_KEYS
    assert meta["v"] == 1
    assert (meta["action"], meta["object"], meta["id"]) == ("updated", "deal", 42)
    assert meta["company_id"] == cast.company_a.pk
    assert meta["user_id"] == cast.bob.pk
    assert meta["permitted_user_ids"] == [cast.alice.pk, cast.bob.pk]
    assert meta["webhook_id"] == str(created.webhook.pk)
    assert meta["pipedrive_service_name"] is False
    assert meta["trans_pending"] is False
    assert meta["is_bulk_update"] is False
    assert meta["host"] == urlsplit(settings.SITE_URL).hostname
    assert isinstance(meta["timestamp"], int)
    assert meta["timestamp_micro"] // 1_000_000 == meta["timestamp"]


def test_a_v1_delete_has_no_current_and_an_add_no_previous(cast: Cast, receiver: Receiver) -> None:
    _create(cast.company_a, cast.alice, receiver.url(), version="1.0")
    publish(item_event(company_id=cast.company_a.pk, action="added", current={"id": 42}))
    publish(
        item_event(
            company_id=cast.company_a.pk, action="deleted", current={"id": 42},
            previous={"id": 42, "title": "Gone"},
        )
    )  # fmt: skip

    added, deleted = (d.payload for d in _deliveries(cast.company_a))
    assert (added["event"], added["current"], added["previous"]) == (
        "added.deal",
        {"id": 42},
        None,
    )
    assert (deleted["event"], deleted["current"], deleted["previous"]) == (
        "deleted.deal",
        None,
        {"id": 42, "title": "Gone"},
    )


def test_the_v2_payload_has_pipedrives_shape_with_only_changed_fields_in_previous(
    cast: Cast, receiver: Receiver
) -> None:
    created = _create(cast.company_a, cast.alice, receiver.url(), version="2.0")
    publish(
        item_event(
            company_id=cast.company_a.pk,
            actor_id=cast.alice.pk,
            permitted_user_ids=(cast.alice.pk,),
            current={"id": 42, "title": "Bigger deal", "value": 20},
            previous={"id": 42, "title": "Big deal", "value": 20},
            source="app",
        )
    )

    payload = _deliveries(cast.company_a)[0].payload
    assert set(payload) == {"meta", "data", "previous"}
    assert payload["data"] == {"id": 42, "title": "Bigger deal", "value": 20, "custom_fields": {}}
    assert payload["previous"] == {"title": "Big deal"}
    meta = payload["meta"]
    assert set(meta) == V2_META_KEYS
    assert (meta["action"], meta["entity"], meta["entity_id"]) == ("change", "deal", "42")
    assert uuid.UUID(meta["id"])
    assert uuid.UUID(meta["correlation_id"])
    assert meta["version"] == "2.0"
    assert meta["company_id"] == str(cast.company_a.pk)
    assert meta["user_id"] == str(cast.alice.pk)
    assert meta["webhook_id"] == str(created.webhook.pk)
    assert meta["webhook_owner_id"] == str(cast.alice.pk)
    assert meta["attempt"] == 1
    assert meta["change_source"] == "app"
    assert meta["permitted_user_ids"] == [str(cast.alice.pk)]
    assert meta["is_bulk_edit"] is False
    assert meta["type"] == "general"
    assert meta["timestamp"].endswith("Z")
    assert datetime.fromisoformat(meta["timestamp"]).tzinfo is not None


def test_changed_fields_named_by_the_event_pick_the_v2_previous(
    cast: Cast, receiver: Receiver
) -> None:
    _create(cast.company_a, cast.alice, receiver.url(), version="2.0")
    publish(
        item_event(
            company_id=cast.company_a.pk,
            current={"id": 42, "title": "New", "value": 5},
            previous={"id": 42, "title": "Old", "value": 1},
            changed_fields=("value",),
        )
    )

    assert _deliveries(cast.company_a)[0].payload["previous"] == {"value": 1}


def test_a_v2_create_has_no_previous_and_a_delete_no_data(cast: Cast, receiver: Receiver) -> None:
    _create(cast.company_a, cast.alice, receiver.url(), version="2.0")
    publish(item_event(company_id=cast.company_a.pk, action="added", current={"id": 42}))
    publish(
        item_event(
            company_id=cast.company_a.pk, action="deleted", current={"id": 42},
            previous={"id": 42, "title": "Gone"},
        )
    )  # fmt: skip

    created, deleted = (d.payload for d in _deliveries(cast.company_a))
    assert (created["meta"]["action"], created["previous"]) == ("create", None)
    assert created["data"] == {"id": 42, "custom_fields": {}}
    assert (deleted["meta"]["action"], deleted["data"]) == ("delete", None)
    assert deleted["previous"] == {"id": 42, "title": "Gone", "custom_fields": {}}


def test_a_v2_merge_is_a_delete_of_the_merged_item_and_a_change_of_the_kept_one(
    cast: Cast, receiver: Receiver
) -> None:
    _create(cast.company_a, cast.alice, receiver.url(), version="2.0")
    publish(
        item_event(
            company_id=cast.company_a.pk,
            kind="person",
            action="merged",
            item_id="7",
            current={"id": 8, "name": "Kept"},
            previous={"id": 7, "name": "Gone"},
            merged_into_id="8",
        )
    )

    deleted, changed = (d.payload for d in _deliveries(cast.company_a))
    assert (deleted["meta"]["action"], deleted["meta"]["entity_id"]) == ("delete", "7")
    assert deleted["meta"]["merged_to_id"] == "8"
    assert deleted["data"] is None
    assert deleted["previous"] == {"id": 7, "name": "Gone", "custom_fields": {}}
    assert (changed["meta"]["action"], changed["meta"]["entity_id"]) == ("change", "8")
    assert changed["data"] == {"id": 8, "name": "Kept", "custom_fields": {}}
    assert "merged_to_id" not in changed["meta"]
    assert deleted["meta"]["correlation_id"] == changed["meta"]["correlation_id"]
    assert deleted["meta"]["id"] != changed["meta"]["id"]


def test_decimals_and_dates_in_an_item_become_plain_json(cast: Cast, receiver: Receiver) -> None:
    from datetime import date
    from decimal import Decimal

    _create(cast.company_a, cast.alice, receiver.url(), version="1.0")
    publish(
        item_event(
            company_id=cast.company_a.pk,
            action="added",
            current={"id": 42, "value": Decimal("10.50"), "close_date": date(2025, 1, 31)},
        )
    )

    assert _deliveries(cast.company_a)[0].payload["current"] == {
        "id": 42, "value": "10.50", "close_date": "2025-01-31",
    }  # fmt: skip


# --- The sweeper -----------------------------------------------------------------------------


def _age(delivery: WebhookDelivery, *, by: timedelta, attempts: int = 0) -> None:
    with tenancy.bound(delivery.company_id):
        WebhookDelivery.objects.for_company(delivery.company_id).filter(pk=delivery.pk).update(
            created_at=timezone.now() - by, attempts=attempts
        )


def test_the_sweeper_enqueues_again_only_deliveries_whose_task_was_lost(
    cast: Cast, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    _create(cast.company_a, cast.alice, receiver.url())
    for _ in range(4):
        publish(item_event(company_id=cast.company_a.pk))
    lost, fresh, waiting, done = _deliveries(cast.company_a)
    _age(lost, by=timedelta(minutes=10))
    # Attempted once, waiting for a retry that may be up to RETRY_AFTER_MAX away.
    _age(waiting, by=timedelta(minutes=10), attempts=1)
    _age(done, by=timedelta(minutes=10))
    with tenancy.bound(cast.company_a.pk):
        WebhookDelivery.objects.for_company(cast.company_a).filter(pk=done.pk).update(
            status="delivered"
        )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert tasks.webhook_deliveries_resume.apply().get() == 1
    assert len(callbacks) == 1

    _age(waiting, by=timedelta(hours=2), attempts=1)
    with django_capture_on_commit_callbacks(execute=False):
        assert tasks.webhook_deliveries_resume.apply().get() == 2
    assert _reload(fresh).attempts == 0


def test_the_sweepers_enqueued_task_delivers(
    cast: Cast, receiver: Receiver, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    _create(cast.company_a, cast.alice, receiver.url())
    publish(item_event(company_id=cast.company_a.pk))  # its task "lost": not run
    [delivery] = _deliveries(cast.company_a)
    _age(delivery, by=timedelta(minutes=10))

    with django_capture_on_commit_callbacks(execute=True):
        tasks.webhook_deliveries_resume.apply().get()

    assert _reload(delivery).status == "delivered"
    assert len(receiver.requests) == 1


# --- Creating -----------------------------------------------------------------------------------


def _refusal(cast: Cast, **fields: Any) -> ServiceError:
    fields.setdefault("subscription_url", "https://93.184.215.14/hook")
    url = fields.pop("subscription_url")
    owner = fields.pop("owner", cast.alice)
    with pytest.raises(ServiceError) as raised:
        _create(cast.company_a, owner, url, **fields)
    return raised.value


def test_creating_validates_action_object_version_url_and_user(
    cast: Cast, settings: Settings
) -> None:
    assert _refusal(cast, version="2.0", event_action="added").field == "event_action"
    assert _refusal(cast, version="1.0", event_action="change").field == "event_action"
    assert _refusal(cast, event_object="activity").field == "event_object"
    assert _refusal(cast, version="3.0").field == "version"
    assert _refusal(cast, name="  ").field == "name"
    assert _refusal(cast, subscription_url="ftp://93.184.215.14/").field == "subscription_url"
    assert _refusal(cast, user_id=cast.carol.pk).field == "user_id"
    assert _refusal(cast, owner=cast.bob, user_id=cast.alice.pk).field == "user_id"
    settings.CRM_OUTBOUND_ALLOW_PRIVATE = False
    assert _refusal(cast, subscription_url="http://127.0.0.1/hook").field == "subscription_url"


def test_a_user_may_have_at_most_40_webhooks(cast: Cast) -> None:
    for _ in range(webhooks.MAX_WEBHOOKS_PER_USER):
        _create(cast.company_a, cast.alice, "https://93.184.215.14/hook")

    assert _refusal(cast).field == "user_id"
    # Another acting user has a quota of their own.
    _create(cast.company_a, cast.alice, "https://93.184.215.14/hook", user_id=cast.bob.pk)


def test_secrets_are_stored_encrypted(cast: Cast) -> None:
    created = _create(
        cast.company_a, cast.alice, "https://93.184.215.14/hook",
        http_auth_user="u", http_auth_password="plain-password",
    )  # fmt: skip

    webhook = created.webhook
    assert created.secret not in webhook.secret_encrypted
    assert "plain-password" not in webhook.http_auth_password_encrypted
