"""A sync worker killed with SIGKILL in the middle of its first sync: the next pass finishes it
with the exact count and no duplicates (batches commit with their cursor; the advisory lock
dies with the worker's connection)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from crm import tenancy
from inbox.models import MailAccount, MailMessage, MailMessageLocation
from mailsync import services, sync
from mailsync.models import SyncState
from tests.conftest import _build_cast
from tests.mailsync.conftest import MailUser
from tests.mailsync.dovecot import Dovecot
from tests.mailsync.mail import message

pytestmark = pytest.mark.services
MESSAGES = 300


def _database_url() -> str:
    params = connection.settings_dict
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return (
        f"postgresql://{params['USER']}{password}@{params['HOST'] or '127.0.0.1'}:"
        f"{params['PORT'] or 5432}/{params['NAME']}"
    )


def _progress(company_id: int, account: MailAccount) -> int:
    with tenancy.bound(company_id):
        return SyncState.objects.for_company(company_id).get(account=account).progress_done


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(
    transactional_db: None, dovecot: Dovecot, mail_user: MailUser, tmp_path: Path
) -> None:
    cast = _build_cast()
    u = mail_user
    for n in range(1, MESSAGES + 1):
        dovecot.append(u.username, u.password, "INBOX", message(n, body="y" * 3000))
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        account = services.account_connect(
            company=cast.company_a,
            owner=cast.alice,
            data=services.ImapAccountInput(
                email_address=u.email,
                imap_host=dovecot.host,
                imap_port=dovecot.port,
                imap_security="none",
                username=u.username,
                password=u.password,
            ),
        )
    company_id = cast.company_a.pk
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CRM_MAIL_BATCH_SIZE": "10",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    worker = subprocess.Popen(  # noqa: S603 - our own command
        [
            sys.executable,
            str(settings.BASE_DIR / "manage.py"),
            "mail_sync",
            "--company",
            str(company_id),
            "--account",
            str(account.pk),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _progress(company_id, account) < 50:
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    stopped_at = _progress(company_id, account)
    assert stopped_at < MESSAGES, "the worker finished before it was killed"

    # PostgreSQL ends the dead worker's session (and its advisory lock) once it notices the
    # closed socket, at the latest when its current statement ends.
    deadline = time.monotonic() + 10
    while not sync.account_sync(company_id=company_id, account_id=account.pk).ran:
        assert time.monotonic() < deadline, "the dead worker's lock kept the account"
        time.sleep(0.1)

    with tenancy.bound(company_id):
        assert MailMessage.objects.for_company(company_id).count() == MESSAGES
        locations = MailMessageLocation.objects.for_company(company_id).filter(account=account)
        assert locations.count() == MESSAGES
        assert len(set(locations.values_list("uid", flat=True))) == MESSAGES
        state = SyncState.objects.for_company(company_id).get(account=account)
    assert state.initial_done
    assert state.progress_done == MESSAGES
