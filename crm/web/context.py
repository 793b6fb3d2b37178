"""The `shell` context processor: what the app shell (templates/web/shell.html) needs on every
page: the navigation, the current company and, for people in several companies, the switcher,
and the bell's count of unread notifications."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from crm import notifications, selectors
from crm.models import Membership, User
from crm.web.navigation import nav_links


def shell(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    if not isinstance(membership, Membership) or not isinstance(user, User):
        return {}

    def switchable_memberships() -> list[Membership]:
        memberships = list(selectors.memberships_of_user(user=user))
        return memberships if len(memberships) > 1 else []

    def unread_notifications() -> int:
        return notifications.notifications_unread_count(
            company_id=membership.company_id, user_id=user.pk
        )

    return {
        "navigation": nav_links(current_path=request.path, is_admin=membership.is_admin),
        "current_company": membership.company,
        "current_membership": membership,
        # Lazy: pages without the shell (sign-in, invitations, errors) never run the query.
        "switchable_memberships": SimpleLazyObject(switchable_memberships),
        # The bell's count: one capped count on the partial index, on pages with the shell only.
        "unread_notifications": SimpleLazyObject(unread_notifications),
    }
