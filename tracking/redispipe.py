"""One connection to Redis for the tracking server's buffer: a batch of commands goes out in one
write, and their replies are parsed in one go by hiredis (C), with one timeout for the batch.

Why not redis.asyncio: it reads each reply through a coroutine with its own timeout context,
about 10 µs a reply in the profile, as much as the rest of answering a hit. This does only what
the buffer needs: a connection from a Redis URL (`redis://`, `rediss://`, `unix://`; user and
password, database), pipelined commands, errors as values. A connection that breaks or times
out is closed; the next batch opens a new one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis


class RedisPipeError(ConnectionError):
    """The connection failed, or a reply did not come in time: the batch's fate is unknown."""


def command(*args: bytes | str) -> bytes:
    """A command in the Redis protocol."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        value = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(value), value))
    return b"".join(parts)


class RedisPipe(asyncio.Protocol):
    """Use `await pipe.send(payload, count)` for `count` pipelined commands; the replies come
    back as a list, a refused command's as a `hiredis.ReplyError`. One batch at a time."""

    def __init__(self, url: str, *, timeout: float, connect_timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._transport: asyncio.Transport | None = None
        self._reader = hiredis.Reader()
        self._replies: list[Any] = []
        self._expected = 0
        self._waiter: asyncio.Future[list[Any]] | None = None

    # --- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while self._expected:
            reply = self._reader.gets()
            if reply is False:
                return
            self._replies.append(reply)
            self._expected -= 1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(self._replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(RedisPipeError("the connection to Redis closed"))

    # --- Use ------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def send(self, payload: bytes, count: int) -> list[Any]:
        """Write `count` pipelined commands, return their `count` replies in order."""
        if not self.connected:
            await self._connect()
        return await self._exchange(payload, count)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def _exchange(self, payload: bytes, count: int) -> list[Any]:
        transport = self._transport
        if transport is None:
            raise RedisPipeError("not connected to Redis")
        loop = asyncio.get_running_loop()
        self._replies = []
        self._expected = count
        self._waiter = waiter = loop.create_future()
        transport.write(payload)
        try:
            return await asyncio.wait_for(waiter, self.timeout)
        except TimeoutError as exc:
            self.close()
            raise RedisPipeError("Redis did not answer in time") from exc
        except RedisPipeError:
            self.close()
            raise
        finally:
            self._waiter = None
            self._expected = 0

    async def _connect(self) -> None:
        self.close()
        self._reader = hiredis.Reader()
        target = urlsplit(self.url)
        query = {name: values[-1] for name, values in parse_qs(target.query).items()}
        loop = asyncio.get_running_loop()
        try:
            if target.scheme == "unix":
                connecting = loop.create_unix_connection(lambda: self, unquote(target.path))
            elif target.scheme in ("redis", "rediss"):
                context = None
                if target.scheme == "rediss":
                    context = ssl.create_default_context()
                    if query.get("ssl_cert_reqs", "").lower() in ("none", "cert_none"):
                        context.check_hostname = False
                        context.verify_mode = ssl.CERT_NONE
                connecting = loop.create_connection(
                    lambda: self,
                    unquote(target.hostname or "localhost"),
                    target.port or 6379,
                    ssl=context,
                )
            else:
                raise RedisPipeError(f"unsupported Redis URL scheme: {target.scheme}")
            await asyncio.wait_for(connecting, self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise RedisPipeError(f"cannot connect to Redis ({exc.__class__.__name__})") from exc
        handshake = _handshake(target.username, target.password, _database(target, query))
        if handshake:
            replies = await self._exchange(b"".join(handshake), len(handshake))
            refused = [reply for reply in replies if isinstance(reply, hiredis.ReplyError)]
            if refused:
                self.close()
                raise RedisPipeError(f"Redis refused the connection's setup: {refused[0]}")


def _database(target: Any, query: dict[str, str]) -> int:
    value = query.get("db") or (target.path or "").strip("/")
    return int(value) if value.isdigit() else 0


def _handshake(user: str | None, password: str | None, database: int) -> Sequence[bytes]:
    steps = []
    if password is not None:
        steps.append(
            command("AUTH", unquote(user), unquote(password))
            if user
            else command("AUTH", unquote(password))
        )
    if database:
        steps.append(command("SELECT", str(database)))
    return steps
