"""The mailbox API (v1), shaped like Pipedrive's (reference section 4.7):

- `GET /mailbox/mailThreads?folder=inbox|drafts|sent|archive&start&limit`
- `GET /mailbox/mailThreads/{id}`, `GET /mailbox/mailThreads/{id}/mailMessages`
- `GET /mailbox/mailMessages/{id}?include_body=0|1`, and `GET /mailbox/mailMessages/{id}/body`
  (the message's `body_url`: its HTML, sanitized, for a sandboxed frame)

Flags are 0/1 numbers and times `2019-11-20T20:20:46.000Z`, as Pipedrive writes them. Every
read goes through `inbox.selectors`, which start from `inbox.visibility`: a conversation the
user may not see is a 404, the same answer as one that does not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import re_path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from contacts.models import Organization, Person
from crm import access
from crm.access import ItemKind
from crm.api.authentication import request_membership
from crm.api.fields import iso_milliseconds as iso_ms
from crm.api.pagination import OffsetPagination, int_query_param
from crm.api.renderers import Envelope
from crm.api.schema import envelope, error_responses
from crm.api.views import ApiView
from crm.sales.models import Deal, Lead, Project
from crm.services import ServiceError
from inbox import bodies, selectors, services, visibility
from inbox.models import SHARING_BY_KIND, FolderRole, Sharing

if TYPE_CHECKING:
    from inbox.models import MailMessage, MailThread

MAIL_SERVICE_EXTRAS = {"statusCode": 2000, "statusText": "Success", "service": "email-api"}
_INLINE = "inline"


def flag(value: bool) -> int:
    return 1 if value else 0


def _party(party: selectors.Party) -> dict[str, Any]:
    return {
        "id": party.id,
        "email_address": party.address,
        "name": party.name,
        "linked_person_id": party.person_id,
        "linked_person_name": party.person_name or None,
        "mail_message_party_id": party.id,
    }


def _folders(roles: list[str] | set[str], archived: bool) -> list[str]:
    # An archived thread leaves the inbox (as Pipedrive's archived_flag does).
    shown = [
        r for r in ("inbox", "drafts", "sent") if r in roles and not (archived and r == "inbox")
    ]
    if archived or FolderRole.ARCHIVE in roles:
        shown.append("archive")
    return shown


def thread_data(
    thread: MailThread, parties: list[tuple[selectors.Party, int]], owner_id: int
) -> dict[str, Any]:
    """A MailThread object."""
    own = {thread.account.email_address.lower()}
    senders = [(p, t) for p, t in parties if p.role == "from"]
    recipients = [(p, t) for p, t in parties if p.role != "from"]

    def thread_party(items: list[tuple[selectors.Party, int]]) -> list[dict[str, Any]]:
        latest: dict[str, tuple[selectors.Party, int]] = {}
        for party, when in items:
            seen = latest.get(party.address)
            if seen is None or seen[1] < when:
                latest[party.address] = (party, when)
        newest = max((when for _, when in latest.values()), default=0)
        return [
            {
                "id": party.id,
                "name": party.name,
                "latest_sent": when == newest,
                "email_address": party.address,
                "message_time": when,
                "linked_person_id": party.person_id,
                "linked_person_name": party.person_name or None,
                "linked_organization_id": None,
                "mail_message_party_id": party.id,
            }
            for party, when in sorted(latest.values(), key=lambda item: item[1])
        ]

    roles = list(thread.folder_roles)
    all_sent = bool(senders) and all(p.address in own for p, _ in senders)
    return {
        "id": thread.pk,
        "account_id": thread.account_id,
        "user_id": owner_id,
        "subject": thread.subject,
        "snippet": thread.snippet,
        "snippet_draft": None,
        "snippet_sent": None,
        "read_flag": flag(not thread.is_unread),
        "mail_tracking_status": None,
        "has_attachments_flag": flag(thread.has_attachments),
        "has_inline_attachments_flag": 0,
        "has_real_attachments_flag": flag(thread.has_attachments),
        "deleted_flag": flag(thread.deleted),
        "synced_flag": 1,
        "smart_bcc_flag": 0,
        "mail_link_tracking_enabled_flag": 0,
        "parties": {"to": thread_party(recipients), "from": thread_party(senders)},
        "drafts_parties": [],
        "folders": _folders(roles, thread.archived),
        "version": 1,
        "message_count": thread.message_count,
        "has_draft_flag": flag(FolderRole.DRAFTS in roles),
        "has_sent_flag": flag(FolderRole.SENT in roles),
        "archived_flag": flag(thread.archived),
        "shared_flag": flag(thread.sharing == Sharing.SHARED),
        "external_deleted_flag": 0,
        "first_message_to_me_flag": flag(not all_sent),
        "all_messages_sent_flag": flag(all_sent),
        "last_message_timestamp": iso_ms(thread.last_message_at),
        "first_message_timestamp": iso_ms(thread.first_message_at),
        "last_message_sent_timestamp": iso_ms(thread.last_message_at) if all_sent else None,
        "last_message_received_timestamp": None if all_sent else iso_ms(thread.last_message_at),
        "add_time": iso_ms(thread.created_at),
        "update_time": iso_ms(thread.updated_at),
        "deal_id": thread.deal_id,
        "deal_status": thread.deal.status if thread.deal_id and thread.deal else None,
        "lead_id": str(thread.lead_id) if thread.lead_id else None,
        "project_id": thread.project_id,
    }


def message_data(
    message: MailMessage,
    *,
    thread: MailThread,
    facts: selectors.MessageFacts,
    request: Request,
    include_body: bool,
) -> dict[str, Any]:
    """A MailMessage object."""
    parties = facts.parties.get(message.pk, [])
    flags = facts.flags.get(message.pk, set())
    roles = facts.folder_roles.get(message.pk, set())
    kinds = facts.attachment_kinds.get(message.pk, set())
    has_body = bool(message.body_html or message.body_text)
    body_path = reverse("api-v1:mail-message-body", kwargs={"id": message.pk})
    data: dict[str, Any] = {
        "id": message.pk,
        "from": [_party(p) for p in parties if p.role == "from"],
        "to": [_party(p) for p in parties if p.role == "to"],
        "cc": [_party(p) for p in parties if p.role == "cc"],
        "bcc": [_party(p) for p in parties if p.role == "bcc"],
        "body_url": request.build_absolute_uri(body_path),
        "account_id": thread.account_id,
        "user_id": thread.account.owner_id,
        "mail_thread_id": thread.pk,
        "subject": message.subject,
        "snippet": message.snippet,
        "mail_tracking_status": None,
        "mail_link_tracking_enabled_flag": 0,
        "read_flag": flag("\\Seen" in flags),
        "draft": None,
        "draft_flag": flag(FolderRole.DRAFTS in roles or "\\Draft" in flags),
        "synced_flag": 1,
        "deleted_flag": 0,
        "has_body_flag": flag(has_body),
        "sent_flag": flag(FolderRole.SENT in roles),
        "sent_from_pipedrive_flag": 0,
        "smart_bcc_flag": 0,
        "message_time": iso_ms(message.sent_at or message.received_at),
        "add_time": iso_ms(message.created_at),
        "update_time": iso_ms(message.created_at),
        "has_attachments_flag": flag(message.has_attachments),
        "has_inline_attachments_flag": flag(_INLINE in kinds),
        "has_real_attachments_flag": flag(bool(kinds - {_INLINE})),
    }
    if include_body:
        data["body"] = bodies.message_body_html(message)
    return data


def _bool_param(request: Request, name: str) -> bool:
    return bool(int_query_param(params=request.query_params, name=name, default=0, max_value=1))


class _AnyObject(serializers.Serializer[Any]):
    """Documented loosely: the object shapes are Pipedrive's (reference 4.7)."""


THREADS_RESPONSE = envelope(name="MailThreadsResponse", data=_AnyObject(many=True), paging="offset")
THREAD_RESPONSE = envelope(name="MailThreadResponse", data=_AnyObject())
MESSAGES_RESPONSE = envelope(name="MailThreadMessagesResponse", data=_AnyObject(many=True))
MESSAGE_RESPONSE = envelope(name="MailMessageResponse", data=_AnyObject())
_ID = OpenApiParameter("id", int, OpenApiParameter.PATH)


class MailThreadListView(ApiView):
    @extend_schema(
        operation_id="getMailThreads",
        summary="Get mail threads",
        description="The conversations of a folder of your mailboxes, newest activity first.",
        tags=["Mailbox"],
        parameters=[
            OpenApiParameter("folder", str, enum=list(selectors.API_FOLDERS), required=True),
            OpenApiParameter("start", int),
            OpenApiParameter("limit", int),
        ],
        responses={200: THREADS_RESPONSE, **error_responses(400, 401, 429)},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        folder = request.query_params.get("folder", "")
        if folder not in selectors.API_FOLDERS:
            raise exceptions.ValidationError(
                {"folder": [_("Choose one of: inbox, drafts, sent, archive.")]}
            )
        threads = selectors.thread_list(membership=membership, folder=folder).select_related(
            "account", "deal"
        )
        paginator = OffsetPagination()
        page = paginator.paginate_queryset(threads, request, view=self)
        parties = selectors.thread_parties(
            company=membership.company, thread_ids=[t.pk for t in page]
        )
        data = [thread_data(t, parties.get(t.pk, []), t.account.owner_id) for t in page]
        return paginator.get_paginated_response(data)


def _thread_or_404(request: Request, thread_id: int) -> MailThread:
    membership = request_membership(request=request)
    thread = selectors.access_thread(membership=membership, thread_id=thread_id)
    if thread is None:
        raise exceptions.NotFound(_("Mail thread not found."))
    return thread


_UNLINK = ("", "null", None, 0, "0")


class _NullableInt(serializers.IntegerField):
    """An id, or empty / "null" / 0 to unlink."""

    def run_validation(self, data: Any = serializers.empty) -> Any:
        return None if data in _UNLINK else super().run_validation(data)


class _NullableUuid(serializers.UUIDField):
    """A lead's UUID (as text), or empty / "null" / 0 to unlink."""

    def run_validation(self, data: Any = serializers.empty) -> Any:
        return None if data in _UNLINK else str(super().run_validation(data))


class ThreadUpdateSerializer(serializers.Serializer[Any]):
    deal_id = _NullableInt(required=False, allow_null=True, min_value=1)
    lead_id = _NullableUuid(required=False, allow_null=True)
    project_id = _NullableInt(required=False, allow_null=True, min_value=1)
    shared_flag = serializers.ChoiceField(choices=[0, 1], required=False)
    read_flag = serializers.ChoiceField(choices=[0, 1], required=False)
    archived_flag = serializers.ChoiceField(choices=[0, 1], required=False)

    def to_internal_value(self, data: Any) -> Any:
        # Flags arrive as "0"/"1" in forms, numbers or booleans in JSON.
        if hasattr(data, "dict"):
            data = data.dict()
        data = {
            key: (
                int(value) if key.endswith("_flag") and value in (True, False, "0", "1") else value
            )
            for key, value in dict(data).items()
        }
        return super().to_internal_value(data)


class MailThreadDetailView(ApiView):
    @extend_schema(
        operation_id="getMailThread",
        summary="Get one mail thread",
        tags=["Mailbox"],
        parameters=[_ID],
        responses={200: THREAD_RESPONSE, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, id: str) -> Response:
        thread = _thread_or_404(request, int(id))
        parties = selectors.thread_parties(company=thread.company_id, thread_ids=[thread.pk])
        return Response(thread_data(thread, parties.get(thread.pk, []), thread.account.owner_id))

    @extend_schema(
        operation_id="updateMailThreadDetails",
        summary="Update a mail thread",
        description=(
            "Form-encoded, as Pipedrive: `deal_id`, `lead_id` (and `project_id`) link the "
            "conversation (empty or 0 unlinks; a link chosen here is never changed by the "
            "automatic rules); `shared_flag`, `read_flag`, `archived_flag` are 0 or 1. Only the "
            "users of the conversation's mailbox may change it."
        ),
        tags=["Mailbox"],
        parameters=[_ID],
        request={"application/x-www-form-urlencoded": ThreadUpdateSerializer},
        responses={200: THREAD_RESPONSE, **error_responses(400, 401, 403, 404, 429)},
    )
    def put(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        thread = _thread_or_404(request, int(id))
        incoming = ThreadUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        changes: dict[str, Any] = {}
        for name in ("deal_id", "lead_id", "project_id"):
            if name in values:
                changes[name] = values[name] or None
        if "shared_flag" in values:
            kind = thread.account.kind
            changes["sharing"] = (
                Sharing.SHARED if values["shared_flag"] else SHARING_BY_KIND[kind][1]
            )
        if "read_flag" in values:
            changes["read"] = bool(values["read_flag"])
        if "archived_flag" in values:
            changes["archived"] = bool(values["archived_flag"])
        if not visibility.can_manage(membership=membership, thread=thread):
            raise exceptions.PermissionDenied(
                _("Only the users of this conversation's mailbox can change it.")
            )
        try:
            services.thread_update(
                membership=membership, thread=thread, changes=services.ThreadChanges(**changes)
            )
        except ServiceError as exc:
            raise exceptions.ValidationError({exc.field or "id": [exc.message]}) from exc
        thread = _thread_or_404(request, thread.pk)
        parties = selectors.thread_parties(company=thread.company_id, thread_ids=[thread.pk])
        return Response(thread_data(thread, parties.get(thread.pk, []), thread.account.owner_id))

    @extend_schema(
        operation_id="deleteMailThread",
        summary="Delete a mail thread",
        description="Marks the conversation deleted in our mailbox.",
        tags=["Mailbox"],
        parameters=[_ID],
        responses={200: THREAD_RESPONSE, **error_responses(401, 403, 404, 429)},
    )
    def delete(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        thread = _thread_or_404(request, int(id))
        if not visibility.can_manage(membership=membership, thread=thread):
            raise exceptions.PermissionDenied(
                _("Only the users of this conversation's mailbox can change it.")
            )
        services.thread_delete(membership=membership, thread=thread)
        return Response(Envelope(data={"id": thread.pk}, extra=MAIL_SERVICE_EXTRAS))


class MailThreadMessagesView(ApiView):
    @extend_schema(
        operation_id="getMailThreadMessages",
        summary="Get all mail messages of a mail thread",
        tags=["Mailbox"],
        parameters=[_ID],
        responses={200: MESSAGES_RESPONSE, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, id: str) -> Response:
        thread = _thread_or_404(request, int(id))
        messages = selectors.thread_messages(company=thread.company_id, thread=thread)
        facts = selectors.message_facts(
            company=thread.company_id,
            account_id=thread.account_id,
            message_ids=[m.pk for m in messages],
        )
        return Response(
            [
                message_data(m, thread=thread, facts=facts, request=request, include_body=False)
                for m in messages
            ]
        )


def _message_or_404(request: Request, message_id: int) -> tuple[MailMessage, MailThread]:
    membership = request_membership(request=request)
    found = selectors.access_message(membership=membership, message_id=message_id)
    if found is None:
        raise exceptions.NotFound(_("Mail message not found."))
    return found


class MailMessageDetailView(ApiView):
    @extend_schema(
        operation_id="getMailMessage",
        summary="Get one mail message",
        tags=["Mailbox"],
        parameters=[_ID, OpenApiParameter("include_body", int, enum=[0, 1])],
        responses={200: MESSAGE_RESPONSE, **error_responses(400, 401, 404, 429)},
    )
    def get(self, request: Request, id: str) -> Response:
        include_body = _bool_param(request, "include_body")
        message, thread = _message_or_404(request, int(id))
        facts = selectors.message_facts(
            company=thread.company_id, account_id=thread.account_id, message_ids=[message.pk]
        )
        data = message_data(
            message, thread=thread, facts=facts, request=request, include_body=include_body
        )
        return Response(Envelope(data=data, extra=MAIL_SERVICE_EXTRAS))


class MailMessageBodyView(ApiView):
    @extend_schema(
        operation_id="getMailMessageBody",
        summary="Get a mail message's body as HTML (its body_url)",
        description="Sanitized HTML for a sandboxed frame; remote images are blocked.",
        tags=["Mailbox"],
        parameters=[_ID],
        responses={(200, "text/html"): str, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, id: str) -> HttpResponse:
        message, _thread = _message_or_404(request, int(id))
        return bodies.body_response(message)


_ITEM_PATHS: dict[str, tuple[ItemKind, type[Any], Any]] = {
    "persons": (ItemKind.PERSON, Person, gettext_lazy("Person")),
    "organizations": (ItemKind.ORGANIZATION, Organization, gettext_lazy("Organization")),
    "deals": (ItemKind.DEAL, Deal, gettext_lazy("Deal")),
    "leads": (ItemKind.LEAD, Lead, gettext_lazy("Lead")),
    "projects": (ItemKind.PROJECT, Project, gettext_lazy("Project")),
}


class ItemMailMessagesView(ApiView):
    """`GET /{persons|organizations|deals|leads|projects}/{id}/mailMessages`: the messages of
    the conversations on the item's Email tab, newest first, as Pipedrive lists them."""

    items: str = "persons"

    @extend_schema(
        summary="List mail messages linked to an item",
        description=(
            "The messages of the conversations linked to the item that you may see, each once, "
            "newest first (items `{object: 'mailMessage', timestamp, data}`)."
        ),
        tags=["Mailbox"],
        parameters=[
            OpenApiParameter("id", str, OpenApiParameter.PATH),
            OpenApiParameter("start", int),
            OpenApiParameter("limit", int),
            OpenApiParameter("include_body", int, enum=[0, 1]),
        ],
        responses={200: THREADS_RESPONSE, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        include_body = _bool_param(request, "include_body")
        kind, model, noun = _ITEM_PATHS[self.items]
        live: QuerySet[Any] = model.objects.for_company(membership.company_id).filter(
            deleted_at__isnull=True
        )
        try:
            access.access_item(live, membership=membership, item_id=id)
        except access.ItemNotFound:
            raise exceptions.NotFound(_("%(noun)s not found.") % {"noun": noun}) from None
        except access.ItemForbidden:
            raise exceptions.PermissionDenied(
                _("You do not have access to this %(noun)s.") % {"noun": str(noun).lower()}
            ) from None
        messages = selectors.item_messages(membership=membership, kind=kind, item_id=id)
        paginator = OffsetPagination()
        page = paginator.paginate_queryset(messages, request, view=self)
        threads = selectors.messages_threads(
            membership=membership, kind=kind, item_id=id, message_ids=[m.pk for m in page]
        )
        data = []
        for message in page:
            thread = threads[message.pk]
            facts = selectors.message_facts(
                company=membership.company_id,
                account_id=thread.account_id,
                message_ids=[message.pk],
            )
            item = message_data(
                message, thread=thread, facts=facts, request=request, include_body=include_body
            )
            timestamp = item["message_time"]
            item.update(
                {
                    "nylas_id": str(message.pk),
                    "s3_bucket": "",
                    "s3_bucket_path": message.raw_path,
                    "external_deleted_flag": False,
                    "mua_message_id": message.message_id or None,
                    "template_id": None,
                    "timestamp": timestamp,
                    "item_type": "mailMessage",
                    "company_id": membership.company_id,
                }
            )
            data.append({"object": "mailMessage", "timestamp": timestamp, "data": item})
        return paginator.get_paginated_response(data)


v1_patterns = [
    re_path(r"^mailbox/mailThreads/?$", MailThreadListView.as_view(), name="mail-threads"),
    re_path(
        r"^mailbox/mailThreads/(?P<id>[0-9]{1,18})/?$",
        MailThreadDetailView.as_view(),
        name="mail-thread",
    ),
    re_path(
        r"^mailbox/mailThreads/(?P<id>[0-9]{1,18})/mailMessages/?$",
        MailThreadMessagesView.as_view(),
        name="mail-thread-messages",
    ),
    # mailMessages/{id} and its body: inbox.api_send, whose views add the send state.
    *(
        re_path(
            rf"^{items}/(?P<id>{pattern})/mailMessages/?$",
            ItemMailMessagesView.as_view(items=items),
            name=f"{items}-mail-messages",
        )
        for items, pattern in (
            ("persons", "[0-9]{1,18}"),
            ("organizations", "[0-9]{1,18}"),
            ("deals", "[0-9]{1,18}"),
            ("leads", "[0-9a-fA-F-]{36}"),
            ("projects", "[0-9]{1,18}"),
        )
    ),
]
