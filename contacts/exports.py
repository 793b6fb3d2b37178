"""CSV export of lists (I4): the writer every export uses, and the persons and organizations
lists.

Spreadsheet programs run a cell that starts with = + - @ (or a tab or carriage return before
one) as a formula, so `=cmd|' /C calc'!A0` in a name would run a command on the reader's
machine. Such cells get a leading apostrophe, which shows the text and runs nothing (OWASP's
advice for CSV injection)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence

from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _

from contacts import selectors
from contacts.models import Organization, Person
from crm.models import Company, Membership

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PAGE = 1000


def cell_neutralize(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def csv_response(
    *, file_name: str, header: Sequence[object], rows: Iterable[Sequence[object]]
) -> HttpResponse:
    """A downloadable CSV, built whole: the rows are read inside the request's transaction,
    which a streaming response would outlive (and row-level security would then hide them)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    # A byte order mark, so Excel reads the file as UTF-8.
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow([cell_neutralize(cell) for cell in header])
    for row in rows:
        writer.writerow([cell_neutralize(cell) for cell in row])
    return response


def _emails(person: Person, attribute: str) -> str:
    return ", ".join(point["value"] for point in person.__dict__.get(attribute, []))


def persons_rows(
    *, company: Company, membership: Membership, filters: selectors.ListFilters
) -> Iterable[list[object]]:
    """The persons the member may see under `filters`, by id, a page at a time."""
    queryset = selectors.person_list(company=company, membership=membership, filters=filters)
    last_id = 0
    while True:
        page = list(queryset.filter(pk__gt=last_id).order_by("id")[:_PAGE])
        if not page:
            return
        selectors.persons_attach(company=company, persons=page)
        for person in page:
            yield [
                person.pk,
                person.name,
                person.first_name,
                person.last_name,
                _emails(person, "attached_emails"),
                _emails(person, "attached_phones"),
                person.organization.name if person.organization else "",
                person.job_title,
                person.owner.name or person.owner.email,
                person.created_at.isoformat(),
            ]
        last_id = page[-1].pk


PERSON_HEADER = (
    _("ID"),
    _("Name"),
    _("First name"),
    _("Last name"),
    _("Email"),
    _("Phone"),
    _("Organization"),
    _("Job title"),
    _("Owner"),
    _("Added"),
)
ORGANIZATION_HEADER = (
    _("ID"),
    _("Name"),
    _("Address"),
    _("Website"),
    _("Industry"),
    _("Owner"),
    _("Added"),
)


def organizations_rows(
    *, company: Company, membership: Membership, filters: selectors.ListFilters
) -> Iterable[list[object]]:
    queryset = selectors.organization_list(company=company, membership=membership, filters=filters)
    last_id = 0
    while True:
        page: list[Organization] = list(queryset.filter(pk__gt=last_id).order_by("id")[:_PAGE])
        if not page:
            return
        for organization in page:
            yield [
                organization.pk,
                organization.name,
                organization.address_value,
                organization.website,
                organization.industry,
                organization.owner.name or organization.owner.email,
                organization.created_at.isoformat(),
            ]
        last_id = page[-1].pk
