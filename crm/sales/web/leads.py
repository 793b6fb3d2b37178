"""The lead pages: the inbox (seen / unseen, archive), the Add lead dialog, the detail with
"Convert to deal"."""

from __future__ import annotations

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
from crm.sales import selectors, services
from crm.sales.models import Lead
from crm.sales.web import choices
from crm.sales.web.access import page_access
from crm.sales.web.creation import contact_choice, lead_save_with_contacts
from crm.sales.web.deals import PAGE_SIZE
from crm.sales.web.forms import LeadForm, LeadListFilters, add_item_error
from crm.sales.web.responses import email_slot_url, htmx_redirect
from crm.services import ServiceError
from crm.web.permissions import MemberRequest, member_required


@require_GET
@member_required
def lead_inbox(request: MemberRequest) -> HttpResponse:
    owners = choices.owner_choices(company=request.company)
    form = LeadListFilters(request.GET, owners=owners)
    cleaned: dict[str, Any] = form.cleaned_data if form.is_valid() else {}
    archived = cleaned.get("view") == "archived"
    leads = (
        selectors.lead_list(
            membership=request.membership,
            filters=selectors.LeadFilters(
                archived=archived, owner_id=cleaned.get("owner"), term=cleaned.get("q") or ""
            ),
        )
        .select_related("owner", "person", "organization")
        # Newest first in the inbox, as mail is read.
        .order_by("-created_at", "-pk")
    )
    page = Paginator(leads, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "sales/lead_inbox.html",
        {"form": form, "page": page, "archived": archived, "query": query.urlencode()},
    )


def _lead_fields(cleaned: dict[str, Any]) -> dict[str, Any]:
    amount = cleaned.get("value_amount")
    value = (
        None
        if amount is None
        else {"amount": amount, "currency": cleaned.get("value_currency") or "USD"}
    )
    return {
        "title": cleaned["title"],
        "owner_id": cleaned["owner_id"],
        "value": value,
        "expected_close_date": cleaned.get("expected_close_date"),
        "visible_to": cleaned["visible_to"],
    }


def _lead_form(request: MemberRequest, *, data: Any = None, initial: Any = None) -> LeadForm:
    return LeadForm(data, initial=initial, owners=choices.owner_choices(company=request.company))


@require_http_methods(["GET", "POST"])
@member_required
def lead_create(request: MemberRequest) -> HttpResponse:
    if request.method == "POST":
        form = _lead_form(request, data=request.POST)
        if form.is_valid():
            try:
                lead = lead_save_with_contacts(
                    company=request.company,
                    membership=request.membership,
                    fields=_lead_fields(form.cleaned_data),
                    choice=contact_choice(form.cleaned_data),
                )
            except ServiceError as exc:
                add_item_error(form, exc)
            else:
                messages.success(request, _("Lead added."))
                return htmx_redirect(request, reverse("lead_detail", args=[lead.pk]))
    else:
        form = _lead_form(
            request,
            initial={
                "owner_id": request.user.pk,
                "visible_to": crm_selectors.visibility_defaults(company=request.company)["lead"],
            },
        )
    template = "sales/_lead_form.html" if getattr(request, "htmx", False) else "sales/lead_new.html"
    return render(request, template, {"form": form}, status=400 if form.errors else 200)


def _lead_initial(lead: Lead) -> dict[str, Any]:
    return {
        "title": lead.title,
        "value_amount": lead.value_amount,
        "value_currency": lead.value_currency,
        "owner_id": lead.owner_id,
        "expected_close_date": lead.expected_close_date,
        "visible_to": lead.visible_to,
        "person_id": lead.person_id,
        "person_name": lead.person.name if lead.person else "",
        "organization_id": lead.organization_id,
        "organization_name": lead.organization.name if lead.organization else "",
    }


@require_http_methods(["GET", "POST"])
@member_required
def lead_detail(request: MemberRequest, lead_id: str) -> HttpResponse:
    with page_access():
        lead = selectors.access_lead(membership=request.membership, lead_id=lead_id)
    status = 200
    if request.method == "POST":
        form = _lead_form(request, data=request.POST)
        if form.is_valid():
            try:
                lead_save_with_contacts(
                    company=request.company,
                    membership=request.membership,
                    fields=_lead_fields(form.cleaned_data),
                    choice=contact_choice(form.cleaned_data),
                    lead=lead,
                )
            except ServiceError as exc:
                add_item_error(form, exc)
            else:
                messages.success(request, _("Lead saved."))
                return redirect("lead_detail", lead.pk)
        status = 400
    else:
        if not lead.was_seen:
            # Opening a lead is reading it, as opening a mail is.
            lead = services.lead_update(
                company=request.company,
                membership=request.membership,
                lead=lead,
                fields={"was_seen": True},
            )
        form = _lead_form(request, initial=_lead_initial(lead))
    conversion = None
    if request.GET.get("conversion"):
        conversion = selectors.lead_conversion_get(
            company=request.company, lead_id=lead.pk, conversion_id=request.GET["conversion"]
        )
    return render(
        request,
        "sales/lead_detail.html",
        {
            "lead": lead,
            "form": form,
            "conversion": conversion,
            "changes": crm_selectors.item_changes(
                company=request.company, kind=ItemKind.LEAD, item_key=lead.pk
            )[:50],
            "email_slot_url": email_slot_url(kind="lead", item_id=lead.pk),
        },
        status=status,
    )


@require_POST
@member_required
def lead_archive(request: MemberRequest, lead_id: str) -> HttpResponse:
    """Archive (`archived=1`) or bring back to the inbox (`archived=0`)."""
    with page_access():
        lead = selectors.access_lead(membership=request.membership, lead_id=lead_id)
    archived = request.POST.get("archived") == "1"
    try:
        services.lead_update(
            company=request.company,
            membership=request.membership,
            lead=lead,
            fields={"is_archived": archived},
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Lead archived.") if archived else _("Lead back in the inbox."))
    return redirect("lead_detail", lead.pk)


@require_POST
@member_required
def lead_seen(request: MemberRequest, lead_id: str) -> HttpResponse:
    """Mark as unseen again (`seen=0`) or seen, from the inbox."""
    with page_access():
        lead = selectors.access_lead(membership=request.membership, lead_id=lead_id)
    services.lead_update(
        company=request.company,
        membership=request.membership,
        lead=lead,
        fields={"was_seen": request.POST.get("seen") == "1"},
    )
    return redirect("leads")


@require_POST
@member_required
def lead_convert(request: MemberRequest, lead_id: str) -> HttpResponse:
    """Start the conversion job; the detail then follows it and links to the new deal."""
    with page_access():
        lead = selectors.access_lead(membership=request.membership, lead_id=lead_id)
    try:
        conversion = services.lead_convert_start(
            company=request.company, membership=request.membership, lead=lead
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("lead_detail", lead.pk)
    return redirect(f"{reverse('lead_detail', args=[lead.pk])}?conversion={conversion.pk}")
