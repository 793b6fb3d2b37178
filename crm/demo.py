"""The demo company `make run` loads on first start, so a new user has something to sign in to.

The platform makes the company, its users and team; the item apps fill it. They cannot be
imported from here (the platform knows no item app), so each registers a loader in its
AppConfig.ready(), as they subscribe to `crm.hooks`. `demo_load` runs the loaders in
registration order, which is INSTALLED_APPS order: contacts before the deals that link to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from crm import services, tenancy
from crm.models import Company, Membership, Role, Team, User

DEMO_COMPANY = "Demo Company"
DEMO_ADMIN_EMAIL = "demo@example.com"
DEMO_REP_EMAIL = "rob@example.com"
DEMO_PASSWORD = "demo-sales-inbox"  # noqa: S105 - published on purpose: a local demo sign-in


@dataclass(frozen=True)
class DemoSignIn:
    company_id: int
    email: str
    password: str


@dataclass(frozen=True)
class DemoContext:
    """What a loader fills: the company, its admin Dana and regular user Rob (both on the
    team "Sales"). Loaders write as `admin_membership` with source "system"."""

    company: Company
    admin: User
    admin_membership: Membership
    rep: User
    rep_membership: Membership
    team: Team


DemoLoader = Callable[[DemoContext], None]
_loaders: list[DemoLoader] = []


def register(loader: DemoLoader) -> None:
    # ready() can run more than once (tests that reload apps): register each loader once.
    if loader not in _loaders:
        _loaders.append(loader)


def unregister(loader: DemoLoader) -> None:
    if loader in _loaders:
        _loaders.remove(loader)


def loaders() -> tuple[DemoLoader, ...]:
    return tuple(_loaders)


def demo_load() -> DemoSignIn:
    """Make the demo company and run every registered loader in it.

    One transaction for all of it: `serve` loads the demo only while there is no company, so a
    loader that fails must leave no company behind, or the next start would skip the demo."""
    with transaction.atomic():
        company, admin, _token = services.bootstrap_company(
            name=DEMO_COMPANY,
            admin_email=DEMO_ADMIN_EMAIL,
            password=DEMO_PASSWORD,
            admin_name="Dana Demo",
        )
        with tenancy.bound(company.pk, user_id=admin.pk):
            rep = services.user_get_or_create(
                email=DEMO_REP_EMAIL, password=DEMO_PASSWORD, name="Rob Rep"
            )
            rep_membership = services.membership_add(company=company, user=rep, role=Role.REGULAR)
            team = services.team_save(company=company, name="Sales")
            services.team_set_members(company=company, team=team, user_ids={admin.pk, rep.pk})
            context = DemoContext(
                company=company,
                admin=admin,
                admin_membership=Membership.objects.for_company(company).get(user=admin),
                rep=rep,
                rep_membership=rep_membership,
                team=team,
            )
            for loader in loaders():
                loader(context)
    return DemoSignIn(company_id=company.pk, email=DEMO_ADMIN_EMAIL, password=DEMO_PASSWORD)
