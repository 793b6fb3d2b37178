"""Journeys of the Sales Inbox (B1, B2, B3, B7, B9) in Chromium: read a conversation, archive it
and undo, label and filter, search with operators, open an attachment, and do it all from the
keyboard."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Locator, Page, expect

from crm import tenancy
from inbox.models import MailAccount, MailThread
from tests.browser.conftest import screenshot, signed_in
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

NOW = datetime.now(UTC)


def _fill(cast: Cast) -> MailAccount:
    mailbox = Mailbox(cast)
    account = mailbox.account(cast.alice)
    mails = [
        ("Peter Gibbons <peter@initech.test>", "TPS report covers", "Did you get the memo?", None),
        ("Samir <samir@initech.test>", "Printer quote", "The quote for the printers.", b"%PDF-1"),
        ("Michael <michael@initech.test>", "Lunch on Friday", "Chotchkie's at noon?", None),
    ]
    for n, (sender, subject, body, attachment) in enumerate(mails, start=1):
        mailbox.deliver(
            account,
            "INBOX",
            message(
                n,
                subject=subject,
                sender=sender,
                to=account.email_address,
                body=body,
                attachment=attachment,
                date=NOW - timedelta(days=n),
            ),
        )
    return account


def _thread(cast: Cast, subject: str) -> MailThread:
    with tenancy.bound(cast.company_a.pk):
        return MailThread.objects.for_company(cast.company_a).get(subject=subject)


def _row(page: Page, subject: str) -> Locator:
    return page.locator(".mailbox-row", has_text=subject)


def test_read_archive_undo_label_and_search(page: Page, browser_cast: Cast) -> None:
    cast = browser_cast
    _fill(cast)
    signed_in(page, cast.alice)
    page.get_by_role("link", name="Sales Inbox").click()
    expect(page.locator(".mailbox-row")).to_have_count(3)
    inbox_link = page.locator('[data-folder="inbox"]')
    expect(inbox_link).to_contain_text("3")

    # Read: the conversation opens in the reader, its body in the sandboxed frame.
    _row(page, "TPS report covers").get_by_role("link").click()
    reader = page.locator("#mailbox-reader")
    expect(reader.get_by_role("heading", name="TPS report covers")).to_be_visible()
    expect(
        reader.frame_locator("iframe.email-body").get_by_text("Did you get the memo?")
    ).to_be_visible()
    expect(_row(page, "TPS report covers")).not_to_have_class(re.compile("is-unread"))
    expect(inbox_link).to_contain_text("2")
    screenshot(page, "sales-inbox-reader")

    # Archive from the reader, then undo from the notice.
    reader.get_by_role("button", name="Archive").click()
    expect(page.get_by_text("Conversation archived.")).to_be_visible()
    expect(_row(page, "TPS report covers")).to_have_count(0)
    expect(reader).to_be_empty()
    assert _thread(cast, "TPS report covers").archived
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_text("Undone.")).to_be_visible()
    expect(_row(page, "TPS report covers")).to_have_count(1)
    assert not _thread(cast, "TPS report covers").archived

    # Label: made on the labels page, put on a conversation, then filtered by.
    page.get_by_role("link", name="Manage").click()
    page.get_by_label("Name", exact=True).fill("Hot")
    page.get_by_label("Colour", exact=True).select_option("red")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".label-chip", has_text="Hot")).to_be_visible()
    page.get_by_role("link", name="Sales Inbox").first.click()
    _row(page, "Printer quote").get_by_role("link").click()
    reader.get_by_role("button", name="Hot").click()
    expect(reader.get_by_role("button", name="Hot")).to_have_attribute("aria-pressed", "true")
    expect(_row(page, "Printer quote").locator(".label-chip")).to_have_text("Hot")
    page.locator(".mailbox-labels").get_by_role("link", name="Hot").click()
    expect(page.locator(".mailbox-row")).to_have_count(1)
    expect(_row(page, "Printer quote")).to_be_visible()

    # Search with operators, from the box.
    page.goto("/inbox")
    search = page.get_by_role("searchbox", name="Search mail")
    search.fill("from:samir@initech.test has:attachment")
    search.press("Enter")
    expect(page.locator(".mailbox-row")).to_have_count(1)
    expect(_row(page, "Printer quote")).to_be_visible()
    search = page.get_by_role("searchbox", name="Search mail")
    search.fill("memo")
    search.press("Enter")
    expect(page.locator(".mailbox-row")).to_have_count(1)
    expect(_row(page, "TPS report covers")).to_be_visible()
    screenshot(page, "sales-inbox-search")

    # Save the search as a view; it is there on the next visit.
    page.locator(".mailbox-save-view summary").click()
    page.get_by_label("Name", exact=True).fill("Memos")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".mailbox-views")).to_contain_text("Memos")
    page.goto("/inbox")
    page.locator(".mailbox-views").get_by_role("link", name="Memos").click()
    expect(page.locator(".mailbox-row")).to_have_count(1)


def test_open_an_attachment(page: Page, browser_cast: Cast) -> None:
    cast = browser_cast
    _fill(cast)
    signed_in(page, cast.alice)
    page.goto("/inbox")
    _row(page, "Printer quote").get_by_role("link").click()
    reader = page.locator("#mailbox-reader")
    link = reader.get_by_role("link", name=re.compile("file.bin"))
    with page.expect_download() as download:
        link.click()
    saved = download.value
    assert saved.suggested_filename == "file.bin"
    assert saved.path().read_bytes() == b"%PDF-1"


def test_keyboard_navigation(page: Page, browser_cast: Cast) -> None:
    cast = browser_cast
    _fill(cast)
    signed_in(page, cast.alice)
    page.goto("/inbox")
    rows = page.locator(".mailbox-row")
    expect(rows).to_have_count(3)
    page.locator("body").press("j")
    expect(rows.nth(0)).to_have_class(re.compile("is-selected"))
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile("is-selected"))
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(re.compile("is-selected"))
    page.keyboard.press("j")
    page.keyboard.press("Enter")  # opens "Printer quote", the second newest
    reader = page.locator("#mailbox-reader")
    expect(reader.get_by_role("heading", name="Printer quote")).to_be_visible()
    page.keyboard.press("u")  # back to unread
    expect(page.get_by_text("Marked as unread.")).to_be_visible()
    expect(_row(page, "Printer quote")).to_have_class(re.compile("is-unread"))
    assert _thread(cast, "Printer quote").is_unread
    page.keyboard.press("Escape")
    expect(reader).to_be_empty()
    page.keyboard.press("e")  # archives the selected row
    expect(_row(page, "Printer quote")).to_have_count(0)
    assert _thread(cast, "Printer quote").archived
    page.locator("body").press("j")
    page.keyboard.press("#")
    expect(page.get_by_text("Conversation deleted.")).to_be_visible()
    expect(rows).to_have_count(1)
    page.keyboard.press("/")
    expect(page.get_by_role("searchbox", name="Search mail")).to_be_focused()
