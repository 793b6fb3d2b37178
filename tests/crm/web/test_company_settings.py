"""Settings → Company and plan."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from crm import tenancy
from crm.models import Company
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def _acme(cast: Cast) -> Company:
    with tenancy.bound(cast.company_a.pk):
        return Company.objects.get(pk=cast.company_a.pk)


def test_the_page_lists_every_plan_with_its_features(alice_client: Client) -> None:
    html = alice_client.get("/settings/company").content.decode()
    for plan in ("Essential", "Advanced", "Professional", "Enterprise"):
        assert plan in html
    assert "Open and click tracking" in html
    assert "Email AI" in html
    # The current plan is the one chosen.
    assert re.search(r'<input type="radio" name="plan" value="enterprise"[^>]* checked>', html)
    assert html.count(" checked>") == 1


def test_an_admin_renames_the_company_and_changes_its_plan(
    cast: Cast, alice_client: Client
) -> None:
    response = alice_client.post(
        "/settings/company", {"name": "Acme Inc.", "plan": "advanced"}, follow=True
    )
    assert response.redirect_chain == [("/settings/company", 302)]
    assert "Company settings saved." in response.content.decode()
    acme = _acme(cast)
    assert (acme.name, acme.plan) == ("Acme Inc.", "advanced")


def test_errors_show_beside_their_fields(cast: Cast, alice_client: Client) -> None:
    response = alice_client.post("/settings/company", {"name": "  ", "plan": "platinum"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="errorlist') >= 2
    assert "This field is required." in html
    assert "Select a valid choice. platinum is not one of the available choices." in html
    assert (_acme(cast).name, _acme(cast).plan) == ("Acme", "enterprise")
