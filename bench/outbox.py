"""Benchmark: the outbox delivering 10,000 messages to a local SMTP server (compose issue, B4).

In one run, against a fresh database (`crm_bench_outbox` on the server DATABASE_URL names, or
the embedded one) and an aiosmtpd server in a process of its own (this file with `--smtpd`;
it counts what it accepts, so "delivered once" is checked, not assumed):

1. queues `--messages` messages (10,000) from `--accounts` accounts (1) through
   `inbox.sending.message_send`, as pressing Send does (build the MIME, store the raw bytes,
   the message with its parties and files, the outbox row; one transaction each; no undo
   window): about 3 KB of HTML and its text alternative, one to three recipients, 5% with a
   200 KB file. Timed: the queueing rate;
2. delivers them with `mailsync.outbox.account_outbox_run`, one worker process per account,
   the per-account spacing off (`CRM_MAIL_SEND_INTERVAL=0`): claim, MAIL FROM / RCPT TO,
   "sending" committed, DATA, "sent" committed, the message filed into its conversation (the
   ingest's threading, links) and, with `--append`, its copy APPENDed to the account's Sent
   folder on a throwaway Dovecot (tests/mailsync/dovecot.py) and located there. Without
   `--append` the accounts are set up as servers that file sent mail themselves (Gmail's
   way). Timed: messages per second, wall clock from the first claim to the last message
   filed;
3. checks: every message `sent` and filed in a conversation, the SMTP server got each exactly
   once (and, with `--append`, Dovecot's Sent holds each once).

Everything it starts is stopped and everything it creates is deleted at the end (the SMTP
server, Dovecot, the raw-message directory, the database).

Run: `DATABASE_URL=postgresql://postgres@127.0.0.1:5432/crm .venv/bin/python bench/outbox.py`
(`--messages 1000` for a quick run; `--append` to include the Sent copies; `--accounts 2` for
two accounts delivered in parallel).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.persons_api import _use_bench_database  # noqa: E402

PARAGRAPH = (
    "Thank you for your time on the call today. As promised, here is a summary of the "
    "offer we discussed: the annual licence for {seats} seats, onboarding for your team "
    "and priority support. The price is valid until the end of the month. "
)


# --- The SMTP server's process ------------------------------------------------------------------


def smtpd_main(port: int) -> None:
    """An aiosmtpd server that accepts everything and counts it; prints the counts as JSON
    when its stdin closes."""
    from aiosmtpd.controller import Controller

    class Counter:
        def __init__(self) -> None:
            self.messages = 0
            self.recipients = 0
            self.bytes = 0
            self.ids: dict[str, int] = {}

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            content = bytes(envelope.original_content or b"")
            self.messages += 1
            self.recipients += len(envelope.rcpt_tos)
            self.bytes += len(content)
            start = content.find(b"Message-ID: <")
            if start >= 0:
                key = content[start + 13 : content.find(b">", start)].decode("ascii", "replace")
                self.ids[key] = self.ids.get(key, 0) + 1
            return "250 2.0.0 OK"

    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port, data_size_limit=0)
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
    doubles = sum(1 for count in counter.ids.values() if count > 1)
    print(
        json.dumps(
            {
                "messages": counter.messages,
                "recipients": counter.recipients,
                "bytes": counter.bytes,
                "distinct": len(counter.ids),
                "doubles": doubles,
            }
        ),
        flush=True,
    )


def worker_main(company_id: int, account_id: int) -> None:
    """One delivery worker: runs the account's outbox until nothing is due; prints JSON."""
    import django

    django.setup()
    from django.conf import settings

    settings.CRM_MAIL_SEND_INTERVAL = 0
    from crm import tenancy
    from mailsync import outbox

    profiler = None
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    sent = failed = 0
    while True:
        with tenancy.request_scope():
            result = outbox.account_outbox_run(
                company_id=company_id, account_id=account_id, budget=3600.0
            )
        sent, failed = sent + result.sent, failed + result.failed
        if not result.more:
            break
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(os.environ["BENCH_PROFILE"])
    print(json.dumps({"sent": sent, "failed": failed, "seconds": time.perf_counter() - started}))


# --- The run ------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _draft_fields(rng: random.Random, n: int) -> dict[str, Any]:
    from inbox import mime

    recipients = [f"customer{rng.randrange(2000)}@client{rng.randrange(300)}.example"]
    recipients += [f"colleague{k}@client{n % 300}.example" for k in range(rng.choice([0, 0, 1, 2]))]
    paragraphs = "".join(
        f"<p>{PARAGRAPH.format(seats=rng.randrange(5, 500))}</p>"
        for _ in range(rng.randint(6, 9))  # about 3 KB of HTML
    )
    attachments = []
    if rng.random() < 0.05:
        attachments.append(
            mime.Attachment("offer.pdf", "application/pdf", rng.randbytes(200 * 1024))
        )
    return {
        "to": recipients,
        "subject": f"Our offer #{n} for {rng.choice(['Acme', 'Globex', 'Initech', 'Umbrella'])}",
        "body_html": f"<p>Dear customer,</p>{paragraphs}<p>Kind regards,<br>Alice</p>",
        "attachments": attachments,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=1)
    parser.add_argument("--append", action="store_true")
    parser.add_argument("--database", default="crm_bench_outbox")
    parser.add_argument("--smtpd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smtpd:
        smtpd_main(args.smtpd)
        return
    if args.worker:
        worker_main(*args.worker)
        return

    with contextlib.ExitStack() as cleanup:
        raw_dir = Path(tempfile.mkdtemp(prefix="bench-outbox-raw-"))
        cleanup.callback(shutil.rmtree, raw_dir, True)
        os.environ["CRM_MAIL_RAW_DIR"] = str(raw_dir)
        _use_bench_database(args.database)
        cleanup.callback(_drop_database, args.database)
        port = _free_port()
        smtpd = subprocess.Popen(  # noqa: S603 - this file
            [sys.executable, __file__, "--smtpd", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        cleanup.callback(_stop, smtpd)
        assert smtpd.stdout is not None
        assert smtpd.stdout.readline().strip() == "ready"
        dovecot = None
        if args.append:
            from tests.mailsync.dovecot import Dovecot

            dovecot = Dovecot(condstore=True)
            dovecot.start()
            cleanup.callback(dovecot.close)
        _run(args, port, smtpd, dovecot)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    if process.poll() is None:
        process.kill()


def _drop_database(name: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    server = os.environ["DATABASE_URL"].rpartition("/")[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(args: argparse.Namespace, port: int, smtpd: subprocess.Popen[str], dovecot: Any) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db.models import Count

    from crm import encryption, hooks, services, tenancy
    from inbox import sending
    from inbox.models import (
        MailAccount,
        MailFolder,
        MailOutbound,
        MailThreadMessage,
        OutboundState,
    )
    from mailsync import tasks
    from mailsync.models import SyncState

    call_command("migrate", verbosity=0)
    # The runs are started here, not by Celery.
    hooks.unsubscribe(tasks.OUTBOX_QUEUED, tasks.on_outbox_queued)
    company, admin, _ = services.bootstrap_company(
        name="Bench Co", admin_email="alice@bench.test", password="bench-password-123"
    )
    accounts = []
    with tenancy.bound(company.pk):
        from crm.models import Membership

        membership = Membership.objects.for_company(company).get(user=admin)
        for k in range(args.accounts):
            username = f"bench{k}"
            password = f"bench-mail-password-{k}"
            if dovecot is not None:
                dovecot.add_user(username, password)
            account = MailAccount.objects.create(
                company=company,
                owner=admin,
                email_address=f"{username}@bench.test",
                display_name="Alice Adams",
                imap_host="127.0.0.1",
                imap_port=dovecot.port if dovecot else 143,
                imap_security="none",
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_security="none",
                username=username,
                secret_encrypted=encryption.encrypt(password),
                sent_copy="append" if dovecot else "server",
            )
            MailFolder.objects.create(company=company, account=account, name="INBOX", role="inbox")
            MailFolder.objects.create(company=company, account=account, name="Sent", role="sent")
            SyncState.objects.create(company=company, account=account)
            accounts.append(account)
    if dovecot is not None:
        for k in range(args.accounts):  # Dovecot makes the Maildir (and Sent) at first login
            with dovecot.session(f"bench{k}", f"bench-mail-password-{k}"):
                pass

    rng = random.Random(42)
    drafts = [_draft_fields(rng, n) for n in range(args.messages)]
    print(f"queueing {args.messages:,} messages from {args.accounts} account(s) ...", flush=True)
    started = time.perf_counter()
    for n, fields in enumerate(drafts):
        account = accounts[n % len(accounts)]
        with tenancy.bound(company.pk, user_id=admin.pk):
            sending.message_send(
                membership=membership,
                draft=sending.Draft(account_id=account.pk, **fields),
                undo=timedelta(0),
            )
    queue_seconds = time.perf_counter() - started
    print(
        f"queued: {args.messages / queue_seconds:,.0f} messages/s "
        f"({queue_seconds:.1f} s, one transaction each)",
        flush=True,
    )

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings"}
    print("delivering ...", flush=True)
    started = time.perf_counter()
    workers = [
        subprocess.Popen(  # noqa: S603 - this file
            [sys.executable, __file__, "--worker", str(company.pk), str(account.pk)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for account in accounts
    ]
    results = [json.loads(worker.communicate()[0].strip().splitlines()[-1]) for worker in workers]
    seconds = time.perf_counter() - started
    sent = sum(result["sent"] for result in results)
    copies = "Sent copies APPENDed to Dovecot" if dovecot else "no Sent copies (server files them)"
    print(
        f"delivered: {sent / seconds:,.1f} messages/s ({sent:,} in {seconds:.1f} s, "
        f"{len(workers)} worker process(es), spacing off, {copies})",
        flush=True,
    )

    assert smtpd.stdin is not None
    assert smtpd.stdout is not None
    smtpd.stdin.close()
    counts = json.loads(smtpd.stdout.readline())
    with tenancy.bound(company.pk):
        states = dict(
            MailOutbound.objects.for_company(company).values_list("state").annotate(n=Count("id"))
        )
        filed = MailThreadMessage.objects.for_company(company).count()
        unfinished = (
            MailOutbound.objects.for_company(company).filter(finished_at__isnull=True).count()
        )
    print(f"outbox states: {states}; filed in conversations: {filed:,}; unfinished: {unfinished}")
    print(
        f"SMTP server: {counts['messages']:,} messages, {counts['distinct']:,} distinct "
        f"Message-IDs, {counts['doubles']} delivered twice, {counts['recipients']:,} recipients, "
        f"{counts['bytes'] / 1e6:,.1f} MB"
    )
    assert states == {OutboundState.SENT: args.messages}, states
    assert filed == args.messages
    assert unfinished == 0
    assert counts["messages"] == counts["distinct"] == args.messages
    assert counts["doubles"] == 0
    if dovecot is not None:
        in_sent = 0
        for k in range(args.accounts):
            with dovecot.session(f"bench{k}", f"bench-mail-password-{k}") as client:
                _, data = client.select('"Sent"', readonly=True)
                in_sent += int(data[0])
        print(f"Dovecot Sent: {in_sent:,} messages")
        assert in_sent == args.messages


if __name__ == "__main__":
    main()
