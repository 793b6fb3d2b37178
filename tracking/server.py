"""The production server of the tracking endpoints: docker-compose's `tracking` service.

    python -m tracking.server --host 0.0.0.0 --port 8001 [--workers N]

A supervisor process binds one listening socket per worker on the same port (SO_REUSEPORT: the
kernel spreads connections over them) and forks the workers; each runs an asyncio loop on uvloop
with httptools parsing HTTP/1.1 (keep-alive, pipelining, HEAD). A request is answered by
`tracking.hits` from prepared bytes; its hit goes to `tracking.buffer.AsyncBuffer`, which stores
the hits of a loop iteration in one pipelined round trip to Redis (group commit), and the
answers leave once Redis acknowledged them. Pipelined answers leave in request order.

Why this and not gunicorn: with a Python process per connection at a time (gunicorn's sync
workers) each hit pays its own Redis round trip and its own TCP connection; here one process
serves thousands of keep-alive connections and one round trip stores many hits. The
measurements, and the alternatives measured, are in docs/benchmarks.md ("Tracking
endpoints").

Robustness: a worker that dies is replaced (its socket stays open in the supervisor, so
connections waiting in its queue are kept); SIGTERM or SIGINT stops accepting, answers the
requests already read, stores their hits, closes idle keep-alive connections and exits within
`--graceful-timeout`; requests have size limits (URL, headers, body) and time limits (a request
must arrive whole within REQUEST_TIMEOUT; idle keep-alive connections close after
KEEPALIVE_TIMEOUT); a worker whose supervisor died stops by itself. `GET /healthz` answers 200
without asking Redis or PostgreSQL: hits are answered even when both are down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from email.utils import formatdate
from typing import Any, cast
from urllib.parse import unquote

import httptools
import psycopg
import uvloop

from tracking.buffer import AsyncBuffer, error_name
from tracking.doors import AsyncDoors
from tracking.hits import (
    NOT_FOUND,
    UNAVAILABLE,
    Answer,
    Endpoints,
    Outcome,
    Pending,
)

logger = logging.getLogger("tracking.server")

URL_LIMIT = 4096  # bytes of a request target
HEADERS_LIMIT = 16 * 1024  # bytes of a request's head
BODY_LIMIT = 16 * 1024  # a GET has no business sending more
REQUEST_TIMEOUT = 15.0  # seconds for a request to arrive whole (and for a first request)
KEEPALIVE_TIMEOUT = 75.0  # seconds an idle keep-alive connection is kept
PIPELINE_LIMIT = 64  # answers waiting on one connection before it is no longer read
BACKLOG = 4096
GRACEFUL_TIMEOUT = 10.0
# A worker that dies this soon after starting, this many times in a row, is not restarted again.
CRASH_SECONDS = 5.0
CRASH_LIMIT = 5

HEALTHY = Answer(
    200,
    "OK",
    (
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", "3"),
        ("Cache-Control", "no-store"),
    ),
    b"ok\n",
)
BAD_REQUEST = Answer(
    400,
    "Bad Request",
    (("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "12")),
    b"Bad request\n",
)
TOO_LARGE = Answer(
    431,
    "Request Header Fields Too Large",
    (("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "18")),
    b"Request too large\n",
)

# How a response ends its head: keep-alive HTTP/1.1 (nothing), closing, keep-alive HTTP/1.0.
_KEEP, _CLOSE, _KEEP_10 = 0, 1, 2
_CONNECTION_LINE = (b"", b"Connection: close\r\n", b"Connection: keep-alive\r\n")


class _Refused(Exception):
    """A request over a limit: answered with `answer`, then the connection closes."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


class _Slot:
    """One request's place in its connection's answer order."""

    __slots__ = ("close", "data", "ready")

    def __init__(self) -> None:
        self.data = b""
        self.ready = False
        self.close = False


class Worker:
    """The state of one worker process's loop: its connections, the buffer, the rendered
    answers of the current second (their Date)."""

    def __init__(self, endpoints: Endpoints, buffer: AsyncBuffer, doors: AsyncDoors) -> None:
        self.endpoints = endpoints
        self.buffer = buffer
        self.doors = doors
        self.connections: set[Connection] = set()
        self.stopping = False
        self.now = time.monotonic()
        self._date = b""
        self._rendered: dict[tuple[int, bool, int], tuple[Answer, bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.tick()

    def tick(self) -> None:
        """Once a second: the Date header, and connections past their time."""
        self.now = time.monotonic()
        self._date = f"Date: {formatdate(usegmt=True)}\r\n".encode()
        self._rendered.clear()
        for connection in list(self.connections):
            connection.check_time(self.now)
        self.buffer.trouble.report_if_due()

    def render(self, answer: Answer, head: bool, mode: int) -> bytes:
        key = (id(answer), head, mode)
        cached = self._rendered.get(key)
        if cached is not None and cached[0] is answer:
            return cached[1]
        data = b"".join(
            (
                b"HTTP/1.1 %d %s\r\n" % (answer.status, answer.reason.encode()),
                self._date,
                *(f"{name}: {value}\r\n".encode("latin-1") for name, value in answer.headers),
                _CONNECTION_LINE[mode],
                b"\r\n",
                b"" if head else answer.body,
            )
        )
        if len(self._rendered) < 256:
            self._rendered[key] = (answer, data)
        return data

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self, server: asyncio.AbstractServer, timeout: float) -> None:
        """Stop accepting; answer what was read; close; store every buffered hit."""
        self.stopping = True
        server.close()
        for connection in list(self.connections):
            connection.stop()
        deadline = time.monotonic() + timeout
        while (self.connections or self._tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection.abort()
        await self.buffer.close()


class Connection(asyncio.Protocol):
    """One client connection: parse requests, answer them in order."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.slots: deque[_Slot] = deque()
        self.closing = False
        self.reading_paused = False
        self.writing_paused = False
        self.last_active = worker.now
        self.served = 0
        # The request being read.
        self.in_request = False
        self.started = 0.0
        self.head_bytes = 0
        self.body_bytes = 0
        self.url = b""
        self.user_agent = b""
        self.forwarded_for = b""
        self.cookie = b""

    # --- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) and peer else ""
        self.worker.connections.add(self)
        if self.worker.stopping:
            self.stop()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.transport = None
        self.slots.clear()
        self.worker.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_active = self.worker.now
        if self.in_request:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
            if self.in_request and self.head_bytes > HEADERS_LIMIT:
                raise _Refused(TOO_LARGE)
        except _Refused as refused:
            self._refuse(refused.answer)
        except httptools.HttpParserUpgrade:
            self._refuse(BAD_REQUEST)
        except httptools.HttpParserError as error:
            cause = error.__context__
            self._refuse(cause.answer if isinstance(cause, _Refused) else BAD_REQUEST)

    def eof_received(self) -> bool:
        """The client sent all it will (a half-close): answer what it asked, then close."""
        self.closing = True
        return bool(self.slots)  # True keeps the transport open for the answers owed

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._resume_reading()

    # --- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_request = True
        self.started = self.worker.now
        self.head_bytes = 0
        self.body_bytes = 0
        self.url = b""
        self.user_agent = self.forwarded_for = self.cookie = b""

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > URL_LIMIT:
            raise _Refused(TOO_LARGE)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value)
        if self.head_bytes > HEADERS_LIMIT:
            raise _Refused(TOO_LARGE)
        name = name.lower()
        if name == b"user-agent":
            self.user_agent = value
        elif name == b"cookie":
            self.cookie = value if not self.cookie else self.cookie + b"; " + value
        elif name == b"x-forwarded-for":
            self.forwarded_for = (
                value if not self.forwarded_for else self.forwarded_for + b", " + value
            )

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > BODY_LIMIT:
            raise _Refused(TOO_LARGE)

    def on_message_complete(self) -> None:
        self.in_request = False
        if self.closing:
            return
        self.served += 1
        parser = self.parser
        method = parser.get_method().decode("ascii", "replace")
        keep_alive = parser.should_keep_alive() and not self.worker.stopping
        if not keep_alive:
            mode = _CLOSE
        elif parser.get_http_version() == "1.0":
            mode = _KEEP_10
        else:
            mode = _KEEP
        slot = _Slot()
        slot.close = mode == _CLOSE
        self.slots.append(slot)
        head = method == "HEAD"
        try:
            outcome = self._outcome(method)
        except Exception:
            logger.exception("tracking: a request failed")
            outcome = Outcome(NOT_FOUND, None)
        if isinstance(outcome, Pending):
            self.worker.spawn(self._click(outcome, slot, head, mode))
        else:
            self._answer(outcome, slot, head, mode)
        if slot.close:
            # Requests pipelined after a closing one are not answered.
            self.closing = True
        if len(self.slots) >= PIPELINE_LIMIT:
            self._pause_reading()

    # --- Answering ------------------------------------------------------------------------------

    def _outcome(self, method: str) -> Outcome | Pending:
        path = self._path()
        if path.startswith("/t/"):
            return self.worker.endpoints.request(
                method,
                path,
                peer=self.peer,
                forwarded_for=self.forwarded_for.decode("latin-1"),
                user_agent=_text(self.user_agent),
                cookie=self.cookie.decode("latin-1"),
            )
        if path == "/healthz" and method in ("GET", "HEAD"):
            return Outcome(HEALTHY, None)
        return Outcome(NOT_FOUND, None)

    def _path(self) -> str:
        url = self.url
        if url.startswith(b"/"):
            raw = url.split(b"?", 1)[0].split(b"#", 1)[0]
        else:  # absolute form, as sent to a proxy
            raw = httptools.parse_url(url).path or b"/"
        path = raw.decode("latin-1")
        # As WSGI's PATH_INFO: percent escapes decoded, bytes as latin-1.
        return unquote(path, encoding="latin-1") if "%" in path else path

    def _answer(self, outcome: Outcome, slot: _Slot, head: bool, mode: int) -> None:
        slot.data = self.worker.render(outcome.answer, head, mode)
        if outcome.hit is None:
            slot.ready = True
            self._send_ready()
        else:
            self.worker.buffer.add(outcome.hit, lambda: self._stored(slot))

    def _stored(self, slot: _Slot) -> None:
        slot.ready = True
        self._send_ready()

    async def _click(self, pending: Pending, slot: _Slot, head: bool, mode: int) -> None:
        try:
            tracked = await self.worker.doors.tracked(pending.token)
        except psycopg.Error as exc:
            logger.warning("tracking: a click's links could not be read (%s)", error_name(exc))
            outcome = UNAVAILABLE
        else:
            outcome = self.worker.endpoints.click_resolved(pending, tracked)
        if self.transport is None:
            # The client left: still record a click that would have redirected.
            if outcome.hit is not None:
                self.worker.buffer.add(outcome.hit, _nothing)
            return
        self._answer(outcome, slot, head, mode)

    def _send_ready(self) -> None:
        transport = self.transport
        if transport is None:
            return
        slots = self.slots
        out: list[bytes] = []
        close = False
        while slots and slots[0].ready:
            slot = slots.popleft()
            out.append(slot.data)
            if slot.close:
                close = True
                break
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if close or (self.closing and not slots):
            self.closing = True
            slots.clear()
            transport.close()
        elif self.reading_paused and len(slots) < PIPELINE_LIMIT // 2:
            self._resume_reading()

    def _refuse(self, answer: Answer) -> None:
        """Answer a broken or oversized request after those before it, then close."""
        self.in_request = False
        slot = _Slot()
        slot.data = self.worker.render(answer, False, _CLOSE)
        slot.ready = True
        slot.close = True
        self.slots.append(slot)
        self.closing = True
        self._send_ready()

    # --- Flow control and time ------------------------------------------------------------------

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if (
            self.reading_paused
            and not self.writing_paused
            and self.transport is not None
            and not self.closing
        ):
            self.reading_paused = False
            self.transport.resume_reading()

    def check_time(self, now: float) -> None:
        if self.transport is None:
            return
        if self.in_request:
            late = now - self.started > REQUEST_TIMEOUT
        elif self.slots:
            late = False  # answers on their way
        else:
            limit = KEEPALIVE_TIMEOUT if self.served else REQUEST_TIMEOUT
            late = now - self.last_active > limit
        if late:
            self.abort()

    def stop(self) -> None:
        """Graceful stop: close when the answers already owed are sent."""
        self.closing = True
        if not self.slots and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _nothing() -> None:
    return None


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace") if not value.isascii() else value.decode("ascii")


# --- A worker process ----------------------------------------------------------------------------


async def _serve(sock: socket.socket, graceful_timeout: float, supervisor: int) -> None:
    from django.conf import settings

    loop = asyncio.get_running_loop()
    doors = AsyncDoors()
    buffer = AsyncBuffer(
        redis_url=settings.REDIS_URL, stream=settings.CRM_TRACKING_STREAM, doors=doors
    )
    worker = Worker(Endpoints.from_settings(), buffer, doors)
    server = await loop.create_server(lambda: Connection(worker), sock=sock, backlog=BACKLOG)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        worker.tick()
        if supervisor and os.getppid() != supervisor:
            logger.warning("tracking: the supervisor is gone; stopping")
            stop.set()
    await worker.shutdown(server, graceful_timeout)


def _worker_main(sock: socket.socket, graceful_timeout: float, supervisor: int) -> None:
    uvloop.run(_serve(sock, graceful_timeout, supervisor))


# --- The supervisor ------------------------------------------------------------------------------


def bind(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one address (SO_REUSEPORT); port 0 picks a free one."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sockets: list[socket.socket] = []
    for _index in range(count):
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
        if sockets == []:
            address = (address[0], sock.getsockname()[1], *address[2:])
        sockets.append(sock)
    return sockets


class Supervisor:
    """Forks a worker per socket, replaces dead ones, stops them all on SIGTERM / SIGINT."""

    def __init__(self, sockets: Sequence[socket.socket], graceful_timeout: float) -> None:
        self.sockets = list(sockets)
        self.graceful_timeout = graceful_timeout
        self.children: dict[int, int] = {}  # pid -> socket index
        self.started: dict[int, float] = {}
        self.crashes = 0
        self.stopping = False

    def _spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, signal.SIG_DFL)
                for other, sock in enumerate(self.sockets):
                    if other != index:
                        sock.close()
                _worker_main(self.sockets[index], self.graceful_timeout, os.getppid())
            except BaseException:
                logger.exception("tracking: worker failed")
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = index
        self.started[pid] = time.monotonic()

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for index in range(len(self.sockets)):
            self._spawn(index)
        while not self.stopping:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(0.1)
                continue
            if pid not in self.children:
                continue
            index = self.children.pop(pid)
            lived = time.monotonic() - self.started.pop(pid, 0.0)
            logger.warning(
                "tracking: worker %d exited (%s) after %.1f s; starting another",
                pid,
                _exit_text(status),
                lived,
            )
            self.crashes = self.crashes + 1 if lived < CRASH_SECONDS else 0
            if self.crashes >= CRASH_LIMIT:
                logger.error("tracking: workers keep dying at start; giving up")
                self._stop_children()
                return 1
            self._spawn(index)
        self._stop_children()
        return 0

    def _stop_children(self) -> None:
        # New connections must not wait in a queue no worker reads any more.
        for sock in self.sockets:
            sock.close()
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.graceful_timeout + 5
        while self.children and time.monotonic() < deadline:
            pid, _status = os.waitpid(-1, os.WNOHANG)
            if pid:
                self.children.pop(pid, None)
            else:
                time.sleep(0.05)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        self.children.clear()


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"code {os.waitstatus_to_exitcode(status)}"


def default_workers() -> int:
    """One per CPU this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tracking.server", description="Serve the tracking pixel and links."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument(
        "--workers", type=int, default=0, help="worker processes (default: one per CPU)"
    )
    parser.add_argument("--graceful-timeout", type=float, default=GRACEFUL_TIMEOUT)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    from django.conf import settings

    settings.SECRET_KEY  # noqa: B018 - configuration errors show here, once, not in each worker
    workers = args.workers or default_workers()
    sockets = bind(args.host, args.port, workers)
    port = sockets[0].getsockname()[1]
    # One line on stdout that tools (and the tests) read to find a picked port.
    print(f"tracking: listening on {args.host}:{port} with {workers} worker(s)", flush=True)
    return Supervisor(sockets, args.graceful_timeout).run()


if __name__ == "__main__":
    sys.exit(main())
