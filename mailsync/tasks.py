"""Celery tasks of mail sync. Beat only enqueues; a worker runs one account's pass under the
account's lock (mailsync.sync). First syncs run on their own queue (`mail_initial`), so a new
account's backfill never delays everyone else's new mail (`mail_sync`).

Two-way sync (A5): `company_actions_run` carries out a company's due provider actions
(mailsync.actions); beat's sweeper `actions_due` queues it for every company with due actions,
and the inbox's `mail_actions_queued` hook (`on_actions_queued`) for the end of an action's
undo window.

The outbox (B4, mailsync.outbox): `account_outbox_run` delivers one account's due messages;
the inbox's `mail_outbox_queued` hook (`on_outbox_queued`) queues it for the end of a
message's undo window, and beat's sweeper `outbox_due` queues `company_outbox_run` for every
company with outbox work (through the door `mailsync_due_outbox_companies`).

Drafts (B5, mailsync.drafts): `account_drafts_run` writes or removes one account's due drafts'
copies in its Drafts folder; the inbox's `mail_drafts_changed` hook (`on_drafts_changed`)
queues it for when a draft is due, and beat's sweeper `drafts_due` queues `company_drafts_run`
for every company with due drafts (through the door `mailsync_due_draft_companies`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from django.core.cache import cache
from django.db import connection, transaction

from crm import hooks, tenancy
from crm.celery_app import app
from mailsync import actions, drafts, ingest, outbox, sync
from mailsync.models import Health, Stage, SyncState

logger = logging.getLogger(__name__)

INITIAL_QUEUE = "mail_initial"
SYNC_QUEUE = "mail_sync"
QUEUES = (INITIAL_QUEUE, SYNC_QUEUE)
# A queued pass is not queued again for this long (beat runs every 30 s; a first sync of a
# large mailbox runs for minutes and renews nothing, its lock keeps a second pass out).
_QUEUED_TTL_SECONDS = 600
# A pass whose heartbeat is older than this is stuck (its worker died or hung).
STUCK_AFTER = timedelta(minutes=10)


def _queued_key(company_id: int, account_id: int) -> str:
    return f"mailsync:queued:{company_id}:{account_id}"


def account_sync_enqueue(*, company_id: int, account_id: int, initial: bool = False) -> bool:
    """Queue a pass unless one is queued already. Returns whether it queued."""
    if not cache.add(_queued_key(company_id, account_id), 1, _QUEUED_TTL_SECONDS):
        return False
    account_sync.apply_async(
        kwargs={"company_id": company_id, "account_id": account_id},
        queue=INITIAL_QUEUE if initial else SYNC_QUEUE,
    )
    return True


@app.task(acks_late=True, name="mailsync.tasks.account_sync")
def account_sync(*, company_id: int, account_id: int) -> dict[str, object]:
    """One sync pass. Manages its own transactions (one per batch), so it is not a TenantTask."""
    cache.delete(_queued_key(company_id, account_id))
    with tenancy.request_scope():
        outcome = sync.account_sync(company_id=company_id, account_id=account_id)
    return {
        "ran": outcome.ran,
        "stored": outcome.stored,
        "removed": outcome.removed,
        "error": outcome.error_kind,
    }


def due_accounts(at: datetime) -> list[tuple[int, int, bool]]:
    """(company id, account id, first sync pending) of accounts due a pass: the named
    cross-tenant door `mailsync_due_accounts` (mailsync/migrations)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mailsync_due_accounts(%s)", [at])
        return [(int(c), int(a), bool(i)) for c, a, i in cursor.fetchall()]


@app.task(name="mailsync.tasks.sync_due")
def sync_due() -> int:
    """Beat: enqueue every account whose next pass is due (the fallback poll)."""
    queued = 0
    for company_id, account_id, initial in due_accounts(datetime.now(UTC)):
        queued += account_sync_enqueue(
            company_id=company_id, account_id=account_id, initial=initial
        )
    return queued


@app.task(name="mailsync.tasks.sync_watchdog")
def sync_watchdog() -> int:
    """Beat: reset passes stuck in a stage (their worker died without a word) so the account is
    due again. The advisory lock died with the worker's connection, so nothing else to free."""
    reset = 0
    stale = datetime.now(UTC) - STUCK_AFTER
    for company_id in tenancy.company_ids():
        with tenancy.request_scope(), tenancy.bound(company_id):
            reset += (
                SyncState.objects.for_company(company_id)
                .exclude(stage=Stage.IDLE)
                .filter(heartbeat_at__lt=stale)
                .update(stage=Stage.IDLE, next_sync_at=datetime.now(UTC))
            )
    return reset


@app.task(acks_late=True, name="mailsync.tasks.account_purge")
def account_purge(*, company_id: int, account_id: int) -> int:
    """Delete a disconnected account's mail, folder by folder (each its own transaction)."""
    from inbox.models import MailFolder

    removed = 0
    with tenancy.request_scope():
        with tenancy.bound(company_id):
            folder_ids = list(
                MailFolder.objects.for_company(company_id)
                .filter(account_id=account_id)
                .values_list("pk", flat=True)
            )
        for folder_id in folder_ids:
            with tenancy.bound(company_id):
                removed += ingest.locations_remove(
                    company_id=company_id,
                    account_id=account_id,
                    folder_id=folder_id,
                    provider_ids=None,
                )
        with tenancy.bound(company_id):
            SyncState.objects.for_company(company_id).filter(account_id=account_id).update(
                health=Health.FAILED, stage=Stage.IDLE, next_sync_at=None
            )
    return removed


# --- Two-way sync: the provider action outbox (A5) -------------------------------------------

# The crm.hooks topic the inbox publishes when it wrote provider actions (a plain name in
# crm.hooks' registry: `hooks.subscribe(ACTIONS_QUEUED, on_actions_queued)` in apps.py).
ACTIONS_QUEUED = hooks.MAIL_ACTIONS_QUEUED
# A company's sweep-queued run is not queued again for this long (the run clears it).
_ACTIONS_QUEUED_TTL_SECONDS = 120


class ActionsQueued(Protocol):
    """What the hook's event carries: whose actions, and when the first is due."""

    company_id: int
    run_after: datetime


def _actions_key(company_id: int, slot: str) -> str:
    return f"mailsync:actions:{company_id}:{slot}"


def actions_run_enqueue(*, company_id: int, run_after: datetime | None = None) -> bool:
    """Queue a run of the company's due actions: now (the sweep: once until it starts), or at
    `run_after` (the hook: once per second of due time, so a burst of archives in one
    request is one run). Returns whether it queued."""
    if run_after is None:
        if not cache.add(_actions_key(company_id, "sweep"), 1, _ACTIONS_QUEUED_TTL_SECONDS):
            return False
        company_actions_run.apply_async(kwargs={"company_id": company_id}, queue=SYNC_QUEUE)
        return True
    slot = str(int(run_after.timestamp()))
    delay = max((run_after - datetime.now(UTC)).total_seconds(), 0.0)
    if not cache.add(_actions_key(company_id, slot), 1, int(delay) + 60):
        return False
    company_actions_run.apply_async(
        kwargs={"company_id": company_id}, queue=SYNC_QUEUE, countdown=delay
    )
    return True


def on_actions_queued(event: ActionsQueued) -> None:
    """The hook's handler, inside the inbox's transaction: queue the run once it commits (a
    rolled-back archive asks for nothing)."""
    company_id, run_after = event.company_id, event.run_after
    transaction.on_commit(lambda: actions_run_enqueue(company_id=company_id, run_after=run_after))


@app.task(acks_late=True, name="mailsync.tasks.company_actions_run")
def company_actions_run(*, company_id: int) -> dict[str, int]:
    """Carry out the company's due provider actions. Manages its own transactions (one per
    account), so it is not a TenantTask."""
    cache.delete(_actions_key(company_id, "sweep"))
    with tenancy.request_scope():
        outcome = actions.company_actions_run(company_id=company_id)
    return {
        "done": outcome.done,
        "failed": outcome.failed,
        "retrying": outcome.retrying,
        "busy": outcome.busy,
    }


@app.task(name="mailsync.tasks.actions_due")
def actions_due() -> int:
    """Beat (every 15 s): queue a run for every company with due actions (through the door
    `mailsync_due_action_companies`): actions whose hook was missed, retries, busy accounts."""
    return sum(
        actions_run_enqueue(company_id=company_id)
        for company_id in actions.due_companies(datetime.now(UTC))
    )


# --- The outbox (B4) -------------------------------------------------------------------------

# The crm.hooks topic the inbox publishes when it queued messages (`inbox.sending`).
OUTBOX_QUEUED = hooks.MAIL_OUTBOX_QUEUED
# Runs go on the sync queue, which every worker serves (a queue of their own later: DESIGN.md,
# "sync queues are partitioned").
SEND_QUEUE = SYNC_QUEUE
# A message due later than this is left to the sweep: a broker holding a far countdown (a week
# for "send later") in a worker's memory is fragile, the outbox row is not.
_OUTBOX_COUNTDOWN_LIMIT = timedelta(minutes=5)
_OUTBOX_QUEUED_TTL_SECONDS = 120


def _outbox_key(company_id: int, slot: str) -> str:
    return f"mailsync:outbox:{company_id}:{slot}"


def outbox_run_enqueue(*, company_id: int, account_id: int, at: datetime | None = None) -> bool:
    """Queue a run of the account's outbox at `at` (now when None): once per account and second
    of due time, so a burst of sends is one run. Returns whether it queued."""
    now = datetime.now(UTC)
    at = at or now
    if at - now > _OUTBOX_COUNTDOWN_LIMIT:
        return False
    delay = max((at - now).total_seconds(), 0.0)
    slot = f"{account_id}:{int(at.timestamp())}"
    if not cache.add(_outbox_key(company_id, slot), 1, int(delay) + 60):
        return False
    account_outbox_run.apply_async(
        kwargs={"company_id": company_id, "account_id": account_id},
        queue=SEND_QUEUE,
        countdown=delay,
    )
    return True


class OutboxQueued(Protocol):
    """What the hook's event carries (`crm.hooks.MailOutboxQueued`)."""

    company_id: int
    account_id: int
    not_before: datetime


def on_outbox_queued(event: OutboxQueued) -> None:
    """The hook's handler, inside the inbox's transaction: queue the run once it commits (a
    rolled-back send asks for nothing)."""
    company_id, account_id, at = event.company_id, event.account_id, event.not_before
    transaction.on_commit(
        lambda: outbox_run_enqueue(company_id=company_id, account_id=account_id, at=at)
    )


@app.task(acks_late=True, name="mailsync.tasks.account_outbox_run")
def account_outbox_run(*, company_id: int, account_id: int) -> dict[str, int]:
    """Deliver the account's due messages. Manages its own transactions (one per step), so it
    is not a TenantTask. A run that gave its worker back with messages left queues the next."""
    with tenancy.request_scope():
        result = outbox.account_outbox_run(company_id=company_id, account_id=account_id)
    if result.more:
        at = datetime.now(UTC) + timedelta(seconds=result.wait)
        outbox_run_enqueue(company_id=company_id, account_id=account_id, at=at)
    return _outbox_summary(result)


@app.task(acks_late=True, name="mailsync.tasks.company_outbox_run")
def company_outbox_run(*, company_id: int) -> dict[str, int]:
    """Run the outbox of each of the company's accounts with work (the sweep)."""
    cache.delete(_outbox_key(company_id, "sweep"))
    with tenancy.request_scope():
        result = outbox.company_outbox_run(company_id=company_id)
    return _outbox_summary(result)


def _outbox_summary(result: outbox.OutboxOutcome) -> dict[str, int]:
    return {
        "sent": result.sent,
        "failed": result.failed,
        "retrying": result.retrying,
        "uncertain": result.uncertain,
        "settled": result.settled,
        "busy": result.busy,
    }


@app.task(name="mailsync.tasks.outbox_due")
def outbox_due() -> int:
    """Beat (every 15 s): queue a run for every company with outbox work, found through the
    door `mailsync_due_outbox_companies`: messages whose hook was lost (a Redis restart),
    retries, sends scheduled for later, messages left in flight by a dead worker."""
    queued = 0
    for company_id in outbox.due_companies(datetime.now(UTC)):
        if cache.add(_outbox_key(company_id, "sweep"), 1, _OUTBOX_QUEUED_TTL_SECONDS):
            company_outbox_run.apply_async(kwargs={"company_id": company_id}, queue=SEND_QUEUE)
            queued += 1
    return queued


# --- Drafts' server copies (B5) --------------------------------------------------------------

# The crm.hooks topic the inbox publishes when a draft was saved, sent or discarded.
DRAFTS_CHANGED = hooks.MAIL_DRAFTS_CHANGED
_DRAFTS_QUEUED_TTL_SECONDS = 120
# Saves a few seconds apart share one queued run per this many seconds of due time.
_DRAFTS_SLOT_SECONDS = 5


def _drafts_key(company_id: int, slot: str) -> str:
    return f"mailsync:drafts:{company_id}:{slot}"


def drafts_run_enqueue(*, company_id: int, account_id: int, at: datetime | None = None) -> bool:
    """Queue a run of the account's drafts at `at` (now when None): once per account and slot
    of due time, so typing's many saves are one run after the last. Returns whether it
    queued."""
    now = datetime.now(UTC)
    at = at or now
    delay = max((at - now).total_seconds(), 0.0)
    slot = f"{account_id}:{int(at.timestamp()) // _DRAFTS_SLOT_SECONDS}"
    if not cache.add(_drafts_key(company_id, slot), 1, int(delay) + 60):
        return False
    account_drafts_run.apply_async(
        kwargs={"company_id": company_id, "account_id": account_id},
        queue=SYNC_QUEUE,
        # The slot's end: every save of the slot is due by then.
        countdown=delay + _DRAFTS_SLOT_SECONDS,
    )
    return True


class DraftsChanged(Protocol):
    """What the hook's event carries (`crm.hooks.MailDraftsChanged`)."""

    company_id: int
    account_id: int
    due: datetime


def on_drafts_changed(event: DraftsChanged) -> None:
    """The hook's handler (published after the inbox's commit; `on_commit` runs it at once
    then, and waits for the commit of a caller still inside a transaction)."""
    company_id, account_id, at = event.company_id, event.account_id, event.due
    transaction.on_commit(
        lambda: drafts_run_enqueue(company_id=company_id, account_id=account_id, at=at)
    )


@app.task(acks_late=True, name="mailsync.tasks.account_drafts_run")
def account_drafts_run(*, company_id: int, account_id: int) -> dict[str, int]:
    """Write or remove the account's due drafts' server copies. Manages its own transactions
    (one per step), so it is not a TenantTask."""
    with tenancy.request_scope():
        result = drafts.account_drafts_run(company_id=company_id, account_id=account_id)
    return _drafts_summary(result)


@app.task(acks_late=True, name="mailsync.tasks.company_drafts_run")
def company_drafts_run(*, company_id: int) -> dict[str, int]:
    """Run the drafts of each of the company's accounts with due drafts (the sweep)."""
    cache.delete(_drafts_key(company_id, "sweep"))
    with tenancy.request_scope():
        result = drafts.company_drafts_run(company_id=company_id)
    return _drafts_summary(result)


def _drafts_summary(result: drafts.DraftsOutcome) -> dict[str, int]:
    return {
        "written": result.written,
        "removed": result.removed,
        "retrying": result.retrying,
        "failed": result.failed,
        "busy": result.busy,
    }


@app.task(name="mailsync.tasks.drafts_due")
def drafts_due() -> int:
    """Beat (every 15 s): queue a run for every company with due drafts, found through the
    door `mailsync_due_draft_companies`: saves whose hook was lost (a Redis restart), retries,
    busy accounts."""
    queued = 0
    for company_id in drafts.due_companies(datetime.now(UTC)):
        if cache.add(_drafts_key(company_id, "sweep"), 1, _DRAFTS_QUEUED_TTL_SECONDS):
            company_drafts_run.apply_async(kwargs={"company_id": company_id}, queue=SYNC_QUEUE)
            queued += 1
    return queued
