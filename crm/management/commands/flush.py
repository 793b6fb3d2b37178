"""`flush` as the owner role: TRUNCATE ignores row-level security, so the runtime role is never
granted it; only this command (tests' TransactionTestCase uses it) may empty tables."""

from typing import Any

from django.core.management.commands import flush

from crm import tenancy


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        with tenancy.owner_mode(using=options["database"]):
            super().handle(**options)
