"""Leads over the API: v1 CRUD with UUID ids, lead labels, search, and the v2 conversion job."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Cast
from tests.crm.sales.conftest import Call, Dave, make_organization, make_person

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(cast: Cast) -> Any:
    return make_person(cast.company_a, cast.alice)


def _lead(call: Call, token: str, **body: Any) -> dict[str, Any]:
    status, created = call(token, "post", "/api/v1/leads", {"title": "Lead", **body})
    assert status == 201, created
    return dict(created["data"])


def test_create_answers_201_with_the_lead_shape(call: Call, cast: Cast, person: Any) -> None:
    organization = make_organization(cast.company_a, cast.alice)
    _, label = call(cast.alice_token, "post", "/api/v1/leadLabels", {"name": "Hot", "color": "red"})

    lead = _lead(
        call,
        cast.alice_token,
        person_id=person.pk,
        organization_id=organization.pk,
        value={"amount": 500, "currency": "EUR"},
        label_ids=[label["data"]["id"]],
    )

    assert len(lead["id"]) == 36
    assert lead["value"] == {"amount": 500, "currency": "EUR"}
    assert lead["label_ids"] == [label["data"]["id"]]
    assert lead["source_name"] == "API"
    assert lead["visible_to"] == "7"
    assert lead["is_archived"] is False
    assert lead["add_time"].endswith("Z")
    assert "." in lead["add_time"]


def test_patch_allows_nulls_and_archives(call: Call, cast: Cast, person: Any) -> None:
    lead = _lead(
        call, cast.alice_token, person_id=person.pk, value={"amount": 1, "currency": "EUR"}
    )

    status, body = call(
        cast.alice_token,
        "patch",
        f"/api/v1/leads/{lead['id']}",
        {"title": "x", "is_archived": True, "value": None, "was_seen": True},
    )

    assert status == 200, body
    assert (body["data"]["value"], body["data"]["is_archived"]) == (None, True)
    _, live = call(cast.alice_token, "get", "/api/v1/leads")
    _, archived = call(cast.alice_token, "get", "/api/v1/leads/archived")
    assert live["data"] == []
    assert [item["id"] for item in archived["data"]] == [lead["id"]]


def test_removing_both_person_and_organization_is_a_400(
    call: Call, cast: Cast, person: Any
) -> None:
    lead = _lead(call, cast.alice_token, person_id=person.pk)

    status, body = call(
        cast.alice_token, "patch", f"/api/v1/leads/{lead['id']}", {"person_id": None}
    )

    assert status == 400
    assert "person_id" in body["errors"]


def test_list_is_oldest_first_with_filters_and_flat_paging(
    call: Call, cast: Cast, person: Any
) -> None:
    other = make_person(cast.company_a, cast.alice, "Other One")
    first = _lead(call, cast.alice_token, person_id=person.pk)["id"]
    second = _lead(call, cast.alice_token, person_id=other.pk)["id"]

    _, listed = call(cast.alice_token, "get", "/api/v1/leads", {"limit": 1})
    _, filtered = call(cast.alice_token, "get", "/api/v1/leads", {"person_id": other.pk})
    _, newest = call(cast.alice_token, "get", "/api/v1/leads", {"sort": "add_time DESC"})

    assert [item["id"] for item in listed["data"]] == [first]
    assert listed["additional_data"]["more_items_in_collection"] is True
    assert listed["additional_data"]["pagination"]["next_start"] == 1
    assert [item["id"] for item in filtered["data"]] == [second]
    assert [item["id"] for item in newest["data"]] == [second, first]


def test_delete_is_soft_and_returns_the_id(call: Call, cast: Cast, person: Any) -> None:
    lead = _lead(call, cast.alice_token, person_id=person.pk)

    status, body = call(cast.alice_token, "delete", f"/api/v1/leads/{lead['id']}")

    assert (status, body["data"]) == (200, {"id": lead["id"]})
    assert call(cast.alice_token, "get", f"/api/v1/leads/{lead['id']}")[0] == 404


@pytest.mark.parametrize("lead_id", ["not-a-uuid", "12345", "0" * 200])
def test_a_malformed_lead_id_is_a_404_envelope(call: Call, cast: Cast, lead_id: str) -> None:
    status, body = call(cast.alice_token, "get", f"/api/v1/leads/{lead_id}")
    assert (status, body["success"]) == (404, False)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "person_id": "abc"}, "person_id"),
        ({"title": "x", "person_id": 424242}, "person_id"),
        ({"title": "x"}, "person_id"),
        ({"title": "x", "value": 5}, "value"),
        ({"title": "x", "value": {"amount": 5, "currency": "EURO"}}, "value.currency"),
        ({"title": "x", "label_ids": ["nope"]}, "label_ids.0"),
        ({"title": "x", "label_ids": ["6f1b1a2e-8f7c-4c55-9d0e-7c1f0a3b2c1d"]}, "label_ids"),
        ({"title": "x", "expected_close_date": "soon"}, "expected_close_date"),
    ],
)
def test_bad_lead_input_is_a_400(
    call: Call, cast: Cast, person: Any, body: dict[str, Any], field: str
) -> None:
    if field != "person_id" and "person_id" not in body:
        body = {**body, "person_id": person.pk}
    status, answer = call(cast.alice_token, "post", "/api/v1/leads", body)

    assert status == 400, answer
    assert field in answer["errors"], answer


def test_lead_access_and_carol_gets_404(call: Call, cast: Cast, dave: Dave, person: Any) -> None:
    lead = _lead(call, cast.bob_token, person_id=person.pk, visible_to=1)

    assert call(cast.alice_token, "get", f"/api/v1/leads/{lead['id']}")[0] == 200
    assert call(dave.token, "get", f"/api/v1/leads/{lead['id']}")[0] == 403
    assert call(cast.carol_token, "get", f"/api/v1/leads/{lead['id']}")[0] == 404
    assert call(cast.carol_token, "delete", f"/api/v1/leads/{lead['id']}")[0] == 404
    _, daves = call(dave.token, "get", "/api/v1/leads")
    assert daves["data"] == []


def test_lead_labels_crud(call: Call, cast: Cast) -> None:
    _, created = call(
        cast.alice_token, "post", "/api/v1/leadLabels", {"name": "Warm", "color": "yellow"}
    )
    label_id = created["data"]["id"]

    status, patched = call(
        cast.alice_token, "patch", f"/api/v1/leadLabels/{label_id}", {"color": "blue"}
    )
    assert (status, patched["data"]["color"]) == (200, "blue")
    _, listed = call(cast.alice_token, "get", "/api/v1/leadLabels")
    assert [item["name"] for item in listed["data"]] == ["Warm"]
    assert (
        call(cast.carol_token, "patch", f"/api/v1/leadLabels/{label_id}", {"color": "red"})[0]
        == 404
    )
    status, deleted = call(cast.alice_token, "delete", f"/api/v1/leadLabels/{label_id}")
    assert (status, deleted["data"]) == (200, {"id": label_id})
    assert call(cast.alice_token, "delete", "/api/v1/leadLabels/bad-uuid")[0] == 404
    status, bad = call(
        cast.alice_token, "post", "/api/v1/leadLabels", {"name": "x", "color": "mauve"}
    )
    assert status == 400
    assert "color" in bad["errors"]


def test_lead_search(call: Call, cast: Cast, person: Any) -> None:
    lead = _lead(call, cast.alice_token, person_id=person.pk, title="Widget order")

    _, v2 = call(cast.alice_token, "get", "/api/v2/leads/search", {"term": "widget"})
    _, v1 = call(cast.alice_token, "get", "/api/v1/leads/search", {"term": "widget"})

    assert [item["item"]["id"] for item in v2["data"]["items"]] == [lead["id"]]
    assert [item["item"]["id"] for item in v1["data"]["items"]] == [lead["id"]]


def test_convert_lead_to_deal_and_poll_its_status(
    call: Call,
    cast: Cast,
    person: Any,
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _, label = call(cast.alice_token, "post", "/api/v1/leadLabels", {"name": "Hot", "color": "red"})
    lead = _lead(
        call,
        cast.alice_token,
        person_id=person.pk,
        value={"amount": 700, "currency": "EUR"},
        label_ids=[label["data"]["id"]],
    )
    _, stages = call(cast.alice_token, "get", "/api/v1/stages")
    stage = stages["data"][2] if stages["data"] else None
    if stage is None:
        call(cast.alice_token, "get", "/api/v1/pipelines")
        _, stages = call(cast.alice_token, "get", "/api/v1/stages")
        stage = stages["data"][2]

    with django_capture_on_commit_callbacks(execute=True):
        status, started = call(
            cast.alice_token,
            "post",
            f"/api/v2/leads/{lead['id']}/convert/deal",
            {"stage_id": stage["id"]},
        )
    assert status == 200, started
    conversion_id = started["data"]["conversion_id"]
    status, job = call(
        cast.alice_token, "get", f"/api/v2/leads/{lead['id']}/convert/status/{conversion_id}"
    )

    assert status == 200
    assert job["data"]["status"] == "completed"
    _, deal = call(cast.alice_token, "get", f"/api/v2/deals/{job['data']['deal_id']}")
    assert deal["data"]["stage_id"] == stage["id"]
    assert (deal["data"]["value"], deal["data"]["currency"]) == (700, "EUR")
    assert deal["data"]["person_id"] == person.pk
    assert deal["data"]["source_lead_id"] == lead["id"]
    assert len(deal["data"]["label_ids"]) == 1
    _, converted = call(cast.alice_token, "get", f"/api/v1/leads/{lead['id']}")
    assert converted["data"]["is_archived"] is True
    bad = call(cast.alice_token, "get", f"/api/v2/leads/{lead['id']}/convert/status/nope")
    assert bad[0] == 404
    assert call(cast.carol_token, "post", f"/api/v2/leads/{lead['id']}/convert/deal", {})[0] == 404


def test_converting_with_an_unknown_stage_is_a_400(call: Call, cast: Cast, person: Any) -> None:
    lead = _lead(call, cast.alice_token, person_id=person.pk)

    status, body = call(
        cast.alice_token, "post", f"/api/v2/leads/{lead['id']}/convert/deal", {"stage_id": 424242}
    )

    assert status == 400
    assert "stage_id" in body["errors"]
