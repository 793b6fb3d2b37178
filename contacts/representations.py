"""Persons and organizations as each API version shows them: one place for the wire shapes, so
the API's responses and the webhook payloads of `crm.hooks.ITEM_EVENT` never disagree.

Preconditions (to stay free of queries per row): persons come with `owner`, `organization`
(and its owner) selected and `emails`, `phones`, `labels` prefetched; organizations with
`owner` selected and `labels` prefetched (`contacts.selectors` builds such querysets). v1's
`people_count` of an organization is passed in as a mapping, counted once per page.

v2: RFC 3339 times, integer ids, `emails` / `phones`, `visible_to` a number.
v1: "YYYY-MM-DD HH:MM:SS" (UTC), `email` / `phone`, expanded `owner_id` / `org_id`, `visible_to`
a string, `active_flag`, `first_char`.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from contacts.models import Organization, Person, PersonEmail, PersonPhone
from crm.models import User

V1_TIME = "%Y-%m-%d %H:%M:%S"
V2_TIME = "%Y-%m-%dT%H:%M:%SZ"

# Counters of activities, deals, files, notes, followers and mail live in other layers (or do
# not exist yet: activities are out of scope); the API shows them as 0 / null, as NOTES say.
PERSON_COUNTERS = (
    "open_deals_count",
    "related_open_deals_count",
    "closed_deals_count",
    "related_closed_deals_count",
    "participant_open_deals_count",
    "participant_closed_deals_count",
    "email_messages_count",
    "activities_count",
    "done_activities_count",
    "undone_activities_count",
    "files_count",
    "notes_count",
    "followers_count",
    "won_deals_count",
    "related_won_deals_count",
    "lost_deals_count",
    "related_lost_deals_count",
)
PERSON_NULLABLES = (
    "next_activity_id",
    "last_activity_id",
    "last_incoming_mail_time",
    "last_outgoing_mail_time",
    "marketing_status",
    "doi_status",
    "smart_bcc_email",
)
PERSON_INCLUDE_FIELDS = frozenset(PERSON_COUNTERS + PERSON_NULLABLES)
ORGANIZATION_INCLUDE_FIELDS = frozenset((*PERSON_COUNTERS, *PERSON_NULLABLES, "people_count")) - {
    "marketing_status",
    "doi_status",
}


def v1_time(value: datetime.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(datetime.UTC).strftime(V1_TIME)


def v2_time(value: datetime.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(datetime.UTC).strftime(V2_TIME)


def first_char(name: str) -> str:
    return name.strip()[:1].lower()


def contact_points(rows: list[PersonEmail] | list[PersonPhone]) -> list[dict[str, Any]]:
    return [{"value": row.value, "primary": row.primary, "label": row.label} for row in rows]


# A page of items has its emails, phones and labels attached as plain rows by
# `contacts.selectors.persons_attach` / `organizations_attach` (three queries a page, no model
# instances or per-row querysets); a single item reads them through its related managers.


def person_emails(person: Person) -> list[dict[str, Any]]:
    attached: list[dict[str, Any]] | None = person.__dict__.get("attached_emails")
    return attached if attached is not None else contact_points(list(person.emails.all()))


def person_phones(person: Person) -> list[dict[str, Any]]:
    attached: list[dict[str, Any]] | None = person.__dict__.get("attached_phones")
    return attached if attached is not None else contact_points(list(person.phones.all()))


def label_ids(item: Person | Organization) -> list[int]:
    attached: list[int] | None = item.__dict__.get("attached_label_ids")
    return attached if attached is not None else sorted(label.pk for label in item.labels.all())


def _live_organization(person: Person) -> Organization | None:
    organization = person.organization
    if organization is None or organization.deleted_at is not None:
        return None
    return organization


def _address(organization: Organization) -> dict[str, Any]:
    return {
        "value": organization.address_value,
        "country": organization.address_country,
        "admin_area_level_1": organization.address_admin_area_level_1,
        "admin_area_level_2": organization.address_admin_area_level_2,
        "locality": organization.address_locality,
        "sublocality": organization.address_sublocality,
        "route": organization.address_route,
        "street_number": organization.address_street_number,
        "subpremise": organization.address_subpremise,
        "postal_code": organization.address_postal_code,
    }


def _postal_address(person: Person) -> dict[str, Any]:
    return {
        "value": person.postal_address,
        "country": person.postal_address_country,
        "admin_area_level_1": person.postal_address_admin_area_level_1,
        "admin_area_level_2": "",
        "locality": person.postal_address_locality,
        "sublocality": "",
        "route": person.postal_address_route,
        "street_number": person.postal_address_street_number,
        "subpremise": "",
        "postal_code": person.postal_address_postal_code,
    }


def include_values(names: frozenset[str] | set[str]) -> dict[str, Any]:
    """The optional v2 fields asked for with `include_fields` (all computed elsewhere)."""
    return {name: 0 if name.endswith("_count") else None for name in sorted(names)}


# --- v2 -------------------------------------------------------------------------------------


def person_v2(person: Person) -> dict[str, Any]:
    organization = _live_organization(person)
    return {
        "id": person.pk,
        "name": person.name,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "owner_id": person.owner_id,
        "org_id": organization.pk if organization else None,
        "add_time": v2_time(person.created_at),
        "update_time": v2_time(person.updated_at),
        "emails": person_emails(person),
        "phones": person_phones(person),
        "is_deleted": person.deleted_at is not None,
        "visible_to": person.visible_to,
        "label_ids": label_ids(person),
        "picture_id": None,
        "postal_address": _postal_address(person),
        "notes": person.notes,
        "im": [],
        "birthday": person.birthday.isoformat() if person.birthday else None,
        "job_title": person.job_title,
        "custom_fields": {},
    }


def organization_v2(organization: Organization) -> dict[str, Any]:
    return {
        "id": organization.pk,
        "name": organization.name,
        "owner_id": organization.owner_id,
        "add_time": v2_time(organization.created_at),
        "update_time": v2_time(organization.updated_at),
        "is_deleted": organization.deleted_at is not None,
        "visible_to": organization.visible_to,
        "address": _address(organization),
        "label_ids": label_ids(organization),
        "website": organization.website,
        "linkedin": organization.linkedin,
        "industry": organization.industry,
        "annual_revenue": (
            float(organization.annual_revenue) if organization.annual_revenue is not None else None
        ),
        "employee_count": organization.employee_count,
        "custom_fields": {},
    }


# --- v1 -------------------------------------------------------------------------------------


def user_v1(user: User) -> dict[str, Any]:
    """The expanded `owner_id` of v1 objects (also `related_objects.user`)."""
    return {
        "id": user.pk,
        "name": user.name or user.email,
        "email": user.email,
        "has_pic": 0,
        "pic_hash": None,
        "active_flag": user.is_active,
        "value": user.pk,
    }


def organization_ref_v1(organization: Organization, *, people_count: int) -> dict[str, Any]:
    """The expanded `org_id` of v1 persons (also `related_objects.organization`)."""
    return {
        "name": organization.name,
        "people_count": people_count,
        "owner_id": organization.owner_id,
        "address": organization.address_value or None,
        "cc_email": None,
        "active_flag": organization.deleted_at is None,
        "value": organization.pk,
    }


def _counters_v1() -> dict[str, Any]:
    return {
        **dict.fromkeys(PERSON_COUNTERS, 0),
        "next_activity_date": None,
        "next_activity_time": None,
        "next_activity_id": None,
        "last_activity_id": None,
        "last_activity_date": None,
        "last_incoming_mail_time": None,
        "last_outgoing_mail_time": None,
    }


def person_v1(person: Person, *, people_counts: Mapping[int, int]) -> dict[str, Any]:
    organization = _live_organization(person)
    labels = label_ids(person)
    emails = person_emails(person)
    phones = person_phones(person)
    return {
        "id": person.pk,
        "company_id": person.company_id,
        "name": person.name,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "first_char": first_char(person.name),
        "active_flag": person.deleted_at is None,
        # Pipedrive answers a person without addresses with one empty entry.
        "email": emails or [{"value": "", "primary": True}],
        "phone": phones or [{"value": "", "primary": True}],
        "owner_id": user_v1(person.owner),
        "org_id": (
            organization_ref_v1(organization, people_count=people_counts.get(organization.pk, 0))
            if organization
            else None
        ),
        "org_name": organization.name if organization else None,
        "owner_name": person.owner.name or person.owner.email,
        "picture_id": None,
        "label": labels[0] if labels else None,
        "label_ids": labels,
        "visible_to": str(person.visible_to),
        "add_time": v1_time(person.created_at),
        "update_time": v1_time(person.updated_at),
        "delete_time": v1_time(person.deleted_at),
        "cc_email": None,
        "job_title": person.job_title,
        "notes": person.notes,
        "birthday": person.birthday.isoformat() if person.birthday else None,
        "postal_address": person.postal_address or None,
        "marketing_status": None,
        **_counters_v1(),
    }


def organization_v1(organization: Organization, *, people_count: int) -> dict[str, Any]:
    labels = label_ids(organization)
    address_parts = {
        f"address_{key}": value or None
        for key, value in _address(organization).items()
        if key != "value"
    }
    return {
        "id": organization.pk,
        "company_id": organization.company_id,
        "name": organization.name,
        "first_char": first_char(organization.name),
        "active_flag": organization.deleted_at is None,
        "owner_id": user_v1(organization.owner),
        "owner_name": organization.owner.name or organization.owner.email,
        "picture_id": None,
        "country_code": None,
        "label": labels[0] if labels else None,
        "label_ids": labels,
        "visible_to": str(organization.visible_to),
        "add_time": v1_time(organization.created_at),
        "update_time": v1_time(organization.updated_at),
        "delete_time": v1_time(organization.deleted_at),
        "cc_email": None,
        "address": organization.address_value or None,
        **address_parts,
        "formatted_address": organization.address_value or None,
        "website": organization.website or None,
        "linkedin": organization.linkedin or None,
        "industry": organization.industry or None,
        "annual_revenue": (
            float(organization.annual_revenue) if organization.annual_revenue is not None else None
        ),
        "employee_count": organization.employee_count,
        "people_count": people_count,
        "edit_name": True,
        "last_activity": None,
        "next_activity": None,
        **_counters_v1(),
    }
