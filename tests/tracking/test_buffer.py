"""The tracking server's buffer (`tracking.buffer.AsyncBuffer` over `tracking.redispipe`), on a
real event loop with real Redis and PostgreSQL: hits of one loop iteration go in one batch and
are acknowledged before their callbacks run; the Redis URL's database is honoured; a refused
XADD (the key holds something else) and a Redis that is down both send the hits to the spool;
nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import uvloop
from redis import Redis

from tests.tracking import endpoints
from tests.tracking.endpoints import Sent, closed_port, entries, spooled_rows
from tracking.buffer import AsyncBuffer
from tracking.doors import AsyncDoors
from tracking.hits import Hit
from tracking.redispipe import RedisPipe, RedisPipeError, command

# The fixtures of tests/tracking/endpoints.py, by name.
redis_client = endpoints.redis_client
stream = endpoints.stream
tracked_cast = endpoints.tracked_cast
sent_a = endpoints.sent_a


def hit(token: str, number: int) -> Hit:
    return Hit(token, "o", "", 1_700_000_000_000_000 + number, "192.0.2.1", f"agent {number}", "")


def store(redis_url: str, stream_name: str, hits: list[Hit]) -> tuple[list[int], AsyncBuffer]:
    """Add the hits in one loop iteration; the order in which their callbacks ran."""

    async def run() -> tuple[list[int], AsyncBuffer]:
        buffer = AsyncBuffer(redis_url=redis_url, stream=stream_name, doors=AsyncDoors())
        stored: list[int] = []
        for number, one in enumerate(hits):
            buffer.add(one, lambda number=number: stored.append(number))  # type: ignore[misc]
        assert stored == []  # nothing is answered before Redis acknowledged it
        await buffer.close()
        return stored, buffer

    return uvloop.run(run())


def test_hits_of_one_iteration_are_stored_in_one_batch_before_they_are_answered(
    settings: Any, redis_client: Redis[bytes], stream: str
) -> None:
    token = uuid.uuid4().hex
    hits = [hit(token, number) for number in range(500)]
    stored, _buffer = store(settings.REDIS_URL, stream, hits)
    assert stored == list(range(500))
    found = entries(redis_client, stream)
    assert [entry["ua"] for entry in found] == [f"agent {number}" for number in range(500)]
    assert [int(entry["at"]) for entry in found] == [one.at for one in hits]


def test_the_redis_urls_database_is_used(settings: Any, stream: str) -> None:
    url = settings.REDIS_URL.rsplit("/", 1)[0] + "/3"
    other: Redis[bytes] = Redis.from_url(url)
    try:
        store(url, stream, [hit(uuid.uuid4().hex, 0)])
        assert other.xlen(stream) == 1
        assert Redis.from_url(settings.REDIS_URL).xlen(stream) == 0
    finally:
        other.delete(stream)


def test_a_refused_xadd_sends_its_hits_to_the_spool(
    settings: Any, redis_client: Redis[bytes], stream: str, sent_a: Sent
) -> None:
    redis_client.set(stream, "not a stream")  # every XADD to it is refused (WRONGTYPE)
    stored, _buffer = store(settings.REDIS_URL, stream, [hit(sent_a.token, n) for n in range(3)])
    assert stored == [0, 1, 2]
    rows = spooled_rows(sent_a.token)
    assert [row[5] for row in rows] == ["agent 0", "agent 1", "agent 2"]


def test_redis_down_sends_the_batch_to_the_spool_once(settings: Any, sent_a: Sent) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    stored, _buffer = store(url, "unused", [hit(sent_a.token, n) for n in range(50)])
    assert stored == list(range(50))
    assert len(spooled_rows(sent_a.token)) == 50


def test_the_pipe_refuses_a_bad_password_and_reports_a_dead_server(settings: Any) -> None:
    async def run() -> list[str]:
        outcomes = []
        for url in (
            settings.REDIS_URL.replace("redis://", "redis://:wrong-password@", 1),
            f"redis://127.0.0.1:{closed_port()}/0",
        ):
            pipe = RedisPipe(url, timeout=2, connect_timeout=1)
            try:
                await pipe.send(command("PING"), 1)
                outcomes.append("answered")
            except RedisPipeError as exc:
                outcomes.append(str(exc))
            pipe.close()
        return outcomes

    refused, dead = asyncio.run(run())
    assert "refused the connection's setup" in refused
    assert "wrong-password" not in refused
    assert dead.startswith("cannot connect to Redis")


@pytest.mark.parametrize("count", [1, 2048, 3000])
def test_batches_of_any_size_are_stored_whole(
    settings: Any, redis_client: Redis[bytes], stream: str, count: int
) -> None:
    token = uuid.uuid4().hex
    stored, _buffer = store(settings.REDIS_URL, stream, [hit(token, n) for n in range(count)])
    assert len(stored) == count
    assert redis_client.xlen(stream) == count
