"""A tracked message through the real outbox (`mailsync.outbox`) to aiosmtpd, with its copy in
Dovecot's Sent: the bytes the recipients get carry the pixel and the tracked links; their
plain-text part the real addresses; the Sent copy is the same message without the marks, which
the next sync of Sent recognises by its Message-ID (nothing new stored), and what we show stays
unmarked."""

from __future__ import annotations

import email
from email import policy

import pytest
from django.conf import settings

from crm import tenancy
from inbox import trackmarks
from inbox.models import MailMessage, MailThread
from mailsync import sync
from tests.tracking.conftest import OFFER, PAT, Rig

pytestmark = pytest.mark.services


def html_and_text(raw: bytes) -> tuple[str, str]:
    parsed = email.message_from_bytes(raw, policy=policy.default)
    html_part = parsed.get_body(("html",))
    text_part = parsed.get_body(("plain",))
    assert html_part is not None
    assert text_part is not None
    return str(html_part.get_content()), str(text_part.get_content())


def test_the_delivered_bytes_carry_the_marks_and_the_stored_copy_does_not(rig: Rig) -> None:
    outbound = rig.send(bcc=["boss@acme.test"])

    rig.deliver()

    [delivered] = rig.smtp.messages
    assert sorted(delivered.rcpt_tos) == ["boss@acme.test", PAT]
    html, text = html_and_text(bytes(delivered.original_content or b""))
    base = settings.CRM_TRACKING_URL
    key = trackmarks.tracking_key(settings.SECRET_KEY)
    pixel = trackmarks.pixel_url(base, outbound.token)
    assert html.index("<body>") < html.index(pixel) < html.index("Dear Pat")
    assert f'href="{trackmarks.link_url(base, key, outbound.token, 0)}"' in html
    assert f'href="{trackmarks.link_url(base, key, outbound.token, 1)}"' in html
    assert f"href='{OFFER}'" not in html
    assert f"the offer ({OFFER})" in text
    assert "/t/" not in text

    # The copy filed in Sent is the one without marks: the sender reading it in their own
    # mail app is never an open, and sees the real addresses.
    [copy] = rig.on_server("Sent")
    copy_html = html_and_text(copy)[0]
    assert "/t/" not in copy_html
    assert f'href="{OFFER}"' in copy_html or f"href='{OFFER}'" in copy_html
    assert outbound.message.message_id in copy.decode("ascii", "replace")

    with tenancy.bound(rig.company_id):
        before = (
            MailMessage.objects.for_company(rig.company_id).count(),
            MailThread.objects.for_company(rig.company_id).count(),
        )
    assert sync.account_sync(company_id=rig.company_id, account_id=rig.account.pk).error_kind == ""
    with tenancy.bound(rig.company_id):
        after = (
            MailMessage.objects.for_company(rig.company_id).count(),
            MailThread.objects.for_company(rig.company_id).count(),
        )
        stored = MailMessage.objects.for_company(rig.company_id).get(pk=outbound.message_id)
    assert after == before  # the Sent copy is the same message, by its Message-ID
    assert "/t/" not in stored.body_html
    assert OFFER in stored.body_html
