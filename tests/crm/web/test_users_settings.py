"""Settings → Users: the list, role changes, deactivation, and revoking invitations."""

from __future__ import annotations

import pytest
from django.test import Client

from crm import services, tenancy
from crm.models import Invitation, Membership, Role
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def _membership(cast: Cast, email: str) -> Membership:
    with tenancy.bound(cast.company_a.pk):
        return Membership.objects.for_company(cast.company_a).get(user__email=email)


def test_the_list_shows_each_user_with_role_and_status(cast: Cast, alice_client: Client) -> None:
    bob = _membership(cast, "bob@acme.test")
    with tenancy.bound(cast.company_a.pk):
        services.membership_set_active(company=cast.company_a, membership=bob, active=False)
    html = alice_client.get("/settings/users").content.decode()
    assert "Alice Adams" in html
    assert "bob@acme.test" in html
    assert "carol@globex.test" not in html
    assert "Deactivated" in html
    assert "Active" in html
    assert f'action="/settings/users/{bob.pk}/reactivate"' in html


def test_an_admin_changes_a_role(cast: Cast, alice_client: Client) -> None:
    bob = _membership(cast, "bob@acme.test")
    response = alice_client.post(
        f"/settings/users/{bob.pk}/role", {"role": Role.ADMIN}, follow=True
    )
    assert "Bob Brown is now Admin." in response.content.decode()
    assert _membership(cast, "bob@acme.test").role == Role.ADMIN


def test_the_last_admin_cannot_be_demoted(cast: Cast, alice_client: Client) -> None:
    alice = _membership(cast, "alice@acme.test")
    response = alice_client.post(
        f"/settings/users/{alice.pk}/role", {"role": Role.REGULAR}, follow=True
    )
    assert "A company needs at least one active admin." in response.content.decode()
    assert _membership(cast, "alice@acme.test").role == Role.ADMIN


def test_a_deactivated_user_can_no_longer_use_acme_until_reactivated(
    cast: Cast, alice_client: Client, bob_client: Client
) -> None:
    bob = _membership(cast, "bob@acme.test")
    response = alice_client.post(f"/settings/users/{bob.pk}/deactivate", follow=True)
    assert "Bob Brown is deactivated." in response.content.decode()
    assert not _membership(cast, "bob@acme.test").is_active
    assert bob_client.get("/").status_code == 403

    response = alice_client.post(f"/settings/users/{bob.pk}/reactivate", follow=True)
    assert "Bob Brown is active again." in response.content.decode()
    assert bob_client.get("/").status_code == 200


def test_the_last_admin_cannot_be_deactivated(cast: Cast, alice_client: Client) -> None:
    alice = _membership(cast, "alice@acme.test")
    response = alice_client.post(f"/settings/users/{alice.pk}/deactivate", follow=True)
    assert "A company needs at least one active admin." in response.content.decode()
    assert _membership(cast, "alice@acme.test").is_active
    assert alice_client.get("/settings/users").status_code == 200


def test_an_admin_revokes_a_pending_invitation(cast: Cast, alice_client: Client) -> None:
    with tenancy.bound(cast.company_a.pk):
        issued = services.invitation_create(
            company=cast.company_a, email="eve@acme.test", role="regular", invited_by=cast.alice
        )
    html = alice_client.get("/settings/users").content.decode()
    assert "eve@acme.test" in html
    response = alice_client.post(
        f"/settings/invitations/{issued.invitation.pk}/revoke", follow=True
    )
    assert "The invitation of eve@acme.test is revoked." in response.content.decode()
    assert "No pending invitations." in response.content.decode()
    with tenancy.bound(cast.company_a.pk):
        invitation = Invitation.objects.for_company(cast.company_a).get()
        assert invitation.revoked_at is not None
    # The link is dead, and revoking again finds nothing.
    assert Client().get(f"/invite/{issued.token}").status_code == 410
    revoke_again = f"/settings/invitations/{issued.invitation.pk}/revoke"
    assert alice_client.post(revoke_again).status_code == 404


def test_an_admin_who_steps_down_lands_on_home(cast: Cast, alice_client: Client) -> None:
    bob = _membership(cast, "bob@acme.test")
    alice = _membership(cast, "alice@acme.test")
    alice_client.post(f"/settings/users/{bob.pk}/role", {"role": Role.ADMIN})
    response = alice_client.post(
        f"/settings/users/{alice.pk}/role", {"role": Role.REGULAR}, follow=True
    )
    assert response.redirect_chain == [("/", 302)]
    assert "Alice Adams is now Regular user." in response.content.decode()
    assert alice_client.get("/settings/users").status_code == 403
