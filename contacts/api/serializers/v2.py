"""v2 input: strict JSON types (numbers are numbers), `emails` / `phones`, RFC 3339 times."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from contacts.api.serializers.common import (
    MAX_ID,
    AddressSerializer,
    CommaListField,
    ContactPointSerializer,
    IdListField,
    StrictCharField,
    StrictIntegerField,
    address,
    contact_points,
)
from contacts.representations import ORGANIZATION_INCLUDE_FIELDS, PERSON_INCLUDE_FIELDS
from contacts.selectors import ORGANIZATION_SEARCH_FIELDS, PERSON_SEARCH_FIELDS, ListFilters
from contacts.services import OrganizationFields, PersonFields


class PersonBodySerializer(serializers.Serializer[Any]):
    name = StrictCharField(required=False, allow_blank=True, max_length=255)
    first_name = StrictCharField(required=False, allow_blank=True, max_length=255)
    last_name = StrictCharField(required=False, allow_blank=True, max_length=255)
    owner_id = StrictIntegerField(required=False)
    org_id = StrictIntegerField(required=False, allow_null=True)
    emails = serializers.ListField(child=ContactPointSerializer(), required=False, max_length=50)
    phones = serializers.ListField(child=ContactPointSerializer(), required=False, max_length=50)
    visible_to = StrictIntegerField(required=False)
    label_ids = serializers.ListField(child=StrictIntegerField(), required=False, max_length=100)
    job_title = StrictCharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    notes = StrictCharField(required=False, allow_blank=True, allow_null=True)
    birthday = serializers.DateField(required=False, allow_null=True)
    postal_address = AddressSerializer(required=False, allow_null=True)
    add_time = serializers.DateTimeField(required=False)
    # Accepted and not kept (yet): instant messengers, marketing status, custom fields.
    im = serializers.JSONField(required=False)
    marketing_status = serializers.JSONField(required=False)
    custom_fields = serializers.JSONField(required=False)


def person_fields(data: dict[str, Any], *, creating: bool) -> PersonFields:
    fields = PersonFields()
    for key in ("name", "first_name", "last_name", "owner_id", "org_id", "visible_to"):
        if key in data:
            fields[key] = data[key]
    for key in ("job_title", "notes"):
        if key in data:
            fields[key] = data[key] or ""  # type: ignore[literal-required]
    if "emails" in data:
        fields["emails"] = contact_points(data["emails"])
    if "phones" in data:
        fields["phones"] = contact_points(data["phones"])
    if "label_ids" in data:
        fields["label_ids"] = data["label_ids"]
    if "birthday" in data:
        fields["birthday"] = data["birthday"]
    if "postal_address" in data:
        fields["postal_address"] = address(data["postal_address"] or {"value": ""})
    if creating and "add_time" in data:
        fields["add_time"] = data["add_time"]
    return fields


class OrganizationBodySerializer(serializers.Serializer[Any]):
    name = StrictCharField(required=False, allow_blank=True, max_length=255)
    owner_id = StrictIntegerField(required=False)
    visible_to = StrictIntegerField(required=False)
    label_ids = serializers.ListField(child=StrictIntegerField(), required=False, max_length=100)
    address = AddressSerializer(required=False, allow_null=True)
    website = StrictCharField(required=False, allow_blank=True, allow_null=True)
    linkedin = StrictCharField(required=False, allow_blank=True, allow_null=True)
    industry = StrictCharField(required=False, allow_blank=True, allow_null=True)
    annual_revenue = serializers.DecimalField(
        max_digits=18, decimal_places=2, required=False, allow_null=True
    )
    employee_count = StrictIntegerField(required=False, allow_null=True, max_value=2**31 - 1)
    add_time = serializers.DateTimeField(required=False)
    custom_fields = serializers.JSONField(required=False)


def organization_fields(data: dict[str, Any], *, creating: bool) -> OrganizationFields:
    fields = OrganizationFields()
    for key in (
        "name",
        "owner_id",
        "visible_to",
        "label_ids",
        "website",
        "linkedin",
        "industry",
        "annual_revenue",
        "employee_count",
    ):
        if key in data:
            fields[key] = data[key]
    if "address" in data:
        fields["address"] = address(data["address"] or {"value": ""})
    if creating and "add_time" in data:
        fields["add_time"] = data["add_time"]
    return fields


SORT_BY = {"id": "id", "update_time": "updated_at", "add_time": "created_at"}


class ListParamsSerializer(serializers.Serializer[Any]):
    ids = IdListField(required=False)
    owner_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    updated_since = serializers.DateTimeField(required=False)
    updated_until = serializers.DateTimeField(required=False)
    sort_by = serializers.ChoiceField(choices=sorted(SORT_BY), required=False, default="id")
    sort_direction = serializers.ChoiceField(choices=["asc", "desc"], required=False, default="asc")
    # Saved filters, custom-field selection and option labels are not supported: ignored.
    filter_id = serializers.CharField(required=False)
    custom_fields = serializers.CharField(required=False)


class PersonListParamsSerializer(ListParamsSerializer):
    org_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    include_fields = CommaListField(choices=PERSON_INCLUDE_FIELDS, required=False)


class OrganizationListParamsSerializer(ListParamsSerializer):
    include_fields = CommaListField(choices=ORGANIZATION_INCLUDE_FIELDS, required=False)


class IncludeParamsSerializer(serializers.Serializer[Any]):
    include_fields = CommaListField(choices=PERSON_INCLUDE_FIELDS, required=False)


class OrganizationIncludeParamsSerializer(serializers.Serializer[Any]):
    include_fields = CommaListField(choices=ORGANIZATION_INCLUDE_FIELDS, required=False)


def list_filters(data: dict[str, Any]) -> ListFilters:
    return ListFilters(
        ids=data.get("ids", ()),
        owner_id=data.get("owner_id"),
        org_id=data.get("org_id"),
        updated_since=data.get("updated_since"),
        updated_until=data.get("updated_until"),
    )


def cursor_ordering(data: dict[str, Any]) -> tuple[str, ...]:
    """`sort_by` / `sort_direction` as the keyset order (id breaks ties the same way)."""
    sign = "-" if data["sort_direction"] == "desc" else ""
    column = SORT_BY[data["sort_by"]]
    if column == "id":
        return (f"{sign}id",)
    return (f"{sign}{column}", f"{sign}id")


class SearchParamsSerializer(serializers.Serializer[Any]):
    term = serializers.CharField(max_length=200, trim_whitespace=True)
    exact_match = serializers.BooleanField(required=False, default=False)

    default_error_messages = {
        "short": gettext_lazy("Give at least 2 characters (1 with exact_match=true)."),
    }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        minimum = 1 if attrs.get("exact_match") else 2
        if len(attrs["term"]) < minimum:
            raise serializers.ValidationError({"term": [self.error_messages["short"]]})
        return attrs


class PersonSearchParamsSerializer(SearchParamsSerializer):
    fields = CommaListField(  # type: ignore[assignment]  # the metaclass moves it off the class
        choices=PERSON_SEARCH_FIELDS, required=False
    )
    organization_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    include_fields = serializers.CharField(required=False)


class OrganizationSearchParamsSerializer(SearchParamsSerializer):
    fields = CommaListField(  # type: ignore[assignment]  # the metaclass moves it off the class
        choices=ORGANIZATION_SEARCH_FIELDS, required=False
    )
