"""`manage.py mail_listener`: the IMAP IDLE push listener (mailsync.push). `make run` and
docker-compose start it beside the web server, the worker and beat."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mailsync import push


class Command(BaseCommand):
    help = "Listen for new mail (IMAP IDLE) and wake the accounts' sync."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--refresh",
            type=float,
            default=push.REFRESH_SECONDS,
            help="Seconds between re-reading the accounts to watch.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(push.listen(refresh_seconds=options["refresh"]))
