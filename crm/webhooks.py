"""Webhooks (K2): subscriptions, the payloads of an item event, and delivery with retries.

The path of an event:

1. An item app publishes `crm.hooks.ItemEvent` on `ITEM_EVENT` inside its write transaction,
   bound to the company. `item_event_handle` (subscribed in `CrmConfig.ready`) finds the
   company's active webhooks that match the event's object, action and version and whose acting
   user may see the item, and writes one `WebhookDelivery` per payload in that same transaction:
   the delivery is an outbox row, so an event is delivered if and only if its write committed.
2. After commit, `crm.tasks.webhook_deliver` (a TenantTask) runs `delivery_attempt`: POST
   through `crm.outbound` with `X-CRM-Signature: sha256=<HMAC of the raw body>`, and record how
   it went. Transient failures retry after `retry_countdown` (3 s, 30 s, 150 s, then longer,
   honouring a 429's Retry-After); permanent ones fail at once.
3. `crm.tasks.webhook_deliveries_resume` (beat) re-enqueues pending deliveries whose task was
   lost (broker down at enqueue time, a crashed retry).

Delivery is at least once: a receiver can see an attempt twice (use `X-CRM-Delivery`).

Webhook delivery is one of the cross-tenant paths of NOTES-TRANCHE-1 only in that the sweeper
visits every company, through `tenancy.company_ids()` and one bound transaction per company;
every query here runs bound to one company.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import encryption, outbound
from crm.celery_app import app
from crm.hooks import ItemEvent
from crm.models import Company, Membership, Role, User, Webhook, WebhookDelivery
from crm.services import ServiceError

V1 = "1.0"
V2 = "2.0"
VERSIONS = (V1, V2)
V1_ACTIONS = ("added", "updated", "deleted", "merged", "*")
V2_ACTIONS = ("create", "change", "delete", "*")
ACTIONS = {V1: V1_ACTIONS, V2: V2_ACTIONS}
OBJECTS = ("person", "organization", "deal", "lead", "project", "*")
MAX_WEBHOOKS_PER_USER = 40  # as Pipedrive

# Waits before the 2nd, 3rd, ... attempt. The longest stays under Redis' default visibility
# timeout (1 h): a task waiting longer on a worker would be handed to another one as well.
RETRY_DELAYS: tuple[float, ...] = (3, 30, 150, 600, 1800, 2700)
RETRY_AFTER_MAX = 2700.0
# A pending delivery with no attempt this long after it was written lost its task.
RESUME_AFTER = timedelta(minutes=5)
RESUME_BATCH = 500
DELIVER_TASK = "crm.tasks.webhook_deliver"

_V2_ACTION_OF = {"added": "create", "updated": "change", "deleted": "delete"}
_MAX_ERROR_CHARS = 1000


# --- Subscriptions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: Webhook
    secret: str  # the signing key: shown once, stored encrypted


def webhook_create(
    *,
    company: Company,
    owner: User,
    subscription_url: str,
    event_action: str,
    event_object: str,
    name: str,
    version: str = V2,
    user_id: int | None = None,
    http_auth_user: str = "",
    http_auth_password: str = "",
) -> CreatedWebhook:
    """Subscribe a URL to item events. `user_id` (whose item access filters the events) is the
    owner when absent; only an admin owner may name another member."""
    name = name.strip()
    subscription_url = subscription_url.strip()
    if not name:
        raise ServiceError(_("A webhook needs a name."), field="name")
    if version not in VERSIONS:
        raise ServiceError(_("Version must be 1.0 or 2.0."), field="version")
    if event_action not in ACTIONS[version]:
        raise ServiceError(
            _("Event action must be one of %(actions)s for version %(version)s.")
            % {"actions": ", ".join(ACTIONS[version]), "version": version},
            field="event_action",
        )
    if event_object not in OBJECTS:
        raise ServiceError(
            _("Event object must be one of %(objects)s.") % {"objects": ", ".join(OBJECTS)},
            field="event_object",
        )
    _check_subscription_url(subscription_url)
    if http_auth_password and not http_auth_user:
        raise ServiceError(_("A Basic auth password needs a user name."), field="http_auth_user")

    owner_membership = _active_membership(company=company, user_id=owner.pk)
    if owner_membership is None:
        raise ServiceError(_("The owner is not an active member of the company."))
    acting_id = owner.pk if user_id is None else user_id
    if acting_id != owner.pk and not owner_membership.is_admin:
        raise ServiceError(_("Only admins may create webhooks for others."), field="user_id")
    acting = (
        owner_membership
        if acting_id == owner.pk
        else _active_membership(company=company, user_id=acting_id)
    )
    if acting is None:
        raise ServiceError(_("No active user with this id in the company."), field="user_id")
    acting_user = acting.user

    live = Webhook.objects.for_company(company).filter(removed_at__isnull=True)
    if live.filter(acting_user=acting_user).count() >= MAX_WEBHOOKS_PER_USER:
        raise ServiceError(
            _("A user may have at most %(max)d webhooks.") % {"max": MAX_WEBHOOKS_PER_USER},
            field="user_id",
        )

    secret = secrets.token_urlsafe(32)
    webhook = Webhook.objects.create(
        company=company,
        name=name,
        owner=owner,
        acting_user=acting_user,
        subscription_url=subscription_url,
        event_action=event_action,
        event_object=event_object,
        version=version,
        http_auth_user=http_auth_user,
        http_auth_password_encrypted=(
            encryption.encrypt(http_auth_password) if http_auth_password else ""
        ),
        secret_encrypted=encryption.encrypt(secret),
    )
    return CreatedWebhook(webhook=webhook, secret=secret)


def _check_subscription_url(url: str) -> None:
    if len(url) > Webhook._meta.get_field("subscription_url").max_length:  # type: ignore[operator]
        raise ServiceError(_("The URL is too long."), field="subscription_url")
    try:
        outbound.check_url(url)
    except outbound.OutboundError as exc:
        if exc.permanent:
            raise ServiceError(
                _("This URL cannot receive webhooks: %(reason)s") % {"reason": exc.message},
                field="subscription_url",
            ) from exc
        raise ServiceError(
            _("The URL's host name does not resolve."), field="subscription_url"
        ) from exc


def _active_membership(*, company: Company, user_id: int) -> Membership | None:
    return (
        Membership.objects.for_company(company)
        .select_related("user")
        .filter(user_id=user_id, is_active=True, user__is_active=True)
        .first()
    )


def webhook_delete(*, company: Company, webhook: Webhook) -> Webhook:
    """Stop a webhook. The row stays (its delivery log with it); it no longer matches events,
    and its pending deliveries fail at their next attempt."""
    if webhook.removed_at is None:
        webhook.removed_at = timezone.now()
        webhook.is_active = False
        webhook.save(update_fields=["removed_at", "is_active"])
    return webhook


def webhook_list(*, company: Company, user: User | None = None) -> QuerySet[Webhook]:
    """The company's live webhooks, oldest first; with `user`, those they own or act as."""
    webhooks = Webhook.objects.for_company(company).filter(removed_at__isnull=True)
    if user is not None:
        webhooks = webhooks.filter(Q(owner=user) | Q(acting_user=user))
    return webhooks.order_by("id")


def webhook_get(*, company: Company, webhook_id: int) -> Webhook | None:
    """A live webhook of the company; None for another company's, a removed or a missing one."""
    return (
        Webhook.objects.for_company(company).filter(pk=webhook_id, removed_at__isnull=True).first()
    )


# --- Payloads (pure: plain data in, plain data out) --------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """One payload of an event for one webhook, before the per-webhook meta is added."""

    action: str  # in the webhook's version
    entity_id: str
    data: Mapping[str, Any] | None
    previous: Mapping[str, Any] | None
    merged_to_id: str | None = None


def v1_envelopes(event: ItemEvent) -> list[Envelope]:
    """v1 has every action itself: `current` is null on delete, `previous` null on add."""
    current = event.current.get(V1)
    previous = event.previous.get(V1) if event.previous else None
    if event.action == "added":
        return [Envelope("added", event.item_id, current, None)]
    if event.action == "deleted":
        return [Envelope("deleted", event.item_id, None, previous or current)]
    if event.action == "merged":
        return [
            Envelope("merged", event.item_id, current, previous, merged_to_id=event.merged_into_id)
        ]
    return [Envelope(event.action, event.item_id, current, previous)]


def v2_envelopes(event: ItemEvent) -> list[Envelope]:
    """v2 has no `merged`: the merged-away item is deleted (with `merged_to_id`) and the kept
    one changed. `previous` of a change holds only the changed fields.

    For a merge, the event's `item_id` is the item that is gone, `merged_into_id` the one kept,
    `current` the kept item after the merge and `previous` the gone item's last state."""
    current = event.current.get(V2)
    previous = event.previous.get(V2) if event.previous else None
    if event.action == "merged":
        envelopes = [
            Envelope("delete", event.item_id, None, previous, merged_to_id=event.merged_into_id)
        ]
        if event.merged_into_id is not None:
            envelopes.append(Envelope("change", event.merged_into_id, current, None))
        return envelopes
    action = _V2_ACTION_OF[event.action]
    if action == "create":
        return [Envelope(action, event.item_id, current, None)]
    if action == "delete":
        return [Envelope(action, event.item_id, None, previous or current)]
    return [Envelope(action, event.item_id, current, changed_fields(previous, current, event))]


def changed_fields(
    previous: Mapping[str, Any] | None, current: Mapping[str, Any] | None, event: ItemEvent
) -> dict[str, Any] | None:
    """The previous values of the fields that changed: those the event names, else those that
    differ from the current values."""
    if previous is None:
        return None
    names: Iterable[str] = event.changed_fields or [
        key for key in previous if current is None or previous.get(key) != current.get(key)
    ]
    return {name: previous.get(name) for name in names if name in previous}


def matches(webhook: Webhook, *, kind: str, action: str) -> bool:
    return webhook.event_object in ("*", kind) and webhook.event_action in ("*", action)


def v1_payload(
    *,
    event: ItemEvent,
    envelope: Envelope,
    webhook: Webhook,
    host: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "v": 1,
        "matches_filters": {"current": [], "previous": []},
        "meta": {
            "v": 1,
            "action": envelope.action,
            "object": event.kind,
            "id": _v1_id(envelope.entity_id),
            "company_id": event.company_id,
            "user_id": event.actor_id,
            "host": host,
            "timestamp": int(now.timestamp()),
            "timestamp_micro": int(now.timestamp() * 1_000_000),
            "permitted_user_ids": list(event.permitted_user_ids),
            "trans_pending": False,
            "is_bulk_update": False,
            "pipedrive_service_name": False,
            "change_source": event.source,
            "webhook_id": str(webhook.pk),
        },
        "current": envelope.data,
        "previous": envelope.previous,
        "event": f"{envelope.action}.{event.kind}",
        "retry": 0,
    }


def v2_payload(
    *,
    event: ItemEvent,
    envelope: Envelope,
    webhook: Webhook,
    host: str,
    now: datetime,
    correlation_id: str,
) -> dict[str, Any]:
    # v2 states every id as a string (Pipedrive's examples and `merged_to_id: string`).
    meta: dict[str, Any] = {
        "action": envelope.action,
        "entity": event.kind,
        "entity_id": envelope.entity_id,
        "id": str(uuid.uuid4()),
        "version": V2,
        "company_id": str(event.company_id),
        "user_id": None if event.actor_id is None else str(event.actor_id),
        "webhook_id": str(webhook.pk),
        "webhook_owner_id": str(webhook.owner_id),
        "attempt": 1,
        "host": host,
        "timestamp": _rfc3339(now),
        "change_source": event.source,
        "permitted_user_ids": [str(user_id) for user_id in event.permitted_user_ids],
        "is_bulk_edit": False,
        "correlation_id": correlation_id,
        "type": "general",
    }
    if envelope.merged_to_id is not None:
        meta["merged_to_id"] = envelope.merged_to_id
    return {"meta": meta, "data": envelope.data, "previous": envelope.previous}


def event_name(payload: Mapping[str, Any]) -> str:
    """`updated.deal` (v1) / `change.deal` (v2), for the X-CRM-Event header."""
    if "event" in payload:
        return str(payload["event"])
    meta = payload.get("meta") or {}
    return f"{meta.get('action')}.{meta.get('entity')}"


def _v1_id(entity_id: str) -> int | str:
    # v1 ids are numbers, except lead ids (UUIDs).
    return int(entity_id) if entity_id.isdigit() else entity_id


def _rfc3339(moment: datetime) -> str:
    moment = moment.astimezone(timezone.get_fixed_timezone(0))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _host() -> str:
    return urlsplit(settings.SITE_URL).hostname or ""


def _jsonable(payload: Mapping[str, Any]) -> dict[str, Any]:
    # Items may carry Decimals, dates or UUIDs; the JSON column and the receiver need plain JSON.
    plain: dict[str, Any] = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    return plain


# --- From an event to deliveries ----------------------------------------------------------------


def item_event_handle(event: ItemEvent) -> None:
    """ITEM_EVENT's handler (subscribed in CrmConfig.ready)."""
    deliveries_create(event=event)


def deliveries_create(*, event: ItemEvent) -> list[WebhookDelivery]:
    """One delivery per payload for each matching webhook whose acting user may see the item,
    each enqueued after commit.

    Precondition: runs inside the publisher's transaction, bound to `event.company_id`."""
    webhooks = list(
        Webhook.objects.for_company(event.company_id)
        .filter(is_active=True, removed_at__isnull=True)
        .filter(Q(event_object="*") | Q(event_object=event.kind))
        .order_by("id")
    )
    if not webhooks:
        return []
    allowed = _users_who_may_see(event=event, user_ids={w.acting_user_id for w in webhooks})
    envelopes = {V1: v1_envelopes(event), V2: v2_envelopes(event)}
    host, now, correlation_id = _host(), timezone.now(), str(uuid.uuid4())
    deliveries: list[WebhookDelivery] = []
    for webhook in webhooks:
        if webhook.acting_user_id not in allowed:
            continue
        for envelope in envelopes.get(webhook.version, []):
            if not matches(webhook, kind=event.kind, action=envelope.action):
                continue
            if webhook.version == V1:
                payload = v1_payload(
                    event=event, envelope=envelope, webhook=webhook, host=host, now=now
                )
            else:
                payload = v2_payload(
                    event=event,
                    envelope=envelope,
                    webhook=webhook,
                    host=host,
                    now=now,
                    correlation_id=correlation_id,
                )
            deliveries.append(
                WebhookDelivery(
                    company_id=event.company_id, webhook=webhook, payload=_jsonable(payload)
                )
            )
    WebhookDelivery.objects.bulk_create(deliveries)
    for delivery in deliveries:
        delivery_enqueue(delivery=delivery)
    return deliveries


def _users_who_may_see(*, event: ItemEvent, user_ids: set[int]) -> set[int]:
    """Of these users, the active members who may see the event's item: the permitted users,
    and admins, who see everything."""
    members = Membership.objects.for_company(event.company_id).filter(
        user_id__in=user_ids, is_active=True, user__is_active=True
    )
    permitted = set(event.permitted_user_ids)
    return {
        user_id
        for user_id, role in members.values_list("user_id", "role")
        if role == Role.ADMIN or user_id in permitted
    }


def delivery_enqueue(*, delivery: WebhookDelivery) -> None:
    """Run `webhook_deliver` for this delivery once the current transaction commits."""
    kwargs = {"company_id": delivery.company_id, "delivery_id": delivery.pk}
    # By name: the task lives in crm.tasks, a layer above this module.
    transaction.on_commit(lambda: app.signature(DELIVER_TASK, kwargs=kwargs).apply_async())


# --- Delivering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str  # WebhookDelivery.Status
    retry_in: float | None = None  # seconds until the next attempt; None: no more attempts


def retry_countdown(*, attempts: int, retry_after: float | None = None) -> float | None:
    """Seconds to wait after the `attempts`-th failed attempt, or None when it was the last.

    A receiver's Retry-After lengthens the wait (never shortens it), up to RETRY_AFTER_MAX."""
    if attempts < 1 or attempts > len(RETRY_DELAYS):
        return None
    delay = RETRY_DELAYS[attempts - 1]
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_MAX))
    return float(delay)


def signature(*, secret: str, body: bytes) -> str:
    """The X-CRM-Signature header value: `sha256=` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_attempt(*, company: Company | int, delivery_id: int) -> DeliveryOutcome:
    """Send a pending delivery once and record the result on it and on its webhook.

    Precondition: inside a transaction bound to the company (a TenantTask). The delivery's row
    stays locked during the request, so two tasks for one delivery never send at once."""
    delivery = (
        WebhookDelivery.objects.for_company(company)
        .select_for_update(of=("self",))
        .select_related("webhook")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return DeliveryOutcome(status=WebhookDelivery.Status.FAILED)
    if delivery.status != WebhookDelivery.Status.PENDING:
        return DeliveryOutcome(status=delivery.status)
    webhook = delivery.webhook
    if not webhook.is_active or webhook.removed_at is not None:
        return _record_failure(delivery, _("The webhook was removed."), status=None, retry=False)

    payload = dict(delivery.payload)
    if webhook.version == V1:
        payload["retry"] = delivery.attempts
    else:
        payload["meta"] = {**payload.get("meta", {}), "attempt": delivery.attempts + 1}
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    try:
        secret = encryption.decrypt(webhook.secret_encrypted)
        password = (
            encryption.decrypt(webhook.http_auth_password_encrypted)
            if webhook.http_auth_password_encrypted
            else ""
        )
    except encryption.DecryptionError:
        message = _("The webhook's secrets cannot be decrypted (was the encryption key changed?).")
        return _record_failure(delivery, message, status=None, retry=False)
    headers = {
        "X-CRM-Signature": signature(secret=secret, body=body),
        "X-CRM-Delivery": str(delivery.pk),
        "X-CRM-Event": event_name(payload),
    }
    basic_auth = (webhook.http_auth_user, password) if webhook.http_auth_user else None
    try:
        response = outbound.post_json(
            url=webhook.subscription_url, body=body, headers=headers, basic_auth=basic_auth
        )
    except outbound.OutboundError as exc:
        return _record_failure(
            delivery,
            exc.message,
            status=exc.status,
            retry=not exc.permanent,
            retry_after=exc.retry_after,
        )
    now = timezone.now()
    delivery.status = WebhookDelivery.Status.DELIVERED
    delivery.attempts += 1
    delivery.last_http_status = response.status
    delivery.last_error = ""
    delivery.delivered_at = now
    delivery.save(
        update_fields=["status", "attempts", "last_http_status", "last_error", "delivered_at"]
    )
    _record_on_webhook(webhook, status=response.status, now=now)
    return DeliveryOutcome(status=delivery.status)


def _record_failure(
    delivery: WebhookDelivery,
    message: str,
    *,
    status: int | None,
    retry: bool,
    retry_after: float | None = None,
) -> DeliveryOutcome:
    delivery.attempts += 1
    retry_in = (
        retry_countdown(attempts=delivery.attempts, retry_after=retry_after) if retry else None
    )
    delivery.status = (
        WebhookDelivery.Status.PENDING if retry_in is not None else WebhookDelivery.Status.FAILED
    )
    delivery.last_http_status = status
    delivery.last_error = message[:_MAX_ERROR_CHARS]
    delivery.save(update_fields=["status", "attempts", "last_http_status", "last_error"])
    _record_on_webhook(delivery.webhook, status=status, now=timezone.now())
    return DeliveryOutcome(status=delivery.status, retry_in=retry_in)


def _record_on_webhook(webhook: Webhook, *, status: int | None, now: datetime) -> None:
    webhook.last_delivery_time = now
    webhook.last_http_status = status
    webhook.save(update_fields=["last_delivery_time", "last_http_status"])


def resume_due(*, created_at: datetime, attempts: int) -> datetime:
    """When a pending delivery with `attempts` made counts as lost: long after its next attempt
    was due even if every wait had been the longest (a Retry-After at the cap) and every
    attempt had taken the whole timeout."""
    per_attempt = RETRY_AFTER_MAX + float(settings.CRM_OUTBOUND_TIMEOUT)
    return created_at + RESUME_AFTER + timedelta(seconds=attempts * per_attempt)


def deliveries_resume(*, company: Company | int, now: datetime | None = None) -> int:
    """Enqueue again the company's pending deliveries whose task was lost; how many.

    Precondition: inside a transaction bound to the company."""
    now = now or timezone.now()
    candidates: Sequence[WebhookDelivery] = list(
        WebhookDelivery.objects.for_company(company)
        .filter(status=WebhookDelivery.Status.PENDING, created_at__lt=now - RESUME_AFTER)
        .only("id", "company_id", "created_at", "attempts")
        .order_by("created_at")[:RESUME_BATCH]
    )
    resumed = 0
    for delivery in candidates:
        if resume_due(created_at=delivery.created_at, attempts=delivery.attempts) <= now:
            delivery_enqueue(delivery=delivery)
            resumed += 1
    return resumed
