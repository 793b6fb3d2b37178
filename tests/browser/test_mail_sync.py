"""Journey of Settings → Email sync: connect an IMAP account through the form (a wrong password
first), watch its first sync finish, and choose the folders it syncs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from crm import tenancy
from inbox.models import MailFolder, MailMessage
from tests.browser.conftest import screenshot, signed_in
from tests.conftest import Cast
from tests.mailsync.conftest import MailUser, dovecot, mail_user  # noqa: F401 - fixtures
from tests.mailsync.dovecot import Dovecot
from tests.mailsync.mail import message

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_connect_an_imap_account_and_choose_what_syncs(
    page: Page,
    browser_cast: Cast,
    dovecot: Dovecot,  # noqa: F811 - the imported fixture
    mail_user: MailUser,  # noqa: F811
    eager_celery: None,
) -> None:
    u = mail_user
    for n in range(1, 6):
        dovecot.append(u.username, u.password, "INBOX", message(n))
    dovecot.create_folder(u.username, u.password, "Projects")
    dovecot.append(u.username, u.password, "Projects", message(9, subject="Project plan"))

    signed_in(page, browser_cast.alice)
    page.goto("/settings/email-sync")
    page.get_by_role("link", name="+ Add account").click()
    page.get_by_label("Email address").fill(u.email)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("IMAP server").fill(dovecot.host)
    page.get_by_label("IMAP port").fill(str(dovecot.port))
    page.get_by_label("IMAP security").select_option("none")
    page.get_by_label("SMTP server").fill("")
    page.get_by_label("Username").fill(u.username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Connect").click()

    # Refused: said in plain words, the password field empty again, nothing saved.
    expect(page.get_by_role("alert")).to_contain_text("username or password")
    expect(page.get_by_label("Password")).to_have_value("")
    screenshot(page, "mail-account-add-refused")

    page.get_by_label("Password").fill(u.password)
    page.get_by_role("button", name="Connect").click()

    # Connected: the account's page; the first sync ran (Celery runs inline in these tests).
    expect(page).to_have_url(re.compile(r"/settings/email-sync/\d+$"))
    page.reload()
    expect(page.get_by_text(re.compile("Last synced"))).to_be_visible()
    with tenancy.bound(browser_cast.company_a.pk):
        assert MailMessage.objects.for_company(browser_cast.company_a).count() == 6
    screenshot(page, "mail-account")

    # Only the Projects folder from now on: the inbox's mail goes at the next pass.
    page.get_by_label("Selected folders").check()
    expect(page.get_by_label("INBOX", exact=True)).not_to_be_checked()
    page.get_by_label("Projects", exact=True).check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved. The next sync follows the new settings.")).to_be_visible()
    with tenancy.bound(browser_cast.company_a.pk):
        selected = MailFolder.objects.for_company(browser_cast.company_a).filter(selected=True)
        assert list(selected.values_list("name", flat=True)) == ["Projects"]
        assert MailMessage.objects.for_company(browser_cast.company_a).count() == 1
    page.goto("/settings/email-sync")
    expect(page.get_by_role("link", name=u.email)).to_be_visible()
    screenshot(page, "mail-accounts")
