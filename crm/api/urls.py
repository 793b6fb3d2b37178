"""The API's routes: `/api/v1/` (also served at `/v1/`, as Pipedrive does), `/api/v2/`, the
OpenAPI schema at `/api/schema` and its docs page at `/api/docs`.

Every route takes its path with or without a trailing slash (APPEND_SLASH is off, so nothing
redirects a POST). Resources add their routes to `v1_patterns` / `v2_patterns`, by hand with
`re_path(r"^things/?$", ...)` or with an `ApiRouter`. The last route answers the JSON 404 for
every other path under /api/ and /v1/.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from crm.api import errors, users, webhooks
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
    re_path(r"^webhooks/?$", webhooks.WebhookListView.as_view(), name="webhooks"),
    re_path(
        r"^webhooks/(?P<id>[0-9]{1,18})/?$", webhooks.WebhookDetailView.as_view(), name="webhook"
    ),
]
v2_patterns: list[URLPattern | URLResolver] = []

Patterns = Sequence[URLPattern | URLResolver]


def api_urlpatterns(*, v1: Patterns = (), v2: Patterns = ()) -> list[URLPattern | URLResolver]:
    """The API's routes with the resources of higher layers added: `crm.urls` passes the
    patterns of contacts, deals, leads and projects (this module may not import them)."""
    v1_all = [*v1_patterns, *v1]
    v2_all = [*v2_patterns, *v2]
    # The schema documents /api/v1 and /api/v2 only: /v1 is the same views again.
    schema_patterns: list[URLPattern | URLResolver] = [
        path("api/v1/", include((v1_all, "api-v1"))),
        path("api/v2/", include((v2_all, "api-v2"))),
    ]
    return [
        re_path(
            r"^api/schema/?$",
            SpectacularAPIView.as_view(
                patterns=schema_patterns, generator_class=ApiSchemaGenerator
            ),
            name="api-schema",
        ),
        re_path(
            r"^api/docs/?$",
            SpectacularSwaggerView.as_view(url_name="api-schema"),
            name="api-docs",
        ),
        path("api/v1/", include((v1_all, "api-v1"))),
        path("v1/", include((v1_all, "v1"))),
        path("api/v2/", include((v2_all, "api-v2"))),
        re_path(r"^(?:api|v1)(?:/.*)?$", errors.not_found, name="api-not-found"),
    ]


# The platform's own resources only; crm.urls builds the full set.
urlpatterns = api_urlpatterns()
