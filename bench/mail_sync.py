"""Benchmark: the first sync of a large IMAP mailbox, against mbsync, and new mail's latency.

In one run, against a throwaway Dovecot (tests/mailsync/dovecot.py) and a fresh database
(`crm_bench_mail` on the server DATABASE_URL names, or the embedded one):

1. writes a synthetic mailbox of N messages straight into the user's Maildir
   (bench/mail_corpus.py: 3-30 KB text+HTML, 2% with attachments, a few of 5-10 MB, threads,
   2,000 correspondents, 80 days, INBOX / Sent / Archive / Clients) and lets Dovecot index it;
   not measured;
2. (a) times mbsync (isync) downloading the whole mailbox into a local Maildir with its
   default, durable settings (fsync on): the yardstick;
   (b) times our first sync: connects the account with `mailsync.services.account_connect`,
   then runs one `mailsync.sync.account_sync` pass in a worker process of its own (this file
   with `--worker`), sampling its resident memory; checks that exactly N messages and N
   locations were stored;
   (c) starts the web app (gunicorn), a Celery worker and the push listener
   (`manage.py mail_listener`), then APPENDs 200 new messages to INBOX one at a time and
   polls `GET /api/v1/mailbox/mailThreads?folder=inbox&limit=5` every 20 ms until each one's
   subject shows: the delay from APPEND to API.

`--persons N` measures what linking adds (the linking and visibility issue): our first sync
runs as an A/B pair, each pass on a database created for it (and an empty Redis database and
raw directory): A with no persons in the company, B with N persons, one for every correspondent
of the corpus and the rest with other addresses, and their deals and leads (`crm_load`). The
worker times the linking stage inside the pass (`_TIMED`: `inbox.linking.threads_relink`, its
deal and lead choice, the person lookup by address; wrapped in the worker process only), also
counts CPU seconds of the worker and of its PostgreSQL backend (what other processes on the
machine do not change), and B checks that linking happened. `--rounds R` runs R pairs,
`--linking-only` skips mbsync and the APPEND latency, `--keep-database` keeps the last pass's
database for EXPLAIN.

Everything it starts is stopped and everything it creates is deleted at the end (Dovecot, the
processes, temp dirs, the database, the keys in the Redis database it picked), also on failure.

Run: `DATABASE_URL=postgresql://postgres@127.0.0.1:5432/crm .venv/bin/python bench/mail_sync.py`
(`--messages 5000` for a quick run; `--messages 100000 --persons 100000 --linking-only
--rounds 2` for the linking overhead). `--profile` runs only the generation and our first sync
(pass B with `--persons`), under pyinstrument (`pip install pyinstrument` into .venv), and
prints where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import http.client
import imaplib
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.mail_corpus import CorpusStats, corpus_write, simple_message  # noqa: E402
from bench.persons_api import _use_bench_database  # noqa: E402

MAIL_USER = "bench"
MAIL_PASSWORD = "bench-mail-password"
OWNER_EMAIL = "bench@example.test"
VENV_BIN = Path(sys.executable).parent
APPEND_TIMEOUT = 30.0


# --- Measuring processes --------------------------------------------------------------------------


def _status_kb(pid: int, field_name: str) -> int:
    """A `/proc/<pid>/status` field in KiB (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class _RssSampler:
    """Polls a process's VmRSS every 100 ms in a thread; `peak_kb` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmRSS"))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_ticks() -> tuple[int, int, int]:
    """(busy, iowait, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = values[3], values[4]
    total = sum(values[:8])
    return total - idle - iowait, iowait, total


@dataclass
class _CpuShare:
    """How busy the machine's cores were between start and `stop()`."""

    start: tuple[int, int, int] = field(default_factory=_cpu_ticks)
    busy: float = 0.0
    iowait: float = 0.0

    def stop(self) -> _CpuShare:
        end = _cpu_ticks()
        total = max(1, end[2] - self.start[2])
        self.busy = (end[0] - self.start[0]) / total
        self.iowait = (end[1] - self.start[1]) / total
        return self


@dataclass
class _Outcome:
    seconds: float
    messages: int
    cpu: _CpuShare
    peak_rss_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


# --- Processes we start and must stop ----------------------------------------------------------


class _Processes:
    """Long-running children, each in its own process group, stopped in reverse order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603 - our own argv
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: its children (gunicorn, celery) go with it
        )
        log.close()
        self.started.append((name, process))
        return process

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_log(self, name: str, text: str, *, count: int = 1, timeout: float = 60) -> None:
        process = dict(self.started)[name]
        deadline = time.monotonic() + timeout
        while self.log(name).count(text) < count:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}):\n{self.tail(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not log {text!r} in time:\n{self.tail(name)}")
            time.sleep(0.1)

    def tail(self, name: str, lines: int = 30) -> str:
        return "\n".join(self.log(name).splitlines()[-lines:])

    def stop_all(self) -> None:
        for _name, process in reversed(self.started):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for _name, process in reversed(self.started):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.started.clear()


# --- 1. The mailbox ----------------------------------------------------------------------------


def _tool(name: str) -> str:
    """The absolute path of a command (Debian puts dovecot in /usr/sbin)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise SystemExit(f"needs {name}")
    return found


def _doveadm(server: Any, *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv
        [_tool("doveadm"), "-c", str(server.config_path), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"doveadm {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def _mailbox_counts(server: Any) -> dict[str, int]:
    """Messages per folder, as Dovecot counts them."""
    out = _doveadm(server, "-f", "tab", "mailbox", "status", "-u", MAIL_USER, "messages", "*")
    rows = [line.split("\t") for line in out.splitlines()[1:] if line.strip()]
    return {name: int(count) for name, count in rows}


def mailbox_create(server: Any, *, messages: int, seed: int) -> CorpusStats:
    """Write the corpus into the user's Maildir and let Dovecot index it (UIDs, index files)."""
    server.add_user(MAIL_USER, MAIL_PASSWORD)
    started = time.perf_counter()
    stats = corpus_write(
        server.mail_root / MAIL_USER / "Maildir",
        messages=messages,
        seed=seed,
        owner_email=OWNER_EMAIL,
    )
    written = time.perf_counter() - started
    server.start()
    _doveadm(server, "index", "-u", MAIL_USER, "*")
    counts = _mailbox_counts(server)
    if sum(counts.values()) != messages:
        raise RuntimeError(f"Dovecot sees {counts}, not {messages} messages")
    print(
        f"generated {messages} messages ({stats.bytes / 1e6:.0f} MB) in {written:.0f} s, "
        f"indexed in {time.perf_counter() - started - written:.0f} s: "
        + ", ".join(f"{name} {count}" for name, count in sorted(counts.items()) if count)
        + f"; {stats.replies} replies, {stats.with_attachment} with attachments "
        f"({stats.large} of 5-10 MB), {stats.correspondents} correspondents",
        flush=True,
    )
    return stats


# --- 2a. mbsync --------------------------------------------------------------------------------


def mbsync_run(server: Any, workdir: Path, messages: int) -> _Outcome:
    local = workdir / "mbsync-maildir"
    local.mkdir()
    config = workdir / "mbsyncrc"
    config.write_text(
        f"""# Written by bench/mail_sync.py: mbsync's defaults (FSync yes), plaintext to loopback.
IMAPAccount bench
Host {server.host}
Port {server.port}
User {MAIL_USER}
Pass {MAIL_PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore bench-far
Account bench

MaildirStore bench-near
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel bench
Far :bench-far:
Near :bench-near:
Patterns *
Create Near
Sync Pull
SyncState *
"""
    )
    cpu = _CpuShare()
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [_tool("mbsync"), "-q", "-c", str(config), "bench"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    sampler = _RssSampler(process.pid)
    output, _ = process.communicate()
    seconds = time.perf_counter() - started
    cpu.stop()
    sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"mbsync failed ({process.returncode}):\n{output.decode()[-3000:]}")
    downloaded = sum(
        1 for path in local.rglob("*") if path.is_file() and path.parent.name in ("cur", "new")
    )
    if downloaded != messages:
        raise RuntimeError(f"mbsync stored {downloaded} messages, not {messages}")
    outcome = _Outcome(seconds, downloaded, cpu, sampler.peak_kb / 1024)
    shutil.rmtree(local)  # gigabytes; the page cache is better spent on the next run
    return outcome


# --- 2b. Our first sync ------------------------------------------------------------------------


# What the worker times inside the pass (label, module, function): the linking stage and, for
# scale, the stages around it. Module attributes, looked up at each call by their callers
# (`linking.threads_relink(...)` in mailsync.ingest, `_deals_and_leads_link(...)` inside
# inbox.linking), so replacing them in this process catches every call.
_TIMED = (
    ("ingest_batch", "mailsync.ingest", "ingest_batch"),
    ("threads_refresh", "mailsync.ingest", "threads_refresh"),
    ("threads_relink", "inbox.linking", "threads_relink"),
    ("deals_and_leads", "inbox.linking", "_deals_and_leads_link"),
    ("persons_by_addresses", "contacts.selectors", "persons_by_addresses"),
)


def _timers_install() -> dict[str, list[float]]:
    """Wrap the functions of `_TIMED` with time accounting, in the worker process only (tests
    may not do this; a benchmark may): label → [seconds, calls]."""
    import importlib

    timers: dict[str, list[float]] = {}
    for label, module_name, name in _TIMED:
        module = importlib.import_module(module_name)
        inner = getattr(module, name)
        totals = timers.setdefault(label, [0.0, 0])

        def timed(
            *args: Any, _inner: Any = inner, _totals: list[float] = totals, **kwargs: Any
        ) -> Any:
            started = time.perf_counter()
            try:
                return _inner(*args, **kwargs)
            finally:
                _totals[0] += time.perf_counter() - started
                _totals[1] += 1

        setattr(module, name, functools.wraps(inner)(timed))
    return timers


def _worker(company_id: int, account_id: int, profile: bool, profile_html: str) -> None:
    """In the worker process: one sync pass; prints a RESULT line of JSON."""
    import django

    django.setup()
    from crm import tenancy
    from mailsync import sync

    timers = _timers_install()
    from django.db import connection

    with connection.cursor() as cursor:  # the pass's one connection (the prefetch has none)
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])
    backend_cpu = _process_cpu(backend)

    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with tenancy.request_scope():
        outcome = sync.account_sync(company_id=company_id, account_id=account_id)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    if profiler is not None:
        profiler.stop()
        tree = profiler.output_text(
            unicode=True, time="percent_of_total", processor_options={"filter_threshold": 0.01}
        )
        print(tree)
        print("Functions by own time (self), top 40:")
        flat = profiler.output_text(unicode=True, flat=True, time="percent_of_total")
        print("\n".join(flat.splitlines()[:48]))
        if profile_html:
            Path(profile_html).write_text(profiler.output_html())
            print(f"profile written to {profile_html}")
    result = {
        "ran": outcome.ran,
        "stored": outcome.stored,
        "error": outcome.error_kind,
        "seconds": seconds,
        "cpu_user": after.ru_utime - usage.ru_utime,
        "cpu_system": after.ru_stime - usage.ru_stime,
        "vmhwm_kb": _status_kb(os.getpid(), "VmHWM"),
        "timers": timers,
        # CPU seconds of the PostgreSQL backend that served the pass: with the worker's own,
        # a measure of the work that other processes on the machine do not disturb.
        "backend_cpu": _process_cpu(backend) - backend_cpu,
    }
    print("RESULT " + json.dumps(result), flush=True)


def _count_rows(company_id: int, account_id: int) -> dict[str, int]:
    from crm import tenancy
    from inbox.models import MailMessage, MailMessageLocation, MailThread

    with tenancy.bound(company_id):
        return {
            "messages": MailMessage.objects.for_company(company_id).count(),
            "locations": MailMessageLocation.objects.for_company(company_id)
            .filter(account_id=account_id)
            .count(),
            "distinct_locations": MailMessageLocation.objects.for_company(company_id)
            .filter(account_id=account_id)
            .values("folder_id", "uid")
            .distinct()
            .count(),
            "threads": MailThread.objects.for_company(company_id)
            .filter(account_id=account_id)
            .count(),
        }


def our_sync_run(
    env: dict[str, str],
    workdir: Path,
    *,
    company_id: int,
    account_id: int,
    messages: int,
    profile: bool,
    profile_html: str,
) -> _Outcome:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        f"{company_id}:{account_id}",
    ]
    if profile:
        argv.append("--profile")
    if profile_html:
        argv += ["--profile-html", profile_html]
    log = workdir / "worker.log"
    cpu = _CpuShare()
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own argv
            argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=output
        )
        sampler = _RssSampler(process.pid)
        stdout, _ = process.communicate()
    cpu.stop()
    sampler.stop()
    text = stdout.decode(errors="replace")
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(
            f"the sync worker failed ({process.returncode}):\n{text[-3000:]}\n"
            + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        )
    if profile:
        print(text.replace(lines[-1], "").rstrip())
    result = json.loads(lines[-1].removeprefix("RESULT "))
    if result["error"] or not result["ran"]:
        raise RuntimeError(f"the pass did not complete: {result}\n{log.read_text()[-3000:]}")
    rows = _count_rows(company_id, account_id)
    if not (
        rows["messages"] == rows["locations"] == rows["distinct_locations"] == messages
        and result["stored"] == messages
    ):
        raise RuntimeError(f"stored {rows} (pass says {result['stored']}), expected {messages}")
    peak_kb = max(sampler.peak_kb, int(result["vmhwm_kb"]))
    return _Outcome(result["seconds"], result["stored"], cpu, peak_kb / 1024, {**result, **rows})


# --- 2d. Persons and deals, for the linking overhead (--persons) -------------------------------


@dataclass
class _Crm:
    """What `crm_load` put into the company."""

    persons: int = 0
    addresses: int = 0
    correspondents: int = 0
    deals: int = 0
    open_deals: int = 0
    participants: int = 0
    leads: int = 0


def crm_load(
    *, company_id: int, owner_id: int, persons: int, correspondents: Sequence[str], seed: int
) -> _Crm:
    """Persons, deals and leads for the linking stage to find.

    Person k < len(correspondents) has correspondent k's address (so every correspondent of the
    corpus is a person), the others addresses no mail uses; half of all persons have a second
    address, 1.5 per person as in bench/persons_api.py. Of the correspondents' persons: 20%
    have one open deal and 2% a second one, 4% take part (DealParticipant) in another's open
    deal, 20% have only a won or lost deal (not linked), 5% an open lead and no deal. Of the
    other persons, one in ten has a deal (open, won or lost), one in twenty an open lead.
    COPY as the owner role (loading is not what we measure)."""
    from django.db import connection
    from django.utils import timezone

    from bench.persons_api import _copy_rows
    from contacts.addresses import normalize_email
    from contacts.models import Person, PersonEmail
    from crm import tenancy
    from crm.models import Company
    from crm.sales import services as sales_services
    from crm.sales.models import Deal, DealParticipant, DealStatus, Lead, Stage

    rng = random.Random(seed)
    now = timezone.now()
    loaded = _Crm(persons=persons, correspondents=min(persons, len(correspondents)))

    def next_id(table: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))")
            return int(cursor.fetchone()[0])

    def set_sequence(table: str, last: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [last])

    def stamp() -> datetime.datetime:  # "most recently active" must have something to choose
        return now - datetime.timedelta(minutes=rng.randrange(525_600))

    with tenancy.bound(company_id):
        pipeline = sales_services.pipeline_default_ensure(
            company=Company.objects.get(pk=company_id)
        )
        stage_id = (
            Stage.objects.for_company(company_id)
            .filter(pipeline_id=pipeline.pk)
            .order_by("position")
            .values_list("pk", flat=True)
            .first()
        )
    owned = {"company_id": company_id, "owner_id": owner_id, "visible_to": 7}
    with tenancy.owner_mode():
        first_person = next_id("contacts_person")
        rows: list[dict[str, Any]] = []
        emails: list[dict[str, Any]] = []
        for i in range(persons):
            person_id = first_person + i
            rows.append(
                {
                    **owned,
                    "id": person_id,
                    "name": f"Person {i}",
                    "first_name": "Person",
                    "last_name": str(i),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            first = correspondents[i] if i < loaded.correspondents else None
            for position in range(2 if i % 2 == 0 else 1):
                value = first if first and position == 0 else f"person{i}.{position}@co{i}.example"
                emails.append(
                    {
                        "company_id": company_id,
                        "person_id": person_id,
                        "value": value,
                        "normalized": normalize_email(value),
                        "label": "work",
                        "primary": position == 0,
                        "position": position,
                    }
                )
        _copy_rows(Person, rows)
        set_sequence("contacts_person", first_person + persons)
        first_email = next_id("contacts_personemail")
        _copy_rows(PersonEmail, [{"id": first_email + k, **e} for k, e in enumerate(emails)])
        set_sequence("contacts_personemail", first_email + len(emails))
        loaded.addresses = len(emails)

        deals: list[dict[str, Any]] = []
        leads: list[dict[str, Any]] = []
        first_deal = next_id("sales_deal")

        def deal(person: int, status: str) -> int:
            when = stamp()
            deals.append(
                {
                    **owned,
                    "id": first_deal + len(deals),
                    "title": f"Deal {len(deals)}",
                    "status": status,
                    "pipeline_id": pipeline.pk,
                    "stage_id": stage_id,
                    "person_id": first_person + person,
                    "creator_id": owner_id,
                    "created_at": when,
                    "updated_at": when,
                    **({"close_time": when} if status != DealStatus.OPEN else {}),
                }
            )
            return first_deal + len(deals) - 1

        def lead(person: int) -> None:
            when = stamp()
            leads.append(
                {
                    **owned,
                    "title": f"Lead {len(leads)}",
                    "person_id": first_person + person,
                    "creator_id": owner_id,
                    "created_at": when,
                    "updated_at": when,
                }
            )

        open_deal_of: dict[int, int] = {}
        participants: list[dict[str, Any]] = []
        for k in range(loaded.correspondents):
            if k % 5 == 0:
                open_deal_of[k] = deal(k, DealStatus.OPEN)
                if k % 50 == 0:
                    deal(k, DealStatus.OPEN)
            elif k % 10 in (1, 6):
                deal(k, DealStatus.WON if k % 10 == 1 else DealStatus.LOST)
            elif k % 20 == 3:
                lead(k)
            if k % 25 == 4:
                participants.append(
                    {
                        "company_id": company_id,
                        "deal_id": open_deal_of[k - 4],
                        "person_id": first_person + k,
                        "created_at": now,
                    }
                )
        statuses = (DealStatus.OPEN, DealStatus.WON, DealStatus.LOST)
        for i in range(loaded.correspondents, persons):
            if i % 10 == 0:
                deal(i, statuses[(i // 10) % 3])
            elif i % 20 == 5:
                lead(i)
        _copy_rows(Deal, deals)
        set_sequence("sales_deal", first_deal + len(deals))
        if participants:
            first_participant = next_id("sales_dealparticipant")
            _copy_rows(
                DealParticipant,
                [{"id": first_participant + k, **row} for k, row in enumerate(participants)],
            )
            set_sequence("sales_dealparticipant", first_participant + len(participants))
        _copy_rows(Lead, leads)
    loaded.deals = len(deals)
    loaded.open_deals = sum(1 for row in deals if row["status"] == DealStatus.OPEN)
    loaded.participants = len(participants)
    loaded.leads = len(leads)
    return loaded


def _database_settle() -> None:
    """VACUUM ANALYZE and CHECKPOINT before a measured pass: it then starts on a settled
    database (statistics for what was loaded, no flush of the load competing), loaded or not."""
    from django.db import connection

    from crm.db import roles

    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")  # the login: VACUUM and CHECKPOINT need an owner / superuser
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute("CHECKPOINT")
        cursor.execute(roles.role_statement())


def _link_counts(company_id: int) -> dict[str, int]:
    """What the linking stage left: threads with persons, a deal, a lead; and the threads
    that have a person with an open deal yet no deal (0 when automatic linking did its job)."""
    from django.db import connection

    from crm import tenancy

    with tenancy.bound(company_id), connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*),
                   count(*) FILTER (WHERE cardinality(t.person_ids) > 0),
                   count(*) FILTER (WHERE t.deal_id IS NOT NULL),
                   count(*) FILTER (WHERE t.lead_id IS NOT NULL),
                   count(*) FILTER (WHERE t.deal_id IS NULL AND EXISTS (
                       SELECT 1 FROM sales_deal d
                       WHERE d.company_id = t.company_id AND d.person_id = ANY(t.person_ids)
                         AND d.status = 'open' AND d.deleted_at IS NULL))
            FROM inbox_mailthread t WHERE t.company_id = %s
            """,
            [company_id],
        )
        threads, with_persons, with_deal, with_lead, unlinked = cursor.fetchone()
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE person_id IS NOT NULL) "
            "FROM inbox_mailparticipant WHERE company_id = %s",
            [company_id],
        )
        participants, participants_linked = cursor.fetchone()
        # The persons of each thread are kept twice: the array and MailThreadPerson rows.
        cursor.execute(
            "SELECT (SELECT count(*) FROM inbox_mailthreadperson WHERE company_id = %s), "
            "(SELECT coalesce(sum(cardinality(person_ids)), 0) FROM inbox_mailthread "
            "WHERE company_id = %s)",
            [company_id, company_id],
        )
        person_rows, person_ids = cursor.fetchone()
    return {
        "person_rows": person_rows,
        "person_ids": person_ids,
        "threads": threads,
        "with_persons": with_persons,
        "with_deal": with_deal,
        "with_lead": with_lead,
        "open_deal_unlinked": unlinked,
        "participants": participants,
        "participants_linked": participants_linked,
    }


# --- 2c. APPEND to API -------------------------------------------------------------------------


def _free_port() -> int:
    from tests.mailsync.dovecot import free_port

    return free_port()


def _subjects(connection: http.client.HTTPConnection, token: str) -> set[str]:
    connection.request(
        "GET", "/api/v1/mailbox/mailThreads?folder=inbox&limit=5", headers={"x-api-token": token}
    )
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"API answered {response.status}: {body[:300]!r}")
    return {thread["subject"] for thread in json.loads(body)["data"] or []}


def latency_run(
    server: Any, env: dict[str, str], processes: _Processes, *, token: str, appends: int
) -> list[float]:
    port = _free_port()
    processes.start(
        "gunicorn",
        [
            str(VENV_BIN / "gunicorn"),
            "crm.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        env,
    )
    processes.start(
        "celery",
        [
            str(VENV_BIN / "celery"),
            "-A",
            "crm.celery_app",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--queues",
            "celery,mail_initial,mail_sync",
        ],
        env,
    )
    processes.start("listener", [sys.executable, "manage.py", "mail_listener"], env)
    processes.wait_for_log("celery", " ready.")
    processes.wait_for_log("listener", ": idling", count=2)  # INBOX and Sent
    deadline = time.monotonic() + 60
    api = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while True:
        try:
            _subjects(api, token)
            break
        except (OSError, http.client.HTTPException):
            api.close()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "gunicorn did not answer:\n" + processes.tail("gunicorn")
                ) from None
            time.sleep(0.2)

    imap = imaplib.IMAP4(server.host, server.port, timeout=30)
    imap.login(MAIL_USER, MAIL_PASSWORD)
    delays: list[float] = []
    try:
        for n in range(-2, appends):  # two warm-ups, not counted
            subject = f"Latency probe {n} {time.time_ns()}"
            raw = simple_message(
                message_id=f"<probe.{time.time_ns()}@client1.example>",
                sender='"Probe Sender" <probe@client1.example>',
                recipient=OWNER_EMAIL,
                subject=subject,
            )
            started = time.perf_counter()
            typ, data = imap.append("INBOX", "", "", raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {typ} {data!r}")
            while subject not in _subjects(api, token):
                if time.perf_counter() - started > APPEND_TIMEOUT:
                    raise RuntimeError(
                        f"{subject!r} did not show within {APPEND_TIMEOUT:.0f} s\n"
                        + processes.tail("listener")
                        + "\n"
                        + processes.tail("celery")
                    )
                time.sleep(0.02)
            if n >= 0:
                delays.append(time.perf_counter() - started)
            time.sleep(0.05)
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            imap.logout()
        api.close()
    return delays


# --- The run -----------------------------------------------------------------------------------


def _redis_free_db() -> str:
    """REDIS_URL with an empty database number of the server REDIS_URL names (or 127.0.0.1)."""
    import redis

    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    client = redis.Redis.from_url(f"{base}/0")
    used = {int(name.removeprefix("db")) for name in client.info("keyspace")}
    databases = int(client.config_get("databases").get("databases", 16))
    free = [n for n in range(databases - 1, 0, -1) if n not in used]
    if not free:
        raise RuntimeError("no empty Redis database to use")
    return f"{base}/{free[0]}"


def _redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def _database_drop(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    server, _, name = url.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@dataclass
class _Setup:
    company_id: int
    account_id: int
    owner_id: int
    token: str


def _setup_account(*, company_name: str) -> _Setup:
    """Migrate, create the company, connect the mailbox (as a user would)."""
    from django.core.management import call_command

    from crm import services, tenancy
    from mailsync import services as mail_services

    call_command("migrate", verbosity=0)
    company, user, token = services.bootstrap_company(
        name=company_name, admin_email="admin@bench.test", password="bench-password-123"
    )
    with tenancy.bound(company.pk, user_id=user.pk):
        account = mail_services.account_connect(
            company=company,
            owner=user,
            data=mail_services.ImapAccountInput(
                email_address=OWNER_EMAIL,
                imap_host="127.0.0.1",
                imap_port=int(os.environ["BENCH_IMAP_PORT"]),
                imap_security="none",
                username=MAIL_USER,
                password=MAIL_PASSWORD,
            ),
        )
    return _Setup(company.pk, account.pk, user.pk, token)


def _database_recreate(url: str) -> None:
    """The bench database dropped and created empty again, under the same name (so Django's
    settings stay as they are): each measured pass starts from nothing."""
    import psycopg
    from django.db import connections

    connections.close_all()
    server, _, name = url.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _page_cache_warm(maildir: Path) -> None:
    """Read the whole mailbox once, so no measured pass is the one that pays for reading it
    from disk (mbsync's run does this otherwise)."""
    for path in maildir.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                while handle.read(1 << 20):
                    pass


@dataclass
class _Linked:
    """One measured first sync of the A/B pair: `crm` is None for A (no persons)."""

    label: str
    outcome: _Outcome
    crm: _Crm | None
    counts: dict[str, int]
    load: tuple[float, float, float]  # os.getloadavg() just before the pass


def _sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(143)  # unwinds through the clean-up


def run(args: argparse.Namespace) -> None:
    from tests.mailsync.dovecot import Dovecot, is_available

    if not is_available() or shutil.which("doveadm") is None:
        raise SystemExit("needs Dovecot (Debian dovecot-imapd)")
    skip_mbsync = args.profile or args.linking_only
    if not skip_mbsync and shutil.which("mbsync") is None:
        raise SystemExit("needs mbsync (Debian isync)")
    signal.signal(signal.SIGTERM, _sigterm)
    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="mail-bench-"))
        workdir.chmod(0o755)
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        processes = _Processes(workdir)
        cleanup.callback(processes.stop_all)

        (workdir / "dovecot").mkdir()
        server = Dovecot(condstore=True, root=workdir / "dovecot")
        cleanup.callback(server.close)
        stats = mailbox_create(server, messages=args.messages, seed=args.seed)

        mbsync = None if skip_mbsync else mbsync_run(server, workdir, args.messages)
        if mbsync:
            print(f"mbsync: {mbsync.messages} messages in {mbsync.seconds:.1f} s", flush=True)
        else:
            _page_cache_warm(server.mail_root / MAIL_USER / "Maildir")

        _use_bench_database(args.database)
        database_url = os.environ["DATABASE_URL"]
        if not args.keep_database:
            cleanup.callback(_database_drop, database_url)
        redis_url = _redis_free_db()
        cleanup.callback(_redis_flush, redis_url)
        raw_dir = workdir / "raw"
        os.environ.update(
            REDIS_URL=redis_url,
            CRM_MAIL_RAW_DIR=str(raw_dir),
            BENCH_IMAP_PORT=str(server.port),
            DJANGO_SETTINGS_MODULE="crm.settings",
        )
        env = dict(os.environ)
        import django

        django.setup()
        from django.db import connection

        def first_sync(label: str, persons: int, *, profile: bool) -> tuple[_Linked, _Setup]:
            """One measured first sync on a database of its own (fresh Redis database and
            raw directory too), with `persons` persons loaded first."""
            _database_recreate(database_url)
            _redis_flush(redis_url)
            shutil.rmtree(raw_dir, ignore_errors=True)
            setup = _setup_account(company_name="Mail Bench Co")
            crm = None
            if persons:
                started = time.perf_counter()
                crm = crm_load(
                    company_id=setup.company_id,
                    owner_id=setup.owner_id,
                    persons=persons,
                    correspondents=stats.addresses,
                    seed=args.seed,
                )
                print(
                    f"{label}: loaded {crm.persons:,} persons ({crm.addresses:,} addresses), "
                    f"{crm.deals:,} deals ({crm.open_deals:,} open), {crm.leads:,} leads in "
                    f"{time.perf_counter() - started:.0f} s",
                    flush=True,
                )
            _database_settle()
            load = os.getloadavg()
            outcome = our_sync_run(
                env,
                workdir,
                company_id=setup.company_id,
                account_id=setup.account_id,
                messages=args.messages,
                profile=profile,
                profile_html=args.profile_html,
            )
            counts = _link_counts(setup.company_id)
            print(
                f"{label}: {outcome.messages} messages in {outcome.seconds:.1f} s "
                f"({outcome.rate:,.0f}/s); {counts['threads']:,} threads, "
                f"{counts['with_persons']:,} with persons, {counts['with_deal']:,} with a deal; "
                f"load before {load[0]:.2f}",
                flush=True,
            )
            return _Linked(label, outcome, crm, counts, load), setup

        linked: list[_Linked] = []
        if args.persons:
            # A/B, alternating when there are several rounds: the same mailbox, each pass on a
            # fresh database; A links against an empty contact list, B against the persons.
            # --profile profiles B only.
            for _round in range(args.rounds):
                a, setup = first_sync("A, no persons", 0, profile=False)
                b, setup = first_sync(
                    f"B, {args.persons:,} persons", args.persons, profile=args.profile
                )
                linked += [a, b]
            ours = linked[-2].outcome
        else:
            only, setup = first_sync("ours", 0, profile=args.profile)
            ours = only.outcome
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            database_bytes = int(cursor.fetchone()[0])
            version = connection.cursor().connection.info.server_version
        raw_bytes = sum(p.stat().st_size for p in raw_dir.rglob("*.eml"))
        delays: list[float] = []
        if not skip_mbsync and args.appends:
            delays = latency_run(server, env, processes, token=setup.token, appends=args.appends)

        pg = f"{version // 10000}.{version % 10000}"
        _report(
            args,
            stats,
            mbsync,
            ours,
            delays,
            pg=pg,
            database_bytes=database_bytes,
            raw_bytes=raw_bytes,
        )
        if linked:
            _linking_report(linked)


def _linking_report(linked: list[_Linked]) -> None:
    """The A/B figures of --persons: the rates, the overhead, where B's linking time went and
    proof that it linked."""

    def seconds(run: _Linked, label: str) -> float:
        return float(run.outcome.extra["timers"][label][0])

    def share(run: _Linked, label: str) -> str:
        spent = seconds(run, label)
        calls = int(run.outcome.extra["timers"][label][1])
        return (
            f"{spent:.1f} s ({spent / run.outcome.seconds * 100:.1f}% of the pass, {calls} calls)"
        )

    def cpu(run: _Linked) -> float:
        extra = run.outcome.extra
        return float(extra["cpu_user"] + extra["cpu_system"] + extra["backend_cpu"])

    def cpu_text(run: _Linked) -> str:
        extra = run.outcome.extra
        return (
            f"CPU {cpu(run):.1f} s (worker {extra['cpu_user'] + extra['cpu_system']:.1f} s "
            f"+ its PostgreSQL backend {extra['backend_cpu']:.1f} s)"
        )

    pairs = [(linked[k], linked[k + 1]) for k in range(0, len(linked), 2)]
    overheads = [b.outcome.seconds / a.outcome.seconds - 1 for a, b in pairs]
    cpu_overheads = [cpu(b) / cpu(a) - 1 for a, b in pairs]
    print("\nLinking overhead (A: no persons in the company; B: persons and deals)")
    rows: list[tuple[str, str, str]] = []
    for n, ((a, b), overhead, cpu_overhead) in enumerate(
        zip(pairs, overheads, cpu_overheads, strict=True), start=1
    ):
        crm = b.crm
        assert crm is not None
        rows += [
            (
                f"round {n} A: {a.label}",
                f"{a.outcome.rate:,.0f} msgs/s",
                f"{a.outcome.seconds:.1f} s; load before {a.load[0]:.2f}; "
                f"threads_relink {seconds(a, 'threads_relink'):.1f} s, "
                f"persons lookup {seconds(a, 'persons_by_addresses'):.1f} s",
            ),
            (
                f"round {n} B: {b.label}",
                f"{b.outcome.rate:,.0f} msgs/s",
                f"{b.outcome.seconds:.1f} s; load before {b.load[0]:.2f}; "
                f"{crm.persons:,} persons, {crm.addresses:,} addresses, {crm.deals:,} deals "
                f"({crm.open_deals:,} open), {crm.leads:,} leads",
            ),
            (f"round {n} A: CPU", "", cpu_text(a)),
            (f"round {n} B: CPU", "", cpu_text(b)),
            (f"round {n} linking overhead, B/A - 1", f"{overhead * 100:+.1f}%", "target < 25%"),
            (
                f"round {n} same in CPU seconds",
                f"{cpu_overhead * 100:+.1f}%",
                "worker + backend: what load from other processes does not change",
            ),
            (f"round {n} A: in threads_relink", "", share(a, "threads_relink")),
            (f"round {n} A: in threads_refresh (for scale)", "", share(a, "threads_refresh")),
            (f"round {n} B: in threads_relink", "", share(b, "threads_relink")),
            (f"round {n} B:   of which deal/lead choice", "", share(b, "deals_and_leads")),
            (f"round {n} B: in persons_by_addresses", "", share(b, "persons_by_addresses")),
            (f"round {n} B: in threads_refresh (for scale)", "", share(b, "threads_refresh")),
            (
                f"round {n} B: linked",
                f"{b.counts['with_persons']:,} threads",
                f"with persons, of {b.counts['threads']:,}; {b.counts['with_deal']:,} with a "
                f"deal, {b.counts['with_lead']:,} with a lead; "
                f"{b.counts['participants_linked']:,} of {b.counts['participants']:,} "
                f"participants linked; {b.counts['person_rows']:,} thread-person rows; "
                f"{b.counts['open_deal_unlinked']} threads of a person with an open deal left "
                "without one",
            ),
        ]
    if len(pairs) > 1:
        rows.append(
            (
                "median linking overhead",
                f"{statistics.median(overheads) * 100:+.1f}%",
                f"in CPU seconds {statistics.median(cpu_overheads) * 100:+.1f}%",
            )
        )
    width = max(len(r[0]) for r in rows)
    for name, value, detail in rows:
        print(f"{name:{width}s}  {value:>16s}   {detail}")
    for _a, b in pairs:
        if not b.counts["with_persons"] or not b.counts["with_deal"]:
            raise RuntimeError(f"run B linked nothing: {b.counts}")
        if b.counts["open_deal_unlinked"]:
            raise RuntimeError(f"run B left threads without their open deal: {b.counts}")
        if b.counts["person_rows"] != b.counts["person_ids"]:
            raise RuntimeError(f"run B's thread-person rows differ from the arrays: {b.counts}")


def _report(
    args: argparse.Namespace,
    stats: CorpusStats,
    mbsync: _Outcome | None,
    ours: _Outcome,
    delays: list[float],
    *,
    pg: str,
    database_bytes: int,
    raw_bytes: int,
) -> None:
    dovecot = subprocess.run(  # noqa: S603 - fixed argv
        [_tool("dovecot"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    profiled = "; PROFILED (pyinstrument slows the pass)" if args.profile else ""
    print(
        f"\n{stats.messages} messages, {stats.bytes / 1e6:,.0f} MB "
        f"({', '.join(f'{k} {v}' for k, v in stats.folders.most_common())}); "
        f"PostgreSQL {pg}, Dovecot {dovecot.split()[0] if dovecot else '?'}, "
        f"{os.cpu_count()} cores{profiled}"
    )

    def cpu(outcome: _Outcome) -> str:
        return f"cores {outcome.cpu.busy * 100:.0f}% busy, {outcome.cpu.iowait * 100:.0f}% iowait"

    rows: list[tuple[str, str, str]] = []
    if mbsync:
        rows.append(
            (
                "mbsync first download (fsync on)",
                f"{mbsync.rate:,.0f} msgs/s",
                f"{mbsync.seconds:.1f} s, {stats.bytes / 1e6 / mbsync.seconds:.0f} MB/s; "
                f"{cpu(mbsync)}; RSS {mbsync.peak_rss_mb:.0f} MB",
            )
        )
    rows.append(
        (
            "our first sync (one pass, worker process)",
            f"{ours.rate:,.0f} msgs/s",
            f"{ours.seconds:.1f} s, {stats.bytes / 1e6 / ours.seconds:.0f} MB/s; {cpu(ours)}; "
            f"worker CPU {ours.extra['cpu_user']:.0f} s user "
            f"+ {ours.extra['cpu_system']:.0f} s sys",
        )
    )
    if mbsync:
        rows.append(("ratio ours / mbsync", f"{ours.rate / mbsync.rate:.2f}", "target >= 0.5"))
    rows.append(("our worker's peak RSS", f"{ours.peak_rss_mb:.0f} MB", "target < 400 MB"))
    rows.append(
        (
            "stored",
            f"{ours.extra['messages']:,} messages",
            f"{ours.extra['locations']:,} locations, {ours.extra['threads']:,} threads; "
            f"database {database_bytes / 1e6:,.0f} MB, raw files {raw_bytes / 1e6:,.0f} MB",
        )
    )
    if delays:
        rows.append(
            (
                f"APPEND -> API, {len(delays)} messages",
                f"p50 {statistics.median(delays) * 1000:,.0f} ms",
                f"p95 {_percentile(delays, 0.95) * 1000:,.0f} ms, max {max(delays) * 1000:,.0f} ms"
                " (target p95 < 2000 ms)",
            )
        )
    width = max(len(r[0]) for r in rows)
    for name, value, detail in rows:
        print(f"{name:{width}s}  {value:>16s}   {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default="crm_bench_mail")
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument(
        "--persons",
        type=int,
        default=0,
        help="A/B: our first sync with no persons, then with this many persons (every "
        "correspondent one of them) and their deals; reports the linking overhead",
    )
    parser.add_argument("--rounds", type=int, default=1, help="A/B pairs to run (--persons)")
    parser.add_argument(
        "--linking-only", action="store_true", help="skip mbsync and the APPEND latency"
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile our first sync only (B with --persons)"
    )
    parser.add_argument("--profile-html", default="", help="also write pyinstrument's HTML here")
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="keep the database of the last pass (to EXPLAIN its statements); not Redis",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "<company id>:<account id>"
    args = parser.parse_args()
    if args.worker:
        company_id, _, account_id = args.worker.partition(":")
        _worker(int(company_id), int(account_id), args.profile, args.profile_html)
        return
    if args.profile:
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            raise SystemExit(
                "--profile needs pyinstrument: .venv/bin/pip install pyinstrument"
            ) from None
    run(args)


if __name__ == "__main__":
    main()
