"""The error envelope for every 4xx and 5xx under the API prefixes:

    {"success": false, "error": "<message>", "error_info": "...", "data": null,
     "additional_data": null}

plus `errorCode: 401` on 401 (as Pipedrive's spec example) and, on validation errors, `errors`
mapping each field to its messages. The official client rejects with the parsed body only (the
status code is lost), so `error` must say what went wrong on its own.

`exception_handler` (DRF's EXCEPTION_HANDLER) covers everything raised in an API view, including
unexpected exceptions, which become a logged 500 envelope. `not_found` is the catch-all route
for unknown API paths; `page_not_found` and `server_error` are Django's `handler404` /
`handler500` for errors raised outside DRF (they answer HTML off the API paths).
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from crm.services import ServiceError

logger = logging.getLogger(__name__)

ERROR_INFO = "Please check the API documentation at /api/docs."
UNAUTHORIZED = "unauthorized access"
NON_FIELD = "non_field_errors"
_API_PATH = re.compile(r"^/(?:api|v1)(?:/|$)")
_REASONS = {
    status.HTTP_404_NOT_FOUND: "Not found.",
    status.HTTP_500_INTERNAL_SERVER_ERROR: "Internal server error.",
}


def is_api_path(path: str) -> bool:
    return _API_PATH.match(path) is not None


def error_body(
    *, message: str, status_code: int, errors: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": False,
        "error": message,
        "error_info": ERROR_INFO,
        "data": None,
        "additional_data": None,
    }
    if status_code == status.HTTP_401_UNAUTHORIZED:
        body["error"] = UNAUTHORIZED
        body["errorCode"] = status.HTTP_401_UNAUTHORIZED
    if errors:
        body["errors"] = errors
    return body


def field_errors(detail: Any, *, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as flat `field -> messages`, nested fields dotted
    (`emails.0.value`) and errors of no field under `non_field_errors`."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == NON_FIELD:
                name = prefix or NON_FIELD
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in field_errors(value, prefix=name).items():
                flat.setdefault(field, []).extend(messages)
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if isinstance(item, dict | list):
                nested = field_errors(item, prefix=f"{prefix}.{index}" if prefix else str(index))
                for field, messages in nested.items():
                    flat.setdefault(field, []).extend(messages)
            else:
                flat.setdefault(prefix or NON_FIELD, []).append(str(item))
    elif detail is not None:
        flat.setdefault(prefix or NON_FIELD, []).append(str(detail))
    return flat


def summary(errors: dict[str, list[str]]) -> str:
    """One line naming every field: `limit: Ensure this value is less than or equal to 500.`"""
    return "; ".join(
        message if field == NON_FIELD else f"{field}: {message}"
        for field, messages in errors.items()
        for message in messages
    )


def coerce_error_body(*, data: Any, status_code: int) -> dict[str, Any]:
    """An error envelope for whatever body a 4xx / 5xx response carries (the exception handler's
    own bodies pass through unchanged)."""
    if isinstance(data, dict) and data.get("success") is False:
        return data
    if isinstance(data, dict) and set(data) == {"detail"}:
        return error_body(message=str(data["detail"]), status_code=status_code)
    errors = field_errors(data)
    message = summary(errors) or _REASONS.get(status_code, "Request failed.")
    return error_body(
        message=message, status_code=status_code, errors=errors if status_code == 400 else None
    )


def _as_api_exception(exc: Exception) -> exceptions.APIException | None:
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    # Thin views let the services' refusals through: they are the client's errors.
    if isinstance(exc, ServiceError):
        return exceptions.ValidationError({exc.field or NON_FIELD: [exc.message]})
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD: exc.messages}
        return exceptions.ValidationError(detail)
    return None


def _roll_back_request() -> None:
    # DRF's set_rollback, restated: importing rest_framework.views here would be circular,
    # as DRF's settings import the renderer, which imports this module.
    for connection in connections.all():
        if connection.settings_dict["ATOMIC_REQUESTS"] and connection.in_atomic_block:
            connection.set_rollback(True)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception of an API view becomes an error envelope."""
    # The request's transaction must not commit half a write, whatever the answer.
    _roll_back_request()
    api_exc = _as_api_exception(exc)
    if api_exc is None:
        view = context.get("view")
        logger.error("Unhandled exception in API view %s", type(view).__name__, exc_info=exc)
        body = error_body(message=_REASONS[500], status_code=500)
        return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)

    headers: dict[str, str] = {}
    auth_header = getattr(api_exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(api_exc, "wait", None)
    if wait is not None:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))

    if isinstance(api_exc, exceptions.ValidationError):
        errors = field_errors(api_exc.detail)
        body = error_body(message=summary(errors), status_code=api_exc.status_code, errors=errors)
    else:
        message = summary(field_errors(api_exc.detail)) or _REASONS.get(
            api_exc.status_code, "Request failed."
        )
        body = error_body(message=message, status_code=api_exc.status_code)
    return Response(body, status=api_exc.status_code, headers=headers)


@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The last API route: any other path under /api/ or /v1/ is a JSON 404, whatever the
    method (csrf_exempt, so an unknown POST is a 404 rather than Django's CSRF page)."""
    message = f"Unknown API path {request.path}."
    return JsonResponse(error_body(message=message, status_code=404), status=404)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's handler404: JSON on the API paths, Django's page elsewhere."""
    if is_api_path(request.path):
        return JsonResponse(error_body(message=_REASONS[404], status_code=404), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: JSON on the API paths, Django's page elsewhere."""
    if is_api_path(request.path):
        return JsonResponse(error_body(message=_REASONS[500], status_code=500), status=500)
    return defaults.server_error(request)
