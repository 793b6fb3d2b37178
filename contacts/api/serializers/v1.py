"""v1 input, lenient as Pipedrive's was: numbers as strings, `email` / `phone` as a string, a
list of strings or a list of `{value, primary, label}`, `visible_to` as "1" | "3" | "5" | "7",
times as "YYYY-MM-DD HH:MM:SS", JSON or form-encoded bodies."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from contacts.api.serializers.common import (
    MAX_ID,
    ContactPointSerializer,
    IdField,
    IdListField,
    contact_points,
)
from contacts.selectors import SORT_COLUMNS, ListFilters
from contacts.services import ContactPoint, OrganizationFields, PersonFields
from crm.api.fields import V1_DATETIME_FORMAT

V1_TIME_INPUTS = [V1_DATETIME_FORMAT, "%Y-%m-%d", "iso-8601"]


class LenientContactPointsField(serializers.Field[list[ContactPoint], Any, Any, Any]):
    """A string, a list of strings, or a list of `{value, primary, label}` (null: none)."""

    default_error_messages = {
        "invalid": gettext_lazy(
            "Give a string, or a list of strings or of {{value, primary, label}} objects."
        ),
        "too_many": gettext_lazy("At most 50 entries."),
    }

    def to_internal_value(self, data: Any) -> list[ContactPoint]:
        if data is None or data == "":
            return []
        if isinstance(data, str | int) and not isinstance(data, bool):
            return [ContactPoint(value=str(data), primary=True)]
        if not isinstance(data, list):
            self.fail("invalid")
        if len(data) > 50:
            self.fail("too_many")
        rows: list[dict[str, Any]] = []
        for entry in data:
            if isinstance(entry, str):
                rows.append({"value": entry})
            elif isinstance(entry, dict):
                point = ContactPointSerializer(data=entry)
                if not point.is_valid():
                    raise serializers.ValidationError(point.errors)
                rows.append(dict(point.validated_data))
            else:
                self.fail("invalid")
        return contact_points(rows)

    def to_representation(self, value: list[ContactPoint]) -> Any:
        return [point.value for point in value]


class LenientVisibleToField(serializers.Field[object, Any, Any, Any]):
    """Passed through as given; the service accepts 1 / 3 / 5 / 7 as a number or a string."""

    def to_internal_value(self, data: Any) -> object:
        return data

    def to_representation(self, value: object) -> Any:
        return value


class LabelIdsField(serializers.Field[list[int], Any, Any, Any]):
    """A list of ids, a single id, or `1,2` (form bodies)."""

    def to_internal_value(self, data: Any) -> list[int]:
        if data is None or data == "" or data == []:
            return []
        ids: list[int] = IdListField().run_validation(
            data if isinstance(data, list | str) else [data]
        )
        return ids

    def to_representation(self, value: list[int]) -> Any:
        return value


class PersonBodySerializer(serializers.Serializer[Any]):
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    owner_id = IdField(required=False)
    org_id = IdField(required=False, allow_null=True)
    email = LenientContactPointsField(required=False, allow_null=True)
    phone = LenientContactPointsField(required=False, allow_null=True)
    visible_to = LenientVisibleToField(required=False)
    label = IdField(required=False, allow_null=True)  # type: ignore[assignment]
    label_ids = LabelIdsField(required=False, allow_null=True)
    job_title = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=255
    )
    notes = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    birthday = serializers.DateField(required=False, allow_null=True)
    postal_address = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=500
    )
    add_time = serializers.DateTimeField(required=False, input_formats=V1_TIME_INPUTS)
    marketing_status = serializers.CharField(required=False, allow_blank=True, allow_null=True)


def _labels(data: dict[str, Any]) -> list[int] | None:
    if "label_ids" in data:
        ids: list[int] = data["label_ids"] or []
        return ids
    if "label" in data:
        return [data["label"]] if data["label"] else []
    return None


def person_fields(data: dict[str, Any], *, creating: bool) -> PersonFields:
    fields = PersonFields()
    for key in ("name", "first_name", "last_name", "owner_id", "org_id", "visible_to"):
        if key in data:
            fields[key] = data[key]
    for key in ("job_title", "notes"):
        if key in data:
            fields[key] = data[key] or ""  # type: ignore[literal-required]
    if "email" in data:
        fields["emails"] = data["email"] or []
    if "phone" in data:
        fields["phones"] = data["phone"] or []
    labels = _labels(data)
    if labels is not None:
        fields["label_ids"] = labels
    if "birthday" in data:
        fields["birthday"] = data["birthday"]
    if "postal_address" in data:
        fields["postal_address"] = {"value": data["postal_address"] or ""}
    if creating and "add_time" in data:
        fields["add_time"] = data["add_time"]
    return fields


class OrganizationBodySerializer(serializers.Serializer[Any]):
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    owner_id = IdField(required=False)
    visible_to = LenientVisibleToField(required=False)
    label = IdField(required=False, allow_null=True)  # type: ignore[assignment]
    label_ids = LabelIdsField(required=False, allow_null=True)
    address = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=500
    )
    add_time = serializers.DateTimeField(required=False, input_formats=V1_TIME_INPUTS)


def organization_fields(data: dict[str, Any], *, creating: bool) -> OrganizationFields:
    fields = OrganizationFields()
    for key in ("name", "owner_id", "visible_to"):
        if key in data:
            fields[key] = data[key]
    labels = _labels(data)
    if labels is not None:
        fields["label_ids"] = labels
    if "address" in data:
        fields["address"] = {"value": data["address"] or ""}
    if creating and "add_time" in data:
        fields["add_time"] = data["add_time"]
    return fields


class SortField(serializers.CharField):
    """`sort=name ASC, update_time DESC` as an ORM ordering."""

    default_error_messages = {
        "invalid_sort": gettext_lazy(
            "Sort by id, name, first_name, last_name, add_time or update_time, ASC or DESC."
        ),
    }

    def to_internal_value(self, data: Any) -> Any:
        text = super().to_internal_value(data)
        ordering: list[str] = []
        for part in text.split(","):
            words = part.split()
            if not words:
                continue
            if len(words) > 2 or words[0] not in SORT_COLUMNS:
                self.fail("invalid_sort")
            direction = words[1].upper() if len(words) == 2 else "ASC"
            if direction not in ("ASC", "DESC"):
                self.fail("invalid_sort")
            column = SORT_COLUMNS[words[0]]
            ordering.append(f"-{column}" if direction == "DESC" else column)
        return tuple(ordering)


class ListParamsSerializer(serializers.Serializer[Any]):
    user_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    first_char = serializers.CharField(required=False, max_length=1, allow_blank=True)
    sort = SortField(required=False, allow_blank=True, max_length=200)
    filter_id = serializers.CharField(required=False)


def list_filters(data: dict[str, Any]) -> ListFilters:
    return ListFilters(owner_id=data.get("user_id"), first_char=data.get("first_char") or None)


class BulkDeleteParamsSerializer(serializers.Serializer[Any]):
    ids = IdListField()


class MergeBodySerializer(serializers.Serializer[Any]):
    merge_with_id = IdField()


class RelationListParamsSerializer(serializers.Serializer[Any]):
    org_id = IdField()


class RelationDetailParamsSerializer(serializers.Serializer[Any]):
    org_id = IdField(required=False)


class RelationBodySerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=["parent", "related"])
    rel_owner_org_id = IdField()
    rel_linked_org_id = IdField()
    org_id = IdField(required=False)


class RelationUpdateSerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=["parent", "related"], required=False)
    rel_owner_org_id = IdField(required=False)
    rel_linked_org_id = IdField(required=False)
    org_id = IdField(required=False)


class SearchParamsSerializer(serializers.Serializer[Any]):
    """v1 search: same parameters as v2, paged by start / limit."""
