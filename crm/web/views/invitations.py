"""`/invite/<token>`: joining a company through an invitation link.

Someone new chooses a name and password; someone signed in with the invited address accepts in
one click; someone with an account who is signed out is asked to sign in first. The link works
once and expires; a dead link gets a page that says so."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from crm import selectors, services
from crm.models import Invitation, Membership, User
from crm.services import ServiceError
from crm.web.company_session import company_session_enter
from crm.web.forms import JoinForm, add_service_error


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    # Binds the request's transaction to the invitation's company (the link names no company).
    invitation = services.invitation_for_token(token)
    if invitation is None:
        return render(request, "invitations/invalid.html", status=410)
    user = request.user
    if isinstance(user, User):
        return _accept_as_signed_in(request, invitation=invitation, user=user)
    if selectors.user_with_email_exists(email=invitation.email):
        return render(request, "invitations/sign_in_first.html", {"invitation": invitation})
    return _join_as_new_user(request, invitation=invitation)


def _accept_as_signed_in(
    request: HttpRequest, *, invitation: Invitation, user: User
) -> HttpResponse:
    context: dict[str, object] = {"invitation": invitation}
    if user.email != invitation.email:
        return render(request, "invitations/other_account.html", context, status=403)
    if request.method == "POST":
        try:
            membership = services.invitation_accept_signed_in(invitation=invitation, user=user)
        except ServiceError as error:
            context["error"] = error.message
        else:
            return _welcome(request, membership=membership)
    return render(request, "invitations/accept.html", context)


def _join_as_new_user(request: HttpRequest, *, invitation: Invitation) -> HttpResponse:
    form = JoinForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            membership = services.invitation_accept(
                invitation=invitation,
                user=None,
                name=form.cleaned_data["name"],
                password=form.cleaned_data["password"],
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            return _welcome(request, membership=membership)
    return render(request, "invitations/join.html", {"invitation": invitation, "form": form})


def _welcome(request: HttpRequest, *, membership: Membership) -> HttpResponse:
    company_session_enter(request=request, company_id=membership.company_id)
    messages.success(request, _("Welcome to %(company)s!") % {"company": membership.company.name})
    return redirect("home")
