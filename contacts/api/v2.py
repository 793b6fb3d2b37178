"""Persons and organizations, v2: `/api/v2/persons`, `/api/v2/organizations` and their search.

Strict JSON types, RFC 3339 times, cursor paging (`cursor`, `limit`, `next_cursor`). Another
company's item answers 404; an item of your company that you may not see, 403."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from contacts import selectors, services
from contacts.api import rendering
from contacts.api.access import answering
from contacts.api.serializers import v2 as body
from contacts.api.serializers.common import object_body, parse
from contacts.models import Organization
from crm.api.authentication import request_membership
from crm.api.pagination import CursorPagination
from crm.api.schema import error_responses
from crm.api.views import ApiView
from crm.models import Membership

PERSON = rendering.documented("PersonV2Response")
PERSONS = rendering.documented("PersonListV2Response", paging="cursor", many=True)
ORGANIZATION = rendering.documented("OrganizationV2Response")
ORGANIZATIONS = rendering.documented("OrganizationListV2Response", paging="cursor", many=True)
SEARCH = rendering.documented("SearchV2Response", paging="cursor")
DELETED = rendering.documented("DeletedV2Response")
ERRORS = error_responses(400, 401, 403, 404, 429)


class PagedView(ApiView):
    # CursorPagination reads the keyset order from here (sort_by / sort_direction).
    cursor_ordering: tuple[str, ...] = ("id",)


class PersonListView(PagedView):
    @extend_schema(
        operation_id="getPersons",
        summary="Get all persons",
        tags=["Persons"],
        responses={200: PERSONS, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        params = parse(body.PersonListParamsSerializer(data=request.query_params))
        persons = selectors.person_list(
            company=membership.company, membership=membership, filters=body.list_filters(params)
        )
        self.cursor_ordering = body.cursor_ordering(params)
        paginator = CursorPagination()
        page = paginator.paginate_queryset(persons, request, view=self)
        include = params.get("include_fields", frozenset())
        return paginator.get_paginated_response(
            rendering.persons_v2(page, company=membership.company, include=include)
        )

    @extend_schema(
        operation_id="addPerson",
        summary="Add a person",
        tags=["Persons"],
        request=body.PersonBodySerializer,
        responses={200: PERSON, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        membership = request_membership(request=request)
        data = parse(body.PersonBodySerializer(data=object_body(request.data)))
        with answering(noun=_("Person")):
            person = services.person_create(
                company=membership.company,
                membership=membership,
                fields=body.person_fields(data, creating=True),
                source="api",
            )
        return Response(rendering.persons_v2([person], company=membership.company)[0])


class PersonDetailView(ApiView):
    @extend_schema(
        operation_id="getPerson",
        summary="Get details of a person",
        tags=["Persons"],
        responses={200: PERSON, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        params = parse(body.IncludeParamsSerializer(data=request.query_params))
        with answering(noun=_("Person")):
            person = selectors.access_person(membership=membership, person_id=int(id))
        include = params.get("include_fields", frozenset())
        return Response(
            rendering.persons_v2([person], company=membership.company, include=include)[0]
        )

    @extend_schema(
        operation_id="updatePerson",
        summary="Update a person",
        tags=["Persons"],
        request=body.PersonBodySerializer,
        responses={200: PERSON, **ERRORS},
    )
    def patch(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        data = parse(body.PersonBodySerializer(data=object_body(request.data)))
        with answering(noun=_("Person")):
            person = selectors.access_person(membership=membership, person_id=int(id))
            person = services.person_update(
                company=membership.company,
                membership=membership,
                person=person,
                fields=body.person_fields(data, creating=False),
                source="api",
            )
        return Response(rendering.persons_v2([person], company=membership.company)[0])

    @extend_schema(
        operation_id="deletePerson",
        summary="Delete a person",
        description="Marks the person deleted; it is purged after 30 days.",
        tags=["Persons"],
        responses={200: DELETED, **ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        with answering(noun=_("Person")):
            person = selectors.access_person(membership=membership, person_id=int(id))
            services.person_delete(
                company=membership.company, membership=membership, person=person, source="api"
            )
        return Response({"id": person.pk})


class PersonSearchView(PagedView):
    cursor_ordering = ("-result_score", "id")

    @extend_schema(
        operation_id="searchPersons",
        summary="Search persons",
        description="By name, email, phone or notes; `term` of 2 characters at least (1 with "
        "`exact_match=true`). Items: `{result_score, item}`.",
        tags=["Persons"],
        responses={200: SEARCH, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        params = parse(body.PersonSearchParamsSerializer(data=request.query_params))
        persons = selectors.person_search(
            company=membership.company,
            membership=membership,
            term=params["term"],
            fields=params.get("fields") or selectors.PERSON_SEARCH_FIELDS,
            exact_match=params["exact_match"],
            organization_id=params.get("organization_id"),
        )
        paginator = CursorPagination()
        page = paginator.paginate_queryset(persons, request, view=self)
        return paginator.get_paginated_response(
            rendering.search_results(page, company=membership.company, v2=True)
        )


class OrganizationListView(PagedView):
    @extend_schema(
        operation_id="getOrganizations",
        summary="Get all organizations",
        tags=["Organizations"],
        responses={200: ORGANIZATIONS, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        params = parse(body.OrganizationListParamsSerializer(data=request.query_params))
        organizations = selectors.organization_list(
            company=membership.company, membership=membership, filters=body.list_filters(params)
        )
        self.cursor_ordering = body.cursor_ordering(params)
        paginator = CursorPagination()
        page = paginator.paginate_queryset(organizations, request, view=self)
        data = rendering.organizations_v2(
            page, company=membership.company, include=params.get("include_fields", frozenset())
        )
        return paginator.get_paginated_response(data)

    @extend_schema(
        operation_id="addOrganization",
        summary="Add an organization",
        tags=["Organizations"],
        request=body.OrganizationBodySerializer,
        responses={200: ORGANIZATION, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        membership = request_membership(request=request)
        data = parse(body.OrganizationBodySerializer(data=object_body(request.data)))
        with answering(noun=_("Organization")):
            organization = services.organization_create(
                company=membership.company,
                membership=membership,
                fields=body.organization_fields(data, creating=True),
                source="api",
            )
        return Response(_organization(organization, membership=membership))


def _organization(
    organization: Organization, *, membership: Membership, include: frozenset[str] = frozenset()
) -> dict[str, Any]:
    bodies = rendering.organizations_v2([organization], company=membership.company, include=include)
    return dict(bodies[0])


class OrganizationDetailView(ApiView):
    @extend_schema(
        operation_id="getOrganization",
        summary="Get details of an organization",
        tags=["Organizations"],
        responses={200: ORGANIZATION, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        params = parse(body.OrganizationIncludeParamsSerializer(data=request.query_params))
        with answering(noun=_("Organization")):
            organization = selectors.access_organization(
                membership=membership, organization_id=int(id)
            )
        include = params.get("include_fields", frozenset())
        return Response(_organization(organization, membership=membership, include=include))

    @extend_schema(
        operation_id="updateOrganization",
        summary="Update an organization",
        tags=["Organizations"],
        request=body.OrganizationBodySerializer,
        responses={200: ORGANIZATION, **ERRORS},
    )
    def patch(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        data = parse(body.OrganizationBodySerializer(data=object_body(request.data)))
        with answering(noun=_("Organization")):
            organization = selectors.access_organization(
                membership=membership, organization_id=int(id)
            )
            organization = services.organization_update(
                company=membership.company,
                membership=membership,
                organization=organization,
                fields=body.organization_fields(data, creating=False),
                source="api",
            )
        return Response(_organization(organization, membership=membership))

    @extend_schema(
        operation_id="deleteOrganization",
        summary="Delete an organization",
        description="Marks the organization deleted; it is purged after 30 days.",
        tags=["Organizations"],
        responses={200: DELETED, **ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        with answering(noun=_("Organization")):
            organization = selectors.access_organization(
                membership=membership, organization_id=int(id)
            )
            services.organization_delete(
                company=membership.company,
                membership=membership,
                organization=organization,
                source="api",
            )
        return Response({"id": organization.pk})


class OrganizationSearchView(PagedView):
    cursor_ordering = ("-result_score", "id")

    @extend_schema(
        operation_id="searchOrganization",
        summary="Search organizations",
        description="By name or address; items: `{result_score, item}`.",
        tags=["Organizations"],
        responses={200: SEARCH, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        params = parse(body.OrganizationSearchParamsSerializer(data=request.query_params))
        organizations = selectors.organization_search(
            company=membership.company,
            membership=membership,
            term=params["term"],
            fields=params.get("fields") or selectors.ORGANIZATION_SEARCH_FIELDS,
            exact_match=params["exact_match"],
        )
        paginator = CursorPagination()
        page = paginator.paginate_queryset(organizations, request, view=self)
        return paginator.get_paginated_response(
            rendering.search_results(page, company=membership.company, v2=True)
        )
