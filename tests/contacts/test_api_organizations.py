"""Organizations and organization relationships through the API."""

from __future__ import annotations

import pytest

from tests.conftest import Cast
from tests.contacts.conftest import call, make_organization, make_person

pytestmark = pytest.mark.django_db


def test_v2_organization_crud_and_search(cast: Cast) -> None:
    status, body = call(
        "post", "/api/v2/organizations", cast.alice_token, {"name": "Org", "visible_to": 3}
    )
    assert status == 200, body
    org_id = body["data"]["id"]
    assert body["data"]["visible_to"] == 3
    status, body = call(
        "patch",
        f"/api/v2/organizations/{org_id}",
        cast.alice_token,
        {"name": "Initrode", "address": {"value": "Tallinn"}},
    )
    assert (status, body["data"]["address"]["value"]) == (200, "Tallinn")
    _, body = call("get", "/api/v2/organizations", cast.alice_token, include_fields="people_count")
    assert body["data"][0]["people_count"] == 0
    _, body = call("get", "/api/v2/organizations/search", cast.alice_token, term="tallinn")
    assert [hit["item"]["id"] for hit in body["data"]["items"]] == [org_id]
    status, body = call("delete", f"/api/v2/organizations/{org_id}", cast.alice_token)
    assert (status, body["data"]) == (200, {"id": org_id})


def test_v1_organization_shape_persons_and_merge(cast: Cast) -> None:
    status, body = call(
        "post",
        "/api/v1/organizations",
        cast.alice_token,
        {"name": "Org", "owner_id": cast.bob.pk, "visible_to": "3"},
    )
    assert status == 201, body
    keep_id = body["data"]["id"]
    assert body["data"]["owner_id"]["id"] == cast.bob.pk
    assert body["data"]["visible_to"] == "3"
    other = make_organization(cast, name="Other")
    person = make_person(cast, org_id=other.pk)
    _, listed = call("get", f"/api/v1/organizations/{other.pk}/persons", cast.alice_token)
    assert [p["id"] for p in listed["data"]] == [person.pk]
    status, body = call(
        "put",
        f"/api/v1/organizations/{other.pk}/merge",
        cast.alice_token,
        {"merge_with_id": keep_id},
    )
    assert (status, body["data"]["id"], body["data"]["people_count"]) == (200, keep_id, 1)
    _, person_body = call("get", f"/api/v2/persons/{person.pk}", cast.alice_token)
    assert person_body["data"]["org_id"] == keep_id


def test_organization_relationships_are_seen_from_both_sides(cast: Cast) -> None:
    parent = make_organization(cast, name="Holding")
    child = make_organization(cast, name="Daughter")
    status, body = call(
        "post",
        "/api/v1/organizationRelationships",
        cast.alice_token,
        {"type": "parent", "rel_owner_org_id": parent.pk, "rel_linked_org_id": child.pk},
    )
    assert status == 200, body
    relation_id = body["data"]["id"]
    _, from_parent = call(
        "get", "/api/v1/organizationRelationships", cast.alice_token, org_id=parent.pk
    )
    _, from_child = call(
        "get", "/api/v1/organizationRelationships", cast.alice_token, org_id=child.pk
    )
    assert [
        (r["calculated_type"], r["related_organization_name"]) for r in from_parent["data"]
    ] == [("daughter", "Daughter")]
    assert [(r["calculated_type"], r["related_organization_name"]) for r in from_child["data"]] == [
        ("parent", "Holding")
    ]
    status, body = call(
        "put",
        f"/api/v1/organizationRelationships/{relation_id}",
        cast.alice_token,
        {"type": "related"},
    )
    assert (status, body["data"]["type"]) == (200, "related")
    status, body = call(
        "delete", f"/api/v1/organizationRelationships/{relation_id}", cast.alice_token
    )
    assert (status, body["data"]) == (200, {"id": relation_id})
    assert (
        call("get", f"/api/v1/organizationRelationships/{relation_id}", cast.alice_token)[0] == 404
    )


def test_a_relation_to_itself_is_400(cast: Cast) -> None:
    org = make_organization(cast)
    status, _body = call(
        "post",
        "/api/v1/organizationRelationships",
        cast.alice_token,
        {"type": "parent", "rel_owner_org_id": org.pk, "rel_linked_org_id": org.pk},
    )
    assert status == 400


def test_carol_gets_404_on_acmes_organization(cast: Cast) -> None:
    org = make_organization(cast)
    for path in (
        f"/api/v2/organizations/{org.pk}",
        f"/api/v1/organizations/{org.pk}",
        f"/api/v1/organizations/{org.pk}/persons",
    ):
        assert call("get", path, cast.carol_token)[0] == 404
    assert (
        call("get", "/api/v1/organizationRelationships", cast.carol_token, org_id=org.pk)[0] == 404
    )


def test_the_schema_documents_the_contacts_endpoints(cast: Cast) -> None:
    from django.test import Client
    from drf_spectacular.validation import validate_schema

    schema = Client().get("/api/schema", {"format": "json"}).json()
    validate_schema(schema)
    assert {
        "/api/v2/persons",
        "/api/v1/persons/{id}/merge",
        "/api/v1/organizationRelationships",
    } <= set(schema["paths"])
