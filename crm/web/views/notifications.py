"""The notifications page (E2: the bell's list): the user's notifications in this company,
newest first, each leading to what it is about; mark one or all read.

- `GET notifications[?page=N]`: the list, 30 a page.
- `GET notifications/<id>/open`: mark it read and go where it leads (a path of this site).
- `POST notifications/<id>/read`, `POST notifications/read-all`: mark read, back to the list.

Every read and write goes through `crm.notifications`, which filters on the user and the
company: another user's notification is a 404, like a missing one."""

from __future__ import annotations

import re

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm import notifications
from crm.services import ServiceError
from crm.web.permissions import MemberRequest, member_required

_PAGE = re.compile(r"[0-9]{1,6}")


@require_GET
@member_required
def notification_list(request: MemberRequest) -> HttpResponse:
    raw = request.GET.get("page", "")
    page = int(raw) if _PAGE.fullmatch(raw) and int(raw) > 0 else 1
    found = notifications.notifications_page(
        company_id=request.company.pk, user_id=request.user.pk, page=page
    )
    return render(
        request,
        "web/notifications.html",
        {
            "page": found,
            "page_number": page,
            "older_url": _page_url(page + 1) if found.more else "",
            "newer_url": _page_url(page - 1) if page > 1 else "",
        },
    )


@require_GET
@member_required
def notification_open(request: MemberRequest, notification_id: int) -> HttpResponse:
    """Following a notification reads it. The link is ours (written by the app), and checked
    anyway: only a path of this site, never another host."""
    try:
        found = notifications.notification_read(
            company_id=request.company.pk,
            user_id=request.user.pk,
            notification_id=notification_id,
        )
    except ServiceError:
        raise Http404(_("This notification is not there.")) from None
    if found.url.startswith("/") and url_has_allowed_host_and_scheme(
        found.url, allowed_hosts={request.get_host()}
    ):
        return redirect(found.url)
    return redirect("notifications")


@require_POST
@member_required
def notification_mark_read(request: MemberRequest, notification_id: int) -> HttpResponse:
    try:
        notifications.notification_read(
            company_id=request.company.pk,
            user_id=request.user.pk,
            notification_id=notification_id,
        )
    except ServiceError:
        raise Http404(_("This notification is not there.")) from None
    return redirect(_back(request))


@require_POST
@member_required
def notifications_mark_all_read(request: MemberRequest) -> HttpResponse:
    notifications.notifications_read_all(company_id=request.company.pk, user_id=request.user.pk)
    return redirect(_back(request))


def _page_url(page: int) -> str:
    return reverse("notifications") + (f"?page={page}" if page > 1 else "")


def _back(request: MemberRequest) -> str:
    """The list page the form was on."""
    page = request.POST.get("page", "")
    return _page_url(int(page) if _PAGE.fullmatch(page) else 1)
