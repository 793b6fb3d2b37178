"""A screenshot of each main page, signed in as Alice with one item of each kind in Acme.

Each page is checked to answer 200 and show its heading before the shot. The import report's
shot is taken by the import journey (tests/browser/test_imports.py), which makes one."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.browser.conftest import sample_items, screenshot, signed_in
from tests.conftest import Cast

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_screenshot_of_each_main_page(page: Page, browser_cast: Cast) -> None:
    items = sample_items(browser_cast)
    signed_in(page, browser_cast.alice)
    shots = [
        ("home", reverse("home"), "Welcome, Alice Adams"),
        ("persons-list", reverse("person_list"), "Persons"),
        ("person-detail", reverse("person_detail", args=[items.person_id]), "Peter Gibbons"),
        ("organizations-list", reverse("organization_list"), "Organizations"),
        (
            "organization-detail",
            reverse("organization_detail", args=[items.organization_id]),
            "Initech",
        ),
        ("deals-board", reverse("deals"), "Deals"),
        ("deal-detail", reverse("deal_detail", args=[items.deal_id]), "Initech TPS licences"),
        ("leads", reverse("leads"), "Leads"),
        ("lead-detail", reverse("lead_detail", args=[items.lead_id]), "Initech printers"),
        ("projects", reverse("projects"), "Projects"),
        ("project-detail", reverse("project_detail", args=[items.project_id]), "Initech roll-out"),
        ("settings", reverse("settings_company"), "Company"),
    ]
    for name, url, heading in shots:
        response = page.goto(url)
        assert response is not None, url
        assert response.ok, (url, response.status)
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        screenshot(page, name)
