"""The values of smart fields (B6) for one message: what `inbox.smartfields` fills
`{{person.first_name}}`, `{{deal.value}}`, … with, gathered for the sender from the items the
message is linked to, and the composer's preview of a template with them.

Only items the sender may see give values (`crm.access`, live items only): a hidden deal
fills nothing, as if none were linked (sending with it is refused anyway, `inbox.sending`).

Where each item comes from:
- `deal`, `lead`, `project`: the item the message is linked to;
- `person`: the one linked (`person_id`, e.g. a reply's linked person), else the person the
  first "to" address belongs to (`recipient_address`: the greeting is for who reads it), else
  the deal's or lead's person;
- `organization`: the person's, else the deal's or lead's;
- `user`: the sender; `company`: the sender's company.

`field_menu` is the "Insert field" menu of the editors (templates, signatures, composer).
"""

from __future__ import annotations

import decimal
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from contacts import selectors as contacts_selectors
from contacts.models import Organization, Person, PersonEmail, PersonPhone
from crm import access
from crm.models import Membership
from crm.sales.models import Deal, Lead, Project
from inbox import mime, sanitize, smartfields

_Item = TypeVar("_Item", Deal, Lead, Project, Person, Organization)


def _visible(queryset: QuerySet[_Item], membership: Membership, item_id: int | str) -> _Item | None:
    """The live item with this id if the member may see it, else None."""
    live = queryset.filter(deleted_at__isnull=True)
    try:
        return access.visible_items(live, membership=membership).filter(Q(pk=item_id)).first()
    except (ValueError, TypeError, ValidationError):  # not an id at all ("abc" for a lead)
        return None


def _money(amount: decimal.Decimal, currency: str) -> str:
    # As the deal pages show it, locale-free: "1,500 EUR", "1,500.50 EUR".
    text = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    return f"{text} {currency}".strip()


def _first_value(rows: Iterable[str]) -> str:
    return next(iter(rows), "")


def _person_fields(person: Person) -> dict[str, str | None]:
    email = _first_value(
        PersonEmail.objects.for_company(person.company_id)
        .filter(person=person)
        .order_by("-primary", "position", "pk")
        .values_list("value", flat=True)[:1]
    )
    phone = _first_value(
        PersonPhone.objects.for_company(person.company_id)
        .filter(person=person)
        .order_by("-primary", "position", "pk")
        .values_list("value", flat=True)[:1]
    )
    return {
        "name": person.name,
        "first_name": person.first_name or smartfields.first_name(person.name),
        "last_name": person.last_name,
        "email": email,
        "phone": phone,
        "job_title": person.job_title,
    }


def _recipient_person(membership: Membership, recipient: str) -> Person | None:
    """The person (the first one the user may see) an address belongs to; the recipient
    may be written "Name <address>"."""
    address = parseaddr(recipient)[1] or recipient
    found = contacts_selectors.persons_by_addresses(
        company=membership.company_id, addresses=[address]
    )
    ids = [pk for ids in found.values() for pk in ids]
    if not ids:
        return None
    persons = Person.objects.for_company(membership.company_id).filter(
        pk__in=ids, deleted_at__isnull=True
    )
    return access.visible_items(persons, membership=membership).order_by("pk").first()


def field_values(
    *,
    membership: Membership,
    deal_id: int | None = None,
    lead_id: str | None = None,
    project_id: int | None = None,
    person_id: int | None = None,
    recipient_address: str | None = None,
) -> smartfields.FieldValues:
    """The smart field values for a message the member sends, linked to these items (each
    optional). An item that is missing or hidden from the member gives no values."""
    company = membership.company_id
    values: dict[str, dict[str, str | None]] = {}
    item_person_id: int | None = None
    item_organization_id: int | None = None

    if deal_id is not None:
        deals = Deal.objects.for_company(company).select_related("stage")
        deal = _visible(deals, membership, deal_id)
        if deal is not None:
            values["deal"] = {
                "title": deal.title,
                "value": _money(deal.value, deal.currency),
                "currency": deal.currency,
                "stage": deal.stage.name,
            }
            item_person_id, item_organization_id = deal.person_id, deal.organization_id
    if lead_id is not None:
        lead = _visible(Lead.objects.for_company(company), membership, lead_id)
        if lead is not None:
            values["lead"] = {"title": lead.title}
            item_person_id = item_person_id or lead.person_id
            item_organization_id = item_organization_id or lead.organization_id
    if project_id is not None:
        project = _visible(Project.objects.for_company(company), membership, project_id)
        if project is not None:
            values["project"] = {"title": project.title}

    persons = Person.objects.for_company(company)
    person = _visible(persons, membership, person_id) if person_id is not None else None
    if person is None and recipient_address:
        person = _recipient_person(membership, recipient_address)
    if person is None and item_person_id is not None:
        person = _visible(persons, membership, item_person_id)
    if person is not None:
        values["person"] = _person_fields(person)

    organizations = Organization.objects.for_company(company)
    organization = None
    if person is not None and person.organization_id is not None:
        organization = _visible(organizations, membership, person.organization_id)
    if organization is None and item_organization_id is not None:
        organization = _visible(organizations, membership, item_organization_id)
    if organization is not None:
        values["organization"] = {
            "name": organization.name,
            "address": organization.address_value,
        }

    user = membership.user
    user_name = user.name or user.display_name
    values["user"] = {
        "name": user_name,
        "first_name": smartfields.first_name(user_name),
        "email": user.email,
    }
    values["company"] = {"name": membership.company.name}
    return values


@dataclass(frozen=True)
class Preview:
    """A message as it would be sent: subject and body filled (the body cleaned, ready to
    show), and the fields to warn about, in the order they first appear."""

    subject: str
    body_html: str
    missing: tuple[str, ...]  # known fields that get no value here: sent as empty text
    unknown: tuple[str, ...]  # not fields at all (a typo): sent as written


def _merged(*parts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for part in parts for name in part))


def preview(
    *,
    membership: Membership,
    subject: str,
    body_html: str,
    deal_id: int | None = None,
    lead_id: str | None = None,
    project_id: int | None = None,
    person_id: int | None = None,
    recipient_address: str | None = None,
) -> Preview:
    """Fill a subject and body (a template's, or the composer's) for the message's links and
    first recipient, as sending will."""
    values: smartfields.FieldValues = {}
    if smartfields.fields_used(f"{subject}\n{body_html}"):
        values = field_values(
            membership=membership,
            deal_id=deal_id,
            lead_id=lead_id,
            project_id=project_id,
            person_id=person_id,
            recipient_address=recipient_address,
        )
    filled_subject = smartfields.render(subject, values, as_html=False)
    filled_body = smartfields.render(body_html, values, as_html=True)
    return Preview(
        subject=mime.clean_header_text(filled_subject.text),
        body_html=sanitize.sanitize_authored_html(filled_body.text) if body_html.strip() else "",
        missing=_merged(filled_subject.missing, filled_body.missing),
        unknown=_merged(filled_subject.unknown, filled_body.unknown),
    )


# --- The "Insert field" menu ---------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChoice:
    token: str  # "{{person.first_name}}": what the editor inserts
    label: str


@dataclass(frozen=True)
class FieldGroup:
    label: str
    choices: tuple[FieldChoice, ...]


def _item_labels() -> dict[str, str]:
    return {
        "person": _("Person"),
        "organization": _("Organization"),
        "deal": _("Deal"),
        "lead": _("Lead"),
        "project": _("Project"),
        "user": _("You (the sender)"),
        "company": _("Your company"),
    }


def field_menu(*, items: Collection[str] | None = None) -> list[FieldGroup]:
    """`smartfields.FIELDS` as the editors' menu, by item, in the user's language; `items`
    narrows it (a signature has no deal: "user" and "company")."""
    labels = _item_labels()
    return [
        FieldGroup(
            label=labels.get(item, item),
            choices=tuple(
                FieldChoice(token="{{" + f"{item}.{name}" + "}}", label=_(label))
                for name, label in fields.items()
            ),
        )
        for item, fields in smartfields.FIELDS.items()
        if items is None or item in items
    ]
