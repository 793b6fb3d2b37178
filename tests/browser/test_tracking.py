"""Open and click tracking as the salesperson sees it (E2), in Chromium: a tracked message Alice
sent, opened and clicked by Pat (recorded through `inbox.tracking.events_record`, as the flush
worker does): the bell's count, the eye and cursor in the Sales Inbox's Sent folder, the line
and the timeline in the reader, and the notification leading to the conversation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from crm import tenancy
from inbox import tracking
from inbox.models import MailOutbound
from tests.browser.conftest import screenshot, signed_in
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.inbox.web.test_email_tab import person
from tests.inbox.web.test_tracking_ui import outbound, sent

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _record(row: MailOutbound, *hits: tracking.Hit) -> None:
    with tenancy.bound(row.company_id):
        tracking.events_record(company_id=row.company_id, hits=hits)


def _hit(row: MailOutbound, n: int, kind: str, ago: timedelta, **fields: object) -> tracking.Hit:
    return tracking.Hit(
        event_key=f"browser-{n}",
        outbound_id=row.pk,
        kind=kind,
        occurred_at=datetime.now(UTC) - ago,
        source=str(fields.pop("source", "person")),
        **fields,  # type: ignore[arg-type]
    )


def test_the_bell_the_icons_and_the_timeline(page: Page, browser_cast: Cast) -> None:
    cast = browser_cast
    mailbox = Mailbox(cast)
    account = mailbox.account(cast.alice)
    person(cast)
    row = outbound(sent(mailbox, account, "Quote for Initech"), account, sender=cast.alice)
    _record(
        row,
        _hit(
            row,
            1,
            "open",
            timedelta(hours=5),
            source="machine",
            client="Apple Mail",
            source_detail="Apple Mail Privacy Protection loads every message's images",
        ),
        _hit(row, 2, "open", timedelta(hours=3), client="Gmail", device="desktop"),
        _hit(row, 3, "click", timedelta(hours=2), link_number=1, client="Chrome", device="mobile"),
        _hit(row, 4, "open", timedelta(minutes=30), client="Apple Mail", device="mobile"),
    )

    signed_in(page, cast.alice)
    bell = page.locator("[data-bell]")
    expect(bell).to_have_accessible_name(re.compile("Notifications: 2 unread"))
    expect(bell.locator("[data-bell-count]")).to_have_text("2")

    # The Sent folder: the eye and the cursor on the conversation's row.
    page.goto("/inbox?folder=sent")
    conversation = page.locator(".mailbox-row", has_text="Quote for Initech")
    expect(conversation.get_by_role("img", name="Opened")).to_be_visible()
    expect(conversation.get_by_role("img", name="Link clicked")).to_be_visible()
    screenshot(page, "tracking-sales-inbox-icons")

    # The reader: the line, then the timeline behind its disclosure.
    conversation.get_by_role("link").first.click()
    reader = page.locator("#mailbox-reader")
    tracking_box = reader.locator(".email-tracking")
    expect(tracking_box).to_contain_text(
        "Opened 2 times, last 30 minutes ago · 1 machine open · 1 link click"
    )
    timeline = tracking_box.locator(".email-tracking-timeline")
    expect(timeline).to_be_hidden()
    tracking_box.get_by_text("Timeline: 4 events").click()
    expect(timeline).to_be_visible()
    events = timeline.locator(".tracking-event")
    expect(events).to_have_count(4)
    expect(events.nth(0)).to_contain_text("Apple Mail · phone")
    expect(events.nth(1)).to_contain_text("Clicked link 2")
    expect(events.nth(1)).to_contain_text("https://acme.test/demo")
    expect(events.nth(3)).to_contain_text("Machine open")
    expect(events.nth(3)).to_contain_text("Apple Mail Privacy Protection")
    expect(tracking_box).to_contain_text("It is a hint, not proof.")
    screenshot(page, "tracking-reader-timeline")

    # The bell: the notifications, newest first; one leads to the conversation and is read.
    bell.click()
    expect(page).to_have_url(re.compile(r"/notifications$"))
    items = page.locator(".notification")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("Pat Customer clicked a link in “Quote for Initech”")
    expect(items.nth(1)).to_contain_text("Pat Customer opened “Quote for Initech”")
    screenshot(page, "tracking-notifications")
    items.nth(1).get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/inbox\?folder=sent&thread=\d+"))
    expect(page.locator("#mailbox-reader .email-tracking")).to_be_visible()
    expect(page.locator("[data-bell-count]")).to_have_text("1")

    page.goto("/notifications")
    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator(".notification.is-unread")).to_have_count(0)
    expect(page.locator("[data-bell-count]")).to_have_count(0)
    expect(page.locator("[data-bell]")).to_have_accessible_name("Notifications")


def test_preferences_set_where_the_composers_switches_start(page: Page, browser_cast: Cast) -> None:
    cast = browser_cast
    Mailbox(cast).account(cast.alice)
    signed_in(page, cast.alice)
    page.goto("/settings/preferences")
    opens = page.get_by_label("Track opens by default")
    expect(opens).to_be_checked()
    expect(page.get_by_label("Track link clicks by default")).to_be_checked()
    digest = page.get_by_label("Email me a daily digest of opens and clicks")
    expect(digest).not_to_be_checked()
    opens.uncheck()
    digest.check()
    screenshot(page, "tracking-preferences")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your preferences are saved.")).to_be_visible()
    expect(page.get_by_label("Track opens by default")).not_to_be_checked()
    expect(page.get_by_label("Email me a daily digest of opens and clicks")).to_be_checked()

    # A new email starts from them, the switches beside Send.
    page.goto("/inbox/compose")
    actions = page.locator(".composer-actions")
    expect(actions.get_by_label("Track opens")).not_to_be_checked()
    expect(actions.get_by_label("Track link clicks")).to_be_checked()
    expect(actions.get_by_role("button", name="Send")).to_be_visible()
    screenshot(page, "tracking-composer-switches")
