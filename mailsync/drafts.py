"""Drafts' copies in the account's Drafts folder (B5), kept in step with what the composer saves
(`inbox.drafts`), so that a draft is in every other mail client too, and gone from there once
it is sent or discarded.

`inbox.drafts` keeps the draft in PostgreSQL and sets `remote_due`: `DEBOUNCE` after the last
save, at once (or after the undo window) when it is sent or discarded. Here, per account under
the account's drafts lock (a PostgreSQL advisory lock, released by the server when the
worker's connection dies), each due draft is:

- open: written. Its message (`inbox.drafts.server_copy`, Message-ID `<token.vN.draft@domain>`)
  is APPENDed to the Drafts folder with \\Draft \\Seen (a "Drafts" folder is created when the
  mailbox has none); then every other copy of the draft there is deleted (`UID SEARCH HEADER
  Message-ID "token.v"`: any version, a copy an interrupted try stored without our knowing
  included), with, for a draft continued from another mail client's, that client's copy. The
  new copy's UID is APPENDUID's, or (no UIDPLUS) the highest the search finds: UIDs only grow,
  and nobody else writes this draft while we hold the lock. So one copy remains wherever an
  earlier try broke off: a retry appends again and the search removes the rest.
- sent or discarded: its copies (and the other client's) deleted; then the row, its files and
  their stored bytes (`inbox.drafts.draft_delete`).

Our own locations of the copies removed go at once (`ingest.locations_remove`), so the Sales
Inbox's Drafts folder never shows two versions of a draft; the next sync of Drafts finds the
new copy as an ordinary message.

A try is counted (`remote_tries`, committed) before the server is touched: a sent or discarded
draft that never reached the server is then removed without a connection. Transient trouble
and rate limits retry with backoff (30 s doubling, 30 min cap; MAX_TRIES tries, then an open
draft waits for its next save and a closed one is let go, its copy left); a refused sign-in
records `remote_error` and looks again every AUTH_RETRY (after a reconnect, it goes on);
a permanent refusal records it and stops until the next save. Accounts of providers without
an adapter yet (Gmail, Graph, EWS) have nothing to write: `remote_due` is cleared, and closed
drafts simply go.

Beat's sweeper (`tasks.drafts_due`) finds companies with due drafts through the door
`mailsync_due_draft_companies` (mailsync/migrations/0007); the inbox's `mail_drafts_changed`
hook queues a run for when a draft is due, so a save rarely waits for the sweep.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import F, QuerySet

from crm import tenancy
from inbox import drafts
from inbox.models import (
    DraftState,
    FolderRole,
    MailAccount,
    MailDraft,
    MailFolder,
    MailMessageLocation,
)
from mailsync import ingest, sync
from mailsync.providers import PROVIDERS
from mailsync.providers.base import ErrorKind, Provider, ProviderError

logger = logging.getLogger(__name__)

_LOCK_NAMESPACE = 0x6D647266  # "mdrf": the advisory-lock class of account drafts runs
DRAFT_FLAGS = frozenset({"\\Draft", "\\Seen"})
# Tries of a write or removal that keeps failing for a passing reason (about 4 hours).
MAX_TRIES = 12
# A refused sign-in is looked at again this often (the user may have reconnected).
AUTH_RETRY = timedelta(minutes=30)
# Drafts one run takes at most (the rest are due still: the sweep comes back for them).
CLAIM_LIMIT = 200
# Trouble with the connection or the sign-in: every draft of the account alike.
_STOPS_THE_RUN = (ErrorKind.AUTH, ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED)


@dataclass
class DraftsOutcome:
    written: int = 0
    removed: int = 0  # sent or discarded drafts gone, with their server copies
    retrying: int = 0
    failed: int = 0  # given up (an open draft waits for its next save)
    busy: int = 0  # accounts another worker was running

    def add(self, other: DraftsOutcome) -> None:
        self.written += other.written
        self.removed += other.removed
        self.retrying += other.retrying
        self.failed += other.failed
        self.busy += other.busy


@dataclass(frozen=True)
class _Copy:
    """A copy on the server to delete: its folder, provider id, and (a source copy) its
    Message-ID, to find it by if the folder was renumbered."""

    folder: MailFolder
    provider_id: str
    message_id: str = ""


def due_companies(at: datetime) -> list[int]:
    """Companies with drafts whose server copy is due by `at`: the named cross-tenant door
    `mailsync_due_draft_companies` (mailsync/migrations/0007)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mailsync_due_draft_companies(%s)", [at])
        return [int(row[0]) for row in cursor.fetchall()]


def company_drafts_run(*, company_id: int, now: datetime | None = None) -> DraftsOutcome:
    """Run the drafts of each of the company's accounts with due drafts."""
    now = now or datetime.now(UTC)
    with tenancy.bound(company_id):
        account_ids = sorted(
            set(
                MailDraft.objects.for_company(company_id)
                .filter(remote_due__lte=now)
                .values_list("account_id", flat=True)
            )
        )
    outcome = DraftsOutcome()
    for account_id in account_ids:
        outcome.add(account_drafts_run(company_id=company_id, account_id=account_id, now=now))
    return outcome


def account_drafts_run(
    *, company_id: int, account_id: int, now: datetime | None = None
) -> DraftsOutcome:
    """Write or remove the account's due drafts' server copies (see the module docstring),
    unless another worker is at it (then `busy`). `now` decides what is due (tests move it
    to skip the debounce or a backoff)."""
    with sync.account_lock(account_id, namespace=_LOCK_NAMESPACE) as acquired:
        if not acquired:
            return DraftsOutcome(busy=1)
        with ExitStack() as stack:
            run = _AccountRun(company_id, account_id, now or datetime.now(UTC), stack)
            run.execute()
        return run.outcome


def _uid_of(provider_id: str) -> int:
    head, _, tail = provider_id.rpartition(":")
    return int(tail) if head and tail.isdigit() else 0


class _AccountRun:
    """One run of one account's due drafts, under its lock."""

    account: MailAccount  # set when the run starts

    def __init__(self, company_id: int, account_id: int, now: datetime, stack: ExitStack) -> None:
        self.company_id = company_id
        self.account_id = account_id
        self.now = now
        self.stack = stack
        self.outcome = DraftsOutcome()
        self._provider: Provider | None = None
        self._folder: MailFolder | None = None

    def drafts(self) -> QuerySet[MailDraft]:
        """The account's drafts (the caller is bound to the company)."""
        return MailDraft.objects.for_company(self.company_id).filter(account_id=self.account_id)

    # --- The run ---------------------------------------------------------------------------------

    def execute(self) -> None:
        with tenancy.bound(self.company_id):
            account = (
                MailAccount.objects.for_company(self.company_id).filter(pk=self.account_id).first()
            )
            due = [
                (pk, state, due_at)
                for pk, state, due_at in self.drafts()
                .filter(remote_due__lte=self.now)
                .order_by("remote_due", "pk")
                .values_list("pk", "state", "remote_due")[:CLAIM_LIMIT]
                if due_at is not None
            ]
        if account is None or not due:
            return
        self.account = account
        if account.removed_at is not None or account.provider not in PROVIDERS:
            self.unreachable(due)
            return
        for index, (draft_id, state, due_at) in enumerate(due):
            try:
                if state == DraftState.OPEN:
                    self.write(draft_id)
                else:
                    self.remove(draft_id)
            except ProviderError as error:
                self.provider_drop()
                self.failed(draft_id, due_at, error)
                if error.kind in _STOPS_THE_RUN:
                    self.defer([pk for pk, _, _ in due[index + 1 :]], error)
                    return
            except Exception:
                logger.exception("Draft %s of account %s: server copy failed", draft_id, account.pk)
                self.provider_drop()
                self.failed(
                    draft_id,
                    due_at,
                    ProviderError(
                        ErrorKind.TRANSIENT,
                        "An internal error stopped keeping this draft in the mailbox; it will "
                        "retry.",
                    ),
                )

    def unreachable(self, due: list[tuple[int, str, datetime]]) -> None:
        """A disconnected account, or a provider we cannot write to yet: nothing to do on a
        server; closed drafts go."""
        with tenancy.bound(self.company_id):
            for draft_id, state, due_at in due:
                if state == DraftState.OPEN:
                    self.drafts().filter(pk=draft_id, remote_due=due_at).update(remote_due=None)
                else:
                    drafts.draft_delete(company_id=self.company_id, draft_id=draft_id)
                    self.outcome.removed += 1

    # --- Connections and folders -----------------------------------------------------------------

    def provider(self) -> Provider:
        if self._provider is None:
            factory = PROVIDERS[self.account.provider]
            self._provider = self.stack.enter_context(
                factory(sync.connection_settings(self.account))
            )
        return self._provider

    def provider_drop(self) -> None:
        """After a failure the connection may be broken: the next use opens a new one."""
        if self._provider is not None:
            try:
                self._provider.__exit__(None, None, None)
            except Exception:  # closing a broken connection: nothing to keep
                logger.debug("Closing the IMAP connection of account %s", self.account_id)
            self._provider = None

    def drafts_folder(self) -> MailFolder | None:
        """The account's Drafts folder as we know it (from sync, or made here)."""
        if self._folder is None:
            with tenancy.bound(self.company_id):
                self._folder = (
                    MailFolder.objects.for_company(self.company_id)
                    .filter(
                        account_id=self.account_id, role=FolderRole.DRAFTS, removed_at__isnull=True
                    )
                    .order_by("name")
                    .first()
                )
        return self._folder

    def drafts_folder_ensure(self) -> MailFolder:
        """The server's Drafts folder, made when it has none, and recorded."""
        remote = self.provider().ensure_folder(FolderRole.DRAFTS)
        with tenancy.bound(self.company_id):
            folder, created = MailFolder.objects.for_company(self.company_id).get_or_create(
                company_id=self.company_id,
                account_id=self.account_id,
                name=remote.name,
                defaults={"role": FolderRole.DRAFTS},
            )
            if not created and (folder.role != FolderRole.DRAFTS or folder.removed_at is not None):
                folder.role, folder.removed_at = FolderRole.DRAFTS, None
                folder.save(update_fields=["role", "removed_at", "updated_at"])
        self._folder = folder
        return folder

    # --- Writing an open draft -------------------------------------------------------------------

    def write(self, draft_id: int) -> None:
        with tenancy.bound(self.company_id):
            draft = (
                self.drafts()
                .filter(pk=draft_id, state=DraftState.OPEN, remote_due__lte=self.now)
                .select_related("remote_folder")
                .first()
            )
            if draft is None:  # saved again for later, sent or discarded meanwhile
                return
            raw = drafts.server_copy(draft=draft, date=datetime.now(UTC))
            sources = self.source_copies(draft)
            self.drafts().filter(pk=draft.pk).update(remote_tries=F("remote_tries") + 1)
        part = drafts.server_id_part(draft.token)
        folder = self.drafts_folder() or self.drafts_folder_ensure()
        try:
            new_id = self.provider().append(folder.name, raw, DRAFT_FLAGS)
        except ProviderError as error:
            # Our record of the folder may be out of date (deleted or renamed on the server).
            known = folder
            folder = self.drafts_folder_ensure() if error.kind == ErrorKind.PERMANENT else known
            if folder.name == known.name:
                raise
            new_id = self.provider().append(folder.name, raw, DRAFT_FLAGS)
        ours = self.provider().find_message_id_containing(folder.name, part)
        if new_id is None and ours:
            new_id = max(ours, key=_uid_of)
        stale = [_Copy(folder, pid) for pid in ours if pid != new_id]
        self.delete(stale)
        # Where the draft was before (its folder renamed away, say) and the other client's
        # copy: a folder gone from the server took them along.
        previous = draft.remote_folder
        if previous is not None and previous.pk != folder.pk and previous.removed_at is None:
            stale += self.delete_found(previous, part)
        stale += self.delete_leftovers(sources)
        with tenancy.bound(self.company_id):
            # The token changes when the user moves the draft to another account: this copy
            # is then the old token's, which its stand-in removes.
            written = self.drafts().filter(pk=draft.pk, token=draft.token)
            written.update(
                remote_folder=folder,
                remote_uid=_uid_of(new_id) if new_id else None,
                remote_version=draft.version,
                remote_tries=0,
                remote_error="",
            )
            # In step, unless the user saved again meanwhile (a new due time).
            written.filter(remote_due=draft.remote_due).update(remote_due=None)
            self.forget(stale)
        self.outcome.written += 1

    def copies_in(self, folder: MailFolder, part: str) -> list[_Copy]:
        return [
            _Copy(folder, pid)
            for pid in self.provider().find_message_id_containing(folder.name, part)
        ]

    def delete_found(self, folder: MailFolder, part: str) -> list[_Copy]:
        """Delete the draft's copies in a folder besides the Drafts folder; none when the
        server refuses the folder (gone: the copies went with it)."""
        try:
            copies = self.copies_in(folder, part)
            self.delete(copies)
        except ProviderError as error:
            if error.kind != ErrorKind.PERMANENT:
                raise
            logger.info("Draft copies in %s of account %s: %s", folder.pk, self.account_id, error)
            return []
        return copies

    def delete_leftovers(self, copies: list[_Copy]) -> list[_Copy]:
        """Delete copies whose folder may be gone from the server (then they are too)."""
        deleted: list[_Copy] = []
        for folder_id in sorted({copy.folder.pk for copy in copies}):
            group = [copy for copy in copies if copy.folder.pk == folder_id]
            try:
                self.delete(group)
            except ProviderError as error:
                if error.kind != ErrorKind.PERMANENT:
                    raise
                logger.info(
                    "Draft copies in %s of account %s: %s", folder_id, self.account_id, error
                )
            deleted += group
        return deleted

    def source_copies(self, draft: MailDraft) -> list[_Copy]:
        """The copies, in this account's Drafts folders, of the other client's draft this one
        continues (the caller is bound to the company)."""
        if draft.source_message_id is None:
            return []
        locations = (
            MailMessageLocation.objects.for_company(self.company_id)
            .filter(
                account_id=self.account_id,
                message_id=draft.source_message_id,
                folder__role=FolderRole.DRAFTS,
                folder__removed_at__isnull=True,
            )
            .select_related("folder", "message")
            .order_by("pk")
        )
        return [
            _Copy(location.folder, location.provider_id, location.message.message_id)
            for location in locations
        ]

    def delete(self, copies: list[_Copy]) -> None:
        """Delete the copies on the server, folder by folder. A copy recorded before its
        folder was renumbered is looked for by its Message-ID instead."""
        by_folder: dict[int, list[_Copy]] = {}
        for copy in copies:
            by_folder.setdefault(copy.folder.pk, []).append(copy)
        for group in by_folder.values():
            folder = group[0].folder
            try:
                self.provider().delete(folder.name, [copy.provider_id for copy in group])
            except ProviderError as error:
                if error.kind != ErrorKind.CURSOR_LOST:
                    raise
                found: list[str] = []
                for copy in group:
                    if copy.message_id:
                        found += self.provider().find_message_id(folder.name, copy.message_id)
                self.provider().delete(folder.name, sorted(set(found)))

    def forget(self, copies: list[_Copy]) -> None:
        """Our locations of copies gone from the server (the caller is bound)."""
        by_folder: dict[int, list[str]] = {}
        for copy in copies:
            by_folder.setdefault(copy.folder.pk, []).append(copy.provider_id)
        for folder_id, provider_ids in by_folder.items():
            ingest.locations_remove(
                company_id=self.company_id,
                account_id=self.account_id,
                folder_id=folder_id,
                provider_ids=provider_ids,
            )

    # --- Removing a sent or discarded draft ------------------------------------------------------

    def remove(self, draft_id: int) -> None:
        with tenancy.bound(self.company_id):
            draft = (
                self.drafts()
                .filter(pk=draft_id, remote_due__lte=self.now)
                .exclude(state=DraftState.OPEN)
                .select_related("remote_folder")
                .first()
            )
            if draft is None:  # opened again (an undone send)
                return
            reached = bool(draft.remote_version or draft.remote_tries or draft.remote_folder_id)
            sources = self.source_copies(draft)
            if reached or sources:
                self.drafts().filter(pk=draft.pk).update(remote_tries=F("remote_tries") + 1)
        copies: list[_Copy] = []
        if reached:
            part = drafts.server_id_part(draft.token)
            folders = {
                folder.pk: folder
                for folder in (self.drafts_folder(), draft.remote_folder)
                if folder is not None and folder.removed_at is None
            }
            for folder in folders.values():
                copies += self.delete_found(folder, part)
        copies += self.delete_leftovers(sources)
        with tenancy.bound(self.company_id):
            self.forget(copies)
            drafts.draft_delete(company_id=self.company_id, draft_id=draft.pk)
        self.outcome.removed += 1

    # --- Failures --------------------------------------------------------------------------------

    def failed(self, draft_id: int, due_at: datetime, error: ProviderError) -> None:
        """Record a failed try: retry later, or give up (see the module docstring)."""
        now = datetime.now(UTC)
        with tenancy.bound(self.company_id):
            draft = self.drafts().filter(pk=draft_id).select_for_update().first()
            if draft is None:
                return
            tries = max(draft.remote_tries, 1)
            give_up = error.kind == ErrorKind.PERMANENT or (
                error.kind != ErrorKind.AUTH and tries >= MAX_TRIES
            )
            if draft.state != DraftState.OPEN and give_up:
                logger.warning(
                    "Draft %s of account %s: its server copy is left (%s)",
                    draft.pk,
                    self.account_id,
                    error.message,
                )
                drafts.draft_delete(company_id=self.company_id, draft_id=draft.pk)
                self.outcome.failed += 1
                return
            saved_since = draft.remote_due is not None and draft.remote_due != due_at
            if give_up:
                # An open draft waits for its next save (unless one came meanwhile).
                draft.remote_due = draft.remote_due if saved_since else None
                self.outcome.failed += 1
            else:
                if error.kind == ErrorKind.AUTH:
                    delay = AUTH_RETRY.total_seconds()
                else:
                    delay = error.retry_after or sync.backoff_seconds(tries)
                retry_at = now + timedelta(seconds=delay)
                draft.remote_due = max(draft.remote_due or retry_at, retry_at)
                self.outcome.retrying += 1
            draft.remote_error = error.message
            # Not `updated_at`: that is when the user last saved.
            draft.save(update_fields=["remote_due", "remote_error"])

    def defer(self, draft_ids: list[int], error: ProviderError) -> None:
        """The rest of the run's drafts wait as long as the one that failed (no try counted:
        they were not tried)."""
        if not draft_ids:
            return
        if error.kind == ErrorKind.AUTH:
            delay = AUTH_RETRY.total_seconds()
        else:
            delay = error.retry_after or sync.backoff_seconds(1)
        retry_at = datetime.now(UTC) + timedelta(seconds=delay)
        with tenancy.bound(self.company_id):
            self.drafts().filter(pk__in=draft_ids, remote_due__lt=retry_at).update(
                remote_due=retry_at
            )
