"""OpenAPI documentation of the envelopes, for `@extend_schema` on every endpoint:

    @extend_schema(
        operation_id="getUsers",
        responses={200: envelope(name="UserListResponse", data=UserSerializer(many=True)),
                   **error_responses(401, 429)},
    )

Also the drf-spectacular extensions that describe our two authentication classes (importing
this module registers them; every resource module imports it for `envelope`).
"""

from __future__ import annotations

from typing import Any, Literal

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from crm.api.errors import ERROR_INFO


class ErrorResponseSerializer(serializers.Serializer[Any]):
    success = serializers.BooleanField(help_text="Always false.")
    error = serializers.CharField(help_text="What went wrong, in one line.")
    error_info = serializers.CharField(help_text=f'For example "{ERROR_INFO}"')
    # The metaclass moves declared fields off the class, so `data` / `errors` do not shadow the
    # Serializer properties of those names at runtime; only the stubs see a clash.
    data = serializers.JSONField(allow_null=True, help_text="Always null.")  # type: ignore[assignment]
    additional_data = serializers.JSONField(allow_null=True, help_text="Always null.")


class UnauthorizedResponseSerializer(ErrorResponseSerializer):
    error = serializers.CharField(help_text='Always "unauthorized access".')
    errorCode = serializers.IntegerField(help_text="Always 401.")


class ValidationErrorResponseSerializer(ErrorResponseSerializer):
    error = serializers.CharField(help_text="Every field's messages as `field: message; ...`.")
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages by field; `non_field_errors` for the request as a whole.",
    )


class OffsetPaginationSerializer(serializers.Serializer[Any]):
    start = serializers.IntegerField()
    limit = serializers.IntegerField()
    more_items_in_collection = serializers.BooleanField()
    next_start = serializers.IntegerField(
        required=False, help_text="Present only when more_items_in_collection is true."
    )


class OffsetAdditionalDataSerializer(serializers.Serializer[Any]):
    pagination = OffsetPaginationSerializer()


class CursorAdditionalDataSerializer(serializers.Serializer[Any]):
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null on the last page."
    )


_ERROR_DESCRIPTIONS = {
    400: "Invalid request: a parameter or a field of the body.",
    401: "Missing, unknown or revoked API token, or no signed-in session.",
    403: "Not allowed (or a CSRF failure for session requests).",
    404: "No such object in your company.",
    405: "Method not allowed on this path.",
    415: "Unsupported request body type.",
    429: "Rate limit exceeded; see Retry-After.",
}


def envelope(
    *,
    name: str,
    data: serializers.BaseSerializer[Any],
    paging: Literal["offset", "cursor"] | None = None,
) -> serializers.Serializer[Any]:
    """The success envelope around `data`, documented as the component `name`.
    Call once per name (at import), as drf-spectacular keeps one class per component."""
    fields: dict[str, serializers.Field[Any, Any, Any, Any]] = {
        "success": serializers.BooleanField(help_text="Always true."),
        "data": data,
    }
    if paging == "offset":
        fields["additional_data"] = OffsetAdditionalDataSerializer()
    elif paging == "cursor":
        fields["additional_data"] = CursorAdditionalDataSerializer()
    serializer: serializers.Serializer[Any] = inline_serializer(name=name, fields=fields)
    return serializer


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The error envelope documented for each status code."""
    responses: dict[int, OpenApiResponse] = {}
    for code in codes:
        body: type[ErrorResponseSerializer] = ErrorResponseSerializer
        if code == 400:
            body = ValidationErrorResponseSerializer
        elif code == 401:
            body = UnauthorizedResponseSerializer
        responses[code] = OpenApiResponse(
            response=body, description=_ERROR_DESCRIPTIONS.get(code, "Error.")
        )
    return responses


# drf-spectacular's extension and generator hooks are unannotated: hence the no-untyped-call.
class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """`x-api-token` and `api_token` are the schemes api_key / api_token_query that
    SPECTACULAR_SETTINGS append to every operation; this adds the third way, Bearer."""

    target_class = "crm.api.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "description": "The API token as a Bearer"}


class CompanySessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "crm.api.authentication.CompanySessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


class _OptionalSlashEndpoints(EndpointEnumerator):
    def get_path_from_regex(self, path_regex: str) -> str:
        path: str = super().get_path_from_regex(path_regex)  # type: ignore[no-untyped-call]
        # Routes end in "/?" (the slash is optional); document them without, as Pipedrive does.
        return path.rstrip("/") or "/"


class ApiSchemaGenerator(SchemaGenerator):
    endpoint_inspector_cls = _OptionalSlashEndpoints
