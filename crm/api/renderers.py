"""The success envelope of Pipedrive's API,
`{"success": true, "data": ..., "additional_data": ...}`, and the content negotiation that always
answers JSON.

Views return their payload (`Response(serializer.data)`) and the renderer wraps it. A view that
has `additional_data` (paging) or `related_objects` returns an `Envelope` instead. Error
responses are shaped by `crm.api.errors`; the renderer only makes sure that any 4xx / 5xx body
that reached it some other way gets the error shape too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from crm.api import errors


@dataclass(frozen=True)
class Envelope:
    """A success body with more than `data`: `additional_data` (paging) and, in v1,
    `related_objects` (keyed by entity type, then by id as a string)."""

    data: Any
    additional_data: dict[str, Any] | None = None
    related_objects: dict[str, Any] | None = None
    # Top-level keys some endpoints add (the mailbox's `statusCode`, `service`, ...).
    extra: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"success": True, **(self.extra or {}), "data": self.data}
        if self.additional_data is not None:
            body["additional_data"] = self.additional_data
        if self.related_objects is not None:
            body["related_objects"] = self.related_objects
        return body


def envelope_body(*, data: Any, status_code: int) -> Any:
    """The JSON body for a payload a view returned with this status."""
    if status_code >= 400:
        return errors.coerce_error_body(data=data, status_code=status_code)
    if isinstance(data, Envelope):
        return data.as_dict()
    return {"success": True, "data": data}


class EnvelopeRenderer(JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        response = (renderer_context or {}).get("response")
        status_code = 200 if response is None else response.status_code
        if status_code == 204:
            # HTTP forbids a body on 204; our own views answer 200 with a body, as Pipedrive does.
            return b""
        rendered: bytes = super().render(
            envelope_body(data=data, status_code=status_code),
            accepted_media_type,
            renderer_context,
        )
        return rendered


class JsonOnlyNegotiation(BaseContentNegotiation):
    """Always the first renderer (JSON), whatever `Accept` or `?format=` say.

    Pipedrive answers JSON to every client; DRF's default would answer 406 to `Accept: text/html`
    and 404 to an unknown `?format=`, and v1 list filters may well use a `format` parameter."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type
