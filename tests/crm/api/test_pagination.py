"""v1 offset paging and v2 cursor paging, through test-only list endpoints over the
company's users (crm.api.pagination is meant for every later list)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client

from crm import services, tenancy
from crm.api.pagination import decode_cursor, encode_cursor
from crm.models import Membership, Role
from tests.conftest import Cast
from tests.factories import UserFactory

OFFSET = "/api/v1/test/users"
CURSOR = "/api/v2/test/users"


@pytest.fixture
def seven_users(cast: Cast) -> list[int]:
    """Acme's users' ids in id order: Alice, Bob and five more."""
    with tenancy.bound(cast.company_a.pk):
        for _ in range(5):
            services.membership_add(
                company=cast.company_a, user=UserFactory.create(), role=Role.REGULAR
            )
        members = Membership.objects.for_company(cast.company_a)
        return sorted(members.values_list("user_id", flat=True))


def _get(client: Client, path: str, token: str, **params: str | int) -> tuple[int, dict[str, Any]]:
    response = client.get(path, params, headers={"x-api-token": token})
    return response.status_code, response.json()


# --- v1 offset ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_offset_page_reports_start_limit_and_the_next_start(
    api: Client, cast: Cast, seven_users: list[int]
) -> None:
    status, body = _get(api, OFFSET, cast.alice_token, start=2, limit=3)

    assert status == 200
    assert [row["id"] for row in body["data"]] == seven_users[2:5]
    assert body["additional_data"] == {
        "pagination": {"start": 2, "limit": 3, "more_items_in_collection": True, "next_start": 5}
    }


@pytest.mark.django_db
def test_offset_last_page_has_no_next_start(
    api: Client, cast: Cast, seven_users: list[int]
) -> None:
    _, body = _get(api, OFFSET, cast.alice_token, start=5, limit=3)

    assert [row["id"] for row in body["data"]] == seven_users[5:]
    assert body["additional_data"]["pagination"] == {
        "start": 5, "limit": 3, "more_items_in_collection": False,
    }  # fmt: skip


@pytest.mark.django_db
def test_offset_defaults_to_start_0_and_limit_100(
    api: Client, cast: Cast, seven_users: list[int]
) -> None:
    _, body = _get(api, OFFSET, cast.alice_token)

    assert len(body["data"]) == 7
    assert body["additional_data"]["pagination"] == {
        "start": 0, "limit": 100, "more_items_in_collection": False,
    }  # fmt: skip


@pytest.mark.django_db
def test_offset_past_the_end_is_an_empty_page(
    api: Client, cast: Cast, seven_users: list[int]
) -> None:
    _, body = _get(api, OFFSET, cast.alice_token, start=50)

    assert body["data"] == []
    assert body["additional_data"]["pagination"]["more_items_in_collection"] is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "error", "field"),
    [
        ({"limit": 501}, "limit: Ensure this value is less than or equal to 500.", "limit"),
        ({"limit": 0}, "limit: Ensure this value is greater than or equal to 1.", "limit"),
        ({"limit": "ten"}, "limit: A valid integer is required.", "limit"),
        ({"start": -1}, "start: Ensure this value is greater than or equal to 0.", "start"),
    ],
)
def test_offset_bad_parameters_are_a_400_naming_the_parameter(
    api: Client, cast: Cast, params: dict[str, str | int], error: str, field: str
) -> None:
    status, body = _get(api, OFFSET, cast.alice_token, **params)

    assert status == 400
    assert body["success"] is False
    assert body["error"] == error
    assert body["errors"] == {field: [error.split(": ", 1)[1]]}
    assert body["data"] is None
    assert body["additional_data"] is None


@pytest.mark.django_db
def test_offset_accepts_the_maximum_limit_of_500(api: Client, cast: Cast) -> None:
    status, body = _get(api, OFFSET, cast.alice_token, limit=500)

    assert status == 200
    assert body["additional_data"]["pagination"]["limit"] == 500


# --- v2 cursor ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cursor_pages_walk_every_row_once_and_end_with_a_null_cursor(
    api: Client, cast: Cast, seven_users: list[int]
) -> None:
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        status, body = _get(api, CURSOR, cast.alice_token, **params)
        assert status == 200
        assert set(body["additional_data"]) == {"next_cursor"}
        seen += [row["id"] for row in body["data"]]
        pages += 1
        cursor = body["additional_data"]["next_cursor"]
        if cursor is None:
            break

    assert seen == seven_users
    assert pages == 3


@pytest.mark.django_db
def test_cursor_of_a_full_last_page_is_null(
    api: Client, cast: Cast, seven_users: list[int]
) -> None:
    _, body = _get(api, CURSOR, cast.alice_token, limit=7)

    assert len(body["data"]) == 7
    assert body["additional_data"] == {"next_cursor": None}


@pytest.mark.django_db
def test_cursor_defaults_to_limit_100(api: Client, cast: Cast, seven_users: list[int]) -> None:
    _, body = _get(api, CURSOR, cast.alice_token)

    assert len(body["data"]) == 7
    assert body["additional_data"] == {"next_cursor": None}


@pytest.mark.django_db
def test_cursor_is_opaque_base64_json_of_the_last_rows_key(
    api: Client, cast: Cast, seven_users: list[int]
) -> None:
    _, body = _get(api, CURSOR, cast.alice_token, limit=2)

    cursor = body["additional_data"]["next_cursor"]
    padded = cursor + "=" * (-len(cursor) % 4)
    assert json.loads(base64.urlsafe_b64decode(padded)) == {"id": seven_users[1]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        encode_cursor({"name": "x"}),  # a key the order does not have
        encode_cursor({"id": "seven"}),  # a value the column cannot hold
        encode_cursor({"id": [1]}),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),  # JSON, but no position
        base64.urlsafe_b64encode(b'{"id": Infinity}').decode(),
    ],
)
def test_a_bad_cursor_is_a_400_naming_the_cursor(api: Client, cast: Cast, cursor: str) -> None:
    status, body = _get(api, CURSOR, cast.alice_token, cursor=cursor)

    assert status == 400
    assert body["error"] == "cursor: Invalid cursor."
    assert body["errors"] == {"cursor": ["Invalid cursor."]}


@pytest.mark.django_db
def test_cursor_limit_above_500_is_a_400(api: Client, cast: Cast) -> None:
    status, body = _get(api, CURSOR, cast.alice_token, limit=501)

    assert status == 400
    assert body["error"] == "limit: Ensure this value is less than or equal to 500."


def test_a_cursor_reads_like_pipedrives() -> None:
    assert encode_cursor({"id": 2}) == "eyJpZCI6Mn0"
    assert decode_cursor("eyJpZCI6Mn0") == {"id": 2}


@pytest.mark.django_db
def test_a_routed_viewset_pages_its_list_and_takes_paths_with_or_without_slash(
    api: Client, cast: Cast, seven_users: list[int]
) -> None:
    status, body = _get(api, "/api/v1/test/rows/", cast.alice_token, limit=2)
    detail_status, detail = _get(api, f"/api/v1/test/rows/{seven_users[1]}", cast.alice_token)

    assert status == 200
    assert [row["id"] for row in body["data"]] == seven_users[:2]
    assert body["additional_data"]["pagination"]["next_start"] == 2
    assert detail_status == 200
    assert detail == {"success": True, "data": {"id": seven_users[1], "email": "bob@acme.test"}}
