"""Celery tasks of deals, leads and projects. Each is an interface like a view: ids in, one
service out; tenant tasks run on `TenantTask`, bound to their `company_id`."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from crm import selectors, tenancy
from crm.celery_app import TenantTask, app
from crm.sales import services

logger = logging.getLogger(__name__)


@app.task(base=TenantTask, name="crm.sales.tasks.lead_conversion_run")
def lead_conversion_run(*, company_id: int, conversion_id: str, actor_id: int) -> str | None:
    """Run one lead-to-deal conversion job; its final status (None if the job is gone or ran
    already, e.g. a redelivered message)."""
    company = selectors.company_get(company_id=company_id)
    if company is None:
        return None
    conversion = services.lead_conversion_run(
        company=company, conversion_id=conversion_id, actor_id=actor_id
    )
    return None if conversion is None else str(conversion.status)


@app.task(name="crm.sales.tasks.purge_deleted")
def purge_deleted() -> int:
    """Beat, hourly: hard-delete deals, leads and projects deleted more than
    CRM_SOFT_DELETE_DAYS ago, visiting each company in its own bound transaction. Returns how
    many items went."""
    before = timezone.now() - timedelta(days=settings.CRM_SOFT_DELETE_DAYS)
    purged = 0
    for company_id in tenancy.company_ids():
        try:
            with tenancy.request_scope(), tenancy.bound(company_id):
                purged += sum(
                    services.deleted_items_purge(company=company_id, before=before).values()
                )
        except Exception:
            # One company's failure must not keep the others' rows; the next run retries.
            logger.exception("Purging deleted sales items failed for company %s", company_id)
    return purged
