"""Items a message is linked to, made through the real services, for the smart field tests
(tests/inbox/test_smartcontext.py, tests/inbox/test_api_templates.py and the delivery test
tests/mailsync/test_outbox_templates.py)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from contacts import services as contact_services
from contacts.models import Organization, Person
from contacts.services import ContactPoint
from crm import tenancy
from crm.access import Visibility
from crm.sales import services as sales_services
from crm.sales.models import Deal, Lead, Project
from tests.conftest import Cast

ZOE = "zoe.mueller@customer.test"


@dataclass
class Items:
    """Alice's: Zoë Müller of Müller & Söhne GmbH and their deal "Renewal <2027>" (1,500.50
    EUR), a lead and a project, all shared with the company; and a deal, a person and an
    organization only Alice may see (`hidden_*`)."""

    organization: Organization
    person: Person
    deal: Deal
    lead: Lead
    project: Project
    hidden_organization: Organization
    hidden_person: Person
    hidden_deal: Deal


def make_items(cast: Cast) -> Items:
    alice = cast.membership(cast.alice, cast.company_a)
    company = cast.company_a
    with tenancy.bound(company.pk, user_id=cast.alice.pk):
        organization = contact_services.organization_create(
            company=company,
            membership=alice,
            fields={
                "name": "Müller & Söhne GmbH",
                "address": {"value": "Hauptstraße 5, 10115 Berlin"},
                "visible_to": Visibility.COMPANY,
            },
        )
        person = contact_services.person_create(
            company=company,
            membership=alice,
            fields={
                "name": "Zoë Müller",
                "emails": [ContactPoint(ZOE)],
                "phones": [ContactPoint("+49 30 1234567")],
                "job_title": "Head of <Purchasing>",
                "org_id": organization.pk,
                "visible_to": Visibility.COMPANY,
            },
        )
        deal = sales_services.deal_create(
            company=company,
            membership=alice,
            fields={
                "title": "Renewal <2027> & more",
                "value": Decimal("1500.50"),
                "currency": "EUR",
                "person_id": person.pk,
                "organization_id": organization.pk,
                "visible_to": Visibility.COMPANY,
            },
        )
        lead = sales_services.lead_create(
            company=company,
            membership=alice,
            fields={
                "title": "Second site",
                "person_id": person.pk,
                "visible_to": Visibility.COMPANY,
            },
        )
        project = sales_services.project_create(
            company=company,
            membership=alice,
            fields={"title": "Rollout", "visible_to": Visibility.COMPANY},
        )
        hidden_organization = contact_services.organization_create(
            company=company,
            membership=alice,
            fields={"name": "Secret Corp", "visible_to": Visibility.OWNER},
        )
        hidden_person = contact_services.person_create(
            company=company,
            membership=alice,
            fields={
                "name": "Hidden Hannah",
                "emails": [ContactPoint("hannah@secret.test")],
                "org_id": hidden_organization.pk,
                "visible_to": Visibility.OWNER,
            },
        )
        hidden_deal = sales_services.deal_create(
            company=company,
            membership=alice,
            fields={
                "title": "Secret merger",
                "value": Decimal("9000000"),
                "currency": "USD",
                "person_id": hidden_person.pk,
                "organization_id": hidden_organization.pk,
                "visible_to": Visibility.OWNER,
            },
        )
    return Items(
        organization,
        person,
        deal,
        lead,
        project,
        hidden_organization,
        hidden_person,
        hidden_deal,
    )
