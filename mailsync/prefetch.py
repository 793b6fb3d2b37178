"""The first sync's pipeline: one thread downloads, parses and stores raw bytes of the next
batch while the caller's thread writes the current one to PostgreSQL.

Why a thread: the pass alternates between waiting on the mail server, parsing (CPU) and waiting
on PostgreSQL. Overlapping them roughly halves the wall time on a small machine; the GIL is
released while the socket, the disk and PostgreSQL work. The database stays in the caller's
thread (its connection, its transactions, its tenancy binding); the producer touches only the
provider's connection, the pure parser and the raw-message storage.

Memory stays bounded: at most `DEPTH` prepared chunks wait, each bounded by the provider's
fetch limits."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from inbox import rawstore
from mailsync.pipeline.parse import parse_message
from mailsync.pipeline.types import ParsedMessage
from mailsync.providers.base import FetchedMessage, Provider

DEPTH = 2
_POLL_SECONDS = 0.5
_J = TypeVar("_J")


@dataclass(frozen=True)
class Prepared(Generic[_J]):
    """A fetched chunk of a job, parsed, its raw bytes already in storage; `last` marks the
    job's final chunk (a job may yield no chunk at all: then one empty, last Prepared)."""

    job: _J
    fetched: Sequence[FetchedMessage]
    parsed: Sequence[ParsedMessage]
    raw_paths: Sequence[str]
    last: bool


_DONE = object()


def prepared_chunks(
    *,
    provider: Provider,
    company_id: int,
    jobs: Sequence[tuple[_J, str, Sequence[str]]],
) -> Iterator[Prepared[_J]]:
    """Yield the jobs' chunks in order, prepared ahead by a producer thread.

    `jobs` are (job, folder name, provider ids). The caller must not use `provider` until the
    iterator is exhausted or closed. An error in the producer is raised here, in order."""
    channel: queue.Queue[object] = queue.Queue(maxsize=DEPTH)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                channel.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for job, folder, ids in jobs:
                sent = False
                chunks = provider.fetch(folder, list(ids)) if ids else iter(())
                previous: list[FetchedMessage] | None = None
                for chunk in chunks:
                    if previous is not None:
                        if not put(_prepare(job, previous, company_id, last=False)):
                            return
                        sent = True
                    previous = chunk
                if previous is not None:
                    if not put(_prepare(job, previous, company_id, last=True)):
                        return
                    sent = True
                if not sent and not put(Prepared(job, (), (), (), last=True)):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            put(error)
        finally:
            put(_DONE)

    producer = threading.Thread(target=produce, name="mail-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            item = channel.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Prepared)  # noqa: S101 - the channel carries nothing else
            yield item
    finally:
        stop.set()
        while producer.is_alive():
            try:
                channel.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
        producer.join()


def _prepare(
    job: _J, fetched: list[FetchedMessage], company_id: int, *, last: bool
) -> Prepared[_J]:
    parsed = [parse_message(message.raw) for message in fetched]
    # Content addressed: writing before the transaction is safe; a batch that rolls back
    # leaves files its retry reuses.
    paths = [rawstore.raw_save(company_id, message.raw) for message in fetched]
    return Prepared(job, fetched, parsed, paths, last=last)
