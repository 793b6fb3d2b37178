"""Settings → Default visibility: the company default `visible_to` per item kind."""

from __future__ import annotations

import pytest
from django.test import Client

from crm import selectors, services, tenancy
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def test_the_defaults_start_as_entire_company_for_every_kind(alice_client: Client) -> None:
    html = alice_client.get("/settings/visibility").content.decode()
    for kind in ("Person", "Organization", "Deal", "Lead", "Project"):
        assert kind in html
    assert html.count('<option value="7" selected>') == 5


def test_an_admin_sets_the_default_and_new_items_use_it(cast: Cast, alice_client: Client) -> None:
    form = {"person": "3", "organization": "7", "deal": "1", "lead": "3", "project": "7"}
    response = alice_client.post("/settings/visibility", form, follow=True)
    assert response.redirect_chain == [("/settings/visibility", 302)]
    assert "Default visibility saved." in response.content.decode()
    with tenancy.bound(cast.company_a.pk):
        assert selectors.visibility_defaults(company=cast.company_a) == {
            "person": 3,
            "organization": 7,
            "deal": 1,
            "lead": 3,
            "project": 7,
        }
        assert services.visibility_default(company=cast.company_a, kind="deal") == 1
    # Globex keeps its own defaults.
    with tenancy.bound(cast.company_b.pk):
        assert services.visibility_default(company=cast.company_b, kind="deal") == 7


def test_an_unknown_visibility_is_refused_beside_its_field(
    cast: Cast, alice_client: Client
) -> None:
    form = {"person": "5", "organization": "7", "deal": "7", "lead": "7", "project": "7"}
    response = alice_client.post("/settings/visibility", form)
    assert response.status_code == 200
    assert "Select a valid choice. 5 is not one of the available choices." in (
        response.content.decode()
    )
    with tenancy.bound(cast.company_a.pk):
        assert services.visibility_default(company=cast.company_a, kind="person") == 7


def test_a_regular_user_may_not_change_the_defaults(bob_client: Client) -> None:
    assert bob_client.get("/settings/visibility").status_code == 403
    assert bob_client.post("/settings/visibility", {"person": "1"}).status_code == 403
