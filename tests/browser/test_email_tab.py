"""Journey of the Email tab (C3, C4): a person's conversation shows on their page, opens in
place, is linked to a deal through the picker, and then shows on the deal's page too."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import tenancy
from crm.sales import services as sales_services
from inbox.models import MailThread
from tests.browser.conftest import screenshot, signed_in
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_persons_conversation_opens_in_place_and_is_linked_to_a_deal(
    page: Page, browser_cast: Cast
) -> None:
    cast = browser_cast
    membership = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        peter = contact_services.person_create(
            company=cast.company_a,
            membership=membership,
            fields={"name": "Peter Gibbons", "emails": [ContactPoint("peter@initech.test")]},
        )
        # No person on the deal: the automatic rules leave the conversation unlinked.
        deal = sales_services.deal_create(
            company=cast.company_a, membership=membership, fields={"title": "Initech TPS licences"}
        )
    mailbox = Mailbox(cast)
    account = mailbox.account(cast.alice)
    mailbox.deliver(
        account,
        "INBOX",
        message(
            1,
            subject="TPS report covers",
            sender="Peter Gibbons <peter@initech.test>",
            to=account.email_address,
            body="Did you get the memo about the new covers?",
        ),
    )
    with tenancy.bound(cast.company_a.pk):
        thread = MailThread.objects.for_company(cast.company_a).get(subject="TPS report covers")
    assert thread.deal_id is None

    signed_in(page, cast.alice)
    page.goto(f"/contacts/persons/{peter.pk}")
    page.get_by_role("tab", name="Email").click()
    row = page.locator(f'[data-thread-id="{thread.pk}"]')
    expect(page.get_by_text("1 conversation")).to_be_visible()
    expect(row).to_contain_text("Peter Gibbons")

    # Opened in place, under its row: the message in its sandboxed frame, and the links.
    row.get_by_role("button", name="TPS report covers").click()
    conversation = page.locator(f"#thread-{thread.pk}")
    expect(conversation.get_by_role("heading", name="TPS report covers")).to_be_visible()
    expect(row.get_by_role("button", name="TPS report covers")).to_have_attribute(
        "aria-expanded", "true"
    )
    body = conversation.frame_locator("iframe.email-body")
    expect(body.get_by_text("Did you get the memo about the new covers?")).to_be_visible()
    expect(conversation).to_contain_text("Not linked to a deal, lead or project.")
    screenshot(page, "email-tab-conversation")

    # The picker finds the deal by its title; choosing it links the conversation at once.
    conversation.get_by_label("Link to a deal, lead or project").fill("TPS")
    conversation.get_by_role("button", name=re.compile("Initech TPS licences")).click()
    chip = page.locator(f"#thread-{thread.pk}").get_by_role(
        "link", name="Deal: Initech TPS licences"
    )
    expect(chip).to_be_visible()
    # The row in the list follows, without a reload.
    expect(row.locator(".email-thread-tags")).to_contain_text("Deal: Initech TPS licences")
    with tenancy.bound(cast.company_a.pk):
        thread = MailThread.objects.for_company(cast.company_a).get(pk=thread.pk)
    assert (thread.deal_id, thread.link_manual) == (deal.pk, True)
    screenshot(page, "email-tab-linked")

    # Close folds it again.
    page.locator(f"#thread-{thread.pk}").get_by_role("button", name="Close").click()
    expect(page.locator(f"#thread-{thread.pk}")).to_have_count(0)

    # The deal's page: its Email tab shows the conversation.
    chip = row.get_by_role("link", name="Deal: Initech TPS licences")
    chip.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Initech TPS licences")
    deal_row = page.locator(f'#email [data-thread-id="{thread.pk}"]')
    expect(deal_row).to_contain_text("TPS report covers")
    screenshot(page, "deal-email-tab")
