"""Sending mail (B4; DESIGN.md, Sending): the outbox's services and the reads its API needs.

Pressing Send calls `message_send`, inside the transaction of the user's action: the message
is built (`inbox.mime`: final Message-ID with our token, the plain-text alternative, encoded
headers), its bytes stored, and written as a `MailMessage` (parties, files) with a
`MailOutbound` row that `mailsync.outbox` delivers once `not_before` has passed (the undo
window, or the time chosen to send it). Nothing leaves from here: `inbox` asks for the
delivery by the row and the `crm.hooks.MAIL_OUTBOX_QUEUED` hook (mailsync queues a run after
commit; beat's sweeper finds anything a lost hook missed).

Every check goes through `inbox.visibility` and `crm.access`: the sending account must be one
whose mailbox the user reads, the message replied to (or forwarded) one they may read, the
deal, lead, project or person one they may see, the template one they may use
(`inbox.mailtemplates`). Refusals are `ServiceError`s naming the field.

Smart fields (B6: `{{deal.title}}`, …) in the subject and body are filled here, from the
items the message is linked to and its first recipient (`inbox.smartcontext`), before the
message is built: what is stored is what is sent. A field without a value is sent as empty
text (the composer's preview warned about it); one that is no field stays as written.

- `message_send`: queue a new message, a reply or a forward.
- `outbound_cancel`: undo send (and cancel a scheduled message) while it waits.
- `outbound_retry`: send a failed or cancelled message again, edited or as it was.
- `outbound_send_again`, `outbound_mark_sent`: the user's answer for a message that may have
  gone out (`uncertain`; decision 0012): nothing is ever sent twice without it.
- `outbound_read`, `access_outbound`, `outbound_list`, `forward_attachments`: reads.
- `outbound_links_apply`: the delivery's last step, the links chosen when sending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses
from typing import Any, Final
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from contacts import selectors as contacts_selectors
from contacts.addresses import InvalidEmailAddress, normalize_email
from contacts.models import Person
from crm import hooks
from crm.models import Membership
from crm.sales.models import Deal, Lead, Project
from crm.services import ServiceError
from inbox import (
    bodies,
    mailtemplates,
    mime,
    rawstore,
    selectors,
    services,
    smartcontext,
    smartfields,
    trackmarks,
    visibility,
)
from inbox.linkrules import link_addresses
from inbox.models import (
    AccountKind,
    MailAccount,
    MailAttachment,
    MailMessage,
    MailOutbound,
    MailParticipant,
    MailThread,
    MailThreadMessage,
    OutboundState,
    ParticipantRole,
    Provider,
)

# Undo send (B4): a message waits this long before it may leave, and can be cancelled.
UNDO_SEND_WINDOW: Final = timedelta(seconds=10)
# Recipients of one message at most (to, cc and bcc together): what Gmail's SMTP allows.
MAX_RECIPIENTS: Final = 100
MAX_ATTACHMENTS: Final = 100
SEND_AT_LIMIT: Final = timedelta(days=366)
# A chosen time this far in the past still means "now" (clocks and slow forms).
SEND_AT_SLACK: Final = timedelta(minutes=1)


# The crm.hooks topic published when messages were queued (mailsync subscribes: a run of the
# account's outbox once they are due, after commit).
@dataclass(frozen=True)
class Draft:
    """What the user asks to send. Addresses are "name@example.com" or "Name
    <name@example.com>"; `body_text` is sent as the plain-text part when given (else one is
    made from `body_html`). Composer, templates and automations fill the same fields.
    `template_id`: a template the user may use, whose subject and body stand in for empty
    ones (the composer usually inserted it already, and sends its id along)."""

    account_id: int
    to: Sequence[str] = ()
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    subject: str = ""
    body_html: str = ""
    body_text: str = ""
    attachments: Sequence[mime.Attachment] = field(default=(), repr=False)
    reply_to_message_id: int | None = None
    forward_of_message_id: int | None = None
    deal_id: int | None = None
    lead_id: str | None = None
    project_id: int | None = None
    person_id: int | None = None
    template_id: int | None = None
    track_opens: bool = False
    track_links: bool = False
    send_at: datetime | None = None


@dataclass(frozen=True)
class OutboundRead:
    """A message of the outbox as its reader may see it: the conversation it is in, or (not
    yet sent) an unsaved stand-in of the sending account's, `pk` None."""

    outbound: MailOutbound
    message: MailMessage
    thread: MailThread


# --- Checks --------------------------------------------------------------------------------------


def _sending_account(membership: Membership, account_id: int) -> MailAccount:
    account = (
        visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
        .filter(pk=account_id)
        .select_related("owner")
        .first()
    )
    if account is None:
        raise ServiceError(_("No mailbox with this id that you can send from."), field="account_id")
    if account.provider != Provider.IMAP:
        raise ServiceError(
            _("Sending from this kind of mailbox comes later; use an IMAP / SMTP mailbox."),
            field="account_id",
        )
    if not account.smtp_host:
        raise ServiceError(
            _(
                "This mailbox has no outgoing (SMTP) server. Add one in Settings → Email sync, "
                "then send again."
            ),
            field="account_id",
        )
    return account


def _parse_recipients(values: Sequence[str], field_name: str) -> list[mime.Party]:
    parties: list[mime.Party] = []
    for value in values:
        found = [(n, a) for n, a in getaddresses([value]) if a]
        if len(found) != 1:
            raise ServiceError(
                _("Not one email address: %(value)s") % {"value": value[:200]}, field=field_name
            )
        name, address = found[0]
        address = address.strip()
        try:
            normalize_email(address)
        except InvalidEmailAddress:
            raise ServiceError(
                _("Not an email address: %(value)s") % {"value": address[:200]},
                field=field_name,
            ) from None
        if not address.partition("@")[0].isascii():
            raise ServiceError(
                _(
                    "%(address)s has letters before the @ that mail servers may not carry; "
                    "ask the recipient for another address."
                )
                % {"address": address[:200]},
                field=field_name,
            )
        parties.append(mime.Party(address=address, name=mime.clean_header_text(name)))
    return parties


def _recipients(draft: Draft) -> dict[str, list[mime.Party]]:
    """to / cc / bcc, each address once (the first place it was named wins)."""
    seen: set[str] = set()
    chosen: dict[str, list[mime.Party]] = {}
    for field_name, values in (("to", draft.to), ("cc", draft.cc), ("bcc", draft.bcc)):
        chosen[field_name] = []
        for party in _parse_recipients(values, field_name):
            key = normalize_email(party.address)
            if key not in seen:
                seen.add(key)
                chosen[field_name].append(party)
    total = sum(len(parties) for parties in chosen.values())
    if total == 0:
        raise ServiceError(_("Add at least one recipient."), field="to")
    if total > MAX_RECIPIENTS:
        raise ServiceError(
            _("At most %(count)s recipients per message; this one has %(total)s.")
            % {"count": MAX_RECIPIENTS, "total": total},
            field="to",
        )
    return chosen


def links_check(
    membership: Membership,
    *,
    deal_id: int | None,
    lead_id: str | None,
    project_id: int | None,
    person_id: int | None,
    kept: Mapping[str, object] | None = None,
) -> None:
    """The items a message is linked to: one deal, lead or project at most, and each one the
    user may see (a field-level `ServiceError` otherwise). `kept` holds links already checked
    (a draft's, by field name): an unchanged one is not checked again."""
    chosen = [
        name
        for name, value in (("deal_id", deal_id), ("lead_id", lead_id), ("project_id", project_id))
        if value is not None
    ]
    if len(chosen) > 1:
        raise ServiceError(
            _("Link a conversation to one deal, lead or project at a time."), field=chosen[1]
        )
    checks: list[tuple[Any, object, str, str]] = [
        (Deal, deal_id, "deal_id", _("deal")),
        (Lead, lead_id, "lead_id", _("lead")),
        (Project, project_id, "project_id", _("project")),
        (Person, person_id, "person_id", _("person")),
    ]
    for model, wanted, field_name, noun in checks:
        if wanted is None or (kept is not None and str(kept.get(field_name)) == str(wanted)):
            continue
        services.require_visible_item(membership, model, wanted, field_name, noun)


def _template(membership: Membership, draft: Draft) -> tuple[str, str, str]:
    """(subject, HTML, text) to send: the draft's, a template's where the draft has none."""
    subject, body_html, body_text = draft.subject, draft.body_html, draft.body_text
    if draft.template_id is None:
        return subject, body_html, body_text
    template = mailtemplates.access_template(membership=membership, template_id=draft.template_id)
    if template is None:
        raise ServiceError(_("No template with this id that you can use."), field="template_id")
    if not subject.strip():
        subject = template.subject
    if not (body_html.strip() or body_text.strip()):
        body_html = template.body_html
    return subject, body_html, body_text


def _fill_fields(
    membership: Membership,
    draft: Draft,
    recipients: dict[str, list[mime.Party]],
    texts: tuple[str, str, str],
) -> tuple[str, str, str]:
    """Subject, HTML and text with their smart fields filled (the values HTML-escaped in the
    HTML), from the draft's links and its first "to" recipient; only items the sender may
    see give values. Nothing to look up when no field is used."""
    subject, body_html, body_text = texts
    if not smartfields.fields_used("\n".join(texts)):
        return texts
    first_to = recipients["to"][0].address if recipients["to"] else None
    values = smartcontext.field_values(
        membership=membership,
        deal_id=draft.deal_id,
        lead_id=draft.lead_id,
        project_id=draft.project_id,
        person_id=draft.person_id,
        recipient_address=first_to,
    )
    return (
        smartfields.render(subject, values, as_html=False).text,
        smartfields.render(body_html, values, as_html=True).text,
        smartfields.render(body_text, values, as_html=False).text,
    )


def _readable_message(membership: Membership, message_id: int, field_name: str) -> MailMessage:
    found = selectors.access_message(membership=membership, message_id=message_id)
    if found is None:
        raise ServiceError(_("No message with this id that you can see."), field=field_name)
    return found[0]


def _send_at(value: datetime | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    if value < now - SEND_AT_SLACK:
        raise ServiceError(_("Choose a time in the future to send it."), field="send_at")
    if value > now + SEND_AT_LIMIT:
        raise ServiceError(_("Choose a time within a year."), field="send_at")
    return value if value > now else None


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def _attachments_check(account: MailAccount, attachments: Sequence[mime.Attachment]) -> None:
    """The provider's limit (Gmail 25 MB, Outlook 20 MB, IMAP accounts as configured), before
    anything is stored: the composer checks it before the upload too."""
    if len(attachments) > MAX_ATTACHMENTS:
        raise ServiceError(
            _("At most %(count)s files per message.") % {"count": MAX_ATTACHMENTS},
            field="attachments",
        )
    total = sum(len(a.data) for a in attachments)
    if total > account.send_size_limit:
        raise ServiceError(
            _(
                "The files add up to %(total)s, more than this mailbox sends at once "
                "(%(limit)s). Remove some, or share a link instead."
            )
            % {"total": _megabytes(total), "limit": _megabytes(account.send_size_limit)},
            field="attachments",
        )


# --- Building the message ------------------------------------------------------------------------


def message_id_domain() -> str:
    """The right side of our Message-IDs: `CRM_MAIL_MESSAGE_ID_DOMAIN`, else SITE_URL's host."""
    configured = str(getattr(settings, "CRM_MAIL_MESSAGE_ID_DOMAIN", "") or "")
    return configured or urlsplit(settings.SITE_URL).hostname or "localhost"


def _sender(account: MailAccount) -> mime.Party:
    name = account.display_name
    if not name and account.kind == AccountKind.PERSONAL:
        name = account.owner.name
    return mime.Party(address=account.email_address, name=name)


@dataclass(frozen=True)
class _Composed:
    outgoing: mime.Outgoing
    built: mime.Built  # its bytes carry the tracking marks
    recipients: dict[str, list[mime.Party]]
    reply_to: MailMessage | None
    body_html: str  # the HTML part without tracking marks: what we store and show
    tracking: dict[str, Any]  # MailOutbound's track_opens, track_links, tracked_links
    kept: mime.Built  # the same message without the marks: stored, shown, filed in Sent


def _tracking_marks(
    draft: Draft, body_html: str, body_text: str, token: str
) -> tuple[str, str, str, dict[str, Any]]:
    """(HTML to send, the same unmarked, plain text, what is tracked) for a message's HTML
    (E1, E2; decision 0014). The HTML sent carries the open pixel and the links through our
    click endpoint (`trackmarks.mark_html`, with the message's token); the plain-text
    alternative is made from the unmarked HTML, so a reader of the text sees the real
    addresses; the copy we store and show the sender is the unmarked one, so reading it here
    never counts as an open. What is tracked is what the message carries: nothing without
    HTML (a text message has no pixel, and its links stay as written), links only when it
    has some."""
    document = mime.html_document(body_html) if body_html.strip() else ""
    if not document or not (draft.track_opens or draft.track_links):
        return (
            document,
            document,
            body_text,
            {
                "track_opens": False,
                "track_links": False,
                "tracked_links": [],
            },
        )
    marked = trackmarks.mark_html(
        document,
        base_url=settings.CRM_TRACKING_URL,
        key=trackmarks.tracking_key(settings.SECRET_KEY),
        token=token,
        opens=draft.track_opens,
        links=draft.track_links,
    )
    text = body_text or mime.html_to_text(body_html)
    return (
        marked.html,
        document,
        text,
        {
            "track_opens": draft.track_opens,
            "track_links": draft.track_links and bool(marked.links),
            "tracked_links": list(marked.links),
        },
    )


def _compose(
    membership: Membership,
    account: MailAccount,
    draft: Draft,
    *,
    message_id: str,
    token: str,
    date: datetime,
) -> _Composed:
    recipients = _recipients(draft)
    reply_to = forwarded = None
    if draft.reply_to_message_id is not None:
        reply_to = _readable_message(membership, draft.reply_to_message_id, "reply_to_message_id")
    if draft.forward_of_message_id is not None:
        forwarded = _readable_message(
            membership, draft.forward_of_message_id, "forward_of_message_id"
        )
    links_check(
        membership,
        deal_id=draft.deal_id,
        lead_id=draft.lead_id,
        project_id=draft.project_id,
        person_id=draft.person_id,
    )
    _attachments_check(account, draft.attachments)
    texts = _fill_fields(membership, draft, recipients, _template(membership, draft))
    subject, body_html, body_text = texts
    subject = mime.clean_header_text(subject)
    if not subject and reply_to is not None:
        subject = mime.reply_subject(reply_to.subject)
    elif not subject and forwarded is not None:
        subject = mime.forward_subject(forwarded.subject)
    if len(subject) > 998:
        raise ServiceError(_("The subject is too long."), field="subject")
    if not (subject or body_html.strip() or body_text.strip() or draft.attachments):
        raise ServiceError(_("The message is empty: write a subject or some text."), field="body")
    sent_html, stored_html, body_text, tracking = _tracking_marks(
        draft, body_html, body_text, token
    )
    outgoing = mime.Outgoing(
        sender=_sender(account),
        message_id=message_id,
        date=date,
        to=recipients["to"],
        cc=recipients["cc"],
        bcc=recipients["bcc"],
        subject=subject,
        body_html=sent_html,
        body_text=body_text,
        attachments=tuple(draft.attachments),
        in_reply_to=reply_to.message_id if reply_to is not None else "",
        references=(
            mime.reply_references(reply_to.message_id, reply_to.references)
            if reply_to is not None and reply_to.message_id
            else ()
        ),
    )
    built = mime.build(outgoing)
    kept = built
    if sent_html != stored_html:
        kept = mime.build(replace(outgoing, body_html=stored_html))
    return _Composed(outgoing, built, recipients, reply_to, stored_html, tracking, kept)


def _message_store(
    company_id: int, composed: _Composed, message: MailMessage | None = None
) -> MailMessage:
    """The `MailMessage` with its parties and files, as the ingest parser would read the same
    bytes (tests/inbox/test_mime.py holds the two together). Its bytes and HTML are the copy
    without tracking marks (`composed.kept`; the marked bytes go to the server only, from
    `MailOutbound.delivery_raw_path`); `message` is rewritten in place (edit and retry: same
    Message-ID, new content)."""
    outgoing, built = composed.outgoing, composed.kept
    sender = normalize_email(outgoing.sender.address)
    fields: dict[str, Any] = {
        "key": outgoing.message_id,
        "message_id": outgoing.message_id,
        "in_reply_to": outgoing.in_reply_to,
        "references": list(outgoing.references),
        "subject": outgoing.subject,
        "sent_at": outgoing.date,
        "received_at": outgoing.date,
        "from_address": sender,
        "from_name": outgoing.sender.name[:320],
        "snippet": mime.snippet(built.body_text),
        "body_text": built.body_text.replace("\x00", ""),
        "body_html": composed.body_html.replace("\x00", ""),
        "has_attachments": bool(built.attachments),
        "is_bulk": False,
        "size": len(built.raw),
        "raw_path": rawstore.raw_save(company_id, built.raw),
        "parse_error": "",
    }
    if message is None:
        message = MailMessage.objects.create(company_id=company_id, **fields)
    else:
        for name, value in fields.items():
            setattr(message, name, value)
        message.save(update_fields=list(fields))
        MailParticipant.objects.for_company(company_id).filter(message=message).delete()
        MailAttachment.objects.for_company(company_id).filter(message=message).delete()
    parties = [(ParticipantRole.FROM, outgoing.sender)] + [
        (role, party)
        for role, name in (
            (ParticipantRole.TO, "to"),
            (ParticipantRole.CC, "cc"),
            (ParticipantRole.BCC, "bcc"),
        )
        for party in composed.recipients[name]
    ]
    addresses = {normalize_email(party.address) for _, party in parties}
    persons = link_addresses(
        addresses,
        contacts_selectors.persons_by_addresses(company=company_id, addresses=addresses),
    )
    MailParticipant.objects.bulk_create(
        MailParticipant(
            company_id=company_id,
            message=message,
            role=role,
            address=normalize_email(party.address),
            name=party.name[:320],
            position=position,
            person_id=persons.get(normalize_email(party.address)),
        )
        for position, (role, party) in enumerate(parties)
    )
    MailAttachment.objects.bulk_create(
        MailAttachment(
            company_id=company_id,
            message=message,
            filename=item.filename[:1000],
            content_type=item.content_type[:255],
            size=item.size,
            kind="inline" if item.inline else "file",
            content_id=item.content_id[:998],
            part_path=item.part_path,
        )
        for item in built.attachments
    )
    return message


def _delivery_raw_path(company_id: int, composed: _Composed) -> str:
    """Where the marked bytes of a tracked message are kept for the server ("" when the
    message goes out as it is kept)."""
    if composed.built is composed.kept:
        return ""
    return rawstore.raw_save(company_id, composed.built.raw)


def _envelope_to(composed: _Composed) -> list[str]:
    return [
        mime.envelope_address(party.address)
        for name in ("to", "cc", "bcc")
        for party in composed.recipients[name]
    ]


def _links(draft: Draft) -> dict[str, Any]:
    return {
        "deal_id": draft.deal_id,
        "lead_id": draft.lead_id,
        "project_id": draft.project_id,
        "person_id": draft.person_id,
        "track_opens": draft.track_opens,
        "track_links": draft.track_links,
    }


def _queued(outbound: MailOutbound) -> None:
    hooks.publish(
        hooks.MAIL_OUTBOX_QUEUED,
        hooks.MailOutboxQueued(
            company_id=outbound.company_id,
            account_id=outbound.account_id,
            not_before=outbound.not_before or timezone.now(),
        ),
    )


# --- Services ------------------------------------------------------------------------------------


@transaction.atomic
def message_send(
    *,
    membership: Membership,
    draft: Draft,
    undo: timedelta = UNDO_SEND_WINDOW,
    now: datetime | None = None,
) -> MailOutbound:
    """Queue a message (a reply when `reply_to_message_id` is set, a forward with
    `forward_of_message_id`). It leaves after `undo` (cancel it before with
    `outbound_cancel`), or at `send_at`."""
    now = now or timezone.now()
    account = _sending_account(membership, draft.account_id)
    send_at = _send_at(draft.send_at, now)
    token, message_id = mime.new_message_id(message_id_domain())
    composed = _compose(
        membership, account, draft, message_id=message_id, token=token, date=send_at or now
    )
    message = _message_store(membership.company_id, composed)
    outbound = MailOutbound.objects.create(
        company_id=membership.company_id,
        account=account,
        message=message,
        state=OutboundState.QUEUED,
        not_before=send_at or now + undo,
        send_at=send_at,
        undo_until=None if send_at or not undo else now + undo,
        token=token,
        envelope_to=_envelope_to(composed),
        reply_to_message=composed.reply_to,
        created_by_id=membership.user_id,
        delivery_raw_path=_delivery_raw_path(membership.company_id, composed),
        **{**_links(draft), **composed.tracking},
    )
    _queued(outbound)
    return outbound


def _mine_for_update(membership: Membership, message_id: int) -> MailOutbound:
    """The outbox row of a message sent from a mailbox the user reads, locked (a worker
    claiming it waits for us, or we for it)."""
    accounts = visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
    outbound = (
        MailOutbound.objects.for_company(membership.company_id)
        .filter(message_id=message_id, account__in=accounts.values("pk"))
        .select_for_update(of=("self",))
        .select_related("account", "message")
        .first()
    )
    if outbound is None:
        raise ServiceError(_("No message with this id in your outbox."), field="id")
    return outbound


_NOT_WAITING = {
    OutboundState.SENDING: _("It is being sent right now and can no longer be stopped."),
    OutboundState.SENT: _("It was sent already."),
    OutboundState.FAILED: _("It was not sent: edit it and send it again."),
    OutboundState.UNCERTAIN: _("It may have been sent already; check, then decide."),
    OutboundState.CANCELLED: _("It was cancelled already."),
}


@transaction.atomic
def outbound_cancel(*, membership: Membership, message_id: int) -> MailOutbound:
    """Undo send, or cancel a scheduled message: only while it waits (`queued`)."""
    outbound = _mine_for_update(membership, message_id)
    if outbound.state != OutboundState.QUEUED:
        raise ServiceError(str(_NOT_WAITING[OutboundState(outbound.state)]), field="id")
    outbound.state = OutboundState.CANCELLED
    outbound.save(update_fields=["state", "updated_at"])
    return outbound


def _clear_outcome(outbound: MailOutbound) -> list[str]:
    outbound.error_kind = ""
    outbound.last_error = ""
    outbound.failed_recipients = []
    outbound.server_reply = ""
    return ["error_kind", "last_error", "failed_recipients", "server_reply"]


@transaction.atomic
def outbound_retry(
    *,
    membership: Membership,
    message_id: int,
    draft: Draft | None = None,
    undo: timedelta = timedelta(0),
    now: datetime | None = None,
) -> MailOutbound:
    """Edit and retry: a message that was not sent (failed, or cancelled) goes again, as it
    was or rewritten from `draft` (same mailbox; the Message-ID stays, as nothing left)."""
    now = now or timezone.now()
    outbound = _mine_for_update(membership, message_id)
    if outbound.state not in (OutboundState.FAILED, OutboundState.CANCELLED):
        raise ServiceError(
            _("Only a message that was not sent can be edited and sent again."), field="id"
        )
    send_at = None
    fields = _clear_outcome(outbound)
    if draft is not None:
        if draft.account_id != outbound.account_id:
            raise ServiceError(
                _("Send it again from the same mailbox, or send it as a new message."),
                field="account_id",
            )
        account = _sending_account(membership, draft.account_id)
        send_at = _send_at(draft.send_at, now)
        composed = _compose(
            membership,
            account,
            draft,
            message_id=outbound.message.message_id,
            token=outbound.token,  # marked anew with the same token, as nothing left
            date=send_at or now,
        )
        _message_store(membership.company_id, composed, outbound.message)
        chosen = {**_links(draft), **composed.tracking}
        for name, value in chosen.items():
            setattr(outbound, name, value)
        outbound.reply_to_message = composed.reply_to
        outbound.send_at = send_at
        outbound.envelope_to = _envelope_to(composed)
        outbound.delivery_raw_path = _delivery_raw_path(membership.company_id, composed)
        fields += [*chosen, "reply_to_message", "send_at", "envelope_to", "delivery_raw_path"]
    else:
        _sending_account(membership, outbound.account_id)
    outbound.state = OutboundState.QUEUED
    outbound.not_before = send_at or now + undo
    outbound.undo_until = None if send_at or not undo else now + undo
    outbound.save(update_fields=[*fields, "state", "not_before", "undo_until", "updated_at"])
    _queued(outbound)
    return outbound


@transaction.atomic
def outbound_send_again(*, membership: Membership, message_id: int) -> MailOutbound:
    """The user's answer to "it may have been sent": send it again (same Message-ID, so
    mail clients that got the first one show it once)."""
    outbound = _mine_for_update(membership, message_id)
    if outbound.state != OutboundState.UNCERTAIN:
        raise ServiceError(_("Only a message that may have been sent is asked about."), field="id")
    fields = _clear_outcome(outbound)
    outbound.state = OutboundState.QUEUED
    outbound.not_before = timezone.now()
    outbound.save(update_fields=[*fields, "state", "not_before", "updated_at"])
    _queued(outbound)
    return outbound


@transaction.atomic
def outbound_mark_sent(*, membership: Membership, message_id: int) -> MailOutbound:
    """The user's answer to "it may have been sent": it was (a recipient has it). The worker
    then files it into its conversation and the Sent folder."""
    outbound = _mine_for_update(membership, message_id)
    if outbound.state != OutboundState.UNCERTAIN:
        raise ServiceError(_("Only a message that may have been sent is asked about."), field="id")
    fields = _clear_outcome(outbound)
    now = timezone.now()
    outbound.state = OutboundState.SENT
    outbound.sent_at = outbound.last_attempt_at or now
    outbound.not_before = now
    outbound.save(update_fields=[*fields, "state", "sent_at", "not_before", "updated_at"])
    _queued(outbound)
    return outbound


# --- Reads ---------------------------------------------------------------------------------------


def access_outbound(*, membership: Membership, message_id: int) -> MailOutbound | None:
    """The outbox row of a message sent from a mailbox the user reads; None otherwise."""
    accounts = visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
    return (
        MailOutbound.objects.for_company(membership.company_id)
        .filter(message_id=message_id, account__in=accounts.values("pk"))
        .select_related("account", "message")
        .first()
    )


def outbound_read(*, membership: Membership, message_id: int) -> OutboundRead | None:
    """A message of the outbox with its send state, for whoever may read it: the users of
    the sending mailbox always; others once it is in a conversation they may see. None for
    a message that is not the outbox's (or hidden: the same answer)."""
    outbound = (
        MailOutbound.objects.for_company(membership.company_id)
        .filter(message_id=message_id)
        .select_related("account", "message")
        .first()
    )
    if outbound is None:
        return None
    found = selectors.access_message(membership=membership, message_id=message_id)
    if found is not None:
        return OutboundRead(outbound, found[0], found[1])
    if access_outbound(membership=membership, message_id=message_id) is None:
        return None
    # Not in a conversation yet (queued, failed, cancelled): the sending mailbox's stand-in.
    stand_in = MailThread(company_id=outbound.company_id, account=outbound.account)
    return OutboundRead(outbound, outbound.message, stand_in)


def outbound_list(
    *, membership: Membership, states: Sequence[str], account_id: int | None = None
) -> QuerySet[MailOutbound]:
    """The outbox of the user's mailboxes in these states (the Scheduled folder: queued;
    what needs the user: failed, uncertain), next to leave first."""
    accounts = visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
    rows = MailOutbound.objects.for_company(membership.company_id).filter(
        account__in=accounts.values("pk"), state__in=list(states)
    )
    if account_id is not None:
        rows = rows.filter(account_id=account_id)
    return rows.select_related("account", "message").order_by("not_before", "id")


def forward_attachments(*, membership: Membership, message_id: int) -> list[mime.Attachment]:
    """The files of a message the user may read, to forward with it."""
    message = _readable_message(membership, message_id, "forward_of_message_id")
    raw = rawstore.raw_read(message.raw_path) if message.raw_path else b""
    files: list[mime.Attachment] = []
    for item in MailAttachment.objects.for_company(membership.company_id).filter(message=message):
        try:
            data = bodies.part_content(raw, item.part_path, content_type=item.content_type)
        except bodies.PartMissing:
            continue
        files.append(
            mime.Attachment(
                filename=item.filename,
                content_type=item.content_type,
                data=data,
                content_id=item.content_id,
                inline=item.kind == "inline",
            )
        )
    return files


# --- The delivery's last step (mailsync.outbox) --------------------------------------------------


def outbound_links_apply(*, company_id: int, outbound: MailOutbound) -> list[int]:
    """The message is in its account's conversation now: link that conversation to the deal,
    lead or project chosen when sending (by hand, so the automatic rules leave it). Returns
    the conversations linked (none when nothing was chosen)."""
    chosen = {
        "deal_id": outbound.deal_id,
        "lead_id": outbound.lead_id,
        "project_id": outbound.project_id,
    }
    if all(value is None for value in chosen.values()):
        return []
    thread_ids = list(
        MailThreadMessage.objects.for_company(company_id)
        .filter(account_id=outbound.account_id, message_id=outbound.message_id)
        .values_list("thread_id", flat=True)
    )
    if thread_ids:
        MailThread.objects.for_company(company_id).filter(pk__in=thread_ids).update(
            **chosen, link_manual=True, updated_at=datetime.now(UTC)
        )
    return thread_ids
