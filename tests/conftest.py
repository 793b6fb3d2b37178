"""The fixed cast of STYLE.md, used by every test that needs people:

- company A ("Acme"): Alice (admin) and Bob (regular, on Alice's team "Sales")
- company B ("Globex"): Carol (admin), who has no access to anything of A's.

Carol gets 404 on A's objects: every page and endpoint has that test.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest
from django.test import Client

from crm import services, tenancy
from crm.models import Company, Membership, Role, Team, User

PASSWORD = "correct horse battery staple"


@dataclass
class Cast:
    company_a: Company
    company_b: Company
    alice: User
    bob: User
    carol: User
    team: Team
    alice_token: str
    bob_token: str
    carol_token: str

    def membership(self, user: User, company: Company) -> Membership:
        with tenancy.bound(company.pk, user_id=user.pk):
            return Membership.objects.for_company(company).get(user=user)


def _build_cast() -> Cast:
    company_a, alice, alice_token = services.bootstrap_company(
        name="Acme", admin_email="alice@acme.test", password=PASSWORD, admin_name="Alice Adams"
    )
    with tenancy.bound(company_a.pk):
        bob = services.user_get_or_create(
            email="bob@acme.test", password=PASSWORD, name="Bob Brown"
        )
        services.membership_add(company=company_a, user=bob, role=Role.REGULAR)
        bob_token = services.api_token_issue(company=company_a, user=bob)
        team = services.team_save(company=company_a, name="Sales")
        services.team_set_members(company=company_a, team=team, user_ids={alice.pk, bob.pk})
    company_b, carol, carol_token = services.bootstrap_company(
        name="Globex",
        admin_email="carol@globex.test",
        password=PASSWORD,
        admin_name="Carol Clark",
    )
    return Cast(company_a, company_b, alice, bob, carol, team, alice_token, bob_token, carol_token)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """Argon2 is slow on purpose; tests hash many passwords. Production keeps Argon2."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache(settings) -> None:
    """A cache namespace of this test only, in the shared Redis: nothing another test or
    another run left (rate-limit counters, "sync queued" markers of accounts whose ids repeat
    from database to database) is seen here."""
    caches = {alias: dict(config) for alias, config in settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = f"{caches['default'].get('KEY_PREFIX', '')}-{uuid.uuid4()}"
    settings.CACHES = caches


@pytest.fixture
def cast(db: None) -> Cast:
    return _build_cast()


@pytest.fixture
def client_for(cast: Cast):
    """A browser session signed in as one of the cast."""

    def make(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def service_missing(reason: str) -> None:
    """A test's external service is missing: fail under CRM_REQUIRE_SERVICES=1 (CI), where every
    service must be present, else skip with the reason."""
    if os.environ.get("CRM_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)
