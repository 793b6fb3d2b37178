"""Signing in and out, password reset, and switching company."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.contrib.auth.views import LoginView, PasswordResetConfirmView, PasswordResetView
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.web.company_session import company_session_start, company_session_switch
from crm.web.forms import (
    CompanySwitchForm,
    NewPasswordForm,
    PasswordResetRequestForm,
    SignInForm,
)
from crm.web.permissions import MemberRequest, member_required


class SignInView(LoginView):
    template_name = "registration/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        company_session_start(request=self.request, user=form.get_user())
        return response


class PasswordResetRequestView(PasswordResetView):
    template_name = "registration/password_reset_form.html"
    form_class = PasswordResetRequestForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        # Links point at SITE_URL, like invitations, rather than at whatever Host was sent.
        self.extra_email_context = {"site_url": settings.SITE_URL}
        return super().form_valid(form)


class NewPasswordView(PasswordResetConfirmView):
    form_class = NewPasswordForm


@require_POST
@member_required
def company_switch(request: MemberRequest) -> HttpResponse:
    form = CompanySwitchForm(request.POST)
    if not form.is_valid():
        raise Http404
    company_id: int = form.cleaned_data["company_id"]
    # Another company's id and a missing one answer alike: the user learns nothing.
    membership = company_session_switch(request=request, user=request.user, company_id=company_id)
    if membership is None:
        raise Http404
    messages.success(
        request, _("You are now working in %(company)s.") % {"company": membership.company.name}
    )
    return redirect("home")
