"""The autocomplete of the pickers: the persons, organizations or deals the user may see whose
name matches what they typed (a small list of options, as HTML for htmx)."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from contacts import selectors as contact_selectors
from crm.sales import selectors
from crm.web.permissions import MemberRequest, member_required

LIMIT = 8
MIN_TERM_LENGTH = 2


@require_GET
@member_required
def lookup(request: MemberRequest, kind: str) -> HttpResponse:
    """`?q=` or the picker's own field (`person_name`, …), as htmx sends the typed value."""
    if kind not in ("person", "organization", "deal"):
        raise Http404
    term = (request.GET.get("q") or request.GET.get(f"{kind}_name") or "").strip()
    creates = request.GET.get("creates") == "1"
    options: list[tuple[int, str, str]] = []
    exact = False
    if len(term) >= MIN_TERM_LENGTH:
        if kind == "person":
            persons = contact_selectors.person_search(
                company=request.company, membership=request.membership, term=term, fields={"name"}
            ).order_by("-result_score", "name", "id")[:LIMIT]
            options = [
                (p.pk, p.name, p.organization.name if p.organization else "") for p in persons
            ]
        elif kind == "organization":
            organizations = contact_selectors.organization_search(
                company=request.company, membership=request.membership, term=term, fields={"name"}
            ).order_by("-result_score", "name", "id")[:LIMIT]
            options = [(o.pk, o.name, "") for o in organizations]
        else:
            deals = selectors.deal_list(
                membership=request.membership, filters=selectors.DealFilters(term=term)
            ).order_by("title", "id")[:LIMIT]
            options = [(d.pk, d.title, d.stage.name) for d in deals]
        exact = any(name.casefold() == term.casefold() for _pk, name, _hint in options)
    return render(
        request,
        "sales/_lookup_options.html",
        {
            "options": options,
            "term": term,
            "kind": kind,
            "offer_new": creates and len(term) >= MIN_TERM_LENGTH and not exact,
            "too_short": len(term) < MIN_TERM_LENGTH,
        },
    )
