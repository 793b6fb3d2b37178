"""Deals: v2 (`/api/v2/deals`, `/deals/{id}`, `/deals/search`, `/deals/archived`) and the
deprecated v1 CRUD older integrations still call (`/v1/deals` with `user_id` for the owner and
`value` possibly a string, `DELETE /deals?ids=`, `/persons/{id}/deals`,
`/organizations/{id}/deals`), in Pipedrive's shapes (`crm.sales.representations`)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.pagination import CursorPagination, OffsetPagination
from crm.api.renderers import Envelope
from crm.sales import representations, selectors, services
from crm.sales.api import params
from crm.sales.api.views import InputSerializer, SalesView, validated
from crm.sales.models import Deal, DealStatus
from crm.services import ServiceError

V2_STATUSES = (*DealStatus.values, selectors.DELETED)
V1_SORT_FIELDS = {
    "id": "id",
    "title": "title",
    "value": "value",
    "currency": "currency",
    "status": "status",
    "add_time": "created_at",
    "update_time": "updated_at",
    "stage_change_time": "stage_change_time",
    "stage_id": "stage_id",
    "pipeline_id": "pipeline_id",
    "user_id": "owner_id",
    "person_id": "person_id",
    "org_id": "organization_id",
    "expected_close_date": "expected_close_date",
    "close_time": "close_time",
    "won_time": "won_time",
    "lost_time": "lost_time",
}


class _DealFieldsSerializer(InputSerializer):
    required_fields = ("title",)
    title = serializers.CharField(max_length=255)
    person_id = params.id_field(allow_null=True)
    org_id = params.id_field(allow_null=True, source="organization_id")
    pipeline_id = params.id_field(allow_null=True)
    stage_id = params.id_field(allow_null=True)
    # Any precision in; the service rounds to cents and bounds the magnitude.
    value = serializers.DecimalField(max_digits=None, decimal_places=None, allow_null=True)
    currency = serializers.CharField(max_length=16)
    status = serializers.ChoiceField(choices=DealStatus.values)
    lost_reason = serializers.CharField(max_length=255, allow_blank=True, allow_null=True)
    visible_to = serializers.IntegerField(min_value=0, max_value=100, allow_null=True)
    expected_close_date = serializers.DateField(allow_null=True)
    probability = serializers.IntegerField(min_value=0, max_value=100, allow_null=True)


class DealInputV2(_DealFieldsSerializer):
    owner_id = params.id_field()
    label_ids = serializers.ListField(
        child=params.id_field(), allow_null=True, max_length=params.MAX_IDS
    )
    is_archived = serializers.BooleanField()


class LabelIdsV1Field(serializers.Field[list[int], Any, Any, Any]):
    """v1's `label`: an id, a list of ids, or a comma-separated string of ids."""

    def to_internal_value(self, data: Any) -> list[int]:
        if data is None or data == "":
            return []
        if isinstance(data, str):
            data = [part for part in data.split(",") if part.strip()]
        elif not isinstance(data, list):
            data = [data]
        child = params.id_field()
        try:
            return [int(child.run_validation(item)) for item in data[: params.MAX_IDS + 1]]
        except ValidationError as exc:
            raise ValidationError(_("Expected label ids.")) from exc

    def to_representation(self, value: list[int]) -> Any:
        return value


class DealInputV1(_DealFieldsSerializer):
    user_id = params.id_field(source="owner_id")
    # Declared fields leave the class body at runtime, so `label` shadows nothing there.
    label = LabelIdsV1Field(source="label_ids", allow_null=True)  # type: ignore[assignment]
    # v1 sends "3"; IntegerField takes numeric strings.
    active = serializers.BooleanField(required=False)


_V1_FIELD_NAMES = {"owner_id": "user_id", "label_ids": "label"}


def _v1_errors(exc: ServiceError) -> ServiceError:
    """A service refusal with the field named as v1 calls it."""
    field = _V1_FIELD_NAMES.get(exc.field or "", exc.field)
    return ServiceError(exc.message, field=field)


def _v2_filters(request: Request, *, archived: bool | None) -> selectors.DealFilters:
    query = request.query_params
    return selectors.DealFilters(
        ids=params.id_list(query, "ids"),
        owner_id=params.optional_id(query, "owner_id"),
        person_id=params.optional_id(query, "person_id"),
        organization_id=params.optional_id(query, "org_id"),
        pipeline_id=params.optional_id(query, "pipeline_id"),
        stage_id=params.optional_id(query, "stage_id"),
        status=params.choice(query, "status", choices=V2_STATUSES),
        updated_since=params.optional_datetime(query, "updated_since"),
        updated_until=params.optional_datetime(query, "updated_until"),
        archived=archived,
    )


# --- v2 -------------------------------------------------------------------------------------------


class DealListV2(SalesView):
    item_name = "Deal"
    archived = False
    cursor_ordering: tuple[str, ...] = ("id",)

    @extend_schema(operation_id="getDealsV2", summary="Get all deals", tags=["Deals"])
    def get(self, request: Request) -> Response:
        _company, membership = self.acting()
        filters = _v2_filters(request, archived=self.archived)
        self.cursor_ordering = params.v2_ordering(request.query_params)
        paginator = CursorPagination()
        page = paginator.paginate_queryset(
            selectors.deal_list(membership=membership, filters=filters), request, view=self
        )
        return paginator.get_paginated_response([representations.deal_v2(d) for d in page])

    @extend_schema(operation_id="addDealV2", summary="Add a deal", tags=["Deals"])
    def post(self, request: Request) -> Response:
        company, membership = self.acting()
        fields = validated(DealInputV2, request=request)
        deal = services.deal_create(
            company=company, membership=membership, fields=fields, source="api"
        )
        deal = selectors.access_deal(membership=membership, deal_id=deal.pk)
        return Response(representations.deal_v2(deal))


class DealArchivedListV2(DealListV2):
    archived = True

    @extend_schema(operation_id="getArchivedDealsV2", summary="Get archived deals", tags=["Deals"])
    def get(self, request: Request) -> Response:
        return super().get(request)

    def post(self, request: Request) -> Response:
        return self.http_method_not_allowed(request)


class DealDetailV2(SalesView):
    item_name = "Deal"

    @extend_schema(operation_id="getDealV2", summary="Get one deal", tags=["Deals"])
    def get(self, request: Request, id: str) -> Response:
        _company, membership = self.acting()
        deal = selectors.access_deal(membership=membership, deal_id=int(id))
        return Response(representations.deal_v2(deal))

    @extend_schema(operation_id="updateDealV2", summary="Update a deal", tags=["Deals"])
    def patch(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        deal = selectors.access_deal(membership=membership, deal_id=int(id))
        fields = validated(DealInputV2, request=request, partial=True)
        services.deal_update(
            company=company, membership=membership, deal=deal, fields=fields, source="api"
        )
        deal = selectors.access_deal(membership=membership, deal_id=deal.pk)
        return Response(representations.deal_v2(deal))

    @extend_schema(operation_id="deleteDealV2", summary="Delete a deal", tags=["Deals"])
    def delete(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        deal = selectors.access_deal(membership=membership, deal_id=int(id))
        services.deal_delete(company=company, membership=membership, deal=deal, source="api")
        return Response({"id": deal.pk})


class DealSearchV2(SalesView):
    """`GET /deals/search`: by title, `{items: [{result_score, item}]}` with cursor paging."""

    item_name = "Deal"

    @extend_schema(operation_id="searchDealsV2", summary="Search deals", tags=["Deals"])
    def get(self, request: Request) -> Response:
        _company, membership = self.acting()
        query = request.query_params
        exact = params.boolean(query, "exact_match")
        status = params.choice(query, "status", choices=DealStatus.values)
        filters = selectors.DealFilters(
            term=params.search_term(query, exact_match=exact),
            exact_match=exact,
            person_id=params.optional_id(query, "person_id"),
            organization_id=params.optional_id(query, "organization_id"),
            status=status,
            archived=None,
        )
        paginator = CursorPagination()
        page = paginator.paginate_queryset(
            selectors.deal_list(membership=membership, filters=filters), request, view=self
        )
        items = [representations.deal_search_item(deal) for deal in page]
        return Response(
            Envelope(data={"items": items}, additional_data={"next_cursor": paginator.next_cursor})
        )


# --- v1 (deprecated CRUD) -------------------------------------------------------------------------


def _v1_page(request: Request, view: SalesView, deals: Any) -> Response:
    ordering = params.v1_ordering(request.query_params, fields=V1_SORT_FIELDS, default=("id",))
    paginator = OffsetPagination()
    page: list[Deal] = paginator.paginate_queryset(deals.order_by(*ordering), request, view=view)
    return Response(
        Envelope(
            data=[representations.deal_v1(deal) for deal in page],
            additional_data=paginator.additional_data(),
            related_objects=representations.related_objects_v1(page),
        )
    )


def _v1_status(request: Request) -> str | None:
    return params.choice(
        request.query_params,
        "status",
        choices=selectors.DEAL_STATUS_FILTERS,
        default=selectors.ALL_NOT_DELETED,
    )


class DealListV1(SalesView):
    item_name = "Deal"

    @extend_schema(operation_id="getDealsV1", summary="Get all deals (v1)", tags=["Deals"])
    def get(self, request: Request) -> Response:
        _company, membership = self.acting()
        query = request.query_params
        owner_id = params.optional_id(query, "user_id")
        if params.boolean(query, "owned_by_you"):
            owner_id = membership.user_id
        filters = selectors.DealFilters(
            owner_id=owner_id,
            stage_id=params.optional_id(query, "stage_id"),
            pipeline_id=params.optional_id(query, "pipeline_id"),
            status=_v1_status(request),
            archived=None,
        )
        deals = selectors.deal_list(membership=membership, filters=filters, expand=True)
        return _v1_page(request, self, deals)

    @extend_schema(operation_id="addDealV1", summary="Add a deal (v1)", tags=["Deals"])
    def post(self, request: Request) -> Response:
        company, membership = self.acting()
        fields = validated(DealInputV1, request=request)
        fields.pop("active", None)
        try:
            deal = services.deal_create(
                company=company, membership=membership, fields=fields, source="api"
            )
        except ServiceError as exc:
            raise _v1_errors(exc) from exc
        deal = selectors.access_deal(membership=membership, deal_id=deal.pk, expand=True)
        return Response(representations.deal_v1(deal), status=201)

    @extend_schema(operation_id="deleteDealsV1", summary="Delete deals in bulk", tags=["Deals"])
    def delete(self, request: Request) -> Response:
        company, membership = self.acting()
        ids = params.id_list(request.query_params, "ids", maximum=500)
        if not ids:
            raise ValidationError({"ids": [_("This parameter is required.")]})
        deals = [selectors.access_deal(membership=membership, deal_id=pk) for pk in ids]
        deleted = services.deals_delete(
            company=company, membership=membership, deals=deals, source="api"
        )
        return Response({"id": deleted})


class DealDetailV1(SalesView):
    item_name = "Deal"

    @extend_schema(operation_id="getDealV1", summary="Get one deal (v1)", tags=["Deals"])
    def get(self, request: Request, id: str) -> Response:
        _company, membership = self.acting()
        deal = selectors.access_deal(membership=membership, deal_id=int(id), expand=True)
        return Response(
            Envelope(
                data=representations.deal_v1(deal),
                additional_data={"dropbox_email": None},
                related_objects=representations.related_objects_v1([deal]),
            )
        )

    @extend_schema(operation_id="updateDealV1", summary="Update a deal (v1)", tags=["Deals"])
    def put(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        deal = selectors.access_deal(membership=membership, deal_id=int(id))
        fields = validated(DealInputV1, request=request, partial=True)
        fields.pop("active", None)
        try:
            services.deal_update(
                company=company, membership=membership, deal=deal, fields=fields, source="api"
            )
        except ServiceError as exc:
            raise _v1_errors(exc) from exc
        deal = selectors.access_deal(membership=membership, deal_id=deal.pk, expand=True)
        return Response(representations.deal_v1(deal))

    @extend_schema(operation_id="deleteDealV1", summary="Delete a deal (v1)", tags=["Deals"])
    def delete(self, request: Request, id: str) -> Response:
        company, membership = self.acting()
        deal = selectors.access_deal(membership=membership, deal_id=int(id))
        services.deal_delete(company=company, membership=membership, deal=deal, source="api")
        return Response({"id": deal.pk})


class PersonDealsV1(SalesView):
    """`GET /persons/{id}/deals`: the deals whose person this is."""

    item_name = "Person"

    @extend_schema(operation_id="getPersonDeals", summary="Deals of a person", tags=["Persons"])
    def get(self, request: Request, id: str) -> Response:
        _company, membership = self.acting()
        person = selectors.access_person(membership=membership, person_id=int(id))
        filters = selectors.DealFilters(
            person_id=person.pk, status=_v1_status(request), archived=None
        )
        deals = selectors.deal_list(membership=membership, filters=filters, expand=True)
        return _v1_page(request, self, deals)


class OrganizationDealsV1(SalesView):
    """`GET /organizations/{id}/deals`: the deals of this organization."""

    item_name = "Organization"

    @extend_schema(
        operation_id="getOrganizationDeals",
        summary="Deals of an organization",
        tags=["Organizations"],
    )
    def get(self, request: Request, id: str) -> Response:
        _company, membership = self.acting()
        organization = selectors.access_organization(membership=membership, organization_id=int(id))
        filters = selectors.DealFilters(
            organization_id=organization.pk, status=_v1_status(request), archived=None
        )
        deals = selectors.deal_list(membership=membership, filters=filters, expand=True)
        return _v1_page(request, self, deals)
