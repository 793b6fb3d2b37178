"""Settings → Preferences in Chromium: the time-zone select offers the computer's own zone in
one click, and saving keeps it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from crm.models import User
from tests.browser.conftest import TIMEOUT_MS, LiveServer, screenshot, signed_in
from tests.conftest import Cast

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tokyo_page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A browser whose computer says it is in Tokyo."""
    context = browser.new_context(base_url=live_server.url, timezone_id="Asia/Tokyo")
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def test_the_computers_time_zone_is_offered_and_saved(tokyo_page: Page, browser_cast: Cast) -> None:
    page = signed_in(tokyo_page, browser_cast.alice)
    page.goto("/settings/preferences")
    select = page.get_by_label("Time zone")
    expect(select).to_have_value("UTC")
    offer = page.get_by_role("button", name="Use this computer's time zone: Asia/Tokyo")
    screenshot(page, "preferences-time-zone")

    offer.click()

    expect(select).to_have_value("Asia/Tokyo")
    expect(offer).to_be_hidden()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your preferences are saved.")).to_be_visible()
    expect(page.get_by_label("Time zone")).to_have_value("Asia/Tokyo")
    expect(
        page.get_by_role("button", name="Use this computer's time zone: Asia/Tokyo")
    ).to_have_count(0)
    assert User.objects.get(pk=browser_cast.alice.pk).timezone == "Asia/Tokyo"


def test_no_offer_when_the_computers_zone_is_the_one_chosen(page: Page, browser_cast: Cast) -> None:
    """The default browser context runs in UTC, the default choice."""
    signed_in(page, browser_cast.alice)
    page.goto("/settings/preferences")
    expect(page.get_by_label("Time zone")).to_have_value("UTC")
    expect(page.locator("[data-timezone-detect]")).to_be_hidden()
