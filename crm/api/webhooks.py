"""Webhooks (v1): `GET /webhooks`, `POST /webhooks`, `DELETE /webhooks/{id}`, in Pipedrive's
Webhook shape.

Creating and deleting is for admins (Pipedrive's `admin` scope); every member may list the
webhooks they own or act as, admins see all of the company's. The Basic-auth password is never
returned (`"***"` when one is set); the signing secret only once, in the answer to the POST.
Deliveries are signed with `X-CRM-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from crm import webhooks
from crm.api.authentication import request_membership
from crm.api.fields import iso_milliseconds
from crm.api.schema import envelope, error_responses
from crm.api.views import ApiView
from crm.models import Membership, Webhook

MASKED_PASSWORD = "***"  # noqa: S105  (a mask, not a password)


@extend_schema_field(
    {"type": "string", "example": "2024-01-31T09:30:00.000Z", "description": "UTC, ISO 8601"}
)
class IsoMillisecondsField(serializers.Field[datetime, None, str, Any]):
    """Webhook timestamps as Pipedrive writes them: `2024-01-31T09:30:00.000Z`."""

    def to_representation(self, value: datetime) -> str:
        return iso_milliseconds(value) or ""


class WebhookSerializer(serializers.Serializer[Webhook]):
    """A webhook of your company."""

    id = serializers.IntegerField()
    company_id = serializers.IntegerField()
    owner_id = serializers.IntegerField(help_text="Who created the webhook.")
    user_id = serializers.IntegerField(
        source="acting_user_id", help_text="Whose item access filters the events sent."
    )
    event_action = serializers.CharField()
    event_object = serializers.CharField()
    subscription_url = serializers.CharField()
    version = serializers.CharField()
    is_active = serializers.SerializerMethodField()
    add_time = IsoMillisecondsField(source="created_at")
    remove_time = IsoMillisecondsField(source="removed_at", allow_null=True)
    type = serializers.SerializerMethodField()
    http_auth_user = serializers.SerializerMethodField()
    http_auth_password = serializers.SerializerMethodField()
    remove_reason = serializers.SerializerMethodField()
    last_delivery_time = IsoMillisecondsField(allow_null=True)
    last_http_status = serializers.IntegerField(allow_null=True)
    admin_id = serializers.IntegerField(source="owner_id")
    name = serializers.CharField()

    def get_is_active(self, webhook: Webhook) -> int:
        return 1 if webhook.is_active else 0

    def get_type(self, webhook: Webhook) -> str:
        return "general"

    def get_http_auth_user(self, webhook: Webhook) -> str | None:
        return webhook.http_auth_user or None

    def get_http_auth_password(self, webhook: Webhook) -> str | None:
        return MASKED_PASSWORD if webhook.http_auth_password_encrypted else None

    def get_remove_reason(self, webhook: Webhook) -> str | None:
        return "user_removed" if webhook.removed_at else None


class CreatedWebhookSerializer(WebhookSerializer):
    secret = serializers.CharField(
        help_text=(
            "The key of the deliveries' X-CRM-Signature HMAC. Shown only in this answer: "
            "store it now."
        )
    )


class WebhookCreateSerializer(serializers.Serializer[Any]):
    subscription_url = serializers.CharField(max_length=2000)
    event_action = serializers.CharField(max_length=16)
    event_object = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=200)
    version = serializers.ChoiceField(choices=webhooks.VERSIONS, default=webhooks.V2)
    user_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    http_auth_user = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=200
    )
    http_auth_password = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=500, trim_whitespace=False
    )


class WebhookIdSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()


WEBHOOK_LIST_RESPONSE = envelope(name="WebhookListResponse", data=WebhookSerializer(many=True))
WEBHOOK_CREATED_RESPONSE = envelope(name="WebhookCreatedResponse", data=CreatedWebhookSerializer())
WEBHOOK_DELETED_RESPONSE = envelope(name="WebhookDeletedResponse", data=WebhookIdSerializer())


def _require_admin(membership: Membership) -> None:
    if not membership.is_admin:
        raise exceptions.PermissionDenied(_("Only admins may manage webhooks."))


class WebhookListView(ApiView):
    @extend_schema(
        operation_id="getWebhooks",
        summary="Get all webhooks",
        description="Admins see every webhook of the company; others those they own or act as.",
        tags=["Webhooks"],
        responses={200: WEBHOOK_LIST_RESPONSE, **error_responses(401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        user = None if membership.is_admin else membership.user
        found = webhooks.webhook_list(company=membership.company, user=user)
        return Response(serializers.ListSerializer(found, child=WebhookSerializer()).data)

    @extend_schema(
        operation_id="addWebhook",
        summary="Add a new webhook",
        description=(
            "Subscribe a URL to item events (`event_action`.`event_object`, e.g. `change.deal` "
            "in version 2.0, `updated.deal` in 1.0). Admins only."
        ),
        tags=["Webhooks"],
        request=WebhookCreateSerializer,
        responses={201: WEBHOOK_CREATED_RESPONSE, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        membership = request_membership(request=request)
        _require_admin(membership)
        body = WebhookCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = body.validated_data
        created = webhooks.webhook_create(
            company=membership.company,
            owner=membership.user,
            subscription_url=fields["subscription_url"],
            event_action=fields["event_action"],
            event_object=fields["event_object"],
            name=fields["name"],
            version=fields["version"],
            user_id=fields.get("user_id"),
            http_auth_user=fields.get("http_auth_user") or "",
            http_auth_password=fields.get("http_auth_password") or "",
        )
        data = {**WebhookSerializer(created.webhook).data, "secret": created.secret}
        return Response(data, status=status.HTTP_201_CREATED)


class WebhookDetailView(ApiView):
    @extend_schema(
        operation_id="deleteWebhook",
        summary="Delete a webhook",
        description="Stops the webhook; its pending deliveries are not sent. Admins only.",
        tags=["Webhooks"],
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="Webhook id")],
        responses={200: WEBHOOK_DELETED_RESPONSE, **error_responses(401, 403, 404, 429)},
    )
    def delete(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        _require_admin(membership)
        webhook = webhooks.webhook_get(company=membership.company, webhook_id=int(id))
        if webhook is None:
            # Another company's webhook and no webhook at all look the same from here.
            raise exceptions.NotFound(_("Webhook not found."))
        webhooks.webhook_delete(company=membership.company, webhook=webhook)
        return Response({"id": webhook.pk})
