"""The deal pages: the pipeline board, the list, the detail, the Add deal dialog, and the small
fragments of a person's or organization's deals and leads that the contact pages include.

Views parse the request, call one selector or service and render; every deal comes through
crm.sales.selectors (the user's access applied in the query)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import selectors as crm_selectors
from crm.access import ItemKind
from crm.models import LabelKind
from crm.sales import selectors, services
from crm.sales.models import Deal, DealParticipant, DealStatus, Pipeline, Stage
from crm.sales.web import choices
from crm.sales.web.access import page_access
from crm.sales.web.creation import contact_choice, deal_save_with_contacts
from crm.sales.web.forms import (
    DealForm,
    DealListFilters,
    MoveForm,
    NewLabelForm,
    StatusForm,
    add_item_error,
)
from crm.sales.web.responses import email_slot_url, htmx_redirect
from crm.services import ServiceError, label_create
from crm.web.permissions import MemberRequest, member_required

PAGE_SIZE = 50
FRAGMENT_LIMIT = 50
LIST_SORTS = {
    "-updated": ("-updated_at", "-id"),
    "title": ("title", "id"),
    "-value": ("-value", "-id"),
    "expected_close": ("expected_close_date", "id"),
    "-created": ("-created_at", "-id"),
}


# --- The board -----------------------------------------------------------------------------------


@dataclass
class Column:
    stage: Stage
    deals: list[Deal] = field(default_factory=list)
    totals: dict[str, Decimal] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.deals)

    @property
    def sorted_totals(self) -> list[tuple[str, Decimal]]:
        return sorted(self.totals.items())


def _board_pipeline(request: MemberRequest, pipeline_id: object) -> tuple[list[Pipeline], Pipeline]:
    pipelines = list(selectors.pipeline_list(company=request.company))
    if not pipelines:
        pipelines = [services.pipeline_default_ensure(company=request.company)]
    chosen = next((p for p in pipelines if str(p.pk) == str(pipeline_id)), pipelines[0])
    return pipelines, chosen


def _board_context(request: MemberRequest, *, pipeline_id: object) -> dict[str, Any]:
    """The open deals of one pipeline by stage, with count and value per currency per stage.
    Totals are summed from the loaded cards, so they count exactly what the user sees."""
    pipelines, pipeline = _board_pipeline(request, pipeline_id)
    stages = list(selectors.stage_list(company=request.company, pipeline_id=pipeline.pk))
    columns = {stage.pk: Column(stage=stage) for stage in stages}
    deals = selectors.deal_list(
        membership=request.membership,
        filters=selectors.DealFilters(pipeline_id=pipeline.pk, status=DealStatus.OPEN),
    ).order_by("-updated_at", "-id")
    for deal in deals:
        column = columns.get(deal.stage_id)
        if column is None:
            continue
        column.deals.append(deal)
        column.totals[deal.currency] = column.totals.get(deal.currency, Decimal(0)) + deal.value
    return {
        "pipelines": pipelines,
        "pipeline": pipeline,
        "columns": list(columns.values()),
        "stage_options": [(stage.pk, stage.name) for stage in stages],
    }


@require_GET
@member_required
def board(request: MemberRequest) -> HttpResponse:
    context = _board_context(request, pipeline_id=request.GET.get("pipeline"))
    return render(request, "sales/deal_board.html", context)


@require_POST
@member_required
def deal_move(request: MemberRequest, deal_id: int) -> HttpResponse:
    """Drop a card on a stage of the same pipeline (drag and drop, or the "Move to stage"
    select). htmx gets the board back, re-read; a refusal comes with status 400 and the board
    as it is, so the card is back where it was."""
    with page_access():
        deal = selectors.access_deal(membership=request.membership, deal_id=deal_id)
    form = MoveForm(request.POST)
    error = ""
    if not form.is_valid():
        error = _("Choose a stage.")
    else:
        try:
            # With the deal's own pipeline, the service refuses a stage of another one.
            services.deal_update(
                company=request.company,
                membership=request.membership,
                deal=deal,
                fields={"stage_id": form.cleaned_data["stage_id"], "pipeline_id": deal.pipeline_id},
            )
        except ServiceError as exc:
            error = exc.message
    if getattr(request, "htmx", False):
        context = _board_context(request, pipeline_id=deal.pipeline_id)
        context["board_error"] = error
        return render(request, "sales/_board.html", context, status=400 if error else 200)
    if error:
        messages.error(request, error)
    return redirect(f"{reverse('deals')}?pipeline={deal.pipeline_id}")


# --- The list ------------------------------------------------------------------------------------


@require_GET
@member_required
def deal_list(request: MemberRequest) -> HttpResponse:
    owners = choices.owner_choices(company=request.company)
    pipelines = [(p.pk, p.name) for p in selectors.pipeline_list(company=request.company)]
    form = DealListFilters(request.GET, owners=owners, pipelines=pipelines)
    cleaned: dict[str, Any] = form.cleaned_data if form.is_valid() else {}
    deals = selectors.deal_list(
        membership=request.membership,
        filters=selectors.DealFilters(
            status=cleaned.get("status") or None,
            owner_id=cleaned.get("owner"),
            pipeline_id=cleaned.get("pipeline"),
        ),
    ).order_by(*LIST_SORTS.get(cleaned.get("sort") or "-updated", LIST_SORTS["-updated"]))
    page = Paginator(deals, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "sales/deal_list.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


# --- Add deal ------------------------------------------------------------------------------------


def _deal_form(request: MemberRequest, *, data: Any = None, initial: Any = None) -> DealForm:
    stages = selectors.stage_list(company=request.company)
    return DealForm(
        data,
        initial=initial,
        stages=choices.stage_choices(stages=stages),
        owners=choices.owner_choices(company=request.company),
        labels=choices.deal_label_choices(company=request.company),
    )


def _deal_fields(cleaned: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": cleaned["title"],
        "value": cleaned.get("value") or 0,
        "currency": cleaned["currency"],
        "stage_id": cleaned["stage_id"],
        "owner_id": cleaned["owner_id"],
        "expected_close_date": cleaned.get("expected_close_date"),
        "visible_to": cleaned["visible_to"],
        "label_ids": cleaned.get("label_ids") or [],
    }


@require_http_methods(["GET", "POST"])
@member_required
def deal_create(request: MemberRequest) -> HttpResponse:
    """The Add deal dialog (a fragment for htmx, a page otherwise)."""
    if request.method == "POST":
        form = _deal_form(request, data=request.POST)
        if form.is_valid():
            try:
                deal = deal_save_with_contacts(
                    company=request.company,
                    membership=request.membership,
                    fields=_deal_fields(form.cleaned_data),
                    choice=contact_choice(form.cleaned_data),
                )
            except ServiceError as exc:
                add_item_error(form, exc)
            else:
                messages.success(request, _("Deal added."))
                return htmx_redirect(request, reverse("deal_detail", args=[deal.pk]))
    else:
        form = _deal_form(
            request,
            initial={
                "owner_id": request.user.pk,
                "stage_id": request.GET.get("stage"),
                "visible_to": crm_selectors.visibility_defaults(company=request.company)["deal"],
                "currency": "USD",
            },
        )
    template = "sales/_deal_form.html" if getattr(request, "htmx", False) else "sales/deal_new.html"
    return render(request, template, {"form": form}, status=400 if form.errors else 200)


# --- The detail ----------------------------------------------------------------------------------


def _deal_initial(deal: Deal) -> dict[str, Any]:
    return {
        "title": deal.title,
        "value": deal.value,
        "currency": deal.currency,
        "stage_id": deal.stage_id,
        "owner_id": deal.owner_id,
        "expected_close_date": deal.expected_close_date,
        "visible_to": deal.visible_to,
        "label_ids": [label.pk for label in deal.labels.all()],
        "person_id": deal.person_id,
        "person_name": deal.person.name if deal.person else "",
        "organization_id": deal.organization_id,
        "organization_name": deal.organization.name if deal.organization else "",
    }


def _deal_page(
    request: MemberRequest, deal: Deal, *, form: DealForm | None = None, status: int = 200
) -> HttpResponse:
    participants = (
        DealParticipant.objects.for_company(request.company)
        .filter(deal=deal)
        .select_related("person")
        .order_by("created_at", "id")
    )
    return render(
        request,
        "sales/deal_detail.html",
        {
            "deal": deal,
            "form": form or _deal_form(request, initial=_deal_initial(deal)),
            "label_form": NewLabelForm(),
            "participants": participants,
            "changes": crm_selectors.item_changes(
                company=request.company, kind=ItemKind.DEAL, item_key=deal.pk
            )[:50],
            "email_slot_url": email_slot_url(kind="deal", item_id=deal.pk),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@member_required
def deal_detail(request: MemberRequest, deal_id: int) -> HttpResponse:
    with page_access():
        deal = selectors.access_deal(membership=request.membership, deal_id=deal_id, deleted=True)
    if request.method == "GET" or deal.deleted_at is not None:
        return _deal_page(request, deal)
    form = _deal_form(request, data=request.POST)
    if form.is_valid():
        try:
            deal_save_with_contacts(
                company=request.company,
                membership=request.membership,
                fields=_deal_fields(form.cleaned_data),
                choice=contact_choice(form.cleaned_data),
                deal=deal,
            )
        except ServiceError as exc:
            add_item_error(form, exc)
        else:
            messages.success(request, _("Deal saved."))
            return redirect("deal_detail", deal.pk)
    return _deal_page(request, deal, form=form, status=400)


@require_POST
@member_required
def deal_status(request: MemberRequest, deal_id: int) -> HttpResponse:
    """Won, lost (with the reason asked in a small dialog), or reopened."""
    with page_access():
        deal = selectors.access_deal(membership=request.membership, deal_id=deal_id)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose won, lost or open."))
        return redirect("deal_detail", deal.pk)
    fields: dict[str, Any] = {"status": form.cleaned_data["status"]}
    if fields["status"] == DealStatus.LOST:
        fields["lost_reason"] = form.cleaned_data["lost_reason"]
    try:
        services.deal_update(
            company=request.company, membership=request.membership, deal=deal, fields=fields
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("Deal marked %(status)s.") % {"status": deal.get_status_display()}
        )
    return redirect("deal_detail", deal.pk)


@require_POST
@member_required
def deal_delete(request: MemberRequest, deal_id: int) -> HttpResponse:
    with page_access():
        deal = selectors.access_deal(membership=request.membership, deal_id=deal_id)
    services.deal_delete(company=request.company, membership=request.membership, deal=deal)
    messages.success(request, _("Deal deleted. You can restore it for a while."))
    return redirect("deal_detail", deal.pk)


@require_POST
@member_required
def deal_restore(request: MemberRequest, deal_id: int) -> HttpResponse:
    with page_access():
        deal = selectors.access_deal(membership=request.membership, deal_id=deal_id, deleted=True)
    services.deal_restore(company=request.company, membership=request.membership, deal=deal)
    messages.success(request, _("Deal restored."))
    return redirect("deal_detail", deal.pk)


@require_POST
@member_required
def deal_label_new(request: MemberRequest, deal_id: int) -> HttpResponse:
    """ "+ New label" inline: make the label (or find it by name) and put it on the deal."""
    with page_access():
        deal = selectors.access_deal(membership=request.membership, deal_id=deal_id)
    form = NewLabelForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("A label needs a name."))
        return redirect("deal_detail", deal.pk)
    try:
        label = label_create(
            company=request.company,
            kind=LabelKind.DEAL,
            name=form.cleaned_data["name"],
            color=form.cleaned_data["color"],
        )
        current = [existing.pk for existing in deal.labels.all()]
        services.deal_update(
            company=request.company,
            membership=request.membership,
            deal=deal,
            fields={"label_ids": [*current, label.pk]},
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect(f"{reverse('deal_detail', args=[deal.pk])}#labels")


@require_POST
@member_required
def deal_participant(request: MemberRequest, deal_id: int) -> HttpResponse:
    """Add a participant picked in the autocomplete, or remove one."""
    with page_access():
        deal = selectors.access_deal(membership=request.membership, deal_id=deal_id)
    try:
        person_id = int(request.POST.get("person_id", ""))
    except ValueError:
        messages.error(request, _("Pick a person from the list."))
        return redirect("deal_detail", deal.pk)
    try:
        if request.POST.get("remove"):
            services.deal_participant_remove(
                company=request.company, deal=deal, person_id=person_id
            )
        else:
            services.deal_participant_add(
                company=request.company,
                membership=request.membership,
                deal=deal,
                person_id=person_id,
            )
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect(f"{reverse('deal_detail', args=[deal.pk])}#participants")


# --- Fragments for the contact pages -----------------------------------------------------------


def _items_fragment(
    request: MemberRequest, *, person_id: int | None, organization_id: int | None
) -> HttpResponse:
    deals = selectors.deal_list(
        membership=request.membership,
        filters=selectors.DealFilters(person_id=person_id, organization_id=organization_id),
    ).order_by("-updated_at", "-id")[:FRAGMENT_LIMIT]
    leads = selectors.lead_list(
        membership=request.membership,
        filters=selectors.LeadFilters(person_id=person_id, organization_id=organization_id),
    )[:FRAGMENT_LIMIT]
    return render(
        request, "sales/_contact_items.html", {"deals": list(deals), "leads": list(leads)}
    )


@require_GET
@member_required
def person_deals_fragment(request: MemberRequest, person_id: int) -> HttpResponse:
    with page_access():
        selectors.access_person(membership=request.membership, person_id=person_id)
    return _items_fragment(request, person_id=person_id, organization_id=None)


@require_GET
@member_required
def organization_deals_fragment(request: MemberRequest, organization_id: int) -> HttpResponse:
    with page_access():
        selectors.access_organization(
            membership=request.membership, organization_id=organization_id
        )
    return _items_fragment(request, person_id=None, organization_id=organization_id)
