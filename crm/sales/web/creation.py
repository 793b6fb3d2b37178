"""Deals and leads made together with the contacts they name (I3): the Add deal and Add lead
dialogs let a user type a person or organization that does not exist yet.

This composes two apps' services, contacts first, in one savepoint, so a refused deal or lead
leaves no orphan contact behind. It lives beside the pages because the dialogs are its only
caller; the API creates contacts and items in separate requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from contacts import services as contact_services
from crm.models import Company, Membership
from crm.sales import services
from crm.sales.models import Deal, Lead


@dataclass(frozen=True)
class ContactChoice:
    """What the dialog's person and organization fields held: a picked id, or a new name."""

    person_id: int | None = None
    person_name: str = ""
    organization_id: int | None = None
    organization_name: str = ""


def contact_choice(cleaned: Mapping[str, Any]) -> ContactChoice:
    """From a `ContactFields` form's cleaned data."""
    return ContactChoice(
        person_id=cleaned.get("person_id"),
        person_name=cleaned.get("person_name") or "",
        organization_id=cleaned.get("organization_id"),
        organization_name=cleaned.get("organization_name") or "",
    )


def _contacts_ensure(
    *, company: Company, membership: Membership, choice: ContactChoice
) -> dict[str, int | None]:
    """The ids to link, creating the contacts typed as new names (a new person joins the
    organization of the same dialog)."""
    organization_id = choice.organization_id
    if organization_id is None and choice.organization_name.strip():
        organization = contact_services.organization_create(
            company=company,
            membership=membership,
            fields={"name": choice.organization_name.strip()},
        )
        organization_id = organization.pk
    person_id = choice.person_id
    if person_id is None and choice.person_name.strip():
        person = contact_services.person_create(
            company=company,
            membership=membership,
            fields={"name": choice.person_name.strip(), "org_id": organization_id},
        )
        person_id = person.pk
    return {"person_id": person_id, "organization_id": organization_id}


def deal_save_with_contacts(
    *,
    company: Company,
    membership: Membership,
    fields: Mapping[str, Any],
    choice: ContactChoice,
    deal: Deal | None = None,
) -> Deal:
    """Create (no `deal`) or update a deal, making the contacts named as new first. Raises
    ServiceError from either app; nothing is kept then."""
    with transaction.atomic():
        links = _contacts_ensure(company=company, membership=membership, choice=choice)
        merged = {**fields, **links}
        if deal is None:
            return services.deal_create(company=company, membership=membership, fields=merged)
        return services.deal_update(
            company=company, membership=membership, deal=deal, fields=merged
        )


def lead_save_with_contacts(
    *,
    company: Company,
    membership: Membership,
    fields: Mapping[str, Any],
    choice: ContactChoice,
    lead: Lead | None = None,
) -> Lead:
    with transaction.atomic():
        links = _contacts_ensure(company=company, membership=membership, choice=choice)
        merged = {**fields, **links}
        if lead is None:
            return services.lead_create(company=company, membership=membership, fields=merged)
        return services.lead_update(
            company=company, membership=membership, lead=lead, fields=merged
        )
