"""A smart-field template through the real outbox (B6, issue 8's "Checked by"): Alice sends a
template with her deal and its person linked; `mailsync.outbox` delivers it to the in-process
SMTP server (aiosmtpd) and files it in Dovecot's Sent. The bytes the server got carry the
filled values (a non-ASCII name, encoded in the subject header), escaped in the HTML and plain
in the text part; our stored copy is the same message; the conversation is linked to the deal."""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from django.core.cache import cache

from crm import tenancy
from inbox import mailtemplates, sending
from inbox.models import (
    MailAccount,
    MailMessage,
    MailOutbound,
    MailThread,
    MailThreadMessage,
    OutboundState,
)
from mailsync import outbox
from tests.conftest import Cast
from tests.inbox.items import ZOE, Items, make_items
from tests.mailsync.conftest import MailUser, connect
from tests.mailsync.dovecot import Dovecot
from tests.mailsync.smtpd import SmtpServer

pytestmark = pytest.mark.services


@pytest.fixture
def account(
    cast: Cast,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
    smtp_user: MailUser,
    settings: Any,
) -> Iterator[MailAccount]:
    settings.CRM_MAIL_SEND_INTERVAL = 0
    smtp_server.reset()
    account = connect(
        cast,
        dovecot,
        smtp_user,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
        display_name="Alice Adams",
    )
    cache.delete(f"mailsync:outbox:last:{account.pk}")
    yield account
    smtp_server.reset()


def _parts(content: bytes) -> tuple[EmailMessage, str, str]:
    parsed = email.message_from_bytes(content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    html_part = parsed.get_body(("html",))
    text_part = parsed.get_body(("plain",))
    assert html_part is not None
    assert text_part is not None
    return parsed, html_part.get_content(), text_part.get_content()


def test_a_smart_field_template_is_delivered_filled(
    cast: Cast,
    account: MailAccount,
    smtp_server: SmtpServer,
    dovecot: Dovecot,
    smtp_user: MailUser,
) -> None:
    items: Items = make_items(cast)
    alice = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        template = mailtemplates.template_save(
            membership=alice,
            name="Renewal offer",
            subject="{{deal.title}} \u2013 {{organization.name}}",
            body_html=(
                "<p>Dear {{person.first_name}} {{person.last_name}},</p>"
                "<p>{{deal.title}}: <b>{{deal.value}}</b> ({{deal.stage}}).</p>"
                "<p>{{person.job_title}}</p>"
                "<p>{{lead.title}}</p>"
                "<p>Best regards,<br>{{user.name}}, {{company.name}}</p>"
            ),
            folder_id=None,
            shared=True,
        )
        queued = sending.message_send(
            membership=alice,
            draft=sending.Draft(
                account_id=account.pk,
                to=[f"Zoë Müller <{ZOE}>"],
                template_id=template.pk,
                deal_id=items.deal.pk,
                person_id=items.person.pk,
            ),
            undo=timedelta(0),
        )

    outcome = outbox.account_outbox_run(company_id=cast.company_a.pk, account_id=account.pk)

    assert (outcome.sent, outcome.failed, outcome.retrying) == (1, 0, 0)
    [delivered] = smtp_server.messages
    assert delivered.rcpt_tos == [ZOE]
    content = bytes(delivered.original_content or b"")
    assert b"{{" not in content
    head = content.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ")  # unfolded
    [subject_line] = [line for line in head.split(b"\r\n") if line.startswith(b"Subject:")]
    assert subject_line.isascii()
    assert b"=?utf-8?" in subject_line  # "Söhne" and the dash, as encoded words
    parsed, html, text = _parts(content)
    assert parsed["Subject"] == "Renewal <2027> & more \u2013 Müller & Söhne GmbH"
    assert parsed["To"] == f"Zoë Müller <{ZOE}>"
    stage = items.deal.stage.name
    # HTML: the values escaped, the template's own markup as it was.
    assert "<p>Dear Zoë Müller,</p>" in html
    assert f"<p>Renewal &lt;2027&gt; &amp; more: <b>1,500.50 EUR</b> ({stage}).</p>" in html
    assert "<p>Head of &lt;Purchasing&gt;</p>" in html
    assert "<p></p>" in html  # no lead linked: the field is empty
    assert "Best regards,<br>Alice Adams, Acme</p>" in html
    # Plain text: the values as they are.
    assert "Dear Zoë Müller," in text
    assert f"Renewal <2027> & more: 1,500.50 EUR ({stage})." in text
    assert "Head of <Purchasing>" in text

    # What we stored is what was sent, and the conversation is the deal's.
    with tenancy.bound(cast.company_a.pk):
        stored = MailMessage.objects.for_company(cast.company_a).get(pk=queued.message_id)
        held = MailThreadMessage.objects.for_company(cast.company_a).get(
            account=account, message_id=stored.pk
        )
        thread = MailThread.objects.for_company(cast.company_a).get(pk=held.thread_id)
        outbound = MailOutbound.objects.for_company(cast.company_a).get(pk=queued.pk)
    assert outbound.state == OutboundState.SENT
    assert stored.subject == parsed["Subject"]
    assert stored.body_html.replace("\r\n", "\n") == html.replace("\r\n", "\n")
    assert "Renewal <2027> & more: 1,500.50 EUR" in stored.body_text
    assert (thread.deal_id, thread.link_manual) == (items.deal.pk, True)
    assert items.person.pk in thread.person_ids

    # The copy in Dovecot's Sent is the same message.
    with dovecot.session(smtp_user.username, smtp_user.password) as client:
        client.select('"Sent"', readonly=True)
        _, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
    [copy] = [item[1] for item in data if isinstance(item, tuple)]
    sent_copy, sent_html, _ = _parts(copy)
    assert sent_copy["Message-ID"] == parsed["Message-ID"]
    assert sent_html == html
