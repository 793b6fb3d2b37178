"""`migrate` as the owner role: tables belong to the owner, and the runtime role gets row
access to them (docs/decisions/0002-row-level-security.md)."""

from typing import Any

from django.core.management.commands import migrate

from crm import tenancy


class Command(migrate.Command):
    def execute(self, *args: Any, **options: Any) -> str | None:
        # The system checks run before `handle` and some connect (constraint checks ask the
        # server's version): on a new server the runtime role does not exist yet.
        with tenancy.owner_mode(using=options["database"]):
            return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        tenancy.grant_runtime_privileges(using=options["database"])
