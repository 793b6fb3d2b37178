"""The demo company `make run` loads on first start: the platform makes the company, users and
team, and the item apps' registered loaders fill it with contacts, deals, leads and a project."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from contacts import demo as contacts_demo
from contacts.models import Organization, OrganizationRelation, Person, RelationKind
from crm import demo, services, tenancy
from crm.access import Visibility, can_see, visible_items
from crm.models import ChangeSource, Company, ItemChange, Membership, Role, User
from crm.sales import demo as sales_demo
from crm.sales.models import Deal, DealStatus, Lead, Project
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def sign_in() -> demo.DemoSignIn:
    return demo.demo_load()


def test_the_item_apps_register_their_loaders_contacts_first() -> None:
    loaders = demo.loaders()
    assert loaders.index(contacts_demo.load) < loaders.index(sales_demo.load)


def test_demo_load_fills_the_company_with_contacts_deals_leads_and_a_project(
    sign_in: demo.DemoSignIn,
) -> None:
    with tenancy.bound(sign_in.company_id):
        persons = Person.objects.for_company(sign_in.company_id)
        organizations = Organization.objects.for_company(sign_in.company_id)
        deals = Deal.objects.for_company(sign_in.company_id)
        leads = Lead.objects.for_company(sign_in.company_id)
        projects = Project.objects.for_company(sign_in.company_id)
        assert (persons.count(), organizations.count()) == (12, 6)
        assert (deals.count(), leads.count(), projects.count()) == (8, 3, 1)
        assert leads.filter(is_archived=True).count() == 1
        owners = set(persons.values_list("owner__email", flat=True))
        assert owners == {demo.DEMO_ADMIN_EMAIL, demo.DEMO_REP_EMAIL}

        parent = OrganizationRelation.objects.for_company(sign_in.company_id).get()
        assert parent.kind == RelationKind.PARENT
        assert (parent.organization.name, parent.related_organization.name) == (
            "Brightwater Group plc",
            "Brightwater Retail Inc.",
        )

        sanne = persons.get(name="Sanne de Vries")
        emails = list(sanne.emails.order_by("position").values_list("normalized", "label"))
        assert emails == [
            ("sanne.devries@vandijk-logistiek.example", "work"),
            ("sanne.dv@example.net", "home"),
        ]
        assert sorted(sanne.labels.values_list("name", flat=True)) == ["Customer", "VIP"]

        won = deals.get(status=DealStatus.WON)
        lost = deals.get(status=DealStatus.LOST)
        assert won.won_time is not None
        assert lost.lost_reason == "Chose a local provider"
        assert {deal.currency for deal in deals} == {"EUR", "USD"}
        assert deals.values("stage").distinct().count() >= 4  # spread over the pipeline

        project = projects.get()
        assert list(project.deals.all()) == [won]
        assert list(project.persons.values_list("pk", flat=True)) == [won.person_id]
        assert list(project.organizations.values_list("pk", flat=True)) == [won.organization_id]
        assert project.phase.name == "In progress"

        # Written through the services: the change log names the demo admin and "system".
        logged = ItemChange.objects.for_company(sign_in.company_id).filter(
            item_kind="person", item_key=str(sanne.pk)
        )
        assert logged.exists()
        assert set(logged.values_list("source", flat=True)) == {ChangeSource.SYSTEM}
        assert set(logged.values_list("actor__email", flat=True)) == {demo.DEMO_ADMIN_EMAIL}


def test_the_demo_admin_lists_the_demo_persons_over_the_api(sign_in: demo.DemoSignIn) -> None:
    with tenancy.bound(sign_in.company_id):
        company = Company.objects.get(pk=sign_in.company_id)
        admin = User.objects.get(email=sign_in.email)
        token = services.api_token_issue(company=company, user=admin)

    response = Client().get("/api/v2/persons", HTTP_X_API_TOKEN=token)

    assert response.status_code == 200, response.content
    names = {person["name"] for person in response.json()["data"]}
    assert len(names) == 12
    assert {"Sanne de Vries", "Kadri Tamm", "Agnieszka Kowalska", "Liam O'Connor"} <= names


def test_robs_owner_only_person_is_hidden_from_other_regular_users(
    sign_in: demo.DemoSignIn,
) -> None:
    with tenancy.bound(sign_in.company_id):
        company = Company.objects.get(pk=sign_in.company_id)
        uma = services.user_get_or_create(email="uma@example.com", password=PASSWORD, name="Uma")
        uma_member = services.membership_add(company=company, user=uma, role=Role.REGULAR)
        rob_member = Membership.objects.for_company(company).get(user__email=demo.DEMO_REP_EMAIL)
        liam = Person.objects.for_company(company).get(name="Liam O'Connor")

        assert liam.visible_to == Visibility.OWNER
        assert liam.owner_id == rob_member.user_id
        assert can_see(liam, membership=rob_member)
        assert not can_see(liam, membership=uma_member)
        visible = visible_items(Person.objects.for_company(company), membership=uma_member)
        assert visible.count() == 11


@pytest.fixture
def probe() -> Iterator[list[demo.DemoContext]]:
    seen: list[demo.DemoContext] = []

    def loader(context: demo.DemoContext) -> None:
        assert tenancy.bound_company_id() == context.company.pk
        # Registered after the apps' loaders: their items are there already.
        assert Deal.objects.for_company(context.company).count() == 8
        seen.append(context)

    demo.register(loader)
    try:
        yield seen
    finally:
        demo.unregister(loader)


def test_loaders_run_after_the_users_and_team_in_the_bound_transaction(
    probe: list[demo.DemoContext],
) -> None:
    sign_in = demo.demo_load()

    [context] = probe
    assert context.company.pk == sign_in.company_id
    assert (context.admin.email, context.rep.email) == (demo.DEMO_ADMIN_EMAIL, "rob@example.com")
    assert context.admin_membership.role == Role.ADMIN
    assert context.rep_membership.role == Role.REGULAR
    with tenancy.bound(sign_in.company_id):
        members = set(context.team.members.values_list("email", flat=True))
    assert members == {demo.DEMO_ADMIN_EMAIL, "rob@example.com"}


def test_a_failing_loader_leaves_no_demo_company_so_the_next_start_loads_it_again() -> None:
    def broken(context: demo.DemoContext) -> None:
        raise RuntimeError("loader failed")

    demo.register(broken)
    try:
        with pytest.raises(RuntimeError, match="loader failed"):
            demo.demo_load()
    finally:
        demo.unregister(broken)

    assert tenancy.company_ids() == []
    assert demo.demo_load().company_id in tenancy.company_ids()
