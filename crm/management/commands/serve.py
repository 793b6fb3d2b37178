"""`manage.py serve` (what `make run` runs): migrate, load the demo company on first start,
then run the web server, a Celery worker, Celery beat and the mail push listener (IMAP IDLE) as
one foreground process tree.

Ctrl-C (SIGINT) or SIGTERM stops all three and waits for them; if one dies, the others are
stopped too and the command exits non-zero, so a broken start is never half up. The children
inherit DATABASE_URL / REDIS_URL as resolved here (the embedded servers' URLs when unset), so
they never race to start servers of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from crm import localservices, tenancy
from crm.demo import demo_load

STOP_GRACE_SECONDS = 15


class Command(BaseCommand):
    help = "Migrate, load the demo on first start, and serve web + worker + beat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--no-demo", action="store_true", help="Do not load the demo.")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        first_start = not tenancy.company_ids()
        if first_start and not options["no_demo"]:
            sign_in = demo_load()
            self.stdout.write(
                self.style.SUCCESS(
                    f"Loaded the demo company. Sign in as {sign_in.email} / {sign_in.password}"
                )
            )
        url = f"http://{options['host']}:{options['port']}"
        self.stdout.write(self.style.SUCCESS(f"Serving on {url}  (Ctrl-C stops everything)"))
        sys.stdout.flush()
        raise SystemExit(_supervise(_commands(host=options["host"], port=options["port"])))


def _commands(*, host: str, port: int) -> dict[str, list[str]]:
    bin_dir = os.path.dirname(sys.executable)
    beat_schedule = str(localservices.VAR_DIR / "celerybeat-schedule")
    return {
        "web": [
            os.path.join(bin_dir, "gunicorn"),
            "crm.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "10",
        ],
        "worker": [
            os.path.join(bin_dir, "celery"),
            "-A",
            "crm.celery_app",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            # The default queue, first syncs, and incremental mail sync (mailsync.tasks).
            "--queues",
            "celery,mail_initial,mail_sync",
        ],
        "mail-listener": [sys.executable, str(settings.BASE_DIR / "manage.py"), "mail_listener"],
        "beat": [
            os.path.join(bin_dir, "celery"),
            "-A",
            "crm.celery_app",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            beat_schedule,
        ],
    }


def _supervise(commands: dict[str, list[str]]) -> int:
    env = {
        **os.environ,
        "DATABASE_URL": localservices.database_url(),
        "REDIS_URL": localservices.redis_url(),
    }
    children = {
        name: subprocess.Popen(command, env=env)  # noqa: S603 - our own fixed commands
        for name, command in commands.items()
    }
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                sys.stderr.write(f"{name} exited with {child.returncode}; stopping the rest.\n")
                exit_code, stopping = child.returncode or 1, True
                break
        time.sleep(0.3)
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return exit_code
