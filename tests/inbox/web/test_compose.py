"""The composer's pages and endpoints (B4, B5, B6): what it opens with (reply, reply all,
forward, from a deal, a mailto link), autosave, send with undo, send later in the user's time
zone, files within the mailbox's limit, recipient suggestions, and the refusals (400 with the
field, 404 for what the user may not see, never a 500).

Delivery is tested against real servers in tests/mailsync/; the composer's browser journeys in
tests/browser/test_compose.py."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import tenancy
from crm.models import User
from crm.sales import services as sales_services
from crm.sales.models import Deal
from inbox import mime, sending
from inbox.models import (
    DraftState,
    MailAccount,
    MailDraft,
    MailMessage,
    MailOutbound,
    OutboundState,
    Provider,
)
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db

STATE = re.compile(r'<script id="composer-state" type="application/json">(.*?)</script>', re.S)
# A PNG of one pixel.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _state(page: str) -> dict[str, Any]:
    found = STATE.search(page)
    assert found, "the composer's state is on the page"
    loaded: dict[str, Any] = json.loads(found.group(1))
    return loaded


def _value(page: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page)
    assert found, f"the {name} field is on the page"
    return html.unescape(found.group(1))


@pytest.fixture
def account(cast: Cast, mailbox: Mailbox) -> MailAccount:
    """Alice's mailbox, with an outgoing server."""
    account = mailbox.account(cast.alice)
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none"
        )
    account.refresh_from_db()
    return account


def _message(cast: Cast, message_id: str) -> MailMessage:
    with tenancy.bound(cast.company_a.pk):
        return MailMessage.objects.for_company(cast.company_a).get(message_id=message_id)


def _form(account: MailAccount, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "account": account.pk,
        "to": "Pat Customer <pat@customer.test>",
        "subject": "Quote",
        "body_html": "<p>Hello Pat</p>",
    }
    data.update(fields)
    return data


def test_a_reply_opens_to_the_sender_with_re_and_the_quote(
    cast: Cast, client_for, mailbox: Mailbox, account: MailAccount
) -> None:
    mailbox.deliver(
        account,
        "INBOX",
        message(
            1,
            subject="Offer",
            message_id="<o1@customer.test>",
            to="alice@acme.test, Sam <sam@customer.test>",
            body="Can you send the <offer>?",
        ),
    )
    original = _message(cast, "o1@customer.test")
    client: Client = client_for(cast.alice)

    page = client.get(reverse("inbox_compose"), {"reply_to": original.pk}).content.decode()

    assert _value(page, "to") == "Pat Customer <pat@customer.test>"
    assert _value(page, "subject") == "Re: Offer"
    assert _value(page, "reply_to") == str(original.pk)
    assert "wrote:" in page
    assert "Can you send the &lt;offer&gt;?" in page  # quoted, and escaped
    assert "<offer>" not in page

    everyone = client.get(
        reverse("inbox_compose"), {"reply_to": str(original.pk), "reply_all": "1"}
    ).content.decode()
    assert _value(everyone, "to") == "Pat Customer <pat@customer.test>, Sam <sam@customer.test>"
    assert "alice@acme.test" not in _value(everyone, "to")  # never to ourselves


def test_a_forward_opens_with_fwd_and_starts_its_draft_to_carry_the_files(
    cast: Cast, client_for, mailbox: Mailbox, account: MailAccount
) -> None:
    mailbox.deliver(
        account,
        "INBOX",
        message(1, subject="Specs", message_id="<s1@customer.test>", attachment=b"x" * 2000),
    )
    original = _message(cast, "s1@customer.test")
    client: Client = client_for(cast.alice)

    page = client.get(reverse("inbox_compose"), {"forward": original.pk}).content.decode()
    assert _value(page, "subject") == "Fwd: Specs"
    assert "Forwarded message" in page
    assert _state(page)["autostart"] is True

    saved = client.post(
        reverse("inbox_compose_save"),
        _form(account, to="", subject="Fwd: Specs", forward=original.pk),
    )
    assert saved.status_code == 200, saved.content
    files = saved.json()["files"]
    assert [(f["name"], f["size"]) for f in files] == [("file.bin", 2000)]


def test_new_email_from_a_deal_goes_to_its_person_and_links_the_deal(
    cast: Cast, client_for, account: MailAccount
) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        pat = contact_services.person_create(
            company=cast.company_a,
            membership=alice,
            fields={"name": "Pat Ödegaard", "emails": [ContactPoint("pat@customer.test")]},
        )
        deal = sales_services.deal_create(
            company=cast.company_a, membership=alice, fields={"title": "Big", "person_id": pat.pk}
        )

    page = client_for(cast.alice).get(reverse("inbox_compose"), {"deal": deal.pk}).content
    text = page.decode()

    assert _value(text, "to") == "Pat Ödegaard <pat@customer.test>"
    assert _value(text, "deal") == str(deal.pk)
    assert _value(text, "person") == str(pat.pk)

    tab = client_for(cast.alice).get(
        reverse("inbox_item_emails", kwargs={"kind": "deal", "item_id": deal.pk})
    )
    assert f"{reverse('inbox_compose')}?deal={deal.pk}" in tab.content.decode()


def test_a_mailto_link_fills_the_fields_and_escapes_its_body(
    cast: Cast, client_for, account: MailAccount
) -> None:
    page = (
        client_for(cast.alice)
        .get(
            reverse("inbox_compose"),
            {"to": "a@x.test, b@x.test", "cc": "c@x.test", "subject": "Hi", "body": "1 < 2\nbye"},
        )
        .content.decode()
    )
    assert _value(page, "to") == "a@x.test, b@x.test"
    assert _value(page, "cc") == "c@x.test"
    assert _value(page, "subject") == "Hi"
    assert "<p>1 &lt; 2</p><p>bye</p>" in page


def test_what_the_user_may_not_see_is_not_there(
    cast: Cast, client_for, mailbox: Mailbox, account: MailAccount
) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(bobs, "INBOX", message(1, message_id="<b1@customer.test>"))
    secret = _message(cast, "b1@customer.test")

    for params in ({"reply_to": secret.pk}, {"forward": secret.pk}):
        assert client_for(cast.alice).get(reverse("inbox_compose"), params).status_code == 404
        assert client_for(cast.carol).get(reverse("inbox_compose"), params).status_code == 404
    saved = client_for(cast.alice).post(reverse("inbox_compose_save"), _form(account)).json()
    other = client_for(cast.bob).get(reverse("inbox_compose"), {"draft": saved["draft"]})
    assert other.status_code == 404
    assert (
        client_for(cast.carol).get(reverse("inbox_compose"), {"draft": saved["draft"]}).status_code
        == 404
    )
    refused = client_for(cast.bob).post(
        reverse("inbox_compose_save"), _form(account, draft=saved["draft"])
    )
    assert refused.status_code == 400
    assert (
        client_for(cast.alice).post(reverse("inbox_compose_send"), _form(bobs)).status_code == 400
    )


def test_autosave_keeps_one_draft_and_refuses_a_stale_version(
    cast: Cast, client_for, account: MailAccount
) -> None:
    client: Client = client_for(cast.alice)
    first = client.post(reverse("inbox_compose_save"), _form(account, to="pat@cust")).json()
    second = client.post(
        reverse("inbox_compose_save"),
        _form(account, draft=first["draft"], version=first["version"], subject="Quote v2"),
    ).json()

    assert second["draft"] == first["draft"]
    assert second["version"] > first["version"]
    stale = client.post(
        reverse("inbox_compose_save"),
        _form(account, draft=first["draft"], version=first["version"], subject="old tab"),
    )
    assert stale.status_code == 400
    assert "version" in stale.json()["errors"]
    with tenancy.bound(cast.company_a.pk):
        draft = MailDraft.objects.for_company(cast.company_a).get(pk=first["draft"])
    assert draft.subject == "Quote v2"
    assert draft.to == ["Pat Customer <pat@customer.test>"]

    page = client.get(reverse("inbox_compose"), {"draft": draft.pk}).content.decode()
    assert _value(page, "subject") == "Quote v2"


def test_send_queues_with_an_undo_window_and_undo_reopens_the_draft(
    cast: Cast, client_for, account: MailAccount
) -> None:
    client: Client = client_for(cast.alice)

    sent = client.post(reverse("inbox_compose_send"), _form(account, next="/deals/1"))

    assert sent.status_code == 201, sent.content
    answer = sent.json()
    assert answer["next"] == "/deals/1"
    assert answer["undo_until"] is not None
    with tenancy.bound(cast.company_a.pk):
        outbound = MailOutbound.objects.for_company(cast.company_a).get(
            message_id=answer["message"]
        )
    assert outbound.state == OutboundState.QUEUED
    assert outbound.undo_until is not None

    undone = client.post(
        reverse("inbox_compose_undo"), {"message": answer["message"], "draft": answer["draft"]}
    )
    assert undone.status_code == 200, undone.content
    assert undone.json()["redirect"].endswith(f"draft={answer['draft']}")
    with tenancy.bound(cast.company_a.pk):
        outbound.refresh_from_db()
        draft = MailDraft.objects.for_company(cast.company_a).get(pk=answer["draft"])
    assert outbound.state == OutboundState.CANCELLED
    assert draft.state == DraftState.OPEN
    assert draft.subject == "Quote"

    # Too late: once it has gone out, undo says so in words.
    again = client.post(reverse("inbox_compose_send"), _form(account, draft=draft.pk)).json()
    with tenancy.bound(cast.company_a.pk):
        MailOutbound.objects.for_company(cast.company_a).filter(message_id=again["message"]).update(
            state=OutboundState.SENT, sent_at=datetime.now(UTC)
        )
    late = client.post(
        reverse("inbox_compose_undo"), {"message": again["message"], "draft": again["draft"]}
    )
    assert late.status_code == 400
    assert "sent already" in json.dumps(late.json())


def test_send_later_reads_the_time_in_the_users_time_zone(
    cast: Cast, client_for, account: MailAccount
) -> None:
    User.objects.filter(pk=cast.alice.pk).update(timezone="Europe/Amsterdam")
    year = datetime.now(UTC).year + 1

    sent = client_for(cast.alice).post(
        reverse("inbox_compose_send"), _form(account, send_at=f"{year}-01-02T09:00")
    )

    assert sent.status_code == 201, sent.content
    assert sent.json()["scheduled"] == f"Scheduled for {year}-01-02 09:00."
    with tenancy.bound(cast.company_a.pk):
        outbound = MailOutbound.objects.for_company(cast.company_a).get(
            message_id=sent.json()["message"]
        )
    assert outbound.send_at == datetime(year, 1, 2, 8, 0, tzinfo=UTC)  # CET is UTC+1
    assert outbound.undo_until is None


def test_bad_input_gets_field_errors_never_a_500(
    cast: Cast, client_for, account: MailAccount
) -> None:
    client: Client = client_for(cast.alice)
    cases = [
        (_form(account, to="not an address"), "to"),
        (_form(account, to=""), "to"),
        ({**_form(account), "account": ""}, "account"),
        (_form(account, send_at="tomorrow-ish"), "send_at"),
        (_form(account, send_at="2001-01-01T09:00"), "send_at"),
        (_form(account, deal="999999"), "deal_id"),
        (_form(account, template="999999"), "template_id"),
    ]
    for data, field in cases:
        response = client.post(reverse("inbox_compose_send"), data)
        assert response.status_code == 400, (data, response.content)
        assert field in response.json()["errors"], (field, response.json())


def test_files_stay_within_the_mailbox_limit_and_inline_images_show(
    cast: Cast, client_for, mailbox: Mailbox, account: MailAccount
) -> None:
    client: Client = client_for(cast.alice)
    draft = client.post(reverse("inbox_compose_save"), _form(account)).json()["draft"]
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            send_size_limit=1000
        )

    image = client.post(
        reverse("inbox_compose_file_add"),
        {"draft": draft, "inline": "1", "file": SimpleUploadedFile("dot.png", PIXEL, "image/png")},
    )
    assert image.status_code == 201, image.content
    shown = client.get(image.json()["url"])
    assert shown["Content-Type"] == "image/png"
    assert shown["X-Content-Type-Options"] == "nosniff"
    assert image.json()["content_id"]

    too_big = client.post(
        reverse("inbox_compose_file_add"),
        {"draft": draft, "file": SimpleUploadedFile("big.pdf", b"%" * 2000, "application/pdf")},
    )
    assert too_big.status_code == 400
    assert "more than this mailbox accepts" in too_big.json()["errors"]["attachments"][0]

    page = client.post(
        reverse("inbox_compose_file_add"),
        {"draft": draft, "file": SimpleUploadedFile("a.html", b"<script>1</script>", "text/html")},
    )
    assert page.status_code == 201
    download = client.get(page.json()["url"])
    assert download["Content-Type"] == "application/octet-stream"
    assert download["Content-Disposition"].startswith("attachment")
    assert client_for(cast.bob).get(page.json()["url"]).status_code == 404

    removed = client.post(
        reverse("inbox_compose_file_remove", kwargs={"file_id": page.json()["id"]}),
        {"draft": draft},
    )
    assert removed.status_code == 200
    assert client.get(page.json()["url"]).status_code == 404


def test_a_gmail_mailbox_refuses_26_megabytes_before_storing_them(
    cast: Cast, client_for, mailbox: Mailbox, account: MailAccount
) -> None:
    gmail = mailbox.account(cast.alice, email="alice@gmail.test")
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=gmail.pk).update(
            provider=Provider.GMAIL
        )
    client: Client = client_for(cast.alice)
    page = client.get(reverse("inbox_compose"), {"account": gmail.pk}).content.decode()
    assert _state(page)["limits"][str(gmail.pk)] == 25 * 1024 * 1024  # the script checks first
    draft = client.post(reverse("inbox_compose_save"), _form(gmail)).json()["draft"]

    refused = client.post(
        reverse("inbox_compose_file_add"),
        {
            "draft": draft,
            "file": SimpleUploadedFile("video.mp4", b"\0" * (26 * 1024 * 1024), "video/mp4"),
        },
    )

    assert refused.status_code == 400
    assert "26 MB" in refused.json()["errors"]["attachments"][0]
    with tenancy.bound(cast.company_a.pk):
        assert not MailDraft.objects.for_company(cast.company_a).get(pk=draft).files.exists()


def test_recipient_suggestions_come_from_persons_the_user_may_see(
    cast: Cast, client_for, account: MailAccount
) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    carol = cast.membership(cast.carol, cast.company_b)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        contact_services.person_create(
            company=cast.company_a,
            membership=alice,
            fields={
                "name": "Pat Jones",
                "emails": [ContactPoint("pat@customer.test"), ContactPoint("pj@home.test")],
            },
        )
    with tenancy.bound(cast.company_b.pk, user_id=cast.carol.pk):
        contact_services.person_create(
            company=cast.company_b,
            membership=carol,
            fields={"name": "Pat Other", "emails": [ContactPoint("pat@other.test")]},
        )

    found = client_for(cast.alice).get(reverse("inbox_compose_recipients"), {"q": "pat"}).json()
    assert [item["address"] for item in found["results"]] == ["pat@customer.test", "pj@home.test"]
    assert found["results"][0]["text"] == "Pat Jones <pat@customer.test>"
    by_surname = client_for(cast.alice).get(reverse("inbox_compose_recipients"), {"q": "jon"})
    assert len(by_surname.json()["results"]) == 2
    theirs = client_for(cast.carol).get(reverse("inbox_compose_recipients"), {"q": "pat"}).json()
    assert [item["address"] for item in theirs["results"]] == ["pat@other.test"]


def test_discard_drops_the_draft(cast: Cast, client_for, account: MailAccount) -> None:
    client: Client = client_for(cast.alice)
    draft = client.post(reverse("inbox_compose_save"), _form(account)).json()["draft"]

    gone = client.post(reverse("inbox_compose_discard"), {"draft": draft, "next": "/inbox"})

    assert gone.json()["next"] == "/inbox"
    assert client.get(reverse("inbox_compose"), {"draft": draft}).status_code == 404


def test_a_deal_hidden_from_the_user_prefills_nothing(
    cast: Cast, client_for, mailbox: Mailbox, account: MailAccount
) -> None:
    mailbox.account(cast.bob)
    alice = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        pat = contact_services.person_create(
            company=cast.company_a,
            membership=alice,
            fields={"name": "Pat", "emails": [ContactPoint("pat@customer.test")]},
        )
        deal = sales_services.deal_create(
            company=cast.company_a,
            membership=alice,
            fields={"title": "Secret", "person_id": pat.pk, "visible_to": 1},
        )
        assert Deal.objects.for_company(cast.company_a).get(pk=deal.pk).visible_to == 1

    page = client_for(cast.bob).get(reverse("inbox_compose"), {"deal": deal.pk}).content.decode()

    assert _value(page, "deal") == ""
    assert _value(page, "to") == ""
    assert "pat@customer.test" not in page


def test_edit_and_retry_a_failed_message_through_the_composer(
    cast: Cast, client_for, account: MailAccount
) -> None:
    client: Client = client_for(cast.alice)
    first = client.post(reverse("inbox_compose_send"), _form(account, to="typo@customer.tst"))
    failed_id = first.json()["message"]
    with tenancy.bound(cast.company_a.pk):
        MailOutbound.objects.for_company(cast.company_a).filter(message_id=failed_id).update(
            state=OutboundState.FAILED, last_error="550 no such user"
        )

    opened = client.get(reverse("inbox_compose"), {"retry": failed_id, "next": "/inbox/outbox"})

    assert opened.status_code == 302
    assert opened["Location"].endswith(f"draft={first.json()['draft']}&next=%2Finbox%2Foutbox")
    page = client.get(opened["Location"]).content.decode()
    assert _value(page, "to") == "typo@customer.tst"
    fixed = client.post(
        reverse("inbox_compose_send"),
        _form(account, draft=first.json()["draft"], to="pat@customer.test"),
    )
    assert fixed.status_code == 201, fixed.content
    with tenancy.bound(cast.company_a.pk):
        rows = MailOutbound.objects.for_company(cast.company_a)
        assert rows.get(message_id=failed_id).state == OutboundState.CANCELLED
        new = rows.get(message_id=fixed.json()["message"])
    assert new.state == OutboundState.QUEUED
    assert new.envelope_to == ["pat@customer.test"]
    # Someone else's outbox is not there to edit.
    assert (
        client_for(cast.bob).get(reverse("inbox_compose"), {"retry": failed_id}).status_code == 404
    )


def test_a_message_sent_without_the_composer_is_taken_over_by_a_new_draft(
    cast: Cast, client_for, account: MailAccount
) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        outbound = sending.message_send(
            membership=alice,
            draft=sending.Draft(
                account_id=account.pk,
                to=["Pat <pat@customer.test>"],
                cc=["sam@customer.test"],
                subject="Price list",
                body_html="<p>Attached.</p>",
                attachments=[mime.Attachment("prices.pdf", "application/pdf", b"%PDF-1 prices")],
            ),
        )
        sending.outbound_cancel(membership=alice, message_id=outbound.message_id)
    client: Client = client_for(cast.alice)

    opened = client.get(reverse("inbox_compose"), {"retry": outbound.message_id})
    again = client.get(reverse("inbox_compose"), {"retry": outbound.message_id})

    assert opened.status_code == 302
    assert opened["Location"] == again["Location"]  # the same draft, not a second one
    page = client.get(opened["Location"]).content.decode()
    assert _value(page, "to") == "Pat <pat@customer.test>"
    assert _value(page, "cc") == "sam@customer.test"
    assert _value(page, "subject") == "Price list"
    assert "<p>Attached.</p>" in page
    assert "<!DOCTYPE" not in page.split('data-composer-editor dir="auto">')[1][:200]
    assert [(f["name"], f["size"]) for f in _state(page)["files"]] == [("prices.pdf", 13)]
