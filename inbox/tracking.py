"""Tracking's data in the inbox (E1, E2; docs/decisions/0014-tracking.md): recording the opens and
clicks of tracked messages, once each, with what they change (the message's counts and first
times, the conversation's eye and cursor icons, the sender's notification), the doors the
flush worker (`tracking.flush`) reaches them by, and the reads for pages.

A hit names a token only, so finding its message crosses tenants: `tokens_resolve` is the
named door for that (`inbox_tracking_tokens`, ids and tracking facts only). Everything after
it runs bound to the message's company.

Reads for pages (`message_tracking`, `message_events`) start from `inbox.visibility`, like
every read of mail: who may see the conversation may see its tracking, nobody else
(tests/tracking/test_flush.py holds them to the selectors' rule of the architecture test).

Tracking is per message: our SMTP delivery sends one copy to all recipients, so an open says
"someone with this message" and `MailTrackingEvent.recipient` stays empty (group email will send
separate copies, each with its own token, and fill it)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlencode

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from crm import notifications
from crm.models import Membership, User
from inbox import visibility
from inbox.models import (
    MailOutbound,
    MailParticipant,
    MailThread,
    MailThreadMessage,
    MailTrackingEvent,
    ParticipantRole,
    TrackingKind,
    TrackingSource,
)

# Notification kinds (crm.models.Notification.kind) of a recipient's first open and click.
NOTIFY_OPENED: Final = "mail_opened"
NOTIFY_CLICKED: Final = "mail_clicked"
# The most tokens one call of the door is asked about (a flush batch has at most this many).
TOKENS_PER_CALL: Final = 1000
# The most events a message's timeline lists (the newest); the counts cover them all.
EVENTS_LIMIT: Final = 200


@dataclass(frozen=True)
class TrackedMessage:
    """What the door tells of a token's message: whose it is and what it tracks."""

    token: str
    company_id: int
    outbound_id: int
    message_id: int
    account_id: int
    track_opens: bool
    track_links: bool
    created_by_id: int | None
    sent_at: datetime | None


def tokens_resolve(tokens: Collection[str]) -> dict[str, TrackedMessage]:
    """The tracked messages of these tokens (unknown and untracked ones are left out), through
    the door `inbox_tracking_tokens`: needs no binding, crosses companies by token alone."""
    found: dict[str, TrackedMessage] = {}
    ordered = sorted(set(tokens))
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), TOKENS_PER_CALL):
            cursor.execute(
                "SELECT * FROM inbox_tracking_tokens(%s)",
                [ordered[start : start + TOKENS_PER_CALL]],
            )
            for row in cursor.fetchall():
                item = TrackedMessage(
                    token=row[0],
                    company_id=int(row[1]),
                    outbound_id=int(row[2]),
                    message_id=int(row[3]),
                    account_id=int(row[4]),
                    track_opens=bool(row[5]),
                    track_links=bool(row[6]),
                    created_by_id=int(row[7]) if row[7] is not None else None,
                    sent_at=row[8],
                )
                found[item.token] = item
    return found


# --- The spool: hits Redis could not take --------------------------------------------------------


@dataclass(frozen=True)
class SpooledHit:
    """A hit the tracking endpoint wrote to PostgreSQL because Redis would not take it. `kind`
    as the endpoint wrote it ("o" / "c"); `session` the session mark or ""."""

    id: int
    token: str
    kind: str
    link_number: int | None
    occurred_at: datetime
    ip: str
    user_agent: str
    session: str


def spool_take(*, limit: int) -> list[SpooledHit]:
    """The oldest spooled hits (they stay spooled until `spool_done`): door
    `inbox_tracking_spool_take`, which only the owner role's functions read."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM inbox_tracking_spool_take(%s)", [limit])
        return [
            SpooledHit(
                id=int(row[0]),
                token=row[1],
                kind=row[2],
                link_number=row[3],
                occurred_at=row[4],
                ip=row[5] or "",
                user_agent=row[6] or "",
                session=row[7] or "",
            )
            for row in cursor.fetchall()
        ]


def spool_done(*, ids: Sequence[int]) -> None:
    """Delete spooled hits once recorded (or found to be of no message)."""
    if ids:
        with connection.cursor() as cursor:
            cursor.execute("SELECT inbox_tracking_spool_done(%s)", [list(ids)])


# --- Who is on the sending side ------------------------------------------------------------------


def sending_side(*, company_id: int, pairs: Collection[tuple[int, int]]) -> set[tuple[int, int]]:
    """Of these (user id, account id) pairs, those where the user reads the account's mailbox
    (`visibility.mailbox_accounts`): its owner, or a member of a team mailbox. A hit from such
    a user's session is the sender's, not a recipient's: a colleague clicking a link of a
    message in their shared Sent folder is no more the customer than its author is.

    Precondition: inside a transaction bound to `company_id`."""
    users: dict[int, set[int]] = defaultdict(set)
    for user_id, account_id in pairs:
        users[user_id].add(account_id)
    found: set[tuple[int, int]] = set()
    for user_id, account_ids in users.items():
        readable = visibility.mailbox_accounts(company=company_id, user=user_id).filter(
            pk__in=account_ids
        )
        found.update((user_id, account_id) for account_id in readable.values_list("pk", flat=True))
    return found


# --- Recording -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One open or click to record, classified. `event_key` makes it once: the id of the hit
    in the buffer it waited in ("r:<stream entry id>", "spool:<id>"; at most 64 characters).
    `ip`: a valid address or None."""

    event_key: str
    outbound_id: int
    kind: str  # TrackingKind
    occurred_at: datetime
    source: str  # TrackingSource
    link_number: int | None = None
    ip: str | None = None
    user_agent: str = ""
    source_detail: str = ""
    client: str = ""
    device: str = ""


@dataclass
class _Changes:
    """What the newly recorded events of one message change."""

    opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    first_open: datetime | None = None
    last_open: datetime | None = None
    first_click: datetime | None = None
    last_click: datetime | None = None
    first_open_hit: Hit | None = None
    first_click_hit: Hit | None = None
    first_click_url: str = ""

    def add(self, hit: Hit, url: str) -> None:
        at = hit.occurred_at
        if hit.kind == TrackingKind.OPEN:
            if hit.source == TrackingSource.MACHINE:
                self.machine_opens += 1
            if hit.source != TrackingSource.PERSON:
                return
            self.opens += 1
            if self.first_open is None or at < self.first_open:
                self.first_open, self.first_open_hit = at, hit
            self.last_open = max(self.last_open or at, at)
        elif hit.source == TrackingSource.PERSON:
            self.clicks += 1
            if self.first_click is None or at < self.first_click:
                self.first_click, self.first_click_hit, self.first_click_url = at, hit, url
            self.last_click = max(self.last_click or at, at)


def _earliest(current: datetime | None, new: datetime | None) -> datetime | None:
    if current is None or new is None:
        return current or new
    return min(current, new)


def _latest(current: datetime | None, new: datetime | None) -> datetime | None:
    if current is None or new is None:
        return current or new
    return max(current, new)


def _acceptable(outbound: MailOutbound, hit: Hit) -> str | None:
    """The URL of the hit's link ("" for an open), or None when the message was not sent with
    what the hit names (an open of a message without a pixel, a link number it has not)."""
    if hit.kind == TrackingKind.OPEN:
        return "" if outbound.track_opens else None
    if hit.kind != TrackingKind.CLICK or not outbound.track_links or hit.link_number is None:
        return None
    links = outbound.tracked_links
    if not 0 <= hit.link_number < len(links):
        return None
    return str(links[hit.link_number])


_INSERT = """
    INSERT INTO inbox_mailtrackingevent (
        company_id, outbound_id, message_id, kind, link_number, url, recipient, occurred_at,
        recorded_at, ip, user_agent, client, device, source, source_detail, event_key)
    SELECT %s, r.outbound_id, r.message_id, r.kind, r.link_number, r.url, '', r.occurred_at,
           %s, r.ip, r.user_agent, r.client, r.device, r.source, r.source_detail, r.event_key
    FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::integer[], %s::text[],
                %s::timestamptz[], %s::inet[], %s::text[], %s::text[], %s::text[], %s::text[],
                %s::text[], %s::text[])
        AS r(outbound_id, message_id, kind, link_number, url, occurred_at, ip, user_agent,
             client, device, source, source_detail, event_key)
    ON CONFLICT (company_id, event_key) DO NOTHING
    RETURNING event_key
"""


_OUTBOUND_FIELDS = (
    "company_id",
    "account_id",
    "message_id",
    "created_by_id",
    "track_opens",
    "track_links",
    "tracked_links",
    "opened_at",
    "open_count",
    "machine_open_count",
    "clicked_at",
    "click_count",
    "message__subject",
)


def events_record(*, company_id: int, hits: Sequence[Hit]) -> int:
    """Record the hits of this company's tracked messages, each once however often it is
    given (`event_key`: a hit recorded before is skipped), and apply what the new ones
    change: the message's counts and first open and click by a person, its conversation's
    latest ones (the thread of the sending account that holds it), and the sender's
    notification of the first open and the first click by a recipient. Hits of another
    company's message, or naming what the message was not sent with, are left out. Returns
    how many events were new.

    Precondition: inside a transaction bound to `company_id` (the caller commits, then lets
    go of the hits in their buffer)."""
    if not hits:
        return 0
    outbounds = {
        outbound.pk: outbound
        for outbound in MailOutbound.objects.for_company(company_id)
        .filter(pk__in={hit.outbound_id for hit in hits})
        .select_for_update(of=("self",))
        .select_related("message")
        .only(*_OUTBOUND_FIELDS)
        .order_by("pk")  # locks in one order: two recorders never wait on each other in a ring
    }
    chosen: dict[str, tuple[Hit, str]] = {}
    for hit in hits:
        outbound = outbounds.get(hit.outbound_id)
        url = None if outbound is None else _acceptable(outbound, hit)
        if url is not None and hit.event_key not in chosen and len(hit.event_key) <= 64:
            chosen[hit.event_key] = (hit, url)
    if not chosen:
        return 0
    new = [hit for hit, _url in chosen.values()]
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            [
                company_id,
                datetime.now(UTC),
                [hit.outbound_id for hit in new],
                [outbounds[hit.outbound_id].message_id for hit in new],
                [hit.kind for hit in new],
                [hit.link_number if hit.kind == TrackingKind.CLICK else None for hit in new],
                [chosen[hit.event_key][1] for hit in new],
                [hit.occurred_at for hit in new],
                [hit.ip or None for hit in new],
                [hit.user_agent[:512] for hit in new],
                [hit.client[:64] for hit in new],
                [hit.device[:16] for hit in new],
                [hit.source for hit in new],
                [hit.source_detail[:128] for hit in new],
                [hit.event_key for hit in new],
            ],
        )
        inserted = {str(row[0]) for row in cursor.fetchall()}
    changes: dict[int, _Changes] = defaultdict(_Changes)
    for key in inserted:
        hit, url = chosen[key]
        changes[hit.outbound_id].add(hit, url)
    _aggregates_apply(company_id, outbounds, changes)
    return len(inserted)


def _aggregates_apply(
    company_id: int, outbounds: dict[int, MailOutbound], changes: dict[int, _Changes]
) -> None:
    if not changes:
        return
    firsts: list[tuple[MailOutbound, str, Hit, str]] = []  # (outbound, kind, hit, url)
    touched: list[MailOutbound] = []
    for outbound_id, change in changes.items():
        outbound = outbounds[outbound_id]
        if change.first_open_hit is not None and outbound.opened_at is None:
            firsts.append((outbound, TrackingKind.OPEN, change.first_open_hit, ""))
        if change.first_click_hit is not None and outbound.clicked_at is None:
            firsts.append(
                (outbound, TrackingKind.CLICK, change.first_click_hit, change.first_click_url)
            )
        outbound.open_count += change.opens
        outbound.machine_open_count += change.machine_opens
        outbound.click_count += change.clicks
        outbound.opened_at = _earliest(outbound.opened_at, change.first_open)
        outbound.clicked_at = _earliest(outbound.clicked_at, change.first_click)
        touched.append(outbound)
    # Counts of what recipients did, not an edit of the message: `updated_at` stays.
    MailOutbound.objects.for_company(company_id).bulk_update(
        touched, ["open_count", "machine_open_count", "click_count", "opened_at", "clicked_at"]
    )
    threads = _threads_apply(company_id, outbounds, changes)
    for outbound, kind, hit, url in firsts:
        _notify(company_id, outbound, kind, hit, url, threads.get(outbound.pk))


def _threads_apply(
    company_id: int, outbounds: dict[int, MailOutbound], changes: dict[int, _Changes]
) -> dict[int, int]:
    """The latest open and click by a person on the conversations holding the messages (the
    sending account's thread of each); outbound id → its thread id."""
    wanted = {
        (outbounds[outbound_id].account_id, outbounds[outbound_id].message_id): outbound_id
        for outbound_id in changes
    }
    held = MailThreadMessage.objects.for_company(company_id).filter(
        message_id__in={outbounds[outbound_id].message_id for outbound_id in changes}
    )
    thread_of: dict[int, int] = {}
    for account_id, message_id, thread_id in held.values_list(
        "account_id", "message_id", "thread_id"
    ):
        outbound_id = wanted.get((account_id, message_id))
        if outbound_id is not None:
            thread_of[outbound_id] = thread_id
    latest: dict[int, tuple[datetime | None, datetime | None]] = {}
    for outbound_id, thread_id in thread_of.items():
        change = changes[outbound_id]
        opened, clicked = latest.get(thread_id, (None, None))
        latest[thread_id] = (_latest(opened, change.last_open), _latest(clicked, change.last_click))
    latest = {key: value for key, value in latest.items() if value != (None, None)}
    if latest:
        threads = list(
            MailThread.objects.for_company(company_id)
            .filter(pk__in=latest)
            .select_for_update()
            .order_by("pk")
            .only("pk", "company_id", "tracked_opened_at", "tracked_clicked_at")
        )
        for thread in threads:
            opened, clicked = latest[thread.pk]
            thread.tracked_opened_at = _latest(thread.tracked_opened_at, opened)
            thread.tracked_clicked_at = _latest(thread.tracked_clicked_at, clicked)
        MailThread.objects.for_company(company_id).bulk_update(
            threads, ["tracked_opened_at", "tracked_clicked_at"]
        )
    return thread_of


# --- The sender's notification -------------------------------------------------------------------


def _recipients_named(company_id: int, message_id: int) -> tuple[str, int]:
    """(the first recipient's name or address, how many recipients)."""
    parties = list(
        MailParticipant.objects.for_company(company_id)
        .filter(
            message_id=message_id,
            role__in=[ParticipantRole.TO, ParticipantRole.CC, ParticipantRole.BCC],
        )
        .order_by("position")
        .values_list("name", "address")
    )
    if not parties:
        return "", 0
    name, address = parties[0]
    return (name or address), len(parties)


def _title(kind: str, subject: str, who: str, count: int) -> str:
    subject = subject or _("(no subject)")
    values = {"who": who, "subject": subject, "more": count - 1}
    if kind == TrackingKind.OPEN:
        if count == 1:
            return _("%(who)s opened “%(subject)s”") % values
        return _("A recipient opened “%(subject)s” (to %(who)s and %(more)s more)") % values
    if count == 1:
        return _("%(who)s clicked a link in “%(subject)s”") % values
    return _("A recipient clicked a link in “%(subject)s” (to %(who)s and %(more)s more)") % values


def conversation_url(thread_id: int | None) -> str:
    """Where a notification about a sent message leads: its conversation in the Sales Inbox's
    Sent folder (the folder alone while it is in none yet)."""
    query = (
        {"folder": "sent"} if thread_id is None else {"folder": "sent", "thread": str(thread_id)}
    )
    return f"{reverse('inbox')}?{urlencode(query)}"


def _notify(
    company_id: int,
    outbound: MailOutbound,
    kind: str,
    hit: Hit,
    url: str,
    thread_id: int | None,
) -> None:
    """The sender's notification of the first open or click by a recipient: once per message
    and kind (`subject_key`), and only while they still read the sending mailbox (what it
    tells is the conversation's, and follows its visibility)."""
    user_id = outbound.created_by_id
    if user_id is None:
        return
    if not sending_side(company_id=company_id, pairs=[(user_id, outbound.account_id)]):
        return
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    who, count = _recipients_named(company_id, outbound.message_id)
    if count == 0:
        return
    how = ", ".join(part for part in (hit.client, hit.device) if part)
    with translation.override(user.locale or None):
        title = _title(kind, outbound.message.subject, who, count)
    notifications.notification_add(
        company_id=company_id,
        user_id=user_id,
        kind=NOTIFY_OPENED if kind == TrackingKind.OPEN else NOTIFY_CLICKED,
        title=title,
        body=url if kind == TrackingKind.CLICK else how,
        url=conversation_url(thread_id),
        subject_key=f"{'open' if kind == TrackingKind.OPEN else 'click'}:{outbound.message_id}",
    )


# --- Reads for pages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackingSummary:
    """What a tracked message's icons, counts and timeline show. `opened_at` / `clicked_at`:
    the first open and click by a recipient (not a machine, a scanner or the sender);
    `open_count` and `click_count` count those; `machine_open_count` the opens by image
    proxies, privacy prefetchers and scanners, which tell nothing of a reader. `events`: the
    newest `EVENTS_LIMIT` opens and clicks of every source, newest first, each with who it is
    from (`source`) and why (`source_detail`, stored untranslated: translate it to show it)."""

    track_opens: bool
    track_links: bool
    opened_at: datetime | None
    open_count: int
    machine_open_count: int
    clicked_at: datetime | None
    click_count: int
    events: tuple[MailTrackingEvent, ...]


def _tracked_visible(
    membership: Membership, message_ids: Collection[int]
) -> QuerySet[MailOutbound]:
    """The tracked outbox rows of these messages whose sending mailbox's conversation the
    member may read (as its users, or shared on an item they see). Tracking belongs to the
    sender's copy: a colleague who received the same message in their own mailbox reads the
    message, not whether the customer opened it."""
    senders_copy = MailThreadMessage.objects.for_company(membership.company_id).filter(
        message_id=OuterRef("message_id"),
        account_id=OuterRef("account_id"),
        thread__in=visibility.visible_threads(membership=membership).values("pk"),
    )
    return (
        MailOutbound.objects.for_company(membership.company_id)
        .filter(message_id__in=list(message_ids))
        .filter(Q(track_opens=True) | Q(track_links=True))
        .filter(Exists(senders_copy))
    )


def message_tracking(
    *, membership: Membership, message_ids: Iterable[int], with_events: bool = True
) -> dict[int, TrackingSummary]:
    """Message id → its tracking, for the tracked messages among `message_ids` whose sender's
    conversation the member may read (`_tracked_visible`): two queries for a page of messages
    (one without `with_events`)."""
    ids = set(message_ids)
    if not ids:
        return {}
    rows = list(
        _tracked_visible(membership, ids).values_list(
            "message_id",
            "track_opens",
            "track_links",
            "opened_at",
            "open_count",
            "machine_open_count",
            "clicked_at",
            "click_count",
        )
    )
    events: dict[int, list[MailTrackingEvent]] = defaultdict(list)
    if rows and with_events:
        newest = (
            MailTrackingEvent.objects.for_company(membership.company_id)
            .filter(message_id__in=[row[0] for row in rows])
            .annotate(
                rank=Window(
                    RowNumber(),
                    partition_by=[F("message_id")],
                    order_by=[F("occurred_at").desc(), F("id").desc()],
                )
            )
            .filter(rank__lte=EVENTS_LIMIT)
            .order_by("message_id", "-occurred_at", "-id")
        )
        for event in newest:
            events[event.message_id].append(event)
    return {
        message_id: TrackingSummary(
            track_opens=track_opens,
            track_links=track_links,
            opened_at=opened_at,
            open_count=open_count,
            machine_open_count=machine_open_count,
            clicked_at=clicked_at,
            click_count=click_count,
            events=tuple(events.get(message_id, ())),
        )
        for (
            message_id,
            track_opens,
            track_links,
            opened_at,
            open_count,
            machine_open_count,
            clicked_at,
            click_count,
        ) in rows
    }


def message_events(
    *, membership: Membership, message_id: int, limit: int = EVENTS_LIMIT
) -> list[MailTrackingEvent]:
    """The opens and clicks of one message the member may read, newest first (at most
    `limit`); empty for a message they may not read (the same answer as for one never
    tracked)."""
    if not _tracked_visible(membership, {message_id}).exists():
        return []
    return list(
        MailTrackingEvent.objects.for_company(membership.company_id)
        .filter(message_id=message_id)
        .order_by("-occurred_at", "-id")[:limit]
    )
