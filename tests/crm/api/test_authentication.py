"""Who a request acts as: API tokens three ways (in priority order) and browser sessions."""

from __future__ import annotations

import pytest
from django.test import Client

from crm import services, tenancy
from crm.models import User
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me"


def _me_id(response) -> int:
    assert response.status_code == 200, response.content
    return int(response.json()["data"]["id"])


def _assert_unauthorized(response) -> None:
    assert response.status_code == 401
    assert response.json() == {
        "success": False,
        "error": "unauthorized access",
        "errorCode": 401,
        "error_info": "Please check the API documentation at /api/docs.",
        "data": None,
        "additional_data": None,
    }


def test_token_in_the_x_api_token_header_authenticates(api: Client, cast: Cast) -> None:
    assert _me_id(api.get(ME, headers={"x-api-token": cast.alice_token})) == cast.alice.pk


def test_token_in_the_api_token_query_parameter_authenticates(api: Client, cast: Cast) -> None:
    assert _me_id(api.get(ME, {"api_token": cast.alice_token})) == cast.alice.pk


def test_token_as_a_bearer_authorization_authenticates(api: Client, cast: Cast) -> None:
    response = api.get(ME, headers={"authorization": f"Bearer {cast.alice_token}"})
    assert _me_id(response) == cast.alice.pk


def test_header_token_wins_over_query_and_bearer_tokens(api: Client, cast: Cast) -> None:
    response = api.get(
        ME,
        {"api_token": cast.alice_token},
        headers={"x-api-token": cast.bob_token, "authorization": f"Bearer {cast.carol_token}"},
    )
    assert _me_id(response) == cast.bob.pk


def test_query_token_wins_over_a_bearer_token(api: Client, cast: Cast) -> None:
    response = api.get(
        ME, {"api_token": cast.bob_token}, headers={"authorization": f"Bearer {cast.alice_token}"}
    )
    assert _me_id(response) == cast.bob.pk


def test_a_wrong_header_token_is_401_even_with_a_good_query_token(api: Client, cast: Cast) -> None:
    response = api.get(ME, {"api_token": cast.alice_token}, headers={"x-api-token": "wrong"})
    _assert_unauthorized(response)


def test_a_wrong_query_token_is_401_even_with_a_good_bearer_token(api: Client, cast: Cast) -> None:
    response = api.get(
        ME, {"api_token": "wrong"}, headers={"authorization": f"Bearer {cast.alice_token}"}
    )
    _assert_unauthorized(response)


def test_no_credentials_is_401_with_pipedrives_body(api: Client, cast: Cast) -> None:
    response = api.get(ME)
    _assert_unauthorized(response)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_token_is_401(api: Client, cast: Cast) -> None:
    _assert_unauthorized(api.get(ME, headers={"x-api-token": "0" * 40}))


def test_a_revoked_token_is_401(api: Client, cast: Cast) -> None:
    with tenancy.bound(cast.company_a.pk):
        services.api_token_revoke(company=cast.company_a, user=cast.bob)

    _assert_unauthorized(api.get(ME, headers={"x-api-token": cast.bob_token}))


def test_the_token_of_a_deactivated_member_is_401(api: Client, cast: Cast) -> None:
    with tenancy.bound(cast.company_a.pk):
        services.membership_set_active(
            company=cast.company_a,
            membership=cast.membership(cast.bob, cast.company_a),
            active=False,
        )

    _assert_unauthorized(api.get(ME, headers={"x-api-token": cast.bob_token}))


def test_the_token_of_an_inactive_user_is_401(api: Client, cast: Cast) -> None:
    User.objects.filter(pk=cast.bob.pk).update(is_active=False)

    _assert_unauthorized(api.get(ME, headers={"x-api-token": cast.bob_token}))


def test_a_token_acts_in_its_own_company_even_from_a_session_in_another(
    cast: Cast, client_for
) -> None:
    client = client_for(cast.alice)

    response = client.get(ME, headers={"x-api-token": cast.carol_token})

    assert _me_id(response) == cast.carol.pk
    assert response.json()["data"]["company_id"] == cast.company_b.pk


def test_a_signed_in_session_authenticates(cast: Cast, client_for) -> None:
    response = client_for(cast.bob).get(ME)

    assert _me_id(response) == cast.bob.pk
    assert response.json()["data"]["company_id"] == cast.company_a.pk


def test_session_post_without_a_csrf_token_is_403(cast: Cast) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.alice)

    response = client.post("/api/v1/test/echo", {"name": "x"})

    assert response.status_code == 403
    body = response.json()
    assert body["success"] is False
    assert body["error"].startswith("CSRF Failed")


def test_session_post_with_the_csrf_token_goes_through(cast: Cast) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.alice)
    secret = "k2" * 16  # any 32-character secret; the header may carry it unmasked
    client.cookies["csrftoken"] = secret

    response = client.post("/api/v1/test/echo", {"name": "x"}, headers={"x-csrftoken": secret})

    assert response.status_code == 200
    assert response.json()["data"] == {"received": {"name": "x"}}


def test_token_post_needs_no_csrf_token(api: Client, cast: Cast) -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        "/api/v1/test/echo", {"name": "x"}, headers={"x-api-token": cast.alice_token}
    )

    assert response.status_code == 200


def test_a_session_user_active_in_no_company_is_401(cast: Cast, client_for) -> None:
    with tenancy.bound(cast.company_a.pk):
        services.membership_set_active(
            company=cast.company_a,
            membership=cast.membership(cast.bob, cast.company_a),
            active=False,
        )

    _assert_unauthorized(client_for(cast.bob).get(ME))
