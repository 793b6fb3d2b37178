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

Everything it starts is stopped and everything it creates is deleted at the end (Dovecot, the
processes, temp dirs, the database, the keys in the Redis database it picked), also on failure.

Run: `DATABASE_URL=postgresql://postgres@127.0.0.1:5432/crm .venv/bin/python bench/mail_sync.py`
(`--messages 5000` for a quick run). `--profile` runs only the generation and our first sync,
under pyinstrument (`pip install pyinstrument` into .venv), and prints where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import imaplib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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


def _worker(company_id: int, account_id: int, profile: bool, profile_html: str) -> None:
    """In the worker process: one sync pass; prints a RESULT line of JSON."""
    import django

    django.setup()
    from crm import tenancy
    from mailsync import sync

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


def _setup_account(*, company_name: str) -> tuple[int, int, str]:
    """Migrate, create the company, connect the mailbox (as a user would); returns
    (company id, account id, API token)."""
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
    return company.pk, account.pk, token


def _sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(143)  # unwinds through the clean-up


def run(args: argparse.Namespace) -> None:
    from tests.mailsync.dovecot import Dovecot, is_available

    if not is_available() or shutil.which("doveadm") is None:
        raise SystemExit("needs Dovecot (Debian dovecot-imapd)")
    if not args.profile and shutil.which("mbsync") is None:
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

        mbsync = None if args.profile else mbsync_run(server, workdir, args.messages)
        if mbsync:
            print(f"mbsync: {mbsync.messages} messages in {mbsync.seconds:.1f} s", flush=True)

        _use_bench_database(args.database)
        database_url = os.environ["DATABASE_URL"]
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

        company_id, account_id, token = _setup_account(company_name="Mail Bench Co")
        ours = our_sync_run(
            env,
            workdir,
            company_id=company_id,
            account_id=account_id,
            messages=args.messages,
            profile=args.profile,
            profile_html=args.profile_html,
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            database_bytes = int(cursor.fetchone()[0])
            version = connection.cursor().connection.info.server_version
        raw_bytes = sum(p.stat().st_size for p in raw_dir.rglob("*.eml"))
        print(
            f"ours: {ours.messages} messages in {ours.seconds:.1f} s; "
            f"{ours.extra['threads']} threads",
            flush=True,
        )
        delays: list[float] = []
        if not args.profile and args.appends:
            delays = latency_run(server, env, processes, token=token, appends=args.appends)

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
    parser.add_argument("--profile", action="store_true", help="profile our first sync only")
    parser.add_argument("--profile-html", default="", help="also write pyinstrument's HTML here")
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
