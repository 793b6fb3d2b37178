"""Email links (B8) in Chromium: with "Open the CRM's composer" (the default) a person's email
link opens /inbox/compose with the address and the way back; with "Open my computer's mail
app" the link stays a mailto link and the page does not move. Modifier clicks are the
browser's. The mailto parser follows RFC 6068 (several addresses, percent-decoding, headers).

The composer is another page's business: these tests check the address navigated to."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from crm import services
from tests.browser.conftest import SampleItems, sample_items, screenshot, signed_in
from tests.conftest import Cast

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

COMPOSE = re.compile(r"/inbox/compose\?")


def _record_clicks(page: Page) -> None:
    """Listen after the app's own handlers: note whether a click on a mailto link was taken,
    and keep Chromium from handing a mailto link to the (absent) mail app."""
    page.evaluate(
        """() => {
          window.mailtoClicks = [];
          document.addEventListener("click", (event) => {
            const link = event.target.closest('a[href^="mailto:"]');
            if (!link) return;
            window.mailtoClicks.push({taken: event.defaultPrevented, href: link.href});
            event.preventDefault();
          });
        }"""
    )


def _person_page(page: Page, items: SampleItems) -> None:
    page.goto(f"/contacts/persons/{items.person_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Peter Gibbons")


def test_with_the_composer_a_persons_email_link_opens_the_composer(
    page: Page, browser_cast: Cast
) -> None:
    items = sample_items(browser_cast)
    signed_in(page, browser_cast.alice)
    _person_page(page, items)
    link = page.get_by_role("link", name="peter@initech.test")
    expect(link).to_have_attribute("href", "mailto:peter@initech.test")

    link.click()

    page.wait_for_url(COMPOSE)
    query = parse_qs(urlsplit(page.url).query)
    assert urlsplit(page.url).path == "/inbox/compose"
    assert query == {
        "to": ["peter@initech.test"],
        "next": [f"/contacts/persons/{items.person_id}"],
    }


def test_with_the_mail_app_the_link_stays_a_mailto_link(page: Page, browser_cast: Cast) -> None:
    items = sample_items(browser_cast)
    services.user_preferences_update(
        user=browser_cast.alice, timezone="UTC", email_links="mail_app"
    )
    signed_in(page, browser_cast.alice)
    _person_page(page, items)
    _record_clicks(page)
    before = page.url

    page.get_by_role("link", name="peter@initech.test").click()

    page.wait_for_timeout(300)  # time enough for a navigation that must not come
    assert page.url == before
    assert page.evaluate("window.mailtoClicks") == [
        {"taken": False, "href": "mailto:peter@initech.test"}
    ]


def test_a_modifier_click_is_left_to_the_browser(page: Page, browser_cast: Cast) -> None:
    items = sample_items(browser_cast)
    signed_in(page, browser_cast.alice)
    _person_page(page, items)
    _record_clicks(page)
    before = page.url

    page.get_by_role("link", name="peter@initech.test").click(modifiers=["Control"])

    page.wait_for_timeout(300)
    assert page.url == before
    assert page.evaluate("window.mailtoClicks") == [
        {"taken": False, "href": "mailto:peter@initech.test"}
    ]


def test_choosing_the_composer_in_preferences_takes_effect_without_a_reload(
    page: Page, browser_cast: Cast
) -> None:
    """Pages are swapped by htmx, the <body> element stays: its preference follows the pages."""
    sample_items(browser_cast)
    services.user_preferences_update(
        user=browser_cast.alice, timezone="UTC", email_links="mail_app"
    )
    signed_in(page, browser_cast.alice)
    page.evaluate("window.sameDocument = true")  # gone if a page loads from scratch
    page.locator("summary", has_text="Alice Adams").click()
    page.get_by_role("link", name="Preferences").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Preferences")
    screenshot(page, "preferences")
    page.get_by_label("Open the CRM's composer").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your preferences are saved.")).to_be_visible()
    assert page.evaluate("document.body.dataset.emailLinks") == "composer"

    page.get_by_role("link", name="Contacts").first.click()
    page.get_by_role("link", name="Peter Gibbons").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Peter Gibbons")
    assert page.evaluate("window.sameDocument") is True
    page.get_by_role("link", name="peter@initech.test").click()

    page.wait_for_url(COMPOSE)
    assert parse_qs(urlsplit(page.url).query)["to"] == ["peter@initech.test"]


def test_mailto_links_are_read_as_rfc_6068_says(page: Page, browser_cast: Cast) -> None:
    signed_in(page, browser_cast.alice)
    parsed = page.evaluate(
        """() => window.crmMailto.parse(
          "mailto:pat@customer.test,%22Lee%2C%20Sam%22%20%3Csam@customer.test%3E"
          + "?cc=c1@x.test,c2@x.test&CC=c3@x.test&bcc=boss@acme.test&to=more@x.test"
          + "&Subject=Caf%C3%A9%20%26%20more+plus&body=Line%201%0D%0ALine%202%20100%25"
          + "&subject=ignored&in-reply-to=%3C1@x.test%3E&body=ignored"
        )"""
    )
    assert parsed == {
        "to": ["pat@customer.test", '"Lee, Sam" <sam@customer.test>', "more@x.test"],
        "cc": ["c1@x.test", "c2@x.test", "c3@x.test"],
        "bcc": ["boss@acme.test"],
        "subject": "Café & more+plus",
        "body": "Line 1\nLine 2 100%",
    }
    broken = page.evaluate('() => window.crmMailto.parse("mailto:?subject=50%&body=%E0%A4")')
    assert broken == {"to": [], "cc": [], "bcc": [], "subject": "50%", "body": "%E0%A4"}

    url = page.evaluate(
        """() => window.crmMailto.composeUrl(
          window.crmMailto.parse("mailto:a@x.test,b@x.test?cc=c@x.test&subject=Hi%20there"),
          "/inbox/compose"
        )"""
    )
    split = urlsplit(url)
    assert split.path == "/inbox/compose"
    assert parse_qs(split.query) == {
        "to": ["a@x.test, b@x.test"],
        "cc": ["c@x.test"],
        "subject": ["Hi there"],
        "next": ["/"],
    }
