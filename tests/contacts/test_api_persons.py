"""Persons through the API: v2 and v1 shapes, the access matrix, paging, search, merge, and
400s (never 500s) on bad input."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from contacts.services import ContactPoint
from tests.conftest import Cast
from tests.contacts.conftest import Dave, call, make_organization, make_person

pytestmark = pytest.mark.django_db

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
V1_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def test_v2_create_as_the_official_client_sends_it_returns_the_v2_person(cast: Cast) -> None:
    organization = make_organization(cast)
    status, body = call(
        "post",
        "/api/v2/persons",
        cast.bob_token,
        {
            "name": "Probe Person",
            "org_id": organization.pk,
            "emails": [
                {"value": "p.work@example.com", "primary": True, "label": "work"},
                {"value": "p.home@example.com", "primary": False, "label": "home"},
            ],
            "phones": [{"value": "+3725550000", "primary": True, "label": "mobile"}],
            "visible_to": 3,
        },
    )
    assert status == 200, body
    person = body["data"]
    assert person["name"] == "Probe Person"
    assert (person["first_name"], person["last_name"]) == ("Probe", "Person")
    assert person["owner_id"] == cast.bob.pk
    assert person["org_id"] == organization.pk
    assert person["visible_to"] == 3
    assert person["emails"][1] == {"value": "p.home@example.com", "primary": False, "label": "home"}
    assert person["phones"] == [{"value": "+3725550000", "primary": True, "label": "mobile"}]
    assert person["is_deleted"] is False
    assert RFC3339.match(person["add_time"])
    assert RFC3339.match(person["update_time"])


def test_v2_patch_get_and_delete(cast: Cast) -> None:
    person = make_person(cast, name="Old Name")
    path = f"/api/v2/persons/{person.pk}"

    status, body = call("patch", path, cast.alice_token, {"name": "New Name", "job_title": "Buyer"})
    assert status == 200
    assert (body["data"]["name"], body["data"]["job_title"]) == ("New Name", "Buyer")
    status, body = call("get", path, cast.alice_token, include_fields="open_deals_count")
    assert body["data"]["open_deals_count"] == 0
    status, body = call("delete", path, cast.alice_token)
    assert (status, body["data"]) == (200, {"id": person.pk})
    assert call("get", path, cast.alice_token)[0] == 404


def test_v2_list_pages_by_cursor_and_filters(cast: Cast) -> None:
    people = [make_person(cast, name=f"P{i}") for i in range(3)]
    status, first = call("get", "/api/v2/persons", cast.alice_token, limit=2, sort_by="id")
    assert status == 200
    assert [p["id"] for p in first["data"]] == [people[0].pk, people[1].pk]
    cursor = first["additional_data"]["next_cursor"]
    _, second = call("get", "/api/v2/persons", cast.alice_token, limit=2, cursor=cursor)
    assert [p["id"] for p in second["data"]] == [people[2].pk]
    assert second["additional_data"]["next_cursor"] is None
    _, desc = call(
        "get", "/api/v2/persons", cast.alice_token, sort_by="update_time", sort_direction="desc"
    )
    assert [p["id"] for p in desc["data"]] == [p.pk for p in reversed(people)]
    _, some = call("get", "/api/v2/persons", cast.alice_token, ids=f"{people[1].pk}")
    assert [p["id"] for p in some["data"]] == [people[1].pk]


def test_list_endpoints_take_a_constant_number_of_queries(cast: Cast) -> None:
    organization = make_organization(cast)

    def count(path: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert call("get", path, cast.alice_token)[0] == 200
        return len(queries)

    make_person(cast, org_id=organization.pk, emails=[ContactPoint("a@x.test")])
    few = {path: count(path) for path in ("/api/v2/persons", "/api/v1/persons")}
    for i in range(5):
        make_person(
            cast,
            name=f"More {i}",
            org_id=organization.pk,
            emails=[ContactPoint(f"m{i}@x.test")],
            phones=[ContactPoint("+1")],
        )
    many = {path: count(path) for path in few}
    assert many == few


def test_v1_create_accepts_lenient_input_and_answers_201_in_the_v1_shape(cast: Cast) -> None:
    organization = make_organization(cast)
    status, body = call(
        "post",
        "/api/v1/persons",
        cast.alice_token,
        {
            "name": "A B",
            "org_id": str(organization.pk),
            "email": "a.b@example.com",
            "phone": [{"value": "+1 555"}],
            "visible_to": "3",
        },
    )
    assert status == 201, body
    person = body["data"]
    assert person["email"] == [{"value": "a.b@example.com", "primary": True, "label": "work"}]
    assert person["phone"][0]["value"] == "+1 555"
    assert person["visible_to"] == "3"
    assert person["owner_id"]["id"] == cast.alice.pk
    assert person["owner_id"]["value"] == cast.alice.pk
    assert person["org_id"]["value"] == organization.pk
    assert person["org_id"]["people_count"] == 1
    assert person["first_char"] == "a"
    assert person["active_flag"] is True
    assert V1_TIME.match(person["add_time"])
    assert str(cast.alice.pk) in body["related_objects"]["user"]


def test_v1_update_bulk_delete_and_offset_paging(cast: Cast) -> None:
    people = [make_person(cast, name=f"Q{i}") for i in range(3)]
    status, body = call(
        "put",
        f"/api/v1/persons/{people[0].pk}",
        cast.alice_token,
        {"name": "C D", "email": [{"value": "c@x.io", "primary": True}]},
    )
    assert status == 200
    assert body["data"]["email"][0]["value"] == "c@x.io"
    _, page = call("get", "/api/v1/persons", cast.alice_token, start=0, limit=2)
    assert page["additional_data"]["pagination"] == {
        "start": 0,
        "limit": 2,
        "more_items_in_collection": True,
        "next_start": 2,
    }
    ids = f"{people[1].pk},{people[2].pk}"
    status, body = call("delete", "/api/v1/persons", cast.alice_token, ids=ids)
    assert (status, body["data"]) == (200, {"id": [people[1].pk, people[2].pk]})


def test_v1_merge_keeps_merge_with_id(cast: Cast) -> None:
    keep = make_person(cast, name="Keep", emails=[ContactPoint("k@x.test")])
    merged = make_person(cast, name="Merged", emails=[ContactPoint("m@x.test")])
    status, body = call(
        "put", f"/api/v1/persons/{merged.pk}/merge", cast.alice_token, {"merge_with_id": keep.pk}
    )
    assert status == 200
    assert body["data"]["id"] == keep.pk
    assert [e["value"] for e in body["data"]["email"]] == ["k@x.test", "m@x.test"]
    assert call("get", f"/api/v1/persons/{merged.pk}", cast.alice_token)[0] == 404


def test_search_v2_and_v1(cast: Cast) -> None:
    person = make_person(cast, name="Ann Example", emails=[ContactPoint("a@example.com")])
    status, body = call(
        "get",
        "/api/v2/persons/search",
        cast.alice_token,
        term="a@example.com",
        fields="email",
        exact_match="true",
    )
    assert status == 200
    (hit,) = body["data"]["items"]
    assert hit["result_score"] > 0
    assert hit["item"]["id"] == person.pk
    assert hit["item"]["emails"] == ["a@example.com"]
    assert body["additional_data"]["next_cursor"] is None
    _, v1 = call("get", "/api/v1/persons/search", cast.alice_token, term="ann")
    assert [h["item"]["id"] for h in v1["data"]["items"]] == [person.pk]
    assert call("get", "/api/v2/persons/search", cast.alice_token, term="a")[0] == 400
    short = call("get", "/api/v2/persons/search", cast.alice_token, term="a", exact_match="true")
    assert short[0] == 200


# --- Access ---------------------------------------------------------------------------------

# (visible_to, viewer) -> may see, for a person owned by Bob. Alice is an admin and Bob's
# team mate; Dave is a regular user on no team.
MATRIX = [
    (1, "alice", True),
    (1, "bob", True),
    (1, "dave", False),
    (3, "alice", True),
    (3, "bob", True),
    (3, "dave", False),
    (7, "alice", True),
    (7, "bob", True),
    (7, "dave", True),
]


@pytest.mark.parametrize(("visible_to", "viewer", "sees"), MATRIX)
def test_access_matrix_for_persons(
    cast: Cast, dave: Dave, visible_to: int, viewer: str, sees: bool
) -> None:
    person = make_person(cast, cast.bob, visible_to=visible_to)
    token = {"alice": cast.alice_token, "bob": cast.bob_token, "dave": dave.token}[viewer]

    detail = call("get", f"/api/v2/persons/{person.pk}", token)[0]
    listed = [p["id"] for p in call("get", "/api/v2/persons", token)[1]["data"]]
    updated = call("patch", f"/api/v2/persons/{person.pk}", token, {"name": "X"})[0]

    assert detail == (200 if sees else 403)
    assert (person.pk in listed) is sees
    assert updated == (200 if sees else 403)


def test_a_team_mate_sees_team_items_of_a_non_admin_owner(cast: Cast, dave: Dave) -> None:
    # Bob is Alice's team mate; a team item of Bob's is hidden from Dave (no team).
    person = make_person(cast, cast.bob, visible_to=3)
    assert call("get", f"/api/v1/persons/{person.pk}", dave.token)[0] == 403


def test_carol_gets_404_on_acmes_person(cast: Cast) -> None:
    person = make_person(cast)
    for path in (f"/api/v2/persons/{person.pk}", f"/api/v1/persons/{person.pk}"):
        status, body = call("get", path, cast.carol_token)
        assert status == 404
        assert body["success"] is False
    assert call("patch", f"/api/v2/persons/{person.pk}", cast.carol_token, {"name": "x"})[0] == 404
    assert call("delete", f"/api/v2/persons/{person.pk}", cast.carol_token)[0] == 404


# --- Bad input ------------------------------------------------------------------------------

BAD_BODIES = [
    {"name": 5},
    {"name": "x", "owner_id": "1"},
    {"name": "x", "owner_id": 99999999999999999999},
    {"name": "x", "org_id": 999999999},
    {"name": "x", "visible_to": 4},
    {"name": "x", "visible_to": "7"},
    {"name": "x", "emails": [{"value": "nope"}]},
    {"name": "x", "emails": "a@x.test"},
    {"name": "x", "emails": [{"value": "a@x.test", "label": "fax"}]},
    {"name": "x", "label_ids": [12345]},
    {"name": "x", "birthday": "yesterday"},
    {"name": ""},
    {},
    [],
]


@pytest.mark.parametrize("bad", BAD_BODIES)
def test_bad_v2_bodies_are_400_with_a_field_message(cast: Cast, bad: Any) -> None:
    status, body = call("post", "/api/v2/persons", cast.alice_token, bad)
    assert status == 400, body
    assert body["success"] is False
    assert body["error"]


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "!!!"},
        {"cursor": "eyJpZCI6Im5vIn0"},
        {"limit": "0"},
        {"limit": "9999"},
        {"updated_since": "yesterday"},
        {"ids": "1,a"},
        {"owner_id": "x"},
        {"sort_by": "name"},
        {"include_fields": "nonsense"},
    ],
)
def test_bad_v2_list_parameters_are_400(cast: Cast, params: dict[str, str]) -> None:
    assert call("get", "/api/v2/persons", cast.alice_token, **params)[0] == 400


def test_v1_invalid_email_names_the_email_field(cast: Cast) -> None:
    status, body = call("post", "/api/v1/persons", cast.alice_token, {"name": "x", "email": "no"})
    assert status == 400
    assert "email" in body["errors"]


def test_huge_and_unknown_ids_are_404(cast: Cast) -> None:
    assert call("get", "/api/v2/persons/999999999999999999", cast.alice_token)[0] == 404
    assert call("get", "/api/v2/persons/9999999999999999999999", cast.alice_token)[0] == 404


def test_a_v1_phone_given_as_an_object_is_a_400_naming_the_field(cast: Cast) -> None:
    """Found by schemathesis: the error message's braces broke DRF's message formatting."""
    response = Client().post(
        "/api/v1/persons",
        data=json.dumps({"name": "Odd", "phone": {}}),
        content_type="application/json",
        HTTP_X_API_TOKEN=cast.alice_token,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["error"].startswith("phone: Give a string, or a list of strings or of {value")
