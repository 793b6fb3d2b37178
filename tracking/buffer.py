"""Where a hit waits for the flush worker: the Redis stream `crm:tracking:hits`
(`CRM_TRACKING_STREAM`), or, when Redis cannot take it, PostgreSQL's spool (`tracking.doors`).

The contract with `tracking.flush` (docs/decisions/0014-tracking.md): one XADD per hit, no
trimming here (the worker trims what it recorded), fields `t` token, `k` "o" | "c", `n` link
number ("" for opens), `at` microseconds since the epoch (UTC), `ip`, `ua`, `s` session mark.
The spool takes the same values (`kind` "o" | "c").

A hit is answered only once Redis acknowledged its XADD, or PostgreSQL committed its spool row:
an answered hit is never lost. When both fail the hit is answered anyway (the recipient's
mail client must not show a broken image or a dead link) and a warning says how many were lost.
No retry within Redis: a hit whose XADD failed goes to the spool, so a reply lost on the way
back cannot make it twice in the stream. After a failure Redis is left alone for a second
(`REDIS_PAUSE`): a hung Redis costs one timeout, not one per hit.

- `SyncBuffer`: one XADD per hit, for the WSGI entry (a thread per request).
- `AsyncBuffer`: group commit for the asyncio server. The hits of one loop iteration are sent
  in one write (pipelined XADDs, `tracking.redispipe`) and their replies read in one go; hits
  arriving meanwhile form the next batch, sent as soon as the replies are in. Each hit's
  callback runs when its batch is stored; the server sends the answers then.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import redis
from hiredis import ReplyError
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from tracking.doors import AsyncDoors, Doors
from tracking.hits import Hit
from tracking.redispipe import RedisPipe, RedisPipeError

logger = logging.getLogger(__name__)

REDIS_TIMEOUT = 2.0  # seconds, for one XADD or one batch
REDIS_CONNECT_TIMEOUT = 1.0
REDIS_PAUSE = 1.0  # seconds Redis is skipped after it failed
BATCH_MAX = 2048  # hits in one round trip
_LOG_EVERY = 10.0  # seconds between two warnings about the same trouble


def hit_fields(hit: Hit) -> dict[str, str]:
    """The stream entry of a hit, as the contract names its fields."""
    return {
        "t": hit.token,
        "k": hit.kind,
        "n": hit.link,
        "at": str(hit.at),
        "ip": hit.ip,
        "ua": hit.ua,
        "s": hit.session,
    }


# XADD <stream> * t <token> k <kind> n <link> at <at> ip <ip> ua <ua> s <session>, in the Redis
# protocol, as one format: packing a hit is one operation.
_XADD = (
    b"*17\r\n$4\r\nXADD\r\n$%d\r\n%b\r\n$1\r\n*\r\n"
    b"$1\r\nt\r\n$%d\r\n%b\r\n$1\r\nk\r\n$%d\r\n%b\r\n$1\r\nn\r\n$%d\r\n%b\r\n"
    b"$2\r\nat\r\n$%d\r\n%b\r\n$2\r\nip\r\n$%d\r\n%b\r\n$2\r\nua\r\n$%d\r\n%b\r\n"
    b"$1\r\ns\r\n$%d\r\n%b\r\n"
)


def packed_xadd(stream: str, hit: Hit) -> bytes:
    """The XADD of a hit in the Redis protocol (what `hit_fields` gives redis-py)."""
    key = stream.encode()
    token = hit.token.encode()
    kind = hit.kind.encode()
    link = hit.link.encode()
    at = b"%d" % hit.at
    ip = hit.ip.encode()
    ua = hit.ua.encode("utf-8", "replace")
    session = hit.session.encode()
    return _XADD % (
        len(key),
        key,
        len(token),
        token,
        len(kind),
        kind,
        len(link),
        link,
        len(at),
        at,
        len(ip),
        ip,
        len(ua),
        ua,
        len(session),
        session,
    )


class _Trouble:
    """Counts hits spooled or lost and logs them at most every `_LOG_EVERY` seconds (the first
    at once): a flood while Redis is down gives a line every ten seconds, not one per hit."""

    def __init__(self) -> None:
        self.spooled = 0
        self.lost = 0
        self.causes: set[str] = set()
        self._logged_at = -_LOG_EVERY
        self._lock = threading.Lock()

    def note(self, *, spooled: int = 0, lost: int = 0, cause: str) -> None:
        with self._lock:
            self.spooled += spooled
            self.lost += lost
            self.causes.add(cause)
        if time.monotonic() - self._logged_at >= _LOG_EVERY:
            self.report()

    def report_if_due(self) -> None:
        """Log what was counted since the last warning, when it is time (a timer calls this,
        so the last of a series is not left unsaid)."""
        if (self.spooled or self.lost) and time.monotonic() - self._logged_at >= _LOG_EVERY:
            self.report()

    def report(self) -> None:
        with self._lock:
            spooled, lost, causes = self.spooled, self.lost, sorted(self.causes)
            self.spooled = self.lost = 0
            self.causes = set()
            self._logged_at = time.monotonic()
        if lost:
            logger.warning(
                "tracking: %d hit(s) answered but not recorded (Redis and PostgreSQL both "
                "failed: %s); %d spooled in PostgreSQL",
                lost,
                ", ".join(causes),
                spooled,
            )
        elif spooled:
            logger.warning(
                "tracking: Redis failed (%s); %d hit(s) spooled in PostgreSQL",
                ", ".join(causes),
                spooled,
            )


def error_name(exc: BaseException) -> str:
    # The class only: messages may carry addresses or credentials.
    return exc.__class__.__name__


def _redis_options() -> dict[str, Any]:
    return {
        "socket_timeout": REDIS_TIMEOUT,
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
        "health_check_interval": 0,
    }


class SyncBuffer:
    """One XADD per hit, from any thread; the spool when Redis fails."""

    def __init__(self, *, redis_url: str, stream: str, doors: Doors | None = None) -> None:
        self.redis_url = redis_url
        self.stream = stream
        self.doors = doors or Doors()
        self.trouble = _Trouble()
        self._client: redis.Redis[bytes] | None = None
        self._pid = 0
        self._paused_until = 0.0

    @classmethod
    def from_settings(cls) -> SyncBuffer:
        from django.conf import settings

        return cls(redis_url=settings.REDIS_URL, stream=settings.CRM_TRACKING_STREAM)

    def _redis(self) -> redis.Redis[bytes]:
        # A client per process: a forked worker must not share its parent's sockets.
        if self._client is None or self._pid != os.getpid():
            self._client = redis.Redis.from_url(
                self.redis_url, retry=Retry(NoBackoff(), 0), **_redis_options()
            )
            self._pid = os.getpid()
        return self._client

    def add(self, hit: Hit) -> None:
        """Store one hit; returns once it is stored, or known lost (logged)."""
        cause = "Redis paused after a failure"
        if time.monotonic() >= self._paused_until:
            try:
                self._redis().xadd(self.stream, hit_fields(hit))
                return
            except RedisError as exc:
                self._paused_until = time.monotonic() + REDIS_PAUSE
                cause = error_name(exc)
        try:
            self.doors.spool([hit])
        except psycopg.Error as exc:
            self.trouble.note(lost=1, cause=f"{cause}; {error_name(exc)}")
        else:
            self.trouble.note(spooled=1, cause=cause)


class AsyncBuffer:
    """Group commit of hits for one event loop (see the module's docstring)."""

    def __init__(self, *, redis_url: str, stream: str, doors: AsyncDoors) -> None:
        self.redis_url = redis_url
        self.stream = stream
        self.doors = doors
        self.trouble = _Trouble()
        self._pending: list[tuple[Hit, Callable[[], None]]] = []
        self._busy = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._paused_until = 0.0
        self._pipe = RedisPipe(
            redis_url, timeout=REDIS_TIMEOUT, connect_timeout=REDIS_CONNECT_TIMEOUT
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, hit: Hit, stored: Callable[[], None]) -> None:
        """Buffer a hit; `stored()` is called once it is stored (or known lost)."""
        self._pending.append((hit, stored))
        if not self._busy:
            self._busy = True
            self._idle.clear()
            asyncio.get_running_loop().call_soon(self._next_batch)

    def _next_batch(self) -> None:
        if not self._pending:
            self._busy = False
            self._idle.set()
            return
        batch = self._pending[:BATCH_MAX]
        del self._pending[:BATCH_MAX]
        task = asyncio.get_running_loop().create_task(self._store(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _store(self, batch: list[tuple[Hit, Callable[[], None]]]) -> None:
        hits = [hit for hit, _stored in batch]
        try:
            await self._put(hits)
        except Exception as exc:
            logger.exception("tracking: storing hits failed")
            self.trouble.note(lost=len(hits), cause=error_name(exc))
        finally:
            for _hit, stored in batch:
                try:
                    stored()
                except Exception:
                    logger.exception("tracking: answering a hit failed")
            self._next_batch()

    async def _put(self, hits: Sequence[Hit]) -> None:
        cause = "Redis paused after a failure"
        if time.monotonic() >= self._paused_until:
            unstored, failure = await self._xadd(hits)
            if failure is None:
                return
            self._paused_until = time.monotonic() + REDIS_PAUSE
            hits, cause = unstored, error_name(failure)
        try:
            await self.doors.spool(hits)
        except psycopg.Error as exc:
            self.trouble.note(lost=len(hits), cause=f"{cause}; {error_name(exc)}")
        else:
            self.trouble.note(spooled=len(hits), cause=cause)

    async def _xadd(self, hits: Sequence[Hit]) -> tuple[list[Hit], BaseException | None]:
        """All the XADDs in one write, then their replies. Returns the hits Redis did not
        acknowledge (refused, or no reply came) and why, or ([], None)."""
        stream = self.stream
        try:
            replies = await self._pipe.send(
                b"".join([packed_xadd(stream, hit) for hit in hits]), len(hits)
            )
        except RedisPipeError as exc:
            # No reply, or not all: those hits may or may not be in the stream; the spool takes
            # them all (at least once, never lost).
            return list(hits), exc
        refused = [
            hit for hit, reply in zip(hits, replies, strict=True) if isinstance(reply, ReplyError)
        ]
        if refused:
            failure = next(reply for reply in replies if isinstance(reply, ReplyError))
            return refused, failure
        return [], None

    async def drain(self) -> None:
        """Wait until every buffered hit is stored (or known lost)."""
        await self._idle.wait()

    async def close(self) -> None:
        await self.drain()
        self.trouble.report()
        self._pipe.close()
        await self.doors.close()
