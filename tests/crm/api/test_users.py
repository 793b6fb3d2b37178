"""Users (v1): /users/me, /users, /users/{id} in Pipedrive's User shape."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm import services, tenancy
from crm.models import Role
from tests.conftest import Cast
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

USER_KEYS = {
    "id", "name", "default_currency", "locale", "lang", "email", "phone", "activated",
    "last_login", "created", "modified", "has_created_company", "access", "active_flag",
    "timezone_name", "timezone_offset", "role_id", "icon_url", "is_you", "is_deleted",
}  # fmt: skip
ME_KEYS = USER_KEYS | {
    "company_id", "company_name", "company_domain", "company_country", "company_industry",
    "language",
}  # fmt: skip
PIPEDRIVE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def _get(client: Client, path: str, token: str) -> tuple[int, dict[str, Any]]:
    response = client.get(path, headers={"x-api-token": token})
    return response.status_code, response.json()


def test_me_returns_the_token_user_in_pipedrives_user_shape_with_the_company(
    api: Client, cast: Cast
) -> None:
    status, body = _get(api, "/api/v1/users/me", cast.alice_token)

    assert status == 200
    assert body["success"] is True
    me = body["data"]
    assert set(me) == ME_KEYS
    assert me["id"] == cast.alice.pk
    assert me["name"] == "Alice Adams"
    assert me["email"] == "alice@acme.test"
    assert me["company_id"] == cast.company_a.pk
    assert me["company_name"] == "Acme"
    assert me["company_domain"] == "acme"
    assert me["language"] == {"language_code": "en", "country_code": "US"}
    assert me["locale"] == "en_US"
    assert me["lang"] == 1
    assert me["access"] == [{"app": "sales", "admin": True, "permission_set_id": None}]
    assert me["is_you"] is True
    assert me["active_flag"] is True
    assert me["activated"] is True
    assert me["is_deleted"] is False
    assert me["has_created_company"] is True
    assert me["timezone_name"] == "UTC"
    assert me["timezone_offset"] == "+00:00"
    assert PIPEDRIVE_DATETIME.match(me["created"])
    assert PIPEDRIVE_DATETIME.match(me["modified"])
    assert me["last_login"] is None


def test_me_of_a_regular_user_is_no_admin_and_did_not_create_the_company(
    api: Client, cast: Cast
) -> None:
    _, body = _get(api, "/api/v1/users/me", cast.bob_token)

    assert body["data"]["id"] == cast.bob.pk
    assert body["data"]["access"][0]["admin"] is False
    assert body["data"]["has_created_company"] is False


def test_me_reports_the_offset_of_the_users_time_zone(api: Client, cast: Cast) -> None:
    cast.alice.timezone = "Asia/Kolkata"  # no daylight saving: always +05:30
    cast.alice.save(update_fields=["timezone"])

    _, body = _get(api, "/api/v1/users/me", cast.alice_token)

    assert body["data"]["timezone_name"] == "Asia/Kolkata"
    assert body["data"]["timezone_offset"] == "+05:30"


def test_me_of_carol_is_in_her_own_company(api: Client, cast: Cast) -> None:
    _, body = _get(api, "/api/v1/users/me", cast.carol_token)

    assert body["data"]["company_id"] == cast.company_b.pk
    assert body["data"]["company_name"] == "Globex"


def test_user_list_has_every_user_of_the_company_and_no_one_else(api: Client, cast: Cast) -> None:
    status, body = _get(api, "/api/v1/users", cast.bob_token)

    assert status == 200
    assert body["success"] is True
    assert "additional_data" not in body  # Pipedrive does not page users
    assert {user["id"] for user in body["data"]} == {cast.alice.pk, cast.bob.pk}
    assert all(set(user) == USER_KEYS for user in body["data"])
    is_you = {user["id"]: user["is_you"] for user in body["data"]}
    assert is_you == {cast.alice.pk: False, cast.bob.pk: True}


def test_user_list_shows_a_deactivated_member_with_active_flag_false(
    api: Client, cast: Cast
) -> None:
    with tenancy.bound(cast.company_a.pk):
        services.membership_set_active(
            company=cast.company_a,
            membership=cast.membership(cast.bob, cast.company_a),
            active=False,
        )

    _, body = _get(api, "/api/v1/users", cast.alice_token)

    flags = {user["id"]: user["active_flag"] for user in body["data"]}
    assert flags == {cast.alice.pk: True, cast.bob.pk: False}


def test_user_list_costs_the_same_queries_whatever_the_number_of_users(
    api: Client, cast: Cast, django_assert_num_queries
) -> None:
    with CaptureQueriesContext(connection) as two_users:
        api.get("/api/v1/users", headers={"x-api-token": cast.alice_token})
    with tenancy.bound(cast.company_a.pk):
        for _ in range(5):
            services.membership_add(
                company=cast.company_a, user=UserFactory.create(), role=Role.REGULAR
            )

    with django_assert_num_queries(len(two_users)):
        status, body = _get(api, "/api/v1/users", cast.alice_token)

    assert status == 200
    assert len(body["data"]) == 7


def test_user_detail_returns_a_user_of_the_company(api: Client, cast: Cast) -> None:
    status, body = _get(api, f"/api/v1/users/{cast.bob.pk}", cast.alice_token)

    assert status == 200
    assert set(body["data"]) == USER_KEYS
    assert body["data"]["id"] == cast.bob.pk
    assert body["data"]["email"] == "bob@acme.test"
    assert body["data"]["is_you"] is False


def test_carol_gets_404_on_alices_user(api: Client, cast: Cast) -> None:
    status, body = _get(api, f"/api/v1/users/{cast.alice.pk}", cast.carol_token)

    assert status == 404
    assert body["success"] is False
    assert body["error"] == "User not found."
    assert body["data"] is None


def test_user_detail_of_an_unknown_or_overlong_id_is_404(api: Client, cast: Cast) -> None:
    assert _get(api, "/api/v1/users/999999999", cast.alice_token)[0] == 404
    assert _get(api, "/api/v1/users/99999999999999999999999", cast.alice_token)[0] == 404
    assert _get(api, "/api/v1/users/abc", cast.alice_token)[0] == 404
