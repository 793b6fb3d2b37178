"""IMAP IDLE watchers: push notifications for many mail accounts on one asyncio event loop.

Each (account, folder) pair gets one IMAP connection in IDLE on that folder (IDLE watches only the
selected mailbox) and one asyncio task; no thread per account. The watcher does not sync: when
the server reports a change it calls `on_change(key, folder)`, and the caller enqueues the
account's normal sync. A missed notification costs only latency, because the periodic poll still
runs; so every failure here ends in a reconnect with backoff, never in a crash.

The conversation, per connection (C: client, S: server):

    S: * OK [CAPABILITY IMAP4rev1 ... IDLE] ready
    C: A1 CAPABILITY                    (then STARTTLS and CAPABILITY again, for "starttls")
    C: A2 LOGIN "user" "secret"         (quoted string, or a literal for 8-bit or long values)
    C: A3 CAPABILITY                    (after login the list can differ; IDLE must be in it)
    C: A4 EXAMINE "INBOX"               (read-only: watching must never change \\Recent or flags)
    C: A5 IDLE
    S: + idling
    S: * 12 EXISTS                      (also n EXPUNGE, n FETCH, VANISHED: call on_change)
    C: DONE                             (every renew_seconds, before servers drop an idle client)
    S: A5 OK Idle completed.
    C: A6 IDLE ...

When the connection drops, times out or gets a BYE, the watcher waits 1 s, 2 s, 4 s, ... up to
`max_backoff` (each wait drawn between half and all of that, so the accounts of one server do not
reconnect in step), reconnects, and calls `on_change` once: mail may have arrived meanwhile. The
very first connection does not call it. Refused credentials wait `max_backoff` at once. A server
without IDLE is marked "unsupported" and left to the periodic poll.

Folder names are given decoded (as a person reads them) and sent in modified UTF-7.
The password never reaches a log line, an exception message or a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from mailsync.providers.imap import encode_mailbox_name

logger = logging.getLogger(__name__)

OnChange = Callable[[str, str], Awaitable[None] | None]

SECURITY_MODES = ("ssl", "starttls", "none")
COALESCE_SECONDS = 0.5  # at most one on_change per watcher in this window
CONNECT_TIMEOUT = 30.0
COMMAND_TIMEOUT = 60.0
FIRST_BACKOFF = 1.0
READ_LIMIT = 1024 * 1024  # longest response line accepted

STATUS_CONNECTING = "connecting"
STATUS_IDLING = "idling"
STATUS_UNSUPPORTED = "unsupported"

_CHANGE = re.compile(rb"\* (?:\d+ (?:EXISTS|EXPUNGE|FETCH)|VANISHED)\b", re.IGNORECASE)
_BYE = re.compile(rb"\* BYE\b", re.IGNORECASE)
_LITERAL = re.compile(rb"\{(\d+)\+?\}\Z")


@dataclass(frozen=True)
class IdleTarget:
    """One account to watch. `key` is the caller's id for it, e.g. "<company_id>:<account_id>"."""

    key: str
    host: str
    port: int
    security: str  # "ssl" | "starttls" | "none"
    username: str
    password: str = field(repr=False)
    folders: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {SECURITY_MODES}, not {self.security!r}")
        if not isinstance(self.folders, tuple):
            raise TypeError("folders must be a tuple")

    def connection_settings(self) -> tuple[str, int, str, str, str]:
        """What a live connection depends on: a change here means reconnecting."""
        return (self.host, self.port, self.security, self.username, self.password)


class IdleSupervisor:
    """Keeps one IDLE watcher running per (target key, folder); see the module docstring.

    `on_change` may be a plain function or a coroutine function. It runs on the event loop, so it
    must be quick (enqueue a task, set an event); an exception from it is logged and ignored.
    All methods are called from the event loop that runs the watchers.
    """

    def __init__(
        self,
        on_change: OnChange,
        *,
        renew_seconds: float = 25 * 60,
        max_backoff: float = 300.0,
    ) -> None:
        self._settings = _Settings(on_change, renew_seconds, max_backoff)
        self._watchers: dict[tuple[str, str], _Watcher] = {}
        self._lock = asyncio.Lock()

    async def set_targets(self, targets: Iterable[IdleTarget]) -> None:
        """Watch exactly these targets: start new ones, stop removed ones, restart the ones whose
        server or credentials changed. Unchanged watchers keep their connection."""
        wanted: dict[tuple[str, str], IdleTarget] = {}
        keys: set[str] = set()
        for target in targets:
            if target.key in keys:
                raise ValueError(f"two targets share the key {target.key!r}")
            keys.add(target.key)
            for folder in target.folders:
                wanted[(target.key, folder)] = target
        async with self._lock:
            await self._apply(wanted)

    async def _apply(self, wanted: dict[tuple[str, str], IdleTarget]) -> None:
        stale = [
            watcher_id
            for watcher_id, watcher in self._watchers.items()
            if watcher_id not in wanted
            or wanted[watcher_id].connection_settings() != watcher.target.connection_settings()
        ]
        stopping = [self._watchers.pop(watcher_id) for watcher_id in stale]
        await asyncio.gather(*(watcher.stop() for watcher in stopping))

        for watcher_id, target in wanted.items():
            if watcher_id not in self._watchers:
                watcher = _Watcher(self._settings, target, watcher_id[1])
                self._watchers[watcher_id] = watcher
                watcher.start()

    async def close(self) -> None:
        """Stop every watcher and close its connection."""
        await self.set_targets(())

    def status(self) -> dict[tuple[str, str], str]:
        """(key, folder) -> "idling" | "connecting" | "backoff: <reason>" | "unsupported"."""
        return {watcher_id: watcher.status for watcher_id, watcher in self._watchers.items()}


@dataclass
class _Settings:
    """What every watcher of one supervisor shares."""

    on_change: OnChange
    renew_seconds: float
    max_backoff: float
    _tls_context: ssl.SSLContext | None = None

    def tls_context(self) -> ssl.SSLContext:
        # Certificate and host name verification on; created on first use (it loads the system
        # CA store), then shared by all connections.
        if self._tls_context is None:
            self._tls_context = ssl.create_default_context()
        return self._tls_context


class _AuthFailed(Exception):
    """The server refused the credentials: retrying soon will not help."""


class _Unsupported(Exception):
    """The server has no IDLE: the periodic poll is all there is for this account."""


class _ProtocolError(Exception):
    """The server said something unexpected, or hung up (BYE): reconnect later."""


@dataclass(frozen=True)
class _Literal:
    data: bytes = field(repr=False)


def _astring(value: str) -> bytes | _Literal:
    """An IMAP string argument: a quoted string when it is printable ASCII, else a literal."""
    data = value.encode("utf-8")
    if len(data) < 1000 and all(0x20 <= byte < 0x7F for byte in data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return _Literal(data)


class _Connection:
    """One IMAP connection: send commands, read responses (literals inlined)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._tag = 0

    @classmethod
    async def open(cls, target: IdleTarget, context: ssl.SSLContext | None) -> _Connection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                target.host,
                target.port,
                ssl=context if target.security == "ssl" else None,
                server_hostname=target.host if target.security == "ssl" else None,
                limit=READ_LIMIT,
            ),
            CONNECT_TIMEOUT,
        )
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Notice a silently dead peer in minutes rather than at the next IDLE renewal.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if hasattr(socket, "TCP_KEEPIDLE"):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 120)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 30)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)
        return cls(reader, writer)

    async def close(self) -> None:
        self.writer.close()
        # Closing anyway: the peer may already be gone.
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)

    async def start_tls(self, context: ssl.SSLContext, host: str) -> None:
        # Anything the server sent after its STARTTLS reply came unencrypted and could have been
        # injected by a man in the middle: refuse it rather than read it as if it were protected.
        if getattr(self.reader, "_buffer", b""):
            raise _ProtocolError("the server sent data after its STARTTLS reply")
        await asyncio.wait_for(
            self.writer.start_tls(context, server_hostname=host), CONNECT_TIMEOUT
        )

    async def read_response(self, timeout: float | None = COMMAND_TIMEOUT) -> bytes:
        """One whole response without its CRLF, literals inlined. Raises TimeoutError if
        nothing starts arriving within `timeout` (nothing is consumed then)."""
        line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout)
        parts = [line[:-2]]
        try:
            while match := _LITERAL.search(parts[-1]):
                size = int(match.group(1))
                parts.append(await asyncio.wait_for(self.reader.readexactly(size), COMMAND_TIMEOUT))
                rest = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), COMMAND_TIMEOUT)
                parts.append(rest[:-2])
        except TimeoutError:
            # Not the caller's "nothing arrived yet": the stream is stuck mid-response.
            raise _ProtocolError("the server stopped in the middle of a response") from None
        return b"".join(parts)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), COMMAND_TIMEOUT)

    def next_tag(self) -> bytes:
        self._tag += 1
        return b"A%d" % self._tag

    async def command(
        self,
        name: bytes,
        *args: bytes | _Literal,
        on_untagged: Callable[[bytes], Awaitable[None]] | None = None,
    ) -> tuple[bytes, bytes]:
        """Run one command to completion: returns (status, text) of its tagged response, status
        being b"OK", b"NO" or b"BAD". Untagged responses go to `on_untagged`."""
        tag = self.next_tag()
        line = tag + b" " + name
        for arg in args:
            if isinstance(arg, _Literal):
                await self.send(line + b" {%d}\r\n" % len(arg.data))
                ended = await self._until(tag, on_untagged, continuation=True)
                if ended is not None:
                    return ended
                line = arg.data
            else:
                line += b" " + arg
        await self.send(line + b"\r\n")
        ended = await self._until(tag, on_untagged, continuation=False)
        if ended is None:  # _until(continuation=False) only returns at the tagged response
            raise _ProtocolError("no tagged response")
        return ended

    async def _until(
        self,
        tag: bytes,
        on_untagged: Callable[[bytes], Awaitable[None]] | None,
        *,
        continuation: bool,
    ) -> tuple[bytes, bytes] | None:
        """Read up to this command's tagged response, or (with `continuation`) up to the
        server's "+" go-ahead, which returns None."""
        while True:
            response = await self.read_response()
            if response.startswith(tag + b" "):
                status, _, text = response[len(tag) + 1 :].partition(b" ")
                return status.upper(), text
            if response.startswith(b"+"):
                if continuation:
                    return None
                raise _ProtocolError("unexpected continuation request")
            if _BYE.match(response):
                raise _ProtocolError(f"server hung up: {_text(response)}")
            if on_untagged is not None:
                await on_untagged(response)

    async def capabilities(self) -> set[str]:
        found: set[str] = set()

        async def collect(response: bytes) -> None:
            if response.upper().startswith(b"* CAPABILITY "):
                found.update(response[len(b"* CAPABILITY ") :].decode("ascii", "replace").split())

        status, text = await self.command(b"CAPABILITY", on_untagged=collect)
        if status != b"OK":
            raise _ProtocolError(f"CAPABILITY failed: {_text(text)}")
        return {capability.upper() for capability in found}


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")[:200]


class _Watcher:
    """The task that keeps one folder of one account in IDLE."""

    def __init__(self, settings: _Settings, target: IdleTarget, folder: str) -> None:
        self.settings = settings
        self.target = target
        self.folder = folder
        self.status = STATUS_CONNECTING
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._last_fire = -COALESCE_SECONDS
        self._pending_fire: float | None = None  # loop time when a coalesced call is due
        self._idled = False  # the current session reached IDLE
        self._stopping = False

    def __repr__(self) -> str:
        return f"<_Watcher {self.target.key} {self.folder!r} {self.status}>"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"imap-idle {self.target.key}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is None:
            return
        # Cancel until it is done: Python 3.11's asyncio.wait_for can swallow a cancellation
        # that lands as its inner await completes (gh-86296), and the watcher would then go on
        # with its loop while this waited forever. `_stopping` ends the loop in that case.
        while not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=1.0)

    async def _run(self) -> None:
        failures = 0  # consecutive sessions that ended before reaching IDLE
        attempts = 0
        while not self._stopping:
            self.status = STATUS_CONNECTING
            self._idled = False
            auth_failed = False
            try:
                await self._session(reconnect=attempts > 0)
            except _Unsupported:
                self.status = STATUS_UNSUPPORTED
                logger.info("IMAP IDLE %s %r: the server has no IDLE", self.target.key, self.folder)
                return
            except _AuthFailed as error:
                reason = f"authentication failed: {error}"
                auth_failed = True
            except (
                OSError,
                EOFError,
                TimeoutError,
                asyncio.LimitOverrunError,
                _ProtocolError,
            ) as error:
                # EOFError covers asyncio.IncompleteReadError; OSError covers ssl.SSLError.
                reason = str(error) or type(error).__name__
            except Exception as error:
                # A bug or an unparsable server must not end the watcher for good.
                logger.exception("IMAP IDLE %s %r failed", self.target.key, self.folder)
                reason = f"internal error: {type(error).__name__}"
            attempts += 1
            if self._idled:
                failures = 0
            max_backoff = self.settings.max_backoff
            # 1 s, 2 s, 4 s, ... up to max_backoff; wrong credentials wait the longest at once.
            delay = max_backoff if auth_failed else FIRST_BACKOFF * 2 ** min(failures, 30)
            delay = min(delay, max_backoff) * random.uniform(0.5, 1.0)  # noqa: S311 -- jitter
            failures += 1
            self.status = f"backoff: {reason}"
            logger.warning(
                "IMAP IDLE %s %r: %s; retrying in %.1f s",
                self.target.key,
                self.folder,
                reason,
                delay,
            )
            await asyncio.sleep(delay)

    async def _session(self, *, reconnect: bool) -> None:
        target = self.target
        context = self.settings.tls_context() if target.security != "none" else None
        connection = await _Connection.open(target, context)
        try:
            greeting = await connection.read_response()
            if _BYE.match(greeting):
                raise _ProtocolError(f"server refused the connection: {_text(greeting)}")
            if not greeting.upper().startswith((b"* OK", b"* PREAUTH")):
                raise _ProtocolError(f"unexpected greeting: {_text(greeting)}")
            capabilities = await connection.capabilities()
            if target.security == "starttls":
                if "STARTTLS" not in capabilities:
                    # Never fall back to sending the password in clear text.
                    raise _ProtocolError("the server does not offer STARTTLS")
                status, text = await connection.command(b"STARTTLS")
                if status != b"OK":
                    raise _ProtocolError(f"STARTTLS failed: {_text(text)}")
                await connection.start_tls(self.settings.tls_context(), target.host)
                capabilities = await connection.capabilities()
            if not greeting.upper().startswith(b"* PREAUTH"):
                await self._login(connection, capabilities)
            # The post-login list is the one that counts (IDLE is often absent before login).
            if "IDLE" not in await connection.capabilities():
                raise _Unsupported
            status, text = await connection.command(
                b"EXAMINE", _astring(encode_mailbox_name(self.folder))
            )
            if status != b"OK":
                raise _ProtocolError(f"cannot open the folder: {_text(text)}")
            first = True
            while True:
                await self._idle(connection, notify=reconnect and first)
                first = False
        finally:
            await connection.close()

    async def _login(self, connection: _Connection, capabilities: set[str]) -> None:
        if "LOGINDISABLED" in capabilities:
            raise _AuthFailed("the server does not accept LOGIN on this connection")
        status, text = await connection.command(
            b"LOGIN", _astring(self.target.username), _astring(self.target.password)
        )
        if status != b"OK":
            raise _AuthFailed(_text(text))

    async def _idle(self, connection: _Connection, *, notify: bool) -> None:
        """One IDLE ... DONE round of at most renew_seconds."""
        tag = connection.next_tag()
        await connection.send(tag + b" IDLE\r\n")
        while True:
            response = await connection.read_response()
            if response.startswith(b"+"):
                break
            if response.startswith(tag + b" "):
                raise _ProtocolError(f"IDLE refused: {_text(response)}")
            await self._untagged(response)
        self.status = STATUS_IDLING
        if not self._idled:
            self._idled = True
            logger.info("IMAP IDLE %s %r: idling", self.target.key, self.folder)
        if notify:
            await self._fire()  # mail may have arrived while we were disconnected

        renew_at = self._loop.time() + self.settings.renew_seconds
        while True:
            now = self._loop.time()
            if self._pending_fire is not None and now >= self._pending_fire:
                await self._fire()
                continue
            if now >= renew_at:
                break
            wake_at = renew_at if self._pending_fire is None else min(renew_at, self._pending_fire)
            try:
                response = await connection.read_response(timeout=wake_at - now)
            except TimeoutError:
                continue
            if response.startswith(tag + b" "):
                if not response[len(tag) + 1 :].upper().startswith(b"OK"):
                    raise _ProtocolError(f"IDLE ended badly: {_text(response)}")
                return  # the server ended IDLE by itself; the caller starts the next round
            await self._untagged(response)

        await connection.send(b"DONE\r\n")
        while True:
            response = await connection.read_response()
            if response.startswith(tag + b" "):
                if not response[len(tag) + 1 :].upper().startswith(b"OK"):
                    raise _ProtocolError(f"IDLE ended badly: {_text(response)}")
                return
            await self._untagged(response)

    async def _untagged(self, response: bytes) -> None:
        if _BYE.match(response):
            raise _ProtocolError(f"server hung up: {_text(response)}")
        if _CHANGE.match(response):
            await self._changed()

    async def _changed(self) -> None:
        """Coalesce: call now if the last call is old enough, else once when it is."""
        if self._pending_fire is not None:
            return
        due = self._last_fire + COALESCE_SECONDS
        if self._loop.time() >= due:
            await self._fire()
        else:
            self._pending_fire = due

    async def _fire(self) -> None:
        self._last_fire = self._loop.time()
        self._pending_fire = None
        try:
            result = self.settings.on_change(self.target.key, self.folder)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("on_change failed for %s %r", self.target.key, self.folder)
