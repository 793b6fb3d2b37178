"""Reads of persons and organizations. Every function takes the company keyword-only; reads a
user asks for also take their membership and go through `crm.access` (`visible_items`,
`access_item`), so list, detail and search can only return what the user may see.

The one exception is `persons_by_addresses`: mail linking is company-wide (who may see the mail
is decided later, by the inbox's visibility rules), so it is not filtered by user access."""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Greatest, Lower

from contacts.addresses import InvalidEmailAddress, normalize_email
from contacts.models import (
    Organization,
    OrganizationLabel,
    OrganizationRelation,
    Person,
    PersonEmail,
    PersonLabel,
    PersonPhone,
    RelationKind,
)
from crm.access import ItemForbidden, ItemNotFound, access_item, visible_items
from crm.models import Company, Membership

# --- Querysets with what the representations need ---------------------------------------------


def persons_loaded(*, company: Company | int) -> QuerySet[Person]:
    """Persons with owner and organization joined. A page of them gets its emails, phones and
    labels from `persons_attach` (contacts.representations reads them from there)."""
    return Person.objects.for_company(company).select_related("owner", "organization")


def organizations_loaded(*, company: Company | int) -> QuerySet[Organization]:
    return Organization.objects.for_company(company).select_related("owner")


def persons_attach(*, company: Company | int, persons: Sequence[Person]) -> Sequence[Person]:
    """Attach emails, phones and label ids to a page of persons: three queries of plain rows.

    Django's prefetch_related builds a queryset per row and relation, which cost more than the
    queries themselves on a 100-row page (see docs/benchmarks.md)."""
    by_id = {person.pk: person for person in persons}
    for person in persons:
        person.__dict__.update(attached_emails=[], attached_phones=[], attached_label_ids=[])
    if not by_id:
        return persons
    for model, attribute in ((PersonEmail, "attached_emails"), (PersonPhone, "attached_phones")):
        rows = (
            model.objects.for_company(company)
            .filter(person_id__in=by_id)
            .order_by("position", "id")
            .values_list("person_id", "value", "primary", "label")
        )
        for person_id, value, primary, label in rows:
            by_id[person_id].__dict__[attribute].append(
                {"value": value, "primary": primary, "label": label}
            )
    labels = (
        PersonLabel.objects.for_company(company)
        .filter(person_id__in=by_id)
        .order_by("label_id")
        .values_list("person_id", "label_id")
    )
    for person_id, label_id in labels:
        by_id[person_id].__dict__["attached_label_ids"].append(label_id)
    return persons


def organizations_attach(
    *, company: Company | int, organizations: Sequence[Organization]
) -> Sequence[Organization]:
    """Attach label ids to a page of organizations in one query."""
    by_id = {organization.pk: organization for organization in organizations}
    for organization in organizations:
        organization.__dict__["attached_label_ids"] = []
    labels = (
        OrganizationLabel.objects.for_company(company)
        .filter(organization_id__in=by_id)
        .order_by("label_id")
        .values_list("organization_id", "label_id")
    )
    for organization_id, label_id in labels:
        by_id[organization_id].__dict__["attached_label_ids"].append(label_id)
    return organizations


def people_counts(
    *, company: Company | int, organization_ids: Iterable[int | None]
) -> dict[int, int]:
    """Live persons per organization, in one query (v1's `people_count`)."""
    wanted = {pk for pk in organization_ids if pk is not None}
    if not wanted:
        return {}
    rows = (
        Person.objects.for_company(company)
        .filter(organization_id__in=wanted, deleted_at__isnull=True)
        .values("organization_id")
        .annotate(count=Count("id"))
        .values_list("organization_id", "count")
    )
    return {int(org_id): int(count) for org_id, count in rows}


# --- Access -----------------------------------------------------------------------------------


def access_person(
    *, membership: Membership, person_id: object, include_deleted: bool = False
) -> Person:
    """The person with this id if the member may see it: crm.access.ItemNotFound when it is
    not in the company (or deleted), ItemForbidden when it is hidden from them."""
    queryset = persons_loaded(company=membership.company_id)
    if not include_deleted:
        queryset = queryset.filter(deleted_at__isnull=True)
    return access_item(queryset, membership=membership, item_id=person_id)


def access_organization(
    *, membership: Membership, organization_id: object, include_deleted: bool = False
) -> Organization:
    queryset = organizations_loaded(company=membership.company_id)
    if not include_deleted:
        queryset = queryset.filter(deleted_at__isnull=True)
    return access_item(queryset, membership=membership, item_id=organization_id)


# --- Lists ------------------------------------------------------------------------------------

SORT_COLUMNS: dict[str, str] = {
    "id": "id",
    "update_time": "updated_at",
    "add_time": "created_at",
    "name": "name",
    "first_name": "first_name",
    "last_name": "last_name",
}


@dataclass(frozen=True)
class ListFilters:
    """What a list may be narrowed by (all optional; Pipedrive's names)."""

    ids: Sequence[int] = ()
    owner_id: int | None = None
    org_id: int | None = None
    label_id: int | None = None
    updated_since: datetime.datetime | None = None
    updated_until: datetime.datetime | None = None
    first_char: str | None = None


def _filtered(*, filters: ListFilters) -> Q:
    condition = Q(deleted_at__isnull=True)
    if filters.ids:
        condition &= Q(pk__in=list(filters.ids))
    if filters.owner_id is not None:
        condition &= Q(owner_id=filters.owner_id)
    if filters.label_id is not None:
        condition &= Q(labels__id=filters.label_id)
    if filters.updated_since is not None:
        condition &= Q(updated_at__gte=filters.updated_since)
    if filters.updated_until is not None:
        # Pipedrive: "updated before this time"; exclusive, so consecutive windows never overlap.
        condition &= Q(updated_at__lt=filters.updated_until)
    if filters.first_char:
        condition &= Q(name__istartswith=filters.first_char[:1])
    return condition


def person_list(
    *, company: Company, membership: Membership, filters: ListFilters
) -> QuerySet[Person]:
    """Live persons the member may see, narrowed by `filters`; unordered (the caller pages)."""
    condition = _filtered(filters=filters)
    if filters.org_id is not None:
        condition &= Q(organization_id=filters.org_id)
    return visible_items(persons_loaded(company=company), membership=membership).filter(condition)


def organization_list(
    *, company: Company, membership: Membership, filters: ListFilters
) -> QuerySet[Organization]:
    condition = _filtered(filters=filters)
    return visible_items(organizations_loaded(company=company), membership=membership).filter(
        condition
    )


def organization_persons(
    *, company: Company, membership: Membership, organization: Organization
) -> QuerySet[Person]:
    """The live persons of an organization that the member may see, by name."""
    return person_list(
        company=company, membership=membership, filters=ListFilters(org_id=organization.pk)
    ).order_by(Lower("name"), "id")


# --- The linking lookup -----------------------------------------------------------------------


def persons_by_addresses(
    *, company: Company | int, addresses: Iterable[str]
) -> dict[str, list[int]]:
    """Live persons of the company by normalized address: {normalized: [person ids]}.

    The high-volume lookup of mail linking: addresses are normalized here (invalid ones are
    skipped), then one query on the (company, normalized) index. Addresses nobody has are
    absent from the result. Not filtered by user access: mail linking is company-wide."""
    wanted: set[str] = set()
    for address in addresses:
        try:
            wanted.add(normalize_email(address))
        except InvalidEmailAddress:
            continue
    if not wanted:
        return {}
    # One array parameter rather than Django's IN list of a thousand placeholders: half the
    # time on a 1,000-address batch (docs/benchmarks.md). Row-level security still applies.
    company_id = company if isinstance(company, int) else company.pk
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT e.normalized, e.person_id
            FROM contacts_personemail e
            JOIN contacts_person p ON p.id = e.person_id AND p.company_id = e.company_id
            WHERE e.company_id = %s AND e.normalized = ANY(%s) AND p.deleted_at IS NULL
            ORDER BY e.normalized, e.person_id
            """,
            [company_id, list(wanted)],
        )
        rows = cursor.fetchall()
    found: dict[str, list[int]] = {}
    for normalized, person_id in rows:
        found.setdefault(normalized, []).append(person_id)
    return found


# --- Search -----------------------------------------------------------------------------------

PERSON_SEARCH_FIELDS = frozenset({"name", "email", "phone", "notes", "custom_fields"})
ORGANIZATION_SEARCH_FIELDS = frozenset({"name", "address", "notes", "custom_fields"})
MIN_TERM_LENGTH = 2


def _text_score(field: str, term: str, *, exact: bool) -> Case:
    """1 for the whole value, 0.8 for a prefix, 0.5 for a part of it (0 for no match)."""
    if exact:
        return Case(When(**{f"{field}__iexact": term}, then=Value(1.0)), default=Value(0.0))
    return Case(
        When(**{f"{field}__iexact": term}, then=Value(1.0)),
        When(**{f"{field}__istartswith": term}, then=Value(0.8)),
        When(**{f"{field}__icontains": term}, then=Value(0.5)),
        default=Value(0.0),
        output_field=FloatField(),
    )


def person_search(
    *,
    company: Company,
    membership: Membership,
    term: str,
    fields: Collection[str] = PERSON_SEARCH_FIELDS,
    exact_match: bool = False,
    organization_id: int | None = None,
) -> QuerySet[Person]:
    """Live persons the member may see whose name, email, phone or notes match `term`, each
    annotated `result_score` (0..1); unordered. Precondition: `term` is stripped and long
    enough (the API checks)."""
    scores = []
    if "name" in fields:
        scores.append(_text_score("name", term, exact=exact_match))
    if "notes" in fields:
        scores.append(_text_score("notes", term, exact=exact_match))
    if "email" in fields:
        emails = PersonEmail.objects.for_company(company).filter(person_id=OuterRef("pk"))
        try:
            normalized: str | None = normalize_email(term)
        except InvalidEmailAddress:
            normalized = None
        whole = emails.filter(Q(value__iexact=term) | Q(normalized=normalized or ""))
        match = whole if exact_match else emails.filter(value__icontains=term)
        scores.append(
            Case(
                When(Exists(whole), then=Value(1.0)),
                When(Exists(match), then=Value(0.6)),
                default=Value(0.0),
                output_field=FloatField(),
            )
        )
    if "phone" in fields:
        phones = PersonPhone.objects.for_company(company).filter(person_id=OuterRef("pk"))
        whole_phone = phones.filter(value=term)
        match_phone = whole_phone if exact_match else phones.filter(value__icontains=term)
        scores.append(
            Case(
                When(Exists(whole_phone), then=Value(1.0)),
                When(Exists(match_phone), then=Value(0.6)),
                default=Value(0.0),
                output_field=FloatField(),
            )
        )
    queryset = visible_items(persons_loaded(company=company), membership=membership).filter(
        deleted_at__isnull=True
    )
    if organization_id is not None:
        queryset = queryset.filter(organization_id=organization_id)
    return _scored(queryset, scores)


def organization_search(
    *,
    company: Company,
    membership: Membership,
    term: str,
    fields: Collection[str] = ORGANIZATION_SEARCH_FIELDS,
    exact_match: bool = False,
) -> QuerySet[Organization]:
    """Live organizations the member may see whose name or address matches `term`, annotated
    `result_score`. Organizations keep no notes of their own yet: `notes` matches nothing."""
    scores = []
    if "name" in fields:
        scores.append(_text_score("name", term, exact=exact_match))
    if "address" in fields:
        scores.append(_text_score("address_value", term, exact=exact_match))
    queryset = visible_items(organizations_loaded(company=company), membership=membership).filter(
        deleted_at__isnull=True
    )
    return _scored(queryset, scores)


_Scored = TypeVar("_Scored", Person, Organization)


def _scored(queryset: QuerySet[_Scored], scores: list[Case]) -> QuerySet[_Scored]:
    if not scores:
        return queryset.none()
    score = scores[0] if len(scores) == 1 else Greatest(*scores, output_field=FloatField())
    return queryset.annotate(result_score=score).filter(result_score__gt=0)


# --- Recipients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientSuggestion:
    """One address of a person, as the composer offers it."""

    person_id: int
    name: str
    address: str
    organization: str


def recipient_suggestions(
    *, membership: Membership, term: str, limit: int = 8
) -> list[RecipientSuggestion]:
    """The composer's recipient autocomplete: addresses of live persons the member may see
    whose name, address or organization starts a word with `term` (or whose address holds
    it), names that start with it first. Precondition: `term` is stripped, not empty."""
    company = membership.company_id
    emails = (
        PersonEmail.objects.for_company(company)
        .filter(
            person__in=visible_items(
                Person.objects.for_company(company).filter(deleted_at__isnull=True),
                membership=membership,
            )
        )
        .filter(
            Q(person__name__istartswith=term)
            | Q(person__name__icontains=f" {term}")
            | Q(value__icontains=term)
            | Q(person__organization__name__istartswith=term)
            | Q(person__organization__name__icontains=f" {term}")
        )
        .annotate(
            name_first=Case(
                When(person__name__istartswith=term, then=Value(0)),
                When(value__istartswith=term, then=Value(1)),
                default=Value(2),
            )
        )
        .order_by("name_first", Lower("person__name"), "person_id", "-primary", "position")
        .values_list("person_id", "person__name", "value", "person__organization__name")
    )
    return [
        RecipientSuggestion(person_id, name, address, organization or "")
        for person_id, name, address, organization in emails[:limit]
    ]


# --- Relations ----------------------------------------------------------------------------------


class RelationSide:
    """What the other organization of a relation is to the one asked about."""

    PARENT = "parent"
    SUBSIDIARY = "subsidiary"
    RELATED = "related"


@dataclass(frozen=True)
class RelationSeen:
    relation: OrganizationRelation
    other: Organization
    kind: str  # RelationSide: parent | subsidiary | related


def side_of(relation: OrganizationRelation, *, organization_id: int) -> str:
    if relation.kind == RelationKind.RELATED:
        return RelationSide.RELATED
    # `organization` is the parent of `related_organization`.
    if relation.organization_id == organization_id:
        return RelationSide.SUBSIDIARY
    return RelationSide.PARENT


def organization_relations(
    *, company: Company, membership: Membership, organization: Organization
) -> list[RelationSeen]:
    """The organization's relations, from both sides, each with the kind seen from this
    organization; relations to organizations the member may not see, or deleted, are left out."""
    visible = visible_items(
        Organization.objects.for_company(company), membership=membership
    ).filter(deleted_at__isnull=True)
    relations = (
        OrganizationRelation.objects.for_company(company)
        .filter(Q(organization=organization) | Q(related_organization=organization))
        .filter(
            Q(organization__in=visible.values("pk")),
            Q(related_organization__in=visible.values("pk")),
        )
        .select_related("organization__owner", "related_organization__owner")
        .order_by("id")
    )
    seen = []
    for relation in relations:
        other = (
            relation.related_organization
            if relation.organization_id == organization.pk
            else relation.organization
        )
        seen.append(
            RelationSeen(
                relation=relation,
                other=other,
                kind=side_of(relation, organization_id=organization.pk),
            )
        )
    return seen


def access_organization_relation(
    *, membership: Membership, relation_id: object
) -> OrganizationRelation:
    """A relation the member may see both organizations of; ItemNotFound otherwise (a relation
    has no visibility of its own: it is as visible as its less visible end)."""
    try:
        relation = (
            OrganizationRelation.objects.for_company(membership.company_id)
            .select_related("organization__owner", "related_organization__owner")
            .get(pk=relation_id)  # type: ignore[misc]  # any id; a bad one is ItemNotFound
        )
    except (OrganizationRelation.DoesNotExist, ValueError, TypeError) as exc:
        raise ItemNotFound from exc
    visible = visible_items(
        Organization.objects.for_company(membership.company_id), membership=membership
    ).filter(pk__in=[relation.organization_id, relation.related_organization_id])
    if visible.count() != 2:
        raise ItemForbidden
    return relation
