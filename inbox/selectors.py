"""Reads of the mail domain. Every function starts from `inbox.visibility`, so nothing here can
show a conversation its reader may not see."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from contacts.models import Person
from crm import access
from crm.models import Company, Label, LabelKind, Membership
from crm.sales.models import Deal, DealStatus
from inbox import visibility
from inbox.models import (
    BlockedAddress,
    FolderRole,
    MailAccount,
    MailAttachment,
    MailCounter,
    MailFolder,
    MailMessage,
    MailMessageLocation,
    MailParticipant,
    MailThread,
    MailThreadLabel,
    MailThreadMessage,
    MailView,
)

# The folders of Pipedrive's mailbox API and which of our folder roles each shows.
API_FOLDERS = ("inbox", "drafts", "sent", "archive")


def thread_list(
    *, membership: Membership, folder: str, account_id: int | None = None
) -> QuerySet[MailThread]:
    """The user's conversations in one folder of their mailbox, newest activity first.

    inbox: in an inbox folder and not archived or deleted; sent and drafts: with a message in
    such a folder; archive: archived here, or only in archive folders on the server."""
    threads = visibility.mailbox_threads(membership=membership).filter(deleted=False)
    if account_id is not None:
        threads = threads.filter(account_id=account_id)
    if folder == "inbox":
        threads = threads.filter(folder_roles__contains=[FolderRole.INBOX], archived=False)
    elif folder == "archive":
        threads = threads.filter(
            Q(archived=True)
            | (
                Q(folder_roles__overlap=[FolderRole.ARCHIVE, FolderRole.ALL])
                & ~Q(folder_roles__contains=[FolderRole.INBOX])
            )
        )
    elif folder == "sent":
        threads = threads.filter(folder_roles__contains=[FolderRole.SENT])
    elif folder == "drafts":
        threads = threads.filter(folder_roles__contains=[FolderRole.DRAFTS])
    else:
        raise ValueError(folder)
    return threads.order_by("-last_message_at", "-id")


def access_thread(*, membership: Membership, thread_id: int) -> MailThread | None:
    """The thread if the user may see it; None when it is missing or hidden (same answer)."""
    return (
        visibility.visible_threads(membership=membership)
        .filter(pk=thread_id)
        .select_related("account", "deal")
        .first()
    )


def access_mailbox_thread(*, membership: Membership, thread_id: int) -> MailThread | None:
    """The thread if it is in the user's own mailbox (the Sales Inbox reads only those)."""
    return (
        visibility.mailbox_threads(membership=membership)
        .filter(pk=thread_id)
        .select_related("account", "deal", "lead", "project")
        .first()
    )


def access_message(
    *, membership: Membership, message_id: int
) -> tuple[MailMessage, MailThread] | None:
    """The message and the conversation holding it that the user reads it in: their own
    mailbox's copy first, else a shared copy on an item they may see."""
    held = (
        MailThreadMessage.objects.for_company(membership.company_id)
        .filter(message_id=message_id)
        .values_list("thread_id", flat=True)
    )
    thread_ids = list(held)  # a message is in one thread per account: a handful
    for threads in (
        visibility.mailbox_threads(membership=membership),
        visibility.visible_threads(membership=membership),
    ):
        thread = (
            threads.filter(pk__in=thread_ids)
            .select_related("account", "deal")
            .order_by("pk")
            .first()
        )
        if thread is not None:
            message = MailMessage.objects.for_company(membership.company_id).get(pk=message_id)
            return message, thread
    return None


# --- Items' Email tabs (C4) ---------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationPage:
    threads: list[MailThread]  # newest activity first
    total: int  # conversations on the item in all


def item_conversations(
    *, membership: Membership, kind: str, item_id: int | str, offset: int = 0, limit: int = 20
) -> ConversationPage:
    """A page of the conversations on an item's Email tab, each once (the member's own copy
    first), newest activity first, and how many there are."""
    ids, total = visibility.item_thread_page(
        membership=membership, kind=kind, item_id=item_id, offset=offset, limit=limit
    )
    found = (
        MailThread.objects.for_company(membership.company_id)
        .filter(pk__in=ids)
        .select_related("account", "deal", "lead", "project")
        .in_bulk()
    )
    return ConversationPage([found[pk] for pk in ids if pk in found], total)


def item_messages(
    *, membership: Membership, kind: str, item_id: int | str
) -> QuerySet[MailMessage]:
    """The messages of the conversations on an item's Email tab, each once, newest first
    (`GET /persons/{id}/mailMessages`)."""
    threads = visibility.item_threads(membership=membership, kind=kind, item_id=item_id)
    held = MailThreadMessage.objects.for_company(membership.company_id).filter(
        thread__in=threads.values("pk")
    )
    return (
        MailMessage.objects.for_company(membership.company_id)
        .filter(pk__in=held.values("message_id"))
        .order_by("-received_at", "-id")
    )


def messages_threads(
    *, membership: Membership, kind: str, item_id: int | str, message_ids: Sequence[int]
) -> dict[int, MailThread]:
    """For a page of `item_messages`: message id → the conversation it is shown in (the
    member's own copy first)."""
    threads = visibility.item_threads(membership=membership, kind=kind, item_id=item_id)
    mine = set(
        visibility.mailbox_accounts(
            company=membership.company_id, user=membership.user_id
        ).values_list("pk", flat=True)
    )
    chosen: dict[int, MailThread] = {}
    for held in (
        MailThreadMessage.objects.for_company(membership.company_id)
        .filter(message_id__in=message_ids, thread__in=threads.values("pk"))
        .select_related("thread", "thread__account", "thread__deal")
        .order_by("thread_id")
    ):
        seen = chosen.get(held.message_id)
        if seen is None or (seen.account_id not in mine and held.thread.account_id in mine):
            chosen[held.message_id] = held.thread
    return chosen


def deal_alternatives(*, membership: Membership, thread: MailThread) -> list[Deal]:
    """Open deals of the persons taking part, besides the linked one, that the member may
    see: C2's one-click alternatives, most recently active first."""
    if not thread.person_ids:
        return []
    deals = (
        Deal.objects.for_company(membership.company_id)
        .filter(
            Q(person_id__in=thread.person_ids)
            | Q(dealparticipant__person_id__in=thread.person_ids),
            status=DealStatus.OPEN,
            deleted_at__isnull=True,
            is_archived=False,
        )
        .exclude(pk=thread.deal_id or 0)
        .distinct()
    )
    return list(access.visible_items(deals, membership=membership).order_by("-updated_at")[:10])


def thread_messages(*, company: Company | int, thread: MailThread) -> list[MailMessage]:
    """A thread's messages in conversation order (the caller checked access)."""
    ids = MailThreadMessage.objects.for_company(company).filter(thread=thread).values("message_id")
    return list(
        MailMessage.objects.for_company(company)
        .filter(pk__in=ids)
        .order_by("sent_at", "received_at", "id")
    )


@dataclass(frozen=True)
class Party:
    id: int
    role: str
    address: str
    name: str
    person_id: int | None
    person_name: str


@dataclass(frozen=True)
class MessageFacts:
    """What the API shows of a message besides its own columns, in one place per page."""

    parties: dict[int, list[Party]]  # message id → parties in header order
    flags: dict[int, set[str]]  # message id → flags in the account
    folder_roles: dict[int, set[str]]  # message id → roles of the folders holding it
    attachment_kinds: dict[int, set[str]]  # message id → attachment kinds


def message_facts(
    *, company: Company | int, account_id: int, message_ids: Sequence[int]
) -> MessageFacts:
    """Parties, flags, folders and attachment kinds of a page of messages: three queries
    whatever the page's size. The caller read these messages through `visibility` (and the
    account is that of the conversation it shows them in)."""
    parties: dict[int, list[Party]] = defaultdict(list)
    for row in (
        MailParticipant.objects.for_company(company)
        .filter(message_id__in=message_ids)
        .order_by("message_id", "position")
        .values_list("id", "message_id", "role", "address", "name", "person_id", "person__name")
    ):
        pid, message_id, role, address, name, person_id, person_name = row
        parties[message_id].append(Party(pid, role, address, name, person_id, person_name or ""))
    flags: dict[int, set[str]] = defaultdict(set)
    roles: dict[int, set[str]] = defaultdict(set)
    for message_id, location_flags, role in (
        MailMessageLocation.objects.for_company(company)
        .filter(account_id=account_id, message_id__in=message_ids)
        .values_list("message_id", "flags", "folder__role")
    ):
        flags[message_id].update(location_flags)
        roles[message_id].add(role)
    kinds: dict[int, set[str]] = defaultdict(set)
    for message_id, kind in (
        MailAttachment.objects.for_company(company)
        .filter(message_id__in=message_ids)
        .values_list("message_id", "kind")
    ):
        kinds[message_id].add(kind)
    return MessageFacts(dict(parties), dict(flags), dict(roles), dict(kinds))


def thread_parties(
    *, company: Company | int, thread_ids: Iterable[int]
) -> dict[int, list[tuple[Party, int]]]:
    """Thread id → (party, message time in epoch ms) of every message of the thread: one query
    for a page of threads. The caller read these threads through `visibility`."""
    result: dict[int, list[tuple[Party, int]]] = defaultdict(list)
    memberships = MailThreadMessage.objects.for_company(company).filter(thread_id__in=thread_ids)
    rows = (
        MailParticipant.objects.for_company(company)
        .filter(message_id__in=memberships.values("message_id"), role__in=["from", "to", "cc"])
        .values_list(
            "id",
            "message_id",
            "role",
            "address",
            "name",
            "person_id",
            "person__name",
            "message__received_at",
        )
    )
    thread_of: dict[int, list[int]] = defaultdict(list)
    for thread_id, message_id in memberships.values_list("thread_id", "message_id"):
        thread_of[message_id].append(thread_id)
    for pid, message_id, role, address, name, person_id, person_name, received in rows:
        party = Party(pid, role, address, name, person_id, person_name or "")
        for thread_id in thread_of[message_id]:
            result[thread_id].append((party, int(received.timestamp() * 1000)))
    return dict(result)


def thread_attachments(
    *, membership: Membership, thread_id: int
) -> dict[int, list[MailAttachment]]:
    """Message id → the files of that message (inline images left out: they show in the body),
    for a conversation the member may see; empty otherwise. One query."""
    threads = visibility.visible_threads(membership=membership).filter(pk=thread_id)
    held = MailThreadMessage.objects.for_company(membership.company_id).filter(
        thread__in=threads.values("pk")
    )
    result: dict[int, list[MailAttachment]] = defaultdict(list)
    for attachment in (
        MailAttachment.objects.for_company(membership.company_id)
        .filter(message_id__in=held.values("message_id"))
        .exclude(kind="inline")
        .order_by("message_id", "id")
    ):
        result[attachment.message_id].append(attachment)
    return dict(result)


def blocked_addresses(
    *, membership: Membership
) -> tuple[list[BlockedAddress], list[BlockedAddress]]:
    """C5: the company-wide blocks, and the member's own (they hide mail in the member's own
    accounts only). Another user's personal blocks are theirs alone, not even shown to admins."""
    blocks = (
        BlockedAddress.objects.for_company(membership.company_id)
        .filter(Q(user__isnull=True) | Q(user_id=membership.user_id))
        .select_related("created_by")
        .order_by("value", "id")
    )
    company_wide: list[BlockedAddress] = []
    mine: list[BlockedAddress] = []
    for block in blocks:
        (company_wide if block.user_id is None else mine).append(block)
    return company_wide, mine


# --- The Sales Inbox (B1, B2) -------------------------------------------------------------------


def mailbox_accounts(*, membership: Membership) -> list[MailAccount]:
    """The accounts whose mailbox the member reads, personal ones first."""
    return list(
        visibility.mailbox_accounts(company=membership.company_id, user=membership.user_id)
        .select_related("owner")
        .order_by("-kind", "email_address", "pk")  # "personal" sorts after "team": reversed
    )


@dataclass(frozen=True)
class FolderEntry:
    """A folder in the Sales Inbox's list: one of ours (`key` inbox, sent, …) or a folder
    synced from the mailbox (`folder:<id>`), with its unread conversations when counted."""

    key: str
    name: str
    unread: int | None = None
    total: int | None = None


STANDARD_FOLDERS: tuple[tuple[str, str], ...] = (
    ("inbox", "Inbox"),
    ("drafts", "Drafts"),
    ("sent", "Sent"),
    ("archive", "Archive"),
    ("trash", "Trash"),
    ("all", "All mail"),
)


def mailbox_folders(
    *, membership: Membership, accounts: Sequence[MailAccount]
) -> tuple[list[FolderEntry], list[FolderEntry]]:
    """The standard folders and the accounts' own synced folders, with their counts read from
    `MailCounter` (kept in step by triggers: no conversation is counted here). The caller read
    `accounts` with `mailbox_accounts`."""
    account_ids = [account.pk for account in accounts]
    counters: dict[str, tuple[int, int]] = {}
    for key, unread, total in (
        MailCounter.objects.for_company(membership.company_id)
        .filter(account_id__in=account_ids)
        .values_list("key", "unread", "total")
    ):
        was = counters.get(key, (0, 0))
        counters[key] = (was[0] + unread, was[1] + total)
    drafts = sum(
        counters.get(f"folder:{pk}", (0, 0))[1]
        for pk in MailFolder.objects.for_company(membership.company_id)
        .filter(account_id__in=account_ids, role=FolderRole.DRAFTS, removed_at__isnull=True)
        .values_list("pk", flat=True)
    )
    standard = []
    for key, name in STANDARD_FOLDERS:
        if key == "inbox":
            standard.append(FolderEntry(key, name, counters.get("inbox", (0, 0))[0]))
        elif key == "drafts":
            standard.append(FolderEntry(key, name, None, drafts))
        else:
            standard.append(FolderEntry(key, name))
    several = len(accounts) > 1
    addresses = {account.pk: account.email_address for account in accounts}
    synced = []
    for folder in (
        MailFolder.objects.for_company(membership.company_id)
        .filter(account_id__in=account_ids, role=FolderRole.OTHER, removed_at__isnull=True)
        .order_by("name", "account_id")
    ):
        unread, total = counters.get(f"folder:{folder.pk}", (0, 0))
        name = f"{folder.name} ({addresses[folder.account_id]})" if several else folder.name
        synced.append(FolderEntry(f"folder:{folder.pk}", name, unread, total))
    return standard, synced


def mailbox_threads_by_id(*, membership: Membership, thread_ids: Sequence[int]) -> list[MailThread]:
    """Conversations of the member's mailbox in the order of `thread_ids` (a page the search
    found), with what their rows show."""
    found = (
        visibility.mailbox_threads(membership=membership)
        .filter(pk__in=list(thread_ids))
        .select_related("account", "deal", "lead", "project")
        .in_bulk()
    )
    return [found[pk] for pk in thread_ids if pk in found]


def thread_labels(*, membership: Membership, thread_ids: Sequence[int]) -> dict[int, list[Label]]:
    """Thread id → its labels, by name. The caller read the threads through `visibility`."""
    result: dict[int, list[Label]] = defaultdict(list)
    rows = (
        MailThreadLabel.objects.for_company(membership.company_id)
        .filter(thread_id__in=list(thread_ids))
        .select_related("label")
        .order_by("label__name", "label_id")
    )
    for row in rows:
        result[row.thread_id].append(row.label)
    return dict(result)


def mail_labels(*, membership: Membership) -> list[Label]:
    """The company's conversation labels."""
    return list(
        Label.objects.for_company(membership.company_id)
        .filter(kind=LabelKind.MAIL_THREAD)
        .order_by("name", "pk")
    )


def mail_views(*, membership: Membership) -> list[MailView]:
    """The member's saved views."""
    return list(
        MailView.objects.for_company(membership.company_id)
        .filter(user_id=membership.user_id)
        .order_by("name", "pk")
    )


def persons_named(*, membership: Membership, person_ids: Iterable[int]) -> dict[int, Person]:
    """The persons among `person_ids` the member may see (for the rows' person chips)."""
    ids = set(person_ids)
    if not ids:
        return {}
    live = Person.objects.for_company(membership.company_id).filter(
        pk__in=ids, deleted_at__isnull=True
    )
    return {person.pk: person for person in access.visible_items(live, membership=membership)}
