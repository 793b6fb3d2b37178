"""The sync engine (DESIGN.md, Sync): one pass over one account.

    discover folders → for each synced folder: list changes since its cursor (cheap) → apply
    flag changes and deletions → fetch new mail in batches → ingest; then continue the first
    sync (backfill, newest first, across folders: INBOX before Sent before the rest).

Each batch commits on its own with the folder's cursor, so a pass cut anywhere (connection
lost, worker killed) resumes where it stopped, without duplicates or gaps: a batch is stored
before the cursor passes it, and storing is idempotent. A pass runs under a PostgreSQL advisory
lock per account (released by the server if the worker dies), so an account never syncs twice
at once. Provider errors end the pass with the account's health, backoff and plain-words error
recorded (A6).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Case, F, PositiveIntegerField, When

from crm import encryption, tenancy
from inbox.models import FolderRole, MailAccount, MailFolder, MailMessageLocation
from mailsync import ingest, prefetch
from mailsync.models import FolderCursor, Health, Stage, SyncState
from mailsync.pipeline.types import ParsedMessage
from mailsync.providers import PROVIDERS
from mailsync.providers.base import (
    ConnectionSettings,
    Cursor,
    ErrorKind,
    FetchedMessage,
    Provider,
    ProviderError,
)

logger = logging.getLogger(__name__)

_LOCK_NAMESPACE = 0x6D61696C  # "mail": the advisory-lock class of account syncs
# What "all mail" leaves out: spam and the bin are not conversations (choose them by name).
EXCLUDED_FROM_ALL = frozenset({FolderRole.JUNK, FolderRole.TRASH})
_ROLE_ORDER = {FolderRole.INBOX: 0, FolderRole.SENT: 1, FolderRole.ARCHIVE: 2}
# Where two-way sync moves mail (mailsync.actions): always synced while it is on.
TWO_WAY_TARGETS = frozenset({FolderRole.ARCHIVE, FolderRole.TRASH})
# During a long first sync, look for new mail this often, so it never waits for the backfill;
# the backfill runs in rounds of this many batches between the looks.
INCREMENTAL_EVERY_SECONDS = 20.0
ROUND_BATCHES = 10
ANALYZE_FIRST_AT = 1000


def folder_syncs(account: MailAccount, folder: MailFolder) -> bool:
    """What syncs (A4): all mail but spam and the bin, or exactly the folders chosen; with
    two-way sync (A5) also the archive and the bin, where archiving and deleting put mail, so
    that it stays in its conversation and can come back."""
    if folder.removed_at is not None:
        return False
    if account.two_way_sync and folder.role in TWO_WAY_TARGETS:
        return True
    if account.sync_all_folders:
        return folder.role not in EXCLUDED_FROM_ALL
    return folder.selected


def tracked_from_now(account: MailAccount, folder: MailFolder) -> bool:
    """The bin syncs for two-way sync's sake only (not chosen by the user): what is in it
    already is not downloaded, only what arrives from now on (what we delete, what the user
    deletes in a mail client)."""
    chosen = not account.sync_all_folders and folder.selected
    return folder.role == FolderRole.TRASH and account.two_way_sync and not chosen


@dataclass
class PassOutcome:
    ran: bool  # False: another worker holds the account
    stored: int = 0
    removed: int = 0
    error_kind: str = ""


def connection_settings(account: MailAccount) -> ConnectionSettings:
    """The provider's connection settings, with the password decrypted (never logged)."""
    return ConnectionSettings(
        email_address=account.email_address,
        host=account.imap_host,
        port=account.imap_port or 993,
        security=account.imap_security or "ssl",
        username=account.username or account.email_address,
        password=encryption.decrypt(account.secret_encrypted) if account.secret_encrypted else "",
        timeout=settings.CRM_MAIL_TIMEOUT,
    )


@contextmanager
def account_lock(account_id: int, *, namespace: int = _LOCK_NAMESPACE) -> Iterator[bool]:
    """The per-account sync lock: a session-level advisory lock, held across the pass's many
    transactions, released by PostgreSQL if the worker's connection dies. (`namespace`: the
    same kind of lock for another per-account job, e.g. mailsync.actions.)"""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, account_id & 0x7FFFFFFF])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", [namespace, account_id & 0x7FFFFFFF]
                )


def backoff_seconds(failures: int) -> float:
    """30 s, 1 min, 2 min, … capped at 30 min."""
    return float(min(30 * 2 ** max(failures - 1, 0), 1800))


class _Pass:
    """One sync pass of one account. Every database step is its own bound transaction."""

    def __init__(self, company_id: int, account_id: int, provider: Provider) -> None:
        self.company_id = company_id
        self.account_id = account_id
        self.provider = provider
        self.outcome = PassOutcome(ran=True)
        self.last_incremental = 0.0
        self.analyzed_at = ANALYZE_FIRST_AT // 2

    def bound(self) -> AbstractContextManager[None]:
        return tenancy.bound(self.company_id)

    def state_update(self, **fields: object) -> None:
        with self.bound():
            fields.setdefault("heartbeat_at", datetime.now(UTC))
            SyncState.objects.for_company(self.company_id).filter(
                account_id=self.account_id
            ).update(**fields, updated_at=datetime.now(UTC))

    # --- Stages ---------------------------------------------------------------------------------

    def run(self) -> None:
        self.state_update(stage=Stage.DISCOVERING)
        self.discover()
        self.incremental()
        self.backfill()
        self.unsynced_drop()

    def discover(self) -> None:
        remote = self.provider.list_folders()
        now = datetime.now(UTC)
        with self.bound():
            account = MailAccount.objects.for_company(self.company_id).get(pk=self.account_id)
            known = {
                f.name: f
                for f in MailFolder.objects.for_company(self.company_id).filter(account=account)
            }
            seen: set[str] = set()
            for folder in remote:
                seen.add(folder.name)
                existing = known.get(folder.name)
                if existing is None:
                    MailFolder.objects.create(
                        company_id=self.company_id,
                        account=account,
                        name=folder.name,
                        role=folder.role,
                    )
                elif existing.removed_at is not None or existing.role != folder.role:
                    existing.removed_at = None
                    existing.role = folder.role
                    existing.save(update_fields=["removed_at", "role", "updated_at"])
            for name, gone in known.items():
                if name not in seen and gone.removed_at is None:
                    gone.removed_at = now
                    gone.save(update_fields=["removed_at", "updated_at"])

    def synced_folders(self) -> list[MailFolder]:
        with self.bound():
            account = MailAccount.objects.for_company(self.company_id).get(pk=self.account_id)
            folders = list(
                MailFolder.objects.for_company(self.company_id).filter(
                    account=account, removed_at__isnull=True
                )
            )
        chosen = [f for f in folders if folder_syncs(account, f)]
        return sorted(chosen, key=lambda f: (_ROLE_ORDER.get(FolderRole(f.role), 9), f.name))

    def unsynced_folder_ids(self, synced: list[MailFolder]) -> list[int]:
        """Folders whose mail we hold but that no longer sync: vanished on the server or
        dropped from the selection (A4)."""
        synced_ids = {f.pk for f in synced}
        with self.bound(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT folder_id FROM inbox_mailmessagelocation "
                "WHERE company_id = %s AND account_id = %s",
                [self.company_id, self.account_id],
            )
            held = {row[0] for row in cursor.fetchall()}
        return sorted(held - synced_ids)

    def incremental(self) -> None:
        """New mail, flag changes and deletions of every synced folder.

        Deletions come last, after every folder's new mail: a message moved between two
        synced folders (archived in a mail client: INBOX → Archive) is then found in its new
        folder by its key while the old location still holds it, and keeps its row and its
        conversation (with the CRM's state of it) instead of being deleted and downloaded
        again. Each folder's cursor moves only with its deletions, so a pass cut between the
        two lists them again."""
        self.last_incremental = time.monotonic()
        self.state_update(stage=Stage.LISTING)
        deletions: list[Callable[[], None]] = []
        for folder in self.synced_folders():
            self.folder_incremental(folder, later=deletions)
        for finish in deletions:
            finish()

    def unsynced_drop(self) -> None:
        """Drop the mail of folders no longer synced: last, so that a renamed folder's messages
        already sit in the new folder and keep their threads."""
        for folder_id in self.unsynced_folder_ids(self.synced_folders()):
            with self.bound():
                self.outcome.removed += ingest.locations_remove(
                    company_id=self.company_id,
                    account_id=self.account_id,
                    folder_id=folder_id,
                    provider_ids=None,
                )
                FolderCursor.objects.for_company(self.company_id).filter(
                    folder_id=folder_id
                ).delete()

    def cursor_of(self, folder: MailFolder) -> FolderCursor:
        with self.bound():
            cursor, _ = FolderCursor.objects.for_company(self.company_id).get_or_create(
                company_id=self.company_id,
                folder=folder,
                defaults={"account_id": self.account_id},
            )
        return cursor

    def folder_incremental(
        self, folder: MailFolder, *, later: list[Callable[[], None]] | None = None
    ) -> None:
        """One folder's changes since its cursor. Its deletions and the cursor's move are
        appended to `later` when given (see `incremental`), else done at once."""
        stored = self.cursor_of(folder)
        cursor = Cursor(
            validity=stored.validity,
            next_uid=stored.next_uid,
            modseq=stored.modseq,
            token=stored.token,
        )
        try:
            status = self.provider.folder_status(folder.name, cursor)
        except ProviderError as error:
            if error.kind != ErrorKind.CURSOR_LOST:
                raise
            self.cursor_reset(folder)
            return
        if not stored.validity:
            with self.bound():
                cursor_first_look(company_id=self.company_id, folder=folder, cursor=status.cursor)
            return
        with self.bound():
            touched = ingest.flags_update(
                company_id=self.company_id, folder_id=folder.pk, flags=status.changed
            )
            gone = list(status.gone)
            if status.complete_listing:
                gone.extend(
                    self.held_not_present(folder, stored.validity, stored.next_uid, status.present)
                )
            ingest.threads_refresh(company_id=self.company_id, thread_ids=touched)
        self.fetch_and_store(folder, list(status.new), announce=True)

        def finish() -> None:
            with self.bound():
                if gone:
                    self.outcome.removed += ingest.locations_remove(
                        company_id=self.company_id,
                        account_id=self.account_id,
                        folder_id=folder.pk,
                        provider_ids=gone,
                    )
                FolderCursor.objects.for_company(self.company_id).filter(pk=stored.pk).update(
                    next_uid=status.cursor.next_uid,
                    modseq=status.cursor.modseq,
                    token=status.cursor.token,
                )

        if later is None:
            finish()
        else:
            later.append(finish)

    def held_not_present(
        self, folder: MailFolder, validity: str, next_uid: int, present: frozenset[str]
    ) -> list[str]:
        """Locations of the current validity below the cursor that a complete listing no
        longer has. (Those of an older validity wait for the relist to finish: see
        `cursor_reset`.)"""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT provider_id FROM inbox_mailmessagelocation "
                "WHERE company_id = %s AND folder_id = %s AND uid < %s AND provider_id LIKE %s",
                [self.company_id, folder.pk, next_uid, f"{validity}:%"],
            )
            return [row[0] for row in cursor.fetchall() if row[0] not in present]

    def cursor_reset(self, folder: MailFolder) -> None:
        """UIDVALIDITY changed (or the token expired): forget the cursor and relist the folder
        from scratch, silently. The folder's old locations stay until the relist has re-found
        their messages (same keys: no duplicates, nothing announced); `backfill_done` then
        drops the ones not found again. Everything needed to resume is in the database, so a
        pass cut during the relist picks it up."""
        logger.info("Cursor lost for folder %s of account %s", folder.pk, self.account_id)
        with self.bound():
            FolderCursor.objects.for_company(self.company_id).filter(folder=folder).update(
                validity="",
                next_uid=0,
                modseq=None,
                token="",
                backfill_before_uid=0,
                backfill_total=0,
            )
        self.folder_incremental(folder)

    def stale_locations(
        self, folder: MailFolder, validity: str
    ) -> tuple[list[str], datetime | None]:
        """Locations of an older UIDVALIDITY (provider ids are "<validity>:<uid>"), and the
        oldest of their messages' arrival times."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT l.provider_id, m.received_at FROM inbox_mailmessagelocation l "
                "JOIN inbox_mailmessage m ON m.company_id = l.company_id AND m.id = l.message_id "
                "WHERE l.company_id = %s AND l.folder_id = %s AND l.provider_id NOT LIKE %s",
                [self.company_id, folder.pk, f"{validity}:%"],
            )
            rows = cursor.fetchall()
        return [row[0] for row in rows], min((row[1] for row in rows), default=None)

    def backfill_since(self, folder: MailFolder, account: MailAccount, validity: str) -> date:
        """The first sync's window; a relist after a lost cursor reaches back to the oldest
        message it must find again."""
        window = datetime.now(UTC) - timedelta(days=account.sync_since_days)
        with self.bound():
            _, oldest_stale = self.stale_locations(folder, validity)
        if oldest_stale is not None and oldest_stale < window:
            window = oldest_stale
        return window.date()

    def backfill(self) -> None:
        """The first sync, newest first, across folders, in committed batches. Resumable: the
        cursor's `backfill_before_uid` moves down after each stored batch."""
        with self.bound():
            account = MailAccount.objects.for_company(self.company_id).get(pk=self.account_id)
            state = SyncState.objects.for_company(self.company_id).get(account=account)
        pending: dict[int, list[str]] = {}
        folders = {f.pk: f for f in self.synced_folders()}
        total = 0
        for folder in folders.values():
            stored = self.cursor_of(folder)
            if stored.backfill_before_uid == 0:  # done
                continue
            try:
                ids = self.provider.backfill_ids(
                    folder.name,
                    validity=stored.validity,
                    before_uid=stored.backfill_before_uid,
                    since=self.backfill_since(folder, account, stored.validity),
                )
            except ProviderError as error:
                if error.kind != ErrorKind.CURSOR_LOST:
                    raise
                self.cursor_reset(folder)
                continue
            if not ids:
                self.backfill_done(folder, stored.validity)
                continue
            pending[folder.pk] = ids
            if not stored.backfill_total:
                with self.bound():
                    FolderCursor.objects.for_company(self.company_id).filter(pk=stored.pk).update(
                        backfill_total=len(ids)
                    )
            total += len(ids)
        if not pending:
            self.backfill_finished(state)
            return
        if not state.initial_done:
            done = state.progress_done
            self.state_update(
                stage=Stage.FETCHING,
                progress_total=done + total,
                initial_started_at=state.initial_started_at or datetime.now(UTC),
            )
        else:
            self.state_update(stage=Stage.FETCHING)
        # Newest first across folders: INBOX's newest batch, then Sent's, and round again; in
        # rounds, so that new mail is looked for between them.
        size = settings.CRM_MAIL_BATCH_SIZE
        while pending:
            jobs: list[tuple[int, list[str], bool]] = []  # folder, ids, the folder's last
            while pending and len(jobs) < ROUND_BATCHES:
                for folder_id in list(pending):
                    ids = pending[folder_id]
                    pending[folder_id] = ids[size:]
                    if not pending[folder_id]:
                        del pending[folder_id]
                    jobs.append((folder_id, ids[:size], folder_id not in pending))
            self.backfill_round(folders, jobs)
            if pending and time.monotonic() - self.last_incremental > INCREMENTAL_EVERY_SECONDS:
                self.incremental()
                self.state_update(stage=Stage.FETCHING)
        self.backfill_finished(state)

    def backfill_round(
        self, folders: dict[int, MailFolder], jobs: list[tuple[int, list[str], bool]]
    ) -> None:
        """Fetch, parse and store a round of batches, the next batch prepared while the
        current one is written (mailsync.prefetch). A folder whose last batch is stored is
        done."""
        work: list[tuple[int, str, list[str]]] = []
        for index, (folder_id, ids, _) in enumerate(jobs):
            folder = folders[folder_id]
            # Resuming, or reaching further back: what is held already is not downloaded again.
            with self.bound(), connection.cursor() as cursor:
                held = set(ingest.held_provider_ids(cursor, self.company_id, folder.pk, ids))
            if held:
                self.backfill_progress(folder, [pid for pid in ids if pid in held])
            work.append((index, folder.name, [pid for pid in ids if pid not in held]))
        for chunk in prefetch.prepared_chunks(
            provider=self.provider, company_id=self.company_id, jobs=work
        ):
            folder_id, ids, folder_last = jobs[chunk.job]
            folder = folders[folder_id]
            if chunk.fetched:
                self.store(
                    folder,
                    chunk.fetched,
                    chunk.parsed,
                    announce=False,
                    backfill=True,
                    raw_paths=chunk.raw_paths,
                )
            if chunk.last and folder_last:
                self.backfill_done(folder, ids[0].rpartition(":")[0])

    def backfill_done(self, folder: MailFolder, validity: str) -> None:
        with self.bound():
            FolderCursor.objects.for_company(self.company_id).filter(folder=folder).update(
                backfill_before_uid=0
            )
            # A relist after a lost cursor is complete: what it did not find again is gone.
            stale, _ = self.stale_locations(folder, validity)
            if stale:
                self.outcome.removed += ingest.locations_remove(
                    company_id=self.company_id,
                    account_id=self.account_id,
                    folder_id=folder.pk,
                    provider_ids=stale,
                )

    def backfill_finished(self, state: SyncState) -> None:
        if not state.initial_done:
            self.state_update(initial_done=True, initial_finished_at=datetime.now(UTC))

    def fetch_and_store(self, folder: MailFolder, ids: list[str], *, announce: bool) -> None:
        """New mail of a folder: fetch, parse and store it batch by batch. Ids held already
        (a message two-way sync moved here and recorded) are not downloaded."""
        if ids:
            with self.bound(), connection.cursor() as cursor:
                held = set(ingest.held_provider_ids(cursor, self.company_id, folder.pk, ids))
            ids = [pid for pid in ids if pid not in held]
        for fetched in self.provider.fetch(folder.name, ids):
            if fetched:
                self.store(folder, fetched, ingest.parse_batch(fetched), announce=announce)

    def store(
        self,
        folder: MailFolder,
        fetched: Sequence[FetchedMessage],
        parsed: Sequence[ParsedMessage],
        *,
        announce: bool,
        backfill: bool = False,
        raw_paths: Sequence[str] | None = None,
    ) -> None:
        """One batch in one transaction, with the sync state's counters and, in the first
        sync, the folder's backfill position moved below it."""
        with self.bound():
            result = ingest.ingest_batch(
                company_id=self.company_id,
                account_id=self.account_id,
                folder_id=folder.pk,
                fetched=fetched,
                parsed=parsed,
                announce=announce,
                raw_paths=raw_paths,
            )
            self.outcome.stored += result.stored
            self.counters_add(malformed=result.malformed)
            if backfill:
                self.backfill_position(folder, [m.provider_id for m in fetched])
        self.statistics_refresh()

    def statistics_refresh(self) -> None:
        """Keep the planner's statistics in step with a first sync that multiplies the
        company's mail (autovacuum may be off, or late): ANALYZE at 1,000 stored messages, then
        each time the count doubles."""
        if self.outcome.stored >= self.analyzed_at * 2:
            with self.bound(), connection.cursor() as cursor:
                cursor.execute("SELECT mailsync_analyze()")
            self.analyzed_at = self.outcome.stored

    def counters_add(self, *, malformed: int = 0, progress: int = 0) -> None:
        """Add to the sync state's counters (one UPDATE; the pass holds the account lock).
        Progress counts only during the first sync."""
        fields: dict[str, object] = {"heartbeat_at": datetime.now(UTC)}
        if malformed:
            fields["malformed_count"] = F("malformed_count") + malformed
        if progress:
            fields["progress_done"] = Case(
                When(initial_done=False, then=F("progress_done") + progress),
                default=F("progress_done"),
                output_field=PositiveIntegerField(),
            )
        SyncState.objects.for_company(self.company_id).filter(account_id=self.account_id).update(
            **fields
        )

    def backfill_progress(self, folder: MailFolder, done: list[str]) -> None:
        with self.bound():
            self.backfill_position(folder, done)

    def backfill_position(self, folder: MailFolder, done: list[str]) -> None:
        """Move the folder's backfill position below `done` (newest first, so the lowest UID)
        and count them in the first sync's progress. The caller holds a bound transaction."""
        if not done:
            return
        lowest = min(int(pid.rpartition(":")[2]) for pid in done)
        FolderCursor.objects.for_company(self.company_id).filter(
            folder=folder, backfill_before_uid__gt=lowest
        ).update(backfill_before_uid=lowest)
        self.counters_add(progress=len(done))


def cursor_first_look(*, company_id: int, folder: MailFolder, cursor: Cursor) -> None:
    """First sight of a folder: its cursor starts at UIDNEXT and the backfill (newest first)
    below it, unless the folder is tracked from now on (`tracked_from_now`, and nothing of it
    held yet: a relist after a lost cursor must find what it held). Only a cursor still
    unset is written, so two first looks agree. The caller is bound to the company."""
    account = MailAccount.objects.for_company(company_id).get(pk=folder.account_id)
    backfill = max(cursor.next_uid, 1)
    if tracked_from_now(account, folder):
        held = MailMessageLocation.objects.for_company(company_id).filter(folder=folder).exists()
        backfill = backfill if held else 0
    FolderCursor.objects.for_company(company_id).filter(folder=folder, validity="").update(
        validity=cursor.validity,
        next_uid=cursor.next_uid,
        modseq=cursor.modseq,
        token=cursor.token,
        backfill_before_uid=backfill,
    )


def cursor_prime(
    *, company_id: int, account_id: int, provider: Provider, folder: MailFolder
) -> None:
    """Give a folder never synced yet its cursor now, so that mail moved into it from here on
    is new to the next sync (mailsync.actions calls this before moving mail into a folder).
    The caller is bound to the company."""
    stored, _ = FolderCursor.objects.for_company(company_id).get_or_create(
        company_id=company_id, folder=folder, defaults={"account_id": account_id}
    )
    if stored.validity:
        return
    status = provider.folder_status(folder.name, Cursor())
    cursor_first_look(company_id=company_id, folder=folder, cursor=status.cursor)


def folders_refresh(
    *, company_id: int, account_id: int, provider: Provider, folder_ids: Sequence[int]
) -> PassOutcome:
    """The incremental part of a pass over some folders only: what two-way sync moved into
    them without learning the new ids. The caller holds the account lock and the open
    provider; ProviderError passes through."""
    sync_pass = _Pass(company_id, account_id, provider)
    with tenancy.bound(company_id):
        folders = list(
            MailFolder.objects.for_company(company_id).filter(
                account_id=account_id, pk__in=list(folder_ids), removed_at__isnull=True
            )
        )
    for folder in folders:
        sync_pass.folder_incremental(folder)
    return sync_pass.outcome


def sync_soon(*, company_id: int, account_id: int) -> None:
    """Make the account due a pass now (beat queues it within its next round). The caller
    is bound to the company."""
    SyncState.objects.for_company(company_id).filter(account_id=account_id).exclude(
        health=Health.NEEDS_RECONNECT
    ).update(next_sync_at=datetime.now(UTC))


def account_sync(*, company_id: int, account_id: int) -> PassOutcome:
    """Run one sync pass of the account, unless another worker holds it (then `ran` is False).
    Records health, errors and the next due time on the account's SyncState."""
    with account_lock(account_id) as acquired:
        if not acquired:
            return PassOutcome(ran=False)
        with tenancy.bound(company_id):
            account = (
                MailAccount.objects.for_company(company_id)
                .filter(pk=account_id, removed_at__isnull=True)
                .first()
            )
            if account is None:
                return PassOutcome(ran=False)
            SyncState.objects.for_company(company_id).get_or_create(
                company_id=company_id, account=account
            )
            provider = PROVIDERS[account.provider](connection_settings(account))
        sync_pass = _Pass(company_id, account_id, provider)
        try:
            with provider:
                sync_pass.run()
        except ProviderError as error:
            _record_failure(company_id, account_id, error)
            sync_pass.outcome.error_kind = str(error.kind)
            return sync_pass.outcome
        except Exception:
            _record_failure(
                company_id,
                account_id,
                ProviderError(
                    ErrorKind.TRANSIENT, "An internal error stopped the sync; it will retry."
                ),
            )
            raise
        now = datetime.now(UTC)
        sync_pass.state_update(
            stage=Stage.IDLE,
            health=Health.OK,
            last_synced_at=now,
            last_error_kind="",
            last_error_message="",
            consecutive_failures=0,
            next_sync_at=now + timedelta(seconds=settings.CRM_MAIL_POLL_SECONDS),
        )
        return sync_pass.outcome


def _record_failure(company_id: int, account_id: int, error: ProviderError) -> None:
    now = datetime.now(UTC)
    with tenancy.bound(company_id):
        state = (
            SyncState.objects.for_company(company_id).select_for_update().get(account_id=account_id)
        )
        state.consecutive_failures += 1
        if error.kind == ErrorKind.AUTH:
            state.health, next_at = Health.NEEDS_RECONNECT, None
        elif error.kind == ErrorKind.PERMANENT:
            state.health, next_at = Health.FAILED, now + timedelta(hours=1)
        else:
            delay = error.retry_after or backoff_seconds(state.consecutive_failures)
            state.health, next_at = Health.RETRYING, now + timedelta(seconds=delay)
        state.stage = Stage.IDLE
        state.last_error_kind = str(error.kind)
        state.last_error_message = error.message
        state.last_error_at = now
        state.next_sync_at = next_at
        state.save(
            update_fields=[
                "consecutive_failures",
                "health",
                "stage",
                "last_error_kind",
                "last_error_message",
                "last_error_at",
                "next_sync_at",
                "updated_at",
            ]
        )
    logger.warning("Sync of account %s failed: %s (%s)", account_id, error.kind, error.message)
