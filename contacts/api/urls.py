"""This app's API routes; crm.urls mounts them under /api/v1 (and /v1) and /api/v2.

Ids are bounded digits: a longer one is no item, and would overflow the bigint column."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path

from contacts.api import v1, v2

ID = r"(?P<id>[0-9]{1,18})"

v1_patterns: list[URLPattern | URLResolver] = [
    re_path(r"^persons/?$", v1.PersonListView.as_view(), name="persons"),
    re_path(r"^persons/search/?$", v1.PersonSearchView.as_view(), name="persons-search"),
    re_path(rf"^persons/{ID}/?$", v1.PersonDetailView.as_view(), name="person"),
    re_path(rf"^persons/{ID}/merge/?$", v1.PersonMergeView.as_view(), name="person-merge"),
    re_path(rf"^persons/{ID}/changelog/?$", v1.ChangelogView.as_view(), name="person-changelog"),
    re_path(r"^organizations/?$", v1.OrganizationListView.as_view(), name="organizations"),
    re_path(
        r"^organizations/search/?$",
        v1.OrganizationSearchView.as_view(),
        name="organizations-search",
    ),
    re_path(rf"^organizations/{ID}/?$", v1.OrganizationDetailView.as_view(), name="organization"),
    re_path(
        rf"^organizations/{ID}/merge/?$",
        v1.OrganizationMergeView.as_view(),
        name="organization-merge",
    ),
    re_path(
        rf"^organizations/{ID}/persons/?$",
        v1.OrganizationPersonsView.as_view(),
        name="organization-persons",
    ),
    re_path(
        rf"^organizations/{ID}/changelog/?$",
        v1.OrganizationChangelogView.as_view(),
        name="organization-changelog",
    ),
    re_path(
        r"^organizationRelationships/?$",
        v1.OrganizationRelationListView.as_view(),
        name="organization-relationships",
    ),
    re_path(
        rf"^organizationRelationships/{ID}/?$",
        v1.OrganizationRelationDetailView.as_view(),
        name="organization-relationship",
    ),
]
v2_patterns: list[URLPattern | URLResolver] = [
    re_path(r"^persons/?$", v2.PersonListView.as_view(), name="persons"),
    re_path(r"^persons/search/?$", v2.PersonSearchView.as_view(), name="persons-search"),
    re_path(rf"^persons/{ID}/?$", v2.PersonDetailView.as_view(), name="person"),
    re_path(r"^organizations/?$", v2.OrganizationListView.as_view(), name="organizations"),
    re_path(
        r"^organizations/search/?$",
        v2.OrganizationSearchView.as_view(),
        name="organizations-search",
    ),
    re_path(rf"^organizations/{ID}/?$", v2.OrganizationDetailView.as_view(), name="organization"),
]
