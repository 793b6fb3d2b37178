"""Every answer under the API prefixes is JSON in Pipedrive's envelope: success bodies
`{success, data, ...}`, and `{success: false, error, error_info, data: null,
additional_data: null}` for every 4xx and 5xx."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client
from django.test.client import MULTIPART_CONTENT
from pytest_django import Settings

from tests.conftest import Cast

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"success", "error", "error_info", "data", "additional_data"}


def _assert_error(response, status: int, error: str | None = None) -> dict[str, Any]:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) >= ERROR_KEYS
    assert body["success"] is False
    assert body["data"] is None
    assert body["additional_data"] is None
    assert body["error_info"]
    if error is not None:
        assert body["error"] == error
    return body


def test_success_body_is_the_envelope_around_the_data(api: Client, cast: Cast) -> None:
    response = api.get("/api/v1/users/me", headers={"x-api-token": cast.alice_token})

    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"success", "data"}
    assert body["success"] is True


def test_v1_is_also_served_without_the_api_prefix(api: Client, cast: Cast) -> None:
    response = api.get("/v1/users/me", headers={"x-api-token": cast.alice_token})

    assert response.status_code == 200
    assert response.json()["data"]["id"] == cast.alice.pk


def test_paths_answer_with_or_without_a_trailing_slash(api: Client, cast: Cast) -> None:
    for path in (
        "/api/v1/users",
        "/api/v1/users/",
        "/v1/users/me/",
        f"/api/v1/users/{cast.bob.pk}/",
    ):
        response = api.get(path, headers={"x-api-token": cast.alice_token})
        assert response.status_code == 200, path


def test_json_is_the_answer_whatever_the_accept_header(api: Client, cast: Cast) -> None:
    response = api.get(
        "/api/v1/users/me",
        {"format": "xml"},
        headers={"x-api-token": cast.alice_token, "accept": "text/html"},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_an_unknown_api_path_is_a_json_404(api: Client, cast: Cast, method: str) -> None:
    response = getattr(api, method)("/api/v1/nothing-here/7")

    body = _assert_error(response, 404)
    assert body["error"] == "Unknown API path /api/v1/nothing-here/7."


@pytest.mark.parametrize("path", ["/api/v2/users", "/v1/nope", "/api", "/api/v3/persons"])
def test_every_unknown_path_under_the_api_prefixes_is_a_json_404(
    api: Client, cast: Cast, path: str
) -> None:
    _assert_error(api.get(path), 404)


def test_an_unknown_object_is_a_404_envelope(api: Client, cast: Cast) -> None:
    response = api.get("/api/v1/users/999999999", headers={"x-api-token": cast.alice_token})

    _assert_error(response, 404, "User not found.")


def test_a_method_the_endpoint_lacks_is_a_405_envelope(api: Client, cast: Cast) -> None:
    response = api.post("/api/v1/users/me", headers={"x-api-token": cast.alice_token})

    body = _assert_error(response, 405, 'Method "POST" not allowed.')
    assert "errors" not in body
    assert "GET" in response["Allow"]


def test_an_unsupported_body_type_is_a_415_envelope(api: Client, cast: Cast) -> None:
    response = api.post(
        "/api/v1/test/echo",
        "name=x",
        content_type="text/plain",
        headers={"x-api-token": cast.alice_token},
    )

    _assert_error(response, 415, 'Unsupported media type "text/plain" in request.')


def test_malformed_json_is_a_400_envelope(api: Client, cast: Cast) -> None:
    response = api.post(
        "/api/v1/test/echo",
        "{not json",
        content_type="application/json",
        headers={"x-api-token": cast.alice_token},
    )

    body = _assert_error(response, 400)
    assert body["error"].startswith("JSON parse error")


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (json.dumps({"name": "Ann"}), "application/json"),
        ("name=Ann", "application/x-www-form-urlencoded"),
        ({"name": "Ann"}, None),  # the test client's default: multipart/form-data
    ],
)
def test_json_form_and_multipart_bodies_are_accepted(
    api: Client, cast: Cast, payload, content_type: str | None
) -> None:
    response = api.post(
        "/api/v1/test/echo",
        payload,
        content_type=content_type or MULTIPART_CONTENT,
        headers={"x-api-token": cast.alice_token},
    )

    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"received": {"name": "Ann"}}}


def test_a_service_refusal_is_a_400_naming_the_field(api: Client, cast: Cast) -> None:
    response = api.post("/api/v1/test/refusal", headers={"x-api-token": cast.alice_token})

    body = _assert_error(response, 400, "name: A team needs a name.")
    assert body["errors"] == {"name": ["A team needs a name."]}


def test_a_bug_in_an_api_view_is_a_logged_500_envelope(
    api: Client, cast: Cast, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="crm.api.errors"):
        response = api.get("/api/v1/test/boom", headers={"x-api-token": cast.alice_token})

    body = _assert_error(response, 500, "Internal server error.")
    assert "a bug" not in json.dumps(body)  # no internals leak to the client
    assert any(record.exc_info for record in caplog.records if record.name == "crm.api.errors")


def test_a_bug_outside_drf_on_an_api_path_is_a_json_500(cast: Cast) -> None:
    client = Client(raise_request_exception=False)

    response = client.get("/api/v1/test/django-boom")

    _assert_error(response, 500, "Internal server error.")


def test_the_project_urlconf_serves_the_api_and_its_json_404(
    api: Client, cast: Cast, settings: Settings
) -> None:
    settings.ROOT_URLCONF = "crm.urls"

    me = api.get("/api/v1/users/me", headers={"x-api-token": cast.alice_token})
    legacy = api.get("/v1/users/me", headers={"x-api-token": cast.alice_token})
    unknown = api.get("/api/v1/no-such-resource")

    assert me.status_code == legacy.status_code == 200
    _assert_error(unknown, 404)
