"""Who may open each settings page: admins can, a regular user gets 403, and Carol (admin of
Globex) gets 404 on every Acme object, the same answer as for an object that does not exist."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from crm import services, tenancy
from crm.models import Invitation, Membership, Team
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

Page = tuple[str, Callable[[Cast], str]]

ADMIN_PAGES: list[Page] = [
    ("get", lambda cast: "/settings/company"),
    ("post", lambda cast: "/settings/company"),
    ("get", lambda cast: "/settings/users"),
    ("post", lambda cast: "/settings/users/invite"),
    ("get", lambda cast: "/settings/teams"),
    ("post", lambda cast: "/settings/teams"),
    ("get", lambda cast: f"/settings/teams/{cast.team.pk}"),
]


def _bob_membership(cast: Cast) -> Membership:
    return cast.membership(cast.bob, cast.company_a)


def _acme_invitation(cast: Cast) -> Invitation:
    with tenancy.bound(cast.company_a.pk):
        return services.invitation_create(
            company=cast.company_a, email="eve@acme.test", role="regular", invited_by=cast.alice
        ).invitation


# Pages about one Acme object: (path, whose id it needs). Regular users: 403; Carol: 404.
OBJECT_PAGES: list[Page] = [
    ("post", lambda cast: f"/settings/users/{_bob_membership(cast).pk}/role"),
    ("post", lambda cast: f"/settings/users/{_bob_membership(cast).pk}/deactivate"),
    ("post", lambda cast: f"/settings/users/{_bob_membership(cast).pk}/reactivate"),
    ("post", lambda cast: f"/settings/invitations/{_acme_invitation(cast).pk}/revoke"),
    ("get", lambda cast: f"/settings/teams/{cast.team.pk}"),
    ("post", lambda cast: f"/settings/teams/{cast.team.pk}/rename"),
    ("post", lambda cast: f"/settings/teams/{cast.team.pk}/members"),
    ("post", lambda cast: f"/settings/teams/{cast.team.pk}/delete"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_PAGES + OBJECT_PAGES)
def test_a_regular_user_gets_403_on_company_settings(
    cast: Cast, bob_client: Client, method: str, path: Callable[[Cast], str]
) -> None:
    response = getattr(bob_client, method)(path(cast), {"role": "admin", "name": "x"})
    assert response.status_code == 403
    assert "This page is for admins of the company" in response.content.decode()


@pytest.mark.parametrize(("method", "path"), ADMIN_PAGES[::2])
def test_an_admin_opens_every_company_settings_page(
    cast: Cast, alice_client: Client, method: str, path: Callable[[Cast], str]
) -> None:
    assert alice_client.get(path(cast)).status_code == 200


@pytest.mark.parametrize(("method", "path"), OBJECT_PAGES)
def test_carol_gets_404_on_acme_objects(
    cast: Cast, carol_client: Client, method: str, path: Callable[[Cast], str]
) -> None:
    response = getattr(carol_client, method)(
        path(cast), {"role": "regular", "name": "Hijacked", "members": [cast.carol.pk]}
    )
    assert response.status_code == 404
    with tenancy.bound(cast.company_a.pk):
        bob = Membership.objects.for_company(cast.company_a).get(user=cast.bob)
        assert (bob.role, bob.is_active) == ("regular", True)
        team = Team.objects.for_company(cast.company_a).get()
        assert team.name == "Sales"
        assert team.members.count() == 2
        assert (
            not Invitation.objects.for_company(cast.company_a)
            .filter(revoked_at__isnull=False)
            .exists()
        )


def test_unknown_ids_get_the_same_404(alice_client: Client) -> None:
    assert alice_client.get("/settings/teams/999999").status_code == 404
    assert alice_client.post("/settings/users/999999/role", {"role": "admin"}).status_code == 404


def test_settings_pages_refuse_posts_without_the_csrf_token(cast: Cast) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.alice)
    assert client.post("/settings/teams", {"name": "Support"}).status_code == 403
