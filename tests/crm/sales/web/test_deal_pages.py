"""The deal pages: the board with totals per stage, moving cards, won / lost, the list, the
Add deal dialog (existing and brand-new contacts), the detail and its Email tab slot."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from contacts.models import Person
from crm import tenancy
from crm.sales import services
from crm.sales.models import Deal, DealStatus
from tests.conftest import Cast
from tests.crm.sales.web.conftest import Acme

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _reload(cast: Cast, deal: Deal) -> Deal:
    with tenancy.bound(cast.company_a.pk):
        return Deal.objects.for_company(cast.company_a).get(pk=deal.pk)


def test_board_shows_stages_with_count_and_totals_per_currency(
    acme: Acme, alice_client: Client
) -> None:
    first, second = acme.stages()[:2]
    acme.deal("Rocket", value="1000", currency="USD", stage_id=first.pk)
    acme.deal("Skates", value="500", currency="USD", stage_id=first.pk)
    acme.deal("Anvil", value="70.5", currency="EUR", stage_id=first.pk)
    acme.deal("Glue", value="3", currency="USD", stage_id=second.pk)

    response = alice_client.get("/deals")

    assert response.status_code == 200
    page = response.content.decode()
    for stage in acme.stages():
        assert stage.name in page
    assert "3 deals" in page
    assert "1,500.00 USD" in page
    assert "70.50 EUR" in page
    assert "1 deal" in page
    assert "3.00 USD" in page
    assert "Rocket" in page
    assert "Glue" in page


def test_moving_a_card_changes_its_stage_and_returns_the_board(
    cast: Cast, acme: Acme, alice_client: Client
) -> None:
    first, second = acme.stages()[:2]
    deal = acme.deal("Rocket", value="10", stage_id=first.pk)

    response = alice_client.post(f"/deals/{deal.pk}/move", {"stage_id": second.pk}, headers=HTMX)

    assert response.status_code == 200
    assert 'id="board"' in response.content.decode()
    assert _reload(cast, deal).stage_id == second.pk


def test_moving_a_card_to_a_stage_of_another_pipeline_is_refused(
    cast: Cast, acme: Acme, alice_client: Client
) -> None:
    first = acme.stages()[0]
    with tenancy.bound(cast.company_a.pk):
        other = services.pipeline_create(
            company=cast.company_a, membership=acme.membership, name="Partners"
        )
        foreign = services.stage_create(
            company=cast.company_a, membership=acme.membership, pipeline_id=other.pk, name="Signed"
        )
    deal = acme.deal("Rocket", stage_id=first.pk)

    response = alice_client.post(f"/deals/{deal.pk}/move", {"stage_id": foreign.pk}, headers=HTMX)

    assert response.status_code == 400
    assert "is not in pipeline" in response.content.decode()
    assert _reload(cast, deal).stage_id == first.pk


def test_the_move_form_works_without_javascript(
    cast: Cast, acme: Acme, alice_client: Client
) -> None:
    first, second = acme.stages()[:2]
    deal = acme.deal("Rocket", stage_id=first.pk)

    response = alice_client.post(f"/deals/{deal.pk}/move", {"stage_id": second.pk})

    assert response.status_code == 302
    assert _reload(cast, deal).stage_id == second.pk


def test_won_and_lost_with_a_reason(cast: Cast, acme: Acme, alice_client: Client) -> None:
    won = acme.deal("Rocket")
    lost = acme.deal("Anvil")

    alice_client.post(f"/deals/{won.pk}/status", {"status": "won"})
    alice_client.post(f"/deals/{lost.pk}/status", {"status": "lost", "lost_reason": "Too heavy"})

    assert _reload(cast, won).status == DealStatus.WON
    lost = _reload(cast, lost)
    assert (lost.status, lost.lost_reason) == (DealStatus.LOST, "Too heavy")
    page = alice_client.get(f"/deals/{lost.pk}").content.decode()
    assert "Lost reason: Too heavy" in page
    assert "Reopen" in page


def _add_deal_form(acme: Acme, **extra: object) -> dict[str, object]:
    return {
        "title": "New rocket",
        "value": "250",
        "currency": "EUR",
        "stage_id": acme.stages()[0].pk,
        "owner_id": acme.cast.alice.pk,
        "visible_to": 7,
        **extra,
    }


def test_add_deal_links_an_existing_person(cast: Cast, acme: Acme, alice_client: Client) -> None:
    person = acme.person("Wile Coyote")

    response = alice_client.post(
        "/deals/new",
        _add_deal_form(acme, person_id=person.pk, person_name="Wile Coyote"),
        headers=HTMX,
    )

    assert response.status_code == 204
    with tenancy.bound(cast.company_a.pk):
        deal = Deal.objects.for_company(cast.company_a).get(title="New rocket")
        assert Person.objects.for_company(cast.company_a).count() == 1
    assert response["HX-Redirect"] == f"/deals/{deal.pk}"
    assert (deal.person_id, deal.value, deal.currency) == (person.pk, Decimal("250"), "EUR")


def test_add_deal_with_a_new_person_name_creates_the_person(
    cast: Cast, acme: Acme, alice_client: Client
) -> None:
    organization = acme.organization("Acme Rockets")

    response = alice_client.post(
        "/deals/new",
        _add_deal_form(
            acme,
            person_name="Road Runner",
            organization_id=organization.pk,
            organization_name="Acme Rockets",
        ),
    )

    assert response.status_code == 302
    with tenancy.bound(cast.company_a.pk):
        person = Person.objects.for_company(cast.company_a).get(name="Road Runner")
        deal = Deal.objects.for_company(cast.company_a).get(title="New rocket")
    assert deal.person_id == person.pk
    assert deal.organization_id == organization.pk
    assert person.organization_id == organization.pk


def test_a_refused_deal_leaves_no_new_person_behind(
    cast: Cast, acme: Acme, alice_client: Client
) -> None:
    response = alice_client.post(
        "/deals/new", _add_deal_form(acme, person_name="Road Runner", currency="E1"), headers=HTMX
    )

    assert response.status_code == 400
    assert "three-letter" in response.content.decode()
    with tenancy.bound(cast.company_a.pk):
        assert not Person.objects.for_company(cast.company_a).exists()


def test_the_add_deal_dialog_is_a_fragment_for_htmx(alice_client: Client) -> None:
    fragment = alice_client.get("/deals/new", headers=HTMX).content.decode()
    page = alice_client.get("/deals/new").content.decode()

    assert "<form" in fragment
    assert "<html" not in fragment
    assert "<html" in page
    assert "Add deal" in page


def test_deal_list_filters_by_status_and_pages(acme: Acme, alice_client: Client) -> None:
    won = acme.deal("Won deal")
    acme.deal("Open deal")
    with tenancy.bound(acme.company.pk):
        services.deal_update(
            company=acme.company, membership=acme.membership, deal=won, fields={"status": "won"}
        )

    page = alice_client.get("/deals/list?status=won&sort=title").content.decode()

    assert "Won deal" in page
    assert "Open deal" not in page


def test_deal_detail_edits_fields_and_shows_history_and_email_slot(
    cast: Cast, acme: Acme, alice_client: Client
) -> None:
    deal = acme.deal("Rocket")
    form = _add_deal_form(acme, title="Bigger rocket", expected_close_date="2026-12-31")

    response = alice_client.post(f"/deals/{deal.pk}", form)

    assert response.status_code == 302
    deal = _reload(cast, deal)
    assert deal.title == "Bigger rocket"
    page = alice_client.get(f"/deals/{deal.pk}").content.decode()
    assert "Change history" in page
    assert "Bigger rocket" in page
    assert 'id="email"' in page
    # The Email tab loads the inbox's fragment of the deal's conversations.
    assert f'hx-get="/items/deal/{deal.pk}/emails"' in page
    assert 'hx-trigger="load"' in page


def test_new_label_inline_is_put_on_the_deal(cast: Cast, acme: Acme, alice_client: Client) -> None:
    deal = acme.deal("Rocket")

    alice_client.post(f"/deals/{deal.pk}/labels/new", {"name": "Hot", "color": "red"})

    with tenancy.bound(cast.company_a.pk):
        assert [label.name for label in _reload(cast, deal).labels.all()] == ["Hot"]


def test_delete_and_restore(cast: Cast, acme: Acme, alice_client: Client) -> None:
    deal = acme.deal("Rocket")

    alice_client.post(f"/deals/{deal.pk}/delete")
    assert _reload(cast, deal).deleted_at is not None
    assert "Restore deal" in alice_client.get(f"/deals/{deal.pk}").content.decode()
    alice_client.post(f"/deals/{deal.pk}/restore")
    assert _reload(cast, deal).deleted_at is None


def test_participants_are_added_and_removed(cast: Cast, acme: Acme, alice_client: Client) -> None:
    deal = acme.deal("Rocket")
    person = acme.person("Wile Coyote")

    alice_client.post(f"/deals/{deal.pk}/participants", {"person_id": person.pk})
    assert "Wile Coyote" in alice_client.get(f"/deals/{deal.pk}").content.decode()
    alice_client.post(f"/deals/{deal.pk}/participants", {"person_id": person.pk, "remove": "1"})

    with tenancy.bound(cast.company_a.pk):
        assert not _reload(cast, deal).participants.exists()


def test_autocomplete_offers_matches_and_a_new_name(acme: Acme, alice_client: Client) -> None:
    acme.person("Wile Coyote")

    found = alice_client.get("/lookup/person?person_name=wile&creates=1").content.decode()
    new = alice_client.get("/lookup/person?person_name=Road Runner&creates=1").content.decode()

    assert "Wile Coyote" in found
    assert "will be created" in found  # "wile" is not an exact match
    assert "Road Runner" in new
    assert "will be created" in new
