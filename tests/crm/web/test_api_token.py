"""Settings → Your API token: shown once, then only its prefix; regenerate; revoke."""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.test import Client

from crm import services, tenancy
from crm.models import ApiToken
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def _acts_as(token: str) -> str | None:
    """The email of the user a token authenticates, or None: as the API would see it."""
    with tenancy.request_scope(), transaction.atomic():
        identity = services.api_token_authenticate(token)
        return None if identity is None else identity.user.email


def _shown_token(html: str) -> str:
    match = re.search(r'<code id="new-token">([0-9a-f]{40})</code>', html)
    assert match is not None, "the new token is not on the page"
    return match.group(1)


def test_the_page_shows_only_the_prefix_and_dates(cast: Cast, alice_client: Client) -> None:
    html = alice_client.get("/settings/api-token").content.decode()
    assert cast.alice_token not in html
    assert f"<code>{cast.alice_token[:6]}…</code>" in html
    assert "Created" in html
    assert "Never" in html


def test_regenerating_shows_the_new_token_once_and_kills_the_old_one(
    cast: Cast, alice_client: Client
) -> None:
    response = alice_client.post("/settings/api-token/regenerate")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    new_token = _shown_token(response.content.decode())
    assert new_token != cast.alice_token

    later = alice_client.get("/settings/api-token").content.decode()
    assert new_token not in later
    assert f"<code>{new_token[:6]}…</code>" in later

    assert _acts_as(cast.alice_token) is None
    assert _acts_as(new_token) == "alice@acme.test"


def test_revoking_leaves_no_working_token(cast: Cast, alice_client: Client) -> None:
    response = alice_client.post("/settings/api-token/revoke", follow=True)
    html = response.content.decode()
    assert "Your API token is revoked" in html
    assert "You have no API token in this company." in html
    assert _acts_as(cast.alice_token) is None


def test_a_regular_user_manages_their_own_token(cast: Cast, bob_client: Client) -> None:
    assert bob_client.get("/settings/api-token").status_code == 200
    new_token = _shown_token(bob_client.post("/settings/api-token/regenerate").content.decode())
    assert _acts_as(new_token) == "bob@acme.test"
    assert _acts_as(cast.bob_token) is None
    assert _acts_as(cast.alice_token) == "alice@acme.test"


def test_the_token_belongs_to_the_current_company_only(cast: Cast, carol_client: Client) -> None:
    carol_client.post("/settings/api-token/regenerate")
    assert _acts_as(cast.alice_token) == "alice@acme.test"
    with tenancy.bound(cast.company_a.pk):
        assert ApiToken.objects.for_company(cast.company_a).filter(revoked_at=None).count() == 2


def test_the_token_pages_need_a_post_to_change_anything(alice_client: Client) -> None:
    assert alice_client.get("/settings/api-token/regenerate").status_code == 405
    assert alice_client.get("/settings/api-token/revoke").status_code == 405
