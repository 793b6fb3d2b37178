"""The reads behind the list pages: one page of persons or organizations, searched, filtered,
sorted, with what a row shows attached.

Paging is offset + limit with one row fetched beyond the page, and no COUNT(*): counting
100,000 visible rows on every keystroke costs more than the page itself, and the page only
needs to know whether a next one exists. Everything starts from `contacts.selectors`, so a
row, a filter or a search hit is only ever an item the member may see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db.models import F, OrderBy, QuerySet

from contacts import selectors
from contacts.models import Organization, Person
from contacts.selectors import ListFilters
from crm.models import Company, Membership

_T = TypeVar("_T", Person, Organization)

PERSON_SORTS = {
    "name": "name",
    "organization": "organization__name",
    "owner": "owner__name",
    "updated": "updated_at",
}
ORGANIZATION_SORTS = {"name": "name", "owner": "owner__name", "updated": "updated_at"}


@dataclass(frozen=True)
class Page(Generic[_T]):
    items: Sequence[_T]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


# Sort columns that can be empty (a person without an organization). Only these say NULLS
# LAST: on a NOT NULL column it would stop PostgreSQL from reading the (company, column) index
# in order, and every page would sort all the company's rows (90 ms at 100,000 persons).
NULLABLE_SORTS = frozenset({"organization__name"})


def _ordered(queryset: QuerySet[_T], *, column: str, descending: bool) -> QuerySet[_T]:
    # Empty values go last either way; the id breaks ties so that paging never shows a row
    # twice.
    nulls_last = True if column in NULLABLE_SORTS else None
    order: OrderBy = (
        F(column).desc(nulls_last=nulls_last)
        if descending
        else F(column).asc(nulls_last=nulls_last)
    )
    return queryset.order_by(order, "-id" if descending else "id")


def _page(queryset: QuerySet[_T], *, number: int, size: int) -> tuple[list[_T], bool]:
    start = (number - 1) * size
    rows = list(queryset[start : start + size + 1])
    return rows[:size], len(rows) > size


def person_page(
    *, company: Company, membership: Membership, query: dict[str, Any], size: int
) -> Page[Person]:
    filters = ListFilters(
        owner_id=query["owner"], label_id=query["label"], org_id=query["organization"]
    )
    queryset = selectors.person_list(company=company, membership=membership, filters=filters)
    if len(query["q"]) >= selectors.MIN_TERM_LENGTH:
        hits = selectors.person_search(
            company=company, membership=membership, term=query["q"], fields={"name", "email"}
        )
        queryset = queryset.filter(pk__in=hits.values("pk"))
    column = PERSON_SORTS.get(query["sort"], "updated_at")
    queryset = _ordered(queryset, column=column, descending=query["dir"] == "desc")
    items, has_next = _page(queryset, number=query["page"], size=size)
    selectors.persons_attach(company=company, persons=items)
    return Page(items=items, number=query["page"], has_next=has_next)


def organization_page(
    *, company: Company, membership: Membership, query: dict[str, Any], size: int
) -> Page[Organization]:
    filters = ListFilters(owner_id=query["owner"], label_id=query["label"])
    queryset = selectors.organization_list(company=company, membership=membership, filters=filters)
    if len(query["q"]) >= selectors.MIN_TERM_LENGTH:
        hits = selectors.organization_search(
            company=company, membership=membership, term=query["q"], fields={"name", "address"}
        )
        queryset = queryset.filter(pk__in=hits.values("pk"))
    column = ORGANIZATION_SORTS.get(query["sort"], "updated_at")
    queryset = _ordered(queryset, column=column, descending=query["dir"] == "desc")
    items, has_next = _page(queryset, number=query["page"], size=size)
    selectors.organizations_attach(company=company, organizations=items)
    counts = selectors.people_counts(company=company, organization_ids=[o.pk for o in items])
    for organization in items:
        organization.__dict__["people_count"] = counts.get(organization.pk, 0)
    return Page(items=items, number=query["page"], has_next=has_next)


def person_matches(
    *, company: Company, membership: Membership, term: str, exclude_id: int | None = None
) -> list[Person]:
    """The first few persons matching a typed name or address, best first (autocomplete)."""
    term = term.strip()
    if len(term) < selectors.MIN_TERM_LENGTH:
        return []
    hits = selectors.person_search(
        company=company, membership=membership, term=term, fields={"name", "email"}
    )
    if exclude_id is not None:
        hits = hits.exclude(pk=exclude_id)
    return list(hits.order_by("-result_score", "name", "id")[:10])


def organization_matches(
    *, company: Company, membership: Membership, term: str, exclude_id: int | None = None
) -> list[Organization]:
    term = term.strip()
    if len(term) < selectors.MIN_TERM_LENGTH:
        return []
    hits = selectors.organization_search(
        company=company, membership=membership, term=term, fields={"name"}
    )
    if exclude_id is not None:
        hits = hits.exclude(pk=exclude_id)
    return list(hits.order_by("-result_score", "name", "id")[:10])
