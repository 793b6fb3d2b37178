"""Writes of pipelines, stages, deals, leads and projects.

Every function takes the company first (keyword-only) and expects a transaction bound to it (a
request, a TenantTask, or `tenancy.bound`). The acting `membership` decides what the write may
point at (persons, organizations and deals it can see); `source` ("app", "api" or "system") goes
into the change log and the item events.

Updates take a mapping of the fields to change (PATCH semantics: an absent key is left alone, a
present `None` clears the field where that is allowed). Every write of an item records its
change log (`crm.services.item_changes_record`) and publishes `crm.hooks.ITEM_EVENT` with the
item as both API versions show it; deal status changes also publish `DEAL_STATUS_CHANGED`.
"""

from __future__ import annotations

import decimal
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from contacts.models import Organization, Person
from crm import hooks
from crm.access import ItemKind, normalize_visible_to, visible_items
from crm.models import ChangeSource, Company, Label, LabelKind, Membership
from crm.sales import representations, selectors
from crm.sales.models import (
    Deal,
    DealLabel,
    DealParticipant,
    DealStatus,
    Lead,
    LeadConversion,
    LeadLabel,
    Pipeline,
    Project,
    ProjectBoard,
    ProjectDeal,
    ProjectLabel,
    ProjectOrganization,
    ProjectPerson,
    ProjectPhase,
    ProjectStatus,
    Stage,
)
from crm.services import (
    ServiceError,
    item_changes_record,
    label_create,
    labels_resolve,
    visibility_default,
)

DEFAULT_PIPELINE_NAME = "Sales pipeline"
# Pipedrive's default stages and their win probabilities.
DEFAULT_STAGES = (
    ("Qualified", 10),
    ("Contact made", 20),
    ("Demo scheduled", 40),
    ("Proposal made", 60),
    ("Negotiations started", 80),
)
DEFAULT_BOARD_NAME = "Projects"
DEFAULT_PHASES = ("Planning", "In progress", "Done")
DEFAULT_CURRENCY = "USD"
LEAD_SOURCE_API = "API"
LEAD_SOURCE_MANUAL = "Manually created"
# Deal.value is NUMERIC(18, 2): sixteen digits before the point.
MAX_MONEY = decimal.Decimal(10) ** 16
MAX_POSITION = 2**31 - 1  # PositiveIntegerField is a 4-byte integer
_CURRENCY = re.compile(r"[A-Z]{3}")
_SOURCES = frozenset(ChangeSource.values)


# --- Checks shared by the items ---------------------------------------------------------------


def _source(source: str) -> str:
    if source not in _SOURCES:
        raise ValueError(f"unknown change source {source!r}")
    return source


def _text(value: object, *, field: str, required: bool = True, max_length: int = 255) -> str:
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise ServiceError(_("This field may not be blank."), field=field)
    if len(text) > max_length:
        raise ServiceError(
            _("Ensure this field has no more than %(max)d characters.") % {"max": max_length},
            field=field,
        )
    return text


def _money(value: object, *, field: str) -> decimal.Decimal:
    try:
        amount = decimal.Decimal(str(value).strip())
    except (decimal.InvalidOperation, ValueError):
        raise ServiceError(_("A valid number is required."), field=field) from None
    if not amount.is_finite() or abs(amount) >= MAX_MONEY:
        raise ServiceError(_("A valid number is required."), field=field)
    return amount.quantize(decimal.Decimal("0.01"), rounding=decimal.ROUND_HALF_UP)


def _currency(value: object, *, field: str) -> str:
    code = str(value or "").strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise ServiceError(
            _("Currency must be a three-letter ISO 4217 code such as EUR."), field=field
        )
    return code


def _visible_to(value: object) -> int:
    try:
        return normalize_visible_to(value)
    except ValueError:
        raise ServiceError(_("Visibility must be 1, 3, 5 or 7."), field="visible_to") from None


def _owner_id(*, company: Company, value: object, field: str = "owner_id") -> int:
    """The id of an active member of the company, who may own items."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ServiceError(_("A valid integer is required."), field=field)
    active = (
        Membership.objects.for_company(company)
        .filter(user_id=value, is_active=True, user__is_active=True)
        .exists()
    )
    if not active:
        raise ServiceError(
            _("No active user with id %(id)s in this company.") % {"id": value}, field=field
        )
    return value


def _person(
    *, company: Company, membership: Membership | None, person_id: object, field: str
) -> Person | None:
    """The live person with this id that the member can see (None clears the link). Missing
    and hidden persons get the same answer, so ids of hidden persons cannot be probed."""
    if person_id is None:
        return None
    queryset: QuerySet[Person] = Person.objects.for_company(company).filter(deleted_at__isnull=True)
    if membership is not None:
        queryset = visible_items(queryset, membership=membership)
    person = queryset.filter(pk=person_id).first() if isinstance(person_id, int) else None
    if person is None:
        raise ServiceError(_("No person with id %(id)s.") % {"id": person_id}, field=field)
    return person


def _organization(
    *, company: Company, membership: Membership | None, organization_id: object, field: str
) -> Organization | None:
    if organization_id is None:
        return None
    queryset: QuerySet[Organization] = Organization.objects.for_company(company).filter(
        deleted_at__isnull=True
    )
    if membership is not None:
        queryset = visible_items(queryset, membership=membership)
    organization = (
        queryset.filter(pk=organization_id).first() if isinstance(organization_id, int) else None
    )
    if organization is None:
        raise ServiceError(
            _("No organization with id %(id)s.") % {"id": organization_id}, field=field
        )
    return organization


def _ids(value: object, *, field: str) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise ServiceError(_("Expected a list of integers."), field=field)
    return list(dict.fromkeys(value))


def _require_admin(membership: Membership) -> None:
    if not membership.is_admin:
        raise PermissionDenied(_("Only admins may change pipelines and stages."))


def _position(value: object, *, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_POSITION:
        raise ServiceError(_("A valid non-negative integer is required."), field=field)
    return value


def _next_position(positions: Iterable[int | None]) -> int:
    highest = max((p for p in positions if p is not None), default=None)
    return 0 if highest is None else highest + 1


# --- Change log and events --------------------------------------------------------------------


def _record(
    *,
    company: Company,
    kind: str,
    action: str,
    item_id: object,
    actor_id: int | None,
    source: str,
    before: Mapping[str, Mapping[str, Any]] | None,
    after: Mapping[str, Mapping[str, Any]],
    owner_id: int,
    visible_to: int,
) -> None:
    """Write the change log (from the v2 shape, whose values are plain JSON) and publish the
    item event with the previous values of the changed fields in each version."""
    old2 = dict(before["2.0"]) if before is not None else {}
    new2 = after["2.0"]
    changes: dict[str, tuple[object, object]]
    if before is None:
        # An item that is new: log what it was made with, not every empty field.
        changes = {
            name: (None, value)
            for name, value in new2.items()
            if value not in (None, "", [], {}, False) and name not in ("id", "add_time")
        }
    else:
        changes = {
            name: (old2.get(name), value)
            for name, value in new2.items()
            if old2.get(name) != value and name != "update_time"
        }
    item_changes_record(
        company=company,
        kind=kind,
        item_key=item_id,
        changes=changes,
        actor_id=actor_id,
        source=source,
    )
    previous: dict[str, dict[str, Any]] | None = None
    if before is not None:
        previous = {
            version: {
                name: value
                for name, value in shape.items()
                if after[version].get(name) != value and name != "update_time"
            }
            for version, shape in before.items()
        }
    hooks.publish(
        hooks.ITEM_EVENT,
        hooks.ItemEvent(
            company_id=company.pk,
            kind=kind,
            action=action,
            item_id=str(item_id),
            actor_id=actor_id,
            source=source,
            current=after,
            previous=previous,
            changed_fields=tuple(changes),
            permitted_user_ids=selectors.permitted_user_ids(
                company=company, owner_id=owner_id, visible_to=visible_to
            ),
        ),
    )


def _deal_status_published(
    *, company: Company, deal: Deal, old_status: str | None, new_status: str
) -> None:
    hooks.publish(
        hooks.DEAL_STATUS_CHANGED,
        hooks.DealStatusChanged(
            company_id=company.pk,
            deal_id=deal.pk,
            person_id=deal.person_id,
            old_status=old_status,
            new_status=new_status,
        ),
    )


# --- Pipelines and stages -----------------------------------------------------------------------


def pipeline_default_ensure(*, company: Company) -> Pipeline:
    """The company's first pipeline; "Sales pipeline" with Pipedrive's five stages when the
    company has none yet (a new company, or a deal created without pipeline and stage)."""
    pipeline = Pipeline.objects.for_company(company).order_by("position", "id").first()
    if pipeline is not None:
        return pipeline
    pipeline = Pipeline.objects.create(company=company, name=DEFAULT_PIPELINE_NAME, position=0)
    Stage.objects.bulk_create(
        Stage(company=company, pipeline=pipeline, name=name, position=index, probability=chance)
        for index, (name, chance) in enumerate(DEFAULT_STAGES)
    )
    return pipeline


def pipeline_create(
    *,
    company: Company,
    membership: Membership,
    name: str,
    deal_probability: bool = True,
    is_active: bool = True,
    position: int | None = None,
) -> Pipeline:
    _require_admin(membership)
    name = _text(name, field="name")
    if position is None:
        position = _next_position(
            Pipeline.objects.for_company(company).values_list("position", flat=True)
        )
    return Pipeline.objects.create(
        company=company,
        name=name,
        deal_probability=bool(deal_probability),
        is_active=bool(is_active),
        position=_position(position, field="order_nr"),
    )


def pipeline_update(
    *, company: Company, membership: Membership, pipeline: Pipeline, fields: Mapping[str, Any]
) -> Pipeline:
    """Fields: name, position, deal_probability, is_active."""
    _require_admin(membership)
    if "name" in fields:
        pipeline.name = _text(fields["name"], field="name")
    if "position" in fields:
        pipeline.position = _position(fields["position"], field="order_nr")
    if "deal_probability" in fields:
        pipeline.deal_probability = bool(fields["deal_probability"])
    if "is_active" in fields:
        pipeline.is_active = bool(fields["is_active"])
    pipeline.save(update_fields=["name", "position", "deal_probability", "is_active", "updated_at"])
    return pipeline


def pipeline_delete(*, company: Company, membership: Membership, pipeline: Pipeline) -> None:
    """Delete a pipeline and its stages; refused while deals (even deleted ones, which may yet
    be restored) are in it."""
    _require_admin(membership)
    if Deal.objects.for_company(company).filter(pipeline_id=pipeline.pk).exists():
        raise ServiceError(
            _("This pipeline has deals (perhaps deleted ones): move them to another first."),
            field="id",
        )
    Stage.objects.for_company(company).filter(pipeline_id=pipeline.pk).delete()
    Pipeline.objects.for_company(company).filter(pk=pipeline.pk).delete()


def pipeline_reorder(
    *, company: Company, membership: Membership, pipeline_ids: list[int]
) -> list[Pipeline]:
    """Put the pipelines in this order (each of the company's pipelines exactly once)."""
    _require_admin(membership)
    pipelines = {p.pk: p for p in Pipeline.objects.for_company(company)}
    if sorted(pipeline_ids) != sorted(pipelines):
        raise ServiceError(_("List every pipeline exactly once."), field="order")
    ordered = [pipelines[pk] for pk in pipeline_ids]
    for index, pipeline in enumerate(ordered):
        pipeline.position = index
    Pipeline.objects.for_company(company).bulk_update(ordered, ["position"])
    return ordered


def _pipeline(*, company: Company, pipeline_id: object, field: str = "pipeline_id") -> Pipeline:
    pipeline = (
        Pipeline.objects.for_company(company).filter(pk=pipeline_id).first()
        if isinstance(pipeline_id, int) and not isinstance(pipeline_id, bool)
        else None
    )
    if pipeline is None:
        raise ServiceError(_("No pipeline with id %(id)s.") % {"id": pipeline_id}, field=field)
    return pipeline


def _stage(*, company: Company, stage_id: object, field: str = "stage_id") -> Stage:
    stage = (
        Stage.objects.for_company(company).select_related("pipeline").filter(pk=stage_id).first()
        if isinstance(stage_id, int) and not isinstance(stage_id, bool)
        else None
    )
    if stage is None:
        raise ServiceError(_("No stage with id %(id)s.") % {"id": stage_id}, field=field)
    return stage


def _probability(value: object, *, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise ServiceError(_("Probability must be between 0 and 100."), field=field)
    return value


def _rotten_days(value: object) -> int | None:
    if value is None:
        return None
    return _position(value, field="rotten_days")


def stage_create(
    *,
    company: Company,
    membership: Membership,
    pipeline_id: int,
    name: str,
    probability: int = 100,
    rotten_days: int | None = None,
    position: int | None = None,
) -> Stage:
    _require_admin(membership)
    pipeline = _pipeline(company=company, pipeline_id=pipeline_id)
    if position is None:
        position = _next_position(
            Stage.objects.for_company(company)
            .filter(pipeline_id=pipeline.pk)
            .values_list("position", flat=True)
        )
    return Stage.objects.create(
        company=company,
        pipeline=pipeline,
        name=_text(name, field="name"),
        probability=_probability(probability, field="deal_probability"),
        rotten_days=_rotten_days(rotten_days),
        position=_position(position, field="order_nr"),
    )


def stage_update(
    *, company: Company, membership: Membership, stage: Stage, fields: Mapping[str, Any]
) -> Stage:
    """Fields: name, position, probability, rotten_days, is_active, pipeline_id (moving a stage
    to another pipeline takes its deals along)."""
    _require_admin(membership)
    if "name" in fields:
        stage.name = _text(fields["name"], field="name")
    if "position" in fields:
        stage.position = _position(fields["position"], field="order_nr")
    if "probability" in fields:
        stage.probability = _probability(fields["probability"], field="deal_probability")
    if "rotten_days" in fields:
        stage.rotten_days = _rotten_days(fields["rotten_days"])
    if "is_active" in fields:
        stage.is_active = bool(fields["is_active"])
    if "pipeline_id" in fields and fields["pipeline_id"] != stage.pipeline_id:
        pipeline = _pipeline(company=company, pipeline_id=fields["pipeline_id"])
        stage.pipeline = pipeline
        # A deal's pipeline is always its stage's pipeline.
        Deal.objects.for_company(company).filter(stage_id=stage.pk).update(
            pipeline_id=pipeline.pk, updated_at=timezone.now()
        )
    stage.save(
        update_fields=[
            "name",
            "position",
            "probability",
            "rotten_days",
            "is_active",
            "pipeline",
            "updated_at",
        ]
    )
    return stage


def stage_delete(*, company: Company, membership: Membership, stage: Stage) -> None:
    """Refused while deals (even deleted ones) are in the stage: move them first."""
    _require_admin(membership)
    if Deal.objects.for_company(company).filter(stage_id=stage.pk).exists():
        raise ServiceError(
            _("This stage has deals (perhaps deleted ones): move them to another stage first."),
            field="id",
        )
    Stage.objects.for_company(company).filter(pk=stage.pk).delete()


def stage_reorder(
    *, company: Company, membership: Membership, pipeline: Pipeline, stage_ids: list[int]
) -> list[Stage]:
    _require_admin(membership)
    stages = {s.pk: s for s in Stage.objects.for_company(company).filter(pipeline_id=pipeline.pk)}
    if sorted(stage_ids) != sorted(stages):
        raise ServiceError(_("List every stage of the pipeline exactly once."), field="order")
    ordered = [stages[pk] for pk in stage_ids]
    for index, stage in enumerate(ordered):
        stage.position = index
    Stage.objects.for_company(company).bulk_update(ordered, ["position"])
    return ordered


# --- Deals ----------------------------------------------------------------------------------------

DEAL_FIELDS = frozenset(
    {
        "title",
        "value",
        "currency",
        "status",
        "lost_reason",
        "pipeline_id",
        "stage_id",
        "person_id",
        "organization_id",
        "owner_id",
        "visible_to",
        "expected_close_date",
        "probability",
        "label_ids",
        "is_archived",
        "origin",
        "channel",
    }
)
_DEAL_SAVED_FIELDS = [
    "title",
    "value",
    "currency",
    "status",
    "lost_reason",
    "pipeline",
    "stage",
    "person",
    "organization",
    "owner",
    "visible_to",
    "expected_close_date",
    "probability",
    "is_archived",
    "archive_time",
    "origin",
    "channel",
    "stage_change_time",
    "won_time",
    "lost_time",
    "close_time",
    "updated_at",
]


def _deal_stage_apply(
    *, company: Company, deal: Deal, fields: Mapping[str, Any], creating: bool, now: datetime
) -> None:
    """Stage and pipeline: a stage must belong to the pipeline given with it; a pipeline alone
    means its first stage; neither (on create) means the default pipeline's first stage."""
    has_stage = fields.get("stage_id") is not None
    has_pipeline = fields.get("pipeline_id") is not None
    if not creating:
        for name in ("stage_id", "pipeline_id"):
            if name in fields and fields[name] is None:
                raise ServiceError(_("A deal must be in a stage."), field=name)
    stage: Stage | None = None
    if has_stage:
        stage = _stage(company=company, stage_id=fields["stage_id"])
    if has_pipeline:
        pipeline = _pipeline(company=company, pipeline_id=fields["pipeline_id"])
        if stage is not None and stage.pipeline_id != pipeline.pk:
            raise ServiceError(
                _("Stage %(stage)s is not in pipeline %(pipeline)s.")
                % {"stage": stage.pk, "pipeline": pipeline.pk},
                field="stage_id",
            )
        if stage is None and (creating or pipeline.pk != deal.pipeline_id):
            stage = Stage.objects.for_company(company).filter(pipeline_id=pipeline.pk).first()
            if stage is None:
                raise ServiceError(_("This pipeline has no stages."), field="pipeline_id")
    if stage is None and creating:
        pipeline = pipeline_default_ensure(company=company)
        stage = Stage.objects.for_company(company).filter(pipeline_id=pipeline.pk).first()
        if stage is None:
            raise ServiceError(_("The default pipeline has no stages."), field="stage_id")
    if stage is not None and (creating or stage.pk != deal.stage_id):
        if not creating:
            deal.stage_change_time = now
        deal.stage = stage
        deal.pipeline_id = stage.pipeline_id


def _deal_status_apply(
    *, deal: Deal, fields: Mapping[str, Any], creating: bool, now: datetime
) -> None:
    """Won and lost deals are closed (won_time or lost_time, and close_time); reopening clears
    them. A lost reason belongs to lost deals only."""
    status = fields.get("status", deal.status)
    if status not in DealStatus.values:
        raise ServiceError(
            _("Status must be one of %(values)s.") % {"values": ", ".join(DealStatus.values)},
            field="status",
        )
    if creating or status != deal.status:
        deal.status = status
        deal.won_time = now if status == DealStatus.WON else None
        deal.lost_time = now if status == DealStatus.LOST else None
        deal.close_time = None if status == DealStatus.OPEN else now
        if status != DealStatus.LOST:
            deal.lost_reason = ""
    if "lost_reason" in fields:
        reason = _text(fields["lost_reason"], field="lost_reason", required=False)
        if reason and deal.status != DealStatus.LOST:
            raise ServiceError(_("Only a lost deal has a lost reason."), field="lost_reason")
        deal.lost_reason = reason


def _deal_apply(
    *,
    company: Company,
    membership: Membership | None,
    deal: Deal,
    fields: Mapping[str, Any],
    creating: bool,
) -> list[Label] | None:
    """Validate and set the fields on the (unsaved) deal; the labels to set, if given."""
    unknown = set(fields) - DEAL_FIELDS
    if unknown:
        raise ValueError(f"unknown deal fields {sorted(unknown)}")
    now = timezone.now()
    if "title" in fields or creating:
        deal.title = _text(fields.get("title"), field="title")
    if "value" in fields:
        deal.value = _money(fields["value"] if fields["value"] is not None else 0, field="value")
    if "currency" in fields:
        deal.currency = _currency(fields["currency"], field="currency")
    if "owner_id" in fields:
        deal.owner_id = _owner_id(company=company, value=fields["owner_id"])
    if "visible_to" in fields and fields["visible_to"] is not None:
        deal.visible_to = _visible_to(fields["visible_to"])
    if "person_id" in fields:
        deal.person = _person(
            company=company,
            membership=membership,
            person_id=fields["person_id"],
            field="person_id",
        )
    if "organization_id" in fields:
        deal.organization = _organization(
            company=company,
            membership=membership,
            organization_id=fields["organization_id"],
            field="org_id",
        )
    if "expected_close_date" in fields:
        deal.expected_close_date = fields["expected_close_date"]
    if "probability" in fields:
        probability = fields["probability"]
        deal.probability = (
            None if probability is None else _probability(probability, field="probability")
        )
    if "origin" in fields:
        deal.origin = _text(fields["origin"], field="origin", required=False, max_length=64)
    if "channel" in fields:
        deal.channel = _text(fields["channel"], field="channel", required=False, max_length=64)
    if "is_archived" in fields and bool(fields["is_archived"]) != deal.is_archived:
        deal.is_archived = bool(fields["is_archived"])
        deal.archive_time = now if deal.is_archived else None
    _deal_stage_apply(company=company, deal=deal, fields=fields, creating=creating, now=now)
    _deal_status_apply(deal=deal, fields=fields, creating=creating, now=now)
    if "label_ids" in fields:
        return labels_resolve(
            company=company,
            kind=LabelKind.DEAL,
            ids=_ids(fields["label_ids"], field="label_ids"),
        )
    return None


def _set_labels(
    *,
    company: Company,
    through: type[DealLabel] | type[LeadLabel] | type[ProjectLabel],
    owner_field: str,
    owner_id: object,
    labels: list[Label],
) -> None:
    # One of three through models: Any, as the type checker cannot follow the union through
    # the generator below.
    model: Any = through
    current = model.objects.for_company(company).filter(**{owner_field: owner_id})
    wanted = {label.pk for label in labels}
    current.exclude(label_id__in=wanted).delete()
    present = set(current.values_list("label_id", flat=True))
    model.objects.bulk_create(
        model(company=company, label_id=label_id, **{owner_field: owner_id})
        for label_id in sorted(wanted - present)
    )


def _participant_ensure(*, company: Company, deal: Deal) -> None:
    # The deal's person is always one of its participants, as in Pipedrive.
    if deal.person_id is not None:
        DealParticipant.objects.for_company(company).get_or_create(
            company=company, deal=deal, person_id=deal.person_id
        )


def _deal_versions(*, company: Company, deal_id: int) -> dict[str, dict[str, Any]]:
    deal = selectors.deal_queryset(company=company, expand=True).get(pk=deal_id)
    return representations.deal_versions(deal)


def _deal_recorded(
    *,
    company: Company,
    deal: Deal,
    action: str,
    actor_id: int | None,
    source: str,
    before: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, dict[str, Any]]:
    after = _deal_versions(company=company, deal_id=deal.pk)
    _record(
        company=company,
        kind=ItemKind.DEAL,
        action=action,
        item_id=deal.pk,
        actor_id=actor_id,
        source=source,
        before=before,
        after=after,
        owner_id=deal.owner_id,
        visible_to=deal.visible_to,
    )
    return after


def _deal_create(
    *,
    company: Company,
    membership: Membership | None,
    actor_id: int,
    fields: Mapping[str, Any],
    source: str,
    source_lead_id: uuid.UUID | None = None,
) -> Deal:
    deal = Deal(
        company=company,
        owner_id=actor_id,
        creator_id=actor_id,
        visible_to=visibility_default(company=company, kind=ItemKind.DEAL),
        currency=DEFAULT_CURRENCY,
        source_lead_id=source_lead_id,
    )
    labels = _deal_apply(
        company=company, membership=membership, deal=deal, fields=fields, creating=True
    )
    deal.save()
    if labels:
        _set_labels(
            company=company,
            through=DealLabel,
            owner_field="deal_id",
            owner_id=deal.pk,
            labels=labels,
        )
    _participant_ensure(company=company, deal=deal)
    _deal_recorded(
        company=company, deal=deal, action="added", actor_id=actor_id, source=source, before=None
    )
    _deal_status_published(company=company, deal=deal, old_status=None, new_status=deal.status)
    return deal


def deal_create(
    *, company: Company, membership: Membership, fields: Mapping[str, Any], source: str = "app"
) -> Deal:
    """A new deal owned by the acting user unless `owner_id` says otherwise. Without pipeline
    and stage it goes to the first stage of the default pipeline (made if none exists)."""
    return _deal_create(
        company=company,
        membership=membership,
        actor_id=membership.user_id,
        fields=fields,
        source=_source(source),
    )


def deal_update(
    *,
    company: Company,
    membership: Membership,
    deal: Deal,
    fields: Mapping[str, Any],
    source: str = "app",
) -> Deal:
    """Change the given fields of a deal the member can see (the caller checked access)."""
    source = _source(source)
    if deal.deleted_at is not None:
        raise ServiceError(_("This deal is deleted."), field="id")
    before = _deal_versions(company=company, deal_id=deal.pk)
    old_status = deal.status
    labels = _deal_apply(
        company=company, membership=membership, deal=deal, fields=fields, creating=False
    )
    deal.save(update_fields=_DEAL_SAVED_FIELDS)
    if labels is not None:
        _set_labels(
            company=company,
            through=DealLabel,
            owner_field="deal_id",
            owner_id=deal.pk,
            labels=labels,
        )
    _participant_ensure(company=company, deal=deal)
    _deal_recorded(
        company=company,
        deal=deal,
        action="updated",
        actor_id=membership.user_id,
        source=source,
        before=before,
    )
    if deal.status != old_status:
        _deal_status_published(
            company=company, deal=deal, old_status=old_status, new_status=deal.status
        )
    return deal


def deal_delete(
    *, company: Company, membership: Membership, deal: Deal, source: str = "app"
) -> None:
    """Soft delete: the deal is hidden now and purged after CRM_SOFT_DELETE_DAYS."""
    source = _source(source)
    if deal.deleted_at is not None:
        return
    before = _deal_versions(company=company, deal_id=deal.pk)
    deal.deleted_at = timezone.now()
    deal.save(update_fields=["deleted_at", "updated_at"])
    _deal_recorded(
        company=company,
        deal=deal,
        action="deleted",
        actor_id=membership.user_id,
        source=source,
        before=before,
    )
    _deal_status_published(company=company, deal=deal, old_status=deal.status, new_status="deleted")


def deals_delete(
    *, company: Company, membership: Membership, deals: Iterable[Deal], source: str = "app"
) -> list[int]:
    """Soft delete several deals (the caller checked access to each); their ids."""
    deleted = []
    for deal in deals:
        deal_delete(company=company, membership=membership, deal=deal, source=source)
        deleted.append(deal.pk)
    return deleted


def deal_restore(
    *, company: Company, membership: Membership, deal: Deal, source: str = "app"
) -> Deal:
    """Undo a soft delete (before the purge)."""
    source = _source(source)
    if deal.deleted_at is None:
        return deal
    before = _deal_versions(company=company, deal_id=deal.pk)
    deal.deleted_at = None
    deal.save(update_fields=["deleted_at", "updated_at"])
    _deal_recorded(
        company=company,
        deal=deal,
        action="updated",
        actor_id=membership.user_id,
        source=source,
        before=before,
    )
    _deal_status_published(company=company, deal=deal, old_status="deleted", new_status=deal.status)
    return deal


def deal_participant_add(
    *, company: Company, membership: Membership, deal: Deal, person_id: int
) -> DealParticipant:
    person = _person(company=company, membership=membership, person_id=person_id, field="person_id")
    assert person is not None  # noqa: S101 (person_id is an int, so a person or an error)
    participant, _created = DealParticipant.objects.for_company(company).get_or_create(
        company=company, deal=deal, person=person
    )
    return participant


def deal_participant_remove(*, company: Company, deal: Deal, person_id: int) -> None:
    if deal.person_id == person_id:
        raise ServiceError(
            _("The deal's person is always a participant: change the deal's person first."),
            field="person_id",
        )
    DealParticipant.objects.for_company(company).filter(deal=deal, person_id=person_id).delete()


# --- Leads ----------------------------------------------------------------------------------------

LEAD_FIELDS = frozenset(
    {
        "title",
        "owner_id",
        "label_ids",
        "person_id",
        "organization_id",
        "value",
        "expected_close_date",
        "visible_to",
        "was_seen",
        "is_archived",
        "origin",
        "channel",
    }
)
_LEAD_SAVED_FIELDS = [
    "title",
    "owner",
    "person",
    "organization",
    "value_amount",
    "value_currency",
    "expected_close_date",
    "visible_to",
    "was_seen",
    "is_archived",
    "origin",
    "channel",
    "updated_at",
]


def _lead_apply(
    *,
    company: Company,
    membership: Membership,
    lead: Lead,
    fields: Mapping[str, Any],
    creating: bool,
) -> list[Label] | None:
    unknown = set(fields) - LEAD_FIELDS
    if unknown:
        raise ValueError(f"unknown lead fields {sorted(unknown)}")
    if "title" in fields or creating:
        lead.title = _text(fields.get("title"), field="title")
    if "owner_id" in fields:
        lead.owner_id = _owner_id(company=company, value=fields["owner_id"])
    if "visible_to" in fields and fields["visible_to"] is not None:
        lead.visible_to = _visible_to(fields["visible_to"])
    if "person_id" in fields:
        lead.person = _person(
            company=company, membership=membership, person_id=fields["person_id"], field="person_id"
        )
    if "organization_id" in fields:
        lead.organization = _organization(
            company=company,
            membership=membership,
            organization_id=fields["organization_id"],
            field="organization_id",
        )
    if lead.person_id is None and lead.organization_id is None:
        raise ServiceError(_("A lead needs a person or an organization."), field="person_id")
    if "value" in fields:
        value = fields["value"]
        if value is None:
            lead.value_amount, lead.value_currency = None, ""
        elif isinstance(value, Mapping):
            lead.value_amount = _money(value.get("amount"), field="value.amount")
            lead.value_currency = _currency(value.get("currency"), field="value.currency")
        else:
            raise ServiceError(_("Value must be an object {amount, currency}."), field="value")
    if "expected_close_date" in fields:
        lead.expected_close_date = fields["expected_close_date"]
    for flag in ("was_seen", "is_archived"):
        if flag in fields and fields[flag] is not None:
            setattr(lead, flag, bool(fields[flag]))
    if "origin" in fields:
        lead.origin = _text(fields["origin"], field="origin", required=False, max_length=64)
    if "channel" in fields:
        lead.channel = _text(fields["channel"], field="channel", required=False, max_length=64)
    if "label_ids" in fields:
        wanted = fields["label_ids"] or []
        if not isinstance(wanted, list | tuple):
            raise ServiceError(_("Expected a list of label ids."), field="label_ids")
        return labels_resolve(
            company=company, kind=LabelKind.LEAD, uuids=[str(item) for item in wanted]
        )
    return None


def _lead_versions(*, company: Company, lead_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    lead = selectors.lead_queryset(company=company).get(pk=lead_id)
    return representations.lead_versions(lead)


def _lead_recorded(
    *,
    company: Company,
    lead: Lead,
    action: str,
    actor_id: int | None,
    source: str,
    before: Mapping[str, Mapping[str, Any]] | None,
) -> None:
    _record(
        company=company,
        kind=ItemKind.LEAD,
        action=action,
        item_id=lead.pk,
        actor_id=actor_id,
        source=source,
        before=before,
        after=_lead_versions(company=company, lead_id=lead.pk),
        owner_id=lead.owner_id,
        visible_to=lead.visible_to,
    )


def lead_create(
    *, company: Company, membership: Membership, fields: Mapping[str, Any], source: str = "app"
) -> Lead:
    """A new lead for a person or an organization (at least one), owned by the acting user
    unless `owner_id` says otherwise."""
    source = _source(source)
    lead = Lead(
        company=company,
        owner_id=membership.user_id,
        creator_id=membership.user_id,
        visible_to=visibility_default(company=company, kind=ItemKind.LEAD),
        source_name=LEAD_SOURCE_API if source == ChangeSource.API else LEAD_SOURCE_MANUAL,
    )
    labels = _lead_apply(
        company=company, membership=membership, lead=lead, fields=fields, creating=True
    )
    lead.save()
    if labels:
        _set_labels(
            company=company,
            through=LeadLabel,
            owner_field="lead_id",
            owner_id=lead.pk,
            labels=labels,
        )
    _lead_recorded(
        company=company,
        lead=lead,
        action="added",
        actor_id=membership.user_id,
        source=source,
        before=None,
    )
    return lead


def lead_update(
    *,
    company: Company,
    membership: Membership,
    lead: Lead,
    fields: Mapping[str, Any],
    source: str = "app",
) -> Lead:
    source = _source(source)
    if lead.deleted_at is not None:
        raise ServiceError(_("This lead is deleted."), field="id")
    before = _lead_versions(company=company, lead_id=lead.pk)
    labels = _lead_apply(
        company=company, membership=membership, lead=lead, fields=fields, creating=False
    )
    lead.save(update_fields=_LEAD_SAVED_FIELDS)
    if labels is not None:
        _set_labels(
            company=company,
            through=LeadLabel,
            owner_field="lead_id",
            owner_id=lead.pk,
            labels=labels,
        )
    _lead_recorded(
        company=company,
        lead=lead,
        action="updated",
        actor_id=membership.user_id,
        source=source,
        before=before,
    )
    return lead


def lead_delete(
    *, company: Company, membership: Membership, lead: Lead, source: str = "app"
) -> None:
    source = _source(source)
    if lead.deleted_at is not None:
        return
    before = _lead_versions(company=company, lead_id=lead.pk)
    lead.deleted_at = timezone.now()
    lead.save(update_fields=["deleted_at", "updated_at"])
    _lead_recorded(
        company=company,
        lead=lead,
        action="deleted",
        actor_id=membership.user_id,
        source=source,
        before=before,
    )


def lead_restore(
    *, company: Company, membership: Membership, lead: Lead, source: str = "app"
) -> Lead:
    source = _source(source)
    if lead.deleted_at is None:
        return lead
    if lead.person_id is None and lead.organization_id is None:
        raise ServiceError(_("The lead's person and organization are gone."), field="id")
    before = _lead_versions(company=company, lead_id=lead.pk)
    lead.deleted_at = None
    lead.save(update_fields=["deleted_at", "updated_at"])
    _lead_recorded(
        company=company,
        lead=lead,
        action="updated",
        actor_id=membership.user_id,
        source=source,
        before=before,
    )
    return lead


def lead_label_create(*, company: Company, name: str, color: str = "gray") -> Label:
    return label_create(company=company, kind=LabelKind.LEAD, name=name, color=color)


# --- Lead to deal conversion ------------------------------------------------------------------


def lead_convert_start(
    *,
    company: Company,
    membership: Membership,
    lead: Lead,
    stage_id: int | None = None,
    pipeline_id: int | None = None,
) -> LeadConversion:
    """Start converting a lead into a deal: a job row now, the work in a task after commit
    (`crm.sales.tasks.lead_conversion_run`). The stage and pipeline are checked here so a bad
    request fails at once rather than in the job."""
    if lead.deleted_at is not None or lead.converted_deal_id is not None:
        raise ServiceError(_("This lead was converted or deleted already."), field="id")
    stage = _stage(company=company, stage_id=stage_id) if stage_id is not None else None
    pipeline = (
        _pipeline(company=company, pipeline_id=pipeline_id) if pipeline_id is not None else None
    )
    if stage is not None and pipeline is not None and stage.pipeline_id != pipeline.pk:
        raise ServiceError(
            _("Stage %(stage)s is not in pipeline %(pipeline)s.")
            % {"stage": stage.pk, "pipeline": pipeline.pk},
            field="stage_id",
        )
    conversion = LeadConversion.objects.create(
        company=company, lead=lead, stage=stage, pipeline=pipeline
    )
    # Imported here: the task module imports this one.
    from crm.sales import tasks

    transaction.on_commit(
        lambda: tasks.lead_conversion_run.delay(
            company_id=company.pk, conversion_id=str(conversion.pk), actor_id=membership.user_id
        )
    )
    return conversion


def lead_conversion_run(
    *, company: Company, conversion_id: uuid.UUID | str, actor_id: int
) -> LeadConversion | None:
    """Do a conversion job: a deal with the lead's title, value, person, organization, owner,
    labels (deal labels of the same names), visibility and expected close date, pointing back
    at the lead; the lead is then archived and points at the deal. A job whose lead changed
    meanwhile fails with the reason; None when the job is gone."""
    conversion = (
        LeadConversion.objects.for_company(company)
        .select_related("lead")
        .filter(pk=conversion_id, status=LeadConversion.Status.NOT_STARTED)
        .first()
    )
    if conversion is None:
        return None
    conversion.status = LeadConversion.Status.RUNNING
    conversion.save(update_fields=["status", "updated_at"])
    lead = conversion.lead
    try:
        # A savepoint: a failure undoes the half-made deal but keeps the job's status.
        with transaction.atomic():
            deal = _lead_convert(
                company=company, conversion=conversion, lead=lead, actor_id=actor_id
            )
    except ServiceError as exc:
        conversion.status = LeadConversion.Status.FAILED
        conversion.error = f"{exc.field}: {exc.message}" if exc.field else exc.message
        conversion.save(update_fields=["status", "error", "updated_at"])
        return conversion
    conversion.status = LeadConversion.Status.COMPLETED
    conversion.deal = deal
    conversion.save(update_fields=["status", "deal", "updated_at"])
    return conversion


def _lead_convert(
    *, company: Company, conversion: LeadConversion, lead: Lead, actor_id: int
) -> Deal:
    if lead.deleted_at is not None or lead.converted_deal_id is not None:
        raise ServiceError(_("This lead was converted or deleted already."), field="id")
    deal_labels = [
        label_create(company=company, kind=LabelKind.DEAL, name=label.name, color=label.color)
        for label in Label.objects.for_company(company)
        .filter(kind=LabelKind.LEAD, leadlabel__lead_id=lead.pk)
        .order_by("name")
    ]
    fields: dict[str, Any] = {
        "title": lead.title,
        "owner_id": lead.owner_id,
        "person_id": lead.person_id,
        "organization_id": lead.organization_id,
        "visible_to": lead.visible_to,
        "expected_close_date": lead.expected_close_date,
        "label_ids": [label.pk for label in deal_labels],
        "origin": lead.origin,
        "channel": lead.channel,
    }
    if lead.value_amount is not None:
        fields["value"] = lead.value_amount
    if lead.value_currency:
        fields["currency"] = lead.value_currency
    if conversion.stage_id is not None:
        fields["stage_id"] = conversion.stage_id
    if conversion.pipeline_id is not None:
        fields["pipeline_id"] = conversion.pipeline_id
    # The lead's links were checked when they were made: the job does not re-check what the
    # converting user can see (membership=None).
    deal = _deal_create(
        company=company,
        membership=None,
        actor_id=actor_id,
        fields=fields,
        source=ChangeSource.SYSTEM,
        source_lead_id=lead.pk,
    )
    before = _lead_versions(company=company, lead_id=lead.pk)
    lead.converted_deal = deal
    lead.is_archived = True
    lead.save(update_fields=["converted_deal", "is_archived", "updated_at"])
    _lead_recorded(
        company=company,
        lead=lead,
        action="updated",
        actor_id=actor_id,
        source=ChangeSource.SYSTEM,
        before=before,
    )
    return deal


# --- Projects -------------------------------------------------------------------------------------

PROJECT_FIELDS = frozenset(
    {
        "title",
        "description",
        "status",
        "board_id",
        "phase_id",
        "owner_id",
        "start_date",
        "end_date",
        "health_status",
        "visible_to",
        "label_ids",
        "deal_ids",
        "person_ids",
        "org_ids",
        "is_archived",
    }
)
HEALTH_STATUSES = ("on_track", "at_risk", "off_track")
_PROJECT_SAVED_FIELDS = [
    "title",
    "description",
    "status",
    "status_change_time",
    "board",
    "phase",
    "owner",
    "start_date",
    "end_date",
    "health_status",
    "visible_to",
    "is_archived",
    "archive_time",
    "updated_at",
]


def project_board_default_ensure(*, company: Company) -> ProjectBoard:
    """The company's first project board; "Projects" with its three phases when none exists."""
    board = ProjectBoard.objects.for_company(company).order_by("position", "id").first()
    if board is not None:
        return board
    board = ProjectBoard.objects.create(company=company, name=DEFAULT_BOARD_NAME, position=0)
    ProjectPhase.objects.bulk_create(
        ProjectPhase(company=company, board=board, name=name, position=index)
        for index, name in enumerate(DEFAULT_PHASES)
    )
    return board


def _project_place_apply(
    *, company: Company, project: Project, fields: Mapping[str, Any], creating: bool
) -> None:
    board_id, phase_id = fields.get("board_id"), fields.get("phase_id")
    phase: ProjectPhase | None = None
    if phase_id is not None:
        phase = (
            ProjectPhase.objects.for_company(company).filter(pk=phase_id).first()
            if isinstance(phase_id, int)
            else None
        )
        if phase is None:
            raise ServiceError(_("No phase with id %(id)s.") % {"id": phase_id}, field="phase_id")
    if board_id is not None:
        board = (
            ProjectBoard.objects.for_company(company).filter(pk=board_id).first()
            if isinstance(board_id, int)
            else None
        )
        if board is None:
            raise ServiceError(_("No board with id %(id)s.") % {"id": board_id}, field="board_id")
        if phase is not None and phase.board_id != board.pk:
            raise ServiceError(
                _("Phase %(phase)s is not on board %(board)s.")
                % {"phase": phase.pk, "board": board.pk},
                field="phase_id",
            )
        if phase is None and (creating or board.pk != project.board_id):
            phase = ProjectPhase.objects.for_company(company).filter(board_id=board.pk).first()
            if phase is None:
                raise ServiceError(_("This board has no phases."), field="board_id")
    if phase is None and creating:
        board = project_board_default_ensure(company=company)
        phase = ProjectPhase.objects.for_company(company).filter(board_id=board.pk).first()
        if phase is None:
            raise ServiceError(_("The default board has no phases."), field="board_id")
    if phase is not None:
        project.phase = phase
        project.board_id = phase.board_id


def _project_apply(
    *,
    company: Company,
    membership: Membership,
    project: Project,
    fields: Mapping[str, Any],
    creating: bool,
) -> dict[str, list[Any]]:
    """Set the fields on the (unsaved) project; the links to set: labels, deals, persons,
    organizations (each only when given)."""
    unknown = set(fields) - PROJECT_FIELDS
    if unknown:
        raise ValueError(f"unknown project fields {sorted(unknown)}")
    now = timezone.now()
    if "title" in fields or creating:
        project.title = _text(fields.get("title"), field="title")
    if "description" in fields:
        project.description = _text(
            fields["description"], field="description", required=False, max_length=100_000
        )
    if "status" in fields:
        status = fields["status"]
        if status not in ProjectStatus.values:
            raise ServiceError(
                _("Status must be one of %(values)s.")
                % {"values": ", ".join(ProjectStatus.values)},
                field="status",
            )
        if status != project.status or creating:
            project.status = status
            project.status_change_time = now
    if "owner_id" in fields:
        project.owner_id = _owner_id(company=company, value=fields["owner_id"])
    if "visible_to" in fields and fields["visible_to"] is not None:
        project.visible_to = _visible_to(fields["visible_to"])
    for name in ("start_date", "end_date"):
        if name in fields:
            setattr(project, name, fields[name])
    if project.start_date and project.end_date and project.end_date < project.start_date:
        raise ServiceError(_("The end date is before the start date."), field="end_date")
    if "health_status" in fields:
        health = fields["health_status"] or ""
        if health and health not in HEALTH_STATUSES:
            raise ServiceError(
                _("Health status must be one of %(values)s.")
                % {"values": ", ".join(HEALTH_STATUSES)},
                field="health_status",
            )
        project.health_status = health
    if "is_archived" in fields and bool(fields["is_archived"]) != project.is_archived:
        project.is_archived = bool(fields["is_archived"])
        project.archive_time = now if project.is_archived else None
    _project_place_apply(company=company, project=project, fields=fields, creating=creating)

    links: dict[str, list[Any]] = {}
    if "label_ids" in fields:
        links["labels"] = labels_resolve(
            company=company,
            kind=LabelKind.PROJECT,
            ids=_ids(fields["label_ids"], field="label_ids"),
        )
    if "deal_ids" in fields:
        wanted = _ids(fields["deal_ids"], field="deal_ids")
        deals = visible_items(
            Deal.objects.for_company(company).filter(pk__in=wanted, deleted_at__isnull=True),
            membership=membership,
        )
        found = set(deals.values_list("pk", flat=True))
        if found != set(wanted):
            missing = ", ".join(str(pk) for pk in wanted if pk not in found)
            raise ServiceError(_("No deal with id %(id)s.") % {"id": missing}, field="deal_ids")
        links["deals"] = wanted
    for field, model in (("person_ids", Person), ("org_ids", Organization)):
        if field in fields:
            wanted = _ids(fields[field], field=field)
            queryset = visible_items(
                model.objects.for_company(company).filter(pk__in=wanted, deleted_at__isnull=True),
                membership=membership,
            )
            found = set(queryset.values_list("pk", flat=True))
            if found != set(wanted):
                missing = ", ".join(str(pk) for pk in wanted if pk not in found)
                raise ServiceError(
                    _("No %(kind)s with id %(id)s.")
                    % {"kind": model._meta.verbose_name, "id": missing},
                    field=field,
                )
            links[field] = wanted
    return links


def _project_links_set(*, company: Company, project: Project, links: dict[str, list[Any]]) -> None:
    if "labels" in links:
        _set_labels(
            company=company,
            through=ProjectLabel,
            owner_field="project_id",
            owner_id=project.pk,
            labels=links["labels"],
        )
    targets: tuple[tuple[str, Any, str], ...] = (
        ("deals", ProjectDeal, "deal_id"),
        ("person_ids", ProjectPerson, "person_id"),
        ("org_ids", ProjectOrganization, "organization_id"),
    )
    for key, through, column in targets:
        if key not in links:
            continue
        wanted = set(links[key])
        current = through.objects.for_company(company).filter(project_id=project.pk)
        current.exclude(**{f"{column}__in": wanted}).delete()
        present = set(current.values_list(column, flat=True))
        through.objects.bulk_create(
            through(company=company, project_id=project.pk, **{column: target})
            for target in sorted(wanted - present)
        )


def _project_versions(*, company: Company, project_id: int) -> dict[str, dict[str, Any]]:
    project = selectors.project_queryset(company=company).get(pk=project_id)
    return representations.project_versions(project)


def _project_recorded(
    *,
    company: Company,
    project: Project,
    action: str,
    actor_id: int,
    source: str,
    before: Mapping[str, Mapping[str, Any]] | None,
) -> None:
    _record(
        company=company,
        kind=ItemKind.PROJECT,
        action=action,
        item_id=project.pk,
        actor_id=actor_id,
        source=source,
        before=before,
        after=_project_versions(company=company, project_id=project.pk),
        owner_id=project.owner_id,
        visible_to=project.visible_to,
    )


def project_create(
    *, company: Company, membership: Membership, fields: Mapping[str, Any], source: str = "app"
) -> Project:
    """A new project; without board and phase it goes to the default board's first phase."""
    source = _source(source)
    project = Project(
        company=company,
        owner_id=membership.user_id,
        visible_to=visibility_default(company=company, kind=ItemKind.PROJECT),
        status_change_time=timezone.now(),
    )
    links = _project_apply(
        company=company, membership=membership, project=project, fields=fields, creating=True
    )
    project.save()
    _project_links_set(company=company, project=project, links=links)
    _project_recorded(
        company=company,
        project=project,
        action="added",
        actor_id=membership.user_id,
        source=source,
        before=None,
    )
    return project


def project_update(
    *,
    company: Company,
    membership: Membership,
    project: Project,
    fields: Mapping[str, Any],
    source: str = "app",
) -> Project:
    source = _source(source)
    if project.deleted_at is not None:
        raise ServiceError(_("This project is deleted."), field="id")
    before = _project_versions(company=company, project_id=project.pk)
    links = _project_apply(
        company=company, membership=membership, project=project, fields=fields, creating=False
    )
    project.save(update_fields=_PROJECT_SAVED_FIELDS)
    _project_links_set(company=company, project=project, links=links)
    _project_recorded(
        company=company,
        project=project,
        action="updated",
        actor_id=membership.user_id,
        source=source,
        before=before,
    )
    return project


def project_delete(
    *, company: Company, membership: Membership, project: Project, source: str = "app"
) -> None:
    source = _source(source)
    if project.deleted_at is not None:
        return
    before = _project_versions(company=company, project_id=project.pk)
    project.deleted_at = timezone.now()
    project.save(update_fields=["deleted_at", "updated_at"])
    _project_recorded(
        company=company,
        project=project,
        action="deleted",
        actor_id=membership.user_id,
        source=source,
        before=before,
    )


# --- Purge ----------------------------------------------------------------------------------------


def deleted_items_purge(*, company: Company | int, before: datetime) -> dict[str, int]:
    """Hard-delete the company's deals, leads and projects soft-deleted before `before`.
    Returns how many of each went."""
    purged = {}
    purged["leads"] = (
        Lead.objects.for_company(company)
        .filter(deleted_at__lt=before)
        .delete()[1]
        .get(Lead._meta.label, 0)
    )
    purged["projects"] = (
        Project.objects.for_company(company)
        .filter(deleted_at__lt=before)
        .delete()[1]
        .get(Project._meta.label, 0)
    )
    purged["deals"] = (
        Deal.objects.for_company(company)
        .filter(deleted_at__lt=before)
        .delete()[1]
        .get(Deal._meta.label, 0)
    )
    return purged
