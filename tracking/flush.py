"""The recorder (E1, E2; docs/decisions/0014-tracking.md): takes the hits the tracking endpoints
buffered and records each exactly once as a `MailTrackingEvent`, with who it is from.

The buffer (the contract with `tracking.buffer`): the Redis stream `CRM_TRACKING_STREAM`
(`crm:tracking:hits`), one entry per hit, fields `t` token (32 hex), `k` "o" | "c", `n` link
number ("" for an open), `at` microseconds since the epoch (UTC), `ip`, `ua`, `s` session mark;
or, when Redis could not take a hit, a row of PostgreSQL's spool with the same values.

A pass, under a PostgreSQL advisory lock (one recorder at a time; the lock dies with a dead
worker's connection):

1. The consumer group `recorders` (made with MKSTREAM from the stream's start, so hits added
   before any recorder ran are read too). Entries a consumer read and never acknowledged for
   `CLAIM_IDLE_MS` (it died, or its batch failed) are claimed first (XAUTOCLAIM), then new ones
   read (XREADGROUP), `BATCH` at a time.
2. Per batch: the tokens resolved in one call of the door `inbox_tracking_tokens`; hits of no
   tracked message dropped; session marks looked up in one MGET; each hit classified
   (`tracking.classify`); per company, bound to it, `inbox.tracking.events_record` with the
   hit's event key (a digest of all it says: `Pending.event_key`), and **committed**; only
   then the entries acknowledged and deleted (XACK + XDEL in one MULTI). A worker lost
   between the commit and the acknowledgement leaves the entries pending: they are claimed
   again and recorded again, and the event key's unique constraint drops every one recorded
   before. Nothing lost (acknowledged only after commit),
   nothing doubled (the key): exactly once.
3. The spool, the same way: taken oldest first, recorded (the same event key: a hit that
   reached the stream without its acknowledgement and was spooled too is one event),
   committed, then deleted (`inbox_tracking_spool_done`).

A company's batch that fails (its transaction rolled back) is left unacknowledged and tried
again a minute later; the other companies' hits of the batch go on. With Redis down the spool
is still recorded, but for its hits that carry a session mark: whose session it was cannot be
read, so they wait.

Entry points: the Celery task `tracking.tasks.hits_flush` (beat, every 5 s) and the command
`manage.py tracking_flush`, which loops with a blocking read (docker-compose's
`tracking-recorder`)."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.conf import settings
from django.db import connection
from redis import Redis
from redis.exceptions import RedisError, ResponseError

from crm import tenancy
from inbox import tracking
from inbox.models import TrackingKind
from inbox.trackmarks import SESSION_MARK, TOKEN
from tracking import classify, sessions

logger = logging.getLogger(__name__)

GROUP: Final = "recorders"
# Entries read per round trip and recorded per transaction: 500 hits are one INSERT of 500
# rows and a few reads, tens of milliseconds, and keep a claimed batch small.
BATCH: Final = 500
# An entry read and not acknowledged for this long belongs to a dead or stuck recorder.
CLAIM_IDLE_MS: Final = 60_000
# A consumer with nothing pending, idle this long, is removed from the group (its name had the
# pid of a process that is gone).
CONSUMER_FORGOTTEN_MS: Final = 3_600_000
_LOCK_NAMESPACE: Final = 0x74726B66  # "trkf": the advisory-lock class of the recorder
_LOCK_KEY: Final = 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_KINDS: Final = {"o": TrackingKind.OPEN, "c": TrackingKind.CLICK}
_LINK_NUMBER_MAX: Final = 999_999

# For tests only: called with the batch's entry ids after its transactions committed and before
# they are acknowledged: the window a crash there would hit.
after_commit: Callable[[Sequence[str]], None] | None = None


@dataclass
class FlushOutcome:
    busy: bool = False  # another recorder held the lock: nothing done
    redis_down: bool = False  # the stream could not be read (the spool still was)
    read: int = 0  # stream entries and spooled rows looked at
    recorded: int = 0  # new events
    dropped: int = 0  # malformed, or of no tracked message
    failed: int = 0  # left for a later pass (their company's transaction failed)

    def add(self, other: FlushOutcome) -> None:
        self.redis_down = self.redis_down or other.redis_down
        self.read += other.read
        self.recorded += other.recorded
        self.dropped += other.dropped
        self.failed += other.failed


@dataclass(frozen=True)
class Pending:
    """A buffered hit, parsed; `key` its id in the buffer it waited in ("r:<entry id>" or
    "spool:<id>")."""

    key: str
    token: str
    kind: str  # TrackingKind
    link_number: int | None
    occurred_at: datetime
    ip: str | None
    user_agent: str
    session: str

    @property
    def event_key(self) -> str:
        """What makes the hit itself one event, wherever it waited: a digest of all it says,
        to the microsecond. A hit whose XADD was written but not acknowledged (the connection
        broke) is spooled as well; both copies give this key, so it is recorded once."""
        at = (self.occurred_at - _EPOCH) // timedelta(microseconds=1)
        said = "\x1f".join(
            (
                self.token,
                self.kind,
                "" if self.link_number is None else str(self.link_number),
                str(at),
                self.ip or "",
                self.user_agent,
                self.session,
            )
        )
        return "h:" + hashlib.sha256(said.encode("utf-8", "replace")).hexdigest()[:40]


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def redis_client() -> Redis[bytes]:
    # Longer than a blocking read (`tracking_flush` waits up to a second for new hits).
    return Redis.from_url(settings.REDIS_URL, socket_timeout=30, socket_connect_timeout=5)


# --- Parsing -------------------------------------------------------------------------------------


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _pending(
    key: str, token: str, kind: str, link: str, at: datetime, ip: str, agent: str, session: str
) -> Pending | None:
    """A hit as recorded, or None when it is malformed (it cannot be recorded, ever)."""
    token = token.strip().lower()
    recorded_kind = _KINDS.get(kind.strip().lower()[:1]) if kind else None
    if not TOKEN.fullmatch(token) or recorded_kind is None:
        return None
    number: int | None = None
    if recorded_kind == TrackingKind.CLICK:
        if not link.isdigit() or int(link) > _LINK_NUMBER_MAX:
            return None
        number = int(link)
    session = session.strip().lower()
    return Pending(
        key=key,
        token=token,
        kind=recorded_kind,
        link_number=number,
        occurred_at=at,
        ip=_ip(ip),
        user_agent=agent[:512],
        session=session if SESSION_MARK.fullmatch(session) else "",
    )


def _text(fields: dict[bytes, bytes], name: bytes) -> str:
    return fields.get(name, b"").decode("utf-8", "replace")


def entry_parse(entry_id: str, fields: dict[bytes, bytes] | None) -> Pending | None:
    """A stream entry of the contract's shape, parsed (None: malformed)."""
    if not fields:
        return None
    at = _text(fields, b"at").strip()
    if not at.isdigit():
        return None
    try:
        occurred_at = _EPOCH + timedelta(microseconds=int(at))
    except OverflowError:
        return None
    return _pending(
        f"r:{entry_id}",
        _text(fields, b"t"),
        _text(fields, b"k"),
        _text(fields, b"n").strip(),
        occurred_at,
        _text(fields, b"ip"),
        _text(fields, b"ua"),
        _text(fields, b"s"),
    )


def spooled_parse(row: tracking.SpooledHit) -> Pending | None:
    return _pending(
        f"spool:{row.id}",
        row.token,
        row.kind,
        "" if row.link_number is None else str(row.link_number),
        row.occurred_at,
        row.ip,
        row.user_agent,
        row.session,
    )


# --- Recording -----------------------------------------------------------------------------------


@dataclass
class _Recorded:
    done: set[str]  # keys recorded (new or before) or dropped: to let go of
    recorded: int = 0
    dropped: int = 0
    failed: int = 0


def record(client: Redis[bytes], hits: Sequence[Pending]) -> _Recorded:
    """Record a batch: resolve, classify, and per company one bound transaction (committed
    here). Returns the keys the buffer may let go of: recorded or of no tracked message."""
    messages = tracking.tokens_resolve({hit.token for hit in hits})
    outcome = _Recorded(done=set())
    by_company: dict[int, list[tuple[Pending, tracking.TrackedMessage]]] = defaultdict(list)
    for hit in hits:
        message = messages.get(hit.token)
        if message is None:
            outcome.done.add(hit.key)
            outcome.dropped += 1
        else:
            by_company[message.company_id].append((hit, message))
    marks = {hit.session for pairs in by_company.values() for hit, _ in pairs if hit.session}
    try:
        users = sessions.session_users(client, marks)
    except RedisError as exc:
        # Whose session a mark is cannot be told now: those hits wait (in the spool) for Redis;
        # the rest, nearly all (a pixel in a mail client carries no cookie), go on.
        logger.warning("tracking: session marks not read, Redis failed: %s", exc)
        users = {}
        for company_id in list(by_company):
            waiting = [pair for pair in by_company[company_id] if pair[0].session]
            outcome.failed += len(waiting)
            by_company[company_id] = [
                pair for pair in by_company[company_id] if pair not in waiting
            ]
    for company_id, pairs in by_company.items():
        if not pairs:
            continue
        try:
            with tenancy.bound(company_id):
                outcome.recorded += _company_record(company_id, pairs, users)
        except Exception:
            # Left in the buffer: claimed again after CLAIM_IDLE_MS, the others go on.
            logger.exception("tracking: recording %d hit(s) of company %s", len(pairs), company_id)
            outcome.failed += len(pairs)
        else:
            outcome.done.update(hit.key for hit, _ in pairs)
    return outcome


def _company_record(
    company_id: int,
    pairs: Sequence[tuple[Pending, tracking.TrackedMessage]],
    users: dict[str, int],
) -> int:
    """Precondition: bound to `company_id`."""
    asked = {
        (users[hit.session], message.account_id) for hit, message in pairs if hit.session in users
    }
    senders = tracking.sending_side(company_id=company_id, pairs=asked) if asked else set()
    hits: list[tracking.Hit] = []
    for hit, message in pairs:
        user_id = users.get(hit.session)
        found = classify.classify(
            kind=hit.kind,
            user_agent=hit.user_agent,
            ip=hit.ip or "",
            occurred_at=hit.occurred_at,
            delivered_at=message.sent_at,
            sender_seen=user_id is not None and (user_id, message.account_id) in senders,
        )
        hits.append(
            tracking.Hit(
                event_key=hit.event_key,
                outbound_id=message.outbound_id,
                kind=hit.kind,
                occurred_at=hit.occurred_at,
                source=found.source,
                link_number=hit.link_number,
                ip=hit.ip,
                user_agent=hit.user_agent,
                source_detail=found.detail,
                client=found.client,
                device=found.device,
            )
        )
    return tracking.events_record(company_id=company_id, hits=hits)


# --- The stream ----------------------------------------------------------------------------------


def group_ensure(client: Redis[bytes], stream: str) -> None:
    """The consumer group, from the stream's first entry (made with the stream if need be)."""
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _entries(raw: Any) -> list[tuple[str, dict[bytes, bytes] | None]]:
    entries: list[tuple[str, dict[bytes, bytes] | None]] = []
    for item in raw or []:
        if item is None:
            continue
        entry_id, fields = item
        if entry_id is None:
            continue
        name = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        entries.append((name, fields))
    return entries


def _batch(
    client: Redis[bytes], stream: str, entries: list[tuple[str, dict[bytes, bytes] | None]]
) -> FlushOutcome:
    outcome = FlushOutcome(read=len(entries))
    by_key: dict[str, str] = {}
    parsed: list[Pending] = []
    release: list[str] = []
    for entry_id, fields in entries:
        hit = entry_parse(entry_id, fields)
        if hit is None:
            release.append(entry_id)  # malformed, or deleted while pending: nothing to record
            outcome.dropped += 1
        else:
            by_key[hit.key] = entry_id
            parsed.append(hit)
    if parsed:
        recorded = record(client, parsed)
        outcome.recorded += recorded.recorded
        outcome.dropped += recorded.dropped
        outcome.failed += recorded.failed
        release.extend(by_key[key] for key in recorded.done)
    if release:
        if after_commit is not None:
            after_commit(release)
        pipeline = client.pipeline(transaction=True)
        pipeline.xack(stream, GROUP, *release)
        pipeline.xdel(stream, *release)
        pipeline.execute()
    return outcome


def _forget_consumers(client: Redis[bytes], stream: str, consumer: str) -> None:
    """Drop consumers of processes long gone (nothing pending, idle for an hour)."""
    for info in client.xinfo_consumers(stream, GROUP):  # type: ignore[no-untyped-call]
        name = info["name"].decode() if isinstance(info["name"], bytes) else str(info["name"])
        if name != consumer and not info["pending"] and info["idle"] > CONSUMER_FORGOTTEN_MS:
            client.xgroup_delconsumer(stream, GROUP, name)  # type: ignore[no-untyped-call]


def stream_flush(
    client: Redis[bytes],
    *,
    consumer: str,
    deadline: float,
    block_ms: int | None = None,
    batch: int = BATCH,
    claim_idle_ms: int = CLAIM_IDLE_MS,
) -> FlushOutcome:
    """Record what waits in the stream: first the entries dead consumers left, then new ones,
    until the stream is drained or `deadline` (time.monotonic()) passed. `block_ms`: wait that
    long for new entries when there are none (the command's loop)."""
    stream = str(settings.CRM_TRACKING_STREAM)
    group_ensure(client, stream)
    outcome = FlushOutcome()
    start = "0-0"
    while time.monotonic() < deadline:
        claimed = client.xautoclaim(
            stream, GROUP, consumer, min_idle_time=claim_idle_ms, start_id=start, count=batch
        )
        entries = _entries(claimed[1])
        if entries:
            outcome.add(_batch(client, stream, entries))
        start = claimed[0].decode() if isinstance(claimed[0], bytes) else str(claimed[0])
        if start == "0-0":
            break
    _forget_consumers(client, stream, consumer)
    while time.monotonic() < deadline:
        try:
            answer = client.xreadgroup(GROUP, consumer, {stream: ">"}, count=batch, block=block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            group_ensure(client, stream)  # the stream went (Redis restarted empty): again
            continue
        entries = _entries(answer[0][1]) if answer else []
        if not entries:
            break
        outcome.add(_batch(client, stream, entries))
        block_ms = None  # a blocking wait only while there is nothing to do
    return outcome


# --- The spool -----------------------------------------------------------------------------------


def spool_flush(client: Redis[bytes], *, deadline: float, batch: int = BATCH) -> FlushOutcome:
    """Record what the endpoints spooled in PostgreSQL, oldest first, and delete it after."""
    outcome = FlushOutcome()
    while time.monotonic() < deadline:
        rows = tracking.spool_take(limit=batch)
        if not rows:
            break
        outcome.read += len(rows)
        parsed: list[Pending] = []
        done: list[int] = []
        for row in rows:
            hit = spooled_parse(row)
            if hit is None:
                done.append(row.id)
                outcome.dropped += 1
            else:
                parsed.append(hit)
        ids = {f"spool:{row.id}": row.id for row in rows}
        if parsed:
            recorded = record(client, parsed)
            outcome.recorded += recorded.recorded
            outcome.dropped += recorded.dropped
            outcome.failed += recorded.failed
            done.extend(ids[key] for key in recorded.done)
        if after_commit is not None and done:
            after_commit([f"spool:{row_id}" for row_id in done])
        tracking.spool_done(ids=done)
        if len(done) < len(rows):
            break  # some failed: they stay spooled for a later pass (not a loop over them)
    return outcome


# --- A pass --------------------------------------------------------------------------------------


@contextmanager
def _recorder_lock() -> Iterator[bool]:
    """One recorder at a time: a session-level advisory lock, released by PostgreSQL when the
    worker's connection dies."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, _LOCK_KEY])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, _LOCK_KEY])


def hits_flush(
    *,
    seconds: float = 4.0,
    block_ms: int | None = None,
    consumer: str | None = None,
    client: Redis[bytes] | None = None,
    claim_idle_ms: int = CLAIM_IDLE_MS,
    spool: bool = True,
) -> FlushOutcome:
    """One pass of the recorder for at most about `seconds`: the stream, then the spool. Does
    nothing (`busy`) while another recorder holds the lock."""
    client = client or redis_client()
    deadline = time.monotonic() + seconds
    with tenancy.request_scope(), _recorder_lock() as acquired:
        if not acquired:
            return FlushOutcome(busy=True)
        try:
            outcome = stream_flush(
                client,
                consumer=consumer or consumer_name(),
                deadline=deadline,
                block_ms=block_ms,
                claim_idle_ms=claim_idle_ms,
            )
        except RedisError as exc:
            # What waits in Redis waits on; what the endpoints spooled meanwhile need not.
            logger.warning("tracking: the stream could not be read, Redis failed: %s", exc)
            outcome = FlushOutcome(redis_down=True)
        if spool:
            outcome.add(spool_flush(client, deadline=max(deadline, time.monotonic() + 1)))
    return outcome
