"""Reads of pipelines, stages, deals, leads and projects.

Lists for a user go through `crm.access.visible_items` (one SQL query; filtering happens in the
database) and leave deleted items out; `access_<entity>` fetches one item for a user, raising
`ItemNotFound` (not in the company, or deleted) or `ItemForbidden` (there, but hidden from them).
Querysets come with what the representations read already joined or prefetched, so a page of a
list costs the same number of queries whatever its length.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from contacts.models import Organization, Person, PersonEmail, PersonPhone
from crm.access import Visibility, access_item, teammate_ids, visible_items
from crm.models import Company, Label, LabelKind, Membership, Role
from crm.sales.models import (
    Deal,
    DealStatus,
    Lead,
    LeadConversion,
    Pipeline,
    Project,
    ProjectBoard,
    ProjectDeal,
    ProjectOrganization,
    ProjectPerson,
    ProjectPhase,
    Stage,
)

# Pipedrive's deal list filter `status=all_not_deleted` (its default in v1).
ALL_NOT_DELETED = "all_not_deleted"
DELETED = "deleted"
DEAL_STATUS_FILTERS = (*DealStatus.values, DELETED, ALL_NOT_DELETED)


def permitted_user_ids(*, company: Company, owner_id: int, visible_to: int) -> tuple[int, ...]:
    """Active users who may see an item with this owner and visibility (one query): admins
    and the owner always; everyone for "entire company"; the owner's team mates for "teams"."""
    members = Membership.objects.for_company(company).filter(is_active=True)
    if visible_to != Visibility.COMPANY:
        rule = Q(role=Role.ADMIN) | Q(user_id=owner_id)
        if visible_to == Visibility.TEAMS:
            owner = Membership(company_id=company.pk, user_id=owner_id)
            rule |= Q(user_id__in=teammate_ids(membership=owner))
        members = members.filter(rule)
    return tuple(sorted(members.values_list("user_id", flat=True)))


# --- Pipelines and stages -------------------------------------------------------------------------


def pipeline_list(*, company: Company) -> QuerySet[Pipeline]:
    return Pipeline.objects.for_company(company).order_by("position", "id")


def pipeline_get(*, company: Company, pipeline_id: int) -> Pipeline | None:
    return Pipeline.objects.for_company(company).filter(pk=pipeline_id).first()


def stage_list(*, company: Company, pipeline_id: int | None = None) -> QuerySet[Stage]:
    stages = Stage.objects.for_company(company).select_related("pipeline")
    if pipeline_id is not None:
        stages = stages.filter(pipeline_id=pipeline_id)
    return stages.order_by("pipeline__position", "pipeline_id", "position", "id")


def stage_get(*, company: Company, stage_id: int) -> Stage | None:
    return Stage.objects.for_company(company).select_related("pipeline").filter(pk=stage_id).first()


# --- Deals ----------------------------------------------------------------------------------------


def deal_queryset(*, company: Company, expand: bool = False) -> QuerySet[Deal]:
    """All the company's deals (deleted ones too) with what the v2 shape reads; `expand` adds
    what v1 reads as well (the person's addresses and phones, the organization's head count)."""
    deals: QuerySet[Deal] = (
        Deal.objects.for_company(company)
        .select_related("owner", "creator", "person", "organization", "stage", "pipeline")
        .prefetch_related(
            Prefetch("labels", queryset=Label.objects.for_company(company).order_by("id"))
        )
    )
    if not expand:
        return deals
    people = (
        Person.objects.for_company(company)
        .filter(organization_id=OuterRef("organization_id"), deleted_at__isnull=True)
        .order_by()
        .values("organization_id")
        .annotate(count=Count("id"))
        .values("count")
    )
    deals = deals.annotate(
        org_people_count=Coalesce(Subquery(people, output_field=IntegerField()), 0)
    )
    # One Prefetch per call: the stubs type a call's lookups as one queryset type.
    return deals.prefetch_related(
        Prefetch("person__emails", queryset=PersonEmail.objects.for_company(company))
    ).prefetch_related(
        Prefetch("person__phones", queryset=PersonPhone.objects.for_company(company))
    )


@dataclass(frozen=True)
class DealFilters:
    ids: Sequence[int] = ()
    owner_id: int | None = None
    person_id: int | None = None
    organization_id: int | None = None
    pipeline_id: int | None = None
    stage_id: int | None = None
    # open | won | lost | deleted | all_not_deleted (None: all but deleted)
    status: str | None = None
    updated_since: datetime | None = None
    updated_until: datetime | None = None
    archived: bool | None = False  # None: archived or not
    term: str = ""
    exact_match: bool = False


def deal_list(
    *,
    membership: Membership,
    filters: DealFilters = DealFilters(),
    expand: bool = False,
) -> QuerySet[Deal]:
    """The deals the member can see, filtered; unordered (the paginator orders)."""
    deals = visible_items(
        deal_queryset(company=membership.company, expand=expand), membership=membership
    )
    if filters.status == DELETED:
        deals = deals.filter(deleted_at__isnull=False)
    else:
        deals = deals.filter(deleted_at__isnull=True)
        if filters.status in DealStatus.values:
            deals = deals.filter(status=filters.status)
    if filters.ids:
        deals = deals.filter(pk__in=list(filters.ids))
    if filters.archived is not None:
        deals = deals.filter(is_archived=filters.archived)
    for field, value in (
        ("owner_id", filters.owner_id),
        ("person_id", filters.person_id),
        ("organization_id", filters.organization_id),
        ("pipeline_id", filters.pipeline_id),
        ("stage_id", filters.stage_id),
    ):
        if value is not None:
            deals = deals.filter(**{field: value})
    if filters.updated_since is not None:
        deals = deals.filter(updated_at__gte=filters.updated_since)
    if filters.updated_until is not None:
        deals = deals.filter(updated_at__lt=filters.updated_until)
    if filters.term:
        lookup = "title__iexact" if filters.exact_match else "title__icontains"
        deals = deals.filter(**{lookup: filters.term})
    return deals


def access_deal(
    *, membership: Membership, deal_id: object, expand: bool = False, deleted: bool = False
) -> Deal:
    """A deal the member can see; deleted deals count as missing unless `deleted`."""
    deals = deal_queryset(company=membership.company, expand=expand)
    if not deleted:
        deals = deals.filter(deleted_at__isnull=True)
    return access_item(deals, membership=membership, item_id=deal_id)


def open_deals_for_persons(*, company: Company, person_ids: Sequence[int]) -> QuerySet[Deal]:
    """Open, live deals of these persons, most recently active first (mail linking reads it;
    no user's access applies, the linking rules decide)."""
    return (
        Deal.objects.for_company(company)
        .filter(
            person_id__in=list(person_ids),
            status=DealStatus.OPEN,
            deleted_at__isnull=True,
            is_archived=False,
        )
        .order_by("-updated_at", "-id")
    )


# --- Leads ----------------------------------------------------------------------------------------


def lead_queryset(*, company: Company) -> QuerySet[Lead]:
    return Lead.objects.for_company(company).prefetch_related(
        Prefetch(
            "labels",
            queryset=Label.objects.for_company(company).filter(kind=LabelKind.LEAD).order_by("id"),
        )
    )


@dataclass(frozen=True)
class LeadFilters:
    archived: bool = False
    owner_id: int | None = None
    person_id: int | None = None
    organization_id: int | None = None
    updated_since: datetime | None = None
    term: str = ""
    exact_match: bool = False


def lead_list(
    *,
    membership: Membership,
    filters: LeadFilters = LeadFilters(),
) -> QuerySet[Lead]:
    """The live leads the member can see, archived or not as asked, oldest first."""
    leads = visible_items(lead_queryset(company=membership.company), membership=membership).filter(
        deleted_at__isnull=True, is_archived=filters.archived
    )
    for field, value in (
        ("owner_id", filters.owner_id),
        ("person_id", filters.person_id),
        ("organization_id", filters.organization_id),
    ):
        if value is not None:
            leads = leads.filter(**{field: value})
    if filters.updated_since is not None:
        leads = leads.filter(updated_at__gte=filters.updated_since)
    if filters.term:
        lookup = "title__iexact" if filters.exact_match else "title__icontains"
        leads = leads.filter(**{lookup: filters.term})
    return leads.order_by("created_at", "id")


def access_lead(*, membership: Membership, lead_id: object) -> Lead:
    """A live lead the member can see (ItemNotFound for a malformed id too)."""
    leads = lead_queryset(company=membership.company).filter(deleted_at__isnull=True)
    return access_item(leads, membership=membership, item_id=lead_id)


def open_leads_for_persons(*, company: Company, person_ids: Sequence[int]) -> QuerySet[Lead]:
    """Live, unarchived, unconverted leads of these persons, most recently active first."""
    return (
        Lead.objects.for_company(company)
        .filter(
            person_id__in=list(person_ids),
            deleted_at__isnull=True,
            is_archived=False,
            converted_deal__isnull=True,
        )
        .order_by("-updated_at", "-id")
    )


def lead_conversion_get(
    *, company: Company, lead_id: uuid.UUID, conversion_id: str
) -> LeadConversion | None:
    try:
        return (
            LeadConversion.objects.for_company(company)
            .filter(lead_id=lead_id, pk=conversion_id)
            .first()
        )
    except (ValueError, TypeError, ValidationError):
        # A malformed job id names no job.
        return None


def lead_label_list(*, company: Company) -> QuerySet[Label]:
    return Label.objects.for_company(company).filter(kind=LabelKind.LEAD).order_by("name", "id")


def lead_label_get(*, company: Company, label_uuid: str) -> Label | None:
    try:
        wanted = uuid.UUID(label_uuid)
    except ValueError:
        return None
    return Label.objects.for_company(company).filter(kind=LabelKind.LEAD, uuid=wanted).first()


# --- Projects -------------------------------------------------------------------------------------


def project_queryset(*, company: Company) -> QuerySet[Project]:
    # Only the linked ids are shown: the through rows suffice, the linked rows are not loaded.
    # One Prefetch per call: the stubs type a call's lookups as one queryset type.
    return (
        Project.objects.for_company(company)
        .prefetch_related(
            Prefetch("labels", queryset=Label.objects.for_company(company).order_by("id"))
        )
        .prefetch_related(
            Prefetch(
                "projectdeal_set",
                queryset=ProjectDeal.objects.for_company(company).order_by("deal_id"),
            )
        )
        .prefetch_related(
            Prefetch(
                "projectperson_set",
                queryset=ProjectPerson.objects.for_company(company).order_by("person_id"),
            )
        )
        .prefetch_related(
            Prefetch(
                "projectorganization_set",
                queryset=ProjectOrganization.objects.for_company(company).order_by(
                    "organization_id"
                ),
            )
        )
    )


@dataclass(frozen=True)
class ProjectFilters:
    status: str | None = None
    phase_id: int | None = None
    board_id: int | None = None
    include_archived: bool = False
    archived_only: bool = False
    updated_since: datetime | None = None
    term: str = ""


def project_list(
    *,
    membership: Membership,
    filters: ProjectFilters = ProjectFilters(),
) -> QuerySet[Project]:
    projects = visible_items(
        project_queryset(company=membership.company), membership=membership
    ).filter(deleted_at__isnull=True)
    if filters.archived_only:
        projects = projects.filter(is_archived=True)
    elif not filters.include_archived:
        projects = projects.filter(is_archived=False)
    for field, value in (
        ("status", filters.status),
        ("phase_id", filters.phase_id),
        ("board_id", filters.board_id),
    ):
        if value is not None:
            projects = projects.filter(**{field: value})
    if filters.updated_since is not None:
        projects = projects.filter(updated_at__gte=filters.updated_since)
    if filters.term:
        projects = projects.filter(title__icontains=filters.term)
    return projects


def access_project(*, membership: Membership, project_id: object) -> Project:
    projects = project_queryset(company=membership.company).filter(deleted_at__isnull=True)
    return access_item(projects, membership=membership, item_id=project_id)


def project_board_list(*, company: Company) -> QuerySet[ProjectBoard]:
    return ProjectBoard.objects.for_company(company).order_by("position", "id")


def project_board_get(*, company: Company, board_id: int) -> ProjectBoard | None:
    return ProjectBoard.objects.for_company(company).filter(pk=board_id).first()


def project_phase_list(*, company: Company, board_id: int) -> QuerySet[ProjectPhase]:
    return ProjectPhase.objects.for_company(company).filter(board_id=board_id).order_by("position")


# --- Persons and organizations, as far as their deals are concerned -------------------------


def access_person(*, membership: Membership, person_id: object) -> Person:
    """A live person the member can see (for `/persons/{id}/deals`)."""
    persons = Person.objects.for_company(membership.company_id).filter(deleted_at__isnull=True)
    return access_item(persons, membership=membership, item_id=person_id)


def access_organization(*, membership: Membership, organization_id: object) -> Organization:
    organizations = Organization.objects.for_company(membership.company_id).filter(
        deleted_at__isnull=True
    )
    return access_item(organizations, membership=membership, item_id=organization_id)
