"""Celery tasks of contacts: interfaces like views, ids in, one service out."""

from __future__ import annotations

import logging

from crm import tenancy
from crm.celery_app import app

logger = logging.getLogger(__name__)


@app.task(name="contacts.tasks.purge_deleted")
def purge_deleted() -> int:
    """Beat, hourly: hard-delete persons and organizations soft-deleted more than
    CRM_SOFT_DELETE_DAYS ago, visiting each company in its own bound transaction. Returns how
    many rows went."""
    # Imported here: the services import models, and celery loads this module early.
    from contacts import services

    purged = 0
    for company_id in tenancy.company_ids():
        try:
            with tenancy.request_scope(), tenancy.bound(company_id):
                purged += services.contacts_purge_deleted(company=company_id)
        except Exception:
            # One company's failure must not keep the others' rows; the next run retries.
            logger.exception("Purging deleted contacts failed for company %s", company_id)
    return purged
