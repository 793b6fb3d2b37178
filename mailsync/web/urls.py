"""The Email sync settings pages; crm.urls mounts them at the site root (no trailing slash,
like the rest of the site)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from mailsync.web import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/email-sync", views.account_list, name="mail_accounts"),
    path("settings/email-sync/add", views.account_add, name="mail_account_add"),
    path("settings/email-sync/<int:account_id>", views.account_detail, name="mail_account"),
    path(
        "settings/email-sync/<int:account_id>/status",
        views.account_status,
        name="mail_account_status",
    ),
    path("settings/email-sync/<int:account_id>/sync", views.account_sync, name="mail_account_sync"),
    path(
        "settings/email-sync/<int:account_id>/conversations",
        views.account_conversations,
        name="mail_account_conversations",
    ),
    path(
        "settings/email-sync/<int:account_id>/conversations/apply",
        views.account_conversations_apply,
        name="mail_account_conversations_apply",
    ),
    path(
        "settings/email-sync/<int:account_id>/reconnect",
        views.account_reconnect,
        name="mail_account_reconnect",
    ),
    path(
        "settings/email-sync/<int:account_id>/disconnect",
        views.account_disconnect,
        name="mail_account_disconnect",
    ),
]
