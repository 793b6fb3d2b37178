"""Journey: sign in through the form, see the home page, sign out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot, signed_in
from tests.conftest import Cast

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_sign_in_see_home_and_sign_out(page: Page, browser_cast: Cast) -> None:
    signed_in(page, browser_cast.alice)
    expect(page.get_by_role("heading", name="Welcome, Alice Adams")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    screenshot(page, "home")

    page.locator("summary", has_text="Alice Adams").click()
    # Wait for the sign-out to finish: the live server is threaded, and a request sent
    # meanwhile would race it for the session row.
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    # Signed out: the home page sends us back to the sign-in form.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_wrong_password_is_refused(page: Page, browser_cast: Cast) -> None:
    page.goto("/login")
    page.get_by_label(re.compile("email", re.IGNORECASE)).fill(browser_cast.bob.email)
    page.get_by_label(re.compile("password", re.IGNORECASE)).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong")
