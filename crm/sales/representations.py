"""Deals, leads, projects, pipelines and stages as Pipedrive's API shows them: plain dicts of
JSON values, one function per shape and version. The API renders them and the item events
(`crm.hooks.ItemEvent.current`, which webhooks send) carry them, so a webhook's payload is
exactly what a GET answers.

Preconditions: the objects come from the querysets of `crm.sales.selectors` (relations joined,
labels prefetched; v1 deal shapes need `expand=True`), so no function here queries.

Timestamps: v1 "YYYY-MM-DD HH:MM:SS" (UTC); v2 RFC 3339; leads ISO 8601 with milliseconds.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from contacts.models import Organization, Person
from crm.models import Label, User
from crm.sales.models import (
    Deal,
    DealStatus,
    Lead,
    LeadConversion,
    Pipeline,
    Project,
    ProjectBoard,
    ProjectPhase,
    Stage,
)

V1 = "1.0"
V2 = "2.0"


def v1_time(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def v2_time(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lead_time(value: datetime.datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(datetime.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def day(value: datetime.date | None) -> str | None:
    return None if value is None else value.isoformat()


def number(value: decimal.Decimal | None) -> int | float | None:
    """A money amount as a JSON number (an integer when it is whole, as Pipedrive shows)."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def user_v1(user: User | None) -> dict[str, Any] | None:
    """v1's expanded user reference (`user_id`, `creator_user_id` of a deal)."""
    if user is None:
        return None
    return {
        "id": user.pk,
        "name": user.name or user.email,
        "email": user.email,
        "has_pic": 0,
        "pic_hash": None,
        "active_flag": user.is_active,
        "value": user.pk,
    }


def person_v1(person: Person | None) -> dict[str, Any] | None:
    """v1's expanded person reference (`person_id` of a deal); needs emails and phones
    prefetched."""
    if person is None:
        return None
    return {
        "active_flag": person.deleted_at is None,
        "name": person.name,
        "email": [
            {"label": e.label, "value": e.value, "primary": e.primary} for e in person.emails.all()
        ],
        "phone": [
            {"label": p.label, "value": p.value, "primary": p.primary} for p in person.phones.all()
        ],
        "owner_id": person.owner_id,
        "value": person.pk,
    }


def organization_v1(
    organization: Organization | None, *, people_count: int | None
) -> dict[str, Any] | None:
    if organization is None:
        return None
    return {
        "name": organization.name,
        "people_count": people_count or 0,
        "owner_id": organization.owner_id,
        "address": organization.address_value or None,
        "active_flag": organization.deleted_at is None,
        "cc_email": None,
        "value": organization.pk,
    }


def _label_ids(labels: list[Label]) -> list[int]:
    return [label.pk for label in labels]


# --- Deals ----------------------------------------------------------------------------------------


def deal_v2(deal: Deal) -> dict[str, Any]:
    labels = list(deal.labels.all())
    return {
        "id": deal.pk,
        "title": deal.title,
        "creator_user_id": deal.creator_id,
        "owner_id": deal.owner_id,
        "person_id": deal.person_id,
        "org_id": deal.organization_id,
        "pipeline_id": deal.pipeline_id,
        "stage_id": deal.stage_id,
        "value": number(deal.value),
        "currency": deal.currency,
        "add_time": v2_time(deal.created_at),
        "update_time": v2_time(deal.updated_at),
        "stage_change_time": v2_time(deal.stage_change_time),
        "is_deleted": deal.deleted_at is not None,
        "is_archived": deal.is_archived,
        "archive_time": v2_time(deal.archive_time),
        "status": deal.status,
        "probability": deal.probability,
        "lost_reason": deal.lost_reason or None,
        "visible_to": deal.visible_to,
        "close_time": v2_time(deal.close_time),
        "won_time": v2_time(deal.won_time),
        "lost_time": v2_time(deal.lost_time),
        "expected_close_date": day(deal.expected_close_date),
        "label_ids": _label_ids(labels),
        "origin": deal.origin or None,
        "origin_id": None,
        "channel": deal.channel or None,
        "channel_id": None,
        "source_lead_id": None if deal.source_lead_id is None else str(deal.source_lead_id),
        "arr": None,
        "mrr": None,
        "acv": None,
        "custom_fields": {},
    }


def _formatted(amount: decimal.Decimal, currency: str) -> str:
    # Locale-free: "1,500 EUR" / "1,500.50 EUR"; no per-user number format yet.
    text = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    return f"{text} {currency}"


def deal_v1(deal: Deal) -> dict[str, Any]:
    """The deprecated v1 deal: expanded user, person and organization references, string
    `visible_to`, comma-separated `label`, counters (no activities, products or files yet)."""
    labels = list(deal.labels.all())
    stage: Stage = deal.stage
    probability = deal.probability if deal.probability is not None else stage.probability
    weighted = (deal.value * probability / 100).quantize(decimal.Decimal("0.01"))
    return {
        "id": deal.pk,
        "creator_user_id": user_v1(deal.creator),
        "user_id": user_v1(deal.owner),
        "person_id": person_v1(deal.person),
        "org_id": organization_v1(
            deal.organization, people_count=getattr(deal, "org_people_count", None)
        ),
        "stage_id": deal.stage_id,
        "title": deal.title,
        "value": number(deal.value),
        "currency": deal.currency,
        "add_time": v1_time(deal.created_at),
        "update_time": v1_time(deal.updated_at),
        "stage_change_time": v1_time(deal.stage_change_time),
        "active": deal.status == DealStatus.OPEN and deal.deleted_at is None,
        "deleted": deal.deleted_at is not None,
        "is_archived": deal.is_archived,
        "archive_time": v1_time(deal.archive_time),
        "status": "deleted" if deal.deleted_at is not None else deal.status,
        "probability": deal.probability,
        "next_activity_date": None,
        "next_activity_time": None,
        "next_activity_id": None,
        "last_activity_id": None,
        "last_activity_date": None,
        "lost_reason": deal.lost_reason or None,
        "visible_to": str(deal.visible_to),
        "close_time": v1_time(deal.close_time),
        "pipeline_id": deal.pipeline_id,
        "won_time": v1_time(deal.won_time),
        "first_won_time": v1_time(deal.won_time),
        "lost_time": v1_time(deal.lost_time),
        "products_count": 0,
        "files_count": 0,
        "notes_count": 0,
        "followers_count": 0,
        "email_messages_count": 0,
        "activities_count": 0,
        "done_activities_count": 0,
        "undone_activities_count": 0,
        "participants_count": 0,
        "expected_close_date": day(deal.expected_close_date),
        "last_incoming_mail_time": None,
        "last_outgoing_mail_time": None,
        "label": ",".join(str(pk) for pk in _label_ids(labels)) or None,
        "stage_order_nr": stage.position,
        "person_name": deal.person.name if deal.person else None,
        "org_name": deal.organization.name if deal.organization else None,
        "next_activity_subject": None,
        "next_activity_type": None,
        "next_activity_duration": None,
        "next_activity_note": None,
        "formatted_value": _formatted(deal.value, deal.currency),
        "weighted_value": number(weighted),
        "formatted_weighted_value": _formatted(weighted, deal.currency),
        "weighted_value_currency": deal.currency,
        "rotten_time": None,
        "owner_name": deal.owner.name or deal.owner.email,
        "cc_email": None,
        "org_hidden": False,
        "person_hidden": False,
        "origin": deal.origin or None,
        "channel": deal.channel or None,
        "source_lead_id": None if deal.source_lead_id is None else str(deal.source_lead_id),
    }


def deal_versions(deal: Deal) -> dict[str, dict[str, Any]]:
    return {V1: deal_v1(deal), V2: deal_v2(deal)}


def deal_search_item(deal: Deal) -> dict[str, Any]:
    """An item of `GET /deals/search` (v2): `{result_score, item}`."""
    return {
        "result_score": 1.0,
        "item": {
            "id": deal.pk,
            "type": "deal",
            "title": deal.title,
            "value": number(deal.value),
            "currency": deal.currency,
            "status": deal.status,
            "visible_to": deal.visible_to,
            "owner": {"id": deal.owner_id},
            "stage": {"id": deal.stage_id, "name": deal.stage.name},
            "person": ({"id": deal.person.pk, "name": deal.person.name} if deal.person else None),
            "organization": (
                {
                    "id": deal.organization.pk,
                    "name": deal.organization.name,
                    "address": deal.organization.address_value or None,
                }
                if deal.organization
                else None
            ),
            "custom_fields": [],
            "notes": [],
            "is_archived": deal.is_archived,
        },
    }


def related_objects_v1(deals: list[Deal]) -> dict[str, dict[str, Any]]:
    """v1's `related_objects` of a page of deals (from the rows already loaded)."""
    related: dict[str, dict[str, Any]] = {"user": {}, "person": {}, "organization": {}}
    for deal in deals:
        for user in (deal.owner, deal.creator):
            if user is not None:
                related["user"][str(user.pk)] = user_v1(user)
        if deal.person is not None:
            related["person"][str(deal.person.pk)] = {
                "id": deal.person.pk,
                "name": deal.person.name,
                "active_flag": deal.person.deleted_at is None,
                "owner_id": deal.person.owner_id,
            }
        if deal.organization is not None:
            related["organization"][str(deal.organization.pk)] = {
                "id": deal.organization.pk,
                "name": deal.organization.name,
                "active_flag": deal.organization.deleted_at is None,
                "owner_id": deal.organization.owner_id,
                "address": deal.organization.address_value or None,
            }
    return related


# --- Leads ----------------------------------------------------------------------------------------


def lead_v1(lead: Lead) -> dict[str, Any]:
    value = (
        None
        if lead.value_amount is None
        else {"amount": number(lead.value_amount), "currency": lead.value_currency}
    )
    return {
        "id": str(lead.pk),
        "title": lead.title,
        "owner_id": lead.owner_id,
        "creator_id": lead.creator_id,
        "label_ids": [str(label.uuid) for label in lead.labels.all()],
        "person_id": lead.person_id,
        "organization_id": lead.organization_id,
        "source_name": lead.source_name,
        "origin": lead.origin or None,
        "origin_id": None,
        "channel": lead.channel or None,
        "channel_id": None,
        "source_deal_id": None,
        "is_archived": lead.is_archived,
        "was_seen": lead.was_seen,
        "value": value,
        "expected_close_date": day(lead.expected_close_date),
        "next_activity_id": None,
        "add_time": lead_time(lead.created_at),
        "update_time": lead_time(lead.updated_at),
        "visible_to": str(lead.visible_to),
        "cc_email": None,
        "converted_deal_id": lead.converted_deal_id,
        "is_deleted": lead.deleted_at is not None,
    }


def lead_v2(lead: Lead) -> dict[str, Any]:
    # Pipedrive has no v2 lead CRUD; v2 webhooks get v1's lead with v2's integer visible_to.
    shape = lead_v1(lead)
    shape["visible_to"] = lead.visible_to
    return shape


def lead_versions(lead: Lead) -> dict[str, dict[str, Any]]:
    return {V1: lead_v1(lead), V2: lead_v2(lead)}


def lead_search_item(lead: Lead) -> dict[str, Any]:
    return {
        "result_score": 1.0,
        "item": {
            "id": str(lead.pk),
            "type": "lead",
            "title": lead.title,
            "owner": {"id": lead.owner_id},
            "person": None if lead.person_id is None else {"id": lead.person_id},
            "organization": (
                None if lead.organization_id is None else {"id": lead.organization_id}
            ),
            "phones": [],
            "emails": [],
            "custom_fields": [],
            "notes": [],
            "value": number(lead.value_amount),
            "currency": lead.value_currency or None,
            "visible_to": lead.visible_to,
            "is_archived": lead.is_archived,
        },
    }


def lead_label(label: Label) -> dict[str, Any]:
    return {
        "id": str(label.uuid),
        "name": label.name,
        "color": label.color,
        "add_time": lead_time(label.created_at),
        "update_time": lead_time(label.updated_at),
    }


def lead_conversion(conversion: LeadConversion) -> dict[str, Any]:
    return {
        "conversion_id": str(conversion.pk),
        "status": conversion.status,
        "deal_id": conversion.deal_id,
    }


# --- Pipelines and stages -------------------------------------------------------------------------


def pipeline_v1(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "id": pipeline.pk,
        "name": pipeline.name,
        "url_title": pipeline.name.lower().replace(" ", "-"),
        "order_nr": pipeline.position,
        "active": pipeline.is_active,
        "deal_probability": pipeline.deal_probability,
        "add_time": v1_time(pipeline.created_at),
        "update_time": v1_time(pipeline.updated_at),
        "selected": False,
    }


def stage_v1(stage: Stage) -> dict[str, Any]:
    """Needs `stage.pipeline` joined."""
    return {
        "id": stage.pk,
        "order_nr": stage.position,
        "name": stage.name,
        "active_flag": stage.is_active,
        "deal_probability": stage.probability,
        "pipeline_id": stage.pipeline_id,
        "rotten_flag": stage.rotten_days is not None,
        "rotten_days": stage.rotten_days,
        "add_time": v1_time(stage.created_at),
        "update_time": v1_time(stage.updated_at),
        "pipeline_name": stage.pipeline.name,
        "pipeline_deal_probability": stage.pipeline.deal_probability,
    }


# --- Projects -------------------------------------------------------------------------------------


def _project(project: Project, *, time: Any) -> dict[str, Any]:
    return {
        "id": project.pk,
        "title": project.title,
        "description": project.description or None,
        "status": project.status,
        "board_id": project.board_id,
        "phase_id": project.phase_id,
        "owner_id": project.owner_id,
        "start_date": day(project.start_date),
        "end_date": day(project.end_date),
        "deal_ids": [link.deal_id for link in project.projectdeal_set.all()],
        "person_ids": [link.person_id for link in project.projectperson_set.all()],
        "org_ids": [link.organization_id for link in project.projectorganization_set.all()],
        "label_ids": _label_ids(list(project.labels.all())),
        "health_status": project.health_status or None,
        "visible_to": project.visible_to,
        "is_archived": project.is_archived,
        "is_deleted": project.deleted_at is not None,
        "add_time": time(project.created_at),
        "update_time": time(project.updated_at),
        "status_change_time": time(project.status_change_time),
        "archive_time": time(project.archive_time),
        "custom_fields": {},
    }


def project_v1(project: Project) -> dict[str, Any]:
    return _project(project, time=v1_time)


def project_v2(project: Project) -> dict[str, Any]:
    return _project(project, time=v2_time)


def project_versions(project: Project) -> dict[str, dict[str, Any]]:
    return {V1: project_v1(project), V2: project_v2(project)}


def project_board(board: ProjectBoard) -> dict[str, Any]:
    return {
        "id": board.pk,
        "name": board.name,
        "order_nr": board.position,
        "add_time": v2_time(board.created_at),
        "update_time": v2_time(board.updated_at),
    }


def project_phase(phase: ProjectPhase) -> dict[str, Any]:
    return {
        "id": phase.pk,
        "name": phase.name,
        "board_id": phase.board_id,
        "order_nr": phase.position,
        "add_time": v2_time(phase.created_at),
        "update_time": v2_time(phase.updated_at),
    }
