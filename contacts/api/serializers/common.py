"""Fields and query parameters both API versions share.

A bad value is a 400 naming the parameter (DRF's ValidationError through the API's exception
handler); nothing a client sends may reach the database unchecked (ids fit a bigint, times
parse, lists are bounded)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from contacts.services import ContactPoint

MAX_ID = 2**63 - 1
MAX_IDS = 100


class StrictIntegerField(serializers.IntegerField):
    """v2's integers: a JSON number, never a string or a boolean ("no coercion")."""

    default_error_messages = {
        "strict": gettext_lazy("A valid integer is required."),
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("strict")
        value: int = super().to_internal_value(data)
        return value


class StrictCharField(serializers.CharField):
    """v2's strings: a JSON string, never a number or a boolean turned into one."""

    default_error_messages = {"strict": gettext_lazy("A string is required.")}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("strict")
        value: str = super().to_internal_value(data)
        return value


def IdField(**kwargs: Any) -> serializers.IntegerField:
    """A lenient id (v1): a number or a numeric string that fits a bigint."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class IdListField(serializers.Field[list[int], Any, list[int], Any]):
    """`1,2,3` (a query parameter), or a JSON list of ids: at most 100."""

    default_error_messages = {
        "invalid": gettext_lazy("Give ids as a comma-separated list of numbers."),
        "too_many": gettext_lazy("At most 100 ids at once."),
    }

    def to_internal_value(self, data: Any) -> list[int]:
        parts = data.split(",") if isinstance(data, str) else data
        if not isinstance(parts, list):
            self.fail("invalid")
        ids: list[int] = []
        for part in parts:
            text = str(part).strip()
            if isinstance(part, bool) or not text.isdigit() or not 0 < int(text) <= MAX_ID:
                self.fail("invalid")
            ids.append(int(text))
        if not ids:
            self.fail("invalid")
        if len(ids) > MAX_IDS:
            self.fail("too_many")
        return list(dict.fromkeys(ids))

    def to_representation(self, value: list[int]) -> list[int]:
        return value


class CommaListField(serializers.Field[frozenset[str], Any, list[str], Any]):
    """`a,b,c` restricted to `choices` (e.g. `fields=name,email`, `include_fields=...`)."""

    default_error_messages = {
        "invalid_choice": gettext_lazy("Unknown value {value}; expected any of {choices}."),
    }

    def __init__(self, *, choices: frozenset[str], **kwargs: Any) -> None:
        self.choices = choices
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> frozenset[str]:
        values = {part.strip() for part in str(data).split(",") if part.strip()}
        for value in sorted(values):
            if value not in self.choices:
                self.fail(
                    "invalid_choice", value=value[:64], choices=", ".join(sorted(self.choices))
                )
        return frozenset(values)

    def to_representation(self, value: frozenset[str]) -> list[str]:
        return sorted(value)


class ContactPointSerializer(serializers.Serializer[Any]):
    """`{value, primary, label}`: only `value` is required."""

    value = serializers.CharField(allow_blank=True, max_length=320, trim_whitespace=True)
    primary = serializers.BooleanField(required=False, allow_null=True, default=None)
    # The metaclass moves declared fields off the class; only the stubs see `Field.label`.
    label = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_blank=True, allow_null=True, max_length=16, default=None
    )


def contact_points(rows: Sequence[Mapping[str, Any]]) -> list[ContactPoint]:
    return [
        ContactPoint(value=row["value"], primary=row.get("primary"), label=row.get("label") or None)
        for row in rows
    ]


class AddressSerializer(serializers.Serializer[Any]):
    """v2's structured address (`address` of organizations, `postal_address` of persons)."""

    value = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    country = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    admin_area_level_1 = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    admin_area_level_2 = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    locality = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    sublocality = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    route = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    street_number = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    subpremise = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    postal_code = serializers.CharField(required=False, allow_blank=True, allow_null=True)


def address(data: Mapping[str, Any]) -> dict[str, str]:
    return {key: value or "" for key, value in data.items()}


def parse(serializer: serializers.Serializer[Any]) -> dict[str, Any]:
    """The validated data, or a 400 naming each bad field."""
    serializer.is_valid(raise_exception=True)
    data: dict[str, Any] = dict(serializer.validated_data)
    return data


def object_body(data: Any) -> Any:
    """The request body if it is an object (a JSON list or scalar is a 400, not a 500)."""
    if hasattr(data, "keys"):
        return data
    raise serializers.ValidationError({"non_field_errors": [_("The body must be an object.")]})
