"""Every page, count and autocomplete respects item access: Bob never sees Alice's owner-only
deal, a hidden Acme item is 403 and Carol (of Globex) gets 404 on any of Acme's. The board and
the list cost the same number of queries for 3 deals as for 15."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm import services as crm_services
from crm import tenancy
from crm.models import LabelKind
from tests.conftest import Cast
from tests.crm.sales.web.conftest import Acme

pytestmark = pytest.mark.django_db

OWNER_ONLY = 1


def test_bob_does_not_see_alices_owner_only_deal_anywhere(
    acme: Acme, bob_client: Client, alice_client: Client
) -> None:
    secret = acme.deal("Secret rocket", visible_to=OWNER_ONLY, value="900")
    acme.deal("Shared rocket", value="5")

    board = bob_client.get("/deals").content.decode()
    listed = bob_client.get("/deals/list").content.decode()
    lookup = bob_client.get("/lookup/deal?deal_name=rocket").content.decode()

    for page in (board, listed, lookup):
        assert "Shared rocket" in page
        assert "Secret rocket" not in page
    # The totals count what Bob may see only.
    assert "1 deal" in board
    assert "900" not in board
    assert bob_client.get(f"/deals/{secret.pk}").status_code == 403
    assert bob_client.post(f"/deals/{secret.pk}/status", {"status": "won"}).status_code == 403
    assert "Secret rocket" in alice_client.get("/deals").content.decode()


def test_the_person_autocomplete_offers_only_visible_persons(
    acme: Acme, bob_client: Client
) -> None:
    acme.person("Hidden Coyote", visible_to=OWNER_ONLY)
    acme.person("Open Coyote")

    options = bob_client.get("/lookup/person?person_name=coyote").content.decode()

    assert "Open Coyote" in options
    assert "Hidden Coyote" not in options


def test_bob_gets_403_on_hidden_lead_and_project(acme: Acme, bob_client: Client) -> None:
    lead = acme.lead("Secret lead", person_id=acme.person("Wile").pk, visible_to=OWNER_ONLY)
    project = acme.project("Secret project", visible_to=OWNER_ONLY)

    assert bob_client.get(f"/leads/{lead.pk}").status_code == 403
    assert bob_client.get(f"/projects/{project.pk}").status_code == 403
    assert "Secret lead" not in bob_client.get("/leads").content.decode()
    assert "Secret project" not in bob_client.get("/projects").content.decode()


def _acme_paths(acme: Acme) -> list[tuple[str, str]]:
    person = acme.person("Wile Coyote")
    organization = acme.organization("Acme Rockets")
    deal = acme.deal("Rocket", person_id=person.pk)
    lead = acme.lead("Catapult", person_id=person.pk)
    project = acme.project("Launch")
    return [
        ("get", f"/deals/{deal.pk}"),
        ("post", f"/deals/{deal.pk}"),
        ("post", f"/deals/{deal.pk}/move"),
        ("post", f"/deals/{deal.pk}/status"),
        ("post", f"/deals/{deal.pk}/delete"),
        ("post", f"/deals/{deal.pk}/restore"),
        ("post", f"/deals/{deal.pk}/labels/new"),
        ("post", f"/deals/{deal.pk}/participants"),
        ("get", f"/leads/{lead.pk}"),
        ("post", f"/leads/{lead.pk}/archive"),
        ("post", f"/leads/{lead.pk}/seen"),
        ("post", f"/leads/{lead.pk}/convert"),
        ("get", f"/projects/{project.pk}"),
        ("post", f"/projects/{project.pk}/move"),
        ("post", f"/projects/{project.pk}/links"),
        ("get", f"/persons/{person.pk}/deals-fragment"),
        ("get", f"/organizations/{organization.pk}/deals-fragment"),
    ]


def test_carol_gets_404_on_every_acme_item(acme: Acme, carol_client: Client) -> None:
    for method, path in _acme_paths(acme):
        response = getattr(carol_client, method)(path)
        assert response.status_code == 404, (method, path)


def test_carols_lists_and_autocomplete_show_nothing_of_acme(
    acme: Acme, carol_client: Client
) -> None:
    acme.deal("Rocket", person_id=acme.person("Wile Coyote").pk)

    assert "Rocket" not in carol_client.get("/deals/list").content.decode()
    assert "Wile" not in carol_client.get("/lookup/person?person_name=wile").content.decode()


def _make_items(acme: Acme, count: int, start: int) -> None:
    """Deals with person, organization and label; leads; projects."""
    _make_deals(acme, count, start)
    for number in range(start, start + count):
        acme.lead(f"Lead {number}", person_id=acme.person(f"Lead person {number}").pk)
        acme.project(f"Project {number}")


def _make_deals(acme: Acme, count: int, start: int) -> None:
    with tenancy.bound(acme.company.pk):
        label = crm_services.label_create(company=acme.company, kind=LabelKind.DEAL, name="Hot")
    organization = acme.organization(f"Org {start}")
    for number in range(start, start + count):
        person = acme.person(f"Person {number}", org_id=organization.pk)
        acme.deal(
            f"Deal {number}",
            value=str(number),
            currency="EUR" if number % 2 else "USD",
            person_id=person.pk,
            organization_id=organization.pk,
            label_ids=[label.pk],
        )


@pytest.mark.parametrize("path", ["/deals", "/deals/list", "/leads", "/projects"])
def test_pages_cost_the_same_queries_for_3_and_15_items(
    acme: Acme,
    alice_client: Client,
    django_assert_num_queries: Callable[..., CaptureQueriesContext],
    path: str,
) -> None:
    _make_items(acme, 3, start=0)
    alice_client.get(path)  # the default pipeline and board are made on the first visit
    with CaptureQueriesContext(connection) as few:
        assert alice_client.get(path).status_code == 200

    _make_items(acme, 12, start=100)

    with django_assert_num_queries(len(few)):
        assert alice_client.get(path).status_code == 200


def test_the_board_shows_all_15_deals(acme: Acme, alice_client: Client, cast: Cast) -> None:
    _make_deals(acme, 15, start=0)

    page = alice_client.get("/deals").content.decode()

    assert "15 deals" in page
    assert page.count('class="board-card"') == 15
