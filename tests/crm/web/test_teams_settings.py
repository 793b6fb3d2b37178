"""Settings → Teams: list, create, rename, members, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm import services, tenancy
from crm.models import Role, Team, User
from tests.conftest import PASSWORD, Cast

pytestmark = pytest.mark.django_db


def _teams(cast: Cast) -> dict[str, set[str]]:
    with tenancy.bound(cast.company_a.pk):
        return {
            team.name: {user.email for user in team.members.all()}
            for team in Team.objects.for_company(cast.company_a)
        }


def test_the_list_shows_teams_with_their_member_count(alice_client: Client) -> None:
    html = alice_client.get("/settings/teams").content.decode()
    assert "Sales" in html
    assert "2 members" in html


def test_an_admin_creates_a_team_and_lands_on_it(cast: Cast, alice_client: Client) -> None:
    response = alice_client.post("/settings/teams", {"name": "Support"}, follow=True)
    html = response.content.decode()
    assert "Team Support created." in html
    assert "<h1>Support</h1>" in html
    assert _teams(cast) == {"Sales": {"alice@acme.test", "bob@acme.test"}, "Support": set()}


def test_a_duplicate_or_empty_team_name_is_refused_beside_the_field(
    cast: Cast, alice_client: Client
) -> None:
    html = alice_client.post("/settings/teams", {"name": "sales"}).content.decode()
    assert "A team with this name exists already." in html
    assert 'aria-invalid="true"' in html
    html = alice_client.post("/settings/teams", {"name": ""}).content.decode()
    assert "This field is required." in html
    assert set(_teams(cast)) == {"Sales"}


def test_an_admin_renames_a_team(cast: Cast, alice_client: Client) -> None:
    response = alice_client.post(
        f"/settings/teams/{cast.team.pk}/rename", {"name": "Field sales"}, follow=True
    )
    assert response.redirect_chain == [(f"/settings/teams/{cast.team.pk}", 302)]
    assert "Team renamed." in response.content.decode()
    assert set(_teams(cast)) == {"Field sales"}


def test_renaming_onto_another_team_name_is_refused(cast: Cast, alice_client: Client) -> None:
    with tenancy.bound(cast.company_a.pk):
        services.team_save(company=cast.company_a, name="Support")
    response = alice_client.post(f"/settings/teams/{cast.team.pk}/rename", {"name": "SUPPORT"})
    assert "A team with this name exists already." in response.content.decode()
    assert set(_teams(cast)) == {"Sales", "Support"}


def test_an_admin_sets_the_members_with_checkboxes(cast: Cast, alice_client: Client) -> None:
    page = alice_client.get(f"/settings/teams/{cast.team.pk}").content.decode()
    assert 'type="checkbox" name="members"' in page
    assert "Carol" not in page  # only this company's users are offered
    response = alice_client.post(
        f"/settings/teams/{cast.team.pk}/members", {"members": [cast.bob.pk]}, follow=True
    )
    assert "Team members saved." in response.content.decode()
    assert _teams(cast) == {"Sales": {"bob@acme.test"}}
    alice_client.post(f"/settings/teams/{cast.team.pk}/members", {})
    assert _teams(cast) == {"Sales": set()}


def test_users_of_another_company_cannot_be_added(cast: Cast, alice_client: Client) -> None:
    response = alice_client.post(
        f"/settings/teams/{cast.team.pk}/members", {"members": [cast.carol.pk]}
    )
    assert response.status_code == 200
    assert "is not one of the available choices" in response.content.decode()
    assert _teams(cast) == {"Sales": {"alice@acme.test", "bob@acme.test"}}


def test_a_deactivated_user_is_not_offered_unless_already_a_member(
    cast: Cast, alice_client: Client
) -> None:
    dave = User.objects.create_user(email="dave@acme.test", password=PASSWORD, name="Dave Dunn")
    with tenancy.bound(cast.company_a.pk):
        membership = services.membership_add(company=cast.company_a, user=dave, role=Role.REGULAR)
        services.membership_set_active(company=cast.company_a, membership=membership, active=False)
    page = alice_client.get(f"/settings/teams/{cast.team.pk}").content.decode()
    assert "Dave Dunn" not in page


def test_an_admin_deletes_a_team(cast: Cast, alice_client: Client) -> None:
    response = alice_client.post(f"/settings/teams/{cast.team.pk}/delete", follow=True)
    assert response.redirect_chain == [("/settings/teams", 302)]
    assert "Team Sales deleted." in response.content.decode()
    assert _teams(cast) == {}
    assert alice_client.get(f"/settings/teams/{cast.team.pk}").status_code == 404


def test_the_teams_page_does_not_query_once_per_team(
    cast: Cast, alice_client: Client, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    alice_client.get("/settings/teams")  # warm the session and the URL resolver
    with CaptureQueriesContext(connection) as one_team:
        alice_client.get("/settings/teams")
    with tenancy.bound(cast.company_a.pk):
        for number in range(5):
            team = services.team_save(company=cast.company_a, name=f"Team {number}")
            services.team_set_members(
                company=cast.company_a, team=team, user_ids={cast.alice.pk, cast.bob.pk}
            )
    with django_assert_max_num_queries(len(one_team)):
        html = alice_client.get("/settings/teams").content.decode()
    assert "Team 4" in html
