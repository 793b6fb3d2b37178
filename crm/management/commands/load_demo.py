from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from crm.demo import demo_load


class Command(BaseCommand):
    help = "Load the demo company and print its sign-in."

    def handle(self, *args: Any, **options: Any) -> None:
        sign_in = demo_load()
        self.stdout.write(
            f"Demo company {sign_in.company_id}: {sign_in.email} / {sign_in.password}"
        )
