"""Serializer fields of the API's wire formats, shared by the resources."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

V1_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
        "example": "2024-01-31 09:30:00",
        "description": "UTC, YYYY-MM-DD HH:MM:SS",
    }
)
class V1DateTimeField(serializers.DateTimeField):
    """v1's timestamps: "YYYY-MM-DD HH:MM:SS" in UTC (v2 uses RFC 3339, DRF's default)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("format", V1_DATETIME_FORMAT)
        super().__init__(**kwargs)


def iso_milliseconds(value: datetime | None) -> str | None:
    """A time as the webhook and mailbox objects write it: `2024-01-31T09:30:00.000Z` (UTC)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
