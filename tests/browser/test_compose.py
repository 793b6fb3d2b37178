"""The composer in Chromium (B4, B5, B6): write from a deal page with a template and smart
fields, preview them, type right to left, attach a file and send, with the undo toast; reply
from the Sales Inbox; a file over the mailbox's limit refused before it uploads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import tenancy
from crm.sales import services as sales_services
from inbox import mailtemplates
from inbox.models import MailAccount, MailAttachment, MailOutbound, OutboundState
from tests.browser.conftest import screenshot, signed_in
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _account(cast: Cast) -> MailAccount:
    account = Mailbox(cast).account(cast.alice)
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none"
        )
    return account


def _outbound(cast: Cast) -> MailOutbound:
    with tenancy.bound(cast.company_a.pk):
        return (
            MailOutbound.objects.for_company(cast.company_a)
            .select_related("message")
            .get(state=OutboundState.QUEUED)
        )


def test_compose_from_a_deal_with_a_template_smart_fields_rtl_and_a_file(
    page: Page, browser_cast: Cast, tmp_path
) -> None:
    cast = browser_cast
    _account(cast)
    alice = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        pat = contact_services.person_create(
            company=cast.company_a,
            membership=alice,
            fields={"name": "Pat Ödegaard", "emails": [ContactPoint("pat@customer.test")]},
        )
        deal = sales_services.deal_create(
            company=cast.company_a,
            membership=alice,
            fields={"title": "Printers for Initech", "person_id": pat.pk},
        )
        mailtemplates.template_save(
            membership=alice,
            name="Introduction",
            subject="About {{deal.title}}",
            body_html="<p>Hello {{person.first_name}},</p><p>{{person.job_title}}</p>",
            folder_id=None,
            shared=True,
        )
    attachment = tmp_path / "price-list.pdf"
    attachment.write_bytes(b"%PDF-1.4 price list")

    signed_in(page, cast.alice)
    page.goto(page.url.rstrip("/") + f"/deals/{deal.pk}")
    page.locator("#email").get_by_role("link", name="New email").click()

    composer = page.locator("[data-composer]")
    expect(composer.get_by_label("To", exact=True)).to_have_value(
        "Pat Ödegaard <pat@customer.test>"
    )
    composer.get_by_role("button", name="Templates").click()
    composer.get_by_role("button", name="Introduction (shared)").click()
    expect(composer.get_by_label("Subject")).to_have_value("About {{deal.title}}")
    editor = composer.locator("[data-composer-editor]")
    expect(editor).to_contain_text("Hello {{person.first_name}},")

    # The preview fills the fields and warns of the one with no value.
    composer.get_by_role("button", name="Preview").click()
    preview = composer.locator("[data-composer-preview-panel]")
    expect(preview).to_contain_text("About Printers for Initech")
    expect(preview).to_contain_text("Hello Pat,")
    expect(preview.locator(".composer-warning")).to_contain_text("{{person.job_title}}")

    # Right to left, as it is typed.
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    page.keyboard.type("سلام دوست من")
    expect(editor.locator('p[dir="rtl"]')).to_have_count(1)
    expect(composer.locator("[data-composer-status]")).to_contain_text("Draft saved")

    composer.locator("[data-composer-files]").set_input_files(str(attachment))
    expect(composer.locator("[data-composer-file-list]")).to_contain_text("price-list.pdf")
    screenshot(page, "composer")

    composer.get_by_role("button", name="Send").click()
    page.wait_for_url(f"**/deals/{deal.pk}")
    expect(page.locator("[data-undo-send]")).to_contain_text("Sending")

    outbound = _outbound(cast)
    sent = outbound.message
    assert sent.subject == "About Printers for Initech"
    assert "Hello Pat," in sent.body_html
    assert 'dir="rtl"' in sent.body_html
    assert "{{" not in sent.body_html
    assert outbound.deal_id == deal.pk
    with tenancy.bound(cast.company_a.pk):
        files = list(
            MailAttachment.objects.for_company(cast.company_a)
            .filter(message=sent)
            .values_list("filename", flat=True)
        )
    assert files == ["price-list.pdf"]

    # Undo from the toast: the message stops and the draft opens again, its smart fields
    # still fields (filled again when it is sent).
    page.locator("[data-undo-send]").get_by_role("button", name="Undo").click()
    page.wait_for_url("**/inbox/compose?draft=*")
    reopened = page.locator("[data-composer]")
    expect(reopened.get_by_label("Subject")).to_have_value("About {{deal.title}}")
    expect(reopened.locator("[data-composer-file-list]")).to_contain_text("price-list.pdf")
    with tenancy.bound(cast.company_a.pk):
        outbound.refresh_from_db()
    assert outbound.state == OutboundState.CANCELLED


def test_reply_from_the_sales_inbox_and_a_file_too_big_is_refused_before_upload(
    page: Page, browser_cast: Cast, tmp_path
) -> None:
    cast = browser_cast
    account = _account(cast)
    Mailbox(cast).deliver(
        account,
        "INBOX",
        message(
            1,
            subject="Printer quote",
            sender="Samir <samir@initech.test>",
            to=account.email_address,
            body="Could you send the quote?",
            date=datetime.now(UTC) - timedelta(hours=1),
        ),
    )
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            send_size_limit=1024
        )
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * 4096)

    signed_in(page, cast.alice)
    page.get_by_role("link", name="Sales Inbox").click()
    page.locator(".mailbox-row", has_text="Printer quote").get_by_role("link").click()
    page.locator("#mailbox-reader").get_by_role("link", name="Reply", exact=True).click()

    composer = page.locator("[data-composer]")
    expect(composer.get_by_label("To", exact=True)).to_have_value("Samir <samir@initech.test>")
    expect(composer.get_by_label("Subject")).to_have_value("Re: Printer quote")
    expect(composer.locator("[data-composer-editor] blockquote")).to_contain_text(
        "Could you send the quote?"
    )

    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if "/compose/files" in r.url else None)
    composer.locator("[data-composer-files]").set_input_files(str(big))
    expect(composer.locator('[data-error-for="attachments"]')).to_contain_text(
        "more than this mailbox accepts"
    )
    assert uploads == []  # refused in the page, before a byte went up

    composer.locator("[data-composer-editor]").click()
    page.keyboard.press("Control+Home")
    page.keyboard.type("Here it is.")
    composer.get_by_role("button", name="Send").click()
    expect(page.locator("[data-undo-send]")).to_contain_text("Sending")
    assert "/compose" not in page.url  # back where the reply started
    outbound = _outbound(cast)
    assert outbound.reply_to_message_id is not None
    assert outbound.message.subject == "Re: Printer quote"
    body = outbound.message.body_html
    assert "<p>Here it is.</p>" in body
    assert body.index("Here it is.") < body.index("wrote:") < body.index("Could you send")
