"""Per-request tenancy: one transaction per request, bound to the signed-in user's company.

The company comes from the session (`company_id`, set at sign-in and by the company switcher),
falling back to the user's first active membership. API requests authenticated by token are
bound by the API's authentication class, inside this same transaction."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from crm import tenancy
from crm.selectors import membership_for_session

SESSION_COMPANY_KEY = "company_id"
# Paths that must answer without the database (health), need no tenant (static files), or
# carry their own authorization and must not hold a transaction open while they wait on a
# remote server (the image proxy: its signed URL is the permission, inbox.web.media).
EXEMPT_PREFIXES = ("/healthz", "/static/", "/mail/image-proxy")


class TenancyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.company = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        if request.path.startswith(EXEMPT_PREFIXES):
            return self.get_response(request)
        with tenancy.request_scope(), transaction.atomic():
            user = request.user
            if user.is_authenticated:
                tenancy.bind(company_id=None, user_id=user.pk)
                membership = membership_for_session(
                    user=user, company_id=request.session.get(SESSION_COMPANY_KEY)
                )
                if membership is not None:
                    tenancy.bind(company_id=membership.company_id, user_id=user.pk)
                    # Only on a change: assigning marks the session modified, and Django then
                    # writes it back on every request.
                    if request.session.get(SESSION_COMPANY_KEY) != membership.company_id:
                        request.session[SESSION_COMPANY_KEY] = membership.company_id
                    request.company = membership.company  # type: ignore[attr-defined]
                    request.membership = membership  # type: ignore[attr-defined]
            return self.get_response(request)
