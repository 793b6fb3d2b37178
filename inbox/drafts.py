"""Drafts (B5): what the composer saves as the user types, its files, and its send.

A draft lives in PostgreSQL (`MailDraft`, its files' bytes in the raw store) and is saved
leniently: a half-typed address is kept as typed, since the user is not done. Each content
save counts a `version` (two tabs of one draft: the older one's save is refused, not merged)
and asks for the draft's copy in the account's Drafts folder to be written `DEBOUNCE` after
the last save (`remote_due`), so the draft is in every other mail client too; `mailsync.drafts`
writes it (Message-ID `<token.vN.draft@domain>`: `server_message_id`) and removes it again
once the draft is sent or discarded, then the row and its files. `inbox` asks for that work
by the row and the `crm.hooks.MAIL_DRAFTS_CHANGED` hook (after commit; beat's sweeper finds
anything a lost hook missed).

Every check goes through `inbox.visibility`, `inbox.selectors` and `crm.access`: the account
must be one whose mailbox the user reads, the message replied to or forwarded one they may
read, the deal, lead, project, person and template ones they may see. A draft is its author's
alone (`access_draft`: on an account they still read). Files are refused before they are
stored when the draft's files would pass the provider's limit (`attachment_limit`).

- `draft_start`, `draft_save`, `draft_discard`, `draft_send`: the composer's life cycle.
- `draft_file_add`, `draft_file_remove`, `draft_file_read`: attachments and inline images.
- `access_draft`, `drafts_open`: reads.
- `draft_for_message`: open a message of the Drafts folder in the composer (ours, or another
  mail client's, which our first write then replaces).
- `server_copy`, `server_message_id`, `server_id_part`, `draft_token`, `draft_delete`: what
  `mailsync.drafts` needs to keep the server copy in step.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses
from typing import Final

from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from contacts.addresses import InvalidEmailAddress, normalize_email
from crm import hooks
from crm.models import Membership
from crm.services import ServiceError
from inbox import (
    bodies,
    mailtemplates,
    mime,
    rawstore,
    sanitize,
    selectors,
    sending,
    visibility,
)
from inbox.models import (
    AccountKind,
    DraftState,
    FolderRole,
    MailAccount,
    MailAttachment,
    MailDraft,
    MailDraftFile,
    MailMessage,
    MailMessageLocation,
    MailOutbound,
    MailParticipant,
    OutboundState,
    ParticipantRole,
    Provider,
)

# The server copy is written this long after the last save: typing saves every few seconds,
# the mailbox needs one write per pause, not one per save.
DEBOUNCE: Final = timedelta(seconds=20)
MEGABYTE: Final = 1024 * 1024
# What each provider accepts in one message, in files (Gmail 25 MB, Outlook 20 MB); IMAP
# accounts have their own setting (`MailAccount.send_size_limit`, default 25 MB).
PROVIDER_LIMITS: Final = {
    Provider.GMAIL: 25 * MEGABYTE,
    Provider.GRAPH: 20 * MEGABYTE,
    Provider.EWS: 20 * MEGABYTE,
}
DEFAULT_LIMIT: Final = 25 * MEGABYTE
_PROVIDER_NAMES: Final = {
    Provider.GMAIL: "Gmail",
    Provider.GRAPH: "Outlook",
    Provider.EWS: "Outlook",
}
# Bounds of what a save keeps (a lenient save still must fit the table and the page).
MAX_ADDRESSES: Final = 500
MAX_ADDRESS_LENGTH: Final = 640
MAX_BODY_LENGTH: Final = 5_000_000
_TOKEN_BYTES = 16
_SERVER_ID = re.compile(r"^([0-9a-f]{32})\.v(\d+)\.draft@", re.IGNORECASE)
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


@dataclass(frozen=True)
class DraftContent:
    """What the composer holds: the fields of `sending.Draft` as typed (addresses may be
    half-written), and the template it started from."""

    account_id: int
    to: Sequence[str] = ()
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    subject: str = ""
    body_html: str = ""
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


# --- Server copies: the ids mailsync writes and finds --------------------------------------------


def _domain() -> str:
    """The right side of our ids (`sending.message_id_domain`), as ASCII (IDNA)."""
    address = mime.envelope_address(f"x@{sending.message_id_domain().strip().lower()}")
    return address.partition("@")[2] or "localhost"


def server_message_id(token: str, version: int) -> str:
    """The Message-ID (without <>) of a draft's server copy: `<token>.v<version>.draft@domain`,
    our token marking it as ours wherever it comes back (`draft_token`)."""
    return f"{token}.v{version}.draft@{_domain()}"


def server_id_part(token: str) -> str:
    """What the Message-ID of every copy of the draft contains, whichever its version (the
    search mailsync finds them by)."""
    return f"{token}.v"


def draft_token(message_id: str) -> str | None:
    """The draft token of a Message-ID that is one of our drafts' copies, else None."""
    match = _SERVER_ID.match(message_id.strip().strip("<>"))
    return match.group(1).lower() if match else None


# --- Limits --------------------------------------------------------------------------------------


def attachment_limit(account: MailAccount) -> int:
    """The files one message of this account may carry, in bytes: Gmail 25 MB, Outlook (Graph,
    Exchange) 20 MB, an IMAP account its `send_size_limit` (25 MB unless configured)."""
    if account.provider in PROVIDER_LIMITS:
        return PROVIDER_LIMITS[Provider(account.provider)]
    return int(account.send_size_limit or DEFAULT_LIMIT)


def _size_text(size: int) -> str:
    """26 MB, 1.5 MB, 300 KB, 12 bytes."""
    if size >= MEGABYTE:
        return f"{size / MEGABYTE:.1f} MB".replace(".0 MB", " MB")
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return _("%(count)s bytes") % {"count": size}


# --- Checks --------------------------------------------------------------------------------------


def _readable_account(membership: Membership, account_id: int) -> MailAccount:
    account = (
        visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
        .filter(pk=account_id)
        .select_related("owner")
        .first()
    )
    if account is None:
        raise ServiceError(
            _("No mailbox with this id that you can write from."), field="account_id"
        )
    return account


def _readable_message(membership: Membership, message_id: int, field_name: str) -> MailMessage:
    found = selectors.access_message(membership=membership, message_id=message_id)
    if found is None:
        raise ServiceError(_("No message with this id that you can see."), field=field_name)
    return found[0]


def _addresses(values: Sequence[str], field_name: str) -> list[str]:
    """As typed (trimmed, blanks dropped): a draft keeps what is not an address yet."""
    kept = [value.strip() for value in values if value and value.strip()]
    if len(kept) > MAX_ADDRESSES:
        raise ServiceError(
            _("At most %(count)s addresses in one field.") % {"count": MAX_ADDRESSES},
            field=field_name,
        )
    too_long = next((value for value in kept if len(value) > MAX_ADDRESS_LENGTH), None)
    if too_long is not None:
        raise ServiceError(
            _("Not an email address: %(value)s…") % {"value": too_long[:60]}, field=field_name
        )
    return kept


def _content_apply(
    membership: Membership, draft: MailDraft, content: DraftContent, *, new: bool
) -> None:
    """Check what changed and copy the content onto the (unsaved) draft."""
    to = _addresses(content.to, "to")
    cc = _addresses(content.cc, "cc")
    bcc = _addresses(content.bcc, "bcc")
    if len(content.body_html) > MAX_BODY_LENGTH:
        raise ServiceError(_("The text is too long to keep as a draft."), field="body_html")
    for field_name, wanted, current in (
        ("reply_to_message_id", content.reply_to_message_id, draft.reply_to_message_id),
        ("forward_of_message_id", content.forward_of_message_id, draft.forward_of_message_id),
    ):
        if wanted is not None and (new or wanted != current):
            _readable_message(membership, wanted, field_name)
    sending.links_check(
        membership,
        deal_id=content.deal_id,
        lead_id=content.lead_id,
        project_id=content.project_id,
        person_id=content.person_id,
        kept={
            "deal_id": draft.deal_id,
            "lead_id": draft.lead_id,
            "project_id": draft.project_id,
            "person_id": draft.person_id,
        },
    )
    if content.template_id is not None and content.template_id != draft.template_id:
        template = mailtemplates.access_template(
            membership=membership, template_id=content.template_id
        )
        if template is None:
            raise ServiceError(_("No template with this id that you can use."), field="template_id")
    send_at = content.send_at
    if send_at is not None and timezone.is_naive(send_at):
        send_at = timezone.make_aware(send_at, UTC)
    draft.to, draft.cc, draft.bcc = to, cc, bcc
    # One line, as a Subject header takes it; the rest as typed.
    draft.subject = mime.clean_header_text(content.subject)[:998]
    # Shown again in our editor: cleaned as everything our users write to send (what came
    # back unchanged was cleaned when it was saved).
    if content.body_html != draft.body_html:
        draft.body_html = (
            sanitize.sanitize_authored_html(content.body_html) if content.body_html.strip() else ""
        )
    draft.reply_to_message_id = content.reply_to_message_id
    draft.forward_of_message_id = content.forward_of_message_id
    draft.deal_id = content.deal_id
    draft.lead_id = content.lead_id
    draft.project_id = content.project_id
    draft.person_id = content.person_id
    draft.template_id = content.template_id
    draft.track_opens = content.track_opens
    draft.track_links = content.track_links
    draft.send_at = send_at


_CONTENT_FIELDS = [
    "to",
    "cc",
    "bcc",
    "subject",
    "body_html",
    "reply_to_message",
    "forward_of_message",
    "deal",
    "lead",
    "project",
    "person",
    "template",
    "track_opens",
    "track_links",
    "send_at",
]


def _has_content(draft: MailDraft) -> bool:
    return bool(draft.to or draft.cc or draft.bcc or draft.subject or draft.body_html)


def _changed(draft: MailDraft) -> None:
    """Ask mailsync for the server copy's write or removal, once this commits."""
    if draft.remote_due is None:
        return
    event = hooks.MailDraftsChanged(
        company_id=draft.company_id, account_id=draft.account_id, due=draft.remote_due
    )
    transaction.on_commit(lambda: hooks.publish(hooks.MAIL_DRAFTS_CHANGED, event))


def _draft_for_update(membership: Membership, draft_id: int) -> MailDraft:
    """The user's own draft, locked (saves of two tabs take turns), still open."""
    accounts = visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
    draft = (
        MailDraft.objects.for_company(membership.company_id)
        .filter(pk=draft_id, created_by_id=membership.user_id, account__in=accounts.values("pk"))
        .select_for_update(of=("self",))
        .select_related("account")
        .first()
    )
    if draft is None:
        raise ServiceError(_("No draft with this id."), field="id")
    if draft.state == DraftState.SENT:
        raise ServiceError(_("This draft was sent already."), field="id")
    if draft.state == DraftState.DISCARDED:
        raise ServiceError(_("This draft was discarded."), field="id")
    return draft


def _new_token() -> str:
    return secrets.token_hex(_TOKEN_BYTES)


# --- Files ---------------------------------------------------------------------------------------


def _clean_filename(filename: str) -> str:
    name = re.split(r"[/\\]", filename)[-1]
    return mime.clean_header_text(name)[:255] or "attachment"


def _clean_content_type(content_type: str) -> str:
    value = content_type.split(";")[0].strip().lower()
    return value if _MEDIA_TYPE.match(value) and len(value) <= 255 else "application/octet-stream"


def _file_store(
    draft: MailDraft,
    *,
    filename: str,
    content_type: str,
    data: bytes,
    inline: bool,
    content_id: str = "",
) -> MailDraftFile:
    """The file's bytes in the raw store (content addressed: the same bytes twice are one
    stored file, released only when nothing refers to them any more), and its row."""
    if inline and not content_id:
        content_id = f"{secrets.token_hex(8)}@{_domain()}"
    return MailDraftFile.objects.create(
        company_id=draft.company_id,
        draft=draft,
        filename=_clean_filename(filename),
        content_type=_clean_content_type(content_type),
        size=len(data),
        storage_path=rawstore.raw_save(draft.company_id, data),
        inline=inline,
        content_id=content_id.strip().strip("<>")[:998],
    )


def _paths_release(company_id: int, paths: Sequence[str]) -> None:
    """Delete stored bytes nothing refers to any more, once this commits (the caller is bound
    to the company, and deleted its rows first). Content addressed: another draft's file, or
    a stored message (a forwarded .eml is one), may share the name."""
    wanted = set(paths)
    if not wanted:
        return
    held = set(
        MailDraftFile.objects.for_company(company_id)
        .filter(storage_path__in=wanted)
        .values_list("storage_path", flat=True)
    ) | set(
        MailMessage.objects.for_company(company_id)
        .filter(raw_path__in=wanted)
        .values_list("raw_path", flat=True)
    )
    unheld = sorted(wanted - held)

    def release() -> None:
        for path in unheld:
            rawstore.raw_delete(path)

    if unheld:
        transaction.on_commit(release)


def _attachments(draft: MailDraft) -> list[mime.Attachment]:
    return [
        mime.Attachment(
            filename=item.filename,
            content_type=item.content_type,
            data=rawstore.raw_read(item.storage_path),
            content_id=item.content_id,
            inline=item.inline,
        )
        for item in MailDraftFile.objects.for_company(draft.company_id)
        .filter(draft=draft)
        .order_by("pk")
    ]


# --- Services ------------------------------------------------------------------------------------


@transaction.atomic
def draft_start(*, membership: Membership, content: DraftContent) -> MailDraft:
    """A new draft of the user's, on an account whose mailbox they read. A forward starts with
    the forwarded message's files (inline images included). Its server copy is asked for once
    there is something in it."""
    account = _readable_account(membership, content.account_id)
    draft = MailDraft(
        company_id=membership.company_id,
        token=_new_token(),
        account=account,
        created_by_id=membership.user_id,
        state=DraftState.OPEN,
        version=1,
    )
    _content_apply(membership, draft, content, new=True)
    if _has_content(draft) or content.forward_of_message_id is not None:
        draft.remote_due = timezone.now() + DEBOUNCE
    draft.save()
    if content.forward_of_message_id is not None:
        for item in sending.forward_attachments(
            membership=membership, message_id=content.forward_of_message_id
        ):
            _file_store(
                draft,
                filename=item.filename,
                content_type=item.content_type,
                data=item.data,
                inline=item.inline,
                content_id=item.content_id,
            )
    _changed(draft)
    return draft


def _account_switch(draft: MailDraft, account: MailAccount) -> None:
    """The user chose another sending account: the copy in the old account's Drafts folder
    (and another client's copy the draft continued) is left to a stand-in row that removes
    it, under the draft's old token; the draft goes on under a new one."""
    touched = bool(
        draft.remote_version
        or draft.remote_tries
        or draft.remote_folder_id
        or draft.source_message_id
    )
    old_token = draft.token
    draft.token = _new_token()
    draft.save(update_fields=["token"])
    if touched:
        stand_in = MailDraft.objects.create(
            company_id=draft.company_id,
            token=old_token,
            account_id=draft.account_id,
            created_by_id=draft.created_by_id,
            state=DraftState.DISCARDED,
            version=draft.version,
            subject=draft.subject,
            source_message_id=draft.source_message_id,
            remote_version=draft.remote_version,
            remote_folder_id=draft.remote_folder_id,
            remote_uid=draft.remote_uid,
            remote_tries=draft.remote_tries,
            remote_due=timezone.now(),
        )
        _changed(stand_in)
    draft.account = account
    draft.source_message_id = None
    draft.remote_version = 0
    draft.remote_folder_id = None
    draft.remote_uid = None
    draft.remote_tries = 0
    draft.remote_error = ""


_REMOTE_FIELDS = [
    "account",
    "source_message",
    "remote_version",
    "remote_folder",
    "remote_uid",
    "remote_tries",
    "remote_error",
]


def _save(
    membership: Membership,
    draft: MailDraft,
    content: DraftContent,
    version: int | None,
) -> MailDraft:
    """Apply a save to the locked draft (see `draft_save`)."""
    if version is not None and version < draft.version:
        raise ServiceError(
            _(
                "This draft was changed in another window since you opened it. Reload it to "
                "see the latest version."
            ),
            field="version",
        )
    fields = [*_CONTENT_FIELDS, "version", "remote_due", "updated_at"]
    if content.account_id != draft.account_id:
        _account_switch(draft, _readable_account(membership, content.account_id))
        fields += _REMOTE_FIELDS
    _content_apply(membership, draft, content, new=False)
    draft.version += 1
    draft.remote_due = timezone.now() + DEBOUNCE
    draft.save(update_fields=fields)
    _changed(draft)
    return draft


@transaction.atomic
def draft_save(
    *,
    membership: Membership,
    draft_id: int,
    content: DraftContent,
    version: int | None = None,
) -> MailDraft:
    """Autosave: the content as typed (addresses too: they are checked when it is sent), a new
    `version`, and the server copy due `DEBOUNCE` from now. `version` is the one the composer
    last had: older than the stored one means another tab saved since, and the save is
    refused (field "version") rather than overwriting it. Changing the sending account moves
    the server copy to the new account's Drafts folder."""
    draft = _draft_for_update(membership, draft_id)
    return _save(membership, draft, content, version)


@transaction.atomic
def draft_file_add(
    *,
    membership: Membership,
    draft_id: int,
    filename: str,
    content_type: str,
    data: bytes,
    inline: bool = False,
) -> MailDraftFile:
    """Attach a file, or an inline image (`inline`: it gets a `content_id`, which the text
    shows as `cid:<content_id>`), unless the draft's files would pass what the account's
    provider accepts in one message (`attachment_limit`). The server copy is written again."""
    draft = _draft_for_update(membership, draft_id)
    content_type = _clean_content_type(content_type)
    if inline and not content_type.startswith("image/"):
        raise ServiceError(
            _("Only images can be placed in the text; attach %(name)s as a file instead.")
            % {"name": _clean_filename(filename)},
            field="attachments",
        )
    files = MailDraftFile.objects.for_company(membership.company_id).filter(draft=draft)
    if files.count() >= sending.MAX_ATTACHMENTS:
        raise ServiceError(
            _("At most %(count)s files per message.") % {"count": sending.MAX_ATTACHMENTS},
            field="attachments",
        )
    attached = int(files.aggregate(total=Sum("size"))["total"] or 0)
    limit = attachment_limit(draft.account)
    if attached + len(data) > limit:
        provider = _PROVIDER_NAMES.get(Provider(draft.account.provider), _("this mailbox"))
        if attached:
            message = _(
                "%(name)s (%(size)s) would bring this message's files to %(total)s, more than "
                "%(provider)s accepts in one message (%(limit)s). Remove some files, or share "
                "a link instead."
            )
        else:
            message = _(
                "%(name)s is %(size)s, more than %(provider)s accepts in one message "
                "(%(limit)s). Share a link to it instead."
            )
        raise ServiceError(
            message
            % {
                "name": _clean_filename(filename),
                "size": _size_text(len(data)),
                "total": _size_text(attached + len(data)),
                "provider": provider,
                "limit": _size_text(limit),
            },
            field="attachments",
        )
    item = _file_store(
        draft, filename=filename, content_type=content_type, data=data, inline=inline
    )
    draft.remote_due = timezone.now() + DEBOUNCE
    draft.save(update_fields=["remote_due", "updated_at"])
    _changed(draft)
    return item


@transaction.atomic
def draft_file_remove(*, membership: Membership, draft_id: int, file_id: int) -> None:
    """Take a file off the draft (its stored bytes go unless something else holds them)."""
    draft = _draft_for_update(membership, draft_id)
    item = (
        MailDraftFile.objects.for_company(membership.company_id)
        .filter(pk=file_id, draft=draft)
        .first()
    )
    if item is None:
        raise ServiceError(_("No file with this id on this draft."), field="file_id")
    path = item.storage_path
    item.delete()
    _paths_release(membership.company_id, [path])
    draft.remote_due = timezone.now() + DEBOUNCE
    draft.save(update_fields=["remote_due", "updated_at"])
    _changed(draft)


def draft_file_read(
    *, membership: Membership, draft_id: int, file_id: int
) -> tuple[MailDraftFile, bytes]:
    """A file of the user's own draft, with its bytes (to download it, or show an inline
    image in the editor)."""
    draft = access_draft(membership=membership, draft_id=draft_id)
    item = (
        MailDraftFile.objects.for_company(membership.company_id)
        .filter(pk=file_id, draft_id=draft.pk)
        .first()
        if draft is not None
        else None
    )
    if item is None:
        raise ServiceError(_("No file with this id on this draft."), field="file_id")
    return item, rawstore.raw_read(item.storage_path)


@transaction.atomic
def draft_discard(*, membership: Membership, draft_id: int) -> None:
    """Throw the draft away: its server copy is removed, then the draft and its files."""
    draft = _draft_for_update(membership, draft_id)
    draft.state = DraftState.DISCARDED
    draft.remote_due = timezone.now()
    draft.save(update_fields=["state", "remote_due", "updated_at"])
    _changed(draft)


def draft_send(
    *,
    membership: Membership,
    draft_id: int,
    content: DraftContent,
    undo: timedelta = sending.UNDO_SEND_WINDOW,
    now: datetime | None = None,
) -> MailOutbound:
    """Save the content and send it (`sending.message_send`, in the same transaction: the
    outbox row exists exactly when the draft is `sent`), with the draft's files; the server
    copy is removed. A refusal of the send (a bad address, too many files, ...) comes back as
    its ServiceError, the content saved and the draft still open."""
    refusal: ServiceError | None = None
    with transaction.atomic():
        draft = _draft_for_update(membership, draft_id)
        draft = _save(membership, draft, content, None)
        try:
            with transaction.atomic():
                outbound = sending.message_send(
                    membership=membership,
                    draft=sending.Draft(
                        account_id=draft.account_id,
                        to=list(draft.to),
                        cc=list(draft.cc),
                        bcc=list(draft.bcc),
                        subject=draft.subject,
                        body_html=draft.body_html,
                        attachments=_attachments(draft),
                        reply_to_message_id=draft.reply_to_message_id,
                        forward_of_message_id=draft.forward_of_message_id,
                        deal_id=draft.deal_id,
                        lead_id=None if draft.lead_id is None else str(draft.lead_id),
                        project_id=draft.project_id,
                        person_id=draft.person_id,
                        template_id=draft.template_id,
                        track_opens=draft.track_opens,
                        track_links=draft.track_links,
                        send_at=draft.send_at,
                    ),
                    undo=undo,
                    now=now,
                )
        except ServiceError as error:
            refusal = error
        else:
            if draft.source_message_id is not None:
                # The edit of a message that failed (`draft_from_outbound`) went out instead.
                MailOutbound.objects.for_company(draft.company_id).filter(
                    message_id=draft.source_message_id, state=OutboundState.FAILED
                ).update(state=OutboundState.CANCELLED, updated_at=timezone.now())
            draft.state = DraftState.SENT
            draft.outbound = outbound
            # Kept through the undo window, so that an undo opens it again (`draft_unsend`).
            draft.remote_due = max(timezone.now(), outbound.undo_until or timezone.now())
            draft.save(update_fields=["state", "outbound", "remote_due", "updated_at"])
            _changed(draft)
    if refusal is not None:
        raise refusal
    return outbound


@transaction.atomic
def draft_unsend(*, membership: Membership, draft_id: int, message_id: int) -> MailDraft:
    """Undo send: the message the draft became (`message_id`) is stopped while it waits
    (`sending.outbound_cancel`; refused once it is leaving or gone), and the draft is open
    again, its server copy written again."""
    accounts = visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
    draft = (
        MailDraft.objects.for_company(membership.company_id)
        .filter(
            pk=draft_id,
            created_by_id=membership.user_id,
            account__in=accounts.values("pk"),
            state=DraftState.SENT,
            outbound__message_id=message_id,
        )
        .select_for_update(of=("self",))
        .first()
    )
    if draft is None:
        raise ServiceError(_("This message can no longer be undone."), field="id")
    sending.outbound_cancel(membership=membership, message_id=message_id)
    draft.state = DraftState.OPEN
    draft.outbound = None
    draft.remote_due = timezone.now()
    draft.save(update_fields=["state", "outbound", "remote_due", "updated_at"])
    _changed(draft)
    return draft


# --- Reads ---------------------------------------------------------------------------------------


def access_draft(*, membership: Membership, draft_id: int) -> MailDraft | None:
    """The draft, for its author only, on an account whose mailbox they still read (whatever
    its state: the composer says "sent" of a sent one); None otherwise, missing or not theirs
    alike."""
    accounts = visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
    return (
        MailDraft.objects.for_company(membership.company_id)
        .filter(pk=draft_id, created_by_id=membership.user_id, account__in=accounts.values("pk"))
        .select_related("account")
        .first()
    )


def drafts_open(*, membership: Membership, account_id: int | None = None) -> QuerySet[MailDraft]:
    """The user's open drafts (of one account, or all they read), last saved first."""
    accounts = visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
    rows = MailDraft.objects.for_company(membership.company_id).filter(
        created_by_id=membership.user_id,
        state=DraftState.OPEN,
        account__in=accounts.values("pk"),
    )
    if account_id is not None:
        rows = rows.filter(account_id=account_id)
    return rows.select_related("account").order_by("-updated_at", "-pk")


def _text_as_html(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()) if p]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


@transaction.atomic
def draft_for_message(*, membership: Membership, message_id: int) -> MailDraft:
    """The draft a message of a Drafts folder is, to open it in the composer: one of ours
    (its Message-ID carries the draft's token) is that draft; one another mail client left is
    continued as a new draft of the user's (`source_message`: its recipients, subject, text,
    files and the message it answers taken over), whose first server write replaces that
    client's copy. Opening it again gives the same draft."""
    message = _readable_message(membership, message_id, "message_id")
    token = draft_token(message.message_id)
    own = (
        MailDraft.objects.for_company(membership.company_id).filter(token=token).first()
        if token
        else None
    )
    if own is not None:
        if own.created_by_id != membership.user_id:
            raise ServiceError(
                _("Someone else is writing this draft; only they can open it."), field="message_id"
            )
        if own.state != DraftState.OPEN:
            raise ServiceError(
                _("This draft was sent already.")
                if own.state == DraftState.SENT
                else _("This draft was discarded."),
                field="message_id",
            )
        found = access_draft(membership=membership, draft_id=own.pk)
        if found is None:
            raise ServiceError(_("No draft with this id."), field="message_id")
        return found
    accounts = visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
    location = (
        MailMessageLocation.objects.for_company(membership.company_id)
        .filter(
            message=message,
            account__in=accounts.values("pk"),
            folder__role=FolderRole.DRAFTS,
            folder__removed_at__isnull=True,
        )
        .order_by("account_id", "pk")
        .first()
    )
    if location is None:
        raise ServiceError(_("This message is not a draft."), field="message_id")
    # Closed ones stay only until their server copies are gone: then this copy is too.
    continued = (
        MailDraft.objects.for_company(membership.company_id)
        .filter(source_message=message, account_id=location.account_id)
        .order_by("-pk")
        .first()
    )
    if continued is not None:
        if continued.created_by_id != membership.user_id:
            raise ServiceError(
                _("Someone else is writing this draft; only they can open it."), field="message_id"
            )
        if continued.state != DraftState.OPEN:
            raise ServiceError(_("This draft was sent or discarded already."), field="message_id")
        return continued
    return _continue(membership, message, location.account_id)


def _recipients_of(company_id: int, message: MailMessage) -> dict[str, list[str]]:
    """A message's to, cc and bcc as the composer's fields hold them."""
    parties: dict[str, list[str]] = {"to": [], "cc": [], "bcc": []}
    roles = {ParticipantRole.TO: "to", ParticipantRole.CC: "cc", ParticipantRole.BCC: "bcc"}
    for role, address, name in (
        MailParticipant.objects.for_company(company_id)
        .filter(message=message, role__in=list(roles))
        .order_by("position", "pk")
        .values_list("role", "address", "name")
    ):
        parties[roles[ParticipantRole(role)]].append(mime.party_text(name, address))
    return parties


def _continue(membership: Membership, message: MailMessage, account_id: int) -> MailDraft:
    """A new draft continuing another client's (see `draft_for_message`)."""
    parties = _recipients_of(membership.company_id, message)
    reply_to = None
    parent_id = message.in_reply_to.strip().strip("<>")
    if parent_id:
        for candidate in (
            MailMessage.objects.for_company(membership.company_id)
            .filter(message_id=parent_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:5]
        ):
            if selectors.access_message(membership=membership, message_id=candidate):
                reply_to = candidate
                break
    body = message.body_html if message.body_html.strip() else _text_as_html(message.body_text)
    draft = MailDraft(
        company_id=membership.company_id,
        token=_new_token(),
        account_id=account_id,
        created_by_id=membership.user_id,
        state=DraftState.OPEN,
        version=1,
        to=parties["to"][:MAX_ADDRESSES],
        cc=parties["cc"][:MAX_ADDRESSES],
        bcc=parties["bcc"][:MAX_ADDRESSES],
        subject=mime.clean_header_text(message.subject)[:998],
        body_html=sanitize.sanitize_authored_html(body) if body.strip() else "",
        reply_to_message_id=reply_to,
        source_message=message,
    )
    draft.save()
    for item in sending.forward_attachments(membership=membership, message_id=message.pk):
        _file_store(
            draft,
            filename=item.filename,
            content_type=item.content_type,
            data=item.data,
            inline=item.inline,
            content_id=item.content_id,
        )
    return draft


@transaction.atomic
def draft_from_outbound(*, membership: Membership, message_id: int) -> MailDraft:
    """Edit a message that did not leave (failed, or cancelled: undone, or a scheduled one
    stopped to change it) in the composer. The draft it was sent from opens again when it is
    still there; otherwise a new draft takes the message over (recipients, subject, text,
    files, links, tracking, a send time still ahead). Sending the draft queues a new message
    and cancels the failed one, so the outbox stops asking about it. Opening it again gives
    the same draft."""
    accounts = visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
    outbound = (
        MailOutbound.objects.for_company(membership.company_id)
        .filter(message_id=message_id, account__in=accounts.values("pk"))
        .select_for_update(of=("self",))
        .select_related("message")
        .first()
    )
    if outbound is None:
        raise ServiceError(_("No message with this id in your outbox."), field="id")
    if outbound.state not in (OutboundState.FAILED, OutboundState.CANCELLED):
        raise ServiceError(
            _("Only a message that was not sent can be edited; stop it first."), field="id"
        )
    mine = MailDraft.objects.for_company(membership.company_id).filter(
        created_by_id=membership.user_id, account__in=accounts.values("pk")
    )
    sent_from = mine.filter(state=DraftState.SENT, outbound=outbound).first()
    if sent_from is not None:
        sent_from.state = DraftState.OPEN
        sent_from.outbound = None
        sent_from.source_message_id = message_id  # a failed one is cancelled when it goes
        sent_from.remote_due = timezone.now()
        sent_from.save(
            update_fields=["state", "outbound", "source_message", "remote_due", "updated_at"]
        )
        _changed(sent_from)
        return sent_from
    taken = mine.filter(state=DraftState.OPEN, source_message_id=message_id).first()
    if taken is not None:
        return taken
    message = outbound.message
    parties = _recipients_of(membership.company_id, message)
    body = message.body_html if message.body_html.strip() else _text_as_html(message.body_text)
    send_at = outbound.send_at if outbound.send_at and outbound.send_at > timezone.now() else None
    draft = MailDraft(
        company_id=membership.company_id,
        token=_new_token(),
        account_id=outbound.account_id,
        created_by_id=membership.user_id,
        state=DraftState.OPEN,
        version=1,
        to=parties["to"][:MAX_ADDRESSES],
        cc=parties["cc"][:MAX_ADDRESSES],
        bcc=parties["bcc"][:MAX_ADDRESSES],
        subject=mime.clean_header_text(message.subject)[:998],
        body_html=_body_of_sent(body),
        reply_to_message_id=outbound.reply_to_message_id,
        deal_id=outbound.deal_id,
        lead_id=outbound.lead_id,
        project_id=outbound.project_id,
        person_id=outbound.person_id,
        track_opens=outbound.track_opens,
        track_links=outbound.track_links,
        send_at=send_at,
        source_message=message,  # in no Drafts folder: nothing of it to replace on the server
        remote_due=timezone.now() + DEBOUNCE,
    )
    draft.save()
    raw = rawstore.raw_read(message.raw_path) if message.raw_path else b""
    for item in MailAttachment.objects.for_company(membership.company_id).filter(message=message):
        try:
            data = bodies.part_content(raw, item.part_path, content_type=item.content_type)
        except bodies.PartMissing:
            continue
        _file_store(
            draft,
            filename=item.filename,
            content_type=item.content_type,
            data=data,
            inline=item.kind == "inline",
            content_id=item.content_id,
        )
    _changed(draft)
    return draft


_BODY = re.compile(r"<body\b[^>]*>(.*)</body>", re.IGNORECASE | re.DOTALL)


def _body_of_sent(body: str) -> str:
    """The editable part of a message we built (`inbox.mime` wraps it in a whole document)."""
    found = _BODY.search(body)
    inner = found.group(1) if found else body
    return sanitize.sanitize_authored_html(inner.strip()) if inner.strip() else ""


# --- For mailsync.drafts: the server copy, and the row's end -------------------------------------


def _copy_parties(values: Sequence[str]) -> list[mime.Party]:
    """The addresses of a field that are addresses (a half-typed one is left out of the copy;
    the draft keeps it)."""
    parties: list[mime.Party] = []
    for value in values:
        for name, address in getaddresses([value]):
            address = address.strip()
            if not address or not address.partition("@")[0].isascii():
                continue
            try:
                normalize_email(address)
                Address(addr_spec=mime.envelope_address(address))
            except (InvalidEmailAddress, HeaderParseError, ValueError, IndexError):
                continue
            parties.append(mime.Party(address=address, name=mime.clean_header_text(name)))
    return parties


def server_copy(*, draft: MailDraft, date: datetime) -> bytes:
    """The draft as the message its server copy is: sender, the recipients that are addresses,
    subject, text, files and inline images, the threading headers of a reply; Message-ID
    `server_message_id(token, version)`. The caller is bound to the company."""
    account = (
        MailAccount.objects.for_company(draft.company_id)
        .select_related("owner")
        .get(pk=draft.account_id)
    )
    name = account.display_name
    if not name and account.kind == AccountKind.PERSONAL:
        name = account.owner.name
    reply_to = (
        MailMessage.objects.for_company(draft.company_id)
        .filter(pk=draft.reply_to_message_id)
        .first()
        if draft.reply_to_message_id
        else None
    )
    outgoing = mime.Outgoing(
        sender=mime.Party(address=account.email_address, name=name),
        message_id=server_message_id(draft.token, draft.version),
        date=date,
        to=_copy_parties(draft.to),
        cc=_copy_parties(draft.cc),
        bcc=_copy_parties(draft.bcc),
        subject=draft.subject,
        body_html=draft.body_html,
        attachments=tuple(_attachments(draft)),
        in_reply_to=reply_to.message_id if reply_to is not None else "",
        references=(
            mime.reply_references(reply_to.message_id, reply_to.references)
            if reply_to is not None and reply_to.message_id
            else ()
        ),
    )
    return mime.build(outgoing).raw


def draft_delete(*, company_id: int, draft_id: int) -> None:
    """The end of a sent or discarded draft, once its server copy is gone: the row, its files,
    and their stored bytes that nothing else holds. The caller is bound to the company."""
    files = MailDraftFile.objects.for_company(company_id).filter(draft_id=draft_id)
    paths = list(files.values_list("storage_path", flat=True))
    files.delete()
    MailDraft.objects.for_company(company_id).filter(pk=draft_id).delete()
    _paths_release(company_id, paths)
