"""Sending over the API (B4; Pipedrive's API has none): the outbox's endpoints.

- `POST /mailbox/mailMessages`: queue a message (JSON, or multipart/form-data with files in
  `attachments`) and answer 201 with it and its send state:

      {"account_id": 7, "to": ["Pat <pat@customer.test>"], "cc": [], "bcc": [],
       "subject": "Quote", "body_html": "<p>Hello</p>" (or "body_text"),
       "reply_to_message_id": 12, "deal_id": 3 | "lead_id": "<uuid>" | "project_id": 4,
       "person_id": 9, "template_id": 5, "tracking": {"opens": true, "links": false},
       "send_at": "2026-12-01T09:00:00Z"}

  `template_id`: a template you may use (`/mailbox/mailTemplates`); its subject and body
  stand in for empty ones. Smart fields (`{{person.first_name}}`, `{{deal.value}}`, …) in the
  subject and body are filled from the linked items and the first "to" recipient.
- `GET /mailbox/mailMessages/{id}` (and its `/body`): as `inbox.api` serves any message,
  with `send_state` added for a message of the outbox, also while it waits or after it
  failed, when it is in no conversation yet (only the sending mailbox's users see it then):

      "send_state": {"state": "queued" | "sending" | "sent" | "failed" | "uncertain" |
                     "cancelled", "reason": "<plain words>" | null, "failed_recipients": [],
                     "attempts": 0, "not_before": "...", "send_at": null, "sent_at": null,
                     "undo_until": "...", "sent_copy": "",
                     "tracking": {"opens": true, "links": true, "opened_at": "..." | null,
                                  "open_count": 2, "machine_open_count": 1,
                                  "clicked_at": "..." | null, "click_count": 1}}

  `tracking`: what was asked for, then what the recipients did (E2): the first open and
  click by a person and how many; opens by image proxies and privacy prefetchers (Apple Mail
  Privacy Protection, …) are counted apart in `machine_open_count`, and the sender's own
  opens and link scanners' clicks are not counted.

Every check is the service's (`inbox.sending`, through `inbox.visibility`): an account,
message or item the user may not see is a field-level 400 on the POST, a 404 on the GET.
Mounted before `inbox.api`'s routes (crm/urls.py), so its two message routes are these.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.http import HttpResponse
from django.urls import re_path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.authentication import request_membership
from crm.api.fields import iso_milliseconds as iso_ms
from crm.api.renderers import Envelope
from crm.api.schema import envelope, error_responses
from crm.api.views import ApiView
from inbox import api, bodies, mime, selectors, sending

if TYPE_CHECKING:
    from inbox.models import MailOutbound

_ID = OpenApiParameter("id", int, OpenApiParameter.PATH)
# An API client cannot click "Undo": its messages leave as soon as a worker takes them.
_NO_UNDO = timedelta(0)


class _Tracking(serializers.Serializer[Any]):
    opens = serializers.BooleanField(required=False, default=False)
    links = serializers.BooleanField(required=False, default=False)


def _addresses() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=640),
        required=False,
        default=list,
        max_length=sending.MAX_RECIPIENTS,
    )


class SendSerializer(serializers.Serializer[Any]):
    """The request body. Addresses: "name@example.com" or "Name <name@example.com>"."""

    account_id = serializers.IntegerField(min_value=1)
    to = _addresses()
    cc = _addresses()
    bcc = _addresses()
    subject = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=998, trim_whitespace=False
    )
    body_html = serializers.CharField(
        required=False, default="", allow_blank=True, trim_whitespace=False
    )
    body_text = serializers.CharField(
        required=False, default="", allow_blank=True, trim_whitespace=False
    )
    reply_to_message_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1
    )
    deal_id = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    lead_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    project_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1
    )
    person_id = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    template_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1
    )
    tracking = _Tracking(required=False)
    send_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    attachments = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        required=False,
        default=list,
        max_length=sending.MAX_ATTACHMENTS,
    )

    def to_internal_value(self, data: Any) -> Any:
        # A form (multipart with files) sends lists as repeated fields: QueryDict.getlist.
        if hasattr(data, "getlist"):
            plain: dict[str, Any] = {key: data.get(key) for key in data}
            for key in ("to", "cc", "bcc", "attachments"):
                if key in data:
                    plain[key] = data.getlist(key)
            tracking = {
                part: data.get(f"tracking.{part}")
                for part in ("opens", "links")
                if f"tracking.{part}" in data
            }
            if tracking:
                plain["tracking"] = tracking
            data = plain
        return super().to_internal_value(data)


def _draft(values: dict[str, Any]) -> sending.Draft:
    tracking = values.get("tracking") or {}
    files = [
        mime.Attachment(
            filename=upload.name or "attachment",
            content_type=upload.content_type or "application/octet-stream",
            data=upload.read(),
        )
        for upload in values["attachments"]
    ]
    return sending.Draft(
        account_id=values["account_id"],
        to=values["to"],
        cc=values["cc"],
        bcc=values["bcc"],
        subject=values["subject"],
        body_html=values["body_html"],
        body_text=values["body_text"],
        attachments=files,
        reply_to_message_id=values["reply_to_message_id"],
        deal_id=values["deal_id"],
        lead_id=str(values["lead_id"]) if values["lead_id"] else None,
        project_id=values["project_id"],
        person_id=values["person_id"],
        template_id=values["template_id"],
        track_opens=bool(tracking.get("opens", False)),
        track_links=bool(tracking.get("links", False)),
        send_at=values["send_at"],
    )


def send_state(outbound: MailOutbound) -> dict[str, Any]:
    """Where a message of the outbox is, in the API's words."""
    return {
        "state": outbound.state,
        "reason": outbound.last_error or None,
        "failed_recipients": list(outbound.failed_recipients),
        "attempts": outbound.attempts,
        "not_before": iso_ms(outbound.not_before),
        "send_at": iso_ms(outbound.send_at),
        "undo_until": iso_ms(outbound.undo_until),
        "sent_at": iso_ms(outbound.sent_at),
        "sent_copy": outbound.sent_copy,
        "tracking": tracking_state(outbound),
    }


def tracking_state(outbound: MailOutbound) -> dict[str, Any]:
    """What was asked for and what the recipients did (E2): the first open and click by a
    person, how many, and the opens by machines (image proxies, privacy prefetchers) apart."""
    return {
        "opens": outbound.track_opens,
        "links": outbound.track_links,
        "opened_at": iso_ms(outbound.opened_at),
        "open_count": outbound.open_count,
        "machine_open_count": outbound.machine_open_count,
        "clicked_at": iso_ms(outbound.clicked_at),
        "click_count": outbound.click_count,
    }


def _outbound_data(
    read: sending.OutboundRead, *, request: Request, include_body: bool
) -> dict[str, Any]:
    message, thread, outbound = read.message, read.thread, read.outbound
    facts = selectors.message_facts(
        company=outbound.company_id, account_id=outbound.account_id, message_ids=[message.pk]
    )
    data = api.message_data(
        message, thread=thread, facts=facts, request=request, include_body=include_body
    )
    data["sent_from_pipedrive_flag"] = 1
    data["mail_link_tracking_enabled_flag"] = api.flag(outbound.track_links)
    if outbound.state == "sent":
        data["sent_flag"] = 1
    data["send_state"] = send_state(outbound)
    return data


SEND_RESPONSE = envelope(name="MailMessageSendResponse", data=api._AnyObject())


class MailMessageSendView(ApiView):
    @extend_schema(
        operation_id="sendMailMessage",
        summary="Send a mail message",
        description=(
            "Queues a message from one of your mailboxes through the outbox; the answer is the "
            "message with its `send_state` (queued, sending, sent, failed with the reason, "
            "uncertain, cancelled), which `GET /mailbox/mailMessages/{id}` keeps up to date. "
            "A reply (`reply_to_message_id`) threads with the message it answers; `deal_id`, "
            "`lead_id` or `project_id` link the conversation; `send_at` sends it later; "
            "`template_id` fills an empty subject or body from a template, and smart fields "
            "(`{{deal.title}}`) are filled from the linked items. Files "
            "go as multipart/form-data in `attachments`, within the mailbox's size limit."
        ),
        tags=["Mailbox"],
        request={"application/json": SendSerializer, "multipart/form-data": SendSerializer},
        responses={201: SEND_RESPONSE, **error_responses(400, 401, 429)},
    )
    def post(self, request: Request) -> Response:
        membership = request_membership(request=request)
        incoming = SendSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        outbound = sending.message_send(
            membership=membership, draft=_draft(incoming.validated_data), undo=_NO_UNDO
        )
        read = sending.outbound_read(membership=membership, message_id=outbound.message_id)
        if read is None:  # the sender reads the sending mailbox: not reached
            raise exceptions.NotFound(_("Mail message not found."))
        data = _outbound_data(read, request=request, include_body=False)
        return Response(Envelope(data=data, extra=api.MAIL_SERVICE_EXTRAS), status=201)


class MailMessageDetailView(api.MailMessageDetailView):
    @extend_schema(
        operation_id="getMailMessage",
        summary="Get one mail message",
        description=(
            "A message of your mailboxes or of an item you can see; a message sent through "
            "the outbox also carries its `send_state`."
        ),
        tags=["Mailbox"],
        parameters=[_ID, OpenApiParameter("include_body", int, enum=[0, 1])],
        responses={200: api.MESSAGE_RESPONSE, **error_responses(400, 401, 404, 429)},
    )
    def get(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        read = sending.outbound_read(membership=membership, message_id=int(id))
        if read is None:
            return super().get(request, id)
        include_body = api._bool_param(request, "include_body")
        data = _outbound_data(read, request=request, include_body=include_body)
        return Response(Envelope(data=data, extra=api.MAIL_SERVICE_EXTRAS))


class MailMessageBodyView(api.MailMessageBodyView):
    @extend_schema(
        operation_id="getMailMessageBody",
        summary="Get a mail message's body as HTML (its body_url)",
        description="Sanitized HTML for a sandboxed frame; remote images are blocked.",
        tags=["Mailbox"],
        parameters=[_ID],
        responses={(200, "text/html"): str, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, id: str) -> HttpResponse:
        membership = request_membership(request=request)
        read = sending.outbound_read(membership=membership, message_id=int(id))
        if read is None:
            return super().get(request, id)
        return bodies.body_response(read.message)


v1_patterns = [
    re_path(r"^mailbox/mailMessages/?$", MailMessageSendView.as_view(), name="mail-messages"),
    re_path(
        r"^mailbox/mailMessages/(?P<id>[0-9]{1,18})/?$",
        MailMessageDetailView.as_view(),
        name="mail-message",
    ),
    re_path(
        r"^mailbox/mailMessages/(?P<id>[0-9]{1,18})/body/?$",
        MailMessageBodyView.as_view(),
        name="mail-message-body",
    ),
]
