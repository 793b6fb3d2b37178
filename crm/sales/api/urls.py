"""This app's API routes; crm.urls mounts them under /api/v1 (and /v1) and /api/v2.

Every route takes its path with or without a trailing slash. Integer ids are at most 18 digits
(a longer one is no id, and would overflow the bigint column): the API's catch-all answers it
with a JSON 404. Fixed paths (`deals/search`, `leads/archived`) come before `{id}` routes."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path

from crm.sales.api import deals, leads, pipelines, projects

ID = r"(?P<id>[0-9]{1,18})"
# A lead's id is a UUID; anything else reaches the view, which answers 404 for it.
LEAD_ID = r"(?P<id>[^/]+)"

v1_patterns: list[URLPattern | URLResolver] = [
    re_path(r"^deals/?$", deals.DealListV1.as_view(), name="deals"),
    re_path(rf"^deals/{ID}/?$", deals.DealDetailV1.as_view(), name="deal"),
    re_path(rf"^persons/{ID}/deals/?$", deals.PersonDealsV1.as_view(), name="person-deals"),
    re_path(
        rf"^organizations/{ID}/deals/?$",
        deals.OrganizationDealsV1.as_view(),
        name="organization-deals",
    ),
    re_path(r"^leads/?$", leads.LeadList.as_view(), name="leads"),
    re_path(r"^leads/archived/?$", leads.LeadArchivedList.as_view(), name="leads-archived"),
    re_path(r"^leads/search/?$", leads.LeadSearchV1.as_view(), name="leads-search"),
    re_path(rf"^leads/{LEAD_ID}/?$", leads.LeadDetail.as_view(), name="lead"),
    re_path(r"^leadLabels/?$", leads.LeadLabelList.as_view(), name="lead-labels"),
    re_path(rf"^leadLabels/{LEAD_ID}/?$", leads.LeadLabelDetail.as_view(), name="lead-label"),
    re_path(r"^pipelines/?$", pipelines.PipelineList.as_view(), name="pipelines"),
    re_path(rf"^pipelines/{ID}/?$", pipelines.PipelineDetail.as_view(), name="pipeline"),
    re_path(r"^stages/?$", pipelines.StageList.as_view(), name="stages"),
    re_path(rf"^stages/{ID}/?$", pipelines.StageDetail.as_view(), name="stage"),
    re_path(r"^projects/?$", projects.ProjectListV1.as_view(), name="projects"),
    re_path(r"^projects/boards/?$", projects.ProjectBoardList.as_view(), name="project-boards"),
    re_path(r"^projects/phases/?$", projects.ProjectPhaseList.as_view(), name="project-phases"),
    re_path(rf"^projects/{ID}/?$", projects.ProjectDetailV1.as_view(), name="project"),
]

v2_patterns: list[URLPattern | URLResolver] = [
    re_path(r"^deals/?$", deals.DealListV2.as_view(), name="deals"),
    re_path(r"^deals/search/?$", deals.DealSearchV2.as_view(), name="deals-search"),
    re_path(r"^deals/archived/?$", deals.DealArchivedListV2.as_view(), name="deals-archived"),
    re_path(rf"^deals/{ID}/?$", deals.DealDetailV2.as_view(), name="deal"),
    re_path(r"^leads/search/?$", leads.LeadSearch.as_view(), name="leads-search"),
    re_path(rf"^leads/{LEAD_ID}/convert/deal/?$", leads.LeadConvert.as_view(), name="lead-convert"),
    re_path(
        rf"^leads/{LEAD_ID}/convert/status/(?P<conversion_id>[^/]+)/?$",
        leads.LeadConversionStatus.as_view(),
        name="lead-conversion-status",
    ),
    re_path(r"^projects/?$", projects.ProjectListV2.as_view(), name="projects"),
    re_path(r"^projects/boards/?$", projects.ProjectBoardList.as_view(), name="project-boards"),
    re_path(r"^projects/phases/?$", projects.ProjectPhaseList.as_view(), name="project-phases"),
    re_path(rf"^projects/{ID}/?$", projects.ProjectDetailV2.as_view(), name="project"),
]
