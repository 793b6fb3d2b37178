"""The outbox against real servers: messages queued as the composer and the API queue them
(`inbox.sending`), delivered by `mailsync.outbox` to the in-process SMTP server (aiosmtpd) of
an account whose mailbox is a real Dovecot, then looked at on both servers and on our side.

Send, reply (threads with the original here and in Dovecot's Sent), forward with files, send
later, undo, a refused recipient (edit and retry), a connection dropped mid-DATA (retried,
delivered once), an answer that never came (uncertain: never resent without the user), a
server that files sent mail itself, STARTTLS with AUTH, RTL and non-ASCII headers through
Dovecot, 26 MB refused on a 25 MB account, spacing, and the sweeper finding what a lost hook
missed. The worker killed between the server's acceptance and our record of it is
test_outbox_killed.py."""

from __future__ import annotations

import email
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import pytest
from django.core.cache import cache

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import tenancy
from crm.sales import services as sales_services
from crm.services import ServiceError
from inbox import mime, sending
from inbox.models import (
    MailAccount,
    MailFolder,
    MailMessage,
    MailMessageLocation,
    MailOutbound,
    MailThread,
    MailThreadMessage,
    OutboundState,
    SentCopyState,
)
from mailsync import outbox, sync, tasks
from mailsync.pipeline.parse import parse_message
from tests.conftest import Cast
from tests.mailsync.conftest import MailUser, connect
from tests.mailsync.dovecot import Dovecot
from tests.mailsync.mail import message
from tests.mailsync.smtpd import SmtpServer

pytestmark = pytest.mark.services

PAT = "pat@customer.test"
PERSIAN = "پیشنهاد قیمت برای پروژه‌ی جدید"


@dataclass
class Rig:
    cast: Cast
    dovecot: Dovecot
    smtp: SmtpServer
    user: MailUser
    account: MailAccount

    @property
    def company_id(self) -> int:
        return self.cast.company_a.pk

    def send(self, *, undo: timedelta = timedelta(0), **fields: Any) -> MailOutbound:
        """What pressing Send does (the composer's undo window is `undo`)."""
        draft = sending.Draft(account_id=self.account.pk, **fields)
        membership = self.cast.membership(self.cast.alice, self.cast.company_a)
        with tenancy.bound(self.company_id, user_id=self.cast.alice.pk):
            return sending.message_send(membership=membership, draft=draft, undo=undo)

    def service(self, name: str, outbound: MailOutbound, **kwargs: Any) -> MailOutbound:
        membership = self.cast.membership(self.cast.alice, self.cast.company_a)
        with tenancy.bound(self.company_id, user_id=self.cast.alice.pk):
            result: MailOutbound = getattr(sending, name)(
                membership=membership, message_id=outbound.message_id, **kwargs
            )
            return result

    def run(self, *, at: datetime | None = None) -> outbox.OutboxOutcome:
        return outbox.account_outbox_run(
            company_id=self.company_id, account_id=self.account.pk, now=at
        )

    def row(self, outbound: MailOutbound) -> MailOutbound:
        with tenancy.bound(self.company_id):
            return MailOutbound.objects.for_company(self.company_id).get(pk=outbound.pk)

    def sync(self) -> None:
        outcome = sync.account_sync(company_id=self.company_id, account_id=self.account.pk)
        assert outcome.error_kind == ""

    def on_server(self, folder: str = "Sent") -> list[tuple[set[str], bytes]]:
        """(flags, bytes) of every message in the folder, as the user's own client sees it."""
        found: list[tuple[set[str], bytes]] = []
        with self.dovecot.session(self.user.username, self.user.password) as client:
            client.select(f'"{folder}"', readonly=True)
            _, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            for item in data:
                if isinstance(item, tuple):
                    flags = item[0].split(b"FLAGS (")[1].split(b")")[0].decode().split()
                    found.append((set(flags) - {"\\Recent"}, item[1]))
        return found

    def stored(self, outbound: MailOutbound) -> MailMessage:
        with tenancy.bound(self.company_id):
            return MailMessage.objects.for_company(self.company_id).get(pk=outbound.message_id)

    def threads(self) -> list[MailThread]:
        with tenancy.bound(self.company_id):
            return list(
                MailThread.objects.for_company(self.company_id)
                .filter(account=self.account)
                .order_by("pk")
            )

    def thread_of(self, message_id: int) -> MailThread:
        with tenancy.bound(self.company_id):
            held = MailThreadMessage.objects.for_company(self.company_id).get(
                account=self.account, message_id=message_id
            )
            return MailThread.objects.for_company(self.company_id).get(pk=held.thread_id)

    def locations(self, message_id: int) -> list[str]:
        with tenancy.bound(self.company_id):
            return sorted(
                MailMessageLocation.objects.for_company(self.company_id)
                .filter(account=self.account, message_id=message_id)
                .values_list("folder__name", flat=True)
            )

    def counts(self) -> tuple[int, int, int]:
        """(messages, locations, threads) of the company: duplicates show here."""
        with tenancy.bound(self.company_id):
            return (
                MailMessage.objects.for_company(self.company_id).count(),
                MailMessageLocation.objects.for_company(self.company_id).count(),
                MailThread.objects.for_company(self.company_id).count(),
            )


@pytest.fixture
def rig(
    cast: Cast,
    dovecot: Dovecot,
    smtp_server: SmtpServer,
    smtp_user: MailUser,
    settings: Any,
) -> Iterator[Rig]:
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
    yield Rig(cast, dovecot, smtp_server, smtp_user, account)
    smtp_server.reset()


def test_a_message_goes_out_once_into_its_conversation_and_into_sent(rig: Rig) -> None:
    outbound = rig.send(
        to=[f"Pat Customer <{PAT}>"],
        bcc=["boss@acme.test"],
        subject="Our offer",
        body_html="<p>Dear Pat,</p><p>see <a href='https://acme.test/offer'>the offer</a>.</p>",
    )
    assert outbound.state == OutboundState.QUEUED

    outcome = rig.run()

    assert (outcome.sent, outcome.failed, outcome.retrying) == (1, 0, 0)
    row = rig.row(outbound)
    assert row.state == OutboundState.SENT
    assert row.server_reply.startswith("250")
    assert row.sent_copy == SentCopyState.SAVED
    assert row.finished_at is not None
    # The server got it once, for each recipient, without the Bcc header.
    delivered = rig.smtp.messages
    assert len(delivered) == 1
    assert sorted(delivered[0].rcpt_tos) == ["boss@acme.test", PAT]
    assert delivered[0].mail_from == rig.account.email_address
    content = bytes(delivered[0].original_content or b"")
    assert b"boss@acme.test" not in content
    parsed = email.message_from_bytes(content, policy=policy.default)
    assert parsed["Subject"] == "Our offer"
    plain = parsed.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().replace("\r\n", "\n").strip() == (
        "Dear Pat,\n\nsee the offer (https://acme.test/offer)."
    )
    # Dovecot's Sent holds our copy, read, with the Bcc the sender chose.
    copies = rig.on_server("Sent")
    assert len(copies) == 1
    flags, raw = copies[0]
    assert "\\Seen" in flags
    assert f"<{rig.stored(outbound).message_id}>".encode() in raw
    assert b"Bcc: boss@acme.test" in raw
    # Our side: the message is in a conversation of the account, located in Sent.
    thread = rig.thread_of(outbound.message_id)
    assert thread.folder_roles == ["sent"]
    assert thread.message_count == 1
    assert rig.locations(outbound.message_id) == ["Sent"]
    before = rig.counts()
    # The next sync finds the copy in Sent: the same message, nothing new.
    rig.sync()
    assert rig.counts() == before
    assert rig.thread_of(outbound.message_id).pk == thread.pk


def test_a_reply_threads_with_the_original_here_and_in_dovecots_sent(rig: Rig, cast: Cast) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        pat = contact_services.person_create(
            company=cast.company_a,
            membership=alice,
            fields={"name": "Pat", "emails": [ContactPoint(PAT)]},
        )
        deal = sales_services.deal_create(
            company=cast.company_a, membership=alice, fields={"title": "Renewal"}
        )
    rig.dovecot.append(
        rig.user.username,
        rig.user.password,
        "INBOX",
        message(1, subject="Price list", to=rig.user.email, message_id="<q1@customer.test>"),
    )
    rig.sync()
    [original_thread] = rig.threads()
    with tenancy.bound(rig.company_id):
        original = MailMessage.objects.for_company(rig.company_id).get(
            message_id="q1@customer.test"
        )

    reply = rig.send(
        to=[PAT],
        body_html="<p>Here it is.</p>",
        reply_to_message_id=original.pk,
        deal_id=deal.pk,
    )
    rig.run()

    assert rig.row(reply).state == OutboundState.SENT
    thread = rig.thread_of(reply.message_id)
    assert thread.pk == original_thread.pk
    assert thread.message_count == 2
    assert sorted(thread.folder_roles) == ["inbox", "sent"]
    assert (thread.deal_id, thread.link_manual) == (deal.pk, True)
    assert thread.person_ids == [pat.pk]
    [(_, copy)] = rig.on_server("Sent")
    parsed = parse_message(copy)
    assert parsed.subject == "Re: Price list"
    assert parsed.in_reply_to == "q1@customer.test"
    assert parsed.references == ("q1@customer.test",)
    before = rig.counts()
    rig.sync()
    assert rig.counts() == before
    assert [t.pk for t in rig.threads()] == [thread.pk]
    assert rig.thread_of(reply.message_id).deal_id == deal.pk  # the rules kept the choice

    # The original deleted on the server: it goes, the reply (and its outbox row) stay.
    with rig.dovecot.session(rig.user.username, rig.user.password) as client:
        client.select('"INBOX"')
        client.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)")
        client.expunge()
    rig.sync()
    with tenancy.bound(rig.company_id):
        assert not MailMessage.objects.for_company(rig.company_id).filter(pk=original.pk).exists()
    assert rig.row(reply).reply_to_message_id is None
    assert rig.thread_of(reply.message_id).message_count == 1


def test_a_forward_carries_the_original_files(rig: Rig, cast: Cast) -> None:
    data = bytes(range(256)) * 40
    rig.dovecot.append(
        rig.user.username,
        rig.user.password,
        "INBOX",
        message(1, subject="Specs", message_id="<s1@customer.test>", attachment=data),
    )
    rig.sync()
    with tenancy.bound(rig.company_id):
        original = MailMessage.objects.for_company(rig.company_id).get(
            message_id="s1@customer.test"
        )
    membership = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(rig.company_id, user_id=cast.alice.pk):
        files = sending.forward_attachments(membership=membership, message_id=original.pk)

    forward = rig.send(
        to=["lee@partner.test"],
        body_html="<p>FYI</p>",
        forward_of_message_id=original.pk,
        attachments=files,
    )
    rig.run()

    assert rig.row(forward).state == OutboundState.SENT
    [content] = rig.smtp.received("lee@partner.test")
    parsed = email.message_from_bytes(content, policy=policy.default)
    assert parsed["Subject"] == "Fwd: Specs"
    [attached] = list(parsed.iter_attachments())
    assert attached.get_filename() == "file.bin"
    assert attached.get_content() == data


def test_send_later_waits_for_its_time_and_undo_cancels_in_the_window(rig: Rig) -> None:
    now = datetime.now(UTC)
    later = rig.send(to=[PAT], subject="Monday", body_text="Hi", send_at=now + timedelta(hours=2))
    undone = rig.send(to=[PAT], subject="Oops", body_text="Hi", undo=sending.UNDO_SEND_WINDOW)
    assert undone.undo_until is not None

    assert rig.run().sent == 0  # the undo window and the chosen time are ahead
    rig.service("outbound_cancel", undone)
    assert rig.run(at=now + timedelta(seconds=11)).sent == 0
    assert rig.row(undone).state == OutboundState.CANCELLED
    with pytest.raises(ServiceError, match="cancelled already"):
        rig.service("outbound_cancel", undone)

    assert rig.run(at=now + timedelta(hours=2, seconds=1)).sent == 1
    assert [p["Subject"] for p in _subjects(rig)] == ["Monday"]
    assert rig.row(later).state == OutboundState.SENT
    with pytest.raises(ServiceError, match="sent already"):
        rig.service("outbound_cancel", later)


def _subjects(rig: Rig) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(bytes(e.original_content or b""), policy=policy.default)
        for e in rig.smtp.messages
    ]


def test_a_refused_recipient_fails_in_plain_words_and_edit_and_retry_sends_it(rig: Rig) -> None:
    rig.smtp.refuse("nobody@customer.test", "550 5.1.1 <nobody@customer.test>: User unknown")
    outbound = rig.send(to=[PAT, "nobody@customer.test"], subject="Hello", body_text="Hi")

    outcome = rig.run()

    row = rig.row(outbound)
    assert (outcome.failed, row.state) == (1, OutboundState.FAILED)
    assert row.failed_recipients == ["nobody@customer.test"]
    assert "refused the recipient nobody@customer.test" in row.last_error
    assert "550 5.1.1" in row.last_error
    assert "nobody was sent the message" in row.last_error
    assert rig.smtp.messages == []  # not even Pat: the whole message waits for the fix
    assert rig.threads() == []

    rig.service(
        "outbound_retry",
        outbound,
        draft=sending.Draft(account_id=rig.account.pk, to=[PAT], subject="Hello", body_text="Hi"),
    )
    assert rig.row(outbound).state == OutboundState.QUEUED
    rig.run()

    row = rig.row(outbound)
    assert (row.state, row.last_error, row.failed_recipients) == (OutboundState.SENT, "", [])
    assert [e.rcpt_tos for e in rig.smtp.messages] == [[PAT]]
    assert rig.stored(outbound).message_id == outbound.message.message_id  # same Message-ID


def test_a_recipient_put_off_for_now_is_retried_later(rig: Rig) -> None:
    rig.smtp.refuse(PAT, "450 4.2.0 <pat@customer.test>: Greylisted, try again")
    outbound = rig.send(to=[PAT], subject="Hello", body_text="Hi")

    assert rig.run().retrying == 1
    row = rig.row(outbound)
    assert (row.state, row.attempts) == (OutboundState.QUEUED, 1)
    assert row.not_before is not None
    assert row.not_before > datetime.now(UTC) + timedelta(seconds=20)  # backoff
    rig.smtp.reset()
    rig.run(at=row.not_before + timedelta(seconds=1))
    assert rig.row(outbound).state == OutboundState.SENT


def test_a_connection_dropped_mid_data_is_retried_and_delivered_once(rig: Rig) -> None:
    rig.smtp.drop_next_data(1)
    big = bytes(range(256)) * (8 * 1024 * 1024 // 256)  # larger than the sockets' buffers
    outbound = rig.send(
        to=[PAT],
        subject="The drawings",
        body_text="Attached.",
        attachments=[mime.Attachment("drawings.bin", "application/octet-stream", big)],
    )

    outcome = rig.run()

    row = rig.row(outbound)
    assert rig.smtp.dropped == 1
    assert (outcome.retrying, row.state, row.attempts) == (1, OutboundState.QUEUED, 1)
    assert "broke off while the message was being handed over" in row.last_error
    assert rig.smtp.messages == []
    assert row.not_before is not None
    rig.run(at=row.not_before + timedelta(seconds=1))

    row = rig.row(outbound)
    assert (row.state, row.attempts) == (OutboundState.SENT, 2)
    assert len(rig.smtp.messages) == 1
    rig.run(at=datetime.now(UTC) + timedelta(hours=1))
    assert len(rig.smtp.messages) == 1


def test_an_answer_that_never_came_is_uncertain_and_never_resent_without_the_user(
    rig: Rig, settings: Any
) -> None:
    settings.CRM_MAIL_TIMEOUT = 1.0
    held = rig.smtp.hold()
    outbound = rig.send(to=[PAT], subject="Contract", body_text="Signed.")
    try:
        outcome = rig.run()
    finally:
        held.release.set()

    assert held.arrived.is_set()
    row = rig.row(outbound)
    assert outcome.uncertain == 1
    assert row.state == OutboundState.UNCERTAIN
    assert row.not_before is None  # looked for in Sent (we save the copy: not there): asked
    assert row.last_error == outbox.UNCERTAIN_ASK
    assert len(rig.smtp.messages) == 1
    for hours in (1, 24):
        rig.run(at=datetime.now(UTC) + timedelta(hours=hours))
    assert len(rig.smtp.messages) == 1
    assert rig.row(outbound).state == OutboundState.UNCERTAIN

    rig.service("outbound_mark_sent", outbound)
    rig.run()
    row = rig.row(outbound)
    assert (row.state, row.sent_copy) == (OutboundState.SENT, SentCopyState.SAVED)
    assert len(rig.smtp.messages) == 1
    assert len(rig.on_server("Sent")) == 1
    assert rig.thread_of(outbound.message_id).message_count == 1


def test_the_user_may_send_an_uncertain_message_again(rig: Rig) -> None:
    outbound = rig.send(to=[PAT], subject="Contract", body_text="Signed.")
    with tenancy.bound(rig.company_id):
        # What a worker lost in the middle of DATA leaves: in flight, the lock gone.
        MailOutbound.objects.for_company(rig.company_id).filter(pk=outbound.pk).update(
            state=OutboundState.SENDING, attempts=1, last_attempt_at=datetime.now(UTC)
        )

    outcome = rig.run()

    assert outcome.uncertain == 1
    assert rig.row(outbound).last_error == outbox.UNCERTAIN_ASK
    rig.service("outbound_send_again", outbound)
    rig.run()
    row = rig.row(outbound)
    assert (row.state, row.attempts) == (OutboundState.SENT, 2)
    assert len(rig.smtp.messages) == 1


def test_a_server_that_files_sent_mail_itself_settles_an_uncertain_message(rig: Rig) -> None:
    with tenancy.bound(rig.company_id):
        MailAccount.objects.for_company(rig.company_id).filter(pk=rig.account.pk).update(
            sent_copy="server"
        )
    outbound = rig.send(to=[PAT], subject="Filed by the server", body_text="Hi")
    raw = mime.transmitted(_raw(rig, outbound))
    # The server took it and filed it in Sent, as Gmail does; the worker died before it
    # heard back: in flight, its lock gone.
    rig.dovecot.append(rig.user.username, rig.user.password, "Sent", raw, flags="\\Seen")
    with tenancy.bound(rig.company_id):
        MailOutbound.objects.for_company(rig.company_id).filter(pk=outbound.pk).update(
            state=OutboundState.SENDING, attempts=1, last_attempt_at=datetime.now(UTC)
        )

    first = rig.run()
    assert (first.uncertain, first.settled) == (1, 0)  # the server's copy may come late
    assert rig.row(outbound).last_error == outbox.UNCERTAIN_CHECKING
    later = rig.run(at=datetime.now(UTC) + outbox.UNCERTAIN_GRACE + timedelta(seconds=1))

    assert later.settled == 1
    row = rig.row(outbound)
    assert (row.state, row.sent_copy) == (OutboundState.SENT, SentCopyState.SAVED)
    assert rig.smtp.messages == []  # never handed over again
    assert len(rig.on_server("Sent")) == 1  # and no copy of ours next to the server's
    assert rig.locations(outbound.message_id) == ["Sent"]
    before = rig.counts()
    rig.sync()
    assert rig.counts() == before


def _raw(rig: Rig, outbound: MailOutbound) -> bytes:
    from inbox import rawstore

    return rawstore.raw_read(rig.stored(outbound).raw_path)


def test_without_uidplus_the_next_sync_finds_the_sent_copy_as_the_same_message(
    cast: Cast,
    dovecot_minimal: Dovecot,
    mail_user_minimal: MailUser,
    smtp_server: SmtpServer,
    settings: Any,
) -> None:
    settings.CRM_MAIL_SEND_INTERVAL = 0
    smtp_server.reset()
    smtp_server.add_user(mail_user_minimal.username, mail_user_minimal.password)
    account = connect(
        cast,
        dovecot_minimal,
        mail_user_minimal,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
    )
    rig = Rig(cast, dovecot_minimal, smtp_server, mail_user_minimal, account)
    outbound = rig.send(to=[PAT], subject="No UIDPLUS", body_text="Hi")

    rig.run()

    assert rig.row(outbound).sent_copy == SentCopyState.SAVED
    assert rig.locations(outbound.message_id) == []  # stored, but where was not said
    assert len(rig.on_server("Sent")) == 1
    rig.sync()
    assert rig.locations(outbound.message_id) == ["Sent"]
    assert rig.counts() == (1, 1, 1)
    smtp_server.reset()


def test_rtl_text_and_non_ascii_headers_round_trip_through_dovecot(rig: Rig) -> None:
    body = f'<p dir="rtl">سلام مریم،</p><p dir="rtl">{PERSIAN}</p>'
    outbound = rig.send(
        to=["مریم رضایی <maryam@customer.test>", "Zoë Ünal <zoe@münchen.test>"],
        subject=f"{PERSIAN} — Zürich",
        body_html=body,
        attachments=[mime.Attachment("قیمت · Résumé.pdf", "application/pdf", b"%PDF-1.4")],
    )
    rig.run()

    [(_, copy)] = rig.on_server("Sent")
    assert copy.isascii()
    parsed = parse_message(copy)
    assert parsed.subject == f"{PERSIAN} — Zürich"
    assert [(p.address, p.name) for p in parsed.participants[1:]] == [
        ("maryam@customer.test", "مریم رضایی"),
        ("zoe@xn--mnchen-3ya.test", "Zoë Ünal"),
    ]
    assert body in parsed.body_html
    assert parsed.body_text.startswith("سلام مریم،")
    assert [a.filename for a in parsed.attachments] == ["قیمت · Résumé.pdf"]
    [content] = rig.smtp.received("zoe@xn--mnchen-3ya.test")
    assert parse_message(content).subject == f"{PERSIAN} — Zürich"
    rig.sync()
    stored = rig.stored(outbound)
    assert stored.subject == f"{PERSIAN} — Zürich"
    assert rig.thread_of(outbound.message_id).subject == f"{PERSIAN} — Zürich"


def test_a_26_mb_file_is_refused_on_a_25_mb_account_before_anything_is_stored(rig: Rig) -> None:
    assert rig.account.send_size_limit == 25 * 1024 * 1024
    file = mime.Attachment("video.mp4", "video/mp4", b"\0" * (26 * 1024 * 1024))

    with pytest.raises(ServiceError) as refused:
        rig.send(to=[PAT], subject="Video", attachments=[file])

    assert refused.value.field == "attachments"
    assert "26 MB" in refused.value.message
    assert "25 MB" in refused.value.message
    with tenancy.bound(rig.company_id):
        assert not MailOutbound.objects.for_company(rig.company_id).exists()
        assert not MailMessage.objects.for_company(rig.company_id).exists()


def test_sign_in_refused_fails_the_due_messages_in_plain_words(rig: Rig) -> None:
    first = rig.send(to=[PAT], subject="One", body_text="1")
    second = rig.send(to=[PAT], subject="Two", body_text="2")
    later = rig.send(
        to=[PAT], subject="Later", body_text="3", send_at=datetime.now(UTC) + timedelta(days=1)
    )
    rig.smtp.add_user(rig.user.username, "changed-on-the-server")
    try:
        outcome = rig.run()
    finally:
        rig.smtp.add_user(rig.user.username, rig.user.password)

    assert outcome.failed == 2
    for outbound in (first, second):
        row = rig.row(outbound)
        assert (row.state, row.error_kind) == (OutboundState.FAILED, "auth")
        assert "refused the username or password" in row.last_error
    assert rig.row(later).state == OutboundState.QUEUED
    rig.service("outbound_retry", first)
    rig.run()
    assert rig.row(first).state == OutboundState.SENT


def test_a_server_that_cannot_be_reached_is_retried_with_backoff(rig: Rig) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed_port = probe.getsockname()[1]
    with tenancy.bound(rig.company_id):
        MailAccount.objects.for_company(rig.company_id).filter(pk=rig.account.pk).update(
            smtp_port=closed_port
        )
    first = rig.send(to=[PAT], subject="One", body_text="1")
    second = rig.send(to=[PAT], subject="Two", body_text="2")

    outcome = rig.run()

    assert (outcome.retrying, outcome.failed, outcome.sent) == (1, 0, 0)
    tried, waiting = rig.row(first), rig.row(second)
    assert (tried.state, tried.attempts) == (OutboundState.QUEUED, 1)
    assert "refused the connection" in tried.last_error
    # The other waits as long, without a try counted against it.
    assert (waiting.state, waiting.attempts) == (OutboundState.QUEUED, 0)
    assert waiting.not_before == tried.not_before
    assert tried.not_before is not None
    assert tried.not_before > datetime.now(UTC) + timedelta(seconds=20)


def test_a_message_refused_after_data_fails_with_the_servers_words(rig: Rig) -> None:
    rig.smtp.handler.data_reply = "554 5.7.1 Message rejected as spam"
    outbound = rig.send(to=[PAT], subject="Win a prize", body_text="!!!")

    rig.run()

    row = rig.row(outbound)
    assert row.state == OutboundState.FAILED
    assert row.last_error == (
        "The mail server refused the message: 554 5.7.1 Message rejected as spam."
    )


def test_sends_of_one_account_are_spaced(rig: Rig, settings: Any) -> None:
    settings.CRM_MAIL_SEND_INTERVAL = 0.25
    for n in range(3):
        rig.send(to=[PAT], subject=f"Spaced {n}", body_text="Hi")

    started = time.monotonic()
    assert rig.run().sent == 3
    elapsed = time.monotonic() - started

    assert elapsed >= 0.5  # two gaps
    assert [m["Subject"] for m in _subjects(rig)] == ["Spaced 0", "Spaced 1", "Spaced 2"]


def test_the_sweeper_finds_what_a_lost_hook_missed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In this test's transaction the hook's after-commit enqueue never runs: as if Redis had
    # lost it. The outbox row is all there is.
    outbound = rig.send(to=[PAT], subject="Not lost", body_text="Hi")
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(
        tasks.company_outbox_run, "apply_async", lambda **kwargs: queued.append(kwargs)
    )

    assert outbox.due_companies(datetime.now(UTC)) == [rig.company_id]
    assert tasks.outbox_due() == 1
    assert tasks.outbox_due() == 0  # queued once until the run starts
    assert queued == [{"kwargs": {"company_id": rig.company_id}, "queue": tasks.SEND_QUEUE}]
    tasks.company_outbox_run(company_id=rig.company_id)

    assert rig.row(outbound).state == OutboundState.SENT
    assert outbox.due_companies(datetime.now(UTC)) == []


def test_the_sweeper_door_answers_for_every_company_and_nothing_else(rig: Rig, cast: Cast) -> None:
    now = datetime.now(UTC)
    rig.send(to=[PAT], subject="Later", body_text="x", send_at=now + timedelta(hours=1))
    assert outbox.due_companies(now) == []
    assert outbox.due_companies(now + timedelta(hours=1, seconds=1)) == [rig.company_id]
    with tenancy.bound(cast.company_b.pk):
        other = MailAccount.objects.create(
            company=cast.company_b,
            owner=cast.carol,
            email_address="carol@globex.test",
            smtp_host="127.0.0.1",
        )
        folder = MailFolder.objects.create(company=cast.company_b, account=other, name="Sent")
        stored = MailMessage.objects.create(
            company=cast.company_b, key="k@globex.test", received_at=now
        )
        MailOutbound.objects.create(
            company=cast.company_b,
            account=other,
            message=stored,
            state=OutboundState.SENDING,
            not_before=now + timedelta(days=1),
            token="t",
        )
    assert folder.pk
    assert outbox.due_companies(now) == [cast.company_b.pk]  # in flight: is its worker alive?


def test_starttls_and_auth_are_used_and_the_certificate_checked(
    cast: Cast,
    dovecot: Dovecot,
    mail_user: MailUser,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.CRM_MAIL_SEND_INTERVAL = 0
    server = SmtpServer(tls=True)
    server.start()
    try:
        server.add_user(mail_user.username, mail_user.password)
        assert server.cert_path is not None
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert_path))
        account = connect(
            cast,
            dovecot,
            mail_user,
            smtp_host="localhost",
            smtp_port=server.port,
            smtp_security="starttls",
        )
        rig = Rig(cast, dovecot, server, mail_user, account)
        outbound = rig.send(to=[PAT], subject="Over TLS", body_text="Hi")
        rig.run()
        assert rig.row(outbound).state == OutboundState.SENT
        assert len(server.messages) == 1

        # A client that does not trust the certificate refuses to go on: nothing is sent.
        monkeypatch.delenv("SSL_CERT_FILE")
        untrusted = rig.send(to=[PAT], subject="Untrusted", body_text="Hi")
        rig.run()
        row = rig.row(untrusted)
        assert row.state == OutboundState.FAILED
        assert "certificate" in row.last_error
        assert len(server.messages) == 1
    finally:
        server.stop()
