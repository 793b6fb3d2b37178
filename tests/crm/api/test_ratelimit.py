"""Per-token rate limiting: x-ratelimit-* headers on every authenticated answer, 429 with
Retry-After past the limit, and requests let through when Redis is down."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.test import Client
from pytest_django import Settings

from crm.api.ratelimit import rate_limit_hit
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me"


@pytest.fixture(autouse=True)
def small_limits(settings: Settings) -> None:
    """Three requests a window. The counters are this test's own: tests/conftest.py gives
    every test a fresh cache key prefix."""
    settings.CRM_API_RATE_LIMIT = 3
    # Wide enough that the three requests of a test cannot straddle two windows.
    settings.CRM_API_RATE_WINDOW = 3600


def test_every_authenticated_answer_carries_the_rate_limit_headers(api: Client, cast: Cast) -> None:
    first = api.get(ME, headers={"x-api-token": cast.alice_token})
    second = api.get("/api/v1/users/0", headers={"x-api-token": cast.alice_token})  # a 404

    assert first["x-ratelimit-limit"] == "3"
    assert first["x-ratelimit-remaining"] == "2"
    assert 1 <= int(first["x-ratelimit-reset"]) <= 3600
    assert second.status_code == 404
    assert second["x-ratelimit-remaining"] == "1"


def test_past_the_limit_the_answer_is_429_with_retry_after(api: Client, cast: Cast) -> None:
    for _ in range(3):
        assert api.get(ME, headers={"x-api-token": cast.alice_token}).status_code == 200

    response = api.get(ME, headers={"x-api-token": cast.alice_token})

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert response["x-ratelimit-remaining"] == "0"
    body = response.json()
    assert body["success"] is False
    assert body["error"].startswith("Rate limit exceeded.")
    assert body["data"] is None
    assert body["additional_data"] is None


def test_each_token_has_its_own_budget(api: Client, cast: Cast) -> None:
    for _ in range(4):
        api.get(ME, headers={"x-api-token": cast.alice_token})

    response = api.get(ME, headers={"x-api-token": cast.bob_token})

    assert response.status_code == 200
    assert response["x-ratelimit-remaining"] == "2"


def test_a_session_is_counted_per_user_and_company(cast: Cast, client_for) -> None:
    client = client_for(cast.alice)
    for _ in range(3):
        assert client.get(ME)["x-ratelimit-limit"] == "3"

    assert client.get(ME).status_code == 429
    assert Client().get(ME, headers={"x-api-token": cast.alice_token}).status_code == 200


def test_an_unauthenticated_answer_has_no_rate_limit_headers(api: Client, cast: Cast) -> None:
    response = api.get(ME)

    assert response.status_code == 401
    assert "x-ratelimit-limit" not in response


def test_requests_go_through_with_a_warning_when_redis_is_down(
    api: Client, cast: Cast, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    with caplog.at_level(logging.WARNING, logger="crm.api.ratelimit"):
        responses = [api.get(ME, headers={"x-api-token": cast.alice_token}) for _ in range(5)]

    assert [response.status_code for response in responses] == [200] * 5
    assert "x-ratelimit-limit" not in responses[0]
    assert "Redis unreachable" in caplog.text


def test_the_window_resets_the_count(settings: Settings) -> None:
    settings.CRM_API_RATE_WINDOW = 10
    key = f"test:{uuid.uuid4()}"

    states = [rate_limit_hit(key=key, now=1000.0 + second) for second in (0, 1, 2, 3)]
    after = rate_limit_hit(key=key, now=1010.5)

    assert [state.exceeded for state in states if state] == [False, False, False, True]
    assert states[3] is not None
    assert states[3].reset == 7
    assert after is not None
    assert not after.exceeded
    assert after.remaining == 2
