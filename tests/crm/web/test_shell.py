"""The app shell: navigation that shows only what exists, the home page, the company switcher."""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django import Settings

from crm import middleware, services, tenancy
from crm.models import Role
from crm.web import company_session
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def _nav(html: str) -> str:
    start = html.index('<nav class="main-nav"')
    return html[start : html.index("</nav>", start)]


def test_the_session_key_is_the_one_the_middleware_reads() -> None:
    assert company_session.SESSION_COMPANY_KEY == middleware.SESSION_COMPANY_KEY


def test_navigation_shows_the_built_sections_and_nothing_not_built_yet(
    alice_client: Client,
) -> None:
    nav = _nav(alice_client.get("/").content.decode())
    assert 'href="/"' in nav
    assert 'aria-current="page"' in nav
    for href in ("/inbox", "/settings", "/contacts", "/deals", "/leads", "/projects"):
        assert f'href="{href}"' in nav
    assert "Sales Inbox" in nav
    assert "Insights" not in nav  # not built yet


def test_a_navigation_entry_appears_once_its_url_exists(
    alice_client: Client, settings: Settings
) -> None:
    settings.ROOT_URLCONF = "tests.crm.web.urls_with_deals"
    nav = _nav(alice_client.get("/").content.decode())
    assert 'href="/deals"' in nav
    assert "Deals" in nav
    assert "Leads" not in nav


def test_settings_in_the_navigation_opens_company_settings_for_an_admin(
    alice_client: Client,
) -> None:
    response = alice_client.get("/settings", follow=True)
    assert response.redirect_chain == [("/settings/company", 302)]
    html = response.content.decode()
    assert 'href="/settings/users"' in html
    assert 'href="/settings/teams"' in html


def test_settings_in_the_navigation_opens_personal_settings_for_a_regular_user(
    bob_client: Client,
) -> None:
    response = bob_client.get("/settings", follow=True)
    assert response.redirect_chain == [("/settings/api-token", 302)]
    html = response.content.decode()
    assert 'href="/settings/users"' not in html
    assert 'href="/settings/company"' not in html


def test_home_shows_the_company_its_plan_and_next_steps(alice_client: Client) -> None:
    html = alice_client.get("/").content.decode()
    assert "Acme" in html
    assert "Enterprise" in html
    assert "Email AI" in html
    assert "Invite your team" in html
    assert 'href="/settings/users"' in html
    # Alice has a token from the cast; the step says so instead of "create".
    assert "Manage your API token" in html


def test_home_of_a_regular_user_has_no_admin_steps(cast: Cast, bob_client: Client) -> None:
    with tenancy.bound(cast.company_a.pk):
        services.api_token_revoke(company=cast.company_a, user=cast.bob)
    html = bob_client.get("/").content.decode()
    assert "Invite your team" not in html
    assert "Create your API token" in html


def test_the_switcher_is_hidden_for_someone_in_one_company(alice_client: Client) -> None:
    html = alice_client.get("/").content.decode()
    assert "/switch-company" not in html
    assert '<span class="company-name">Acme</span>' in html


def test_someone_in_two_companies_switches_between_them(cast: Cast, bob_client: Client) -> None:
    with tenancy.bound(cast.company_b.pk):
        services.membership_add(company=cast.company_b, user=cast.bob, role=Role.REGULAR)
    html = bob_client.get("/").content.decode()
    assert 'action="/switch-company"' in html
    assert "Globex" in html

    response = bob_client.post("/switch-company", {"company_id": cast.company_b.pk}, follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert bob_client.session["company_id"] == cast.company_b.pk
    assert "You are now working in Globex." in response.content.decode()
    assert '<h2 id="company-heading">Globex</h2>' in response.content.decode()


def test_switching_to_a_company_you_are_not_in_is_refused(cast: Cast, bob_client: Client) -> None:
    response = bob_client.post("/switch-company", {"company_id": cast.company_b.pk})
    assert response.status_code == 404
    assert bob_client.get("/").wsgi_request.session["company_id"] == cast.company_a.pk
    assert bob_client.get("/switch-company").status_code == 405


def test_switching_to_a_company_where_you_were_deactivated_is_refused(
    cast: Cast, bob_client: Client
) -> None:
    with tenancy.bound(cast.company_b.pk):
        globex = services.membership_add(company=cast.company_b, user=cast.bob, role=Role.REGULAR)
        services.membership_set_active(company=cast.company_b, membership=globex, active=False)
    response = bob_client.post("/switch-company", {"company_id": cast.company_b.pk})
    assert response.status_code == 404


def test_a_deactivated_member_can_no_longer_use_the_company(cast: Cast, bob_client: Client) -> None:
    with tenancy.bound(cast.company_a.pk):
        membership = services.membership_add(
            company=cast.company_a, user=cast.bob, role=Role.REGULAR
        )
        services.membership_set_active(company=cast.company_a, membership=membership, active=False)
    for path in ("/", "/settings/api-token"):
        response = bob_client.get(path)
        assert response.status_code == 403
        assert "You are not in any company" in response.content.decode()
    assert bob_client.post("/settings/api-token/regenerate").status_code == 403
