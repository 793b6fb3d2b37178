"""Journey of the contacts pages: create an organization from the organizations list, then add
a person to it with the "+" of its people section."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from contacts.models import Organization, Person
from crm import tenancy
from tests.browser.conftest import screenshot, signed_in
from tests.conftest import Cast

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_create_an_organization_and_add_a_person_to_it(page: Page, browser_cast: Cast) -> None:
    signed_in(page, browser_cast.alice)
    page.goto("/contacts/organizations")
    page.get_by_role("link", name="+ Organization").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("Umbrella Corporation")
    dialog.get_by_label("Website").fill("https://umbrella.test")
    screenshot(page, "organization-add-dialog")
    dialog.get_by_role("button", name="Save").click()

    # Saved: the organization's page opens.
    expect(page.get_by_role("heading", level=1)).to_have_text("Umbrella Corporation")
    expect(page).to_have_url(re.compile(r"/contacts/organizations/\d+$"))
    company, alice = browser_cast.company_a, browser_cast.alice
    with tenancy.bound(company.pk, user_id=alice.pk):
        organization = Organization.objects.for_company(company).get(name="Umbrella Corporation")

    # The "+" of the people section adds a person straight into the organization.
    page.get_by_role("link", name="Add a person to Umbrella Corporation").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Organization: Umbrella Corporation")
    dialog.get_by_label("Name").fill("Jill Valentine")
    dialog.get_by_label("Email").fill("jill@umbrella.test")
    dialog.get_by_label("Job title").fill("Security")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()

    page.goto(f"/contacts/organizations/{organization.pk}")
    people = page.get_by_role("region", name="People")
    expect(people.get_by_role("link", name="Jill Valentine")).to_be_visible()
    with tenancy.bound(company.pk, user_id=alice.pk):
        person = Person.objects.for_company(company).get(name="Jill Valentine")
    assert person.organization_id == organization.pk
    screenshot(page, "organization-with-person")
