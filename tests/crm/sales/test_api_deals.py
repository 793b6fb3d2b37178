"""Deals over the API: v2 CRUD, search and archived, v1's deprecated CRUD, the access matrix,
bad input (always a 400 or 404 envelope, never a 500) and constant query counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast
from tests.crm.sales.conftest import Call, Dave, make_organization, make_person

pytestmark = pytest.mark.django_db


def _create(call: Call, token: str, **body: Any) -> dict[str, Any]:
    status, created = call(token, "post", "/api/v2/deals", {"title": "Deal", **body})
    assert status == 200, created
    return dict(created["data"])


def test_v2_create_returns_the_v2_deal_in_the_default_pipeline(call: Call, cast: Cast) -> None:
    person = make_person(cast.company_a, cast.alice)
    organization = make_organization(cast.company_a, cast.alice)

    deal = _create(
        call,
        cast.alice_token,
        person_id=person.pk,
        org_id=organization.pk,
        value=1500,
        currency="EUR",
    )

    assert deal["title"] == "Deal"
    assert (deal["person_id"], deal["org_id"]) == (person.pk, organization.pk)
    assert (deal["value"], deal["currency"], deal["status"]) == (1500, "EUR", "open")
    assert deal["owner_id"] == cast.alice.pk
    assert deal["visible_to"] == 7
    assert deal["is_deleted"] is False
    assert deal["add_time"].endswith("Z")
    assert deal["custom_fields"] == {}


def test_v2_patch_status_won_and_delete(call: Call, cast: Cast) -> None:
    deal = _create(call, cast.alice_token)

    status, won = call(cast.alice_token, "patch", f"/api/v2/deals/{deal['id']}", {"status": "won"})
    assert status == 200
    assert won["data"]["status"] == "won"
    assert won["data"]["won_time"] is not None

    status, deleted = call(cast.alice_token, "delete", f"/api/v2/deals/{deal['id']}")
    assert (status, deleted["data"]) == (200, {"id": deal["id"]})
    status, _ = call(cast.alice_token, "get", f"/api/v2/deals/{deal['id']}")
    assert status == 404


def test_v2_list_filters_sorts_and_pages_by_cursor(call: Call, cast: Cast) -> None:
    person = make_person(cast.company_a, cast.alice)
    ids = [_create(call, cast.alice_token, title=f"D{i}")["id"] for i in range(3)]
    mine = _create(call, cast.alice_token, person_id=person.pk)["id"]
    won = _create(call, cast.alice_token, status="won")["id"]

    _, page1 = call(cast.alice_token, "get", "/api/v2/deals", {"limit": 2})
    cursor = page1["additional_data"]["next_cursor"]
    _, page2 = call(cast.alice_token, "get", "/api/v2/deals", {"limit": 2, "cursor": cursor})
    _, by_person = call(cast.alice_token, "get", "/api/v2/deals", {"person_id": person.pk})
    _, by_status = call(cast.alice_token, "get", "/api/v2/deals", {"status": "won"})
    _, by_ids = call(cast.alice_token, "get", "/api/v2/deals", {"ids": f"{ids[0]},{won}"})
    _, newest = call(
        cast.alice_token,
        "get",
        "/api/v2/deals",
        {"sort_by": "add_time", "sort_direction": "desc", "limit": 1},
    )

    assert [d["id"] for d in page1["data"]] == ids[:2]
    assert [d["id"] for d in page2["data"]] == [ids[2], mine]
    assert [d["id"] for d in by_person["data"]] == [mine]
    assert [d["id"] for d in by_status["data"]] == [won]
    assert [d["id"] for d in by_ids["data"]] == [ids[0], won]
    assert [d["id"] for d in newest["data"]] == [won]


def test_archived_deals_are_listed_apart(call: Call, cast: Cast) -> None:
    live = _create(call, cast.alice_token)["id"]
    archived = _create(call, cast.alice_token, is_archived=True)["id"]

    _, listed = call(cast.alice_token, "get", "/api/v2/deals")
    _, archive = call(cast.alice_token, "get", "/api/v2/deals/archived")

    assert [d["id"] for d in listed["data"]] == [live]
    assert [d["id"] for d in archive["data"]] == [archived]
    assert archive["data"][0]["archive_time"] is not None


def test_search_finds_deals_by_title(call: Call, cast: Cast) -> None:
    deal = _create(call, cast.alice_token, title="Acme rollout")
    _create(call, cast.alice_token, title="Other")

    status, found = call(cast.alice_token, "get", "/api/v2/deals/search", {"term": "rollout"})

    assert status == 200
    assert [item["item"]["id"] for item in found["data"]["items"]] == [deal["id"]]
    assert found["data"]["items"][0]["item"]["type"] == "deal"
    assert found["additional_data"] == {"next_cursor": None}
    status, short = call(cast.alice_token, "get", "/api/v2/deals/search", {"term": "r"})
    assert status == 400
    assert "term" in short["errors"]


@pytest.mark.parametrize(
    ("visible_to", "sees"),
    [
        # who: Alice (admin), Bob (the owner), Dave (regular, no team); plus Eve-the-teammate
        # is Alice, so team visibility is checked with Bob as owner and Alice/Dave as viewers.
        (1, {"alice": 200, "bob": 200, "dave": 403}),
        (3, {"alice": 200, "bob": 200, "dave": 403}),
        (7, {"alice": 200, "bob": 200, "dave": 200}),
    ],
)
def test_deal_access_matrix(
    call: Call, cast: Cast, dave: Dave, visible_to: int, sees: dict[str, int]
) -> None:
    deal = _create(call, cast.bob_token, visible_to=visible_to)
    tokens = {"alice": cast.alice_token, "bob": cast.bob_token, "dave": dave.token}

    for who, expected in sees.items():
        status, body = call(tokens[who], "get", f"/api/v2/deals/{deal['id']}")
        assert status == expected, (who, body)
        status, _ = call(tokens[who], "get", f"/api/v1/deals/{deal['id']}")
        assert status == expected, who
        _, listed = call(tokens[who], "get", "/api/v2/deals")
        assert (deal["id"] in [d["id"] for d in listed["data"]]) == (expected == 200), who
        status, _ = call(tokens[who], "patch", f"/api/v2/deals/{deal['id']}", {"title": "x"})
        assert status == expected, who


def test_team_mate_sees_a_team_deal_that_dave_owning_hides_from_bob(
    call: Call, cast: Cast, dave: Dave
) -> None:
    # Bob shares the "Sales" team with Alice; Dave is on no team.
    bobs = _create(call, cast.alice_token, visible_to=3, owner_id=cast.alice.pk)
    daves = _create(call, dave.token, visible_to=3)

    assert call(cast.bob_token, "get", f"/api/v2/deals/{bobs['id']}")[0] == 200
    assert call(cast.bob_token, "get", f"/api/v2/deals/{daves['id']}")[0] == 403
    assert call(cast.alice_token, "get", f"/api/v2/deals/{daves['id']}")[0] == 200


def test_carol_gets_404_on_acmes_deal(call: Call, cast: Cast) -> None:
    deal = _create(call, cast.alice_token)

    for path in (f"/api/v2/deals/{deal['id']}", f"/api/v1/deals/{deal['id']}"):
        status, body = call(cast.carol_token, "get", path)
        assert (status, body["success"]) == (404, False)
    assert call(cast.carol_token, "delete", f"/api/v2/deals/{deal['id']}")[0] == 404
    assert call(cast.carol_token, "patch", f"/api/v2/deals/{deal['id']}", {"title": "x"})[0] == 404


def test_a_person_of_another_company_cannot_be_linked(call: Call, cast: Cast) -> None:
    theirs = make_person(cast.company_b, cast.carol)

    status, body = call(
        cast.alice_token, "post", "/api/v2/deals", {"title": "x", "person_id": theirs.pk}
    )

    assert status == 400
    assert "person_id" in body["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x", "currency": "EURO"}, "currency"),
        ({"title": "x", "status": "maybe"}, "status"),
        ({"title": "x", "value": "lots"}, "value"),
        ({"title": "x", "value": "1e30"}, "value"),
        ({"title": "x", "stage_id": 999999999}, "stage_id"),
        ({"title": "x", "pipeline_id": 999999999}, "pipeline_id"),
        ({"title": "x", "person_id": 99999999999999999999999}, "person_id"),
        ({"title": "x", "person_id": 424242}, "person_id"),
        ({"title": "x", "org_id": "abc"}, "org_id"),
        ({"title": "x", "owner_id": [1]}, "owner_id"),
        ({"title": "x", "label_ids": [424242]}, "label_ids"),
        ({"title": "x", "visible_to": 4}, "visible_to"),
        ({"title": "x", "expected_close_date": "2024-13-45"}, "expected_close_date"),
        ({"title": "x", "lost_reason": "why"}, "lost_reason"),
    ],
)
def test_bad_deal_input_is_a_400_naming_the_field(
    call: Call, cast: Cast, body: dict[str, Any], field: str
) -> None:
    status, answer = call(cast.alice_token, "post", "/api/v2/deals", body)

    assert status == 400, answer
    assert answer["success"] is False
    assert field in answer["errors"], answer


def test_a_stage_of_another_pipeline_is_a_400(call: Call, cast: Cast) -> None:
    first = _create(call, cast.alice_token)
    _, pipeline = call(cast.alice_token, "post", "/api/v1/pipelines", {"name": "Other"})

    status, body = call(
        cast.alice_token,
        "patch",
        f"/api/v2/deals/{first['id']}",
        {"stage_id": first["stage_id"], "pipeline_id": pipeline["data"]["id"]},
    )

    assert status == 400
    assert "stage_id" in body["errors"]


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJpZCI6ImFiYyJ9"},  # {"id":"abc"}
        {"limit": 0},
        {"limit": 501},
        {"owner_id": "x"},
        {"ids": "1,a"},
        {"person_id": "99999999999999999999999"},
        {"updated_since": "yesterday"},
        {"sort_by": "title"},
        {"sort_direction": "up"},
        {"status": "maybe"},
    ],
)
def test_bad_list_parameters_are_a_400(call: Call, cast: Cast, query: dict[str, Any]) -> None:
    status, body = call(cast.alice_token, "get", "/api/v2/deals", query)

    assert status == 400, body
    assert body["success"] is False


def test_huge_and_malformed_ids_in_the_path_are_a_404(call: Call, cast: Cast) -> None:
    for path in ("/api/v2/deals/99999999999999999999999", "/api/v2/deals/abc"):
        status, body = call(cast.alice_token, "get", path)
        assert (status, body["success"]) == (404, False)


def test_non_object_body_is_a_400(call: Call, cast: Cast) -> None:
    status, _body = call(cast.alice_token, "post", "/api/v2/deals", [1, 2])
    assert status == 400


def test_list_query_count_does_not_grow_with_the_page(
    call: Call, cast: Cast, django_assert_num_queries: Any
) -> None:
    person = make_person(cast.company_a, cast.alice)
    organization = make_organization(cast.company_a, cast.alice)
    _create(call, cast.alice_token, person_id=person.pk, org_id=organization.pk)
    counts = {}
    for path in ("/api/v2/deals", "/api/v1/deals"):
        with CaptureQueriesContext(connection) as one:
            call(cast.alice_token, "get", path)
        counts[path] = len(one.captured_queries)
    for _ in range(4):
        _create(call, cast.alice_token, person_id=person.pk, org_id=organization.pk)

    for path, count in counts.items():
        with django_assert_num_queries(count):
            status, body = call(cast.alice_token, "get", path)
        assert status == 200
        assert len(body["data"]) == 5


# --- v1 ------------------------------------------------------------------------------------


def test_v1_create_takes_user_id_and_a_string_value(call: Call, cast: Cast) -> None:
    person = make_person(cast.company_a, cast.alice, "Ann Smith")
    organization = make_organization(cast.company_a, cast.alice)

    status, body = call(
        cast.alice_token,
        "post",
        "/api/v1/deals",
        {
            "title": "D",
            "person_id": person.pk,
            "org_id": organization.pk,
            "value": "100",
            "currency": "EUR",
            "user_id": cast.bob.pk,
            "visible_to": "3",
        },
    )

    assert status == 201, body
    deal = body["data"]
    assert deal["user_id"]["id"] == cast.bob.pk
    assert deal["user_id"]["email"] == "bob@acme.test"
    assert deal["person_id"]["value"] == person.pk
    assert deal["person_id"]["email"][0]["value"] == "ann@example.test"
    assert deal["org_id"] == {
        "name": "Orgco",
        "people_count": 0,
        "owner_id": cast.alice.pk,
        "address": None,
        "active_flag": True,
        "cc_email": None,
        "value": organization.pk,
    }
    assert (deal["value"], deal["visible_to"], deal["formatted_value"]) == (100, "3", "100 EUR")
    assert deal["person_name"] == "Ann Smith"


def test_v1_errors_name_v1_fields(call: Call, cast: Cast) -> None:
    status, body = call(
        cast.alice_token, "post", "/api/v1/deals", {"title": "D", "user_id": 424242}
    )
    assert status == 400
    assert "user_id" in body["errors"]


def test_v1_put_list_status_filter_and_bulk_delete(call: Call, cast: Cast) -> None:
    a = _create(call, cast.alice_token)["id"]
    b = _create(call, cast.alice_token)["id"]

    status, put = call(cast.alice_token, "put", f"/api/v1/deals/{a}", {"status": "won"})
    assert (status, put["data"]["status"]) == (200, "won")
    _, won = call(cast.alice_token, "get", "/api/v1/deals", {"status": "won"})
    assert [d["id"] for d in won["data"]] == [a]
    _, mine = call(
        cast.alice_token,
        "get",
        "/api/v1/deals",
        {"user_id": cast.alice.pk, "status": "all_not_deleted", "start": 0, "limit": 1},
    )
    assert mine["additional_data"]["pagination"] == {
        "start": 0,
        "limit": 1,
        "more_items_in_collection": True,
        "next_start": 1,
    }
    assert str(cast.alice.pk) in mine["related_objects"]["user"]

    status, deleted = call(cast.alice_token, "delete", f"/api/v1/deals?ids={a},{b}")
    assert (status, deleted["data"]) == (200, {"id": [a, b]})
    _, gone = call(cast.alice_token, "get", "/api/v1/deals", {"status": "deleted"})
    assert sorted(d["id"] for d in gone["data"]) == [a, b]
    assert all(d["deleted"] for d in gone["data"])


def test_v1_bulk_delete_of_a_hidden_deal_is_refused_whole(
    call: Call, cast: Cast, dave: Dave
) -> None:
    mine = _create(call, dave.token, visible_to=1)["id"]
    bobs = _create(call, cast.bob_token, visible_to=1)["id"]

    status, _ = call(dave.token, "delete", f"/api/v1/deals?ids={mine},{bobs}")

    assert status == 403
    assert call(dave.token, "get", f"/api/v2/deals/{mine}")[0] == 200


def test_deals_of_a_person_and_of_an_organization(call: Call, cast: Cast) -> None:
    person = make_person(cast.company_a, cast.alice)
    organization = make_organization(cast.company_a, cast.alice)
    deal = _create(call, cast.alice_token, person_id=person.pk, org_id=organization.pk)["id"]
    _create(call, cast.alice_token)

    _, of_person = call(cast.alice_token, "get", f"/api/v1/persons/{person.pk}/deals")
    _, of_org = call(cast.alice_token, "get", f"/api/v1/organizations/{organization.pk}/deals")

    assert [d["id"] for d in of_person["data"]] == [deal]
    assert [d["id"] for d in of_org["data"]] == [deal]
    assert call(cast.carol_token, "get", f"/api/v1/persons/{person.pk}/deals")[0] == 404
