"""The server-rendered pages. Paths carry no trailing slash, like the rest of the site
(APPEND_SLASH is off)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from crm.web.views import (
    account,
    company_settings,
    home,
    invitations,
    notifications,
    personal_settings,
)

urlpatterns = [
    path("", home.home, name="home"),
    # Signing in and out, and the password reset of django.contrib.auth with our templates.
    path("login", account.SignInView.as_view(), name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset", account.PasswordResetRequestView.as_view(), name="password_reset"),
    path(
        "password-reset/sent",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>",
        account.NewPasswordView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("switch-company", account.company_switch, name="company_switch"),
    path("invite/<str:token>", invitations.invitation_accept, name="invitation_accept"),
    # The bell's list (E2).
    path("notifications", notifications.notification_list, name="notifications"),
    path(
        "notifications/read-all",
        notifications.notifications_mark_all_read,
        name="notifications_read_all",
    ),
    path(
        "notifications/<int:notification_id>/open",
        notifications.notification_open,
        name="notification_open",
    ),
    path(
        "notifications/<int:notification_id>/read",
        notifications.notification_mark_read,
        name="notification_read",
    ),
    # Settings: the company's for admins, the personal ones for everybody.
    path("settings", company_settings.settings_index, name="settings"),
    path("settings/company", company_settings.company, name="settings_company"),
    path("settings/visibility", company_settings.visibility, name="settings_visibility"),
    path("settings/users", company_settings.users, name="settings_users"),
    path("settings/users/invite", company_settings.user_invite, name="settings_user_invite"),
    path(
        "settings/users/<int:membership_id>/role",
        company_settings.user_role,
        name="settings_user_role",
    ),
    path(
        "settings/users/<int:membership_id>/deactivate",
        company_settings.user_set_active,
        {"active": False},
        name="settings_user_deactivate",
    ),
    path(
        "settings/users/<int:membership_id>/reactivate",
        company_settings.user_set_active,
        {"active": True},
        name="settings_user_reactivate",
    ),
    path(
        "settings/invitations/<int:invitation_id>/revoke",
        company_settings.invitation_revoke,
        name="settings_invitation_revoke",
    ),
    path("settings/teams", company_settings.teams, name="settings_teams"),
    path("settings/teams/<int:team_id>", company_settings.team, name="settings_team"),
    path(
        "settings/teams/<int:team_id>/rename",
        company_settings.team_rename,
        name="settings_team_rename",
    ),
    path(
        "settings/teams/<int:team_id>/members",
        company_settings.team_members,
        name="settings_team_members",
    ),
    path(
        "settings/teams/<int:team_id>/delete",
        company_settings.team_delete,
        name="settings_team_delete",
    ),
    path("settings/preferences", personal_settings.preferences, name="settings_preferences"),
    path("settings/api-token", personal_settings.api_token, name="settings_api_token"),
    path(
        "settings/api-token/regenerate",
        personal_settings.api_token_regenerate,
        name="settings_api_token_regenerate",
    ),
    path(
        "settings/api-token/revoke",
        personal_settings.api_token_revoke,
        name="settings_api_token_revoke",
    ),
]
