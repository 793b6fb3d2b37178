"""Leads: v1 CRUD (`/v1/leads`, `/leads/archived`, `/leads/{uuid}`, `/leads/search`), lead
labels (`/v1/leadLabels`), and v2's search and lead-to-deal conversion jobs
(`POST /api/v2/leads/{id}/convert/deal`, `GET /api/v2/leads/{id}/convert/status/{job}`)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.pagination import CursorPagination, OffsetPagination
from crm.api.renderers import Envelope
from crm.models import LabelColor
from crm.sales import representations, selectors, services
from crm.sales.api import params
from crm.sales.api.views import InputSerializer, SalesView, not_found, validated
from crm.sales.models import Lead
from crm.services import label_delete, label_update

LEAD_SORT_FIELDS = {
    "id": "id",
    "title": "title",
    "owner_id": "owner_id",
    "creator_id": "creator_id",
    "was_seen": "was_seen",
    "expected_close_date": "expected_close_date",
    "add_time": "created_at",
    "update_time": "updated_at",
}


class LeadValueSerializer(serializers.Serializer[Any]):
    amount = serializers.DecimalField(max_digits=None, decimal_places=None)
    currency = serializers.CharField(max_length=16)


class LeadInput(InputSerializer):
    required_fields = ("title",)
    title = serializers.CharField(max_length=255)
    owner_id = params.id_field()
    label_ids = serializers.ListField(
        child=serializers.UUIDField(), allow_null=True, max_length=params.MAX_IDS
    )
    person_id = params.id_field(allow_null=True)
    organization_id = params.id_field(allow_null=True)
    value = LeadValueSerializer(allow_null=True)
    expected_close_date = serializers.DateField(allow_null=True)
    visible_to = serializers.IntegerField(min_value=0, max_value=100, allow_null=True)
    was_seen = serializers.BooleanField()
    is_archived = serializers.BooleanField()

    def validate_label_ids(self, value: list[Any] | None) -> list[str]:
        return [str(item) for item in value or []]


def _lead_page(request: Request, view: SalesView, leads: Any) -> Response:
    ordering = params.v1_ordering(
        request.query_params, fields=LEAD_SORT_FIELDS, default=("created_at", "id")
    )
    paginator = OffsetPagination()
    page: list[Lead] = paginator.paginate_queryset(leads.order_by(*ordering), request, view=view)
    additional = paginator.additional_data()
    # The spec declares these keys flat while the docs nest them: send both (a superset).
    additional.update(
        {
            key: additional["pagination"][key]
            for key in ("start", "limit", "more_items_in_collection")
        }
    )
    return Response(
        Envelope(data=[representations.lead_v1(lead) for lead in page], additional_data=additional)
    )


def _lead_filters(request: Request, *, archived: bool) -> selectors.LeadFilters:
    query = request.query_params
    return selectors.LeadFilters(
        archived=archived,
        owner_id=params.optional_id(query, "owner_id"),
        person_id=params.optional_id(query, "person_id"),
        organization_id=params.optional_id(query, "organization_id"),
        updated_since=None if archived else params.optional_datetime(query, "updated_since"),
    )


class LeadList(SalesView):
    item_name = "Lead"
    archived = False

    @extend_schema(operation_id="getLeads", summary="Get all leads", tags=["Leads"])
    def get(self, request: Request) -> Response:
        _company, membership = self.acting()
        filters = _lead_filters(request, archived=self.archived)
        return _lead_page(
            request, self, selectors.lead_list(membership=membership, filters=filters)
        )

    @extend_schema(operation_id="addLead", summary="Add a lead", tags=["Leads"])
    def post(self, request: Request) -> Response:
        company, membership = self.acting()
        fields = validated(LeadInput, request=request)
        lead = services.lead_create(
            company=company, membership=membership, fields=fields, source="api"
        )
        lead = selectors.access_lead(membership=membership, lead_id=lead.pk)
        return Response(representations.lead_v1(lead), status=201)


class LeadArchivedList(LeadList):
    archived = True

    @extend_schema(operation_id="getArchivedLeads", summary="Get archived leads", tags=["Leads"])
    def get(self, request: Request) -> Response:
        return super().get(request)

    def post(self, request: Request) -> Response:
        return self.http_method_not_allowed(request)


class LeadDetail(SalesView):
    item_name = "Lead"

    @extend_schema(operation_id="getLead", summary="Get one lead", tags=["Leads"])
    def get(self, request: Request, id: str) -> Response:
        _company, membership = self.acting()
        lead = selectors.access_lead(membership=membership, lead_id=id)
        return Response(representations.lead_v1(lead))

    @extend_schema(operation_id="updateLead", summary="Update a lead", tags=["Leads"])
    def patch(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        lead = selectors.access_lead(membership=membership, lead_id=id)
        fields = validated(LeadInput, request=request, partial=True)
        services.lead_update(
            company=company, membership=membership, lead=lead, fields=fields, source="api"
        )
        lead = selectors.access_lead(membership=membership, lead_id=lead.pk)
        return Response(representations.lead_v1(lead))

    @extend_schema(operation_id="deleteLead", summary="Delete a lead", tags=["Leads"])
    def delete(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        lead = selectors.access_lead(membership=membership, lead_id=id)
        services.lead_delete(company=company, membership=membership, lead=lead, source="api")
        return Response({"id": str(lead.pk)})


class LeadSearch(SalesView):
    """`GET /leads/search` by title: `{items: [{result_score, item}]}`; v2 pages by cursor,
    v1 by offset."""

    item_name = "Lead"
    cursor_paging = True

    @extend_schema(operation_id="searchLeads", summary="Search leads", tags=["Leads"])
    def get(self, request: Request) -> Response:
        _company, membership = self.acting()
        query = request.query_params
        exact = params.boolean(query, "exact_match")
        filters = selectors.LeadFilters(
            term=params.search_term(query, exact_match=exact),
            exact_match=exact,
            person_id=params.optional_id(query, "person_id"),
            organization_id=params.optional_id(query, "organization_id"),
        )
        leads = selectors.lead_list(membership=membership, filters=filters)
        if self.cursor_paging:
            cursor = CursorPagination()
            page = cursor.paginate_queryset(leads, request, view=self)
            additional: dict[str, Any] = {"next_cursor": cursor.next_cursor}
        else:
            offset = OffsetPagination()
            page = offset.paginate_queryset(leads.order_by("created_at", "id"), request, view=self)
            additional = offset.additional_data()
        items = [representations.lead_search_item(lead) for lead in page]
        return Response(Envelope(data={"items": items}, additional_data=additional))


class LeadSearchV1(LeadSearch):
    cursor_paging = False

    @extend_schema(operation_id="searchLeadsV1", summary="Search leads (v1)", tags=["Leads"])
    def get(self, request: Request) -> Response:
        return super().get(request)


class LeadConvertInput(InputSerializer):
    stage_id = params.id_field(allow_null=True, required=False)
    pipeline_id = params.id_field(allow_null=True, required=False)


class LeadConvert(SalesView):
    item_name = "Lead"

    @extend_schema(operation_id="convertLeadToDeal", summary="Convert a lead", tags=["Leads"])
    def post(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        lead = selectors.access_lead(membership=membership, lead_id=id)
        fields = validated(LeadConvertInput, request=request)
        conversion = services.lead_convert_start(
            company=company,
            membership=membership,
            lead=lead,
            stage_id=fields.get("stage_id"),
            pipeline_id=fields.get("pipeline_id"),
        )
        return Response({"conversion_id": str(conversion.pk)})


class LeadConversionStatus(SalesView):
    item_name = "Lead"

    @extend_schema(
        operation_id="getLeadConversionStatus", summary="Lead conversion status", tags=["Leads"]
    )
    def get(self, request: Request, id: str, conversion_id: str) -> Response:
        company, membership = self.acting()
        lead = selectors.access_lead(membership=membership, lead_id=id)
        conversion = selectors.lead_conversion_get(
            company=company, lead_id=lead.pk, conversion_id=conversion_id
        )
        if conversion is None:
            raise not_found(_("Conversion"))
        return Response(representations.lead_conversion(conversion))


# --- Lead labels ----------------------------------------------------------------------------------


class LeadLabelInput(InputSerializer):
    required_fields = ("name",)
    name = serializers.CharField(max_length=100)
    color = serializers.ChoiceField(choices=LabelColor.values)


class LeadLabelList(SalesView):
    item_name = "Lead label"

    @extend_schema(operation_id="getLeadLabels", summary="Get all lead labels", tags=["Leads"])
    def get(self, request: Request) -> Response:
        company, _membership = self.acting()
        labels = selectors.lead_label_list(company=company)
        return Response([representations.lead_label(label) for label in labels])

    @extend_schema(operation_id="addLeadLabel", summary="Add a lead label", tags=["Leads"])
    def post(self, request: Request) -> Response:
        company, _membership = self.acting()
        fields = validated(LeadLabelInput, request=request)
        label = services.lead_label_create(
            company=company, name=fields["name"], color=fields["color"]
        )
        return Response(representations.lead_label(label))


class LeadLabelDetail(SalesView):
    item_name = "Lead label"

    @extend_schema(operation_id="updateLeadLabel", summary="Update a lead label", tags=["Leads"])
    def patch(self, request: Request, id: str) -> Response:
        company, _membership = self.acting()
        label = selectors.lead_label_get(company=company, label_uuid=id)
        if label is None:
            raise not_found(_("Lead label"))
        fields = validated(LeadLabelInput, request=request, partial=True)
        label = label_update(
            company=company,
            label=label,
            name=fields.get("name", label.name),
            color=fields.get("color", label.color),
        )
        return Response(representations.lead_label(label))

    @extend_schema(operation_id="deleteLeadLabel", summary="Delete a lead label", tags=["Leads"])
    def delete(self, request: Request, id: str) -> Response:
        company, _membership = self.acting()
        label = selectors.lead_label_get(company=company, label_uuid=id)
        if label is None:
            raise not_found(_("Lead label"))
        label_delete(company=company, label=label)
        return Response({"id": str(label.uuid)})
