"""The bulk actions of the list pages: assign an owner, add a label, delete. Each goes through
contacts.services item by item (so the change log, hooks and access checks are the same as
for one item), inside the request's transaction: all or nothing."""

from __future__ import annotations

from collections.abc import Sequence

from contacts import representations, selectors, services
from contacts.selectors import ListFilters
from crm.access import ItemNotFound
from crm.models import Company, Membership


def persons_bulk(
    *,
    company: Company,
    membership: Membership,
    ids: Sequence[int],
    action: str,
    owner_id: int | None = None,
    label_id: int | None = None,
) -> int:
    """Apply `action` to these persons; ItemNotFound when any is missing or hidden."""
    if action == "delete":
        return len(services.persons_delete(company=company, membership=membership, person_ids=ids))
    persons = list(
        selectors.person_list(
            company=company, membership=membership, filters=ListFilters(ids=ids)
        ).order_by("id")
    )
    if len(persons) != len(set(ids)):
        raise ItemNotFound
    selectors.persons_attach(company=company, persons=persons)
    for person in persons:
        fields = services.PersonFields()
        if action == "owner" and owner_id is not None:
            fields["owner_id"] = owner_id
        elif action == "label" and label_id is not None:
            current = representations.label_ids(person)
            if label_id in current:
                continue
            fields["label_ids"] = [*current, label_id]
        services.person_update(company=company, membership=membership, person=person, fields=fields)
    return len(persons)


def organizations_bulk(
    *,
    company: Company,
    membership: Membership,
    ids: Sequence[int],
    action: str,
    owner_id: int | None = None,
    label_id: int | None = None,
) -> int:
    if action == "delete":
        return len(
            services.organizations_delete(
                company=company, membership=membership, organization_ids=ids
            )
        )
    organizations = list(
        selectors.organization_list(
            company=company, membership=membership, filters=ListFilters(ids=ids)
        ).order_by("id")
    )
    if len(organizations) != len(set(ids)):
        raise ItemNotFound
    selectors.organizations_attach(company=company, organizations=organizations)
    for organization in organizations:
        fields = services.OrganizationFields()
        if action == "owner" and owner_id is not None:
            fields["owner_id"] = owner_id
        elif action == "label" and label_id is not None:
            current = representations.label_ids(organization)
            if label_id in current:
                continue
            fields["label_ids"] = [*current, label_id]
        services.organization_update(
            company=company, membership=membership, organization=organization, fields=fields
        )
    return len(organizations)
