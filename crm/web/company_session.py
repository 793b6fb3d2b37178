"""The company a browser session acts in: `session["company_id"]`, read by the tenancy
middleware on every request. Chosen at sign-in, by the company switcher, and on joining a
company through an invitation."""

from __future__ import annotations

from django.http import HttpRequest

from crm import selectors, tenancy
from crm.models import Membership, User

# The key crm.middleware reads (its SESSION_COMPANY_KEY). Spelled out, not imported: the web
# pages and the middleware are sibling layers; tests/crm/web/test_shell.py checks they agree.
SESSION_COMPANY_KEY = "company_id"


def company_session_start(*, request: HttpRequest, user: User) -> Membership | None:
    """Right after sign-in: act in the user's first active company (None when they have none;
    the pages then say so)."""
    # The request began anonymous, so its transaction is bound to nobody; reading the user's
    # own memberships across companies needs the user binding (row-level security).
    tenancy.bind(company_id=None, user_id=user.pk)
    membership = selectors.memberships_of_user(user=user).first()
    if membership is None:
        request.session.pop(SESSION_COMPANY_KEY, None)
    else:
        request.session[SESSION_COMPANY_KEY] = membership.company_id
    return membership


def company_session_switch(
    *, request: HttpRequest, user: User, company_id: int
) -> Membership | None:
    """Act in another company from the next request on, if the user is active there."""
    for membership in selectors.memberships_of_user(user=user):
        if membership.company_id == company_id:
            request.session[SESSION_COMPANY_KEY] = company_id
            return membership
    return None


def company_session_enter(*, request: HttpRequest, company_id: int) -> None:
    """After joining a company through an invitation: act in it from the next request on."""
    request.session[SESSION_COMPANY_KEY] = company_id
