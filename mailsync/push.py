"""The push listener (`manage.py mail_listener`): IMAP IDLE on every IMAP account's inbox and
sent folders, all on one asyncio loop (`mailsync.idle`), waking the account's normal sync when
the server reports a change. Push only wakes; the fallback poll (beat) always runs.

Every `REFRESH_SECONDS` it reads the accounts to watch: their ids through the named cross-tenant
door `mailsync_push_accounts`, then each account bound to its own company (credentials are
decrypted here, in memory, never logged)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from django.db import close_old_connections, connection

from crm import tenancy
from inbox.models import FolderRole, MailAccount, MailFolder
from mailsync import sync, tasks
from mailsync.idle import IdleSupervisor, IdleTarget

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0
PUSH_ROLES = (FolderRole.INBOX, FolderRole.SENT)


def push_targets() -> list[IdleTarget]:
    """One target per IMAP account that syncs, watching its inbox and sent folders. Blocking
    (database): run it in a thread from the event loop."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mailsync_push_accounts()")
        ids = [(int(company_id), int(account_id)) for company_id, account_id in cursor.fetchall()]
    targets: list[IdleTarget] = []
    for company_id, account_id in ids:
        with tenancy.request_scope(), tenancy.bound(company_id):
            account = MailAccount.objects.for_company(company_id).filter(pk=account_id).first()
            if account is None:
                continue
            folders = tuple(
                MailFolder.objects.for_company(company_id)
                .filter(account=account, role__in=PUSH_ROLES, removed_at__isnull=True)
                .order_by("role")
                .values_list("name", flat=True)
            )
            if not folders:
                continue
            settings = sync.connection_settings(account)
        targets.append(
            IdleTarget(
                key=f"{company_id}:{account_id}",
                host=settings.host,
                port=settings.port,
                security=settings.security,
                username=settings.username,
                password=settings.password,
                folders=folders,
            )
        )
    return targets


def _refresh() -> list[IdleTarget]:
    # A long-running process: drop a connection the database closed or that grew old.
    close_old_connections()
    return push_targets()


def wake(key: str, folder: str) -> None:
    """A server said a watched folder changed: queue the account's sync (once)."""
    company_id, _, account_id = key.partition(":")
    queued = tasks.account_sync_enqueue(company_id=int(company_id), account_id=int(account_id))
    logger.info("Push from %s (%s): sync %s", key, folder, "queued" if queued else "already queued")


async def listen(*, refresh_seconds: float = REFRESH_SECONDS) -> None:
    """Run until SIGINT / SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async def on_change(key: str, folder: str) -> None:
        await asyncio.to_thread(wake, key, folder)

    supervisor = IdleSupervisor(on_change)
    try:
        while not stop.is_set():
            try:
                await supervisor.set_targets(await asyncio.to_thread(_refresh))
            except Exception:  # a database hiccup must not stop push for everyone
                logger.exception("Could not refresh the accounts to watch; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=refresh_seconds)
    finally:
        await supervisor.close()
