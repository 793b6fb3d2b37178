"""Changes to conversations and their rules, made by users (C3, C5, D3). Each checks the user
may act (`inbox.visibility.can_manage`) and raises `ServiceError` naming the field otherwise.

- `thread_update`: link or move a conversation to a deal, lead or project (or none: a choice by
  hand the automatic rules then leave alone), its sharing, read and archived state.
- `block_add`, `block_remove`: the company's and each user's blocked addresses and domains.
- `account_sharing_apply`: give every conversation of an account its default sharing, when the
  user asks for it (changing the default alone rewrites nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from contacts.addresses import InvalidEmailAddress, normalize_email
from crm import access
from crm.models import Membership
from crm.sales.models import Deal, Lead, Project
from crm.services import ServiceError
from inbox import linking, visibility
from inbox.models import (
    SHARING_BY_KIND,
    BlockedAddress,
    MailAccount,
    MailThread,
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


def _item(
    membership: Membership,
    model: type[Deal] | type[Lead] | type[Project],
    item_id: object,
    field: str,
    noun: str,
) -> None:
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
            _item(membership, Deal, changes.deal_id, "deal_id", _("deal"))
        if changes.lead_id is not None and not isinstance(changes.lead_id, _Unset):
            _item(membership, Lead, changes.lead_id, "lead_id", _("lead"))
        if changes.project_id is not None and not isinstance(changes.project_id, _Unset):
            _item(membership, Project, changes.project_id, "project_id", _("project"))
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
