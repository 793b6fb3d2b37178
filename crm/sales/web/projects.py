"""The project pages: the board by phase (cards move between phases) and the detail with its
linked deals, persons and organizations, and its Email tab (served by the inbox)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts import selectors as contact_selectors
from crm import selectors as crm_selectors
from crm.access import ItemKind
from crm.sales import selectors, services
from crm.sales.models import Project, ProjectBoard
from crm.sales.web import choices
from crm.sales.web.access import page_access
from crm.sales.web.forms import LinkForm, PhaseMoveForm, ProjectForm, add_item_error
from crm.sales.web.responses import email_slot_url, htmx_redirect
from crm.services import ServiceError
from crm.web.permissions import MemberRequest, member_required

# The project field holding each kind of link, and the through rows the selector prefetched.
LINK_FIELDS = {
    "deal": ("deal_ids", "projectdeal_set", "deal_id"),
    "person": ("person_ids", "projectperson_set", "person_id"),
    "organization": ("org_ids", "projectorganization_set", "organization_id"),
}


def _board(request: MemberRequest, board_id: object) -> tuple[list[ProjectBoard], ProjectBoard]:
    boards = list(selectors.project_board_list(company=request.company))
    if not boards:
        boards = [services.project_board_default_ensure(company=request.company)]
    chosen = next((b for b in boards if str(b.pk) == str(board_id)), boards[0])
    return boards, chosen


def _board_context(request: MemberRequest, *, board_id: object) -> dict[str, Any]:
    boards, board = _board(request, board_id)
    phases = list(selectors.project_phase_list(company=request.company, board_id=board.pk))
    projects = (
        selectors.project_list(
            membership=request.membership, filters=selectors.ProjectFilters(board_id=board.pk)
        )
        .select_related("owner")
        .order_by("-updated_at", "-id")
    )
    columns: dict[int, list[Project]] = {phase.pk: [] for phase in phases}
    for project in projects:
        columns.setdefault(project.phase_id, []).append(project)
    return {
        "boards": boards,
        "board": board,
        "columns": [(phase, columns[phase.pk]) for phase in phases],
        "phase_options": [(phase.pk, phase.name) for phase in phases],
    }


@require_GET
@member_required
def project_board(request: MemberRequest) -> HttpResponse:
    context = _board_context(request, board_id=request.GET.get("board"))
    return render(request, "sales/project_board.html", context)


@require_POST
@member_required
def project_move(request: MemberRequest, project_id: int) -> HttpResponse:
    """Like a deal's move: htmx gets the board back, with status 400 on a refusal."""
    with page_access():
        project = selectors.access_project(membership=request.membership, project_id=project_id)
    form = PhaseMoveForm(request.POST)
    error = ""
    if not form.is_valid():
        error = _("Choose a phase.")
    else:
        try:
            # With the project's own board, the service refuses a phase of another board.
            services.project_update(
                company=request.company,
                membership=request.membership,
                project=project,
                fields={"phase_id": form.cleaned_data["phase_id"], "board_id": project.board_id},
            )
        except ServiceError as exc:
            error = exc.message
    if getattr(request, "htmx", False):
        context = _board_context(request, board_id=project.board_id)
        context["board_error"] = error
        return render(request, "sales/_project_board.html", context, status=400 if error else 200)
    if error:
        messages.error(request, error)
    return redirect(f"{reverse('projects')}?board={project.board_id}")


def _project_form(
    request: MemberRequest, *, board_id: int, data: Any = None, initial: Any = None
) -> ProjectForm:
    return ProjectForm(
        data,
        initial=initial,
        phases=choices.phase_choices(company=request.company, board_id=board_id),
        owners=choices.owner_choices(company=request.company),
    )


def _project_fields(cleaned: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": cleaned["title"],
        "description": cleaned.get("description") or "",
        "status": cleaned["status"],
        "phase_id": cleaned["phase_id"],
        "owner_id": cleaned["owner_id"],
        "start_date": cleaned.get("start_date"),
        "end_date": cleaned.get("end_date"),
        "visible_to": cleaned["visible_to"],
    }


@require_http_methods(["GET", "POST"])
@member_required
def project_create(request: MemberRequest) -> HttpResponse:
    _boards, board = _board(request, request.GET.get("board") or request.POST.get("board"))
    if request.method == "POST":
        form = _project_form(request, board_id=board.pk, data=request.POST)
        if form.is_valid():
            try:
                project = services.project_create(
                    company=request.company,
                    membership=request.membership,
                    fields=_project_fields(form.cleaned_data),
                )
            except ServiceError as exc:
                add_item_error(form, exc)
            else:
                messages.success(request, _("Project added."))
                return htmx_redirect(request, reverse("project_detail", args=[project.pk]))
    else:
        form = _project_form(
            request,
            board_id=board.pk,
            initial={
                "owner_id": request.user.pk,
                "status": "open",
                "visible_to": crm_selectors.visibility_defaults(company=request.company)["project"],
            },
        )
    template = (
        "sales/_project_form.html" if getattr(request, "htmx", False) else "sales/project_new.html"
    )
    return render(
        request, template, {"form": form, "board": board}, status=400 if form.errors else 200
    )


def _linked_ids(project: Project, kind: str) -> list[int]:
    _field, relation, column = LINK_FIELDS[kind]
    return [getattr(row, column) for row in getattr(project, relation).all()]


def _project_page(
    request: MemberRequest, project: Project, *, form: ProjectForm | None = None, status: int = 200
) -> HttpResponse:
    deal_ids = _linked_ids(project, "deal")
    person_ids = _linked_ids(project, "person")
    organization_ids = _linked_ids(project, "organization")
    # Links to items hidden from this user are counted, not shown.
    deals = list(
        selectors.deal_list(
            membership=request.membership, filters=selectors.DealFilters(ids=deal_ids)
        ).order_by("title", "id")
        if deal_ids
        else []
    )
    persons = list(
        contact_selectors.person_list(
            company=request.company,
            membership=request.membership,
            filters=contact_selectors.ListFilters(ids=person_ids),
        )
        .filter(deleted_at__isnull=True)
        .order_by("name", "id")
        if person_ids
        else []
    )
    organizations = list(
        contact_selectors.organization_list(
            company=request.company,
            membership=request.membership,
            filters=contact_selectors.ListFilters(ids=organization_ids),
        )
        .filter(deleted_at__isnull=True)
        .order_by("name", "id")
        if organization_ids
        else []
    )
    hidden = (
        len(deal_ids)
        + len(person_ids)
        + len(organization_ids)
        - len(deals)
        - len(persons)
        - len(organizations)
    )
    initial = {
        "title": project.title,
        "description": project.description,
        "status": project.status,
        "phase_id": project.phase_id,
        "owner_id": project.owner_id,
        "start_date": project.start_date,
        "end_date": project.end_date,
        "visible_to": project.visible_to,
    }
    return render(
        request,
        "sales/project_detail.html",
        {
            "project": project,
            "form": form or _project_form(request, board_id=project.board_id, initial=initial),
            "deals": deals,
            "persons": persons,
            "organizations": organizations,
            "hidden_links": hidden,
            "email_slot_url": email_slot_url(kind="project", item_id=project.pk),
            "changes": crm_selectors.item_changes(
                company=request.company, kind=ItemKind.PROJECT, item_key=project.pk
            )[:50],
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@member_required
def project_detail(request: MemberRequest, project_id: int) -> HttpResponse:
    with page_access():
        project = selectors.access_project(membership=request.membership, project_id=project_id)
    if request.method == "GET":
        return _project_page(request, project)
    form = _project_form(request, board_id=project.board_id, data=request.POST)
    if form.is_valid():
        try:
            services.project_update(
                company=request.company,
                membership=request.membership,
                project=project,
                fields=_project_fields(form.cleaned_data),
            )
        except ServiceError as exc:
            add_item_error(form, exc)
        else:
            messages.success(request, _("Project saved."))
            return redirect("project_detail", project.pk)
    return _project_page(request, project, form=form, status=400)


@require_POST
@member_required
def project_link(request: MemberRequest, project_id: int) -> HttpResponse:
    """Link a deal, person or organization picked in the autocomplete, or unlink one."""
    with page_access():
        project = selectors.access_project(membership=request.membership, project_id=project_id)
    form = LinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Pick an item from the list."))
        return redirect("project_detail", project.pk)
    kind = form.cleaned_data["kind"]
    target = form.cleaned_data["target_id"]
    current = _linked_ids(project, kind)
    wanted = (
        [pk for pk in current if pk != target]
        if form.cleaned_data["remove"]
        else [*current, target]
    )
    try:
        services.project_update(
            company=request.company,
            membership=request.membership,
            project=project,
            fields={LINK_FIELDS[kind][0]: wanted},
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect(f"{reverse('project_detail', args=[project.pk])}#links")
