"""Persons, organizations and organization relationships, v1 (Pipedrive's deprecated CRUD, still
served for older integrations and SDKs up to 31.x).

Lenient input (numeric strings, `email` / `phone` as a string or a list), "YYYY-MM-DD HH:MM:SS"
times, expanded `owner_id` / `org_id`, `related_objects`, offset paging (`start`, `limit`).
Another company's item answers 404; an item of your company that you may not see, 403."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from contacts import representations, selectors, services
from contacts.api import rendering
from contacts.api.access import answering
from contacts.api.serializers import v1 as body
from contacts.api.serializers import v2 as search_body
from contacts.api.serializers.common import object_body, parse
from contacts.models import Organization, OrganizationRelation, Person
from crm import selectors as crm_selectors
from crm.api.authentication import request_membership
from crm.api.pagination import OffsetPagination
from crm.api.renderers import Envelope
from crm.api.schema import error_responses
from crm.api.views import ApiView
from crm.models import Membership

PERSON = rendering.documented("PersonV1Response")
PERSONS = rendering.documented("PersonListV1Response", paging="offset", many=True)
ORGANIZATION = rendering.documented("OrganizationV1Response")
ORGANIZATIONS = rendering.documented("OrganizationListV1Response", paging="offset", many=True)
SEARCH = rendering.documented("SearchV1Response", paging="offset")
DELETED = rendering.documented("DeletedV1Response")
RELATION = rendering.documented("OrganizationRelationshipResponse")
RELATIONS = rendering.documented("OrganizationRelationshipListResponse", many=True)
CHANGES = rendering.documented("ChangelogV1Response", paging="offset", many=True)
ERRORS = error_responses(400, 401, 403, 404, 429)
DEFAULT_ORDER = ("id",)


def _person_body(person: Person, *, membership: Membership) -> Envelope:
    company = membership.company
    return Envelope(
        data=rendering.persons_v1([person], company=company)[0],
        additional_data={"dropbox_email": None},
        related_objects=rendering.related_objects_v1(company=company, persons=[person]),
    )


def _organization_body(organization: Organization, *, membership: Membership) -> Envelope:
    company = membership.company
    return Envelope(
        data=rendering.organizations_v1([organization], company=company)[0],
        additional_data={"dropbox_email": None},
        related_objects=rendering.related_objects_v1(company=company, organizations=[organization]),
    )


def _paged(request: Request, view: ApiView, queryset: Any) -> tuple[list[Any], OffsetPagination]:
    paginator = OffsetPagination()
    return paginator.paginate_queryset(queryset, request, view=view), paginator


# --- Persons ------------------------------------------------------------------------------------


class PersonListView(ApiView):
    @extend_schema(
        operation_id="getPersonsV1",
        summary="Get all persons (v1)",
        tags=["Persons (v1)"],
        responses={200: PERSONS, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        params = parse(body.ListParamsSerializer(data=request.query_params))
        persons = selectors.person_list(
            company=membership.company, membership=membership, filters=body.list_filters(params)
        ).order_by(*(params.get("sort") or DEFAULT_ORDER), "id")
        page, paginator = _paged(request, self, persons)
        return Response(
            Envelope(
                data=rendering.persons_v1(page, company=membership.company),
                additional_data=paginator.additional_data(),
                related_objects=rendering.related_objects_v1(
                    company=membership.company, persons=page
                ),
            )
        )

    @extend_schema(
        operation_id="addPersonV1",
        summary="Add a person (v1)",
        tags=["Persons (v1)"],
        request=body.PersonBodySerializer,
        responses={201: PERSON, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        membership = request_membership(request=request)
        data = parse(body.PersonBodySerializer(data=object_body(request.data)))
        with answering(noun=_("Person"), v1=True):
            person = services.person_create(
                company=membership.company,
                membership=membership,
                fields=body.person_fields(data, creating=True),
                source="api",
            )
        return Response(_person_body(person, membership=membership), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="deletePersonsV1",
        summary="Delete multiple persons in bulk (v1)",
        tags=["Persons (v1)"],
        responses={200: DELETED, **ERRORS},
    )
    def delete(self, request: Request) -> Response:
        membership = request_membership(request=request)
        params = parse(body.BulkDeleteParamsSerializer(data=request.query_params))
        with answering(noun=_("Person"), v1=True):
            ids = services.persons_delete(
                company=membership.company,
                membership=membership,
                person_ids=params["ids"],
                source="api",
            )
        return Response({"id": ids})


class PersonDetailView(ApiView):
    @extend_schema(
        operation_id="getPersonV1",
        summary="Get details of a person (v1)",
        tags=["Persons (v1)"],
        responses={200: PERSON, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        with answering(noun=_("Person"), v1=True):
            person = selectors.access_person(membership=membership, person_id=int(id))
        return Response(_person_body(person, membership=membership))

    @extend_schema(
        operation_id="updatePersonV1",
        summary="Update a person (v1)",
        tags=["Persons (v1)"],
        request=body.PersonBodySerializer,
        responses={200: PERSON, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        data = parse(body.PersonBodySerializer(data=object_body(request.data)))
        with answering(noun=_("Person"), v1=True):
            person = selectors.access_person(membership=membership, person_id=int(id))
            person = services.person_update(
                company=membership.company,
                membership=membership,
                person=person,
                fields=body.person_fields(data, creating=False),
                source="api",
            )
        return Response(_person_body(person, membership=membership))

    @extend_schema(
        operation_id="deletePersonV1",
        summary="Delete a person (v1)",
        tags=["Persons (v1)"],
        responses={200: DELETED, **ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        with answering(noun=_("Person"), v1=True):
            person = selectors.access_person(membership=membership, person_id=int(id))
            services.person_delete(
                company=membership.company, membership=membership, person=person, source="api"
            )
        return Response({"id": person.pk})


class PersonMergeView(ApiView):
    @extend_schema(
        operation_id="mergePersons",
        summary="Merge two persons",
        description="Merges the person `id` into `merge_with_id`, which stays (its data wins "
        "where both have a value). Returns the person that stays.",
        tags=["Persons (v1)"],
        request=body.MergeBodySerializer,
        responses={200: PERSON, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        data = parse(body.MergeBodySerializer(data=object_body(request.data)))
        with answering(noun=_("Person"), v1=True):
            merged = selectors.access_person(membership=membership, person_id=int(id))
            keep = selectors.access_person(membership=membership, person_id=data["merge_with_id"])
            keep = services.person_merge(
                company=membership.company,
                membership=membership,
                keep=keep,
                merged=merged,
                source="api",
            )
        return Response(_person_body(keep, membership=membership))


class PersonSearchView(ApiView):
    @extend_schema(
        operation_id="searchPersonsV1",
        summary="Search persons (v1)",
        tags=["Persons (v1)"],
        responses={200: SEARCH, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        params = parse(search_body.PersonSearchParamsSerializer(data=request.query_params))
        persons = selectors.person_search(
            company=membership.company,
            membership=membership,
            term=params["term"],
            fields=params.get("fields") or selectors.PERSON_SEARCH_FIELDS,
            exact_match=params["exact_match"],
            organization_id=params.get("organization_id"),
        ).order_by("-result_score", "id")
        page, paginator = _paged(request, self, persons)
        return paginator.get_paginated_response(
            rendering.search_results(page, company=membership.company, v2=False)
        )


class ChangelogView(ApiView):
    """An item's change log: `GET /persons/{id}/changelog`, `/organizations/{id}/changelog`."""

    kind = "person"

    @extend_schema(
        operation_id="getChangelogV1",
        summary="List updates about field values of an item",
        tags=["Persons (v1)"],
        responses={200: CHANGES, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        if self.kind == "person":
            with answering(noun=_("Person"), v1=True):
                item: Person | Organization = selectors.access_person(
                    membership=membership, person_id=int(id)
                )
        else:
            with answering(noun=_("Organization"), v1=True):
                item = selectors.access_organization(membership=membership, organization_id=int(id))
        changes = crm_selectors.item_changes(
            company=membership.company, kind=self.kind, item_key=item.pk
        )
        page, paginator = _paged(request, self, changes)
        data = [
            {
                "field_key": change.field,
                "old_value": change.old_value,
                "new_value": change.new_value,
                "actor_user_id": change.actor_id,
                "time": representations.v1_time(change.created_at),
                "change_source": change.source,
                "change_source_user_agent": None,
                "is_bulk_update_flag": False,
            }
            for change in page
        ]
        return paginator.get_paginated_response(data)


class OrganizationChangelogView(ChangelogView):
    kind = "organization"

    @extend_schema(operation_id="getOrganizationChangelogV1", tags=["Organizations (v1)"])
    def get(self, request: Request, id: str) -> Response:
        return super().get(request, id)


# --- Organizations ------------------------------------------------------------------------------


class OrganizationListView(ApiView):
    @extend_schema(
        operation_id="getOrganizationsV1",
        summary="Get all organizations (v1)",
        tags=["Organizations (v1)"],
        responses={200: ORGANIZATIONS, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        params = parse(body.ListParamsSerializer(data=request.query_params))
        organizations = selectors.organization_list(
            company=membership.company, membership=membership, filters=body.list_filters(params)
        ).order_by(*(params.get("sort") or DEFAULT_ORDER), "id")
        page, paginator = _paged(request, self, organizations)
        return Response(
            Envelope(
                data=rendering.organizations_v1(page, company=membership.company),
                additional_data=paginator.additional_data(),
                related_objects=rendering.related_objects_v1(
                    company=membership.company, organizations=page
                ),
            )
        )

    @extend_schema(
        operation_id="addOrganizationV1",
        summary="Add an organization (v1)",
        tags=["Organizations (v1)"],
        request=body.OrganizationBodySerializer,
        responses={201: ORGANIZATION, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        membership = request_membership(request=request)
        data = parse(body.OrganizationBodySerializer(data=object_body(request.data)))
        with answering(noun=_("Organization"), v1=True):
            organization = services.organization_create(
                company=membership.company,
                membership=membership,
                fields=body.organization_fields(data, creating=True),
                source="api",
            )
        return Response(
            _organization_body(organization, membership=membership),
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        operation_id="deleteOrganizationsV1",
        summary="Delete multiple organizations in bulk (v1)",
        tags=["Organizations (v1)"],
        responses={200: DELETED, **ERRORS},
    )
    def delete(self, request: Request) -> Response:
        membership = request_membership(request=request)
        params = parse(body.BulkDeleteParamsSerializer(data=request.query_params))
        with answering(noun=_("Organization"), v1=True):
            ids = services.organizations_delete(
                company=membership.company,
                membership=membership,
                organization_ids=params["ids"],
                source="api",
            )
        return Response({"id": ids})


class OrganizationDetailView(ApiView):
    @extend_schema(
        operation_id="getOrganizationV1",
        summary="Get details of an organization (v1)",
        tags=["Organizations (v1)"],
        responses={200: ORGANIZATION, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        with answering(noun=_("Organization"), v1=True):
            organization = selectors.access_organization(
                membership=membership, organization_id=int(id)
            )
        return Response(_organization_body(organization, membership=membership))

    @extend_schema(
        operation_id="updateOrganizationV1",
        summary="Update an organization (v1)",
        tags=["Organizations (v1)"],
        request=body.OrganizationBodySerializer,
        responses={200: ORGANIZATION, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        data = parse(body.OrganizationBodySerializer(data=object_body(request.data)))
        with answering(noun=_("Organization"), v1=True):
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
        return Response(_organization_body(organization, membership=membership))

    @extend_schema(
        operation_id="deleteOrganizationV1",
        summary="Delete an organization (v1)",
        tags=["Organizations (v1)"],
        responses={200: DELETED, **ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        with answering(noun=_("Organization"), v1=True):
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


class OrganizationMergeView(ApiView):
    @extend_schema(
        operation_id="mergeOrganizations",
        summary="Merge two organizations",
        description="Merges the organization `id` into `merge_with_id`, which stays; its "
        "persons move over. Returns the organization that stays.",
        tags=["Organizations (v1)"],
        request=body.MergeBodySerializer,
        responses={200: ORGANIZATION, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        data = parse(body.MergeBodySerializer(data=object_body(request.data)))
        with answering(noun=_("Organization"), v1=True):
            merged = selectors.access_organization(membership=membership, organization_id=int(id))
            keep = selectors.access_organization(
                membership=membership, organization_id=data["merge_with_id"]
            )
            keep = services.organization_merge(
                company=membership.company,
                membership=membership,
                keep=keep,
                merged=merged,
                source="api",
            )
        return Response(_organization_body(keep, membership=membership))


class OrganizationPersonsView(ApiView):
    @extend_schema(
        operation_id="getOrganizationPersons",
        summary="List persons of an organization",
        tags=["Organizations (v1)"],
        responses={200: PERSONS, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        with answering(noun=_("Organization"), v1=True):
            organization = selectors.access_organization(
                membership=membership, organization_id=int(id)
            )
        persons = selectors.organization_persons(
            company=membership.company, membership=membership, organization=organization
        )
        page, paginator = _paged(request, self, persons)
        return Response(
            Envelope(
                data=rendering.persons_v1(page, company=membership.company),
                additional_data=paginator.additional_data(),
                related_objects=rendering.related_objects_v1(
                    company=membership.company, persons=page
                ),
            )
        )


class OrganizationSearchView(ApiView):
    @extend_schema(
        operation_id="searchOrganizationV1",
        summary="Search organizations (v1)",
        tags=["Organizations (v1)"],
        responses={200: SEARCH, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        params = parse(search_body.OrganizationSearchParamsSerializer(data=request.query_params))
        organizations = selectors.organization_search(
            company=membership.company,
            membership=membership,
            term=params["term"],
            fields=params.get("fields") or selectors.ORGANIZATION_SEARCH_FIELDS,
            exact_match=params["exact_match"],
        ).order_by("-result_score", "id")
        page, paginator = _paged(request, self, organizations)
        return paginator.get_paginated_response(
            rendering.search_results(page, company=membership.company, v2=False)
        )


# --- Organization relationships -----------------------------------------------------------------


def _relation_orgs(
    *, membership: Membership, owner_id: int, linked_id: int
) -> tuple[Organization, Organization]:
    with answering(noun=_("Organization"), v1=True):
        owner = selectors.access_organization(membership=membership, organization_id=owner_id)
        linked = selectors.access_organization(membership=membership, organization_id=linked_id)
    return owner, linked


class OrganizationRelationListView(ApiView):
    @extend_schema(
        operation_id="getOrganizationRelationships",
        summary="Get all relationships of an organization",
        description="`calculated_type` is what the other organization is to `org_id`: "
        "parent, daughter or related.",
        tags=["OrganizationRelationships"],
        responses={200: RELATIONS, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        params = parse(body.RelationListParamsSerializer(data=request.query_params))
        with answering(noun=_("Organization"), v1=True):
            organization = selectors.access_organization(
                membership=membership, organization_id=params["org_id"]
            )
        seen = selectors.organization_relations(
            company=membership.company, membership=membership, organization=organization
        )
        return Response(
            rendering.relations_v1(
                seen, company=membership.company, organization_id=organization.pk
            )
        )

    @extend_schema(
        operation_id="addOrganizationRelationship",
        summary="Create an organization relationship",
        description="`type=parent`: `rel_owner_org_id` is the parent of `rel_linked_org_id`.",
        tags=["OrganizationRelationships"],
        request=body.RelationBodySerializer,
        responses={200: RELATION, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        membership = request_membership(request=request)
        data = parse(body.RelationBodySerializer(data=object_body(request.data)))
        owner, linked = _relation_orgs(
            membership=membership,
            owner_id=data["rel_owner_org_id"],
            linked_id=data["rel_linked_org_id"],
        )
        with answering(noun=_("Organization"), v1=True):
            relation = services.organization_relation_add(
                company=membership.company,
                membership=membership,
                kind=data["type"],
                organization=owner,
                related_organization=linked,
            )
        return Response(
            rendering.relation_v1(
                relation, company=membership.company, seen_from=data.get("org_id")
            )
        )


class OrganizationRelationDetailView(ApiView):
    def _relation(self, *, membership: Membership, id: str) -> OrganizationRelation:
        with answering(noun=_("Organization relationship"), v1=True):
            return selectors.access_organization_relation(
                membership=membership, relation_id=int(id)
            )

    @extend_schema(
        operation_id="getOrganizationRelationship",
        summary="Get one organization relationship",
        tags=["OrganizationRelationships"],
        responses={200: RELATION, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        params = parse(body.RelationDetailParamsSerializer(data=request.query_params))
        relation = self._relation(membership=membership, id=id)
        return Response(
            rendering.relation_v1(
                relation, company=membership.company, seen_from=params.get("org_id")
            )
        )

    @extend_schema(
        operation_id="updateOrganizationRelationship",
        summary="Update an organization relationship",
        tags=["OrganizationRelationships"],
        request=body.RelationUpdateSerializer,
        responses={200: RELATION, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        data = parse(body.RelationUpdateSerializer(data=object_body(request.data)))
        relation = self._relation(membership=membership, id=id)
        owner, linked = _relation_orgs(
            membership=membership,
            owner_id=data.get("rel_owner_org_id", relation.organization_id),
            linked_id=data.get("rel_linked_org_id", relation.related_organization_id),
        )
        with answering(noun=_("Organization"), v1=True):
            relation = services.organization_relation_update(
                company=membership.company,
                membership=membership,
                relation=relation,
                kind=data.get("type", relation.kind),
                organization=owner,
                related_organization=linked,
            )
        return Response(
            rendering.relation_v1(
                relation, company=membership.company, seen_from=data.get("org_id")
            )
        )

    @extend_schema(
        operation_id="deleteOrganizationRelationship",
        summary="Delete an organization relationship",
        tags=["OrganizationRelationships"],
        responses={200: DELETED, **ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        relation = self._relation(membership=membership, id=id)
        with answering(noun=_("Organization relationship"), v1=True):
            services.organization_relation_remove(
                company=membership.company, membership=membership, relation=relation
            )
        return Response({"id": int(id)})
