"""The two paging styles of Pipedrive's API, for every list endpoint.

v1 `OffsetPagination`: `?start=0&limit=100` and
    "additional_data": {"pagination": {"start": 0, "limit": 100,
                                       "more_items_in_collection": true, "next_start": 100}}
with `next_start` only when more items exist.

v2 `CursorPagination`: `?cursor=<opaque>&limit=100` and `"additional_data": {"next_cursor": ...}`,
null on the last page. The cursor is the last row's sort key as URL-safe base64 JSON without
padding (`{"id":2}` is `eyJpZCI6Mn0`, the shape Pipedrive's cursors have): keyset paging, so a
page costs the same at row ten million as at row ten, and rows added meanwhile are not skipped.

Both: `limit` defaults to 100 and may not exceed 500; a bad value is a 400 naming the parameter
("limit: Ensure this value is less than or equal to 500."). Neither counts the collection: one
row more than the page is fetched to know whether another page exists.

Use with a generic view (`pagination_class = OffsetPagination`) or by hand:

    paginator = OffsetPagination()
    page = paginator.paginate_queryset(queryset, request, view=self)
    return paginator.get_paginated_response(Serializer(page, many=True).data)
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, Q, QuerySet
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.renderers import Envelope

_M = TypeVar("_M", bound=Model)

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
INVALID_CURSOR = "Invalid cursor."


def int_query_param(
    *,
    params: Mapping[str, Any],
    name: str,
    default: int,
    min_value: int = 0,
    max_value: int | None = None,
) -> int:
    """An integer query parameter, or a 400 naming it (DRF's messages)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    field = (
        serializers.IntegerField(min_value=min_value)
        if max_value is None
        else serializers.IntegerField(min_value=min_value, max_value=max_value)
    )
    try:
        value: int = field.run_validation(raw)
    except ValidationError as exc:
        raise ValidationError({name: exc.detail}) from exc
    return value


def _limit_parameter(*, default: int, maximum: int) -> dict[str, Any]:
    return {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": f"Items per page (default {default}, at most {maximum}).",
        "schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
    }


def _envelope_schema(*, data: dict[str, Any], additional_data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "data", "additional_data"],
        "properties": {
            "success": {"type": "boolean"},
            "data": data,
            "additional_data": additional_data,
        },
    }


OFFSET_PAGINATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["start", "limit", "more_items_in_collection"],
    "properties": {
        "start": {"type": "integer"},
        "limit": {"type": "integer"},
        "more_items_in_collection": {"type": "boolean"},
        "next_start": {
            "type": "integer",
            "description": "Present only when more_items_in_collection is true.",
        },
    },
}
CURSOR_ADDITIONAL_DATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["next_cursor"],
    "properties": {
        "next_cursor": {
            "type": "string",
            "nullable": True,
            "description": "Pass as `cursor` for the next page; null on the last page.",
        }
    },
}


class OffsetPagination(BasePagination):
    """v1 paging by `start` and `limit`; works on querysets and on lists."""

    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT

    def __init__(self) -> None:
        self.start = 0
        self.limit = self.default_limit
        self.more = False

    def paginate_queryset(
        self,
        queryset: QuerySet[_M] | Sequence[_M],
        request: Request,
        view: APIView | None = None,
    ) -> list[_M]:
        params = request.query_params
        self.start = int_query_param(params=params, name="start", default=0, min_value=0)
        self.limit = int_query_param(
            params=params,
            name="limit",
            default=self.default_limit,
            min_value=1,
            max_value=self.max_limit,
        )
        rows = list(queryset[self.start : self.start + self.limit + 1])
        self.more = len(rows) > self.limit
        return rows[: self.limit]

    def additional_data(self) -> dict[str, Any]:
        pagination: dict[str, Any] = {
            "start": self.start,
            "limit": self.limit,
            "more_items_in_collection": self.more,
        }
        if self.more:
            pagination["next_start"] = self.start + self.limit
        return {"pagination": pagination}

    def get_paginated_response(self, data: Any) -> Response:
        return Response(Envelope(data=data, additional_data=self.additional_data()))

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return _envelope_schema(
            data=schema,
            additional_data={
                "type": "object",
                "required": ["pagination"],
                "properties": {"pagination": OFFSET_PAGINATION_SCHEMA},
            },
        )

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {
                "name": "start",
                "in": "query",
                "required": False,
                "description": "Pagination start (default 0).",
                "schema": {"type": "integer", "minimum": 0, "default": 0},
            },
            _limit_parameter(default=self.default_limit, maximum=self.max_limit),
        ]


def encode_cursor(position: Mapping[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), default=_json_scalar).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The position in a cursor, or a 400 for `cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError({"cursor": [INVALID_CURSOR]}) from exc
    if not isinstance(position, dict):
        raise ValidationError({"cursor": [INVALID_CURSOR]})
    return position


def _json_scalar(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot be a cursor position")


class CursorPagination(BasePagination):
    """v2 keyset paging by `cursor` and `limit`, over a queryset.

    The order is `ordering` (field names, `-` for descending), or the view's `cursor_ordering`
    when it has one (a view honouring `sort_by` / `sort_direction` sets it before paging); `id`
    is appended when missing so the order is total. Precondition: the ordering fields are
    concrete, non-null fields of the model."""

    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT
    ordering: tuple[str, ...] = ("id",)

    def __init__(self) -> None:
        self.limit = self.default_limit
        self.next_cursor: str | None = None

    def get_ordering(self, *, view: APIView | None) -> tuple[str, ...]:
        ordering = tuple(getattr(view, "cursor_ordering", None) or self.ordering)
        if not any(field.lstrip("-") in {"id", "pk"} for field in ordering):
            ordering += ("id",)
        return ordering

    def paginate_queryset(
        self, queryset: QuerySet[_M], request: Request, view: APIView | None = None
    ) -> list[_M]:
        params = request.query_params
        self.limit = int_query_param(
            params=params,
            name="limit",
            default=self.default_limit,
            min_value=1,
            max_value=self.max_limit,
        )
        ordering = self.get_ordering(view=view)
        queryset = queryset.order_by(*ordering)
        cursor = params.get("cursor")
        if cursor:
            queryset = _after(queryset, ordering=ordering, position=decode_cursor(cursor))
        rows = list(queryset[: self.limit + 1])
        page = rows[: self.limit]
        self.next_cursor = None
        if len(rows) > self.limit:
            last = page[-1]
            self.next_cursor = encode_cursor(
                {field.lstrip("-"): getattr(last, field.lstrip("-")) for field in ordering}
            )
        return page

    def get_paginated_response(self, data: Any) -> Response:
        return Response(Envelope(data=data, additional_data={"next_cursor": self.next_cursor}))

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return _envelope_schema(data=schema, additional_data=CURSOR_ADDITIONAL_DATA_SCHEMA)

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "`next_cursor` of the previous page.",
                "schema": {"type": "string"},
            },
            _limit_parameter(default=self.default_limit, maximum=self.max_limit),
        ]


def _after(
    queryset: QuerySet[_M], *, ordering: tuple[str, ...], position: dict[str, Any]
) -> QuerySet[_M]:
    """Rows strictly after `position` in `ordering`: (a > x) or (a = x and b > y) or ..."""
    fields = [field.lstrip("-") for field in ordering]
    if set(position) != set(fields) or not all(
        isinstance(value, str | int | float) for value in position.values()
    ):
        raise ValidationError({"cursor": [INVALID_CURSOR]})
    condition = Q()
    for index, field in enumerate(ordering):
        name = field.lstrip("-")
        lookup = "lt" if field.startswith("-") else "gt"
        step = Q(**{f"{name}__{lookup}": position[name]})
        for earlier in fields[:index]:
            step &= Q(**{earlier: position[earlier]})
        condition |= step
    try:
        # The ORM converts each value to its field's type here, so a forged value fails now.
        return queryset.filter(condition)
    except (ValueError, TypeError, OverflowError, DjangoValidationError) as exc:
        raise ValidationError({"cursor": [INVALID_CURSOR]}) from exc
