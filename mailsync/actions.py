"""The executor of provider actions (A5, two-way sync): what the CRM asked the mailbox to do.

`inbox` writes `MailAction` rows (archive, unarchive, delete, restore, read, unread) in the
transaction of the local change, due when the undo window ends; an undo inside the window
cancels the row, so nothing reaches the server. Here the due rows are carried out:

1. Beat's sweeper (`tasks.actions_due`, every 15 s) finds the companies with due actions
   through the door `mailsync_due_action_companies`; the inbox's `mail_actions_queued` hook
   also queues a run for the end of the undo window, so an action rarely waits for the sweep.
2. Per account, under the account's executor lock (one account's actions run one at a time,
   in the order they were asked), one transaction bound to the company claims the due rows
   (`FOR UPDATE SKIP LOCKED`: an undo arriving late waits for us and then sees the row done),
   opens the provider once, and carries each action out in a savepoint: the server first,
   then our locations, so that they say what the server now holds.
3. A move's new ids come back with it (IMAP COPYUID) and are recorded at once, so the next
   sync has nothing to download and nothing to mistake for the user's doing. Where they do
   not (no UIDPLUS; a retry after a cut connection, when the server had moved the message
   already), the old location goes and the target folder's incremental sync, right after,
   finds the message again by its key: same message, same thread, no duplicate. Until then
   the message is "in transit": sync keeps it (`ingest.messages_release`).
4. Failures: transient, rate limited and cursor lost wait and retry (backoff, Retry-After, at
   most MAX_ATTEMPTS tries); auth and permanent fail at once. `last_error` says why in plain
   words (the user sees it).

See docs/decisions/0009-two-way-sync.md.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from crm import tenancy
from inbox.models import (
    ActionKind,
    ActionState,
    FolderRole,
    MailAccount,
    MailAction,
    MailFolder,
    MailMessage,
    MailMessageLocation,
)
from mailsync import ingest, sync
from mailsync.providers import PROVIDERS
from mailsync.providers.base import ErrorKind, Provider, ProviderError
from mailsync.providers.imap import carried_flags

logger = logging.getLogger(__name__)

# Tries before an action that keeps failing for a passing reason is given up.
MAX_ATTEMPTS = 8
# Actions one account's run claims at most (the rest wait for the next run).
CLAIM_LIMIT = 200
_LOCK_NAMESPACE = 0x6D616374  # "mact": the advisory-lock class of account action runs
SEEN = "\\Seen"

_STOPS_THE_RUN = (ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED, ErrorKind.AUTH)


@dataclass
class ActionsOutcome:
    done: int = 0
    failed: int = 0  # failed or cancelled for good
    retrying: int = 0
    busy: int = 0  # accounts whose actions another worker was running

    def add(self, other: ActionsOutcome) -> None:
        self.done += other.done
        self.failed += other.failed
        self.retrying += other.retrying
        self.busy += other.busy


@dataclass(frozen=True)
class _Held:
    """A copy of a message in a folder of the account, as we hold it."""

    location_id: int
    message_id: int
    folder: MailFolder
    provider_id: str
    flags: tuple[str, ...]


def due_companies(at: datetime) -> list[int]:
    """Companies with actions pending and due by `at`: the named cross-tenant door
    `mailsync_due_action_companies` (mailsync/migrations/0004)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mailsync_due_action_companies(%s)", [at])
        return [int(row[0]) for row in cursor.fetchall()]


def company_actions_run(*, company_id: int, now: datetime | None = None) -> ActionsOutcome:
    """Carry out the company's due actions, account by account."""
    now = now or datetime.now(UTC)
    with tenancy.bound(company_id):
        account_ids = sorted(
            set(
                MailAction.objects.for_company(company_id)
                .filter(state=ActionState.PENDING, run_after__lte=now)
                .values_list("account_id", flat=True)
            )
        )
    outcome = ActionsOutcome()
    for account_id in account_ids:
        outcome.add(account_actions_run(company_id=company_id, account_id=account_id, now=now))
    return outcome


def account_actions_run(
    *, company_id: int, account_id: int, now: datetime | None = None
) -> ActionsOutcome:
    """Carry out one account's due actions, unless another worker is at it (then `busy`)."""
    with sync.account_lock(account_id, namespace=_LOCK_NAMESPACE) as acquired:
        if not acquired:
            return ActionsOutcome(busy=1)
        run = _AccountRun(company_id, account_id, now or datetime.now(UTC))
        with ExitStack() as stack:
            run.execute(stack)
            run.follow_up()
        return run.outcome


def _uid_of(provider_id: str) -> int:
    """The IMAP UID of an IMAP provider id ("<uidvalidity>:<uid>"); 0 for other providers."""
    head, _, tail = provider_id.rpartition(":")
    return int(tail) if head and tail.isdigit() else 0


class _AccountRun:
    """One run of one account's due actions."""

    account: MailAccount  # set once connected

    def __init__(self, company_id: int, account_id: int, now: datetime) -> None:
        self.company_id = company_id
        self.account_id = account_id
        self.now = now
        self.outcome = ActionsOutcome()
        self.provider: Provider | None = None
        self.broken = False  # the connection failed: nothing more through it
        self.last_error = ProviderError(ErrorKind.TRANSIENT, "The connection was lost.")
        self.folders: dict[str, MailFolder] = {}  # target folders by role, this run
        # Moved without learning the new id: the target folders to sync right after, and the
        # messages that sync should have found again.
        self.refresh_folder_ids: set[int] = set()
        self.unplaced: set[int] = set()

    # --- The run ---------------------------------------------------------------------------

    def execute(self, stack: ExitStack) -> None:
        """Claim, connect, carry out; one transaction (see the module docstring)."""
        with tenancy.bound(self.company_id):
            actions = list(
                MailAction.objects.for_company(self.company_id)
                .filter(
                    account_id=self.account_id,
                    state=ActionState.PENDING,
                    run_after__lte=self.now,
                )
                .order_by("created_at", "id")
                .select_for_update(skip_locked=True)[:CLAIM_LIMIT]
            )
            if not actions:
                return
            account = MailAccount.objects.for_company(self.company_id).get(pk=self.account_id)
            if account.removed_at is not None or not account.two_way_sync:
                for action in actions:
                    self.close(
                        action,
                        ActionState.CANCELLED,
                        "Two-way sync is off for this mailbox, so the change was made in the "
                        "CRM only.",
                    )
                return
            factory = PROVIDERS.get(account.provider)
            if factory is None:
                for action in actions:
                    self.close(
                        action,
                        ActionState.FAILED,
                        "This kind of mailbox cannot be changed from the CRM yet; the change "
                        "was made in the CRM only.",
                    )
                return
            try:
                self.provider = stack.enter_context(factory(sync.connection_settings(account)))
            except ProviderError as error:
                self.broken = True
                for action in actions:
                    self.failure(action, error, attempted=True)
                return
            self.account = account
            for index, action in enumerate(actions):
                if not self.attempt(action):
                    for rest in actions[index + 1 :]:
                        self.defer(rest)
                    break

    def attempt(self, action: MailAction) -> bool:
        """Carry out one action in a savepoint; False when the run must stop."""
        try:
            with transaction.atomic():
                self.carry_out(action)
        except ProviderError as error:
            self.failure(action, error, attempted=True)
            if error.kind == ErrorKind.CURSOR_LOST:
                sync.sync_soon(company_id=self.company_id, account_id=self.account_id)
            if error.kind in _STOPS_THE_RUN:
                self.broken = True
                self.last_error = error
                return False
            return True
        except Exception:
            logger.exception("Action %s of account %s failed", action.pk, self.account_id)
            self.failure(
                action,
                ProviderError(
                    ErrorKind.TRANSIENT, "An internal error stopped this change; it will retry."
                ),
                attempted=True,
            )
            return True
        self.close(action, ActionState.DONE, "")
        return True

    def follow_up(self) -> None:
        """Sync the folders that received mail whose new ids we did not learn, so the moved
        messages get their locations now; then let go of those that were not found (the
        server no longer had them). Needs the account's sync lock: else a sync soon."""
        if not self.refresh_folder_ids:
            return
        if self.provider is None or self.broken:
            with tenancy.bound(self.company_id):
                sync.sync_soon(company_id=self.company_id, account_id=self.account_id)
            return
        with sync.account_lock(self.account_id) as acquired:
            try:
                if not acquired:
                    raise ProviderError(ErrorKind.TRANSIENT, "The account is syncing.")
                sync.folders_refresh(
                    company_id=self.company_id,
                    account_id=self.account_id,
                    provider=self.provider,
                    folder_ids=sorted(self.refresh_folder_ids),
                )
            except ProviderError as error:
                logger.info("Sync after actions of account %s: %s", self.account_id, error)
                with tenancy.bound(self.company_id):
                    sync.sync_soon(company_id=self.company_id, account_id=self.account_id)
                return
        with tenancy.bound(self.company_id):
            ingest.messages_release(
                company_id=self.company_id,
                account_id=self.account_id,
                message_ids=sorted(self.unplaced),
            )

    # --- Carrying out one action -----------------------------------------------------------

    def carry_out(self, action: MailAction) -> None:
        held = self.held(action.message_ids)
        if action.kind in (ActionKind.READ, ActionKind.UNREAD):
            seen = frozenset({SEEN})
            if action.kind == ActionKind.READ:
                self.flags_set(held, add=seen, remove=frozenset())
            else:
                self.flags_set(held, add=frozenset(), remove=seen)
            return
        for role, copies in self.moves(ActionKind(action.kind), held).items():
            if copies:
                self.move(copies, self.target(role))

    def held(self, message_ids: Iterable[int]) -> list[_Held]:
        locations = (
            MailMessageLocation.objects.for_company(self.company_id)
            .filter(
                account_id=self.account_id,
                message_id__in=list(message_ids),
                folder__removed_at__isnull=True,
            )
            .select_related("folder")
            .order_by("folder_id", "uid", "pk")
        )
        return [
            _Held(
                location_id=location.pk,
                message_id=location.message_id,
                folder=location.folder,
                provider_id=location.provider_id,
                flags=tuple(location.flags),
            )
            for location in locations
        ]

    def moves(self, kind: ActionKind, held: list[_Held]) -> dict[str, list[_Held]]:
        """The copies to move, by the role of the folder they go to.

        archive: out of the inbox (sent mail stays in Sent); unarchive: from the archive
        back to the inbox, unless the message is there already; delete: every copy not in
        the bin; restore: out of the bin, to Sent for the account's own messages, else to the
        inbox."""
        role_of = {h.location_id: h.folder.role for h in held}
        if kind == ActionKind.ARCHIVE:
            return {FolderRole.ARCHIVE: [h for h in held if role_of[h.location_id] == "inbox"]}
        if kind == ActionKind.UNARCHIVE:
            in_inbox = {h.message_id for h in held if role_of[h.location_id] == "inbox"}
            return {
                FolderRole.INBOX: [
                    h
                    for h in held
                    if role_of[h.location_id] == "archive" and h.message_id not in in_inbox
                ]
            }
        if kind == ActionKind.DELETE:
            return {FolderRole.TRASH: [h for h in held if role_of[h.location_id] != "trash"]}
        trashed = [h for h in held if role_of[h.location_id] == "trash"]
        own = self.own_messages({h.message_id for h in trashed})
        has_sent = self.folder_in_db(FolderRole.SENT) is not None
        return {
            FolderRole.SENT: [h for h in trashed if has_sent and h.message_id in own],
            FolderRole.INBOX: [h for h in trashed if not (has_sent and h.message_id in own)],
        }

    def own_messages(self, message_ids: set[int]) -> set[int]:
        address = self.account.email_address.lower()
        return {
            pk
            for pk, sender in MailMessage.objects.for_company(self.company_id)
            .filter(pk__in=sorted(message_ids))
            .values_list("pk", "from_address")
            if sender.lower() == address
        }

    def folder_in_db(self, role: str) -> MailFolder | None:
        return (
            MailFolder.objects.for_company(self.company_id)
            .filter(account_id=self.account_id, role=role, removed_at__isnull=True)
            .order_by("name")
            .first()
        )

    def target(self, role: str) -> MailFolder:
        """The folder of that role, found (or created) on the server, recorded here, and with
        a cursor from before the mail arrives."""
        if role in self.folders:
            return self.folders[role]
        if role == FolderRole.SENT:
            folder = self.folder_in_db(role)
            if folder is None:  # moves() checked it
                raise ProviderError(ErrorKind.PERMANENT, "The mailbox has no Sent folder.")
        else:
            folder = self.folder_recorded(self.connected().ensure_folder(role).name, role)
        sync.cursor_prime(
            company_id=self.company_id,
            account_id=self.account_id,
            provider=self.connected(),
            folder=folder,
        )
        self.folders[role] = folder
        return folder

    def folder_recorded(self, name: str, role: str) -> MailFolder:
        folder, created = MailFolder.objects.for_company(self.company_id).get_or_create(
            company_id=self.company_id,
            account_id=self.account_id,
            name=name,
            defaults={"role": role},
        )
        if not created and (folder.role != role or folder.removed_at is not None):
            folder.role, folder.removed_at = role, None
            folder.save(update_fields=["role", "removed_at", "updated_at"])
        return folder

    def connected(self) -> Provider:
        if self.provider is None:
            raise ProviderError(ErrorKind.TRANSIENT, "Not connected.")
        return self.provider

    def move(self, copies: Sequence[_Held], target: MailFolder) -> None:
        """Move the copies, folder by folder, and record where they are now."""
        by_folder: dict[int, list[_Held]] = defaultdict(list)
        for copy in copies:
            by_folder[copy.folder.pk].append(copy)
        for group in by_folder.values():
            moved = self.connected().move(
                group[0].folder.name, [h.provider_id for h in group], target.name
            )
            self.record_move(group, target, moved)

    def record_move(
        self, group: Sequence[_Held], target: MailFolder, moved: dict[str, str | None]
    ) -> None:
        """Our locations as the server now has them. Not `ingest.locations_remove`: the
        message stays (and stays in its thread) even while no location is known."""
        MailMessageLocation.objects.for_company(self.company_id).filter(
            pk__in=[h.location_id for h in group]
        ).delete()
        placed = [(h, moved[h.provider_id]) for h in group if moved.get(h.provider_id)]
        MailMessageLocation.objects.bulk_create(
            [
                MailMessageLocation(
                    company_id=self.company_id,
                    account_id=self.account_id,
                    folder=target,
                    provider_id=new_id,
                    message_id=h.message_id,
                    uid=_uid_of(new_id),
                    flags=carried_flags(h.flags),
                )
                for h, new_id in placed
                if new_id
            ],
            ignore_conflicts=True,
        )
        unknown = {h.message_id for h in group if not moved.get(h.provider_id)}
        if unknown:
            self.refresh_folder_ids.add(target.pk)
            self.unplaced |= unknown
        self.threads_refresh({h.message_id for h in group})

    def flags_set(
        self, held: Sequence[_Held], *, add: frozenset[str], remove: frozenset[str]
    ) -> None:
        """Store the flags on every copy, and hold them so."""
        by_folder: dict[int, list[_Held]] = defaultdict(list)
        for copy in held:
            by_folder[copy.folder.pk].append(copy)
        for group in by_folder.values():
            self.connected().set_flags(
                group[0].folder.name, [h.provider_id for h in group], add=add, remove=remove
            )
        changed = []
        for copy in held:
            flags = sorted((set(copy.flags) | add) - remove)
            if flags != sorted(copy.flags):
                changed.append(
                    MailMessageLocation(
                        pk=copy.location_id, company_id=self.company_id, flags=flags
                    )
                )
        if changed:
            MailMessageLocation.objects.for_company(self.company_id).bulk_update(changed, ["flags"])
        self.threads_refresh({h.message_id for h in held})

    def threads_refresh(self, message_ids: set[int]) -> None:
        ingest.threads_refresh(
            company_id=self.company_id,
            thread_ids=ingest.threads_of_messages(
                company_id=self.company_id, account_id=self.account_id, message_ids=message_ids
            ),
        )

    # --- States ----------------------------------------------------------------------------

    def close(self, action: MailAction, state: str, message: str) -> None:
        action.state = state
        action.last_error = message[:500]
        action.done_at = datetime.now(UTC) if state == ActionState.DONE else None
        action.save(update_fields=["state", "attempts", "last_error", "done_at"])
        if state == ActionState.DONE:
            self.outcome.done += 1
        else:
            self.outcome.failed += 1

    def failure(self, action: MailAction, error: ProviderError, *, attempted: bool) -> None:
        """Auth and permanent errors fail the action; the others wait and retry, until
        MAX_ATTEMPTS tries."""
        if attempted:
            action.attempts += 1
        if error.kind in (ErrorKind.AUTH, ErrorKind.PERMANENT):
            self.close(action, ActionState.FAILED, error.message)
            return
        if action.attempts >= MAX_ATTEMPTS:
            self.close(
                action,
                ActionState.FAILED,
                f"Gave up after {action.attempts} tries. The last problem: {error.message}",
            )
            return
        delay = error.retry_after or sync.backoff_seconds(max(action.attempts, 1))
        action.run_after = datetime.now(UTC) + timedelta(seconds=delay)
        action.last_error = error.message[:500]
        action.save(update_fields=["attempts", "run_after", "last_error"])
        self.outcome.retrying += 1

    def defer(self, action: MailAction) -> None:
        """Not tried: the connection went before its turn. Same wait, no try counted."""
        self.failure(action, self.last_error, attempted=False)
