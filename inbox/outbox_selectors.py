"""Reads for the outbox's pages in the Sales Inbox: the Scheduled folder, the Outbox (what
needs the user, what is being tried again, what was cancelled lately) and their counts in the
folder list.

Every read starts from `sending.outbound_list`, whose rule is the outbox's visibility: the
messages of the mailboxes the user reads (`visibility.mailbox_accounts`), whoever wrote them,
as in the mailbox itself. A message waiting out its undo window is nobody's business here (the
composer shows it); "scheduled" means a time was chosen (`send_at`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from crm.models import Membership
from inbox import sending
from inbox.models import MailOutbound, MailParticipant, OutboundState, ParticipantRole

# How long a cancelled message stays listed, to edit and send after all.
CANCELLED_KEPT: Final = timedelta(days=7)
PAGE_LIMIT: Final = 200


class Section(StrEnum):
    SCHEDULED = "scheduled"  # queued for a chosen time
    NEEDS_YOU = "needs_you"  # not sent (failed), or maybe sent (uncertain): the user decides
    RETRYING = "retrying"  # sent now, put off by passing trouble: tried again by itself
    CANCELLED = "cancelled"  # undone or taken off the schedule, lately


_STATES: dict[Section, tuple[str, ...]] = {
    Section.SCHEDULED: (OutboundState.QUEUED,),
    Section.NEEDS_YOU: (OutboundState.FAILED, OutboundState.UNCERTAIN),
    Section.RETRYING: (OutboundState.QUEUED,),
    Section.CANCELLED: (OutboundState.CANCELLED,),
}


def _where(section: Section, now: datetime) -> Q:
    if section == Section.SCHEDULED:
        return Q(send_at__isnull=False)
    if section == Section.RETRYING:
        # Put off by trouble (a reason recorded); a message the user just sent again is not.
        return Q(send_at__isnull=True, attempts__gt=0) & ~Q(last_error="")
    if section == Section.CANCELLED:
        return Q(updated_at__gte=now - CANCELLED_KEPT)
    return Q()


def _rows(
    membership: Membership, states: Sequence[str], account_ids: Sequence[int] | None
) -> QuerySet[MailOutbound]:
    rows = sending.outbound_list(membership=membership, states=states)
    if account_ids is not None:
        rows = rows.filter(account_id__in=list(account_ids))
    return rows


@dataclass(frozen=True)
class OutboxCounts:
    """The folder list's entries: Scheduled (always listed), Outbox (when `needs_you`)."""

    scheduled: int
    needs_you: int


def outbox_counts(
    *, membership: Membership, account_ids: Sequence[int] | None = None
) -> OutboxCounts:
    """Both counts in one query; `account_ids` narrows to some of the user's mailboxes (the
    mailbox's account choice), None is all of them."""
    states = [OutboundState.QUEUED, OutboundState.FAILED, OutboundState.UNCERTAIN]
    counted = (
        _rows(membership, states, account_ids)
        .order_by()
        .aggregate(
            scheduled=Count(
                "pk",
                filter=Q(state=OutboundState.QUEUED) & _where(Section.SCHEDULED, timezone.now()),
            ),
            needs_you=Count(
                "pk", filter=Q(state__in=[OutboundState.FAILED, OutboundState.UNCERTAIN])
            ),
        )
    )
    return OutboxCounts(scheduled=counted["scheduled"], needs_you=counted["needs_you"])


@dataclass(frozen=True)
class Recipient:
    role: str  # to, cc, bcc
    address: str
    name: str


@dataclass(frozen=True)
class OutboxEntry:
    """A message of the outbox with whom it goes to. `outbound.message` is loaded without its
    bodies (the subject and snippet are there)."""

    outbound: MailOutbound
    recipients: list[Recipient]


@dataclass(frozen=True)
class OutboxPage:
    entries: list[OutboxEntry]
    total: int


def outbox_entries(
    *,
    membership: Membership,
    section: Section,
    account_ids: Sequence[int] | None = None,
    limit: int = PAGE_LIMIT,
    now: datetime | None = None,
) -> OutboxPage:
    """One section of the outbox: next to leave first (scheduled, retrying), latest first
    (needs you, cancelled); at most `limit` entries and how many there are in all."""
    now = now or timezone.now()
    rows = _rows(membership, _STATES[section], account_ids).filter(_where(section, now))
    if section in (Section.NEEDS_YOU, Section.CANCELLED):
        rows = rows.order_by("-updated_at", "-id")
    found = list(
        rows.defer("message__body_html", "message__body_text", "message__references")[:limit]
    )
    total = len(found) if len(found) < limit else rows.order_by().count()
    recipients: dict[int, list[Recipient]] = defaultdict(list)
    # The messages of rows read through `outbound_list` above: the user may see them.
    for message_id, role, address, name in (
        MailParticipant.objects.for_company(membership.company_id)
        .filter(
            message_id__in=[row.message_id for row in found],
            role__in=[ParticipantRole.TO, ParticipantRole.CC, ParticipantRole.BCC],
        )
        .order_by("message_id", "position")
        .values_list("message_id", "role", "address", "name")
    ):
        recipients[message_id].append(Recipient(role, address, name))
    return OutboxPage(
        [OutboxEntry(row, recipients.get(row.message_id, [])) for row in found], total
    )
