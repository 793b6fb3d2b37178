"""The endpoints' two PostgreSQL doors (migration inbox 0008), through plain psycopg
connections of their own: the lookup of a click's stored links (`inbox_tracking_token`) and
the spool a hit waits in when Redis cannot take it (`inbox_tracking_spool_add`).

Not Django's connection: the hot path has no request cycle to open and close it, and the
production server is asyncio. The connection logs in as DATABASE_URL says and takes the app role
(`CRM_DB_APP_ROLE`), like every connection of the app (docs/decisions/0002), in autocommit: a
spooled hit is committed when its call returns. A broken connection is dropped and the call
tried once more on a new one; a second failure is the caller's to handle (psycopg.Error).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from tracking.hits import Hit, Tracked, tracked_from_links

CONNECT_TIMEOUT = 3  # seconds
# After a failed connection, calls fail at once for this long: a dead or hung server costs one
# connection timeout a second, not one per hit.
RETRY_PAUSE = 1.0
STATEMENT_TIMEOUT_MS = 3000
# Options of Django's backend that are no libpq parameters.
_DJANGO_ONLY_OPTIONS = {
    "isolation_level",
    "server_side_binding",
    "assume_role",
    "pool",
    "cursor_factory",
    "prepare_threshold",
}
_LOOKUP = "SELECT track_links, links FROM inbox_tracking_token(%s)"
_SPOOL = "SELECT inbox_tracking_spool_add(%s, %s, %s, %s, %s, %s, %s)"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def connection_params() -> dict[str, Any]:
    """libpq parameters from settings.DATABASES["default"] (read when connecting, so tests'
    databases are followed)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    params: dict[str, Any] = {
        "dbname": database.get("NAME") or None,
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "connect_timeout": CONNECT_TIMEOUT,
        "application_name": "crm-tracking",
    }
    for name, value in (database.get("OPTIONS") or {}).items():
        if name not in _DJANGO_ONLY_OPTIONS:
            params[name] = value
    extra = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
    params["options"] = f"{params['options']} {extra}" if params.get("options") else extra
    return {name: value for name, value in params.items() if value is not None}


def _role_statement() -> sql.Composed:
    from django.conf import settings

    return sql.SQL("SET ROLE {}").format(sql.Identifier(settings.CRM_DB_APP_ROLE))


def _tracked(row: tuple[Any, ...] | None) -> Tracked | None:
    if row is None:
        return None
    track_links, links = row
    return tracked_from_links(bool(track_links), links)


def _spool_rows(hits: Sequence[Hit]) -> list[tuple[Any, ...]]:
    return [
        (
            hit.token,
            hit.kind,
            int(hit.link) if hit.link else None,
            _EPOCH + timedelta(microseconds=hit.at),
            hit.ip,
            hit.ua,
            hit.session,
        )
        for hit in hits
    ]


class Doors:
    """The doors for threads (the WSGI entry): one connection per thread and process.
    `params`: libpq parameters (default: `connection_params()` when connecting)."""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = params
        self._local = threading.local()
        self._retry_at = 0.0

    def _connection(self) -> tuple[psycopg.Connection[tuple[Any, ...]], bool]:
        """The thread's connection, and whether it was opened just now."""
        connection: psycopg.Connection[tuple[Any, ...]] | None = getattr(
            self._local, "connection", None
        )
        if connection is not None and not connection.closed and self._local.pid == os.getpid():
            return connection, False
        if time.monotonic() < self._retry_at:
            raise psycopg.OperationalError("PostgreSQL failed a moment ago; not trying yet")
        try:
            connection = psycopg.connect(**(self.params or connection_params()), autocommit=True)
        except psycopg.Error:
            self._retry_at = time.monotonic() + RETRY_PAUSE
            raise
        try:
            connection.execute(_role_statement())
        except psycopg.Error:
            connection.close()
            raise
        self._local.connection = connection
        self._local.pid = os.getpid()
        return connection, True

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None and self._local.pid == os.getpid():
            connection.close()

    def _run(self, work: Callable[[psycopg.Connection[tuple[Any, ...]]], T]) -> T:
        """`work` on the thread's connection; once more on a new one when a connection kept
        from before turns out broken (the server restarted, a proxy dropped it)."""
        connection, fresh = self._connection()
        try:
            return work(connection)
        except psycopg.OperationalError:
            self._drop()
            if fresh:
                raise
        connection, _fresh = self._connection()
        try:
            return work(connection)
        except psycopg.OperationalError:
            self._drop()
            raise

    def tracked(self, token: str) -> Tracked | None:
        """The links of the tracked message with this token, or None when there is none."""
        return self._run(
            lambda connection: _tracked(connection.execute(_LOOKUP, (token,)).fetchone())
        )

    def spool(self, hits: Sequence[Hit]) -> None:
        """Store hits in the spool, committed when this returns."""
        rows = _spool_rows(hits)

        def store(connection: psycopg.Connection[tuple[Any, ...]]) -> None:
            with connection.transaction(), connection.cursor() as cursor:
                cursor.executemany(_SPOOL, rows)

        self._run(store)

    def close(self) -> None:
        self._drop()


class AsyncDoors:
    """The doors for one event loop (a worker of `tracking.server`): one connection, shared by
    its tasks (psycopg runs their statements one after another); concurrent lookups of one
    token share one query."""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = params
        self._connection: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._connecting = asyncio.Lock()
        self._retry_at = 0.0
        self._lookups: dict[str, asyncio.Future[Tracked | None]] = {}

    async def _connected(self) -> tuple[psycopg.AsyncConnection[tuple[Any, ...]], bool]:
        async with self._connecting:
            if self._connection is not None and not self._connection.closed:
                return self._connection, False
            if time.monotonic() < self._retry_at:
                raise psycopg.OperationalError("PostgreSQL failed a moment ago; not trying yet")
            try:
                connection = await psycopg.AsyncConnection.connect(
                    **(self.params or connection_params()), autocommit=True
                )
            except psycopg.Error:
                self._retry_at = time.monotonic() + RETRY_PAUSE
                raise
            try:
                await connection.execute(_role_statement())
            except psycopg.Error:
                await connection.close()
                raise
            self._connection = connection
            return connection, True

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def _run(
        self, work: Callable[[psycopg.AsyncConnection[tuple[Any, ...]]], Awaitable[T]]
    ) -> T:
        connection, fresh = await self._connected()
        try:
            return await work(connection)
        except psycopg.OperationalError:
            await self._drop()
            if fresh:
                raise
        connection, _fresh = await self._connected()
        try:
            return await work(connection)
        except psycopg.OperationalError:
            await self._drop()
            raise

    async def tracked(self, token: str) -> Tracked | None:
        """The links of the tracked message with this token, or None when there is none."""
        running = self._lookups.get(token)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Tracked | None] = asyncio.get_running_loop().create_future()
        self._lookups[token] = future
        try:
            result = await self._run(lambda connection: _lookup(connection, token))
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: a caller sharing it re-raises it
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._lookups[token]

    async def spool(self, hits: Sequence[Hit]) -> None:
        """Store hits in the spool, committed when this returns (one round trip)."""
        rows = _spool_rows(hits)

        async def store(connection: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
            async with connection.transaction(), connection.cursor() as cursor:
                await cursor.executemany(_SPOOL, rows)

        await self._run(store)

    async def close(self) -> None:
        await self._drop()


async def _lookup(
    connection: psycopg.AsyncConnection[tuple[Any, ...]], token: str
) -> Tracked | None:
    cursor = await connection.execute(_LOOKUP, (token,))
    return _tracked(await cursor.fetchone())
