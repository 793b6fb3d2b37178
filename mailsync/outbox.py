"""The outbox's delivery (B4, G1, G2; DESIGN.md, Sending; docs/decisions/0012-outbox.md): the
one way mail leaves the system. `inbox.sending` writes a `MailOutbound` row (and its stored
`MailMessage`) in the transaction of the user's action; here it is handed to the account's
outgoing server, filed into its conversation and the Sent folder.

A run of one account's outbox holds the account's outbox lock (a PostgreSQL advisory lock,
released by the server when the worker's connection dies), so one account's messages go one
at a time, spaced by `CRM_MAIL_SEND_INTERVAL` seconds. It:

1. turns messages left `sending` into `uncertain`: holding the lock, nobody is sending them,
   so the run that was died in the middle of a handover;
2. finishes sent messages not yet filed (a run lost after the server took them);
3. settles uncertain messages: their Message-ID found in the Sent folder (`UID SEARCH HEADER
   Message-ID`) means sent; not found, the user is asked (never resent silently);
4. delivers the due queued messages, each thus:

       claim (FOR UPDATE SKIP LOCKED) → MAIL FROM, RCPT TO → state sending, attempt counted,
       COMMIT → DATA → state sent (COMMIT) → into its conversation (the ingest's threading,
       no folder yet), links → APPEND to Sent with \\Seen (unless the server files it
       itself) → its location there (COMMIT)

   Refused before DATA or cut before the message's end was written: not delivered, retried
   with backoff (transient) or failed in plain words (a recipient refused, sign-in refused,
   too large). Cut after the end was written and before the server's answer: `uncertain`.

Beat's sweeper (`tasks.outbox_due`, every 15 s) finds companies with work through the door
`mailsync_due_outbox_companies`; the inbox's `mail_outbox_queued` hook queues a run for when a
message's undo window ends, so a message rarely waits for the sweep. Nothing is lost when a
worker dies or Redis restarts: the outbox is in PostgreSQL, and the sweep finds it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Q, QuerySet

from crm import tenancy
from inbox import mime, rawstore, sending
from inbox.models import (
    FolderRole,
    MailAccount,
    MailFolder,
    MailMessage,
    MailOutbound,
    OutboundState,
    SentCopyMode,
    SentCopyState,
)
from mailsync import ingest, sync
from mailsync.pipeline.parse import parse_message
from mailsync.pipeline.types import ParsedMessage
from mailsync.providers import PROVIDERS
from mailsync.providers.base import (
    ConnectionSettings,
    Envelope,
    ErrorKind,
    FetchedMessage,
    Provider,
    ProviderError,
    Sender,
    SendError,
)
from mailsync.providers.smtp import SmtpSender

logger = logging.getLogger(__name__)

_LOCK_NAMESPACE = 0x6D6F7574  # "mout": the advisory-lock class of account outbox runs
# Tries to hand a message over before it fails for a passing reason (about 4 hours with the
# backoff: 30 s, 1, 2, 4, 8, 16 min, then every 30 min).
MAX_ATTEMPTS = 12
# A run gives its worker back after this long; what is left is queued again.
RUN_SECONDS = 120.0
# A server that files sent mail itself may take a moment: look again after this, this often.
UNCERTAIN_GRACE = timedelta(minutes=2)
UNCERTAIN_CHECKS_SERVER = 3
SENT_COPY_TRIES = 5
SEEN = "\\Seen"
# Outgoing servers that put what they accept into the Sent folder themselves.
SERVER_FILES_SENT = frozenset(
    {
        "smtp.gmail.com",
        "smtp.googlemail.com",
        "smtp.office365.com",
        "smtp-mail.outlook.com",
        "smtp.outlook.com",
    }
)
DEFAULT_SEND_INTERVAL = 2.0
# Sent messages are filed into their conversations this many at a time (one set-based pass,
# as a sync batch); "sent" itself is committed message by message, at once.
FINISH_BATCH = 100

_ACCOUNT_LEVEL = (ErrorKind.AUTH,)
_OPEN_WORK = Q(state__in=[OutboundState.QUEUED, OutboundState.UNCERTAIN]) | Q(
    state=OutboundState.SENT, finished_at__isnull=True
)

UNCERTAIN_CHECKING = (
    "The connection to the mail server broke off while this message was being handed over, "
    "so it may or may not have gone out. We are looking for it in your Sent folder."
)
UNCERTAIN_ASK = (
    "We can't tell whether this message went out: the connection to the mail server broke off "
    "after the message was handed over, before the server confirmed it, and it is not in your "
    "Sent folder. Ask a recipient whether it arrived, then send it again or mark it as sent."
)


@dataclass
class OutboxOutcome:
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    uncertain: int = 0  # newly uncertain (a handover broke off, or a run died)
    settled: int = 0  # uncertain ones found in Sent
    busy: int = 0  # accounts another worker was running
    more: bool = False  # due messages left when the run gave its worker back
    wait: float = 0.0  # when `more`: seconds until the next may go

    def add(self, other: OutboxOutcome) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.retrying += other.retrying
        self.uncertain += other.uncertain
        self.settled += other.settled
        self.busy += other.busy
        self.more = self.more or other.more


@dataclass
class _Sent:
    """A message the server took, to file: its stored bytes, and its copy in Sent once
    known (`copy_id`; `unlocated`: stored there without the server saying where)."""

    outbound: MailOutbound
    raw: bytes
    copy_id: str | None = None
    unlocated: bool = False


def _uid_of(provider_id: str) -> int:
    head, _, tail = provider_id.rpartition(":")
    return int(tail) if head and tail.isdigit() else 0


def due_companies(at: datetime) -> list[int]:
    """Companies with outbox work by `at`: the named cross-tenant door
    `mailsync_due_outbox_companies` (mailsync/migrations/0005)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mailsync_due_outbox_companies(%s)", [at])
        return [int(row[0]) for row in cursor.fetchall()]


def _due(now: datetime) -> Q:
    return (_OPEN_WORK & Q(not_before__lte=now)) | Q(state=OutboundState.SENDING)


def company_outbox_run(*, company_id: int, now: datetime | None = None) -> OutboxOutcome:
    """Run the outbox of each of the company's accounts with work."""
    now = now or datetime.now(UTC)
    with tenancy.bound(company_id):
        account_ids = sorted(
            set(
                MailOutbound.objects.for_company(company_id)
                .filter(_due(now))
                .values_list("account_id", flat=True)
            )
        )
    outcome = OutboxOutcome()
    for account_id in account_ids:
        outcome.add(account_outbox_run(company_id=company_id, account_id=account_id, now=now))
    return outcome


def account_outbox_run(
    *,
    company_id: int,
    account_id: int,
    now: datetime | None = None,
    budget: float = RUN_SECONDS,
) -> OutboxOutcome:
    """One run of the account's outbox (see the module docstring), unless another worker is
    at it (then `busy`). `now` decides what is due (tests move it to skip a backoff)."""
    with sync.account_lock(account_id, namespace=_LOCK_NAMESPACE) as acquired:
        if not acquired:
            return OutboxOutcome(busy=1)
        with ExitStack() as stack:
            run = _AccountRun(company_id, account_id, now or datetime.now(UTC), budget, stack)
            run.execute()
        return run.outcome


def copy_mode(account: MailAccount) -> str:
    """Who files the account's sent mail: "append" (we do) or "server" (it does)."""
    if account.sent_copy != SentCopyMode.AUTO:
        return str(account.sent_copy)
    if account.smtp_host.strip().lower() in SERVER_FILES_SENT:
        return SentCopyMode.SERVER
    return SentCopyMode.APPEND


def smtp_settings(account: MailAccount) -> ConnectionSettings:
    """The account's outgoing server, signed in with the account's (decrypted) password."""
    incoming = sync.connection_settings(account)
    security = account.smtp_security or "ssl"
    default_port = {"ssl": 465, "starttls": 587}.get(security, 25)
    return ConnectionSettings(
        email_address=account.email_address,
        host=account.smtp_host,
        port=account.smtp_port or default_port,
        security=security,
        username=incoming.username,
        password=incoming.password,
        timeout=incoming.timeout,
    )


def _smtp_sender(account: MailAccount) -> Sender:
    return SmtpSender(smtp_settings(account), local_hostname=sending.message_id_domain())


# The transport of each kind of account (later: the Gmail, Graph and EWS send calls).
SENDERS: dict[str, Callable[[MailAccount], Sender]] = {"imap": _smtp_sender}


def send_interval() -> float:
    return float(getattr(settings, "CRM_MAIL_SEND_INTERVAL", DEFAULT_SEND_INTERVAL))


def _last_send_key(account_id: int) -> str:
    return f"mailsync:outbox:last:{account_id}"


class _AccountRun:
    """One run of one account's outbox, under its lock."""

    account: MailAccount  # set when the run starts

    def __init__(
        self, company_id: int, account_id: int, now: datetime, budget: float, stack: ExitStack
    ) -> None:
        self.company_id = company_id
        self.account_id = account_id
        self.now = now
        self.deadline = time.monotonic() + budget
        self.stack = stack
        self.outcome = OutboxOutcome()
        self._sender: Sender | None = None
        self._provider: Provider | None = None
        self.pending: list[_Sent] = []  # sent, to file
        self._sent_folder: MailFolder | None = None
        self._sent_folder_known = False

    # --- The run ---------------------------------------------------------------------------------

    def execute(self) -> None:
        with tenancy.bound(self.company_id):
            account = (
                MailAccount.objects.for_company(self.company_id).filter(pk=self.account_id).first()
            )
        if account is None:
            return
        self.account = account
        self.stale_settle()
        if account.removed_at is not None:
            self.disconnected()
            return
        self.finish_due()
        self.uncertain_settle()
        self.deliver()
        self.uncertain_settle()

    def outbox(self) -> QuerySet[MailOutbound]:
        """The account's outbox rows (the caller is bound to the company)."""
        return MailOutbound.objects.for_company(self.company_id).filter(account_id=self.account_id)

    def stale_settle(self) -> None:
        """Messages left `sending`: their run died after it marked them (we hold the lock,
        so none is being sent). The server may have them: uncertain, to be looked for."""
        grace = UNCERTAIN_GRACE if copy_mode(self.account) == SentCopyMode.SERVER else None
        with tenancy.bound(self.company_id):
            self.outcome.uncertain += (
                self.outbox()
                .filter(state=OutboundState.SENDING)
                .update(
                    state=OutboundState.UNCERTAIN,
                    error_kind="uncertain",
                    last_error=UNCERTAIN_CHECKING,
                    not_before=datetime.now(UTC) + (grace or timedelta(0)),
                    updated_at=datetime.now(UTC),
                )
            )

    def disconnected(self) -> None:
        """A removed account: nothing leaves from it any more, and nothing is left for the
        sweeper (which would otherwise find the rows again and again)."""
        now = datetime.now(UTC)
        with tenancy.bound(self.company_id):
            self.outcome.failed += (
                self.outbox()
                .filter(state=OutboundState.QUEUED)
                .update(
                    state=OutboundState.FAILED,
                    error_kind=ErrorKind.PERMANENT,
                    last_error="The mailbox was disconnected, so the message was not sent.",
                    updated_at=now,
                )
            )
            self.outbox().filter(state=OutboundState.UNCERTAIN).update(
                not_before=None, last_error=UNCERTAIN_ASK, updated_at=now
            )
            self.outbox().filter(state=OutboundState.SENT, finished_at__isnull=True).update(
                sent_copy=SentCopyState.NOT_SAVED, finished_at=now, updated_at=now
            )

    # --- Connections -----------------------------------------------------------------------------

    def sender(self) -> Sender:
        if self._sender is None:
            factory = SENDERS.get(self.account.provider)
            if factory is None:
                raise ProviderError(
                    ErrorKind.PERMANENT, "Sending from this kind of mailbox comes later."
                )
            self._sender = self.stack.enter_context(factory(self.account))
        return self._sender

    def provider(self) -> Provider:
        """The account's mailbox (IMAP), for the Sent folder: opened when first needed."""
        if self._provider is None:
            factory = PROVIDERS.get(self.account.provider)
            if factory is None:
                raise ProviderError(
                    ErrorKind.PERMANENT, "This kind of mailbox has no Sent folder we reach."
                )
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

    def sent_folder(self) -> MailFolder | None:
        if not self._sent_folder_known:
            self._sent_folder_known = True
            with tenancy.bound(self.company_id):
                self._sent_folder = (
                    MailFolder.objects.for_company(self.company_id)
                    .filter(
                        account_id=self.account_id, role=FolderRole.SENT, removed_at__isnull=True
                    )
                    .order_by("name")
                    .first()
                )
        return self._sent_folder

    # --- Delivering ------------------------------------------------------------------------------

    def deliver(self) -> None:
        try:
            while self.spaced() and self.deliver_one():
                if len(self.pending) >= FINISH_BATCH:
                    self.finish_pending()
        finally:
            self.finish_pending()

    def spaced(self) -> bool:
        """Wait until the account's next send may go (`CRM_MAIL_SEND_INTERVAL` after the last),
        unless that is past the run's budget (then `more`: the task queues the rest)."""
        interval = send_interval()
        if interval <= 0:
            return time.monotonic() < self.deadline or self.give_back(0.0)
        last = cache.get(_last_send_key(self.account_id))
        wait = (float(last) + interval - time.time()) if last is not None else 0.0
        if time.monotonic() + max(wait, 0.0) >= self.deadline:
            return self.give_back(max(wait, 0.0))
        if wait > 0:
            time.sleep(wait)
        return True

    def give_back(self, wait: float) -> bool:
        with tenancy.bound(self.company_id):
            self.outcome.more = (
                self.outbox()
                .filter(state=OutboundState.QUEUED, not_before__lte=datetime.now(UTC))
                .exists()
            )
        self.outcome.wait = wait
        return False

    def deliver_one(self) -> bool:
        """Claim and hand over the next due message. False when there is none, or when the
        run must stop (the server is unreachable or refuses us)."""
        with tenancy.bound(self.company_id):
            outbound = (
                self.outbox()
                .filter(state=OutboundState.QUEUED, not_before__lte=self.claim_time())
                .select_related("message")
                .order_by("not_before", "id")
                .select_for_update(of=("self",), skip_locked=True)
                .first()
            )
            if outbound is None:
                return False
            try:
                # A tracked message goes out with its marks; what we keep has none.
                stored = rawstore.raw_read(outbound.delivery_raw_path or outbound.message.raw_path)
            except OSError:
                logger.exception("Outbox message %s: its stored bytes are gone", outbound.pk)
                self.retry_or_fail(
                    outbound,
                    ProviderError(
                        ErrorKind.PERMANENT,
                        "The message's stored text could not be read; write it again.",
                    ),
                )
                return True
            raw = mime.transmitted(stored)
            envelope = Envelope(
                sender=mime.envelope_address(self.account.email_address),
                recipients=tuple(outbound.envelope_to),
            )
            try:
                self.sender().begin(envelope, len(raw))
            except ProviderError as error:
                return self.not_handed_over(outbound, error)
            # The point of no return comes next: in flight, committed first.
            outbound.state = OutboundState.SENDING
            outbound.attempts += 1
            outbound.last_attempt_at = datetime.now(UTC)
            outbound.save(update_fields=["state", "attempts", "last_attempt_at", "updated_at"])
        # Committed (the block's end): from here a lost worker leaves it `sending`.
        cache.set(_last_send_key(self.account_id), time.time(), timeout=3600)
        attempt = outbound.attempts
        try:
            reply = self.sender().hand_over(raw)
        except SendError as error:
            if error.maybe_sent:
                self.record_uncertain(outbound, attempt)
                return True
            return self.not_delivered(outbound, attempt, error)
        except ProviderError as error:
            return self.not_delivered(outbound, attempt, error)
        self.record_sent(outbound, attempt, reply)
        kept = stored
        if outbound.delivery_raw_path:  # filed in Sent without the tracking marks
            kept = rawstore.raw_read(outbound.message.raw_path)
        self.pending.append(_Sent(outbound, kept))
        return True

    def claim_time(self) -> datetime:
        # A run started for a due message also takes those that came due while it ran.
        return max(self.now, datetime.now(UTC))

    def not_handed_over(self, outbound: MailOutbound, error: ProviderError) -> bool:
        """Refused before DATA (inside the claim's transaction): nothing was delivered."""
        if isinstance(error, SendError) and error.kind not in _ACCOUNT_LEVEL:
            outbound.attempts += 1
            outbound.last_attempt_at = datetime.now(UTC)
            self.retry_or_fail(outbound, error)
            return error.kind == ErrorKind.PERMANENT  # a transient refusal ends the run
        # The connection, or the sign-in: every due message of the account alike.
        outbound.attempts += 1
        outbound.last_attempt_at = datetime.now(UTC)
        self.retry_or_fail(outbound, error)
        others = (
            self.outbox()
            .filter(state=OutboundState.QUEUED, not_before__lte=self.claim_time())
            .exclude(pk=outbound.pk)
        )
        if error.kind in (ErrorKind.AUTH, ErrorKind.PERMANENT):
            self.outcome.failed += others.update(
                state=OutboundState.FAILED,
                error_kind=str(error.kind),
                last_error=error.message,
                updated_at=datetime.now(UTC),
            )
        else:
            others.update(not_before=outbound.not_before, updated_at=datetime.now(UTC))
        return False

    def retry_or_fail(self, outbound: MailOutbound, error: ProviderError) -> None:
        """Permanent and auth errors fail the message; others wait and retry, MAX_ATTEMPTS
        tries in all. Caller is inside a transaction bound to the company."""
        outbound.error_kind = str(error.kind)
        outbound.server_reply = getattr(error, "reply", "")[:500]
        outbound.failed_recipients = sorted(getattr(error, "refused", {}))
        fields = [
            "state",
            "attempts",
            "last_attempt_at",
            "error_kind",
            "last_error",
            "failed_recipients",
            "server_reply",
            "not_before",
            "updated_at",
        ]
        if error.kind in (ErrorKind.AUTH, ErrorKind.PERMANENT):
            outbound.state = OutboundState.FAILED
            outbound.last_error = error.message
            outbound.save(update_fields=fields)
            self.outcome.failed += 1
            return
        if outbound.attempts >= MAX_ATTEMPTS:
            outbound.state = OutboundState.FAILED
            outbound.last_error = (
                f"Not sent after {outbound.attempts} tries. The last problem: {error.message}"
            )
            outbound.save(update_fields=fields)
            self.outcome.failed += 1
            return
        delay = error.retry_after or sync.backoff_seconds(max(outbound.attempts, 1))
        outbound.state = OutboundState.QUEUED
        outbound.not_before = datetime.now(UTC) + timedelta(seconds=delay)
        outbound.last_error = error.message
        outbound.save(update_fields=fields)
        self.outcome.retrying += 1

    def _after_handover(self, outbound: MailOutbound, attempt: int) -> MailOutbound | None:
        """The row again, locked, if it is still this attempt's (a sweeper may have made it
        uncertain meanwhile: what we know now is better, so that is taken over)."""
        return (
            self.outbox()
            .filter(
                pk=outbound.pk,
                attempts=attempt,
                state__in=[OutboundState.SENDING, OutboundState.UNCERTAIN],
            )
            .select_for_update()
            .first()
        )

    def not_delivered(self, outbound: MailOutbound, attempt: int, error: ProviderError) -> bool:
        with tenancy.bound(self.company_id):
            current = self._after_handover(outbound, attempt)
            if current is None:
                return False
            self.retry_or_fail(current, error)
        return error.kind == ErrorKind.PERMANENT

    def record_uncertain(self, outbound: MailOutbound, attempt: int) -> None:
        grace = UNCERTAIN_GRACE if copy_mode(self.account) == SentCopyMode.SERVER else None
        with tenancy.bound(self.company_id):
            current = self._after_handover(outbound, attempt)
            if current is None:
                return
            current.state = OutboundState.UNCERTAIN
            current.error_kind = "uncertain"
            current.last_error = UNCERTAIN_CHECKING
            current.not_before = datetime.now(UTC) + (grace or timedelta(0))
            current.save(
                update_fields=["state", "error_kind", "last_error", "not_before", "updated_at"]
            )
        self.outcome.uncertain += 1

    def record_sent(self, outbound: MailOutbound, attempt: int, reply: str) -> None:
        """The server took it: sent, committed at once (the shortest window for doubt)."""
        now = datetime.now(UTC)
        with tenancy.bound(self.company_id):
            self.outbox().filter(
                pk=outbound.pk,
                attempts=attempt,
                state__in=[OutboundState.SENDING, OutboundState.UNCERTAIN],
            ).update(
                state=OutboundState.SENT,
                sent_at=now,
                server_reply=reply[:500],
                error_kind="",
                last_error="",
                failed_recipients=[],
                not_before=now,
                updated_at=now,
            )
        outbound.state, outbound.sent_at = OutboundState.SENT, now
        self.outcome.sent += 1

    # --- After the server took it ----------------------------------------------------------------

    def finish_due(self) -> None:
        """Sent messages a lost run did not file (or whose Sent copy waits for a retry)."""
        with tenancy.bound(self.company_id):
            unfinished = list(
                self.outbox()
                .filter(
                    state=OutboundState.SENT,
                    finished_at__isnull=True,
                    not_before__lte=self.now,
                )
                .select_related("message")
                .order_by("sent_at", "id")
            )
        for start in range(0, len(unfinished), FINISH_BATCH):
            self.finish(
                [
                    _Sent(outbound, rawstore.raw_read(outbound.message.raw_path))
                    for outbound in unfinished[start : start + FINISH_BATCH]
                ]
            )

    def finish_pending(self) -> None:
        pending, self.pending = self.pending, []
        self.finish(pending)

    def finish(self, items: list[_Sent]) -> None:
        """File sent messages, a batch at a time (set-based, as sync files a batch): into
        their conversations (the ingest's threading, as the sync of Sent would do), with the
        links chosen when sending; then their copies in Sent."""
        if not items:
            return
        parsed = {item.outbound.pk: parse_message(item.raw) for item in items}
        by_server = [
            item
            for item in items
            if item.copy_id is None and copy_mode(self.account) == SentCopyMode.SERVER
        ]
        now = datetime.now(UTC)
        with tenancy.bound(self.company_id):
            MailMessage.objects.for_company(self.company_id).bulk_update(
                [
                    MailMessage(
                        pk=item.outbound.message_id,
                        company_id=self.company_id,
                        received_at=item.outbound.sent_at or now,
                    )
                    for item in items
                ],
                ["received_at"],
            )
            ingest.messages_place(
                company_id=self.company_id,
                account_id=self.account_id,
                placed=[(item.outbound.message_id, parsed[item.outbound.pk]) for item in items],
            )
            for item in items:
                sending.outbound_links_apply(company_id=self.company_id, outbound=item.outbound)
            if by_server:
                self.copies_done(by_server, SentCopyState.BY_SERVER)
                # The server's copies are in Sent now: the next pass brings their locations.
                sync.sync_soon(company_id=self.company_id, account_id=self.account_id)
        self.copies_save([item for item in items if item not in by_server], parsed)

    def copies_save(self, items: list[_Sent], parsed: dict[int, ParsedMessage]) -> None:
        """Our copies in Sent, once each: looked for first where an earlier try may have
        stored one (its answer lost with the connection)."""
        if not items:
            return
        folder = self.sent_folder()
        if folder is None:
            with tenancy.bound(self.company_id):
                self.copies_done(
                    items,
                    SentCopyState.NOT_SAVED,
                    "Sent. The mailbox has no Sent folder, so no copy was saved there.",
                )
            return
        saved: list[_Sent] = []
        for item in items:
            try:
                if item.copy_id is None and item.outbound.sent_copy_tries:
                    found = self.provider().find_message_id(
                        folder.name, parsed[item.outbound.pk].message_id
                    )
                    item.copy_id = found[0] if found else None
                if item.copy_id is None:
                    item.copy_id = self.provider().append(folder.name, item.raw, frozenset({SEEN}))
                    item.unlocated = item.copy_id is None
            except ProviderError as error:
                # The mailbox cannot be reached (or refuses): this one and the rest of the
                # batch try again later, each counting a try.
                self.provider_drop()
                for failed in items[items.index(item) :]:
                    self.copy_failed(failed.outbound, error)
                break
            saved.append(item)
        if not saved:
            return
        located = [item for item in saved if item.copy_id]
        with tenancy.bound(self.company_id):
            if located:
                # Where the copies are: the next sync of Sent has nothing to download.
                ingest.ingest_batch(
                    company_id=self.company_id,
                    account_id=self.account_id,
                    folder_id=folder.pk,
                    fetched=[
                        FetchedMessage(
                            provider_id=str(item.copy_id),
                            uid=_uid_of(str(item.copy_id)),
                            raw=item.raw,
                            flags=frozenset({SEEN}),
                            received_at=item.outbound.sent_at,
                        )
                        for item in located
                    ],
                    parsed=[parsed[item.outbound.pk] for item in located],
                    announce=False,
                    raw_paths=[item.outbound.message.raw_path for item in located],
                )
            if any(item.unlocated for item in saved):
                # No UIDPLUS: the next sync of Sent finds them (the same messages, by key).
                sync.sync_soon(company_id=self.company_id, account_id=self.account_id)
            self.copies_done(saved, SentCopyState.SAVED)

    def copies_done(self, items: list[_Sent], state: str, note: str = "") -> None:
        """Finished (the caller is bound to the company)."""
        now = datetime.now(UTC)
        self.outbox().filter(pk__in=[item.outbound.pk for item in items]).update(
            sent_copy=state, finished_at=now, last_error=note, updated_at=now
        )

    def copy_failed(self, outbound: MailOutbound, error: ProviderError) -> None:
        tries = outbound.sent_copy_tries + 1
        now = datetime.now(UTC)
        with tenancy.bound(self.company_id):
            rows = self.outbox().filter(pk=outbound.pk)
            if error.kind == ErrorKind.PERMANENT or tries >= SENT_COPY_TRIES:
                rows.update(
                    sent_copy=SentCopyState.NOT_SAVED,
                    sent_copy_tries=tries,
                    finished_at=now,
                    last_error=f"Sent. No copy could be saved in your Sent folder: {error.message}",
                    updated_at=now,
                )
                return
            delay = error.retry_after or sync.backoff_seconds(tries)
            rows.update(
                sent_copy=SentCopyState.PENDING,
                sent_copy_tries=tries,
                not_before=now + timedelta(seconds=delay),
                updated_at=now,
            )

    # --- Messages that may have gone out ---------------------------------------------------------

    def uncertain_settle(self) -> None:
        with tenancy.bound(self.company_id):
            waiting = list(
                self.outbox()
                .filter(state=OutboundState.UNCERTAIN, not_before__lte=self.claim_time())
                .select_related("message")
                .order_by("not_before", "id")
            )
        for index, outbound in enumerate(waiting):
            try:
                self.uncertain_check(outbound)
            except ProviderError as error:
                # The mailbox cannot be reached: these wait for a later look, all of them.
                self.provider_drop()
                delay = error.retry_after or sync.backoff_seconds(outbound.uncertain_checks + 1)
                with tenancy.bound(self.company_id):
                    self.outbox().filter(
                        pk__in=[o.pk for o in waiting[index:]], state=OutboundState.UNCERTAIN
                    ).update(not_before=datetime.now(UTC) + timedelta(seconds=delay))
                return

    def uncertain_check(self, outbound: MailOutbound) -> None:
        """Look for the message in Sent: there, it was sent; else ask the user (after a few
        looks where the server files sent mail itself: its copy may come late). A mailbox
        out of reach raises ProviderError."""
        folder = self.sent_folder()
        found: list[str] = []
        if folder is not None:
            found = self.provider().find_message_id(folder.name, outbound.message.message_id)
        checks = outbound.uncertain_checks + 1
        now = datetime.now(UTC)
        if found:
            with tenancy.bound(self.company_id):
                settled = (
                    self.outbox()
                    .filter(pk=outbound.pk, state=OutboundState.UNCERTAIN)
                    .update(
                        state=OutboundState.SENT,
                        sent_at=outbound.last_attempt_at or now,
                        uncertain_checks=checks,
                        error_kind="",
                        last_error="",
                        updated_at=now,
                    )
                )
            if settled:
                outbound.sent_at = outbound.last_attempt_at or now
                self.outcome.settled += 1
                raw = rawstore.raw_read(outbound.message.raw_path)
                self.finish([_Sent(outbound, raw, copy_id=found[0])])
            return
        again = (
            copy_mode(self.account) == SentCopyMode.SERVER
            and checks < UNCERTAIN_CHECKS_SERVER
            and folder is not None
        )
        with tenancy.bound(self.company_id):
            self.outbox().filter(pk=outbound.pk, state=OutboundState.UNCERTAIN).update(
                uncertain_checks=checks,
                not_before=now + UNCERTAIN_GRACE * checks if again else None,
                last_error=UNCERTAIN_CHECKING if again else UNCERTAIN_ASK,
                updated_at=now,
            )
