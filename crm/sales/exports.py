"""CSV export of the deals and leads lists, through the writer of contacts.exports (which
neutralizes formula injection). `urlpatterns` is mounted by crm.urls at the site root."""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from contacts.exports import csv_response
from crm.models import Membership
from crm.sales import selectors
from crm.web.permissions import MemberRequest, member_required

DEAL_HEADER = (
    _("ID"),
    _("Title"),
    _("Value"),
    _("Currency"),
    _("Status"),
    _("Pipeline"),
    _("Stage"),
    _("Person"),
    _("Organization"),
    _("Owner"),
    _("Expected close date"),
    _("Added"),
)
LEAD_HEADER = (
    _("ID"),
    _("Title"),
    _("Value"),
    _("Currency"),
    _("Person"),
    _("Organization"),
    _("Owner"),
    _("Added"),
)
_PAGE = 1000


def _int(request: HttpRequest, *names: str) -> int | None:
    # The API's names (owner_id …) or the list page's own (owner …), which its "Export CSV"
    # link passes on as they are.
    for name in names:
        value = request.GET.get(name, "")
        if value.isdigit() and len(value) < 19:
            return int(value)
    return None


def deals_rows(*, membership: Membership, filters: selectors.DealFilters) -> Iterable[list[object]]:
    """The deals the member may see under `filters`, by id, a page at a time."""
    queryset = selectors.deal_list(membership=membership, filters=filters)
    last_id = 0
    while True:
        page = list(queryset.filter(pk__gt=last_id).order_by("id")[:_PAGE])
        if not page:
            return
        for deal in page:
            yield [
                deal.pk,
                deal.title,
                deal.value,
                deal.currency,
                deal.status,
                deal.pipeline.name,
                deal.stage.name,
                deal.person.name if deal.person else "",
                deal.organization.name if deal.organization else "",
                deal.owner.name or deal.owner.email,
                deal.expected_close_date or "",
                deal.created_at.isoformat(),
            ]
        last_id = page[-1].pk


def leads_rows(*, membership: Membership, filters: selectors.LeadFilters) -> Iterable[list[object]]:
    queryset = selectors.lead_list(membership=membership, filters=filters).select_related(
        "owner", "person", "organization"
    )
    # lead_list orders by creation; prefetched labels are not needed here.
    for lead in queryset.prefetch_related(None):
        yield [
            lead.pk,
            lead.title,
            lead.value_amount if lead.value_amount is not None else "",
            lead.value_currency,
            lead.person.name if lead.person else "",
            lead.organization.name if lead.organization else "",
            lead.owner.name or lead.owner.email,
            lead.created_at.isoformat(),
        ]


@require_GET
@member_required
def deals_export(request: MemberRequest) -> HttpResponse:
    filters = selectors.DealFilters(
        owner_id=_int(request, "owner_id", "owner"),
        pipeline_id=_int(request, "pipeline_id", "pipeline"),
        stage_id=_int(request, "stage_id"),
        status=request.GET.get("status") or None,
    )
    rows = deals_rows(membership=request.membership, filters=filters)
    return csv_response(file_name="deals.csv", header=DEAL_HEADER, rows=rows)


@require_GET
@member_required
def leads_export(request: MemberRequest) -> HttpResponse:
    filters = selectors.LeadFilters(
        owner_id=_int(request, "owner_id", "owner"),
        archived=request.GET.get("archived") == "1" or request.GET.get("view") == "archived",
    )
    rows = leads_rows(membership=request.membership, filters=filters)
    return csv_response(file_name="leads.csv", header=LEAD_HEADER, rows=rows)


urlpatterns: list[URLPattern | URLResolver] = [
    path("deals/export.csv", deals_export, name="deals_export"),
    path("leads/export.csv", leads_export, name="leads_export"),
]
