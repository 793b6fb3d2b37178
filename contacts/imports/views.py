"""The import pages (upload, mapping with preview, progress, report) and the CSV exports of
the persons and organizations lists. Thin: parse, call one service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts import exports
from contacts.imports import selectors, services
from contacts.imports.files import MAX_BYTES, ImportFileError
from contacts.imports.forms import MappingForm, UploadForm
from contacts.models import ImportJob, ImportStatus
from contacts.selectors import ListFilters
from crm.access import ItemNotFound
from crm.services import ServiceError
from crm.web.permissions import MemberRequest, member_required


def _job(request: MemberRequest, job_id: int) -> ImportJob:
    try:
        return selectors.access_import_job(membership=request.membership, job_id=job_id)
    except ItemNotFound:
        raise Http404 from None


@require_http_methods(["GET", "POST"])
@member_required
def import_new(request: MemberRequest) -> HttpResponse:
    # "Import" on a list page says which kind of item it lists.
    form = UploadForm(
        request.POST or None, request.FILES or None, initial={"kind": request.GET.get("kind")}
    )
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > MAX_BYTES:
                # Refused on the declared size, before a byte of it is read.
                raise ImportFileError(
                    _("The file is larger than %(size)d MB. Split it into smaller files.")
                    % {"size": MAX_BYTES // (1024 * 1024)}
                )
            job = services.import_job_create(
                company=request.company,
                membership=request.membership,
                kind=form.cleaned_data["kind"],
                file_name=upload.name or "",
                stream=upload,
            )
        except (ImportFileError, ServiceError) as error:
            form.add_error("file", error.message)
        else:
            return redirect("import_job", job_id=job.pk)
    jobs = selectors.import_jobs_recent(membership=request.membership)
    status = 400 if form.errors else 200
    return render(request, "imports/new.html", {"form": form, "jobs": jobs}, status=status)


@require_http_methods(["GET", "POST"])
@member_required
def import_job(request: MemberRequest, job_id: int) -> HttpResponse:
    """The mapping and preview until the run starts; the progress and report after."""
    job = _job(request, job_id)
    if job.status != ImportStatus.MAPPING:
        return render(request, "imports/job.html", {"job": job})
    form = MappingForm(request.POST or None, job=job)
    if request.method == "POST" and form.is_valid():
        try:
            services.import_job_map(
                company=request.company,
                job=job,
                mapping=form.mapping(),
                duplicate_policy=form.cleaned_data["duplicate_policy"],
            )
            if "start" in request.POST:
                services.import_job_start(company=request.company, job=job)
                return redirect("import_job", job_id=job.pk)
        except ServiceError as error:
            form.add_error(None, error.message)
    preview = selectors.import_preview(membership=request.membership, job=job)
    return render(
        request,
        "imports/mapping.html",
        {"job": job, "form": form, "preview": preview},
        status=400 if form.errors else 200,
    )


@require_GET
@member_required
def import_progress(request: MemberRequest, job_id: int) -> HttpResponse:
    """The fragment the progress bar polls (htmx, every second while running)."""
    return render(request, "imports/_progress.html", {"job": _job(request, job_id)})


@require_POST
@member_required
def import_resume(request: MemberRequest, job_id: int) -> HttpResponse:
    try:
        services.import_job_resume(company=request.company, job=_job(request, job_id))
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The import goes on from where it stopped."))
    return redirect("import_job", job_id=job_id)


@require_POST
@member_required
def import_rollback(request: MemberRequest, job_id: int) -> HttpResponse:
    try:
        services.import_job_rollback(
            company=request.company, membership=request.membership, job=_job(request, job_id)
        )
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The import was rolled back."))
    return redirect("import_job", job_id=job_id)


@require_GET
@member_required
def import_failures(request: MemberRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    rows = ([row.number, row.error, *row.values] for row in selectors.import_failed_rows(job=job))
    return exports.csv_response(
        file_name=f"import-{job.pk}-failed-rows.csv",
        header=[_("Row"), _("Reason"), *job.headers],
        rows=rows,
    )


def _filters(request: MemberRequest) -> ListFilters:
    """The list's own filters, so the export holds what the list shows."""

    def number(*names: str) -> int | None:
        # The API's names (owner_id …) or the list page's own (owner …), which its
        # "Export CSV" link passes on as they are.
        for name in names:
            value = request.GET.get(name, "")
            if value.isdigit() and len(value) < 19:
                return int(value)
        return None

    return ListFilters(
        owner_id=number("owner_id", "owner"),
        org_id=number("org_id", "organization"),
        label_id=number("label_id", "label"),
    )


@require_GET
@member_required
def persons_export(request: MemberRequest) -> HttpResponse:
    rows = exports.persons_rows(
        company=request.company, membership=request.membership, filters=_filters(request)
    )
    return exports.csv_response(file_name="persons.csv", header=exports.PERSON_HEADER, rows=rows)


@require_GET
@member_required
def organizations_export(request: MemberRequest) -> HttpResponse:
    rows = exports.organizations_rows(
        company=request.company, membership=request.membership, filters=_filters(request)
    )
    return exports.csv_response(
        file_name="organizations.csv", header=exports.ORGANIZATION_HEADER, rows=rows
    )
