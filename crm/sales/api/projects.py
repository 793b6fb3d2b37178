"""Projects (v1 and v2, both paged by cursor as Pipedrive's projects are): `/projects`,
`/projects/{id}`, `/projects/boards`, `/projects/phases?board_id=`. v1 updates with PUT, v2
with PATCH; v1 timestamps are "YYYY-MM-DD HH:MM:SS", v2's RFC 3339."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.pagination import CursorPagination
from crm.sales import representations, selectors, services
from crm.sales.api import params
from crm.sales.api.views import InputSerializer, SalesView, validated
from crm.sales.models import Project, ProjectStatus


def _ids(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=params.id_field(), allow_null=True, max_length=params.MAX_IDS, **kwargs
    )


class ProjectInput(InputSerializer):
    required_fields = ("title",)
    title = serializers.CharField(max_length=255)
    description = serializers.CharField(allow_blank=True, allow_null=True, max_length=100_000)
    status = serializers.ChoiceField(choices=ProjectStatus.values)
    board_id = params.id_field()
    phase_id = params.id_field()
    owner_id = params.id_field()
    start_date = serializers.DateField(allow_null=True)
    end_date = serializers.DateField(allow_null=True)
    health_status = serializers.CharField(allow_blank=True, allow_null=True, max_length=16)
    visible_to = serializers.IntegerField(min_value=0, max_value=100, allow_null=True)
    label_ids = _ids()
    labels = _ids()  # v1's name for label_ids
    deal_ids = _ids()
    person_ids = _ids()
    org_ids = _ids()
    person_id = params.id_field(allow_null=True)  # v1: one person
    org_id = params.id_field(allow_null=True)  # v1: one organization
    is_archived = serializers.BooleanField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The v1 spellings become the lists the service takes.
        if "labels" in attrs:
            attrs.setdefault("label_ids", attrs.pop("labels"))
        for single, plural in (("person_id", "person_ids"), ("org_id", "org_ids")):
            if single in attrs:
                value = attrs.pop(single)
                attrs.setdefault(plural, [] if value is None else [value])
        return attrs


class _ProjectView(SalesView):
    item_name = "Project"
    shape: Callable[[Project], dict[str, Any]] = staticmethod(representations.project_v2)

    def represent(self, project_id: int) -> dict[str, Any]:
        _company, membership = self.acting()
        return self.shape(selectors.access_project(membership=membership, project_id=project_id))


class ProjectListV2(_ProjectView):
    @extend_schema(operation_id="getProjectsV2", summary="Get all projects", tags=["Projects"])
    def get(self, request: Request) -> Response:
        _company, membership = self.acting()
        query = request.query_params
        filters = selectors.ProjectFilters(
            status=params.choice(query, "status", choices=ProjectStatus.values),
            phase_id=params.optional_id(query, "phase_id"),
            board_id=params.optional_id(query, "board_id"),
            include_archived=params.boolean(query, "include_archived"),
            updated_since=params.optional_datetime(query, "updated_since"),
        )
        paginator = CursorPagination()
        page = paginator.paginate_queryset(
            selectors.project_list(membership=membership, filters=filters), request, view=self
        )
        return paginator.get_paginated_response([self.shape(project) for project in page])

    @extend_schema(operation_id="addProjectV2", summary="Add a project", tags=["Projects"])
    def post(self, request: Request) -> Response:
        company, membership = self.acting()
        fields = validated(ProjectInput, request=request)
        project = services.project_create(
            company=company, membership=membership, fields=fields, source="api"
        )
        return Response(self.represent(project.pk))


class ProjectListV1(ProjectListV2):
    shape = staticmethod(representations.project_v1)

    @extend_schema(operation_id="getProjectsV1", summary="Get all projects (v1)", tags=["Projects"])
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(operation_id="addProjectV1", summary="Add a project (v1)", tags=["Projects"])
    def post(self, request: Request) -> Response:
        return super().post(request)


class ProjectDetailV2(_ProjectView):
    @extend_schema(operation_id="getProjectV2", summary="Get one project", tags=["Projects"])
    def get(self, request: Request, id: str) -> Response:
        return Response(self.represent(int(id)))

    def _update(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        project = selectors.access_project(membership=membership, project_id=int(id))
        fields = validated(ProjectInput, request=request, partial=True)
        services.project_update(
            company=company, membership=membership, project=project, fields=fields, source="api"
        )
        return Response(self.represent(project.pk))

    @extend_schema(operation_id="updateProjectV2", summary="Update a project", tags=["Projects"])
    def patch(self, request: Request, id: str) -> Response:
        return self._update(request, id)

    @extend_schema(operation_id="deleteProjectV2", summary="Delete a project", tags=["Projects"])
    def delete(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        project = selectors.access_project(membership=membership, project_id=int(id))
        services.project_delete(
            company=company, membership=membership, project=project, source="api"
        )
        return Response({"id": project.pk})


class ProjectDetailV1(ProjectDetailV2):
    shape = staticmethod(representations.project_v1)

    @extend_schema(operation_id="getProjectV1", summary="Get one project (v1)", tags=["Projects"])
    def get(self, request: Request, id: str) -> Response:
        return super().get(request, id)

    @extend_schema(
        operation_id="updateProjectV1", summary="Update a project (v1)", tags=["Projects"]
    )
    def put(self, request: Request, id: str) -> Response:
        return self._update(request, id)

    def patch(self, request: Request, id: str) -> Response:
        return self.http_method_not_allowed(request)

    @extend_schema(
        operation_id="deleteProjectV1", summary="Delete a project (v1)", tags=["Projects"]
    )
    def delete(self, request: Request, id: str) -> Response:
        return super().delete(request, id)


class ProjectBoardList(SalesView):
    item_name = "Board"

    @extend_schema(operation_id="getProjectBoards", summary="Get project boards", tags=["Projects"])
    def get(self, request: Request) -> Response:
        company, _membership = self.acting()
        # Every company has a board to put projects on, as pipelines for deals.
        services.project_board_default_ensure(company=company)
        boards = selectors.project_board_list(company=company)
        return Response([representations.project_board(board) for board in boards])


class ProjectPhaseList(SalesView):
    item_name = "Board"

    @extend_schema(operation_id="getProjectPhases", summary="Get project phases", tags=["Projects"])
    def get(self, request: Request) -> Response:
        company, _membership = self.acting()
        board_id = params.required_id(request.query_params, "board_id")
        if selectors.project_board_get(company=company, board_id=board_id) is None:
            raise ValidationError({"board_id": [_("No board with id %(id)s.") % {"id": board_id}]})
        phases = selectors.project_phase_list(company=company, board_id=board_id)
        return Response([representations.project_phase(phase) for phase in phases])
