"""Background work of the mail domain: indexing conversations for search after a first sync.

Incremental mail is indexed inside the ingest transaction (searchable the moment it shows);
the big batches of a first sync queue their threads instead (`search.threads_queue`), and
`search_drain` indexes the queue after commit, so the first sync keeps its pace (indexing
inline cost about 0.8 of the sync's own time: docs/benchmarks.md, Sales Inbox). The queue is
in PostgreSQL: a lost task (worker or Redis restart) is picked up by `search_drain_due`."""

from __future__ import annotations

from django.core.cache import cache

from crm import tenancy
from crm.celery_app import TenantTask, app
from inbox import search

# Threads a drain indexes before it hands over to a fresh task (short transactions).
DRAIN_LIMIT = 20_000


def _key(company_id: int) -> str:
    return f"inbox:search-drain:{company_id}"


def search_drain_enqueue(*, company_id: int) -> bool:
    """Queue one drain of the company's search queue, unless one is queued already."""
    if not cache.add(_key(company_id), 1, 300):
        return False
    search_drain.apply_async(kwargs={"company_id": company_id})
    return True


@app.task(base=TenantTask, acks_late=True, name="inbox.tasks.search_drain")
def search_drain(*, company_id: int) -> int:
    """Index up to DRAIN_LIMIT queued conversations; queue the next drain if more wait."""
    cache.delete(_key(company_id))
    done = search.queue_drain(company_id=company_id, limit=DRAIN_LIMIT)
    if done == DRAIN_LIMIT:
        search_drain_enqueue(company_id=company_id)
    return done


@app.task(name="inbox.tasks.search_drain_due")
def search_drain_due() -> int:
    """Beat: queue a drain for every company whose search queue holds threads."""
    queued = 0
    for company_id in tenancy.company_ids():
        with tenancy.bound(company_id):
            waiting = search.queue_waiting(company_id=company_id)
        if waiting and search_drain_enqueue(company_id=company_id):
            queued += 1
    return queued
