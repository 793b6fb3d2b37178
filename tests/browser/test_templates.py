"""The template editor in Chromium (B6): write a template with the toolbar (bold, a list, a
quote, a link) and the "Insert field" menu, save it, and find that HTML stored; then set a
signature the same way. A screenshot of the editor lands in test-output/screenshots."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from crm import tenancy
from inbox.models import MailSignature, MailTemplate
from tests.browser.conftest import screenshot, signed_in
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_template_is_written_with_the_toolbar_and_a_smart_field(
    page: Page, browser_cast: Cast
) -> None:
    cast = browser_cast
    signed_in(page, cast.alice)
    page.goto("/inbox")
    page.get_by_role("link", name="Templates", exact=True).click()
    page.get_by_role("link", name="New template").click()

    page.get_by_label("Name").fill("Renewal")
    page.get_by_label("Subject").fill("About {{deal.title}}")
    body = page.get_by_role("textbox", name="Message")
    body.click()
    page.keyboard.type("Dear ")
    page.get_by_label("Insert field").select_option("{{person.first_name}}")
    page.keyboard.type(",")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Bold").click()
    page.keyboard.type("Important")
    page.get_by_role("button", name="Bold").click()
    page.keyboard.type(": read this")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Bulleted list").click()
    page.keyboard.type("first point")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # out of the list
    page.get_by_role("button", name="Quote").click()
    page.keyboard.type("Quoted words")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Quote").click()  # and out of the quote again
    page.keyboard.type("the offer")
    page.keyboard.press("Shift+Home")
    page.once("dialog", lambda dialog: dialog.accept("acme.test/offer"))
    page.get_by_role("button", name="Link").click()
    expect(body.locator("a")).to_have_attribute("href", "https://acme.test/offer")
    expect(body).to_contain_text("Dear {{person.first_name}},")
    screenshot(page, "template-editor")

    page.get_by_role("button", name="Save template").click()

    expect(page.get_by_text("Template saved.")).to_be_visible()
    expect(page.get_by_role("link", name="Renewal")).to_be_visible()
    with tenancy.bound(cast.company_a.pk):
        template = MailTemplate.objects.for_company(cast.company_a).get(name="Renewal")
    html = template.body_html
    assert "Dear {{person.first_name}}," in html
    assert "<b>Important</b>: read this" in html
    assert "<ul><li>first point</li></ul>" in html
    assert "<blockquote>" in html
    assert "Quoted words" in html
    assert '<a href="https://acme.test/offer">the offer</a>' in html
    assert template.subject == "About {{deal.title}}"

    # Opened again, the editor holds the stored HTML.
    page.get_by_role("link", name="Renewal").click()
    expect(page.get_by_role("textbox", name="Message").locator("b")).to_have_text("Important")


def test_a_signature_is_written_in_the_same_editor(page: Page, browser_cast: Cast) -> None:
    cast = browser_cast
    account = Mailbox(cast).account(cast.alice)
    signed_in(page, cast.alice)
    page.goto("/inbox/signatures")

    editor = page.get_by_role("textbox", name="Your signature")
    editor.click()
    page.keyboard.type("Best, ")
    page.get_by_label("Insert field").select_option("{{user.name}}")
    page.get_by_role("button", name="Save my signature").click()

    expect(page.get_by_text("Signature saved.")).to_be_visible()
    with tenancy.bound(cast.company_a.pk):
        signature = MailSignature.objects.for_company(cast.company_a).get(account=account)
    assert signature.body_html == "Best, {{user.name}}"
    assert signature.user_id == cast.alice.pk
