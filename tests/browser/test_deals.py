"""Journeys of the deals pages: create a deal for a brand-new person from the Add deal dialog,
then drag it to the next stage on the board."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from contacts.models import Person
from crm import tenancy
from crm.sales import selectors
from crm.sales.models import Deal, Stage
from tests.browser.conftest import screenshot, signed_in
from tests.conftest import Cast

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _deal(cast: Cast, title: str) -> Deal:
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        return (
            selectors.deal_queryset(company=cast.company_a)
            .select_related("person", "stage")
            .get(title=title)
        )


def _stages(cast: Cast, pipeline_id: int) -> list[Stage]:
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        return list(selectors.stage_list(company=cast.company_a, pipeline_id=pipeline_id))


def test_add_a_deal_for_a_new_person_and_drag_it_to_the_next_stage(
    page: Page, browser_cast: Cast
) -> None:
    signed_in(page, browser_cast.alice)
    page.goto("/deals")
    page.get_by_role("link", name="+ Deal").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Add deal")).to_be_visible()

    # A name that matches nothing: the dialog says the person will be created.
    dialog.get_by_role("combobox", name="Person").fill("Nadia Newcomb")
    expect(dialog.get_by_role("status")).to_contain_text("will be created")
    dialog.get_by_label("Title").fill("Newcomb onboarding")
    dialog.get_by_label("Value").fill("4200")
    screenshot(page, "deal-add-dialog")
    dialog.get_by_role("button", name="Save deal").click()

    # Saved: the deal's page, and the person made with it.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Newcomb onboarding")
    deal = _deal(browser_cast, "Newcomb onboarding")
    assert deal.person is not None
    assert deal.person.name == "Nadia Newcomb"
    with tenancy.bound(browser_cast.company_a.pk, user_id=browser_cast.alice.pk):
        assert (
            Person.objects.for_company(browser_cast.company_a).filter(name="Nadia Newcomb").count()
            == 1
        )

    # The board: drag the card from its stage to the next one.
    stages = _stages(browser_cast, deal.pipeline_id)
    position = [stage.pk for stage in stages].index(deal.stage_id)
    current, following = stages[position], stages[position + 1]
    page.goto("/deals")
    card = page.locator(f"[data-card-id='{deal.pk}']")
    target = page.locator(f"[data-drop-stage='{following.pk}']")
    expect(card).to_be_visible()
    with page.expect_response(re.compile(rf"/deals/{deal.pk}/move")) as moved:
        card.drag_to(target)
    assert moved.value.ok
    expect(target.locator(f"[data-card-id='{deal.pk}']")).to_be_visible()

    # Moved on the server, and still there after a reload.
    assert _deal(browser_cast, "Newcomb onboarding").stage_id == following.pk != current.pk
    page.reload()
    expect(
        page.locator(f"[data-drop-stage='{following.pk}'] [data-card-id='{deal.pk}']")
    ).to_be_visible()
    screenshot(page, "deals-board")
