"""The XSS test set through the whole path: each hostile message of tests/fixtures/xss/ is
APPENDed into a real Dovecot mailbox, synced, and read back from the web endpoints as a reader
would: the body frame (its headers, and nothing executable or remote in it, with remote images
blocked and then allowed), the conversation view (markup in headers and names shown as text),
and the files (downloads with inert headers; inline images raster only)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import tenancy
from inbox.bodies import BODY_HEADERS, FRAME_HEAD
from inbox.models import MailAccount, MailAttachment, MailMessage, MailThread
from mailsync import sync
from tests.conftest import Cast
from tests.inbox.test_sanitize import assert_inert, xss_fixtures
from tests.mailsync.conftest import MailUser, connect
from tests.mailsync.dovecot import Dovecot

pytestmark = pytest.mark.services

HTMX = {"HX-Request": "true"}
OURS = ("/mail/attachments/", "/mail/image-proxy?")


@pytest.fixture
def synced(cast: Cast, dovecot: Dovecot, mail_user: MailUser) -> MailAccount:
    """Every message of the set in the Dovecot INBOX, synced into Alice's account, on the page
    of the person Mallory (the sender)."""
    now = datetime.now(UTC)
    for path in xss_fixtures():
        dovecot.append(mail_user.username, mail_user.password, "INBOX", path.read_bytes(), date=now)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        contact_services.person_create(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            fields=contact_services.PersonFields(
                name="Mallory Sender", emails=[ContactPoint("mallory@evil.test")]
            ),
        )
    account = connect(cast, dovecot, mail_user)
    outcome = sync.account_sync(company_id=cast.company_a.pk, account_id=account.pk)
    assert outcome.stored == len(xss_fixtures())
    return account


@pytest.fixture
def alice(cast: Cast, client_for: Any) -> Client:
    client: Client = client_for(cast.alice)
    return client


def messages(cast: Cast) -> dict[str, MailMessage]:
    """Stored message by fixture number ("01" … "12"), from its Message-ID."""
    with tenancy.bound(cast.company_a.pk):
        return {
            message.message_id[4:6]: message
            for message in MailMessage.objects.for_company(cast.company_a)
        }


def body(client: Client, message: MailMessage) -> str:
    response = client.get(f"/mail/messages/{message.pk}/body")
    assert response.status_code == 200
    for header, value in BODY_HEADERS.items():
        assert response[header] == value, header
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    html = response.content.decode()
    assert html.startswith(FRAME_HEAD)  # our own base style; the message follows
    return html[len(FRAME_HEAD) :]


def test_every_synced_body_is_served_inert_with_images_blocked_then_allowed(
    cast: Cast, synced: MailAccount, alice: Client
) -> None:
    stored = messages(cast)
    assert sorted(stored) == [f"{n:02d}" for n in range(1, 13)]

    for number, message in sorted(stored.items()):
        html = body(alice, message)
        assert_inert(html, own_image_urls=OURS)
        assert "/mail/image-proxy" not in html, number  # nothing remote before the choice
        assert "tracker.example" not in re.sub(r'data-remote-src="[^"]*"', "", html), number

    # Alice chooses to see Mallory's images: every remote image goes through our proxy.
    choice = alice.post(f"/mail/messages/{stored['10'].pk}/images", {"scope": "sender"})
    assert choice.status_code == 303
    for number, message in sorted(stored.items()):
        html = body(alice, message)
        assert_inert(html, own_image_urls=OURS)
        assert "data-remote-src" not in html, number
    proxied = re.findall(r'<img[^>]* src="(/mail/image-proxy\?[^"]*)"', body(alice, stored["10"]))
    assert len(proxied) == 6


def test_a_text_body_is_escaped_and_markup_in_headers_stays_text(
    cast: Cast, synced: MailAccount, alice: Client
) -> None:
    stored = messages(cast)
    text = body(alice, stored["11"])
    assert '<pre style="white-space: pre-wrap">A text-only message.' in text
    assert "&lt;script&gt;alert(&#x27;text body&#x27;)&lt;/script&gt;" in text
    with tenancy.bound(cast.company_a.pk):
        thread = MailThread.objects.for_company(cast.company_a).get(
            account=synced, subject__startswith="XSS 11"
        )

    page = alice.get(f"/mail/threads/{thread.pk}", headers=HTMX).content.decode()

    assert "<img src=x" not in page
    assert "<script>alert(&#x27;from" not in page
    assert "&lt;img src=x onerror=alert(&#x27;subject&#x27;)&gt;" in page
    assert "Mallory Sender &lt;mallory@evil.test&gt;" in page  # the person's name, not the From's


def test_the_synced_files_download_inert_and_only_raster_parts_show_inline(
    cast: Cast, synced: MailAccount, alice: Client
) -> None:
    stored = messages(cast)
    with tenancy.bound(cast.company_a.pk):
        files = {
            attachment.filename: attachment
            for attachment in MailAttachment.objects.for_company(cast.company_a).filter(
                message=stored["12"]
            )
        }
    assert set(files) >= {"logo.png", "vector.svg", "invoice.html", "drawing.svg"}

    for name in ("invoice.html", "drawing.svg"):
        response = alice.get(f"/mail/attachments/{files[name].pk}")
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith(f'attachment; filename="{name}"')
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
        assert b"alert(" in response.content  # the file as sent: it is only ever downloaded

    html = body(alice, stored["12"])
    inline = re.findall(r'<img[^>]* src="([^"]*)"', html)
    assert len(inline) == 1
    assert inline[0].startswith(f"/mail/attachments/{files['logo.png'].pk}/inline?")
    image = Client().get(inline[0].replace("&amp;", "&"))  # the frame sends no cookie
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
