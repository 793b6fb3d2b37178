"""The composer (B4, B5, B6): new mail, replies and forwards, written in the browser and saved
as the user types.

- `GET inbox/compose`: the page. What it opens with comes from the query: `reply_to=<message>`
  (`reply_all=1`), `forward=<message>`, `draft=<id>`, `retry=<message>` (edit a message that
  was not sent), `deal` / `lead` / `project` / `person` / `organization=<id>` (written from that
  item's page: to its person, linked to it), `to`, `cc`, `bcc`, `subject`, `body` (a mailto
  link), `account`, and `next` (where to go after sending).
- `POST inbox/compose/save`: autosave; the first save starts the draft (`inbox.drafts`),
  answers `{"draft": id, "version": n}`.
- `POST inbox/compose/send`: send the draft (or a retried message); answers where to go and
  the undo link. `POST inbox/compose/undo`: undo send inside the window, back to the composer.
- `POST inbox/compose/discard`, `POST inbox/compose/continue` (a message of the Drafts folder).
- `POST inbox/compose/files`, `POST inbox/compose/files/<id>/delete`,
  `GET inbox/compose/drafts/<draft>/files/<id>`: attachments and inline images.
- `GET inbox/compose/recipients?q=`, `GET inbox/compose/templates[/<id>]`,
  `GET inbox/compose/signature?account=`, `POST inbox/compose/preview`: what the editor asks
  for as the user works.

JSON in and out for the script (static/js/compose.js); refusals are 400 with field-level
messages (`{"errors": {"to": ["…"]}}`), never a 500. Every read and write goes through
`inbox.drafts`, `inbox.sending`, `inbox.mailtemplates`, `inbox.smartcontext` and
`inbox.composing`, which check the user's mailboxes and items through `inbox.visibility` and
`crm.access`."""

from __future__ import annotations

import html
import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from contacts import selectors as contacts_selectors
from crm import timezones
from crm.services import ServiceError
from crm.web.permissions import MemberRequest, member_required
from inbox import composing, drafts, mailtemplates, mime, smartcontext, smartfields
from inbox.models import DraftState
from inbox.web.emails import notice
from inbox.web.media import content_disposition

if TYPE_CHECKING:
    from inbox.models import MailDraft, MailDraftFile

_NUMBER = re.compile(r"[0-9]{1,18}")
# Split a recipients field on commas and semicolons outside quotes and angle brackets.
_ADDRESS_PART = re.compile(r'(?:"(?:[^"\\]|\\.)*"|<[^>]*>|[^,;"<])+')
_INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
RECIPIENT_SUGGESTIONS = 8


def _number(raw: str | None) -> int | None:
    return int(raw) if raw and _NUMBER.fullmatch(raw) else None


def _uuid(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def split_addresses(value: str) -> list[str]:
    """The addresses typed in a recipients field, as typed (the send checks each)."""
    return [part.strip() for part in _ADDRESS_PART.findall(value or "") if part.strip()]


def _errors(error: ServiceError) -> JsonResponse:
    return JsonResponse({"errors": {error.field or "__all__": [str(error)]}}, status=400)


def _next_url(request: MemberRequest, raw: str | None) -> str:
    if raw and url_has_allowed_host_and_scheme(
        raw, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return raw
    return reverse("inbox")


def _send_at(request: MemberRequest, raw: str) -> datetime | None:
    """ "YYYY-MM-DDTHH:MM" as the user's clock shows it (their time zone in Preferences)."""
    if not raw:
        return None
    try:
        local = datetime.fromisoformat(raw)
    except ValueError:
        raise ServiceError(_("Choose a date and time to send it."), field="send_at") from None
    if timezone.is_aware(local):
        return local
    return local.replace(tzinfo=timezones.zone_of(request.user))


def _content(request: MemberRequest) -> drafts.DraftContent:
    data = request.POST
    account_id = _number(data.get("account"))
    if account_id is None:
        raise ServiceError(_("Choose the mailbox to send from."), field="account")
    return drafts.DraftContent(
        account_id=account_id,
        to=split_addresses(data.get("to", "")),
        cc=split_addresses(data.get("cc", "")),
        bcc=split_addresses(data.get("bcc", "")),
        subject=data.get("subject", "")[:998],
        body_html=data.get("body_html", ""),
        reply_to_message_id=_number(data.get("reply_to")),
        forward_of_message_id=_number(data.get("forward")),
        deal_id=_number(data.get("deal")),
        lead_id=_uuid(data.get("lead")),
        project_id=_number(data.get("project")),
        person_id=_number(data.get("person")),
        template_id=_number(data.get("template")),
        track_opens=data.get("track_opens") == "1",
        track_links=data.get("track_links") == "1",
        send_at=_send_at(request, data.get("send_at", "")),
    )


def _file_url(draft_id: int, file_id: int) -> str:
    return reverse("inbox_compose_file", kwargs={"draft_id": draft_id, "file_id": file_id})


def _file_json(draft_id: int, item: MailDraftFile) -> dict[str, Any]:
    return {
        "id": item.pk,
        "name": item.filename,
        "size": item.size,
        "content_type": item.content_type,
        "inline": item.inline,
        "content_id": item.content_id,
        "url": _file_url(draft_id, item.pk),
    }


def _draft_json(draft: MailDraft) -> dict[str, Any]:
    return {
        "draft": draft.pk,
        "version": draft.version,
        "saved_at": timezone.localtime(draft.updated_at).strftime("%H:%M"),
        "files": [_file_json(draft.pk, item) for item in draft.files.order_by("pk")],
    }


# --- The page -------------------------------------------------------------------------------------


def _prefill_from_draft(draft: MailDraft) -> composing.Prefill:
    return composing.Prefill(
        account_id=draft.account_id,
        to=tuple(draft.to),
        cc=tuple(draft.cc),
        bcc=tuple(draft.bcc),
        subject=draft.subject,
        body_html=draft.body_html,
        reply_to_message_id=draft.reply_to_message_id,
        forward_of_message_id=draft.forward_of_message_id,
        deal_id=draft.deal_id,
        lead_id=str(draft.lead_id) if draft.lead_id else None,
        project_id=draft.project_id,
        person_id=draft.person_id,
    )


def _opening(request: MemberRequest) -> tuple[composing.Prefill, MailDraft | None] | None:
    """What the page opens with; None when the query names something the user may not see."""
    query = request.GET
    membership = request.membership
    if (draft_id := _number(query.get("draft"))) is not None:
        draft = drafts.access_draft(membership=membership, draft_id=draft_id)
        if draft is None or draft.state != DraftState.OPEN:
            # Sent (its message is in Sent, or the outbox) or thrown away: nothing to edit.
            return None
        return _prefill_from_draft(draft), draft
    prefill = composing.Prefill()
    for mode, key in (("forward", "forward"), ("reply", "reply_to")):
        if (message_id := _number(query.get(key))) is not None:
            if mode == "reply" and query.get("reply_all") == "1":
                mode = "reply_all"
            found = composing.for_message(membership=membership, message_id=message_id, mode=mode)
            if found is None:
                return None
            prefill = found
            break
    else:
        for kind in ("deal", "lead", "project", "person", "organization"):
            if item_id := query.get(kind):
                prefill = composing.for_item(membership=membership, kind=kind, item_id=item_id)
                break
    prefill = composing.with_fields(
        prefill,
        to=tuple(split_addresses(query.get("to", ""))) + prefill.to,
        cc=tuple(split_addresses(query.get("cc", ""))) + prefill.cc,
        bcc=tuple(split_addresses(query.get("bcc", ""))),
        subject=query.get("subject", "")[:998],
        account_id=_number(query.get("account")),
    )
    if body := query.get("body", ""):
        paragraphs = "".join(
            f"<p>{line}</p>" if line else "<p><br></p>"
            for line in (html.escape(line) for line in body[:20_000].split("\n"))
        )
        prefill = composing.with_fields(prefill, body_html=paragraphs + prefill.body_html)
    return prefill, None


@require_GET
@member_required
def compose(request: MemberRequest) -> HttpResponse:
    if (retry := _number(request.GET.get("retry"))) is not None:
        # Edit a message that did not leave: it becomes (or is again) a draft.
        try:
            taken = drafts.draft_from_outbound(membership=request.membership, message_id=retry)
        except ServiceError as error:
            return notice(request, str(error), status=404)
        query = {"draft": str(taken.pk)}
        if nxt := request.GET.get("next"):
            query["next"] = nxt
        return redirect(f"{reverse('inbox_compose')}?{urlencode(query)}")
    opening = _opening(request)
    if opening is None:
        return notice(request, _("This message is not there, or not yours to see."), status=404)
    prefill, draft = opening
    membership = request.membership
    senders = composing.senders(membership=membership)
    if not senders:
        return render(request, "inbox/compose_no_account.html", status=200)
    account_id = composing.default_account(senders, prefill.account_id)
    signatures = {
        sender.account_id: mailtemplates.signature_for(
            membership=membership, account_id=sender.account_id
        )
        for sender in senders
    }
    files = [_file_json(draft.pk, item) for item in draft.files.order_by("pk")] if draft else []
    state = {
        "draft": draft.pk if draft else None,
        "version": draft.version if draft else 0,
        "files": files,
        "signatures": {str(key): value for key, value in signatures.items()},
        "limits": {str(s.account_id): s.attachment_limit for s in senders},
        "can_send": {str(s.account_id): s.can_send for s in senders},
        "autostart": draft is None and prefill.forward_of_message_id is not None,
        "fields": {item: dict(fields) for item, fields in smartfields.FIELDS.items()},
    }
    return render(
        request,
        "inbox/compose.html",
        {
            "prefill": prefill,
            "draft": draft,
            "senders": senders,
            "account_id": account_id,
            "to_text": ", ".join(prefill.to),
            "cc_text": ", ".join(prefill.cc),
            "bcc_text": ", ".join(prefill.bcc),
            "body_html": _editor_html(prefill.body_html, draft),
            "new_body": draft is None,
            "state": state,
            "next": _next_url(request, request.GET.get("next")),
            "send_at": _local_input(request, draft.send_at) if draft and draft.send_at else "",
            # E3: a new email starts from the user's preference; a draft keeps its choice.
            "track_opens": draft.track_opens if draft else request.user.track_opens_default,
            "track_links": draft.track_links if draft else request.user.track_links_default,
            "template_id": draft.template_id if draft else None,
            "timezone": request.user.timezone or "UTC",
        },
    )


def _editor_html(body_html: str, draft: MailDraft | None) -> str:
    """The body as the editor shows it: sanitized (it is put into our page), inline images
    from the draft's files instead of `cid:` (the script turns them back when it saves)."""
    urls: dict[str, str] = {}
    if draft is not None:
        urls = {
            item.content_id: _file_url(draft.pk, item.pk)
            for item in draft.files.all()
            if item.inline and item.content_id
        }
    return composing.editor_html(body_html, cid_url=urls.get)


def _local_input(request: MemberRequest, when: datetime) -> str:
    return when.astimezone(timezones.zone_of(request.user)).strftime("%Y-%m-%dT%H:%M")


# --- Saving, sending, undoing ---------------------------------------------------------------------


@require_POST
@member_required
def compose_save(request: MemberRequest) -> HttpResponse:
    try:
        content = _content(request)
        draft_id = _number(request.POST.get("draft"))
        if draft_id is None:
            draft = drafts.draft_start(membership=request.membership, content=content)
        else:
            draft = drafts.draft_save(
                membership=request.membership,
                draft_id=draft_id,
                content=content,
                version=_number(request.POST.get("version")),
            )
    except ServiceError as error:
        return _errors(error)
    return JsonResponse(_draft_json(draft))


@require_POST
@member_required
def compose_send(request: MemberRequest) -> HttpResponse:
    membership = request.membership
    try:
        content = _content(request)
        draft_id = _number(request.POST.get("draft"))
        if draft_id is None:
            draft_id = drafts.draft_start(membership=membership, content=content).pk
        outbound = drafts.draft_send(membership=membership, draft_id=draft_id, content=content)
    except ServiceError as error:
        return _errors(error)
    scheduled = ""
    if outbound.send_at is not None:
        scheduled = _("Scheduled for %(time)s.") % {
            "time": _local_input(request, outbound.send_at).replace("T", " ")
        }
    return JsonResponse(
        {
            "message": outbound.message_id,
            "draft": draft_id,
            "undo_until": outbound.undo_until.isoformat() if outbound.undo_until else None,
            "undo_url": reverse("inbox_compose_undo"),
            "scheduled": scheduled,
            "next": _next_url(request, request.POST.get("next")),
        },
        status=201,
    )


@require_POST
@member_required
def compose_undo(request: MemberRequest) -> HttpResponse:
    """Undo send: the message stops, and its draft opens again in the composer."""
    message_id = _number(request.POST.get("message"))
    draft_id = _number(request.POST.get("draft"))
    if message_id is None or draft_id is None:
        return JsonResponse({"errors": {"message": [_("Nothing to undo.")]}}, status=400)
    try:
        drafts.draft_unsend(membership=request.membership, draft_id=draft_id, message_id=message_id)
    except ServiceError as error:
        return _errors(error)
    return JsonResponse({"redirect": f"{reverse('inbox_compose')}?draft={draft_id}"})


@require_POST
@member_required
def compose_discard(request: MemberRequest) -> HttpResponse:
    draft_id = _number(request.POST.get("draft"))
    if draft_id is not None:
        try:
            drafts.draft_discard(membership=request.membership, draft_id=draft_id)
        except ServiceError as error:
            return _errors(error)
    return JsonResponse({"next": _next_url(request, request.POST.get("next"))})


@require_POST
@member_required
def compose_continue(request: MemberRequest) -> HttpResponse:
    """A message of the Drafts folder opens in the composer (ours, or another client's)."""
    message_id = _number(request.POST.get("message"))
    if message_id is None:
        return notice(request, _("This message is not there, or not yours to see."), status=404)
    try:
        draft = drafts.draft_for_message(membership=request.membership, message_id=message_id)
    except ServiceError:
        return notice(request, _("This message is not there, or not yours to see."), status=404)
    return redirect(f"{reverse('inbox_compose')}?draft={draft.pk}")


# --- Files ----------------------------------------------------------------------------------------


@require_POST
@member_required
def compose_file_add(request: MemberRequest) -> HttpResponse:
    draft_id = _number(request.POST.get("draft"))
    upload = request.FILES.get("file")
    if draft_id is None or upload is None:
        return JsonResponse({"errors": {"attachments": [_("Choose a file.")]}}, status=400)
    inline = request.POST.get("inline") == "1"
    content_type = upload.content_type or "application/octet-stream"
    if inline and content_type not in _INLINE_TYPES:
        return JsonResponse(
            {"errors": {"attachments": [_("Only PNG, JPEG, GIF or WebP pictures go inline.")]}},
            status=400,
        )
    try:
        item = drafts.draft_file_add(
            membership=request.membership,
            draft_id=draft_id,
            filename=upload.name or "attachment",
            content_type=content_type,
            data=upload.read(),
            inline=inline,
        )
    except ServiceError as error:
        return _errors(error)
    return JsonResponse(_file_json(draft_id, item), status=201)


@require_POST
@member_required
def compose_file_remove(request: MemberRequest, file_id: int) -> HttpResponse:
    draft_id = _number(request.POST.get("draft"))
    if draft_id is None:
        return JsonResponse({"errors": {"draft": [_("No draft.")]}}, status=400)
    try:
        drafts.draft_file_remove(membership=request.membership, draft_id=draft_id, file_id=file_id)
    except ServiceError as error:
        return _errors(error)
    return JsonResponse({"removed": file_id})


@require_GET
@member_required
def compose_file(request: MemberRequest, draft_id: int, file_id: int) -> HttpResponse:
    try:
        item, data = drafts.draft_file_read(
            membership=request.membership, draft_id=draft_id, file_id=file_id
        )
    except ServiceError:
        return HttpResponse(status=404)
    shown = item.inline and item.content_type in _INLINE_TYPES
    response = HttpResponse(
        data, content_type=item.content_type if shown else "application/octet-stream"
    )
    if not shown:
        response["Content-Disposition"] = content_disposition(item.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --- What the editor asks for ---------------------------------------------------------------------


@require_GET
@member_required
def compose_recipients(request: MemberRequest) -> HttpResponse:
    term = request.GET.get("q", "").strip()[:100]
    if not term:
        return JsonResponse({"results": []})
    found = contacts_selectors.recipient_suggestions(
        membership=request.membership, term=term, limit=RECIPIENT_SUGGESTIONS
    )
    return JsonResponse(
        {
            "results": [
                {
                    "person": item.person_id,
                    "name": item.name,
                    "address": item.address,
                    "organization": item.organization,
                    "text": mime.party_text(item.name, item.address),
                }
                for item in found
            ]
        }
    )


@require_GET
@member_required
def compose_templates(request: MemberRequest) -> HttpResponse:
    templates = mailtemplates.templates_visible(membership=request.membership)
    return JsonResponse(
        {
            "results": [
                {
                    "id": item.pk,
                    "name": item.name,
                    "folder": item.folder.name if item.folder_id and item.folder else "",
                    "shared": item.shared,
                }
                for item in templates
            ]
        }
    )


@require_GET
@member_required
def compose_template(request: MemberRequest, template_id: int) -> HttpResponse:
    template = mailtemplates.access_template(membership=request.membership, template_id=template_id)
    if template is None:
        return JsonResponse({"errors": {"template": [_("No such template.")]}}, status=404)
    return JsonResponse(
        {
            "id": template.pk,
            "subject": template.subject,
            "body_html": composing.editor_html(template.body_html),
        }
    )


@require_GET
@member_required
def compose_signature(request: MemberRequest) -> HttpResponse:
    account_id = _number(request.GET.get("account"))
    if account_id is None:
        return JsonResponse({"html": ""})
    return JsonResponse(
        {"html": mailtemplates.signature_for(membership=request.membership, account_id=account_id)}
    )


@require_POST
@member_required
def compose_preview(request: MemberRequest) -> HttpResponse:
    """The message with its smart fields filled as they would be now, and the fields that
    have no value (the composer warns before sending)."""
    data = request.POST
    to = split_addresses(data.get("to", ""))
    shown = smartcontext.preview(
        membership=request.membership,
        subject=data.get("subject", ""),
        body_html=data.get("body_html", ""),
        deal_id=_number(data.get("deal")),
        lead_id=_uuid(data.get("lead")),
        project_id=_number(data.get("project")),
        person_id=_number(data.get("person")),
        recipient_address=to[0] if to else None,
    )
    return JsonResponse(
        {
            "subject": shown.subject,
            "body_html": composing.editor_html(shown.body_html),
            "missing": list(shown.missing),
            "unknown": list(shown.unknown),
        }
    )


urlpatterns: list[URLPattern | URLResolver] = [
    path("inbox/compose", compose, name="inbox_compose"),
    path("inbox/compose/save", compose_save, name="inbox_compose_save"),
    path("inbox/compose/send", compose_send, name="inbox_compose_send"),
    path("inbox/compose/undo", compose_undo, name="inbox_compose_undo"),
    path("inbox/compose/discard", compose_discard, name="inbox_compose_discard"),
    path("inbox/compose/continue", compose_continue, name="inbox_compose_continue"),
    path("inbox/compose/files", compose_file_add, name="inbox_compose_file_add"),
    path(
        "inbox/compose/files/<int:file_id>/delete",
        compose_file_remove,
        name="inbox_compose_file_remove",
    ),
    path(
        "inbox/compose/drafts/<int:draft_id>/files/<int:file_id>",
        compose_file,
        name="inbox_compose_file",
    ),
    path("inbox/compose/recipients", compose_recipients, name="inbox_compose_recipients"),
    path("inbox/compose/templates", compose_templates, name="inbox_compose_templates"),
    path(
        "inbox/compose/templates/<int:template_id>",
        compose_template,
        name="inbox_compose_template",
    ),
    path("inbox/compose/signature", compose_signature, name="inbox_compose_signature"),
    path("inbox/compose/preview", compose_preview, name="inbox_compose_preview"),
]
