"""Sync state (DESIGN.md, Sync): one `SyncState` per account (stage, progress, health) and one
`FolderCursor` per synced folder (where the provider's change listing resumes)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from crm.tenancy import TenantModel
from inbox.models import MailAccount, MailFolder
from mailsync.providers.base import ErrorKind


class Stage(models.TextChoices):
    IDLE = "idle", _("Idle")
    DISCOVERING = "discovering", _("Finding folders")
    LISTING = "listing", _("Listing changes")
    FETCHING = "fetching", _("Downloading mail")


class Health(models.TextChoices):
    NEW = "new", _("Not synced yet")
    OK = "ok", _("Working")
    RETRYING = "retrying", _("Trouble, retrying")
    NEEDS_RECONNECT = "needs_reconnect", _("Needs reconnecting")
    FAILED = "failed", _("Stopped")


# The one list of provider error kinds (NOTES-TRANCHE-1) is mailsync.providers.base.ErrorKind.
ERROR_KIND_CHOICES = [
    (ErrorKind.AUTH.value, _("Sign-in refused")),
    (ErrorKind.RATE_LIMITED.value, _("Rate limited")),
    (ErrorKind.TRANSIENT.value, _("Temporary problem")),
    (ErrorKind.CURSOR_LOST.value, _("Sync position lost")),
    (ErrorKind.PERMANENT.value, _("Permanent problem")),
]


class SyncState(TenantModel):
    """An account's sync: where it is, how far the first sync got, and its health (A6)."""

    # One per account (the constraint below; a OneToOneField's own index would not lead
    # with company_id).
    account = models.ForeignKey(
        MailAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.IDLE)
    health = models.CharField(max_length=16, choices=Health.choices, default=Health.NEW)
    # The first sync (backfill, newest first): messages stored of the total in the window.
    initial_done = models.BooleanField(default=False)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    initial_started_at = models.DateTimeField(null=True, blank=True)
    initial_finished_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    # A sync pass running now: its last sign of life (the watchdog resets stale ones).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_error_kind = models.CharField(max_length=16, choices=ERROR_KIND_CHOICES, blank=True)
    last_error_message = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Beat enqueues the account when this has passed (backoff and Retry-After push it out).
    next_sync_at = models.DateTimeField(null=True, blank=True)
    malformed_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "account"], name="sync_state_account"),
        ]


class FolderCursor(TenantModel):
    """Where a folder's change listing resumes. IMAP: `validity` is UIDVALIDITY, `next_uid`
    UIDNEXT as of the last complete listing, `modseq` HIGHESTMODSEQ (CONDSTORE);
    `backfill_before_uid` is where the newest-first first sync continues (0 when done). Other
    providers keep their token in `token` (Gmail historyId, Graph deltaLink, EWS SyncState)."""

    folder = models.ForeignKey(
        MailFolder, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    account = models.ForeignKey(MailAccount, on_delete=models.CASCADE, db_index=False)
    validity = models.CharField(max_length=64, blank=True)
    next_uid = models.BigIntegerField(default=0)
    modseq = models.BigIntegerField(null=True, blank=True)
    backfill_before_uid = models.BigIntegerField(default=0)
    backfill_total = models.PositiveIntegerField(default=0)
    token = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "folder"], name="folder_cursor_folder"),
        ]
        indexes = [models.Index(fields=["company", "account"], name="folder_cursor_account")]
