"""Personal settings, for every user: their preferences (time zone, what email links open,
email tracking) and their API token in the current company.

Preferences belong to the user, not to a membership: the same in every company. The token is
shown once, in the response to (re)generating it, and never stored in the session or anywhere
else; afterwards the page shows only its prefix and dates."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import selectors, services
from crm.services import ServiceError
from crm.web.forms import PreferencesForm, add_service_error
from crm.web.permissions import MemberRequest, member_required


@require_http_methods(["GET", "POST"])
@member_required
def preferences(request: MemberRequest) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        form = PreferencesForm(request.POST, current_timezone=user.timezone)
        if form.is_valid():
            try:
                services.user_preferences_update(
                    user=user,
                    timezone=form.cleaned_data["timezone"],
                    email_links=form.cleaned_data["email_links"],
                    track_opens_default=form.cleaned_data["track_opens_default"],
                    track_links_default=form.cleaned_data["track_links_default"],
                    tracking_digest=form.cleaned_data["tracking_digest"],
                )
            except ServiceError as error:
                add_service_error(form, error)
            else:
                messages.success(request, _("Your preferences are saved."))
                return redirect("settings_preferences")
    else:
        form = PreferencesForm(
            initial={
                "timezone": user.timezone,
                "email_links": user.email_links,
                "track_opens_default": user.track_opens_default,
                "track_links_default": user.track_links_default,
                "tracking_digest": user.tracking_digest,
            },
            current_timezone=user.timezone,
        )
    return render(
        request, "settings/preferences.html", {"form": form}, status=400 if form.errors else 200
    )


def _api_token_page(request: MemberRequest, *, new_token: str | None = None) -> HttpResponse:
    return render(
        request,
        "settings/api_token.html",
        {
            "api_token": selectors.api_token_live(company=request.company, user=request.user),
            "new_token": new_token,
        },
    )


@require_GET
@member_required
def api_token(request: MemberRequest) -> HttpResponse:
    return _api_token_page(request)


@never_cache
@require_POST
@member_required
def api_token_regenerate(request: MemberRequest) -> HttpResponse:
    # Rendered, not redirected: a redirect would need the token kept somewhere until the next
    # request. never_cache keeps it out of the browser's and proxies' caches.
    token = services.api_token_issue(company=request.company, user=request.user)
    return _api_token_page(request, new_token=token)


@require_POST
@member_required
def api_token_revoke(request: MemberRequest) -> HttpResponse:
    services.api_token_revoke(company=request.company, user=request.user)
    messages.success(request, _("Your API token is revoked; it no longer works."))
    return redirect("settings_api_token")
