"""`migrate` as the owner role: tables belong to the owner, and the runtime role gets row
access to them (docs/decisions/0002-row-level-security.md)."""

from typing import Any

from django.core.management.commands import migrate

from crm import tenancy


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        with tenancy.owner_mode(using=options["database"]):
            super().handle(*args, **options)
            tenancy.grant_runtime_privileges(using=options["database"])
