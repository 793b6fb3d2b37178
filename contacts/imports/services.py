"""Writes of the import: create a job from an upload, set its mapping, start, run a chunk,
resume, roll back.

Preconditions as for every service: the caller runs inside a transaction bound to the company
(a request, a TenantTask or `tenancy.bound`), and the job was fetched through
`contacts.imports.selectors.access_import_job` by the same member."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Mapping
from typing import BinaryIO

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from contacts.imports import registry
from contacts.imports.files import table_read
from contacts.imports.kinds import ImportContext, ItemHandler, RowError, RowResult, mapping_guess
from contacts.models import (
    DuplicatePolicy,
    ImportJob,
    ImportRow,
    ImportRowOutcome,
    ImportStatus,
)
from crm.access import ItemForbidden, ItemNotFound
from crm.models import Company, Membership
from crm.services import ServiceError

# Rows per transaction: small enough that a crash loses little work and the progress bar
# moves, large enough that the per-chunk bookkeeping is negligible.
CHUNK_SIZE = 200
_INSERT_BATCH = 1000


def import_job_create(
    *, company: Company, membership: Membership, kind: str, file_name: str, stream: BinaryIO
) -> ImportJob:
    """Read the file (contacts.imports.files.ImportFileError when it is not importable) and
    keep its rows as text; the mapping starts as guessed from the headers."""
    try:
        registry.handler_for(kind)
    except KeyError:
        raise ServiceError(_("Unknown kind of item to import."), field="kind") from None
    table = table_read(stream=stream)
    if not table.rows:
        raise ServiceError(_("The file has a header row but no data rows."), field="file")
    job = ImportJob.objects.create(
        company=company,
        created_by_id=membership.user_id,
        kind=kind,
        file_name=file_name[:255],
        headers=table.headers,
        mapping=handler_mapping_guess(kind=kind, headers=table.headers),
        total_rows=len(table.rows),
    )
    for start in range(0, len(table.rows), _INSERT_BATCH):
        ImportRow.objects.bulk_create(
            ImportRow(company=company, job=job, number=start + offset + 1, values=values)
            for offset, values in enumerate(table.rows[start : start + _INSERT_BATCH])
        )
    return job


def handler_mapping_guess(*, kind: str, headers: list[str]) -> dict[str, str]:
    return mapping_guess(handler=registry.handler_for(kind), headers=headers)


def import_job_map(
    *, company: Company, job: ImportJob, mapping: Mapping[str, str], duplicate_policy: str
) -> ImportJob:
    """Set which column feeds which field ("" ignores the column) and the duplicate policy."""
    if job.status != ImportStatus.MAPPING:
        raise ServiceError(_("This import has already started."))
    if duplicate_policy not in DuplicatePolicy.values:
        raise ServiceError(_("Choose what to do with duplicates."), field="duplicate_policy")
    known = set(registry.handler_for(job.kind).field_names())
    cleaned: dict[str, str] = {}
    for column, name in mapping.items():
        if not name:
            continue
        if name not in known or not column.isdigit() or int(column) >= len(job.headers):
            raise ServiceError(_("Unknown field %(field)s.") % {"field": name[:50]})
        if name in cleaned.values():
            raise ServiceError(
                _("Two columns are mapped to the same field %(field)s.") % {"field": name}
            )
        cleaned[column] = name
    job.mapping, job.duplicate_policy = cleaned, duplicate_policy
    job.save(update_fields=["mapping", "duplicate_policy", "updated_at"])
    return job


def import_job_start(*, company: Company, job: ImportJob) -> ImportJob:
    """Start the run in the background (after this transaction commits)."""
    if job.status != ImportStatus.MAPPING:
        raise ServiceError(_("This import has already started."))
    handler = registry.handler_for(job.kind)
    mapped = set(job.mapping.values())
    labels = {item.name: str(item.label) for item in handler.fields}
    for group in handler.required:
        if not mapped.intersection(group):
            raise ServiceError(
                _("Map a column to %(fields)s.")
                % {"fields": _(" or ").join(labels[name] for name in group)}
            )
    job.status, job.started_at = ImportStatus.RUNNING, timezone.now()
    job.save(update_fields=["status", "started_at", "updated_at"])
    _enqueue(company_id=company.pk, job_id=job.pk)
    return job


def import_job_resume(*, company: Company, job: ImportJob) -> ImportJob:
    """Go on from the last checkpoint of a run that stopped (a crashed worker)."""
    if job.status != ImportStatus.RUNNING:
        raise ServiceError(_("Only a running import can be resumed."))
    job.save(update_fields=["updated_at"])
    _enqueue(company_id=company.pk, job_id=job.pk)
    return job


def _enqueue(*, company_id: int, job_id: int) -> None:
    # Imported here: the task module imports this one.
    from contacts.imports import tasks

    transaction.on_commit(lambda: tasks.import_run.delay(company_id=company_id, job_id=job_id))


def row_values(*, mapping: Mapping[str, str], cells: list[str]) -> dict[str, str]:
    """{field name: cell text} of a row under the mapping."""
    return {
        name: cells[int(column)] if int(column) < len(cells) else ""
        for column, name in mapping.items()
    }


def import_chunk_run(*, company: Company, job_id: int) -> bool:
    """Handle the next CHUNK_SIZE rows of a running job and move its checkpoint, all in the
    caller's transaction; True when rows remain. A job another worker holds is left alone
    (the row lock is taken with SKIP LOCKED), as is one no longer running."""
    job = (
        ImportJob.objects.for_company(company)
        .select_for_update(skip_locked=True)
        .filter(pk=job_id, status=ImportStatus.RUNNING)
        .first()
    )
    if job is None:
        return False
    membership = (
        Membership.objects.for_company(company)
        .filter(user_id=job.created_by_id, is_active=True)
        .select_related("user", "company")
        .first()
    )
    rows = list(
        ImportRow.objects.for_company(company)
        .filter(job_id=job.pk, number__gt=job.processed_rows)
        .order_by("number")[:CHUNK_SIZE]
    )
    handler = registry.handler_for(job.kind)
    counts: Counter[str] = Counter()
    context = ImportContext(company=company, membership=membership) if membership else None
    for row in rows:
        result = _row_apply(
            context=context,
            handler=handler,
            job=job,
            values=row_values(mapping=job.mapping, cells=row.values),
        )
        row.outcome, row.object_id = result.outcome, result.object_id
        row.previous, row.also_created = result.previous, result.also_created
        row.error = result.error
        counts[row.outcome] += 1
    ImportRow.objects.for_company(company).bulk_update(
        rows, ["outcome", "error", "object_id", "previous", "also_created"]
    )
    job.processed_rows = rows[-1].number if rows else job.total_rows
    job.created_count += counts[ImportRowOutcome.CREATED]
    job.updated_count += counts[ImportRowOutcome.UPDATED]
    job.skipped_count += counts[ImportRowOutcome.SKIPPED]
    job.failed_count += counts[ImportRowOutcome.FAILED]
    if job.processed_rows >= job.total_rows:
        job.status, job.finished_at = ImportStatus.DONE, timezone.now()
    job.save(
        update_fields=[
            "processed_rows",
            "created_count",
            "updated_count",
            "skipped_count",
            "failed_count",
            "status",
            "finished_at",
            "updated_at",
        ]
    )
    return job.status == ImportStatus.RUNNING


def _row_apply(
    *,
    context: ImportContext | None,
    handler: ItemHandler,
    job: ImportJob,
    values: dict[str, str],
) -> RowResult:
    if context is None:
        return RowResult(
            ImportRowOutcome.FAILED, error=_("The user who started the import left the company.")
        )
    try:
        # A savepoint per row: a failed row leaves nothing behind and the chunk goes on.
        with transaction.atomic():
            return handler.apply(context=context, values=values, policy=job.duplicate_policy)
    except (RowError, ServiceError) as error:
        return RowResult(ImportRowOutcome.FAILED, error=str(error.message))


def import_job_rollback(*, company: Company, membership: Membership, job: ImportJob) -> ImportJob:
    """Undo the run in one transaction: items it updated get their recorded values back, items
    it created (and the organizations or persons made on the way) are deleted, newest row
    first. Waits for a chunk in progress (row lock), which then finds the job rolled back."""
    job = ImportJob.objects.for_company(company).select_for_update().get(pk=job.pk)
    if job.status not in (ImportStatus.RUNNING, ImportStatus.DONE):
        raise ServiceError(_("Only a started import can be rolled back."))
    context = ImportContext(company=company, membership=membership)
    rows = (
        ImportRow.objects.for_company(company)
        .filter(job_id=job.pk, outcome__in=[ImportRowOutcome.CREATED, ImportRowOutcome.UPDATED])
        .order_by("-number")
    )
    handler = registry.handler_for(job.kind)
    try:
        for row in rows.iterator(chunk_size=500):
            if row.outcome == ImportRowOutcome.UPDATED and row.previous is not None:
                handler.restore(context=context, object_id=row.object_id, previous=row.previous)
            elif row.outcome == ImportRowOutcome.CREATED:
                handler.delete(context=context, object_id=row.object_id)
            for kind, object_id in reversed(row.also_created):
                registry.handler_for(kind).delete(context=context, object_id=object_id)
    except ServiceError as error:
        raise ServiceError(
            _("The import could not be rolled back: %(error)s") % {"error": error.message}
        ) from None
    except (ItemNotFound, ItemForbidden):
        # An item it made was since hidden from this member (given away, made private).
        raise ServiceError(
            _("The import could not be rolled back: you can no longer see all its items.")
        ) from None
    job.status, job.finished_at = ImportStatus.ROLLED_BACK, timezone.now()
    job.save(update_fields=["status", "finished_at", "updated_at"])
    return job


def import_jobs_stalled_resume(*, company: Company | int, stale_after_seconds: int = 300) -> int:
    """Re-enqueue running jobs whose checkpoint has not moved for a while (their worker
    died); how many. A job still being worked on is skipped by its row lock anyway."""
    company_id = company if isinstance(company, int) else company.pk
    cutoff = timezone.now() - datetime.timedelta(seconds=stale_after_seconds)
    ids = list(
        ImportJob.objects.for_company(company_id)
        .filter(status=ImportStatus.RUNNING, updated_at__lt=cutoff)
        .values_list("pk", flat=True)
    )
    for job_id in ids:
        _enqueue(company_id=company_id, job_id=job_id)
    return len(ids)
