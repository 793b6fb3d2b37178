"""Reads of the import: a job as its creator (or an admin) may see it, the preview of its
first rows with their problems, and its failed rows for the report."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from contacts.imports import registry
from contacts.imports.kinds import ImportContext
from contacts.imports.services import row_values
from contacts.models import ImportJob, ImportRow, ImportRowOutcome
from crm.access import ItemNotFound
from crm.models import Membership

PREVIEW_ROWS = 20


def access_import_job(*, membership: Membership, job_id: object) -> ImportJob:
    """The job if the member started it or is an admin; ItemNotFound otherwise (the same
    answer for another company's job, a colleague's and a missing one)."""
    queryset = ImportJob.objects.for_company(membership.company_id)
    if not membership.is_admin:
        queryset = queryset.filter(created_by_id=membership.user_id)
    job = queryset.filter(pk=job_id).first() if isinstance(job_id, int) else None
    if job is None:
        raise ItemNotFound
    return job


def import_jobs_recent(*, membership: Membership, limit: int = 10) -> QuerySet[ImportJob]:
    queryset = ImportJob.objects.for_company(membership.company_id)
    if not membership.is_admin:
        queryset = queryset.filter(created_by_id=membership.user_id)
    return queryset.order_by("-created_at")[:limit]


@dataclass(frozen=True)
class PreviewCell:
    text: str
    problem: str


@dataclass(frozen=True)
class PreviewRow:
    number: int
    cells: list[PreviewCell]
    problem_count: int


def import_preview(*, membership: Membership, job: ImportJob) -> list[PreviewRow]:
    """The first rows as they would be read under the job's mapping, each mapped cell with
    the problem that would fail its row (invalid email, unknown owner, bad number…)."""
    handler = registry.handler_for(job.kind)
    context = ImportContext(company=membership.company, membership=membership)
    preview: list[PreviewRow] = []
    rows = ImportRow.objects.for_company(membership.company_id).filter(job_id=job.pk)
    for row in rows.order_by("number")[:PREVIEW_ROWS]:
        problems = handler.check(
            context=context, values=row_values(mapping=job.mapping, cells=row.values)
        )
        cells = []
        for index in range(len(job.headers)):
            name = job.mapping.get(str(index), "")
            text = row.values[index] if index < len(row.values) else ""
            cells.append(PreviewCell(text=text, problem=problems.pop(name, "") if name else ""))
        # Problems of fields no column feeds ("Required." on an unmapped name) go first.
        if problems:
            cells[0] = PreviewCell(cells[0].text, "; ".join(problems.values()))
        count = sum(1 for cell in cells if cell.problem)
        preview.append(PreviewRow(number=row.number, cells=cells, problem_count=count))
    return preview


def import_failed_rows(*, job: ImportJob) -> QuerySet[ImportRow]:
    return (
        ImportRow.objects.for_company(job.company_id)
        .filter(job_id=job.pk, outcome=ImportRowOutcome.FAILED)
        .order_by("number")
    )
