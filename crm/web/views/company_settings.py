"""Company settings, for admins: the company and its plan, users and invitations, teams.

Every object is fetched through a selector scoped to the request's company, so an id of
another company is simply not found (404), the same answer as a missing one."""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import selectors, services, tasks
from crm.models import Invitation, Membership, Role, Team
from crm.plans import PLANS
from crm.services import ServiceError
from crm.web.forms import (
    CompanyForm,
    InvitationForm,
    RoleForm,
    TeamForm,
    TeamMembersForm,
    VisibilityDefaultsForm,
    add_service_error,
)
from crm.web.permissions import MemberRequest, admin_required, member_required
from crm.web.plan_display import plan_feature_names


@require_GET
@member_required
def settings_index(request: MemberRequest) -> HttpResponse:
    """The Settings entry of the navigation: admins start at the company, others at what is
    theirs to set."""
    if request.membership.is_admin:
        return redirect("settings_company")
    return redirect("settings_api_token")


# --- The company ---------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@admin_required
def company(request: MemberRequest) -> HttpResponse:
    if request.method == "POST":
        form = CompanyForm(request.POST)
        if form.is_valid():
            try:
                services.company_update(
                    company=request.company,
                    name=form.cleaned_data["name"],
                    plan=form.cleaned_data["plan"],
                )
            except ServiceError as error:
                add_service_error(form, error)
            else:
                messages.success(request, _("Company settings saved."))
                return redirect("settings_company")
    else:
        form = CompanyForm(initial={"name": request.company.name, "plan": request.company.plan})
    # The radio buttons come in the order of PLANS, the order the choices were built in.
    plan_options = [
        {"radio": radio, "plan": plan, "features": plan_feature_names(plan)}
        for radio, plan in zip(form["plan"], PLANS.values(), strict=True)
    ]
    return render(request, "settings/company.html", {"form": form, "plan_options": plan_options})


# --- Users and invitations -----------------------------------------------------------------------


def _users_page(request: MemberRequest, *, invite_form: InvitationForm) -> HttpResponse:
    return render(
        request,
        "settings/users.html",
        {
            "memberships": selectors.membership_list(company=request.company),
            "invitations": selectors.invitation_list_pending(company=request.company),
            "invite_form": invite_form,
            "roles": Role.choices,
        },
    )


@require_GET
@admin_required
def users(request: MemberRequest) -> HttpResponse:
    return _users_page(request, invite_form=InvitationForm())


@require_POST
@admin_required
def user_invite(request: MemberRequest) -> HttpResponse:
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            issued = services.invitation_create(
                company=request.company,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            transaction.on_commit(
                partial(
                    tasks.invitation_send.delay,
                    company_id=request.company.pk,
                    invitation_id=issued.invitation.pk,
                    token=issued.token,
                )
            )
            messages.success(
                request,
                _("Invitation sent to %(email)s.") % {"email": issued.invitation.email},
            )
            return redirect("settings_users")
    return _users_page(request, invite_form=form)


def _membership_or_404(request: MemberRequest, membership_id: int) -> Membership:
    membership = selectors.membership_get_by_id(
        company=request.company, membership_id=membership_id
    )
    if membership is None:
        raise Http404
    return membership


def _back_to_users(request: MemberRequest, *, changed: Membership) -> HttpResponse:
    # An admin who just demoted or deactivated themselves may no longer open the users page.
    if changed.pk == request.membership.pk and not (changed.is_admin and changed.is_active):
        return redirect("home")
    return redirect("settings_users")


@require_POST
@admin_required
def user_role(request: MemberRequest, membership_id: int) -> HttpResponse:
    membership = _membership_or_404(request, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a role."))
        return redirect("settings_users")
    try:
        services.membership_set_role(
            company=request.company, membership=membership, role=form.cleaned_data["role"]
        )
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("%(user)s is now %(role)s.")
            % {"user": membership.user, "role": membership.get_role_display()},
        )
    return _back_to_users(request, changed=membership)


@require_POST
@admin_required
def user_set_active(request: MemberRequest, membership_id: int, *, active: bool) -> HttpResponse:
    membership = _membership_or_404(request, membership_id)
    try:
        services.membership_set_active(
            company=request.company, membership=membership, active=active
        )
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        template = _("%(user)s is active again.") if active else _("%(user)s is deactivated.")
        messages.success(request, template % {"user": membership.user})
    return _back_to_users(request, changed=membership)


def _invitation_or_404(request: MemberRequest, invitation_id: int) -> Invitation:
    invitation = selectors.invitation_get_pending(
        company=request.company, invitation_id=invitation_id
    )
    if invitation is None:
        raise Http404
    return invitation


@require_POST
@admin_required
def invitation_revoke(request: MemberRequest, invitation_id: int) -> HttpResponse:
    invitation = _invitation_or_404(request, invitation_id)
    services.invitation_revoke(company=request.company, invitation=invitation)
    messages.success(
        request, _("The invitation of %(email)s is revoked.") % {"email": invitation.email}
    )
    return redirect("settings_users")


# --- Teams ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@admin_required
def teams(request: MemberRequest) -> HttpResponse:
    """The list of teams, and the form that creates one."""
    form = TeamForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            team = services.team_save(company=request.company, name=form.cleaned_data["name"])
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Team %(team)s created.") % {"team": team.name})
            return redirect("settings_team", team_id=team.pk)
    return render(
        request,
        "settings/teams.html",
        {"teams": selectors.team_list(company=request.company), "form": form},
    )


def _team_or_404(request: MemberRequest, team_id: int) -> Team:
    team = selectors.team_get(company=request.company, team_id=team_id)
    if team is None:
        raise Http404
    return team


def _team_people(request: MemberRequest, *, member_ids: set[int]) -> list[tuple[int, str]]:
    """The choices of the members checkboxes: active users can join; a deactivated member
    stays listed until someone unticks them."""
    return [
        (membership.user_id, str(membership.user))
        for membership in selectors.membership_list(company=request.company)
        if membership.is_active or membership.user_id in member_ids
    ]


def _team_page(
    request: MemberRequest,
    *,
    team: Team,
    name_form: TeamForm | None = None,
    members_form: TeamMembersForm | None = None,
) -> HttpResponse:
    member_ids = {user.pk for user in team.members.all()}
    people = _team_people(request, member_ids=member_ids)
    return render(
        request,
        "settings/team.html",
        {
            "team": team,
            "name_form": name_form or TeamForm(initial={"name": team.name}),
            "members_form": members_form
            or TeamMembersForm(people=people, initial={"members": sorted(member_ids)}),
        },
    )


@require_GET
@admin_required
def team(request: MemberRequest, team_id: int) -> HttpResponse:
    return _team_page(request, team=_team_or_404(request, team_id))


@require_POST
@admin_required
def team_rename(request: MemberRequest, team_id: int) -> HttpResponse:
    team = _team_or_404(request, team_id)
    form = TeamForm(request.POST)
    if form.is_valid():
        try:
            services.team_save(company=request.company, team=team, name=form.cleaned_data["name"])
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Team renamed."))
            return redirect("settings_team", team_id=team.pk)
    return _team_page(request, team=team, name_form=form)


@require_POST
@admin_required
def team_members(request: MemberRequest, team_id: int) -> HttpResponse:
    team = _team_or_404(request, team_id)
    people = _team_people(request, member_ids={user.pk for user in team.members.all()})
    form = TeamMembersForm(request.POST, people=people)
    if form.is_valid():
        try:
            services.team_set_members(
                company=request.company, team=team, user_ids=set(form.cleaned_data["members"])
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Team members saved."))
            return redirect("settings_team", team_id=team.pk)
    return _team_page(request, team=team, members_form=form)


@require_POST
@admin_required
def team_delete(request: MemberRequest, team_id: int) -> HttpResponse:
    team = _team_or_404(request, team_id)
    services.team_delete(company=request.company, team=team)
    messages.success(request, _("Team %(team)s deleted.") % {"team": team.name})
    return redirect("settings_teams")


# --- Default visibility of new items ----------------------------------------------------------


@require_http_methods(["GET", "POST"])
@admin_required
def visibility(request: MemberRequest) -> HttpResponse:
    """Who sees a new person, organization, deal, lead or project unless its creator chooses."""
    if request.method == "POST":
        form = VisibilityDefaultsForm(request.POST)
        if form.is_valid():
            for kind, visible_to in form.cleaned_data.items():
                services.visibility_default_set(
                    company=request.company, kind=kind, visible_to=visible_to
                )
            messages.success(request, _("Default visibility saved."))
            return redirect("settings_visibility")
    else:
        form = VisibilityDefaultsForm(
            initial=selectors.visibility_defaults(company=request.company)
        )
    return render(request, "settings/visibility.html", {"form": form})
