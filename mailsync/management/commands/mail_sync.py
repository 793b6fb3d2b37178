"""`manage.py mail_sync --company C --account A`: run one sync pass of an account in the
foreground (what the Celery task runs), and print what it did."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from crm import tenancy
from mailsync import sync


class Command(BaseCommand):
    help = "Run one sync pass of a mail account in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", type=int, required=True)
        parser.add_argument("--account", type=int, required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        with tenancy.request_scope():
            outcome = sync.account_sync(
                company_id=options["company"], account_id=options["account"]
            )
        self.stdout.write(
            json.dumps(
                {
                    "ran": outcome.ran,
                    "stored": outcome.stored,
                    "removed": outcome.removed,
                    "error": outcome.error_kind,
                }
            )
        )
