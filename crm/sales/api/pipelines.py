"""Pipelines and stages (v1): `/pipelines`, `/pipelines/{id}`, `/stages?pipeline_id=`,
`/stages/{id}`. Anyone in the company reads them; only admins change them."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from crm.sales import representations, selectors, services
from crm.sales.api import params
from crm.sales.api.views import InputSerializer, SalesView, not_found, validated

MAX_POSITION = 2**31 - 1


class PipelineInput(InputSerializer):
    required_fields = ("name",)
    name = serializers.CharField(max_length=255)
    # v1 sends 0/1 or true/false.
    deal_probability = serializers.BooleanField()
    order_nr = serializers.IntegerField(min_value=0, max_value=MAX_POSITION, source="position")
    active = serializers.BooleanField(source="is_active")


class StageInput(InputSerializer):
    required_fields = ("name", "pipeline_id")
    name = serializers.CharField(max_length=255)
    pipeline_id = params.id_field()
    deal_probability = serializers.IntegerField(min_value=0, max_value=100, source="probability")
    rotten_flag = serializers.BooleanField()
    rotten_days = serializers.IntegerField(min_value=0, max_value=MAX_POSITION, allow_null=True)
    order_nr = serializers.IntegerField(min_value=0, max_value=MAX_POSITION, source="position")
    active_flag = serializers.BooleanField(source="is_active")


def _stage_fields(fields: dict[str, Any]) -> dict[str, Any]:
    # rotten_flag false means no rotting, whatever rotten_days says.
    if fields.pop("rotten_flag", True) is False:
        fields["rotten_days"] = None
    return fields


class PipelineList(SalesView):
    item_name = "Pipeline"

    @extend_schema(operation_id="getPipelines", summary="Get all pipelines", tags=["Pipelines"])
    def get(self, request: Request) -> Response:
        company, _membership = self.acting()
        # Every company has a pipeline to put deals in, as in Pipedrive.
        services.pipeline_default_ensure(company=company)
        pipelines = selectors.pipeline_list(company=company)
        return Response([representations.pipeline_v1(p) for p in pipelines])

    @extend_schema(operation_id="addPipeline", summary="Add a pipeline", tags=["Pipelines"])
    def post(self, request: Request) -> Response:
        company, membership = self.acting()
        fields = validated(PipelineInput, request=request)
        pipeline = services.pipeline_create(company=company, membership=membership, **fields)
        return Response(representations.pipeline_v1(pipeline))


class PipelineDetail(SalesView):
    item_name = "Pipeline"

    def _pipeline(self, id: str) -> Any:
        company, _membership = self.acting()
        pipeline = selectors.pipeline_get(company=company, pipeline_id=int(id))
        if pipeline is None:
            raise not_found(_("Pipeline"))
        return pipeline

    @extend_schema(operation_id="getPipeline", summary="Get one pipeline", tags=["Pipelines"])
    def get(self, request: Request, id: str) -> Response:
        return Response(representations.pipeline_v1(self._pipeline(id)))

    @extend_schema(operation_id="updatePipeline", summary="Update a pipeline", tags=["Pipelines"])
    def put(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        pipeline = self._pipeline(id)
        fields = validated(PipelineInput, request=request, partial=True)
        pipeline = services.pipeline_update(
            company=company, membership=membership, pipeline=pipeline, fields=fields
        )
        return Response(representations.pipeline_v1(pipeline))

    @extend_schema(operation_id="deletePipeline", summary="Delete a pipeline", tags=["Pipelines"])
    def delete(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        pipeline = self._pipeline(id)
        services.pipeline_delete(company=company, membership=membership, pipeline=pipeline)
        return Response({"id": int(id)})


class StageList(SalesView):
    item_name = "Stage"

    @extend_schema(operation_id="getStages", summary="Get all stages", tags=["Stages"])
    def get(self, request: Request) -> Response:
        company, _membership = self.acting()
        pipeline_id = params.optional_id(request.query_params, "pipeline_id")
        stages = selectors.stage_list(company=company, pipeline_id=pipeline_id)
        return Response([representations.stage_v1(stage) for stage in stages])

    @extend_schema(operation_id="addStage", summary="Add a stage", tags=["Stages"])
    def post(self, request: Request) -> Response:
        company, membership = self.acting()
        fields = _stage_fields(validated(StageInput, request=request))
        fields.pop("is_active", None)
        stage = services.stage_create(company=company, membership=membership, **fields)
        return Response(representations.stage_v1(stage))


class StageDetail(SalesView):
    item_name = "Stage"

    def _stage(self, id: str) -> Any:
        company, _membership = self.acting()
        stage = selectors.stage_get(company=company, stage_id=int(id))
        if stage is None:
            raise not_found(_("Stage"))
        return stage

    @extend_schema(operation_id="getStage", summary="Get one stage", tags=["Stages"])
    def get(self, request: Request, id: str) -> Response:
        return Response(representations.stage_v1(self._stage(id)))

    @extend_schema(operation_id="updateStage", summary="Update a stage", tags=["Stages"])
    def put(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        stage = self._stage(id)
        fields = _stage_fields(validated(StageInput, request=request, partial=True))
        services.stage_update(company=company, membership=membership, stage=stage, fields=fields)
        return Response(representations.stage_v1(self._stage(id)))

    @extend_schema(operation_id="deleteStage", summary="Delete a stage", tags=["Stages"])
    def delete(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        stage = self._stage(id)
        services.stage_delete(company=company, membership=membership, stage=stage)
        return Response({"id": int(id)})
