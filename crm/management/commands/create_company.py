"""`manage.py create_company "Acme" --admin-email a@acme.test --password '…'`

Creates a company and its first admin, and prints one JSON line
`{"company_id": …, "user_id": …, "api_token": "…"}` for scripts (keep this exact shape).
An address that already has an account (in another company) joins as admin with its existing
password; `--password` is then not used."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm import services


class Command(BaseCommand):
    help = "Create a company with its first admin; prints company_id, user_id and api_token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--admin-name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            company, user, token = services.bootstrap_company(
                name=options["name"],
                admin_email=options["admin_email"],
                password=options["password"],
                admin_name=options["admin_name"],
            )
        except services.ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            json.dumps({"company_id": company.pk, "user_id": user.pk, "api_token": token})
        )
