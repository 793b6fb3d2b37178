"""The base classes of every API endpoint: `ApiView`, `ApiGenericView` and `ApiViewSet`.

Authentication, permission, renderer, parsers and the exception handler come from
REST_FRAMEWORK's defaults; these classes add what settings cannot: the per-token rate limit with
its `x-ratelimit-*` headers, and JSON whatever the client's `Accept` says. A resource derives
from one of them and stays thin: parse, call a selector or service, render.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model
from rest_framework import exceptions
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from crm.api.authentication import ApiCredentials
from crm.api.ratelimit import RateLimitState, rate_limit_hit
from crm.api.renderers import JsonOnlyNegotiation

_M = TypeVar("_M", bound=Model)


class RateLimitExceeded(exceptions.Throttled):
    default_detail = "Rate limit exceeded."
    extra_detail_singular = "Try again in {wait} second."
    extra_detail_plural = "Try again in {wait} seconds."


class ApiView(APIView):
    content_negotiation_class = JsonOnlyNegotiation
    rate_limit: RateLimitState | None = None

    def check_throttles(self, request: Request) -> None:
        super().check_throttles(request)
        # Runs after authentication and permissions: only known callers are counted.
        credentials = request.auth
        if not isinstance(credentials, ApiCredentials):
            return
        self.rate_limit = rate_limit_hit(key=credentials.rate_limit_key)
        if self.rate_limit is not None and self.rate_limit.exceeded:
            raise RateLimitExceeded(wait=self.rate_limit.reset)

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.rate_limit is not None:
            for header, value in self.rate_limit.headers().items():
                response[header] = value
        return response


class ApiGenericView(ApiView, GenericAPIView[_M]):
    """For endpoints that use `pagination_class` and `get_queryset()`."""


class ApiViewSet(ApiView, GenericViewSet[_M]):
    """For resources routed by `crm.api.urls.ApiRouter`."""
