"""The Celery application and the task base that binds a task to its company.

"A Celery task is just another interface": it takes ids (always `company_id` for tenant work),
opens a transaction bound to that company, calls one service, and owns only its retry policy.
Enqueue with `transaction.on_commit` so a task never runs before the rows it needs exist."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class TenantTask(Task):  # type: ignore[type-arg]
    """Runs the task body in a transaction bound to the `company_id` keyword it was given."""

    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Imported here: this module loads before Django's app registry (celery -A), and
        # crm.tenancy defines a model base class.
        from crm import tenancy

        company_id = kwargs.get("company_id")
        if not isinstance(company_id, int):
            raise tenancy.TenancyError(
                f"Task {self.name} needs an integer company_id keyword argument."
            )
        with tenancy.request_scope(), transaction.atomic():
            tenancy.bind(company_id=company_id)
            return super().__call__(*args, **kwargs)
