"""Who an API request acts as: a user through an active membership of one company.

Two ways in, tried in this order (REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES):

1. `ApiTokenAuthentication`: the personal API token of one user in one company, read from the
   `x-api-token` header, else the `api_token` query parameter (SDKs up to 26.x), else
   `Authorization: Bearer`. The first one present is the only one tried: a wrong header token is
   a 401 even if the query string holds a good one, as Pipedrive documents "the API token wins".
2. `CompanySessionAuthentication`: the browser's session, with the membership that
   `crm.middleware.TenancyMiddleware` chose, and CSRF enforced as DRF's SessionAuthentication.

Either way `request.auth` is an `ApiCredentials` and the Django request carries `company` and
`membership`, as the middleware sets them for pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.request import Request

from crm import services
from crm.models import Membership


@dataclass(frozen=True)
class ApiCredentials:
    """`request.auth` of an authenticated API request."""

    membership: Membership
    token_id: int | None = None

    @property
    def rate_limit_key(self) -> str:
        # Per token, as Pipedrive counts; a session has no token, so per user and company.
        if self.token_id is not None:
            return f"token:{self.token_id}"
        return f"user:{self.membership.user_id}:company:{self.membership.company_id}"


def presented_token(*, request: Request) -> str | None:
    """The token the request presents, by priority: header, query parameter, Bearer."""
    header = request.META.get("HTTP_X_API_TOKEN", "").strip()
    if header:
        return str(header)
    query = request.query_params.get("api_token", "").strip()
    if query:
        return query
    parts = get_authorization_header(request).split()
    if len(parts) == 2 and parts[0].lower() == b"bearer":
        try:
            return parts[1].decode("ascii")
        except UnicodeDecodeError:
            # Not a token of ours; the empty string fails the lookup like any wrong token.
            return ""
    return None


def request_membership(*, request: Request) -> Membership:
    """The membership an authenticated API request acts through (IsCompanyMember ran)."""
    credentials = request.auth
    if not isinstance(credentials, ApiCredentials):
        raise exceptions.NotAuthenticated()
    return credentials.membership


def _attach(*, request: Request, membership: Membership) -> None:
    # Same attributes as TenancyMiddleware sets, so code below the view reads one place.
    request._request.company = membership.company  # type: ignore[attr-defined]
    request._request.membership = membership  # type: ignore[attr-defined]


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, ApiCredentials] | None:
        token = presented_token(request=request)
        if token is None:
            return None
        # Looks the token up across companies and binds the request's transaction to its
        # company; None for an unknown or revoked token, a deactivated member, an inactive user.
        identity = services.api_token_authenticate(token) if token else None
        if identity is None:
            raise exceptions.AuthenticationFailed()
        _attach(request=request, membership=identity.membership)
        return identity.user, ApiCredentials(
            membership=identity.membership, token_id=identity.token_id
        )

    def authenticate_header(self, request: Request) -> str:
        # Having a challenge makes DRF answer 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="api"'


class CompanySessionAuthentication(SessionAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, ApiCredentials] | None:
        user = getattr(request._request, "user", None)
        membership: Membership | None = getattr(request._request, "membership", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        # Signed in, but active in no company: nothing the API could act on.
        if membership is None or membership.user_id != user.pk:
            return None
        self.enforce_csrf(request)
        return user, ApiCredentials(membership=membership)
