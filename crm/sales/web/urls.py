"""This app's pages; crm.urls mounts them at the site root. Paths carry no trailing slash,
like the rest of the site."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from crm.sales.web import deals, leads, lookups, projects

urlpatterns: list[URLPattern | URLResolver] = [
    # Deals
    path("deals", deals.board, name="deals"),
    path("deals/list", deals.deal_list, name="deal_list"),
    path("deals/new", deals.deal_create, name="deal_create"),
    path("deals/<int:deal_id>", deals.deal_detail, name="deal_detail"),
    path("deals/<int:deal_id>/move", deals.deal_move, name="deal_move"),
    path("deals/<int:deal_id>/status", deals.deal_status, name="deal_status"),
    path("deals/<int:deal_id>/delete", deals.deal_delete, name="deal_delete"),
    path("deals/<int:deal_id>/restore", deals.deal_restore, name="deal_restore"),
    path("deals/<int:deal_id>/labels/new", deals.deal_label_new, name="deal_label_new"),
    path("deals/<int:deal_id>/participants", deals.deal_participant, name="deal_participant"),
    path("lookup/<str:kind>", lookups.lookup, name="sales_lookup"),
    # The deals and leads of a contact, for the contact pages to include.
    path(
        "persons/<int:person_id>/deals-fragment",
        deals.person_deals_fragment,
        name="person_deals_fragment",
    ),
    path(
        "organizations/<int:organization_id>/deals-fragment",
        deals.organization_deals_fragment,
        name="organization_deals_fragment",
    ),
    # Leads
    path("leads", leads.lead_inbox, name="leads"),
    path("leads/new", leads.lead_create, name="lead_create"),
    path("leads/<uuid:lead_id>", leads.lead_detail, name="lead_detail"),
    path("leads/<uuid:lead_id>/archive", leads.lead_archive, name="lead_archive"),
    path("leads/<uuid:lead_id>/seen", leads.lead_seen, name="lead_seen"),
    path("leads/<uuid:lead_id>/convert", leads.lead_convert, name="lead_convert"),
    # Projects
    path("projects", projects.project_board, name="projects"),
    path("projects/new", projects.project_create, name="project_create"),
    path("projects/<int:project_id>", projects.project_detail, name="project_detail"),
    path("projects/<int:project_id>/move", projects.project_move, name="project_move"),
    path("projects/<int:project_id>/links", projects.project_link, name="project_link"),
]
