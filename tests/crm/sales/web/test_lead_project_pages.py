"""The leads inbox (seen / unseen, archive, convert), the Add lead dialog, the projects board and
detail with its links, and the deals-and-leads fragments of the contact pages."""

from __future__ import annotations

import pytest
from django.test import Client

from contacts.models import Organization
from crm import tenancy
from crm.sales.models import Deal, Lead, Project, ProjectPhase
from tests.conftest import Cast
from tests.crm.sales.web.conftest import Acme

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _lead(cast: Cast, lead: Lead) -> Lead:
    with tenancy.bound(cast.company_a.pk):
        return Lead.objects.for_company(cast.company_a).get(pk=lead.pk)


def test_add_lead_with_a_new_organization_creates_it(
    cast: Cast, acme: Acme, alice_client: Client
) -> None:
    response = alice_client.post(
        "/leads/new",
        {
            "title": "Catapult order",
            "organization_name": "Roadrunner Ltd",
            "value_amount": "99",
            "value_currency": "EUR",
            "owner_id": cast.alice.pk,
            "visible_to": 7,
        },
        headers=HTMX,
    )

    assert response.status_code == 204
    with tenancy.bound(cast.company_a.pk):
        organization = Organization.objects.for_company(cast.company_a).get(name="Roadrunner Ltd")
        lead = Lead.objects.for_company(cast.company_a).get(title="Catapult order")
    assert lead.organization_id == organization.pk
    assert lead.person_id is None
    assert (str(lead.value_amount), lead.value_currency) == ("99.00", "EUR")


def test_a_lead_without_contact_is_refused_with_the_reason(
    alice_client: Client, cast: Cast
) -> None:
    response = alice_client.post(
        "/leads/new", {"title": "Nobody", "owner_id": cast.alice.pk, "visible_to": 7}, headers=HTMX
    )

    assert response.status_code == 400
    assert "A lead needs a person or an organization." in response.content.decode()


def test_opening_a_lead_marks_it_seen(cast: Cast, acme: Acme, alice_client: Client) -> None:
    lead = acme.lead("Catapult", person_id=acme.person("Wile").pk)
    inbox = alice_client.get("/leads").content.decode()
    assert "lead-unseen" in inbox
    assert "Catapult" in inbox

    assert alice_client.get(f"/leads/{lead.pk}").status_code == 200

    assert _lead(cast, lead).was_seen
    assert "lead-seen" in alice_client.get("/leads").content.decode()
    alice_client.post(f"/leads/{lead.pk}/seen", {"seen": "0"})
    assert not _lead(cast, lead).was_seen


def test_archive_and_unarchive_a_lead(cast: Cast, acme: Acme, alice_client: Client) -> None:
    lead = acme.lead("Catapult", person_id=acme.person("Wile").pk)

    alice_client.post(f"/leads/{lead.pk}/archive", {"archived": "1"})

    assert _lead(cast, lead).is_archived
    assert "Catapult" not in alice_client.get("/leads").content.decode()
    assert "Catapult" in alice_client.get("/leads?view=archived").content.decode()
    alice_client.post(f"/leads/{lead.pk}/archive", {"archived": "0"})
    assert not _lead(cast, lead).is_archived


def test_convert_to_deal_links_to_the_new_deal(
    cast: Cast,
    acme: Acme,
    alice_client: Client,
    eager_celery: None,
    django_capture_on_commit_callbacks,
) -> None:
    lead = acme.lead("Catapult", person_id=acme.person("Wile").pk)

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/leads/{lead.pk}/convert")

    assert response.status_code == 302
    lead = _lead(cast, lead)
    assert lead.converted_deal_id is not None
    page = alice_client.get(response["Location"]).content.decode()
    assert f"/deals/{lead.converted_deal_id}" in page
    assert "Convert to deal" not in page


def test_project_board_moves_between_phases_and_detail_links(
    cast: Cast, acme: Acme, alice_client: Client
) -> None:
    project = acme.project("Launch")
    deal = acme.deal("Rocket")
    person = acme.person("Wile Coyote")
    organization = acme.organization("Acme Rockets")
    with tenancy.bound(cast.company_a.pk):
        phases = list(project.board.phases.order_by("position"))

    board = alice_client.get("/projects").content.decode()
    assert all(phase.name in board for phase in phases)
    assert "Launch" in board
    response = alice_client.post(
        f"/projects/{project.pk}/move", {"phase_id": phases[1].pk}, headers=HTMX
    )
    assert response.status_code == 200
    for kind, target in (("deal", deal), ("person", person), ("organization", organization)):
        alice_client.post(f"/projects/{project.pk}/links", {"kind": kind, "target_id": target.pk})

    page = alice_client.get(f"/projects/{project.pk}").content.decode()
    assert "Rocket" in page
    assert "Wile Coyote" in page
    assert "Acme Rockets" in page
    alice_client.post(
        f"/projects/{project.pk}/links", {"kind": "deal", "target_id": deal.pk, "remove": "1"}
    )
    with tenancy.bound(cast.company_a.pk):
        project = Project.objects.for_company(cast.company_a).get(pk=project.pk)
        assert project.phase_id == phases[1].pk
        assert not project.deals.exists()
        assert list(project.persons.values_list("pk", flat=True)) == [person.pk]


def test_add_project_dialog(cast: Cast, acme: Acme, alice_client: Client) -> None:
    board = alice_client.get("/projects")
    assert board.status_code == 200
    with tenancy.bound(cast.company_a.pk):
        phase = ProjectPhase.objects.for_company(cast.company_a).first()
    assert phase is not None

    response = alice_client.post(
        f"/projects/new?board={phase.board_id}",
        {
            "title": "Launch",
            "status": "open",
            "phase_id": phase.pk,
            "owner_id": cast.alice.pk,
            "visible_to": 7,
        },
    )

    assert response.status_code == 302
    with tenancy.bound(cast.company_a.pk):
        assert Project.objects.for_company(cast.company_a).get(title="Launch").phase_id == phase.pk


def test_person_and_organization_fragments_list_deals_and_leads(
    acme: Acme, alice_client: Client
) -> None:
    organization = acme.organization("Acme Rockets")
    person = acme.person("Wile Coyote", org_id=organization.pk)
    acme.deal("Rocket", person_id=person.pk, organization_id=organization.pk)
    acme.lead("Catapult", person_id=person.pk)
    acme.lead("Giant magnet", organization_id=organization.pk)
    acme.deal("Someone else's")

    for_person = alice_client.get(f"/persons/{person.pk}/deals-fragment").content.decode()
    for_org = alice_client.get(f"/organizations/{organization.pk}/deals-fragment").content.decode()

    assert "Rocket" in for_person
    assert "Catapult" in for_person
    assert "Giant magnet" not in for_person
    assert "Someone else" not in for_person
    assert "Rocket" in for_org
    assert "Giant magnet" in for_org
    assert "Catapult" not in for_org
    assert "<html" not in for_person


def test_a_converted_deal_shows_in_the_person_fragment(acme: Acme, alice_client: Client) -> None:
    person = acme.person("Wile Coyote")
    deal = acme.deal("Rocket", person_id=person.pk)

    page = alice_client.get(f"/persons/{person.pk}/deals-fragment").content.decode()

    assert f"/deals/{deal.pk}" in page
    assert isinstance(deal, Deal)
