"""The outbox's worker killed with SIGKILL after the SMTP server took the message and before
the worker heard it say so (decision 0012): the message is never delivered a second time on
the system's own account. The dead worker left it `sending` (committed before DATA); the next
run, holding the account's lock the dead worker's session lost, makes it `uncertain`, looks
for it in Sent (the account saves its own copies, so it is not there) and asks the user. Only
the user's "send again" sends it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from crm import tenancy
from inbox import sending
from inbox.models import MailOutbound, OutboundState
from mailsync import outbox, tasks
from tests.conftest import _build_cast
from tests.mailsync.conftest import MailUser, connect
from tests.mailsync.dovecot import Dovecot
from tests.mailsync.smtpd import SmtpServer

pytestmark = pytest.mark.services

_WORKER = """
from django.conf import settings
settings.CRM_MAIL_SEND_INTERVAL = 0
from crm import tenancy
from mailsync import outbox
with tenancy.request_scope():
    outbox.account_outbox_run(company_id={company_id}, account_id={account_id})
"""


def _database_url() -> str:
    params = connection.settings_dict
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return (
        f"postgresql://{params['USER']}{password}@{params['HOST'] or '127.0.0.1'}:"
        f"{params['PORT'] or 5432}/{params['NAME']}"
    )


def _state(company_id: int, outbound: MailOutbound) -> MailOutbound:
    with tenancy.bound(company_id):
        return MailOutbound.objects.for_company(company_id).get(pk=outbound.pk)


def test_a_worker_killed_after_the_server_took_the_message_never_sends_it_twice(
    transactional_db: None,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
    smtp_user: MailUser,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.CRM_MAIL_SEND_INTERVAL = 0
    smtp_server.reset()
    # No Celery here: the runs are started by hand (and the broker left alone).
    monkeypatch.setattr(tasks, "outbox_run_enqueue", lambda **kwargs: False)
    cast = _build_cast()
    account = connect(
        cast,
        dovecot,
        smtp_user,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
    )
    company_id = cast.company_a.pk
    membership = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(company_id, user_id=cast.alice.pk):
        outbound = sending.message_send(
            membership=membership,
            draft=sending.Draft(
                account_id=account.pk, to=["pat@customer.test"], subject="Once", body_text="Hi"
            ),
            undo=timedelta(0),
        )
    held = smtp_server.hold()
    storage = settings.STORAGES["mailraw"]["OPTIONS"]["location"]
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CRM_MAIL_RAW_DIR": str(storage),
    }
    worker = subprocess.Popen(  # noqa: S603 - our own command
        [
            sys.executable,
            str(settings.BASE_DIR / "manage.py"),
            "shell",
            "-c",
            _WORKER.format(company_id=company_id, account_id=account.pk),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not held.arrived.wait(0.05):
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the worker never handed the message over"
        # The server has the message and is about to say 250: the worker dies first.
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        held.release.set()
        if worker.poll() is None:
            worker.kill()
    assert len(smtp_server.messages) == 1
    assert _state(company_id, outbound).state == OutboundState.SENDING  # committed before DATA

    # PostgreSQL ends the dead worker's session (and its lock) once it notices.
    deadline = time.monotonic() + 10
    while (result := outbox.company_outbox_run(company_id=company_id)).busy:
        assert time.monotonic() < deadline, "the dead worker's lock kept the account"
        time.sleep(0.1)

    assert result.uncertain == 1
    row = _state(company_id, outbound)
    assert row.state == OutboundState.UNCERTAIN
    assert row.last_error == outbox.UNCERTAIN_ASK
    assert row.not_before is None
    assert outbox.due_companies(datetime.now(UTC) + timedelta(days=1)) == []  # the user's turn
    outbox.company_outbox_run(company_id=company_id)
    assert len(smtp_server.messages) == 1  # never again on our own account

    with tenancy.bound(company_id, user_id=cast.alice.pk):
        sending.outbound_send_again(membership=membership, message_id=outbound.message_id)
    outbox.company_outbox_run(company_id=company_id)
    assert _state(company_id, outbound).state == OutboundState.SENT
    assert len(smtp_server.messages) == 2  # the user asked for it
    smtp_server.reset()
