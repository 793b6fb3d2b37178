"""`manage.py create_user --company <id> --email b@acme.test --password '…' --role regular|admin`

Adds a user to a company (a user already in another company joins with their existing
password) and prints one JSON line `{"user_id": …, "api_token": "…"}`: a new personal token
for this company."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm import services, tenancy
from crm.models import Company, Role


class Command(BaseCommand):
    help = "Add a user to a company; prints user_id and a new api_token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", type=int, required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--role", choices=Role.values, default=Role.REGULAR)
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with tenancy.bound(options["company"]):
                company = Company.objects.filter(pk=options["company"]).first()
                if company is None:
                    raise CommandError(f"No company with id {options['company']}.")
                user = services.user_get_or_create(
                    email=options["email"], password=options["password"], name=options["name"]
                )
                services.membership_add(company=company, user=user, role=options["role"])
                token = services.api_token_issue(company=company, user=user)
        except services.ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps({"user_id": user.pk, "api_token": token}))
