"""Pipelines, stages and projects over the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast
from tests.crm.sales.conftest import Call, Dave, make_person

pytestmark = pytest.mark.django_db


def test_pipelines_list_has_the_default_pipeline_and_its_stages(call: Call, cast: Cast) -> None:
    status, pipelines = call(cast.bob_token, "get", "/api/v1/pipelines")
    assert status == 200
    assert [p["name"] for p in pipelines["data"]] == ["Sales pipeline"]
    pipeline_id = pipelines["data"][0]["id"]

    _, stages = call(cast.bob_token, "get", "/api/v1/stages", {"pipeline_id": pipeline_id})
    assert [s["name"] for s in stages["data"]][:2] == ["Qualified", "Contact made"]
    assert stages["data"][0]["deal_probability"] == 10


def test_pipeline_and_stage_crud(call: Call, cast: Cast) -> None:
    status, pipeline = call(cast.alice_token, "post", "/api/v1/pipelines", {"name": "Partners"})
    assert status == 200, pipeline
    pipeline_id = pipeline["data"]["id"]
    _, stage = call(
        cast.alice_token,
        "post",
        "/api/v1/stages",
        {"name": "Intro", "pipeline_id": pipeline_id, "deal_probability": 30},
    )
    stage_id = stage["data"]["id"]

    _, renamed = call(cast.alice_token, "put", f"/api/v1/stages/{stage_id}", {"name": "Hello"})
    assert renamed["data"]["name"] == "Hello"
    _, got = call(cast.alice_token, "get", f"/api/v1/pipelines/{pipeline_id}")
    assert got["data"]["name"] == "Partners"
    status, put = call(cast.alice_token, "put", f"/api/v1/pipelines/{pipeline_id}", {"name": "P2"})
    assert (status, put["data"]["name"]) == (200, "P2")

    _, deal = call(cast.alice_token, "post", "/api/v2/deals", {"title": "d", "stage_id": stage_id})
    status, _refused = call(cast.alice_token, "delete", f"/api/v1/stages/{stage_id}")
    assert status == 400
    call(cast.alice_token, "delete", f"/api/v2/deals/{deal['data']['id']}")
    assert call(cast.alice_token, "delete", f"/api/v1/pipelines/{pipeline_id}")[0] == 400

    assert call(cast.carol_token, "get", f"/api/v1/pipelines/{pipeline_id}")[0] == 404
    assert call(cast.carol_token, "get", f"/api/v1/stages/{stage_id}")[0] == 404


def test_regular_users_cannot_change_pipelines(call: Call, cast: Cast) -> None:
    status, body = call(cast.bob_token, "post", "/api/v1/pipelines", {"name": "Mine"})
    assert (status, body["success"]) == (403, False)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/pipelines", {"name": ""}),
        ("/api/v1/pipelines", {"name": "x", "order_nr": -1}),
        ("/api/v1/stages", {"name": "x"}),
        ("/api/v1/stages", {"name": "x", "pipeline_id": 424242}),
        ("/api/v1/stages", {"name": "x", "pipeline_id": 1, "deal_probability": 101}),
    ],
)
def test_bad_pipeline_and_stage_input_is_a_400(
    call: Call, cast: Cast, path: str, body: dict[str, Any]
) -> None:
    status, answer = call(cast.alice_token, "post", path, body)
    assert status == 400, answer


def test_project_crud_v2_and_v1(call: Call, cast: Cast) -> None:
    person = make_person(cast.company_a, cast.alice)
    _, deal = call(cast.alice_token, "post", "/api/v2/deals", {"title": "d"})

    status, created = call(
        cast.alice_token,
        "post",
        "/api/v2/projects",
        {"title": "Rollout", "deal_ids": [deal["data"]["id"]], "person_ids": [person.pk]},
    )
    assert status == 200, created
    project = created["data"]
    assert project["deal_ids"] == [deal["data"]["id"]]
    assert project["person_ids"] == [person.pk]
    assert project["status"] == "open"
    assert project["add_time"].endswith("Z")

    _, patched = call(
        cast.alice_token, "patch", f"/api/v2/projects/{project['id']}", {"status": "completed"}
    )
    assert patched["data"]["status"] == "completed"
    _, v1 = call(cast.alice_token, "put", f"/api/v1/projects/{project['id']}", {"title": "R2"})
    assert v1["data"]["title"] == "R2"
    assert "T" not in v1["data"]["add_time"]
    _, listed = call(cast.alice_token, "get", "/api/v1/projects")
    assert [p["id"] for p in listed["data"]] == [project["id"]]
    assert listed["additional_data"] == {"next_cursor": None}

    assert call(cast.carol_token, "get", f"/api/v2/projects/{project['id']}")[0] == 404
    assert call(cast.carol_token, "get", f"/api/v1/projects/{project['id']}")[0] == 404
    status, deleted = call(cast.alice_token, "delete", f"/api/v2/projects/{project['id']}")
    assert (status, deleted["data"]) == (200, {"id": project["id"]})
    assert call(cast.alice_token, "get", f"/api/v2/projects/{project['id']}")[0] == 404


def test_project_boards_and_phases(call: Call, cast: Cast) -> None:
    _, boards = call(cast.alice_token, "get", "/api/v2/projects/boards")
    board_id = boards["data"][0]["id"]

    _, phases = call(cast.alice_token, "get", "/api/v1/projects/phases", {"board_id": board_id})

    assert [b["name"] for b in boards["data"]] == ["Projects"]
    assert [p["name"] for p in phases["data"]] == ["Planning", "In progress", "Done"]
    assert call(cast.alice_token, "get", "/api/v2/projects/phases")[0] == 400
    assert call(cast.alice_token, "get", "/api/v2/projects/phases", {"board_id": "x"})[0] == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "status": "maybe"}, "status"),
        ({"title": "x", "deal_ids": [424242]}, "deal_ids"),
        ({"title": "x", "phase_id": 424242}, "phase_id"),
        ({"title": "x", "start_date": "2024-02-01", "end_date": "2024-01-01"}, "end_date"),
        ({"title": "x", "health_status": "great"}, "health_status"),
    ],
)
def test_bad_project_input_is_a_400(
    call: Call, cast: Cast, body: dict[str, Any], field: str
) -> None:
    status, answer = call(cast.alice_token, "post", "/api/v2/projects", body)
    assert status == 400, answer
    assert field in answer["errors"], answer


def test_a_hidden_project_is_403_for_dave(call: Call, cast: Cast, dave: Dave) -> None:
    _, created = call(cast.bob_token, "post", "/api/v2/projects", {"title": "p", "visible_to": 1})
    assert call(dave.token, "get", f"/api/v2/projects/{created['data']['id']}")[0] == 403


def test_project_list_query_count_does_not_grow(
    call: Call, cast: Cast, django_assert_num_queries: Any
) -> None:
    call(cast.alice_token, "post", "/api/v2/projects", {"title": "p"})
    with CaptureQueriesContext(connection) as one:
        call(cast.alice_token, "get", "/api/v2/projects")
    # Read now: entering django_assert_num_queries clears the connection's query log.
    count = len(one.captured_queries)
    for _ in range(3):
        call(cast.alice_token, "post", "/api/v2/projects", {"title": "p"})
    with django_assert_num_queries(count):
        _, listed = call(cast.alice_token, "get", "/api/v2/projects")
    assert len(listed["data"]) == 4
