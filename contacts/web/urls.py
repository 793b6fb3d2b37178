"""This app's pages; crm.urls mounts them at the site root. Everything lives under /contacts,
so the navigation marks "Contacts" current on every page of it. Paths carry no trailing slash
(APPEND_SLASH is off)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from contacts.web import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("contacts", views.person_list, name="contacts"),
    path("contacts/persons", views.person_list, name="person_list"),
    path("contacts/persons/new", views.person_create, name="person_create"),
    path("contacts/persons/bulk", views.person_bulk, name="person_bulk"),
    path("contacts/persons/search", views.person_autocomplete, name="person_autocomplete"),
    path("contacts/persons/<int:person_id>", views.person_detail, name="person_detail"),
    path(
        "contacts/persons/<int:person_id>/fields/<str:field>",
        views.person_field,
        name="person_field",
    ),
    path(
        "contacts/persons/<int:person_id>/emails",
        views.person_points,
        {"points": "emails"},
        name="person_emails",
    ),
    path(
        "contacts/persons/<int:person_id>/phones",
        views.person_points,
        {"points": "phones"},
        name="person_phones",
    ),
    path("contacts/persons/<int:person_id>/labels", views.person_labels, name="person_labels"),
    path("contacts/persons/<int:person_id>/delete", views.person_delete, name="person_delete"),
    path("contacts/persons/<int:person_id>/restore", views.person_restore, name="person_restore"),
    path("contacts/persons/<int:person_id>/merge", views.person_merge, name="person_merge"),
    path("contacts/organizations", views.organization_list, name="organization_list"),
    path("contacts/organizations/new", views.organization_create, name="organization_create"),
    path("contacts/organizations/bulk", views.organization_bulk, name="organization_bulk"),
    path(
        "contacts/organizations/search",
        views.organization_autocomplete,
        name="organization_autocomplete",
    ),
    path(
        "contacts/organizations/<int:organization_id>",
        views.organization_detail,
        name="organization_detail",
    ),
    path(
        "contacts/organizations/<int:organization_id>/fields/<str:field>",
        views.organization_field,
        name="organization_field",
    ),
    path(
        "contacts/organizations/<int:organization_id>/labels",
        views.organization_labels,
        name="organization_labels",
    ),
    path(
        "contacts/organizations/<int:organization_id>/persons/new",
        views.organization_person_create,
        name="organization_person_create",
    ),
    path(
        "contacts/organizations/<int:organization_id>/delete",
        views.organization_delete,
        name="organization_delete",
    ),
    path(
        "contacts/organizations/<int:organization_id>/restore",
        views.organization_restore,
        name="organization_restore",
    ),
    path(
        "contacts/organizations/<int:organization_id>/merge",
        views.organization_merge,
        name="organization_merge",
    ),
    path(
        "contacts/organizations/<int:organization_id>/relations",
        views.organization_relation_add,
        name="organization_relation_add",
    ),
    path(
        "contacts/organizations/<int:organization_id>/relations/remove",
        views.organization_relation_remove,
        name="organization_relation_remove",
    ),
]
