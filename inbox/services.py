"""Changes to conversations and their rules, made by users (C3, C5, D3). Each checks the user
may act (`inbox.visibility.can_manage`) and raises `ServiceError` naming the field otherwise.

- `thread_update`: link or move a conversation to a deal, lead or project (or none: a choice by
  hand the automatic rules then leave alone), its sharing, read and archived state.
- `block_add`, `block_remove`: the company's and each user's blocked addresses and domains.
- `account_sharing_apply`: give every conversation of an account its default sharing, when the
  user asks for it (changing the default alone rewrites nothing).
- `threads_apply`, `threads_undo`: archive, delete, read / unread from the Sales Inbox (B7, B9),
  carried out in the mailbox too when the account's two-way sync is on (A5: `MailAction` rows
  that mailsync executes after the undo window), and undone.
- `labels_set`, `label_save`, `label_remove`: labels on conversations (B2).
- `view_save`, `view_delete`: a user's saved views of the Sales Inbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from contacts.addresses import InvalidEmailAddress, normalize_email
from contacts.models import Person
from crm import access, hooks
from crm import services as crm_services
from crm.models import Label, LabelKind, Membership
from crm.sales.models import Deal, Lead, Project
from crm.services import ServiceError
from inbox import linking, visibility
from inbox.models import (
    SHARING_BY_KIND,
    ActionKind,
    ActionState,
    BlockedAddress,
    MailAccount,
    MailAction,
    MailMessage,
    MailThread,
    MailThreadLabel,
    MailThreadMessage,
    MailView,
    RemoteImagesAllowed,
    Sharing,
)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


@dataclass(frozen=True)
class ThreadChanges:
    """What `thread_update` changes; UNSET leaves a part as it is. At most one of deal, lead
    and project is set to an id; setting one to None unlinks it."""

    deal_id: int | _Unset | None = UNSET
    lead_id: str | _Unset | None = UNSET
    project_id: int | _Unset | None = UNSET
    sharing: str | _Unset = UNSET
    read: bool | _Unset = UNSET
    archived: bool | _Unset = UNSET


def require_visible_item(
    membership: Membership,
    model: type[Deal] | type[Lead] | type[Project] | type[Person],
    item_id: object,
    field: str,
    noun: str,
) -> None:
    """A ServiceError naming `field` unless the member may see that live item (links made by
    hand here, and the items a message is sent for in `inbox.sending`)."""
    live: QuerySet[Any] = model.objects.for_company(membership.company_id).filter(
        deleted_at__isnull=True
    )
    try:
        access.access_item(live, membership=membership, item_id=item_id)
    except (access.ItemNotFound, access.ItemForbidden):
        raise ServiceError(
            _("No %(noun)s with this id that you can see.") % {"noun": noun}, field=field
        ) from None


@transaction.atomic
def thread_update(
    *, membership: Membership, thread: MailThread, changes: ThreadChanges
) -> MailThread:
    if not visibility.can_manage(membership=membership, thread=thread):
        raise ServiceError(
            _("Only the users of this conversation's mailbox can change it."), field="id"
        )
    fields: list[str] = []
    links = {
        name: value
        for name, value in (
            ("deal_id", changes.deal_id),
            ("lead_id", changes.lead_id),
            ("project_id", changes.project_id),
        )
        if not isinstance(value, _Unset)
    }
    if links:
        chosen = [name for name, value in links.items() if value is not None]
        if len(chosen) > 1:
            raise ServiceError(
                _("Link a conversation to one deal, lead or project at a time."), field=chosen[1]
            )
        if changes.deal_id is not None and not isinstance(changes.deal_id, _Unset):
            require_visible_item(membership, Deal, changes.deal_id, "deal_id", _("deal"))
        if changes.lead_id is not None and not isinstance(changes.lead_id, _Unset):
            require_visible_item(membership, Lead, changes.lead_id, "lead_id", _("lead"))
        if changes.project_id is not None and not isinstance(changes.project_id, _Unset):
            require_visible_item(
                membership, Project, changes.project_id, "project_id", _("project")
            )
        # Linking to one item replaces the others; unlinking clears what was named. Either
        # way the choice is the user's now: the automatic rules leave it alone.
        for name in ("deal_id", "lead_id", "project_id"):
            if chosen:
                setattr(thread, name, links[name] if name == chosen[0] else None)
            elif name in links:
                setattr(thread, name, None)
        thread.link_manual = True
        fields += ["deal_id", "lead_id", "project_id", "link_manual"]
    if not isinstance(changes.sharing, _Unset):
        account = MailAccount.objects.for_company(membership.company_id).get(pk=thread.account_id)
        allowed = SHARING_BY_KIND[account.kind]
        if changes.sharing not in allowed:
            raise ServiceError(
                _("A %(kind)s account's conversations are one of: %(choices)s.")
                % {
                    "kind": account.get_kind_display().lower(),
                    "choices": ", ".join(
                        str(Sharing(c).label) for c in SHARING_BY_KIND[account.kind]
                    ),
                },
                field="sharing",
            )
        thread.sharing = changes.sharing
        fields.append("sharing")
    if not isinstance(changes.archived, _Unset):
        thread.archived = changes.archived
        fields.append("archived")
    if not isinstance(changes.read, _Unset):
        _read_set(thread, read=changes.read)
        thread.is_unread = not changes.read
        fields.append("is_unread")
    if fields:
        thread.save(update_fields=[*fields, "updated_at"])
    return thread


@transaction.atomic
def thread_delete(*, membership: Membership, thread: MailThread) -> None:
    """Mark the conversation deleted in our mailbox (it leaves every folder and item)."""
    if not visibility.can_manage(membership=membership, thread=thread):
        raise ServiceError(
            _("Only the users of this conversation's mailbox can change it."), field="id"
        )
    thread.deleted = True
    thread.save(update_fields=["deleted", "updated_at"])


def _read_set(thread: MailThread, *, read: bool) -> None:
    """Mark the account's copies of the thread's messages read (\\Seen) or unread, here. The
    mailbox on the server follows with two-way sync (A5)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE inbox_mailmessagelocation l
            SET flags = CASE WHEN %(read)s
                             THEN array_append(array_remove(l.flags, '\\Seen'), '\\Seen')
                             ELSE array_remove(l.flags, '\\Seen') END
            FROM inbox_mailthreadmessage tm
            WHERE tm.company_id = %(company)s AND tm.thread_id = %(thread)s
              AND l.company_id = %(company)s AND l.account_id = tm.account_id
              AND l.message_id = tm.message_id
            """,
            {"read": read, "company": thread.company_id, "thread": thread.pk},
        )
        cursor.execute(
            "UPDATE inbox_mailthreadmessage SET is_unread = %s "
            "WHERE company_id = %s AND thread_id = %s",
            [not read, thread.company_id, thread.pk],
        )


# --- Blocked addresses (C5) ---------------------------------------------------------------------


def block_value_normalize(value: str) -> str:
    """`Name@Example.COM` → `name@example.com`; `@Example.com` or `example.com` → `@example.com`.
    ServiceError on anything else."""
    text = value.strip()
    if not text:
        raise ServiceError(_("Enter an email address or a domain."), field="value")
    if "@" not in text or text.startswith("@"):
        domain = text.lstrip("@")
        try:
            normalized = normalize_email(f"x@{domain}")
        except InvalidEmailAddress:
            raise ServiceError(
                _("“%(value)s” is not an email address or a domain.") % {"value": value},
                field="value",
            ) from None
        return "@" + normalized.partition("@")[2]
    try:
        return normalize_email(text)
    except InvalidEmailAddress:
        raise ServiceError(
            _("“%(value)s” is not an email address or a domain.") % {"value": value},
            field="value",
        ) from None


@transaction.atomic
def block_add(*, membership: Membership, value: str, company_wide: bool) -> BlockedAddress:
    """Block an address or a domain: for the whole company (admins only) or for the user's own
    accounts. Matching conversations disappear everywhere at once."""
    if company_wide and not membership.is_admin:
        raise ServiceError(_("Only admins can block addresses for the whole company."))
    normalized = block_value_normalize(value)
    try:
        with transaction.atomic():
            block = BlockedAddress.objects.create(
                company_id=membership.company_id,
                user_id=None if company_wide else membership.user_id,
                value=normalized,
                created_by_id=membership.user_id,
            )
    except IntegrityError:
        raise ServiceError(
            _("%(value)s is already blocked.") % {"value": normalized}, field="value"
        ) from None
    linking.blocks_applied(company_id=membership.company_id, values=[normalized])
    return block


@transaction.atomic
def block_remove(*, membership: Membership, block_id: int) -> None:
    """Unblock: the conversations show again, from the mail already stored."""
    block = BlockedAddress.objects.for_company(membership.company_id).filter(pk=block_id).first()
    if block is None or (block.user_id is None and not membership.is_admin):
        raise ServiceError(_("No such blocked address."), field="id")
    if block.user_id is not None and block.user_id != membership.user_id:
        raise ServiceError(_("No such blocked address."), field="id")
    value = block.value
    block.delete()
    linking.blocks_applied(company_id=membership.company_id, values=[value])


# --- Account defaults (D3) ----------------------------------------------------------------------


@transaction.atomic
def account_sharing_apply(*, membership: Membership, account: MailAccount) -> int:
    """Give every conversation of the account its default sharing (the user asked for it in
    bulk); return how many changed."""
    if account.company_id != membership.company_id or account.owner_id != membership.user_id:
        raise ServiceError(_("Only the owner of this mailbox can change all its conversations."))
    return (
        MailThread.objects.for_company(membership.company_id)
        .filter(account_id=account.pk)
        .exclude(sharing=account.default_sharing)
        .update(sharing=account.default_sharing)
    )


# --- The Sales Inbox: archive, delete, read / unread, with undo (B7, B9, A5) --------------------


class MailboxOp(StrEnum):
    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"
    DELETE = "delete"
    RESTORE = "restore"
    READ = "read"
    UNREAD = "unread"


INVERSE: Final = {
    MailboxOp.ARCHIVE: MailboxOp.UNARCHIVE,
    MailboxOp.UNARCHIVE: MailboxOp.ARCHIVE,
    MailboxOp.DELETE: MailboxOp.RESTORE,
    MailboxOp.RESTORE: MailboxOp.DELETE,
    MailboxOp.READ: MailboxOp.UNREAD,
    MailboxOp.UNREAD: MailboxOp.READ,
}
# How long "Undo" can still stop a change before it reaches the mailbox on the server.
UNDO_WINDOW: Final = timedelta(seconds=10)


@dataclass(frozen=True)
class Applied:
    """What `threads_apply` did: the conversations it changed and the provider actions it
    queued (for `threads_undo`)."""

    op: MailboxOp
    thread_ids: list[int]
    action_ids: list[int]


def _managed_for_update(membership: Membership, thread_ids: Sequence[int]) -> list[MailThread]:
    threads = list(
        visibility.mailbox_threads(membership=membership)
        .filter(pk__in=list(thread_ids))
        .select_related("account")
        .select_for_update(of=("self",))
        .order_by("pk")
    )
    if not threads:
        raise ServiceError(_("No conversation of your mailbox was chosen."), field="thread_ids")
    return threads


def _queue_actions(
    membership: Membership, threads: list[MailThread], op: MailboxOp, *, delay: bool
) -> list[int]:
    """A5: one `MailAction` per conversation of a two-way account, holding its messages."""
    two_way = [thread for thread in threads if thread.account.two_way_sync]
    if not two_way:
        return []
    messages: dict[int, list[int]] = {}
    rows = MailThreadMessage.objects.for_company(membership.company_id).filter(
        thread_id__in=[thread.pk for thread in two_way]
    )
    for thread_id, message_id in rows.values_list("thread_id", "message_id").order_by("pk"):
        messages.setdefault(thread_id, []).append(message_id)
    run_after = timezone.now() + (UNDO_WINDOW if delay else timedelta(0))
    created = MailAction.objects.bulk_create(
        MailAction(
            company_id=membership.company_id,
            account_id=thread.account_id,
            thread_id=thread.pk,
            kind=ActionKind(op.value),
            message_ids=messages.get(thread.pk, []),
            run_after=run_after,
            created_by_id=membership.user_id,
        )
        for thread in two_way
        if messages.get(thread.pk)
    )
    if created:
        hooks.publish(
            hooks.MAIL_ACTIONS_QUEUED,
            hooks.MailActionsQueued(company_id=membership.company_id, run_after=run_after),
        )
    return [action.pk for action in created]


def _apply_locally(company_id: int, threads: list[MailThread], op: MailboxOp) -> None:
    ids = [thread.pk for thread in threads]
    rows = MailThread.objects.for_company(company_id).filter(pk__in=ids)
    now = timezone.now()
    if op in (MailboxOp.ARCHIVE, MailboxOp.UNARCHIVE):
        rows.update(archived=op == MailboxOp.ARCHIVE, updated_at=now)
    elif op in (MailboxOp.DELETE, MailboxOp.RESTORE):
        rows.update(deleted=op == MailboxOp.DELETE, updated_at=now)
    else:
        for thread in threads:
            _read_set(thread, read=op == MailboxOp.READ)
        rows.update(is_unread=op == MailboxOp.UNREAD, updated_at=now)


@transaction.atomic
def threads_apply(
    *, membership: Membership, thread_ids: Sequence[int], op: MailboxOp, undoable: bool = True
) -> Applied:
    """Archive, delete, restore or mark read / unread conversations of the user's mailbox, here
    at once and, for two-way accounts, in the mailbox after the undo window (`undoable`; a
    conversation marked read by opening it goes at once)."""
    threads = _managed_for_update(membership, thread_ids)
    _apply_locally(membership.company_id, threads, op)
    action_ids = _queue_actions(membership, threads, op, delay=undoable)
    return Applied(op, [thread.pk for thread in threads], action_ids)


@transaction.atomic
def threads_undo(*, membership: Membership, applied: Applied) -> Applied:
    """Undo `applied`: its queued mailbox actions that have not run are cancelled (the server
    never sees them); for the rest the inverse is queued. Waits for an action being carried
    out right now (its row is locked) rather than racing it."""
    threads = _managed_for_update(membership, applied.thread_ids)
    pending = (
        MailAction.objects.for_company(membership.company_id)
        .filter(pk__in=applied.action_ids)
        .select_for_update()
    )
    cancelled_threads = {
        action.thread_id for action in pending if action.state == ActionState.PENDING
    }
    MailAction.objects.for_company(membership.company_id).filter(
        pk__in=applied.action_ids, state=ActionState.PENDING
    ).update(state=ActionState.CANCELLED, done_at=timezone.now())
    inverse = INVERSE[applied.op]
    _apply_locally(membership.company_id, threads, inverse)
    reached_server = [thread for thread in threads if thread.pk not in cancelled_threads]
    action_ids = _queue_actions(membership, reached_server, inverse, delay=False)
    return Applied(inverse, [thread.pk for thread in threads], action_ids)


# --- Labels on conversations (B2) ---------------------------------------------------------------


def _mail_label(membership: Membership, label_id: int) -> Label:
    label = (
        Label.objects.for_company(membership.company_id)
        .filter(pk=label_id, kind=LabelKind.MAIL_THREAD)
        .first()
    )
    if label is None:
        raise ServiceError(_("No such label."), field="label_id")
    return label


@transaction.atomic
def labels_set(
    *, membership: Membership, thread_ids: Sequence[int], label_id: int, on: bool
) -> list[int]:
    """Put a label on conversations of the user's mailbox, or take it off; the ids changed."""
    label = _mail_label(membership, label_id)
    threads = _managed_for_update(membership, thread_ids)
    ids = [thread.pk for thread in threads]
    rows = MailThreadLabel.objects.for_company(membership.company_id)
    if on:
        rows.bulk_create(
            [
                MailThreadLabel(company_id=membership.company_id, thread_id=pk, label=label)
                for pk in ids
            ],
            ignore_conflicts=True,
        )
    else:
        rows.filter(thread_id__in=ids, label=label).delete()
    return ids


def label_save(
    *, membership: Membership, name: str, color: str, label_id: int | None = None
) -> Label:
    """Create a conversation label, or rename / recolour one. Labels are the company's."""
    clean = name.strip()
    if not clean:
        raise ServiceError(_("Give the label a name."), field="name")
    existing = Label.objects.for_company(membership.company_id).filter(
        kind=LabelKind.MAIL_THREAD, name__iexact=clean
    )
    if label_id is not None:
        existing = existing.exclude(pk=label_id)
    if existing.exists():
        raise ServiceError(_("A label with this name exists."), field="name")
    if label_id is None:
        return crm_services.label_create(
            company=membership.company, kind=LabelKind.MAIL_THREAD, name=clean, color=color
        )
    label = _mail_label(membership, label_id)
    return crm_services.label_update(
        company=membership.company, label=label, name=clean, color=color
    )


def label_remove(*, membership: Membership, label_id: int) -> None:
    """Delete a conversation label: it leaves every conversation."""
    crm_services.label_delete(company=membership.company, label=_mail_label(membership, label_id))


# --- Saved views -----------------------------------------------------------------------------


VIEWS_PER_USER: Final = 50


@transaction.atomic
def view_save(*, membership: Membership, name: str, folder: str, query: str) -> MailView:
    """Save the folder and query under a name, for this user; the same name replaces it."""
    clean = name.strip()
    if not clean:
        raise ServiceError(_("Give the view a name."), field="name")
    if len(clean) > 100:
        raise ServiceError(_("Keep the name under 100 characters."), field="name")
    if len(query) > 1000:
        raise ServiceError(_("The search is too long to save."), field="query")
    views = MailView.objects.for_company(membership.company_id).filter(user_id=membership.user_id)
    view: MailView | None = views.filter(name__iexact=clean).first()
    if view is None:
        if views.count() >= VIEWS_PER_USER:
            raise ServiceError(
                _("You have %(count)d saved views; delete one first.") % {"count": VIEWS_PER_USER},
                field="name",
            )
        view = MailView(company_id=membership.company_id, user_id=membership.user_id)
    view.name, view.folder, view.query = clean, folder, query.strip()
    view.save()
    return view


def view_delete(*, membership: Membership, view_id: int) -> None:
    deleted, _rows = (
        MailView.objects.for_company(membership.company_id)
        .filter(pk=view_id, user_id=membership.user_id)
        .delete()
    )
    if not deleted:
        raise ServiceError(_("No such view."), field="id")


# --- Remote images in message bodies ----------------------------------------------------------


def remote_images_allow(*, membership: Membership, message: MailMessage, sender: bool) -> None:
    """Show remote images, through our proxy, in this message for this user; with `sender`,
    in every message from its sender (a normalized address). The caller read the message
    through `inbox.selectors.access_message` and checked that it has a sender if `sender`."""
    RemoteImagesAllowed.objects.get_or_create(
        company_id=membership.company_id,
        user_id=membership.user_id,
        sender=message.from_address if sender else "",
        message=None if sender else message,
    )
