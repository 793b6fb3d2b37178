"""Celery tasks of the import: ids in, one service out. `import_run` handles one chunk per
task, in the transaction TenantTask opens, so the chunk and its checkpoint commit together;
it enqueues itself for the next chunk after that commit."""

from __future__ import annotations

import logging

from django.db import transaction

from crm import tenancy
from crm.celery_app import TenantTask, app

logger = logging.getLogger(__name__)


@app.task(name="contacts.imports.tasks.import_run", base=TenantTask)
def import_run(*, company_id: int, job_id: int) -> None:
    # Imported here: the services import models, and celery loads this module early.
    from contacts.imports import services
    from crm.models import Company

    company = Company.objects.get(pk=company_id)
    if services.import_chunk_run(company=company, job_id=job_id):
        transaction.on_commit(lambda: import_run.delay(company_id=company_id, job_id=job_id))


@app.task(name="contacts.imports.tasks.import_sweep")
def import_sweep() -> int:
    """Beat, every few minutes: resume running imports whose worker died, visiting each
    company in its own bound transaction. Returns how many were re-enqueued."""
    from contacts.imports import services

    resumed = 0
    for company_id in tenancy.company_ids():
        try:
            with tenancy.request_scope(), tenancy.bound(company_id):
                resumed += services.import_jobs_stalled_resume(company=company_id)
        except Exception:
            # One company's failure must not keep the others' imports stalled.
            logger.exception("Resuming stalled imports failed for company %s", company_id)
    return resumed
