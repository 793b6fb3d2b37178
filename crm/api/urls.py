"""The API's routes: `/api/v1/` (also served at `/v1/`, as Pipedrive does), `/api/v2/`, the
OpenAPI schema at `/api/schema` and its docs page at `/api/docs`.

Every route takes its path with or without a trailing slash (APPEND_SLASH is off, so nothing
redirects a POST). Resources add their routes to `v1_patterns` / `v2_patterns`, by hand with
`re_path(r"^things/?$", ...)` or with an `ApiRouter`. The last route answers the JSON 404 for
every other path under /api/ and /v1/.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from crm.api import errors, users
from crm.api.schema import ApiSchemaGenerator


class ApiRouter(SimpleRouter):
    """DRF's SimpleRouter with the trailing slash optional."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trailing_slash = "/?"


v1_patterns: list[URLPattern | URLResolver] = [
    re_path(r"^users/?$", users.UserListView.as_view(), name="users"),
    re_path(r"^users/me/?$", users.UserMeView.as_view(), name="users-me"),
    # Bounded digits: a longer id is no user, and would overflow the bigint column.
    re_path(r"^users/(?P<id>[0-9]{1,18})/?$", users.UserDetailView.as_view(), name="user"),
]
v2_patterns: list[URLPattern | URLResolver] = []

# The schema documents /api/v1 and /api/v2 only: /v1 is the same views again.
schema_patterns: list[URLPattern | URLResolver] = [
    path("api/v1/", include((v1_patterns, "api-v1"))),
    path("api/v2/", include((v2_patterns, "api-v2"))),
]

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(
        r"^api/schema/?$",
        SpectacularAPIView.as_view(patterns=schema_patterns, generator_class=ApiSchemaGenerator),
        name="api-schema",
    ),
    re_path(
        r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"
    ),
    path("api/v1/", include((v1_patterns, "api-v1"))),
    path("v1/", include((v1_patterns, "v1"))),
    path("api/v2/", include((v2_patterns, "api-v2"))),
    re_path(r"^(?:api|v1)(?:/.*)?$", errors.not_found, name="api-not-found"),
]
