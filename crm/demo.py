"""The demo company `make run` loads on first start, so a new user has something to sign in to.
Later issues add demo contacts, deals and mail here."""

from __future__ import annotations

from dataclasses import dataclass

from crm import services, tenancy
from crm.models import Role

DEMO_COMPANY = "Demo Company"
DEMO_ADMIN_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-sales-inbox"  # noqa: S105 - published on purpose: a local demo sign-in


@dataclass(frozen=True)
class DemoSignIn:
    company_id: int
    email: str
    password: str


def demo_load() -> DemoSignIn:
    company, admin, _token = services.bootstrap_company(
        name=DEMO_COMPANY,
        admin_email=DEMO_ADMIN_EMAIL,
        password=DEMO_PASSWORD,
        admin_name="Dana Demo",
    )
    with tenancy.bound(company.pk):
        rep = services.user_get_or_create(
            email="rob@example.com", password=DEMO_PASSWORD, name="Rob Rep"
        )
        services.membership_add(company=company, user=rep, role=Role.REGULAR)
        team = services.team_save(company=company, name="Sales")
        services.team_set_members(company=company, team=team, user_ids={admin.pk, rep.pk})
    return DemoSignIn(company_id=company.pk, email=DEMO_ADMIN_EMAIL, password=DEMO_PASSWORD)
