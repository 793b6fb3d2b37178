"""The person and organization handlers of the import, and the name lookups that the deal and
lead handlers (crm.sales.imports) share: a row names its organization, which is found by name
or made."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.translation import gettext_lazy as _

from contacts import selectors, services
from contacts.imports.kinds import (
    ImportContext,
    ImportField,
    ItemHandler,
    RowError,
    RowResult,
    emails_split,
    label_ids,
    owner_id,
)
from contacts.models import DuplicatePolicy, ImportRowOutcome, Organization, Person
from crm.access import ItemKind, visible_items
from crm.services import ServiceError

_EMAIL_FIELDS = {
    "email": "work",
    "email_work": "work",
    "email_home": "home",
    "email_other": "other",
}
_PHONE_FIELDS = {
    "phone": "work",
    "phone_work": "work",
    "phone_mobile": "mobile",
    "phone_home": "home",
    "phone_other": "other",
}


def organization_find(*, context: ImportContext, name: str) -> Organization | None:
    """The live organization of this name (any case) that the member can see."""
    queryset = Organization.objects.for_company(context.company).filter(deleted_at__isnull=True)
    return (
        visible_items(queryset, membership=context.membership)
        .filter(name__iexact=" ".join(name.split()))
        .order_by("id")
        .first()
    )


def organization_ensure(
    *, context: ImportContext, name: str, also_created: list[list[str]]
) -> Organization:
    """Found by name, or made (and noted in `also_created`, for rollback)."""
    organization = organization_find(context=context, name=name)
    if organization is None:
        organization = services.organization_create(
            company=context.company,
            membership=context.membership,
            fields=services.OrganizationFields(name=name),
            source="app",
        )
        also_created.append([ItemKind.ORGANIZATION, str(organization.pk)])
    return organization


def person_ensure(
    *,
    context: ImportContext,
    name: str,
    organization: Organization | None,
    also_created: list[list[str]],
) -> Person:
    queryset = Person.objects.for_company(context.company).filter(deleted_at__isnull=True)
    person = (
        visible_items(queryset, membership=context.membership)
        .filter(name__iexact=" ".join(name.split()))
        .order_by("id")
        .first()
    )
    if person is None:
        fields = services.PersonFields(name=name)
        if organization is not None:
            fields["org_id"] = organization.pk
        person = services.person_create(
            company=context.company, membership=context.membership, fields=fields
        )
        also_created.append([ItemKind.PERSON, str(person.pk)])
    return person


def _service_error(error: ServiceError) -> RowError:
    return RowError(error.message)


class PersonHandler(ItemHandler):
    kind = ItemKind.PERSON
    label = _("Persons")
    label_kind = ItemKind.PERSON
    required = (("name", "first_name", "last_name"),)
    fields = (
        ImportField("name", _("Name"), ("full name", "contact name", "person name", "contact")),
        ImportField("first_name", _("First name"), ("firstname", "given name")),
        ImportField("last_name", _("Last name"), ("lastname", "surname", "family name")),
        ImportField("email", _("Email"), ("e-mail", "email address", "e-mail address"), "email"),
        ImportField("email_work", _("Email (work)"), ("email - work", "work email"), "email"),
        ImportField("email_home", _("Email (home)"), ("email - home", "home email"), "email"),
        ImportField("email_other", _("Email (other)"), ("email - other",), "email"),
        ImportField("phone", _("Phone"), ("telephone", "phone number", "tel")),
        ImportField("phone_work", _("Phone (work)"), ("phone - work", "work phone")),
        ImportField(
            "phone_mobile",
            _("Phone (mobile)"),
            ("phone - mobile", "mobile", "mobile phone", "cell"),
        ),
        ImportField("phone_home", _("Phone (home)"), ("phone - home", "home phone")),
        ImportField("phone_other", _("Phone (other)"), ("phone - other",)),
        ImportField(
            "organization",
            _("Organization"),
            ("organisation", "company", "organization - name", "person - organization"),
        ),
        ImportField("job_title", _("Job title"), ("title", "position", "job")),
        ImportField("owner", _("Owner"), ("owner name", "owner email"), "owner"),
        ImportField("label", _("Label"), ("labels",), "label"),
        ImportField("notes", _("Notes"), ("note", "comments")),
    )

    def apply(self, *, context: ImportContext, values: Mapping[str, str], policy: str) -> RowResult:
        self.checked(context=context, values=values)
        emails = [
            services.ContactPoint(value=address, label=label)
            for name, label in _EMAIL_FIELDS.items()
            for address in emails_split(values.get(name, ""))
        ]
        phones = [
            services.ContactPoint(value=values[name].strip(), label=label)
            for name, label in _PHONE_FIELDS.items()
            if values.get(name, "").strip()
        ]
        also_created: list[list[str]] = []
        fields = services.PersonFields()
        first, last = values.get("first_name", "").strip(), values.get("last_name", "").strip()
        name = values.get("name", "").strip() or services.join_name(first, last)
        fields["name"] = name
        if first or last:
            fields["first_name"], fields["last_name"] = first, last
        for key in ("job_title", "notes"):
            if values.get(key, "").strip():
                fields[key] = values[key].strip()
        if values.get("owner", "").strip():
            fields["owner_id"] = owner_id(context=context, text=values["owner"])
        if values.get("label", "").strip():
            fields["label_ids"] = label_ids(
                context=context, text=values["label"], kind=ItemKind.PERSON
            )
        existing = (
            self._duplicate(context=context, emails=emails)
            if policy != DuplicatePolicy.CREATE
            else None
        )
        if existing is not None and policy == DuplicatePolicy.SKIP:
            return RowResult(ImportRowOutcome.SKIPPED, str(existing.pk))
        try:
            if values.get("organization", "").strip():
                fields["org_id"] = organization_ensure(
                    context=context, name=values["organization"].strip(), also_created=also_created
                ).pk
            if existing is not None:
                previous = _person_previous(existing)
                known = {point["value"].lower() for point in previous["emails"]}
                fields["emails"] = [
                    *(services.ContactPoint(**point) for point in previous["emails"]),
                    *(point for point in emails if point.value.lower() not in known),
                ]
                if phones:
                    fields["phones"] = [
                        *(services.ContactPoint(**point) for point in previous["phones"]),
                        *phones,
                    ]
                person = services.person_update(
                    company=context.company,
                    membership=context.membership,
                    person=existing,
                    fields=fields,
                )
                return RowResult(ImportRowOutcome.UPDATED, str(person.pk), previous, also_created)
            fields["emails"], fields["phones"] = emails, phones
            person = services.person_create(
                company=context.company, membership=context.membership, fields=fields
            )
        except ServiceError as error:
            raise _service_error(error) from None
        return RowResult(ImportRowOutcome.CREATED, str(person.pk), None, also_created)

    def _duplicate(
        self, *, context: ImportContext, emails: Sequence[services.ContactPoint]
    ) -> Person | None:
        if not emails:
            return None
        found = selectors.persons_by_addresses(
            company=context.company, addresses=[point.value for point in emails]
        )
        ids = sorted({pk for pks in found.values() for pk in pks})
        if not ids:
            return None
        queryset = selectors.persons_loaded(company=context.company).filter(pk__in=ids)
        return visible_items(queryset, membership=context.membership).order_by("id").first()

    def delete(self, *, context: ImportContext, object_id: str) -> None:
        person = Person.objects.for_company(context.company).filter(pk=int(object_id)).first()
        if person is not None and person.deleted_at is None:
            services.person_delete(
                company=context.company, membership=context.membership, person=person
            )

    def restore(
        self, *, context: ImportContext, object_id: str, previous: Mapping[str, Any]
    ) -> None:
        person = Person.objects.for_company(context.company).get(pk=int(object_id))
        fields = services.PersonFields(
            name=previous["name"],
            first_name=previous["first_name"],
            last_name=previous["last_name"],
            job_title=previous["job_title"],
            notes=previous["notes"],
            org_id=previous["org_id"],
            owner_id=previous["owner_id"],
            label_ids=previous["label_ids"],
            emails=[services.ContactPoint(**point) for point in previous["emails"]],
            phones=[services.ContactPoint(**point) for point in previous["phones"]],
        )
        services.person_update(
            company=context.company, membership=context.membership, person=person, fields=fields
        )


def _person_previous(person: Person) -> dict[str, Any]:
    """What an update may change, as JSON, to put back on rollback."""
    return {
        "name": person.name,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "job_title": person.job_title,
        "notes": person.notes,
        "org_id": person.organization_id,
        "owner_id": person.owner_id,
        "label_ids": list(person.labels.values_list("pk", flat=True)),
        "emails": [
            {"value": e.value, "label": e.label, "primary": e.primary} for e in person.emails.all()
        ],
        "phones": [
            {"value": p.value, "label": p.label, "primary": p.primary} for p in person.phones.all()
        ],
    }


class OrganizationHandler(ItemHandler):
    kind = ItemKind.ORGANIZATION
    label = _("Organizations")
    label_kind = ItemKind.ORGANIZATION
    required = (("name",),)
    fields = (
        ImportField("name", _("Name"), ("organization", "organisation", "company", "company name")),
        ImportField("address", _("Address"), ("full address", "street address")),
        ImportField("website", _("Website"), ("web", "url", "homepage")),
        ImportField("industry", _("Industry"), ("sector",)),
        ImportField("owner", _("Owner"), ("owner name", "owner email"), "owner"),
        ImportField("label", _("Label"), ("labels",), "label"),
    )

    def apply(self, *, context: ImportContext, values: Mapping[str, str], policy: str) -> RowResult:
        self.checked(context=context, values=values)
        fields = services.OrganizationFields(name=values["name"].strip())
        if values.get("address", "").strip():
            fields["address"] = {"value": values["address"].strip()}
        for key in ("website", "industry"):
            if values.get(key, "").strip():
                fields[key] = values[key].strip()
        if values.get("owner", "").strip():
            fields["owner_id"] = owner_id(context=context, text=values["owner"])
        if values.get("label", "").strip():
            fields["label_ids"] = label_ids(
                context=context, text=values["label"], kind=ItemKind.ORGANIZATION
            )
        existing = (
            organization_find(context=context, name=fields["name"])
            if policy != DuplicatePolicy.CREATE
            else None
        )
        try:
            if existing is None:
                organization = services.organization_create(
                    company=context.company, membership=context.membership, fields=fields
                )
                return RowResult(ImportRowOutcome.CREATED, str(organization.pk))
            if policy == DuplicatePolicy.SKIP:
                return RowResult(ImportRowOutcome.SKIPPED, str(existing.pk))
            previous = {
                "name": existing.name,
                "address": {"value": existing.address_value},
                "website": existing.website,
                "industry": existing.industry,
                "owner_id": existing.owner_id,
                "label_ids": list(existing.labels.values_list("pk", flat=True)),
            }
            services.organization_update(
                company=context.company,
                membership=context.membership,
                organization=existing,
                fields=fields,
            )
        except ServiceError as error:
            raise _service_error(error) from None
        return RowResult(ImportRowOutcome.UPDATED, str(existing.pk), previous)

    def delete(self, *, context: ImportContext, object_id: str) -> None:
        organization = (
            Organization.objects.for_company(context.company).filter(pk=int(object_id)).first()
        )
        if organization is not None and organization.deleted_at is None:
            services.organization_delete(
                company=context.company, membership=context.membership, organization=organization
            )

    def restore(
        self, *, context: ImportContext, object_id: str, previous: Mapping[str, Any]
    ) -> None:
        organization = Organization.objects.for_company(context.company).get(pk=int(object_id))
        services.organization_update(
            company=context.company,
            membership=context.membership,
            organization=organization,
            fields=services.OrganizationFields(**previous),  # type: ignore[typeddict-item]
        )
