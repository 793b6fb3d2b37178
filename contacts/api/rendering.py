"""The response bodies of the contacts API, built from `contacts.representations` (one place
for the shapes, shared with the webhook payloads). Each function takes rows already loaded by a
selector and adds at most one query per page (v1's people counts), never one per row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from contacts import representations, selectors
from contacts.models import Organization, OrganizationRelation, Person
from contacts.selectors import RelationSeen, RelationSide
from crm.api.schema import envelope
from crm.models import Company

# v1 says what the other organization is from the one asked about in Pipedrive's words.
CALCULATED_TYPE = {
    RelationSide.PARENT: "parent",
    RelationSide.SUBSIDIARY: "daughter",
    RelationSide.RELATED: "related",
}


def _with_includes(body: dict[str, Any], include: frozenset[str]) -> dict[str, Any]:
    return {**body, **representations.include_values(include)} if include else body


def persons_v2(
    persons: Sequence[Person], *, company: Company | int, include: frozenset[str] = frozenset()
) -> list[Any]:
    selectors.persons_attach(company=company, persons=persons)
    return [_with_includes(representations.person_v2(person), include) for person in persons]


def organizations_v2(
    organizations: Sequence[Organization],
    *,
    company: Company,
    include: frozenset[str] = frozenset(),
) -> list[Any]:
    counts = (
        selectors.people_counts(company=company, organization_ids=[o.pk for o in organizations])
        if "people_count" in include
        else {}
    )
    selectors.organizations_attach(company=company, organizations=organizations)
    bodies = []
    for organization in organizations:
        body = _with_includes(representations.organization_v2(organization), include)
        if "people_count" in include:
            body["people_count"] = counts.get(organization.pk, 0)
        bodies.append(body)
    return bodies


def persons_v1(persons: Sequence[Person], *, company: Company) -> list[Any]:
    selectors.persons_attach(company=company, persons=persons)
    counts = selectors.people_counts(
        company=company, organization_ids=[person.organization_id for person in persons]
    )
    return [representations.person_v1(person, people_counts=counts) for person in persons]


def organizations_v1(organizations: Sequence[Organization], *, company: Company) -> list[Any]:
    selectors.organizations_attach(company=company, organizations=organizations)
    counts = selectors.people_counts(
        company=company, organization_ids=[organization.pk for organization in organizations]
    )
    return [
        representations.organization_v1(organization, people_count=counts.get(organization.pk, 0))
        for organization in organizations
    ]


def related_objects_v1(
    *,
    company: Company,
    persons: Sequence[Person] = (),
    organizations: Sequence[Organization] = (),
) -> dict[str, Any]:
    """v1's `related_objects`: the users and organizations the rows point at, by id."""
    users: dict[str, Any] = {}
    orgs: dict[str, Any] = {}
    counts = selectors.people_counts(
        company=company, organization_ids=[person.organization_id for person in persons]
    )
    for person in persons:
        users[str(person.owner_id)] = representations.user_v1(person.owner)
        organization = person.organization
        if organization is not None and organization.deleted_at is None:
            orgs[str(organization.pk)] = {
                "id": organization.pk,
                **representations.organization_ref_v1(
                    organization, people_count=counts.get(organization.pk, 0)
                ),
            }
    for organization in organizations:
        users[str(organization.owner_id)] = representations.user_v1(organization.owner)
    related: dict[str, Any] = {"user": users}
    if orgs:
        related["organization"] = orgs
    return related


def person_search_item(person: Person, *, v2: bool) -> dict[str, Any]:
    organization = person.organization
    item: dict[str, Any] = {
        "id": person.pk,
        "type": "person",
        "name": person.name,
        "phones": [phone["value"] for phone in representations.person_phones(person)],
        "emails": [email["value"] for email in representations.person_emails(person)],
        "visible_to": person.visible_to if v2 else str(person.visible_to),
        "owner": {"id": person.owner_id},
        "organization": (
            {"id": organization.pk, "name": organization.name, "address": None}
            if organization is not None and organization.deleted_at is None
            else None
        ),
        "custom_fields": [],
        "notes": [person.notes] if person.notes else [],
    }
    if v2:
        item["update_time"] = representations.v2_time(person.updated_at)
    return item


def organization_search_item(organization: Organization, *, v2: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": organization.pk,
        "type": "organization",
        "name": organization.name,
        "address": organization.address_value or None,
        "visible_to": organization.visible_to if v2 else str(organization.visible_to),
        "owner": {"id": organization.owner_id},
        "custom_fields": [],
        "notes": [],
    }
    if v2:
        item["update_time"] = representations.v2_time(organization.updated_at)
    return item


def search_results(rows: Sequence[Any], *, company: Company | int, v2: bool) -> dict[str, Any]:
    selectors.persons_attach(company=company, persons=[r for r in rows if isinstance(r, Person)])
    items = []
    for row in rows:
        item = (
            person_search_item(row, v2=v2)
            if isinstance(row, Person)
            else organization_search_item(row, v2=v2)
        )
        items.append({"result_score": round(float(row.result_score), 4), "item": item})
    return {"items": items}


def _org_ref(organization: Organization, counts: dict[int, int]) -> dict[str, Any]:
    return representations.organization_ref_v1(
        organization, people_count=counts.get(organization.pk, 0)
    )


def relation_v1(
    relation: OrganizationRelation,
    *,
    company: Company,
    seen_from: int | None = None,
) -> dict[str, Any]:
    """Pipedrive's OrganizationRelationship; `calculated_*` from `seen_from` (the owner when
    absent)."""
    owner, linked = relation.organization, relation.related_organization
    counts = selectors.people_counts(company=company, organization_ids=[owner.pk, linked.pk])
    viewpoint = seen_from if seen_from in (owner.pk, linked.pk) else owner.pk
    other = linked if viewpoint == owner.pk else owner
    side = selectors.side_of(relation, organization_id=viewpoint)
    return {
        "id": relation.pk,
        "type": relation.kind,
        "rel_owner_org_id": _org_ref(owner, counts),
        "rel_linked_org_id": _org_ref(linked, counts),
        "add_time": representations.v1_time(relation.created_at),
        "update_time": representations.v1_time(relation.created_at),
        "active_flag": True,
        "calculated_type": CALCULATED_TYPE[side],
        "calculated_related_org_id": _org_ref(other, counts),
        "related_organization_name": other.name,
    }


def relations_v1(
    seen: Sequence[RelationSeen], *, company: Company, organization_id: int
) -> list[Any]:
    return [relation_v1(view.relation, company=company, seen_from=organization_id) for view in seen]


def documented(name: str, *, paging: str | None = None, many: bool = False) -> Any:
    """The envelope of a response documented as a free-form object (the shapes are those of
    contacts.representations, described in the endpoint's description)."""
    data: serializers.Field[Any, Any, Any, Any] = (
        serializers.ListField(child=serializers.DictField()) if many else serializers.DictField()
    )
    response = envelope(name=name, data=data, paging=paging)  # type: ignore[arg-type]
    return OpenApiResponse(response=response)
