"""Writes of persons, organizations and organization relations.

Every function takes the company first (keyword-only), the acting member (`membership`: whose
access applies, who owns new items by default, who the change log names) and the `source` of
the change ("app" | "api" | "system"). Preconditions: the caller runs inside a transaction bound
to the company (a request, a TenantTask or `tenancy.bound`), and the items passed in were
fetched through `contacts.selectors.access_*` by the same member; the services check access
again before writing, because a write is where a mistake would cost most.

Each write records the change log (`crm.services.item_changes_record`) and publishes
`crm.hooks.ITEM_EVENT` with the item as both API versions show it; persons whose set of
addresses changes also publish `PERSON_ADDRESSES_CHANGED`, and merges publish
`PERSONS_MERGED` / `ORGANIZATIONS_MERGED` so the layers above move their links.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from contacts import representations, selectors
from contacts.addresses import InvalidEmailAddress, normalize_email
from contacts.models import (
    ContactLabel,
    Organization,
    OrganizationLabel,
    OrganizationRelation,
    Person,
    PersonEmail,
    PersonLabel,
    PersonPhone,
    RelationKind,
)
from crm import hooks
from crm.access import (
    ItemForbidden,
    ItemKind,
    ItemNotFound,
    OwnedItem,
    Visibility,
    can_edit,
    normalize_visible_to,
    teammate_ids,
)
from crm.models import ChangeSource, Company, Label, Membership, Role, User
from crm.services import ServiceError, item_changes_record, labels_resolve, visibility_default

logger = logging.getLogger(__name__)

EMAIL_LABELS = frozenset({ContactLabel.WORK, ContactLabel.HOME, ContactLabel.OTHER})
PHONE_LABELS = frozenset(ContactLabel.values)
MAX_CONTACT_POINTS = 50
# Fields of the v2 shape that are bookkeeping, not content: never "changed" in the log.
_UNLOGGED = frozenset({"id", "add_time", "update_time", "custom_fields", "picture_id", "im"})


@dataclass(frozen=True)
class ContactPoint:
    """An email address or phone number as given: only `value` is required."""

    value: str
    primary: bool | None = None
    label: str | None = None


class PersonFields(TypedDict, total=False):
    """What a create or update may set; an update changes only the keys present."""

    name: str
    first_name: str
    last_name: str
    owner_id: int
    org_id: int | None
    emails: Sequence[ContactPoint]
    phones: Sequence[ContactPoint]
    visible_to: object
    label_ids: Sequence[int]
    job_title: str
    notes: str
    birthday: datetime.date | None
    postal_address: Mapping[str, str]
    add_time: datetime.datetime


class OrganizationFields(TypedDict, total=False):
    name: str
    owner_id: int
    visible_to: object
    label_ids: Sequence[int]
    address: Mapping[str, str]
    website: str
    linkedin: str
    industry: str
    annual_revenue: Decimal | None
    employee_count: int | None
    add_time: datetime.datetime


# --- Shared checks ----------------------------------------------------------------------------


def _check_access(item: OwnedItem, *, membership: Membership) -> None:
    if item.company_id != membership.company_id:
        raise ItemNotFound
    if not can_edit(item, membership=membership):
        raise ItemForbidden


def _owner(*, company: Company, owner_id: object) -> User:
    """An active member of the company, by user id (Pipedrive's `owner_id`)."""
    membership = (
        Membership.objects.for_company(company)
        .select_related("user")
        .filter(user_id=owner_id, is_active=True, user__is_active=True)
        .first()
        if isinstance(owner_id, int) and 0 < owner_id < 2**63
        else None
    )
    if membership is None:
        raise ServiceError(
            _("The owner must be an active user of this company (no user %(id)s).")
            % {"id": owner_id},
            field="owner_id",
        )
    return membership.user


def _visible_to(value: object) -> int:
    try:
        return normalize_visible_to(value)
    except ValueError:
        raise ServiceError(
            _("Visibility must be 1 (owner), 3 (owner's teams) or 7 (entire company)."),
            field="visible_to",
        ) from None


def _label_ids(*, company: Company, kind: str, ids: Sequence[int]) -> list[Label]:
    return labels_resolve(company=company, kind=kind, ids=list(dict.fromkeys(ids)))


def _organization(*, membership: Membership, org_id: int) -> Organization:
    try:
        return selectors.access_organization(membership=membership, organization_id=org_id)
    except (ItemNotFound, ItemForbidden):
        raise ServiceError(
            _("No organization with id %(id)s.") % {"id": org_id}, field="org_id"
        ) from None


def _required_name(value: str, *, field: str = "name") -> str:
    name = " ".join(value.split())
    if not name:
        raise ServiceError(_("A name is required."), field=field)
    if len(name) > 255:
        raise ServiceError(_("A name may have at most 255 characters."), field=field)
    return name


def split_name(name: str) -> tuple[str, str]:
    """ "Ada King Lovelace" -> ("Ada", "King Lovelace"), as Pipedrive splits a full name."""
    first, _sep, last = " ".join(name.split()).partition(" ")
    return first, last


def join_name(first_name: str, last_name: str) -> str:
    return " ".join(part for part in (first_name.strip(), last_name.strip()) if part)


@dataclass(frozen=True)
class _Email:
    value: str
    normalized: str
    label: str
    primary: bool


def clean_emails(points: Iterable[ContactPoint]) -> list[_Email]:
    """Addresses normalized and deduplicated (first one wins), exactly one primary (the first
    marked so, else the first), labels work / home / other (work when none). Empty values are
    dropped: clients send `[{"value": ""}]` for "no address"."""
    cleaned: list[_Email] = []
    seen: set[str] = set()
    primary_given = False
    for point in points:
        value = point.value.strip()
        if not value:
            continue
        try:
            normalized = normalize_email(value)
        except InvalidEmailAddress:
            raise ServiceError(
                _("%(value)s is not a valid email address.") % {"value": value[:320]},
                field="emails",
            ) from None
        if len(value) > 320:
            raise ServiceError(_("An email address is too long."), field="emails")
        label = point.label or ContactLabel.WORK
        if label not in EMAIL_LABELS:
            raise ServiceError(
                _("An email label must be work, home or other, not %(label)s.")
                % {"label": label[:32]},
                field="emails",
            )
        if normalized in seen:
            continue
        seen.add(normalized)
        primary = bool(point.primary) and not primary_given
        primary_given = primary_given or primary
        cleaned.append(_Email(value, normalized, label, primary))
    if len(cleaned) > MAX_CONTACT_POINTS:
        raise ServiceError(_("A person may have at most 50 email addresses."), field="emails")
    if cleaned and not primary_given:
        first = cleaned[0]
        cleaned[0] = _Email(first.value, first.normalized, first.label, True)
    return cleaned


def clean_phones(points: Iterable[ContactPoint]) -> list[ContactPoint]:
    """Numbers as typed (stripped, deduplicated), exactly one primary, labels work / home /
    mobile / other."""
    cleaned: list[ContactPoint] = []
    seen: set[str] = set()
    primary_given = False
    for point in points:
        value = point.value.strip()
        if not value or value in seen:
            continue
        if len(value) > 64:
            raise ServiceError(_("A phone number may have at most 64 characters."), field="phones")
        label = point.label or ContactLabel.WORK
        if label not in PHONE_LABELS:
            raise ServiceError(
                _("A phone label must be work, home, mobile or other, not %(label)s.")
                % {"label": label[:32]},
                field="phones",
            )
        seen.add(value)
        primary = bool(point.primary) and not primary_given
        primary_given = primary_given or primary
        cleaned.append(ContactPoint(value, primary, label))
    if len(cleaned) > MAX_CONTACT_POINTS:
        raise ServiceError(_("A person may have at most 50 phone numbers."), field="phones")
    if cleaned and not primary_given:
        cleaned[0] = ContactPoint(cleaned[0].value, True, cleaned[0].label)
    return cleaned


# --- Events -----------------------------------------------------------------------------------

Snapshot = dict[str, dict[str, Any]]


def _person_snapshot(*, company: Company, person_id: int) -> tuple[Person, Snapshot]:
    person = selectors.persons_loaded(company=company).get(pk=person_id)
    counts = selectors.people_counts(company=company, organization_ids=[person.organization_id])
    return person, {
        "1.0": representations.person_v1(person, people_counts=counts),
        "2.0": representations.person_v2(person),
    }


def _organization_snapshot(
    *, company: Company, organization_id: int
) -> tuple[Organization, Snapshot]:
    organization = selectors.organizations_loaded(company=company).get(pk=organization_id)
    count = selectors.people_counts(company=company, organization_ids=[organization_id])
    return organization, {
        "1.0": representations.organization_v1(
            organization, people_count=count.get(organization_id, 0)
        ),
        "2.0": representations.organization_v2(organization),
    }


def permitted_user_ids(*, item: OwnedItem) -> tuple[int, ...]:
    """Active members who may see the item, by crm.access's rules, in one query."""
    members = Membership.objects.for_company(item.company_id).filter(
        is_active=True, user__is_active=True
    )
    if item.visible_to != Visibility.COMPANY:
        owner = Membership(company_id=item.company_id, user_id=item.owner_id)
        may_see = Q(role=Role.ADMIN) | Q(user_id=item.owner_id)
        if item.visible_to == Visibility.TEAMS:
            may_see |= Q(user_id__in=teammate_ids(membership=owner))
        members = members.filter(may_see)
    return tuple(sorted(members.values_list("user_id", flat=True)))


def _changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, Any]:
    """{field: (old, new)} of the v2 shapes, content fields only."""
    if before is None:
        return {
            key: (None, value)
            for key, value in after.items()
            if key not in _UNLOGGED and value not in (None, "", [], False)
        }
    return {
        key: (before.get(key), value)
        for key, value in after.items()
        if key not in _UNLOGGED and before.get(key) != value
    }


def _previous(before: Snapshot | None, after: Snapshot) -> dict[str, dict[str, Any]] | None:
    if before is None:
        return None
    return {
        version: {
            key: value for key, value in before[version].items() if after[version].get(key) != value
        }
        for version in after
    }


def _record_and_publish(
    *,
    company: Company,
    membership: Membership,
    kind: str,
    action: str,
    item: OwnedItem,
    before: Snapshot | None,
    after: Snapshot,
    source: str,
    merged_into_id: int | None = None,
) -> None:
    changes = _changes(before["2.0"] if before else None, after["2.0"])
    item_changes_record(
        company=company,
        kind=kind,
        item_key=item.pk,
        changes=changes,
        actor_id=membership.user_id,
        source=source,
    )
    hooks.publish(
        hooks.ITEM_EVENT,
        hooks.ItemEvent(
            company_id=company.pk,
            kind=kind,
            action=action,
            item_id=str(item.pk),
            actor_id=membership.user_id,
            source=source,
            current=after,
            previous=_previous(before, after),
            changed_fields=tuple(sorted(changes)),
            merged_into_id=str(merged_into_id) if merged_into_id is not None else None,
            permitted_user_ids=permitted_user_ids(item=item),
        ),
    )


def _publish_addresses(
    *, company: Company, person_id: int, before: Iterable[str], after: Iterable[str]
) -> None:
    old, new = frozenset(before), frozenset(after)
    if old == new:
        return
    hooks.publish(
        hooks.PERSON_ADDRESSES_CHANGED,
        hooks.PersonAddressesChanged(
            company_id=company.pk, person_id=person_id, added=new - old, removed=old - new
        ),
    )


def _addresses(person: Person) -> set[str]:
    """The person's normalized addresses (from the prefetched rows)."""
    return {email.normalized for email in person.emails.all()}


def _check_source(source: str) -> None:
    if source not in ChangeSource.values:
        raise ValueError(f"Unknown change source {source!r}")


# --- Persons ----------------------------------------------------------------------------------


def _person_names(
    fields: PersonFields, *, current: tuple[str, str, str] | None
) -> tuple[str, str, str]:
    """(name, first_name, last_name) after applying `fields` to `current` (None on create):
    a new full name splits into first and last; new parts alone join into the full name."""
    name, first, last = current or ("", "", "")
    has_parts = "first_name" in fields or "last_name" in fields
    first = " ".join(fields.get("first_name", first).split())
    last = " ".join(fields.get("last_name", last).split())
    if (fields.get("name") or "").strip():
        name = _required_name(fields["name"])
        if not has_parts:
            first, last = split_name(name)
    elif has_parts:
        name = _required_name(join_name(first, last))
    elif current is None or "name" in fields:
        # No name and no parts (or a blank name): a create needs one, an update keeps its own.
        raise ServiceError(_("A name is required."), field="name")
    if len(first) > 255 or len(last) > 255:
        raise ServiceError(_("A name may have at most 255 characters."), field="name")
    return name, first, last


_POSTAL_FIELDS = {
    "value": "postal_address",
    "country": "postal_address_country",
    "locality": "postal_address_locality",
    "route": "postal_address_route",
    "street_number": "postal_address_street_number",
    "postal_code": "postal_address_postal_code",
    "admin_area_level_1": "postal_address_admin_area_level_1",
}
_ADDRESS_FIELDS = {
    "value": "address_value",
    "country": "address_country",
    "admin_area_level_1": "address_admin_area_level_1",
    "admin_area_level_2": "address_admin_area_level_2",
    "locality": "address_locality",
    "sublocality": "address_sublocality",
    "route": "address_route",
    "street_number": "address_street_number",
    "subpremise": "address_subpremise",
    "postal_code": "address_postal_code",
}


def _apply_address(
    item: Person | Organization,
    address: Mapping[str, str],
    *,
    columns: Mapping[str, str],
    field: str,
) -> list[str]:
    changed = []
    for key, column in columns.items():
        if key not in address:
            continue
        value = (address[key] or "").strip()
        limit = getattr(item._meta.get_field(column), "max_length", None) or 0
        if len(value) > limit:
            raise ServiceError(
                _("%(part)s may have at most %(limit)s characters.")
                % {"part": f"{field}.{key}", "limit": limit},
                field=field,
            )
        setattr(item, column, value)
        changed.append(column)
    return changed


def _apply_person_fields(
    *, company: Company, membership: Membership, person: Person, fields: PersonFields
) -> list[str]:
    """Set the plain fields present in `fields` on `person` (unsaved); the changed columns."""
    changed: list[str] = []
    if "owner_id" in fields:
        person.owner = _owner(company=company, owner_id=fields["owner_id"])
        changed.append("owner")
    if "visible_to" in fields:
        person.visible_to = _visible_to(fields["visible_to"])
        changed.append("visible_to")
    if "org_id" in fields:
        org_id = fields["org_id"]
        person.organization = (
            None if org_id is None else _organization(membership=membership, org_id=org_id)
        )
        changed.append("organization")
    for name in ("job_title", "notes"):
        if name in fields:
            value = str(fields[name]).strip()
            if name == "job_title" and len(value) > 255:
                raise ServiceError(_("A job title may have at most 255 characters."), field=name)
            setattr(person, name, value)
            changed.append(name)
    if "birthday" in fields:
        person.birthday = fields["birthday"]
        changed.append("birthday")
    if "postal_address" in fields:
        changed += _apply_address(
            person, fields["postal_address"], columns=_POSTAL_FIELDS, field="postal_address"
        )
    return changed


def _set_person_emails(*, company: Company, person: Person, emails: list[_Email]) -> None:
    PersonEmail.objects.for_company(company).filter(person=person).delete()
    PersonEmail.objects.bulk_create(
        PersonEmail(
            company=company,
            person=person,
            value=email.value,
            normalized=email.normalized,
            label=email.label,
            primary=email.primary,
            position=position,
        )
        for position, email in enumerate(emails)
    )


def _set_person_phones(*, company: Company, person: Person, phones: list[ContactPoint]) -> None:
    PersonPhone.objects.for_company(company).filter(person=person).delete()
    PersonPhone.objects.bulk_create(
        PersonPhone(
            company=company,
            person=person,
            value=phone.value,
            label=phone.label or ContactLabel.WORK,
            primary=bool(phone.primary),
            position=position,
        )
        for position, phone in enumerate(phones)
    )


def _set_person_labels(*, company: Company, person: Person, labels: list[Label]) -> None:
    PersonLabel.objects.for_company(company).filter(person=person).exclude(
        label__in=labels
    ).delete()
    PersonLabel.objects.bulk_create(
        (PersonLabel(company=company, person=person, label=label) for label in labels),
        ignore_conflicts=True,
    )


def person_create(
    *, company: Company, membership: Membership, fields: PersonFields, source: str = "app"
) -> Person:
    """A new person owned by `owner_id` (the acting user when absent), visible by the
    company's default for persons unless `visible_to` says otherwise."""
    _check_source(source)
    name, first, last = _person_names(fields, current=None)
    emails = clean_emails(fields.get("emails", ()))
    phones = clean_phones(fields.get("phones", ()))
    labels = _label_ids(company=company, kind=ItemKind.PERSON, ids=fields.get("label_ids", ()))
    person = Person(
        company=company,
        name=name,
        first_name=first,
        last_name=last,
        owner_id=membership.user_id,
        visible_to=visibility_default(company=company, kind=ItemKind.PERSON),
    )
    _apply_person_fields(company=company, membership=membership, person=person, fields=fields)
    person.save()
    _set_person_emails(company=company, person=person, emails=emails)
    _set_person_phones(company=company, person=person, phones=phones)
    _set_person_labels(company=company, person=person, labels=labels)
    if "add_time" in fields:
        # created_at is auto_now_add: an imported item keeps its original time this way.
        Person.objects.for_company(company).filter(pk=person.pk).update(
            created_at=fields["add_time"]
        )
    person, after = _person_snapshot(company=company, person_id=person.pk)
    _record_and_publish(
        company=company,
        membership=membership,
        kind=ItemKind.PERSON,
        action="added",
        item=person,
        before=None,
        after=after,
        source=source,
    )
    _publish_addresses(company=company, person_id=person.pk, before=(), after=_addresses(person))
    return person


def person_update(
    *,
    company: Company,
    membership: Membership,
    person: Person,
    fields: PersonFields,
    source: str = "app",
) -> Person:
    """Change the fields present in `fields`; `emails`, `phones` and `label_ids` replace the
    whole list."""
    _check_source(source)
    _check_access(person, membership=membership)
    person, before = _person_snapshot(company=company, person_id=person.pk)
    old_addresses = _addresses(person)
    name, first, last = _person_names(
        fields, current=(person.name, person.first_name, person.last_name)
    )
    person.name, person.first_name, person.last_name = name, first, last
    changed = ["name", "first_name", "last_name", "updated_at"]
    changed += _apply_person_fields(
        company=company, membership=membership, person=person, fields=fields
    )
    if "emails" in fields:
        _set_person_emails(company=company, person=person, emails=clean_emails(fields["emails"]))
    if "phones" in fields:
        _set_person_phones(company=company, person=person, phones=clean_phones(fields["phones"]))
    if "label_ids" in fields:
        labels = _label_ids(company=company, kind=ItemKind.PERSON, ids=fields["label_ids"])
        _set_person_labels(company=company, person=person, labels=labels)
    person.save(update_fields=changed)
    person, after = _person_snapshot(company=company, person_id=person.pk)
    _record_and_publish(
        company=company,
        membership=membership,
        kind=ItemKind.PERSON,
        action="updated",
        item=person,
        before=before,
        after=after,
        source=source,
    )
    _publish_addresses(
        company=company, person_id=person.pk, before=old_addresses, after=_addresses(person)
    )
    return person


def _person_set_deleted(
    *,
    company: Company,
    membership: Membership,
    person: Person,
    deleted: bool,
    source: str,
    action: str,
    merged_into_id: int | None = None,
) -> Person:
    person, before = _person_snapshot(company=company, person_id=person.pk)
    person.deleted_at = timezone.now() if deleted else None
    person.save(update_fields=["deleted_at", "updated_at"])
    person, after = _person_snapshot(company=company, person_id=person.pk)
    _record_and_publish(
        company=company,
        membership=membership,
        kind=ItemKind.PERSON,
        action=action,
        item=person,
        before=before,
        after=after,
        source=source,
        merged_into_id=merged_into_id,
    )
    # Mail linking sees only live persons: deleting takes the addresses away, restoring
    # gives them back.
    addresses = _addresses(person)
    _publish_addresses(
        company=company,
        person_id=person.pk,
        before=addresses if deleted else (),
        after=() if deleted else addresses,
    )
    return person


def person_delete(
    *, company: Company, membership: Membership, person: Person, source: str = "app"
) -> Person:
    """Soft delete: gone from lists, search and linking; restorable for CRM_SOFT_DELETE_DAYS,
    then `contacts.tasks.purge_deleted` removes it."""
    _check_source(source)
    _check_access(person, membership=membership)
    if person.deleted_at is not None:
        raise ItemNotFound
    return _person_set_deleted(
        company=company,
        membership=membership,
        person=person,
        deleted=True,
        source=source,
        action="deleted",
    )


def _check_restorable(item: Person | Organization) -> None:
    if item.deleted_at is None:
        raise ServiceError(_("This item is not deleted."))
    if item.merged_into_id is not None:
        raise ServiceError(
            _("This item was merged into item %(id)s and cannot be restored.")
            % {"id": item.merged_into_id}
        )
    cutoff = timezone.now() - datetime.timedelta(days=settings.CRM_SOFT_DELETE_DAYS)
    if item.deleted_at < cutoff:
        raise ServiceError(
            _("Deleted items can be restored for %(days)s days only.")
            % {"days": settings.CRM_SOFT_DELETE_DAYS}
        )


def person_restore(
    *, company: Company, membership: Membership, person: Person, source: str = "app"
) -> Person:
    """Undo a soft delete made less than CRM_SOFT_DELETE_DAYS ago."""
    _check_source(source)
    _check_access(person, membership=membership)
    _check_restorable(person)
    return _person_set_deleted(
        company=company,
        membership=membership,
        person=person,
        deleted=False,
        source=source,
        action="updated",
    )


def _bulk_accessed(queryset: Any, *, membership: Membership, ids: Sequence[int]) -> list[Any]:
    """The live items with these ids, all of which the member may see: ItemNotFound /
    ItemForbidden naming none otherwise, so a bulk delete is all or nothing."""
    wanted = list(dict.fromkeys(ids))
    items = list(queryset.filter(pk__in=wanted, deleted_at__isnull=True).order_by("pk"))
    if len(items) != len(wanted):
        raise ItemNotFound
    for item in items:
        _check_access(item, membership=membership)
    return items


def persons_delete(
    *, company: Company, membership: Membership, person_ids: Sequence[int], source: str = "app"
) -> list[int]:
    """Soft-delete several persons; all or none. Returns their ids."""
    _check_source(source)
    persons = _bulk_accessed(
        Person.objects.for_company(company), membership=membership, ids=person_ids
    )
    for person in persons:
        _person_set_deleted(
            company=company,
            membership=membership,
            person=person,
            deleted=True,
            source=source,
            action="deleted",
        )
    return [person.pk for person in persons]


def _lock(model: type[Person] | type[Organization], *, company: Company, ids: list[int]) -> None:
    # Rows are locked in id order, so two merges of the same pair never deadlock.
    list(
        model.objects.for_company(company)
        .filter(pk__in=ids)
        .order_by("pk")
        .select_for_update()
        .values_list("pk", flat=True)
    )


_PERSON_FILLABLE = (
    "job_title",
    "notes",
    "birthday",
    *_POSTAL_FIELDS.values(),
)


@transaction.atomic
def person_merge(
    *,
    company: Company,
    membership: Membership,
    keep: Person,
    merged: Person,
    source: str = "app",
) -> Person:
    """Merge `merged` into `keep`: its addresses (those `keep` lacks, compared normalized),
    phones and labels move over, `keep`'s empty fields take `merged`'s values, and every link
    of the layers above moves through `PERSONS_MERGED`. `merged` is then soft-deleted."""
    _check_source(source)
    if keep.pk == merged.pk:
        raise ServiceError(_("A person cannot be merged with itself."), field="merge_with_id")
    _check_access(keep, membership=membership)
    _check_access(merged, membership=membership)
    if keep.deleted_at is not None or merged.deleted_at is not None:
        raise ItemNotFound
    _lock(Person, company=company, ids=[keep.pk, merged.pk])
    keep, keep_before = _person_snapshot(company=company, person_id=keep.pk)
    merged, _merged_before = _person_snapshot(company=company, person_id=merged.pk)
    keep_addresses = _addresses(keep)
    merged_addresses = _addresses(merged)

    # Addresses: move the new ones (never primary: keep's primary stays), drop duplicates.
    position = len(keep_addresses)
    emails = PersonEmail.objects.for_company(company)
    emails.filter(person=merged, normalized__in=keep_addresses).delete()
    for email in merged.emails.all():
        if email.normalized in keep_addresses:
            continue
        emails.filter(pk=email.pk).update(person=keep, primary=False, position=position)
        position += 1
    if not keep_addresses and merged_addresses:
        first = emails.filter(person=keep).order_by("position", "id").first()
        if first is not None:
            emails.filter(pk=first.pk).update(primary=True)

    phones = PersonPhone.objects.for_company(company)
    keep_numbers = {phone.value for phone in keep.phones.all()}
    phones.filter(person=merged, value__in=keep_numbers).delete()
    position = len(keep_numbers)
    for phone in merged.phones.all():
        if phone.value in keep_numbers:
            continue
        # Keep's primary number stays primary; a person who had none gets merged's first.
        phones.filter(pk=phone.pk).update(
            person=keep, primary=not keep_numbers and position == 0, position=position
        )
        position += 1

    keep_labels = [label.pk for label in keep.labels.all()]
    PersonLabel.objects.bulk_create(
        (
            PersonLabel(company=company, person=keep, label=label)
            for label in merged.labels.all()
            if label.pk not in keep_labels
        ),
        ignore_conflicts=True,
    )
    filled = []
    for column in _PERSON_FILLABLE:
        if not getattr(keep, column) and getattr(merged, column):
            setattr(keep, column, getattr(merged, column))
            filled.append(column)
    if keep.organization_id is None and merged.organization_id is not None:
        keep.organization_id = merged.organization_id
        filled.append("organization")
    keep.save(update_fields=[*filled, "updated_at"])

    # The layers above (deals, leads, projects, mail) move their links now, in this transaction.
    hooks.publish(
        hooks.PERSONS_MERGED,
        hooks.ItemsMerged(company_id=company.pk, merged_id=merged.pk, into_id=keep.pk),
    )
    Person.objects.for_company(company).filter(pk=merged.pk).update(merged_into=keep)
    merged.merged_into_id = keep.pk
    _person_set_deleted(
        company=company,
        membership=membership,
        person=merged,
        deleted=True,
        source=source,
        action="merged",
        merged_into_id=keep.pk,
    )
    # The merged person's addresses left with it: its own event (above) had none left to
    # remove, so say so here.
    _publish_addresses(company=company, person_id=merged.pk, before=merged_addresses, after=())
    keep, keep_after = _person_snapshot(company=company, person_id=keep.pk)
    _record_and_publish(
        company=company,
        membership=membership,
        kind=ItemKind.PERSON,
        action="updated",
        item=keep,
        before=keep_before,
        after=keep_after,
        source=source,
    )
    _publish_addresses(
        company=company, person_id=keep.pk, before=keep_addresses, after=_addresses(keep)
    )
    return keep


# --- Organizations ----------------------------------------------------------------------------


def _apply_organization_fields(
    *, company: Company, organization: Organization, fields: OrganizationFields
) -> list[str]:
    changed: list[str] = []
    if "name" in fields:
        organization.name = _required_name(fields["name"])
        changed.append("name")
    if "owner_id" in fields:
        organization.owner = _owner(company=company, owner_id=fields["owner_id"])
        changed.append("owner")
    if "visible_to" in fields:
        organization.visible_to = _visible_to(fields["visible_to"])
        changed.append("visible_to")
    for name, limit in (("website", 500), ("linkedin", 500), ("industry", 100)):
        if name in fields:
            value = str(fields[name] or "").strip()  # type: ignore[literal-required]
            if len(value) > limit:
                raise ServiceError(
                    _("%(field)s may have at most %(limit)s characters.")
                    % {"field": name, "limit": limit},
                    field=name,
                )
            setattr(organization, name, value)
            changed.append(name)
    if "annual_revenue" in fields:
        revenue = fields["annual_revenue"]
        if revenue is not None and (revenue.is_nan() or abs(revenue) >= Decimal("1e16")):
            raise ServiceError(_("Annual revenue is out of range."), field="annual_revenue")
        organization.annual_revenue = revenue
        changed.append("annual_revenue")
    if "employee_count" in fields:
        count = fields["employee_count"]
        if count is not None and not 0 <= count < 2**31:
            raise ServiceError(_("Employee count is out of range."), field="employee_count")
        organization.employee_count = count
        changed.append("employee_count")
    if "address" in fields:
        changed += _apply_address(
            organization, fields["address"], columns=_ADDRESS_FIELDS, field="address"
        )
    return changed


def _set_organization_labels(
    *, company: Company, organization: Organization, labels: list[Label]
) -> None:
    OrganizationLabel.objects.for_company(company).filter(organization=organization).exclude(
        label__in=labels
    ).delete()
    OrganizationLabel.objects.bulk_create(
        (
            OrganizationLabel(company=company, organization=organization, label=label)
            for label in labels
        ),
        ignore_conflicts=True,
    )


def organization_create(
    *, company: Company, membership: Membership, fields: OrganizationFields, source: str = "app"
) -> Organization:
    _check_source(source)
    if "name" not in fields:
        raise ServiceError(_("A name is required."), field="name")
    labels = _label_ids(
        company=company, kind=ItemKind.ORGANIZATION, ids=fields.get("label_ids", ())
    )
    organization = Organization(
        company=company,
        owner_id=membership.user_id,
        visible_to=visibility_default(company=company, kind=ItemKind.ORGANIZATION),
    )
    _apply_organization_fields(company=company, organization=organization, fields=fields)
    organization.save()
    _set_organization_labels(company=company, organization=organization, labels=labels)
    if "add_time" in fields:
        Organization.objects.for_company(company).filter(pk=organization.pk).update(
            created_at=fields["add_time"]
        )
    organization, after = _organization_snapshot(company=company, organization_id=organization.pk)
    _record_and_publish(
        company=company,
        membership=membership,
        kind=ItemKind.ORGANIZATION,
        action="added",
        item=organization,
        before=None,
        after=after,
        source=source,
    )
    return organization


def organization_update(
    *,
    company: Company,
    membership: Membership,
    organization: Organization,
    fields: OrganizationFields,
    source: str = "app",
) -> Organization:
    _check_source(source)
    _check_access(organization, membership=membership)
    organization, before = _organization_snapshot(company=company, organization_id=organization.pk)
    changed = _apply_organization_fields(company=company, organization=organization, fields=fields)
    if "label_ids" in fields:
        labels = _label_ids(company=company, kind=ItemKind.ORGANIZATION, ids=fields["label_ids"])
        _set_organization_labels(company=company, organization=organization, labels=labels)
    organization.save(update_fields=[*changed, "updated_at"])
    organization, after = _organization_snapshot(company=company, organization_id=organization.pk)
    _record_and_publish(
        company=company,
        membership=membership,
        kind=ItemKind.ORGANIZATION,
        action="updated",
        item=organization,
        before=before,
        after=after,
        source=source,
    )
    return organization


def _organization_set_deleted(
    *,
    company: Company,
    membership: Membership,
    organization: Organization,
    deleted: bool,
    source: str,
    action: str,
    merged_into_id: int | None = None,
) -> Organization:
    organization, before = _organization_snapshot(company=company, organization_id=organization.pk)
    organization.deleted_at = timezone.now() if deleted else None
    organization.save(update_fields=["deleted_at", "updated_at"])
    organization, after = _organization_snapshot(company=company, organization_id=organization.pk)
    _record_and_publish(
        company=company,
        membership=membership,
        kind=ItemKind.ORGANIZATION,
        action=action,
        item=organization,
        before=before,
        after=after,
        source=source,
        merged_into_id=merged_into_id,
    )
    return organization


def organization_delete(
    *, company: Company, membership: Membership, organization: Organization, source: str = "app"
) -> Organization:
    """Soft delete. Its persons keep the link (shown as no organization) until the purge,
    so a restore gives it its people back."""
    _check_source(source)
    _check_access(organization, membership=membership)
    if organization.deleted_at is not None:
        raise ItemNotFound
    return _organization_set_deleted(
        company=company,
        membership=membership,
        organization=organization,
        deleted=True,
        source=source,
        action="deleted",
    )


def organization_restore(
    *, company: Company, membership: Membership, organization: Organization, source: str = "app"
) -> Organization:
    _check_source(source)
    _check_access(organization, membership=membership)
    _check_restorable(organization)
    return _organization_set_deleted(
        company=company,
        membership=membership,
        organization=organization,
        deleted=False,
        source=source,
        action="updated",
    )


def organizations_delete(
    *,
    company: Company,
    membership: Membership,
    organization_ids: Sequence[int],
    source: str = "app",
) -> list[int]:
    _check_source(source)
    organizations = _bulk_accessed(
        Organization.objects.for_company(company), membership=membership, ids=organization_ids
    )
    for organization in organizations:
        _organization_set_deleted(
            company=company,
            membership=membership,
            organization=organization,
            deleted=True,
            source=source,
            action="deleted",
        )
    return [organization.pk for organization in organizations]


_ORGANIZATION_FILLABLE = (
    "industry",
    "website",
    "linkedin",
    "annual_revenue",
    "employee_count",
    *_ADDRESS_FIELDS.values(),
)


@transaction.atomic
def organization_merge(
    *,
    company: Company,
    membership: Membership,
    keep: Organization,
    merged: Organization,
    source: str = "app",
) -> Organization:
    """Merge `merged` into `keep`: its persons, relations and labels move over, `keep`'s empty
    fields take `merged`'s values, the layers above move their links through
    `ORGANIZATIONS_MERGED`, and `merged` is soft-deleted."""
    _check_source(source)
    if keep.pk == merged.pk:
        raise ServiceError(
            _("An organization cannot be merged with itself."), field="merge_with_id"
        )
    _check_access(keep, membership=membership)
    _check_access(merged, membership=membership)
    if keep.deleted_at is not None or merged.deleted_at is not None:
        raise ItemNotFound
    _lock(Organization, company=company, ids=[keep.pk, merged.pk])
    keep, keep_before = _organization_snapshot(company=company, organization_id=keep.pk)
    merged, _merged_before = _organization_snapshot(company=company, organization_id=merged.pk)

    moved = list(
        Person.objects.for_company(company).filter(organization=merged).values_list("pk", flat=True)
    )
    Person.objects.for_company(company).filter(pk__in=moved).update(
        organization=keep, updated_at=timezone.now()
    )
    for person_id in moved:
        item_changes_record(
            company=company,
            kind=ItemKind.PERSON,
            item_key=person_id,
            changes={"org_id": (merged.pk, keep.pk)},
            actor_id=membership.user_id,
            source=source,
        )
    _move_relations(company=company, keep=keep, merged=merged)

    keep_labels = {label.pk for label in keep.labels.all()}
    OrganizationLabel.objects.bulk_create(
        (
            OrganizationLabel(company=company, organization=keep, label=label)
            for label in merged.labels.all()
            if label.pk not in keep_labels
        ),
        ignore_conflicts=True,
    )
    filled = []
    for column in _ORGANIZATION_FILLABLE:
        if getattr(keep, column) in (None, "") and getattr(merged, column) not in (None, ""):
            setattr(keep, column, getattr(merged, column))
            filled.append(column)
    keep.save(update_fields=[*filled, "updated_at"])

    hooks.publish(
        hooks.ORGANIZATIONS_MERGED,
        hooks.ItemsMerged(company_id=company.pk, merged_id=merged.pk, into_id=keep.pk),
    )
    Organization.objects.for_company(company).filter(pk=merged.pk).update(merged_into=keep)
    merged.merged_into_id = keep.pk
    _organization_set_deleted(
        company=company,
        membership=membership,
        organization=merged,
        deleted=True,
        source=source,
        action="merged",
        merged_into_id=keep.pk,
    )
    keep, keep_after = _organization_snapshot(company=company, organization_id=keep.pk)
    _record_and_publish(
        company=company,
        membership=membership,
        kind=ItemKind.ORGANIZATION,
        action="updated",
        item=keep,
        before=keep_before,
        after=keep_after,
        source=source,
    )
    return keep


def _move_relations(*, company: Company, keep: Organization, merged: Organization) -> None:
    """Re-point the merged organization's relations at the kept one, dropping those that would
    relate it to itself or repeat one it has."""
    relations = OrganizationRelation.objects.for_company(company)
    existing = {
        frozenset((relation.organization_id, relation.related_organization_id))
        for relation in relations.filter(Q(organization=keep) | Q(related_organization=keep))
    }
    for relation in relations.filter(Q(organization=merged) | Q(related_organization=merged)):
        owner = keep.pk if relation.organization_id == merged.pk else relation.organization_id
        linked = (
            keep.pk
            if relation.related_organization_id == merged.pk
            else relation.related_organization_id
        )
        pair = frozenset((owner, linked))
        if owner == linked or pair in existing:
            relations.filter(pk=relation.pk).delete()
            continue
        relations.filter(pk=relation.pk).update(
            organization_id=owner, related_organization_id=linked
        )
        existing.add(pair)


# --- Organization relations -------------------------------------------------------------------


def _relation_check(
    *,
    company: Company,
    membership: Membership,
    kind: str,
    organization: Organization,
    related_organization: Organization,
    relation: OrganizationRelation | None = None,
) -> None:
    if kind not in RelationKind.values:
        raise ServiceError(_("The type must be parent or related."), field="type")
    if organization.pk == related_organization.pk:
        raise ServiceError(
            _("An organization cannot be related to itself."), field="rel_linked_org_id"
        )
    for item in (organization, related_organization):
        _check_access(item, membership=membership)
        if item.deleted_at is not None:
            raise ItemNotFound
    pair = Q(organization=organization, related_organization=related_organization) | Q(
        organization=related_organization, related_organization=organization
    )
    clash = OrganizationRelation.objects.for_company(company).filter(pair)
    if relation is not None:
        clash = clash.exclude(pk=relation.pk)
    if clash.exists():
        raise ServiceError(_("These organizations are related already."), field="rel_linked_org_id")


def organization_relation_add(
    *,
    company: Company,
    membership: Membership,
    kind: str,
    organization: Organization,
    related_organization: Organization,
) -> OrganizationRelation:
    """Relate two organizations: for `parent`, `organization` is the parent of
    `related_organization` (which sees it as its parent; it sees a subsidiary)."""
    _relation_check(
        company=company,
        membership=membership,
        kind=kind,
        organization=organization,
        related_organization=related_organization,
    )
    try:
        with transaction.atomic():
            return OrganizationRelation.objects.create(
                company=company,
                organization=organization,
                related_organization=related_organization,
                kind=kind,
            )
    except IntegrityError:
        # A concurrent request related the same pair first.
        raise ServiceError(
            _("These organizations are related already."), field="rel_linked_org_id"
        ) from None


def organization_relation_update(
    *,
    company: Company,
    membership: Membership,
    relation: OrganizationRelation,
    kind: str,
    organization: Organization,
    related_organization: Organization,
) -> OrganizationRelation:
    _relation_check(
        company=company,
        membership=membership,
        kind=kind,
        organization=organization,
        related_organization=related_organization,
        relation=relation,
    )
    relation.kind = kind
    relation.organization = organization
    relation.related_organization = related_organization
    relation.save(update_fields=["kind", "organization", "related_organization"])
    return relation


def organization_relation_remove(
    *, company: Company, membership: Membership, relation: OrganizationRelation
) -> None:
    for item in (relation.organization, relation.related_organization):
        _check_access(item, membership=membership)
    OrganizationRelation.objects.for_company(company).filter(pk=relation.pk).delete()


# --- The purge --------------------------------------------------------------------------------


def contacts_purge_deleted(*, company: Company | int, now: datetime.datetime | None = None) -> int:
    """Hard-delete persons and organizations soft-deleted more than CRM_SOFT_DELETE_DAYS ago.
    Returns how many rows went. A row the database refuses to delete (a constraint of a layer
    above) is skipped and logged; the next run tries again."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=settings.CRM_SOFT_DELETE_DAYS)
    purged = 0
    for model in (Person, Organization):
        expired = model.objects.for_company(company).filter(deleted_at__lt=cutoff)
        try:
            with transaction.atomic():
                purged += expired.delete()[1].get(model._meta.label, 0)
            continue
        except IntegrityError:
            logger.warning("Bulk purge of %s failed; purging one by one", model.__name__)
        for pk in list(expired.values_list("pk", flat=True)):
            try:
                with transaction.atomic():
                    model.objects.for_company(company).filter(pk=pk).delete()
                purged += 1
            except IntegrityError:
                logger.exception("Could not purge %s %s", model.__name__, pk)
    return purged
