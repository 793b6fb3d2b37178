"""Query parameters of the sales resources, each parsed into its type or refused with a 400
naming the parameter (never a 500: a huge id, a bad date or an unknown sort key is the
client's error)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

# Ids are bigint columns: a larger number is no id and would overflow the query.
MAX_ID = 2**63 - 1
MAX_IDS = 100


def id_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


def _run(field: serializers.Field[Any, Any, Any, Any], *, name: str, raw: object) -> Any:
    try:
        return field.run_validation(raw)
    except ValidationError as exc:
        raise ValidationError({name: exc.detail}) from exc


def _raw(params: Mapping[str, Any], name: str) -> str | None:
    raw = params.get(name)
    return None if raw is None or raw == "" else str(raw)


def optional_id(params: Mapping[str, Any], name: str) -> int | None:
    raw = _raw(params, name)
    return None if raw is None else int(_run(id_field(), name=name, raw=raw))


def required_id(params: Mapping[str, Any], name: str) -> int:
    value = optional_id(params, name)
    if value is None:
        raise ValidationError({name: [_("This parameter is required.")]})
    return value


def id_list(params: Mapping[str, Any], name: str, *, maximum: int = MAX_IDS) -> list[int]:
    """A comma-separated list of ids (`ids=1,2,3`)."""
    raw = _raw(params, name)
    if raw is None:
        return []
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if len(parts) > maximum:
        raise ValidationError({name: [_("At most %(max)d ids.") % {"max": maximum}]})
    return [int(_run(id_field(), name=name, raw=part)) for part in parts]


def optional_datetime(params: Mapping[str, Any], name: str) -> datetime | None:
    """RFC 3339 (`2025-01-01T00:00:00Z`) or v1's `2025-01-01 00:00:00` (UTC when no zone)."""
    raw = _raw(params, name)
    if raw is None:
        return None
    value: datetime = _run(serializers.DateTimeField(), name=name, raw=raw)
    return value


def choice(
    params: Mapping[str, Any], name: str, *, choices: Sequence[str], default: str | None = None
) -> str | None:
    raw = _raw(params, name)
    if raw is None:
        return default
    value: str = _run(serializers.ChoiceField(choices=list(choices)), name=name, raw=raw)
    return value


def boolean(params: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    """true/false, 1/0 (v1 clients send numbers)."""
    raw = _raw(params, name)
    if raw is None:
        return default
    value: bool = _run(serializers.BooleanField(), name=name, raw=raw)
    return value


def search_term(params: Mapping[str, Any], *, exact_match: bool) -> str:
    """`term`: at least two characters, or one with `exact_match` (Pipedrive's rule)."""
    term = (params.get("term") or "").strip()
    minimum = 1 if exact_match else 2
    if len(term) < minimum:
        raise ValidationError(
            {"term": [_("Ensure this value has at least %(min)d characters.") % {"min": minimum}]}
        )
    if len(term) > 255:
        raise ValidationError({"term": [_("Ensure this value has at most 255 characters.")]})
    return term


def v2_ordering(params: Mapping[str, Any]) -> tuple[str, ...]:
    """`sort_by` (id | update_time | add_time) and `sort_direction` (asc | desc) as the
    cursor paginator's ordering."""
    fields = {"id": "id", "update_time": "updated_at", "add_time": "created_at"}
    sort_by = choice(params, "sort_by", choices=list(fields), default="id")
    direction = choice(params, "sort_direction", choices=["asc", "desc"], default="asc")
    sign = "-" if direction == "desc" else ""
    assert sort_by is not None  # noqa: S101 (it has a default)
    field = fields[sort_by]
    return (f"{sign}{field}",) if field == "id" else (f"{sign}{field}", f"{sign}id")


def v1_ordering(
    params: Mapping[str, Any], *, fields: Mapping[str, str], default: Sequence[str]
) -> list[str]:
    """v1's `sort`: `"update_time DESC, title ASC"` over the allowed API field names."""
    raw = _raw(params, "sort")
    if raw is None:
        return list(default)
    ordering: list[str] = []
    for part in raw.split(","):
        words = part.split()
        if not words:
            continue
        direction = words[1].upper() if len(words) > 1 else "ASC"
        if len(words) > 2 or words[0] not in fields or direction not in ("ASC", "DESC"):
            raise ValidationError(
                {"sort": [_("Sort by %(fields)s, ASC or DESC.") % {"fields": ", ".join(fields)}]}
            )
        ordering.append(("-" if direction == "DESC" else "") + fields[words[0]])
    return [*ordering, "id"]
