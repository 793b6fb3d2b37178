"""Drafts as the composer saves them (`inbox.drafts`): start, lenient autosave, two tabs, the
provider's attachment limit before anything is stored, a forward's files, discard, send
through the outbox with files and template, undo, another client's draft continued, and who
may touch a draft (Alice's is hers: Bob and Carol get nothing).

The server copy in the Drafts folder is tests/mailsync/test_drafts_sync.py (real Dovecot)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm import hooks, tenancy
from crm.models import Membership
from crm.services import ServiceError
from inbox import drafts, rawstore
from inbox.drafts import DraftContent
from inbox.models import (
    DraftState,
    MailAccount,
    MailAttachment,
    MailDraft,
    MailDraftFile,
    MailFolder,
    MailMessage,
    MailOutbound,
    MailTemplate,
    OutboundState,
)
from mailsync import tasks
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def alice(cast: Cast) -> Membership:
    return cast.membership(cast.alice, cast.company_a)


@pytest.fixture
def bob(cast: Cast) -> Membership:
    return cast.membership(cast.bob, cast.company_a)


@pytest.fixture
def carol(cast: Cast) -> Membership:
    return cast.membership(cast.carol, cast.company_b)


@pytest.fixture
def account(cast: Cast, mailbox: Mailbox) -> MailAccount:
    """Alice's IMAP mailbox, with an outgoing server."""
    account = mailbox.account(cast.alice)
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none"
        )
    account.refresh_from_db()
    return account


def _account(cast: Cast, provider: str, **fields: Any) -> MailAccount:
    with tenancy.bound(cast.company_a.pk):
        return MailAccount.objects.create(
            company=cast.company_a,
            owner=cast.alice,
            provider=provider,
            email_address=f"alice.{provider}@acme.test",
            **fields,
        )


def call(membership: Membership, service: Callable[..., Any], **kwargs: Any) -> Any:
    with tenancy.bound(membership.company_id, user_id=membership.user_id):
        return service(membership=membership, **kwargs)


def row(cast: Cast, draft: MailDraft) -> MailDraft:
    with tenancy.bound(cast.company_a.pk):
        return MailDraft.objects.for_company(cast.company_a).get(pk=draft.pk)


def files_of(cast: Cast, draft: MailDraft) -> list[MailDraftFile]:
    with tenancy.bound(cast.company_a.pk):
        return list(MailDraftFile.objects.for_company(cast.company_a).filter(draft=draft))


def test_a_draft_starts_on_a_mailbox_the_user_reads(
    cast: Cast, alice: Membership, bob: Membership, account: MailAccount
) -> None:
    before = datetime.now(UTC)
    draft = call(
        alice,
        drafts.draft_start,
        content=DraftContent(account_id=account.pk, to=["pat@customer.test"], subject="Offer"),
    )

    assert draft.state == DraftState.OPEN
    assert draft.version == 1
    assert re.fullmatch(r"[0-9a-f]{32}", draft.token)
    assert draft.created_by_id == cast.alice.pk
    # Written to the server once the user pauses.
    assert draft.remote_due is not None
    assert before + drafts.DEBOUNCE <= draft.remote_due <= datetime.now(UTC) + drafts.DEBOUNCE
    # Bob does not read Alice's personal mailbox.
    with pytest.raises(ServiceError) as refused:
        call(bob, drafts.draft_start, content=DraftContent(account_id=account.pk))
    assert refused.value.field == "account_id"


def test_an_empty_draft_asks_nothing_of_the_server(alice: Membership, account: MailAccount) -> None:
    draft = call(alice, drafts.draft_start, content=DraftContent(account_id=account.pk))

    assert draft.remote_due is None


def test_autosave_keeps_half_typed_addresses_and_counts_versions(
    cast: Cast, alice: Membership, account: MailAccount
) -> None:
    draft = call(alice, drafts.draft_start, content=DraftContent(account_id=account.pk))

    saved = call(
        alice,
        drafts.draft_save,
        draft_id=draft.pk,
        content=DraftContent(
            account_id=account.pk,
            to=["Pat Customer <pat@customer.test>", "sam@", "  "],
            cc=["not an address"],
            subject="Quote\r\nBcc: evil@x.test",
            body_html="<p>Hello</p><script>alert(1)</script>",
        ),
        version=1,
    )

    stored = row(cast, draft)
    assert saved.version == stored.version == 2
    assert stored.to == ["Pat Customer <pat@customer.test>", "sam@"]
    assert stored.cc == ["not an address"]
    assert stored.subject == "Quote Bcc: evil@x.test"  # one line: no header injection
    assert stored.body_html == "<p>Hello</p>"
    assert stored.remote_due is not None
    assert stored.remote_due > datetime.now(UTC) + drafts.DEBOUNCE - timedelta(seconds=5)


def test_a_save_from_an_older_tab_is_refused(
    cast: Cast, alice: Membership, account: MailAccount
) -> None:
    draft = call(alice, drafts.draft_start, content=DraftContent(account_id=account.pk))
    call(
        alice,
        drafts.draft_save,
        draft_id=draft.pk,
        content=DraftContent(account_id=account.pk, subject="From tab one"),
        version=1,
    )

    with pytest.raises(ServiceError) as refused:
        call(
            alice,
            drafts.draft_save,
            draft_id=draft.pk,
            content=DraftContent(account_id=account.pk, subject="From tab two"),
            version=1,
        )

    assert refused.value.field == "version"
    assert row(cast, draft).subject == "From tab one"
    assert row(cast, draft).version == 2


def test_a_26_mb_attachment_is_refused_on_a_gmail_account(cast: Cast, alice: Membership) -> None:
    gmail = _account(cast, "gmail")
    draft = call(alice, drafts.draft_start, content=DraftContent(account_id=gmail.pk))
    data = b"\x00" * (26 * MB)

    with pytest.raises(ServiceError) as refused:
        call(
            alice,
            drafts.draft_file_add,
            draft_id=draft.pk,
            filename="video.mp4",
            content_type="video/mp4",
            data=data,
        )

    assert refused.value.field == "attachments"
    assert refused.value.message == (
        "video.mp4 is 26 MB, more than Gmail accepts in one message (25 MB). Share a link to "
        "it instead."
    )
    assert drafts.attachment_limit(gmail) == 25 * MB
    assert files_of(cast, draft) == []
    with tenancy.bound(cast.company_a.pk):
        assert not rawstore._storage().exists(rawstore.raw_name(cast.company_a.pk, data))


def test_outlook_accounts_take_20_mb_of_files_in_all(cast: Cast, alice: Membership) -> None:
    graph = _account(cast, "graph")
    draft = call(alice, drafts.draft_start, content=DraftContent(account_id=graph.pk))
    first = call(
        alice,
        drafts.draft_file_add,
        draft_id=draft.pk,
        filename="deck.pdf",
        content_type="application/pdf",
        data=b"\x01" * (19 * MB),
    )
    assert first.size == 19 * MB

    with pytest.raises(ServiceError) as refused:
        call(
            alice,
            drafts.draft_file_add,
            draft_id=draft.pk,
            filename="notes.pdf",
            content_type="application/pdf",
            data=b"\x02" * (2 * MB),
        )

    assert refused.value.field == "attachments"
    assert "21 MB" in refused.value.message
    assert "Outlook" in refused.value.message
    assert "(20 MB)" in refused.value.message
    assert drafts.attachment_limit(_account(cast, "ews")) == 20 * MB
    assert [f.filename for f in files_of(cast, draft)] == ["deck.pdf"]


def test_imap_accounts_take_their_configured_limit(
    cast: Cast, alice: Membership, account: MailAccount
) -> None:
    assert drafts.attachment_limit(account) == 25 * MB  # the default
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            send_size_limit=5 * MB
        )
    account.refresh_from_db()
    assert drafts.attachment_limit(account) == 5 * MB
    draft = call(alice, drafts.draft_start, content=DraftContent(account_id=account.pk))

    with pytest.raises(ServiceError) as refused:
        call(
            alice,
            drafts.draft_file_add,
            draft_id=draft.pk,
            filename="big.zip",
            content_type="application/zip",
            data=b"\x00" * (6 * MB),
        )

    assert "more than this mailbox accepts in one message (5 MB)" in refused.value.message


def test_files_and_inline_images_are_stored_with_the_draft(
    cast: Cast, alice: Membership, account: MailAccount
) -> None:
    draft = call(alice, drafts.draft_start, content=DraftContent(account_id=account.pk))

    image = call(
        alice,
        drafts.draft_file_add,
        draft_id=draft.pk,
        filename="C:\\Users\\alice\\logo.png",
        content_type="image/png",
        data=PNG,
        inline=True,
    )
    doc = call(
        alice,
        drafts.draft_file_add,
        draft_id=draft.pk,
        filename="offer.pdf",
        content_type="Application/PDF; name=offer.pdf",
        data=b"%PDF-1.4 offer",
    )

    assert image.filename == "logo.png"
    assert image.inline
    assert re.fullmatch(r"[0-9a-f]{16}@[a-z0-9.-]+", image.content_id)
    assert doc.content_type == "application/pdf"
    assert not doc.inline
    assert doc.content_id == ""
    found, data = call(alice, drafts.draft_file_read, draft_id=draft.pk, file_id=doc.pk)
    assert found.pk == doc.pk
    assert data == b"%PDF-1.4 offer"
    # Only pictures go inline.
    with pytest.raises(ServiceError) as refused:
        call(
            alice,
            drafts.draft_file_add,
            draft_id=draft.pk,
            filename="run.exe",
            content_type="application/octet-stream",
            data=b"MZ",
            inline=True,
        )
    assert refused.value.field == "attachments"

    call(alice, drafts.draft_file_remove, draft_id=draft.pk, file_id=image.pk)
    assert [f.pk for f in files_of(cast, draft)] == [doc.pk]
    # The file change is written to the server too, and does not touch the tabs' version.
    assert row(cast, draft).remote_due is not None
    assert row(cast, draft).version == 1


def test_stored_bytes_go_only_when_nothing_else_holds_them(
    cast: Cast,
    alice: Membership,
    account: MailAccount,
    django_capture_on_commit_callbacks: Any,
) -> None:
    one = call(alice, drafts.draft_start, content=DraftContent(account_id=account.pk))
    two = call(alice, drafts.draft_start, content=DraftContent(account_id=account.pk))
    shared = b"the same bytes in two drafts"
    first = call(
        alice,
        drafts.draft_file_add,
        draft_id=one.pk,
        filename="a.txt",
        content_type="text/plain",
        data=shared,
    )
    second = call(
        alice,
        drafts.draft_file_add,
        draft_id=two.pk,
        filename="b.txt",
        content_type="text/plain",
        data=shared,
    )
    assert first.storage_path == second.storage_path  # content addressed

    with django_capture_on_commit_callbacks(execute=True):
        call(alice, drafts.draft_file_remove, draft_id=one.pk, file_id=first.pk)
    assert rawstore.raw_read(second.storage_path) == shared

    with django_capture_on_commit_callbacks(execute=True), tenancy.bound(cast.company_a.pk):
        drafts.draft_delete(company_id=cast.company_a.pk, draft_id=two.pk)
    with pytest.raises(FileNotFoundError):
        rawstore.raw_read(second.storage_path)
    with tenancy.bound(cast.company_a.pk):
        assert not MailDraft.objects.for_company(cast.company_a).filter(pk=two.pk).exists()


def test_a_forward_starts_with_the_forwarded_files(
    cast: Cast, alice: Membership, mailbox: Mailbox, account: MailAccount
) -> None:
    mailbox.deliver(
        account,
        "INBOX",
        message(1, subject="Contract", message_id="<c1@customer.test>", attachment=b"PK-contract"),
    )
    with tenancy.bound(cast.company_a.pk):
        original = MailMessage.objects.for_company(cast.company_a).get(
            message_id="c1@customer.test"
        )

    draft = call(
        alice,
        drafts.draft_start,
        content=DraftContent(account_id=account.pk, forward_of_message_id=original.pk),
    )

    files = files_of(cast, draft)
    assert [(f.filename, f.size) for f in files] == [("file.bin", len(b"PK-contract"))]
    assert rawstore.raw_read(files[0].storage_path) == b"PK-contract"
    assert draft.forward_of_message_id == original.pk
    assert draft.remote_due is not None


def test_a_message_the_user_cannot_read_cannot_be_answered(
    cast: Cast, bob: Membership, mailbox: Mailbox, account: MailAccount
) -> None:
    mailbox.deliver(account, "INBOX", message(1, message_id="<p1@customer.test>"))
    with tenancy.bound(cast.company_a.pk):
        private = MailMessage.objects.for_company(cast.company_a).get(message_id="p1@customer.test")
    bobs = mailbox.account(cast.bob, email="bob@acme.test")

    with pytest.raises(ServiceError) as refused:
        call(
            bob,
            drafts.draft_start,
            content=DraftContent(account_id=bobs.pk, reply_to_message_id=private.pk),
        )

    assert refused.value.field == "reply_to_message_id"


def test_a_discarded_draft_is_closed_and_its_copy_due_for_removal(
    cast: Cast, alice: Membership, account: MailAccount
) -> None:
    draft = call(
        alice, drafts.draft_start, content=DraftContent(account_id=account.pk, subject="x")
    )

    call(alice, drafts.draft_discard, draft_id=draft.pk)

    stored = row(cast, draft)
    assert stored.state == DraftState.DISCARDED
    assert stored.remote_due is not None
    assert stored.remote_due <= datetime.now(UTC)
    assert list(call(alice, drafts.drafts_open)) == []
    with pytest.raises(ServiceError):
        call(alice, drafts.draft_save, draft_id=draft.pk, content=DraftContent(account.pk))


def test_send_queues_the_message_with_its_files_and_template(
    cast: Cast, alice: Membership, account: MailAccount
) -> None:
    with tenancy.bound(cast.company_a.pk):
        template = MailTemplate.objects.create(
            company=cast.company_a, owner=cast.alice, name="Offer", subject="Our offer"
        )
    content = DraftContent(
        account_id=account.pk,
        to=["Pat Customer <pat@customer.test>"],
        body_html="<p>See the logo <img src='cid:IMAGE'></p>",
        template_id=template.pk,
        track_opens=True,
    )
    draft = call(alice, drafts.draft_start, content=content)
    image = call(
        alice,
        drafts.draft_file_add,
        draft_id=draft.pk,
        filename="logo.png",
        content_type="image/png",
        data=PNG,
        inline=True,
    )
    call(
        alice,
        drafts.draft_file_add,
        draft_id=draft.pk,
        filename="offer.pdf",
        content_type="application/pdf",
        data=b"%PDF offer",
    )
    content = DraftContent(
        account_id=account.pk,
        to=["Pat Customer <pat@customer.test>"],
        body_html=f"<p>See the logo <img src='cid:{image.content_id}'></p>",
        template_id=template.pk,
        track_opens=True,
    )

    outbound = call(
        alice, drafts.draft_send, draft_id=draft.pk, content=content, undo=timedelta(seconds=10)
    )

    assert outbound.state == OutboundState.QUEUED
    assert outbound.envelope_to == ["pat@customer.test"]
    assert outbound.track_opens
    with tenancy.bound(cast.company_a.pk):
        sent = MailMessage.objects.for_company(cast.company_a).get(pk=outbound.message_id)
        attachments = list(
            MailAttachment.objects.for_company(cast.company_a)
            .filter(message=sent)
            .order_by("filename")
            .values_list("filename", "kind", "content_id")
        )
    assert sent.subject == "Our offer"  # the template's, the draft having none
    assert attachments == [("logo.png", "inline", image.content_id), ("offer.pdf", "file", "")]
    raw = rawstore.raw_read(sent.raw_path)
    assert f"Content-ID: <{image.content_id}>".encode() in raw
    stored = row(cast, draft)
    assert stored.state == DraftState.SENT
    assert stored.outbound_id == outbound.pk
    # Its server copy goes once the undo window is over (an undo opens the draft again).
    assert stored.remote_due == outbound.undo_until
    assert list(call(alice, drafts.drafts_open)) == []


def test_a_refused_send_keeps_the_draft_open_with_what_was_typed(
    cast: Cast, alice: Membership, account: MailAccount
) -> None:
    draft = call(alice, drafts.draft_start, content=DraftContent(account_id=account.pk))

    # As the composer's view does: the refusal is answered inside the request's transaction.
    with (
        tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk),
        pytest.raises(ServiceError) as refused,
    ):
        drafts.draft_send(
            membership=alice,
            draft_id=draft.pk,
            content=DraftContent(account_id=account.pk, to=["pat@"], subject="Almost"),
        )

    assert refused.value.field == "to"
    stored = row(cast, draft)
    assert stored.state == DraftState.OPEN
    assert stored.to == ["pat@"]
    assert stored.subject == "Almost"
    with tenancy.bound(cast.company_a.pk):
        assert not MailOutbound.objects.for_company(cast.company_a).exists()


def test_undo_send_opens_the_draft_again(
    cast: Cast, alice: Membership, account: MailAccount
) -> None:
    content = DraftContent(account_id=account.pk, to=["pat@customer.test"], subject="Oops")
    draft = call(alice, drafts.draft_start, content=content)
    outbound = call(alice, drafts.draft_send, draft_id=draft.pk, content=content)

    reopened = call(alice, drafts.draft_unsend, draft_id=draft.pk, message_id=outbound.message_id)

    assert reopened.state == DraftState.OPEN
    assert reopened.outbound_id is None
    with tenancy.bound(cast.company_a.pk):
        assert (
            MailOutbound.objects.for_company(cast.company_a).get(pk=outbound.pk).state
            == OutboundState.CANCELLED
        )
    assert [d.pk for d in call(alice, drafts.drafts_open)] == [draft.pk]


def test_alices_draft_is_hers_alone(
    cast: Cast,
    alice: Membership,
    bob: Membership,
    carol: Membership,
    mailbox: Mailbox,
) -> None:
    # A team mailbox Bob reads too: still, Alice's draft is Alice's.
    team = mailbox.account(cast.alice, kind="team", members=[cast.bob], email="sales@acme.test")
    draft = call(
        alice, drafts.draft_start, content=DraftContent(account_id=team.pk, subject="Mine")
    )
    item = call(
        alice,
        drafts.draft_file_add,
        draft_id=draft.pk,
        filename="a.txt",
        content_type="text/plain",
        data=b"secret",
    )

    for other in (bob, carol):
        assert call(other, drafts.access_draft, draft_id=draft.pk) is None
        assert list(call(other, drafts.drafts_open)) == []
        with pytest.raises(ServiceError):
            call(other, drafts.draft_file_read, draft_id=draft.pk, file_id=item.pk)
        with pytest.raises(ServiceError):
            call(
                other,
                drafts.draft_save,
                draft_id=draft.pk,
                content=DraftContent(account_id=team.pk, subject="Theirs"),
            )
        with pytest.raises(ServiceError):
            call(other, drafts.draft_discard, draft_id=draft.pk)
    assert row(cast, draft).subject == "Mine"
    assert call(alice, drafts.access_draft, draft_id=draft.pk).pk == draft.pk
    assert [d.pk for d in call(alice, drafts.drafts_open, account_id=team.pk)] == [draft.pk]


def test_a_draft_of_a_mailbox_no_longer_read_is_out_of_reach(
    cast: Cast, alice: Membership, bob: Membership, mailbox: Mailbox
) -> None:
    team = mailbox.account(cast.alice, kind="team", members=[cast.bob], email="sales@acme.test")
    draft = call(bob, drafts.draft_start, content=DraftContent(account_id=team.pk))
    with tenancy.bound(cast.company_a.pk):
        team.mailaccountmember_set.all().delete()

    assert call(bob, drafts.access_draft, draft_id=draft.pk) is None
    assert list(call(bob, drafts.drafts_open)) == []


def test_moving_a_draft_to_another_mailbox_leaves_its_old_copy_to_be_removed(
    cast: Cast, alice: Membership, mailbox: Mailbox, account: MailAccount
) -> None:
    other = mailbox.account(cast.alice, email="alice.other@acme.test")
    draft = call(
        alice, drafts.draft_start, content=DraftContent(account_id=account.pk, subject="Hi")
    )
    with tenancy.bound(cast.company_a.pk):
        MailDraft.objects.for_company(cast.company_a).filter(pk=draft.pk).update(
            remote_version=1, remote_uid=7
        )

    call(
        alice,
        drafts.draft_save,
        draft_id=draft.pk,
        content=DraftContent(account_id=other.pk, subject="Hi"),
    )

    moved = row(cast, draft)
    assert moved.account_id == other.pk
    assert moved.token != draft.token
    assert (moved.remote_version, moved.remote_uid) == (0, None)
    with tenancy.bound(cast.company_a.pk):
        stand_in = MailDraft.objects.for_company(cast.company_a).get(token=draft.token)
    assert stand_in.account_id == account.pk
    assert stand_in.state == DraftState.DISCARDED
    assert (stand_in.remote_version, stand_in.remote_uid) == (1, 7)
    assert stand_in.remote_due is not None


def test_opening_a_draft_from_the_drafts_folder(
    cast: Cast, alice: Membership, bob: Membership, mailbox: Mailbox, account: MailAccount
) -> None:
    with tenancy.bound(cast.company_a.pk):
        MailFolder.objects.create(
            company=cast.company_a, account=account, name="Drafts", role="drafts"
        )
    mailbox.deliver(account, "INBOX", message(1, subject="Quote?", message_id="<q1@customer.test>"))
    # Another mail client's draft: a reply with a file.
    mailbox.deliver(
        account,
        "Drafts",
        message(
            2,
            sender=f"Alice <{account.email_address}>",
            to="Pat <pat@customer.test>, sam@customer.test",
            subject="Re: Quote?",
            message_id="<thunderbird-draft@acme.test>",
            references=["<q1@customer.test>"],
            body="Dear Pat,\n\nhere it is.\n",
            attachment=b"quote-bytes",
        ),
        flags=["\\Draft"],
    )
    with tenancy.bound(cast.company_a.pk):
        by_id = dict(
            MailMessage.objects.for_company(cast.company_a).values_list("message_id", "pk")
        )

    continued = call(
        alice, drafts.draft_for_message, message_id=by_id["thunderbird-draft@acme.test"]
    )

    assert continued.source_message_id == by_id["thunderbird-draft@acme.test"]
    assert continued.account_id == account.pk
    assert continued.to == ["Pat <pat@customer.test>", "sam@customer.test"]
    assert continued.subject == "Re: Quote?"
    assert continued.body_html == "<p>Dear Pat,</p><p>here it is.</p>"
    assert continued.reply_to_message_id == by_id["q1@customer.test"]
    assert [(f.filename, f.size) for f in files_of(cast, continued)] == [("file.bin", 11)]
    # Opened again: the same draft.
    again = call(alice, drafts.draft_for_message, message_id=by_id["thunderbird-draft@acme.test"])
    assert again.pk == continued.pk

    # The copy of one of our own drafts opens that draft.
    ours = call(alice, drafts.draft_start, content=DraftContent(account_id=account.pk))
    copy_id = drafts.server_message_id(ours.token, 3)
    mailbox.deliver(account, "Drafts", message(3, message_id=f"<{copy_id}>"), flags=["\\Draft"])
    with tenancy.bound(cast.company_a.pk):
        copy = MailMessage.objects.for_company(cast.company_a).get(message_id=copy_id)
    assert drafts.draft_token(copy.message_id) == ours.token
    assert call(alice, drafts.draft_for_message, message_id=copy.pk).pk == ours.pk

    # A message that is no draft, and a mailbox Bob does not read.
    with pytest.raises(ServiceError) as refused:
        call(alice, drafts.draft_for_message, message_id=by_id["q1@customer.test"])
    assert refused.value.message == "This message is not a draft."
    with pytest.raises(ServiceError):
        call(bob, drafts.draft_for_message, message_id=copy.pk)


def test_the_server_copy_is_the_draft_as_a_message(
    cast: Cast, alice: Membership, mailbox: Mailbox, account: MailAccount
) -> None:
    mailbox.deliver(account, "INBOX", message(1, subject="Quote?", message_id="<q1@customer.test>"))
    with tenancy.bound(cast.company_a.pk):
        original = MailMessage.objects.for_company(cast.company_a).get(
            message_id="q1@customer.test"
        )
    draft = call(
        alice,
        drafts.draft_start,
        content=DraftContent(
            account_id=account.pk,
            to=["Pat <pat@customer.test>", "sam@"],
            subject="Re: Quote?",
            body_html="<p>Soon</p>",
            reply_to_message_id=original.pk,
        ),
    )

    with tenancy.bound(cast.company_a.pk):
        raw = drafts.server_copy(draft=row(cast, draft), date=datetime.now(UTC))

    head = raw.split(b"\r\n\r\n")[0].decode()
    assert f"Message-ID: <{draft.token}.v1.draft@" in head
    assert "To: Pat <pat@customer.test>\r\n" in head  # the half-typed one stays in the draft
    assert "In-Reply-To: <q1@customer.test>" in head
    assert drafts.draft_token(drafts.server_message_id(draft.token, 1)) == draft.token
    assert drafts.draft_token("abc.outbox@acme.test") is None


def test_saves_ask_mailsync_for_the_server_copy_after_commit(
    cast: Cast,
    alice: Membership,
    account: MailAccount,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    events: list[hooks.MailDraftsChanged] = []
    queued: list[dict[str, Any]] = []
    hooks.subscribe(hooks.MAIL_DRAFTS_CHANGED, events.append)
    monkeypatch.setattr(
        tasks.account_drafts_run, "apply_async", lambda **kwargs: queued.append(kwargs)
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            draft = call(
                alice,
                drafts.draft_start,
                content=DraftContent(account_id=account.pk, subject="Hi"),
            )
            assert events == []  # not before the commit
    finally:
        hooks.unsubscribe(hooks.MAIL_DRAFTS_CHANGED, events.append)

    assert events == [
        hooks.MailDraftsChanged(
            company_id=cast.company_a.pk, account_id=account.pk, due=draft.remote_due
        )
    ]
    assert len(queued) == 1
    assert queued[0]["kwargs"] == {"company_id": cast.company_a.pk, "account_id": account.pk}
    assert drafts.DEBOUNCE.total_seconds() <= queued[0]["countdown"] <= 30
