"""Drafts' copies in a real Dovecot's Drafts folder (`mailsync.drafts`), as the composer saves
them (`inbox.drafts`): written with \\Draft after the autosave pause, replaced (never doubled)
on the next save, removed when sent or discarded (and the row with them), another client's
draft replaced by ours, a server without UIDPLUS, a mailbox without a Drafts folder, a sign-in
refused, and a connection cut at every point of a write: one copy remains, the latest.

Then the sync of Drafts: our copy comes in as an ordinary message, once, and the old one's
location goes when it is replaced."""

from __future__ import annotations

import email
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import pytest
from django.db import connection

from crm import encryption, tenancy
from crm.models import Membership
from inbox import drafts, rawstore
from inbox.drafts import DraftContent
from inbox.models import (
    DraftState,
    MailAccount,
    MailDraft,
    MailDraftFile,
    MailFolder,
    MailMessage,
    MailMessageLocation,
)
from mailsync import drafts as draft_sync
from mailsync import sync, tasks
from tests.conftest import Cast, service_missing
from tests.mailsync.conftest import MailUser, connect
from tests.mailsync.dovecot import SPECIAL_USE, CutProxy, Dovecot, is_available
from tests.mailsync.mail import message

pytestmark = pytest.mark.services

LATER = timedelta(hours=1)  # past the debounce and any backoff


@dataclass
class Copy:
    uid: int
    flags: set[str]
    raw: bytes

    @property
    def parsed(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=policy.default)

    @property
    def message_id(self) -> str:
        return str(self.parsed["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.parsed["Subject"])


@dataclass
class Rig:
    cast: Cast
    dovecot: Dovecot
    user: MailUser
    account: MailAccount
    membership: Membership = field(init=False)

    def __post_init__(self) -> None:
        self.membership = self.cast.membership(self.cast.alice, self.cast.company_a)

    @property
    def company_id(self) -> int:
        return self.cast.company_a.pk

    def call(self, service: Any, **kwargs: Any) -> Any:
        with tenancy.bound(self.company_id, user_id=self.cast.alice.pk):
            return service(membership=self.membership, **kwargs)

    def start(self, **fields: Any) -> MailDraft:
        content = DraftContent(account_id=self.account.pk, **fields)
        draft: MailDraft = self.call(drafts.draft_start, content=content)
        return draft

    def save(self, draft: MailDraft, **fields: Any) -> MailDraft:
        content = DraftContent(account_id=self.account.pk, **fields)
        saved: MailDraft = self.call(drafts.draft_save, draft_id=draft.pk, content=content)
        return saved

    def run(self, *, at: datetime | None = None) -> draft_sync.DraftsOutcome:
        return draft_sync.account_drafts_run(
            company_id=self.company_id,
            account_id=self.account.pk,
            now=at or datetime.now(UTC) + LATER,
        )

    def row(self, draft: MailDraft) -> MailDraft | None:
        with tenancy.bound(self.company_id):
            return (
                MailDraft.objects.for_company(self.company_id)
                .filter(pk=draft.pk)
                .select_related("remote_folder")
                .first()
            )

    def on_server(self, folder: str = "Drafts") -> list[Copy]:
        """The folder's messages as the user's own mail client sees them (expunged ones gone)."""
        found: list[Copy] = []
        with self.dovecot.session(self.user.username, self.user.password) as client:
            client.select(f'"{folder}"', readonly=True)
            _, data = client.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            for item in data:
                if isinstance(item, tuple):
                    head = item[0]
                    uid = int(head.split(b"UID ")[1].split()[0])
                    flags = head.split(b"FLAGS (")[1].split(b")")[0].decode().split()
                    found.append(Copy(uid, set(flags) - {"\\Recent"}, item[1]))
        return found

    def sync(self) -> None:
        outcome = sync.account_sync(company_id=self.company_id, account_id=self.account.pk)
        assert outcome.error_kind == ""

    def drafts_folder_messages(self) -> list[MailMessage]:
        """What the Sales Inbox's Drafts folder holds for the account."""
        with tenancy.bound(self.company_id):
            ids = MailMessageLocation.objects.for_company(self.company_id).filter(
                account=self.account, folder__role="drafts"
            )
            return list(
                MailMessage.objects.for_company(self.company_id)
                .filter(pk__in=ids.values("message_id"))
                .order_by("pk")
            )

    def constraints_hold(self) -> None:
        """Deferred foreign keys checked now (the test's transaction never commits)."""
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _rig(cast: Cast, server: Dovecot, user: MailUser, **extra: Any) -> Rig:
    account = connect(cast, server, user, **extra)
    # An outgoing server to queue mail for (nothing is delivered here: the outbox is not run).
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none"
        )
    account.refresh_from_db()
    return Rig(cast, server, user, account)


@pytest.fixture
def rig(cast: Cast, dovecot: Dovecot, mail_user: MailUser) -> Rig:
    return _rig(cast, dovecot, mail_user, display_name="Alice Adams")


def test_a_saved_draft_is_stored_in_drafts_with_the_draft_flag(rig: Rig) -> None:
    draft = rig.start(to=["Pat <pat@customer.test>", "sam@"], subject="Our offer")
    draft = rig.save(
        draft,
        to=["Pat <pat@customer.test>", "sam@"],
        subject="Our offer",
        body_html="<p>Dear Pat, the offer.</p>",
    )

    # Not while the user is still typing.
    assert rig.run(at=datetime.now(UTC)).written == 0
    assert rig.on_server() == []

    outcome = rig.run()

    assert outcome.written == 1
    copies = rig.on_server()
    assert len(copies) == 1
    copy = copies[0]
    assert copy.flags == {"\\Draft", "\\Seen"}
    assert copy.message_id == f"<{drafts.server_message_id(draft.token, 2)}>"
    assert copy.subject == "Our offer"
    assert str(copy.parsed["To"]) == "Pat <pat@customer.test>"
    assert str(copy.parsed["From"]) == f"Alice Adams <{rig.account.email_address}>"
    stored = rig.row(draft)
    assert stored is not None
    assert stored.remote_due is None
    assert stored.remote_version == 2
    assert stored.remote_uid == copy.uid
    assert stored.remote_folder is not None
    assert stored.remote_folder.name == "Drafts"
    assert (stored.remote_tries, stored.remote_error) == (0, "")
    assert stored.to == ["Pat <pat@customer.test>", "sam@"]  # the draft keeps what was typed


def test_saving_again_leaves_exactly_one_copy_with_the_new_content(rig: Rig) -> None:
    draft = rig.start(subject="First", body_html="<p>one</p>")
    rig.run()
    rig.sync()
    assert [m.subject for m in rig.drafts_folder_messages()] == ["First"]

    draft = rig.save(draft, subject="Second", body_html="<p>two</p>")
    assert rig.run().written == 1

    copies = rig.on_server()
    assert [(c.subject, c.message_id) for c in copies] == [
        ("Second", f"<{drafts.server_message_id(draft.token, 2)}>")
    ]
    # The old copy's location went with it: the Sales Inbox never shows both.
    assert rig.drafts_folder_messages() == []
    rig.sync()
    shown = rig.drafts_folder_messages()
    assert [m.subject for m in shown] == ["Second"]
    assert drafts.draft_token(shown[0].message_id) == draft.token
    rig.constraints_hold()

    # Opening the synced copy in the composer gives the draft itself.
    assert rig.call(drafts.draft_for_message, message_id=shown[0].pk).pk == draft.pk

    draft = rig.save(draft, subject="Third", body_html="<p>three</p>")
    rig.run()
    rig.sync()
    assert [c.subject for c in rig.on_server()] == ["Third"]
    assert [m.subject for m in rig.drafts_folder_messages()] == ["Third"]


def test_a_file_added_rewrites_the_copy_with_it(rig: Rig) -> None:
    draft = rig.start(subject="With a file")
    rig.run()
    rig.call(
        drafts.draft_file_add,
        draft_id=draft.pk,
        filename="offer.pdf",
        content_type="application/pdf",
        data=b"%PDF-offer",
    )

    rig.run()

    copies = rig.on_server()
    assert len(copies) == 1
    files = [part.get_filename() for part in copies[0].parsed.iter_attachments()]
    assert files == ["offer.pdf"]


def test_a_sent_draft_loses_its_copy_and_its_row(
    rig: Rig, django_capture_on_commit_callbacks: Any
) -> None:
    content = DraftContent(
        account_id=rig.account.pk, to=["pat@customer.test"], subject="Sending this"
    )
    draft = rig.call(drafts.draft_start, content=content)
    item = rig.call(
        drafts.draft_file_add,
        draft_id=draft.pk,
        filename="quote.pdf",
        content_type="application/pdf",
        data=f"%PDF {uuid.uuid4()}".encode(),
    )
    rig.run()
    assert len(rig.on_server()) == 1

    outbound = rig.call(
        drafts.draft_send,
        draft_id=draft.pk,
        content=content,
    )
    assert outbound.undo_until is not None

    # Kept through the undo window.
    assert rig.run(at=datetime.now(UTC)).removed == 0
    assert len(rig.on_server()) == 1
    with django_capture_on_commit_callbacks(execute=True):
        outcome = rig.run(at=outbound.undo_until + timedelta(seconds=1))

    assert outcome.removed == 1
    assert rig.on_server() == []
    assert rig.row(draft) is None
    with tenancy.bound(rig.company_id):
        assert not MailDraftFile.objects.for_company(rig.company_id).exists()
        # The sent message keeps its own bytes; the draft's file's went.
        assert (
            MailMessage.objects.for_company(rig.company_id).filter(pk=outbound.message_id).exists()
        )
    with pytest.raises(FileNotFoundError):
        rawstore.raw_read(item.storage_path)


def test_a_discarded_draft_loses_its_copy(rig: Rig) -> None:
    draft = rig.start(subject="Never mind")
    rig.run()
    rig.sync()
    assert len(rig.drafts_folder_messages()) == 1

    rig.call(drafts.draft_discard, draft_id=draft.pk)
    outcome = rig.run(at=datetime.now(UTC))

    assert outcome.removed == 1
    assert rig.on_server() == []
    assert rig.row(draft) is None
    assert rig.drafts_folder_messages() == []
    rig.sync()
    assert rig.drafts_folder_messages() == []


def test_a_draft_that_never_reached_the_server_goes_without_a_connection(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    draft = rig.start(subject="Quick")
    rig.call(drafts.draft_discard, draft_id=draft.pk)
    # The mailbox is unreachable: not needed.
    with tenancy.bound(rig.company_id):
        MailAccount.objects.for_company(rig.company_id).filter(pk=rig.account.pk).update(
            imap_port=1
        )

    assert rig.run(at=datetime.now(UTC)).removed == 1
    assert rig.row(draft) is None


def test_another_clients_draft_is_replaced_by_ours(rig: Rig) -> None:
    rig.dovecot.append(
        rig.user.username,
        rig.user.password,
        "INBOX",
        message(1, subject="Quote?", message_id="<q1@customer.test>", to=rig.account.email_address),
    )
    foreign = message(
        2,
        sender=f"Alice <{rig.account.email_address}>",
        to="Pat <pat@customer.test>",
        subject="Re: Quote?",
        message_id="<draft-by-thunderbird@acme.test>",
        references=["<q1@customer.test>"],
        body="Dear Pat,\n\nhalf written.\n",
    )
    rig.dovecot.append(rig.user.username, rig.user.password, "Drafts", foreign, flags="\\Draft")
    rig.sync()
    [left] = rig.drafts_folder_messages()
    assert left.message_id == "draft-by-thunderbird@acme.test"

    continued = rig.call(drafts.draft_for_message, message_id=left.pk)
    assert continued.source_message_id == left.pk
    continued = rig.save(
        continued,
        to=list(continued.to),
        subject="Re: Quote?",
        body_html="<p>Dear Pat,</p><p>finished now.</p>",
        reply_to_message_id=continued.reply_to_message_id,
    )
    assert rig.run().written == 1

    copies = rig.on_server()
    assert [c.message_id for c in copies] == [f"<{drafts.server_message_id(continued.token, 2)}>"]
    assert str(copies[0].parsed["In-Reply-To"]) == "<q1@customer.test>"
    # The other client's copy is gone here too; the draft keeps going without it.
    assert rig.drafts_folder_messages() == []
    stored = rig.row(continued)
    assert stored is not None
    assert stored.source_message_id is None
    rig.constraints_hold()
    rig.sync()
    assert [drafts.draft_token(m.message_id) for m in rig.drafts_folder_messages()] == [
        continued.token
    ]


def test_a_server_without_uidplus_keeps_one_copy(
    cast: Cast, dovecot_minimal: Dovecot, mail_user_minimal: MailUser
) -> None:
    rig = _rig(cast, dovecot_minimal, mail_user_minimal)
    draft = rig.start(subject="One")
    rig.run()
    draft = rig.save(draft, subject="Two")
    rig.run()
    draft = rig.save(draft, subject="Three")

    assert rig.run().written == 1

    copies = rig.on_server()
    assert [(c.subject, c.flags) for c in copies] == [("Three", {"\\Draft", "\\Seen"})]
    stored = rig.row(draft)
    assert stored is not None
    assert stored.remote_uid == copies[0].uid  # found by its Message-ID

    rig.call(drafts.draft_discard, draft_id=draft.pk)
    rig.run()
    assert rig.on_server() == []


@pytest.fixture(scope="module")
def dovecot_no_drafts() -> Iterator[Dovecot]:
    """A Dovecot whose users have no Drafts folder."""
    if not is_available():
        service_missing("dovecot (Debian dovecot-imapd)")
    server = Dovecot(special_use={k: v for k, v in SPECIAL_USE.items() if k != "Drafts"})
    server.start()
    try:
        yield server
    finally:
        server.close()


def test_a_mailbox_without_a_drafts_folder_gets_one(cast: Cast, dovecot_no_drafts: Dovecot) -> None:
    user = MailUser(f"u{uuid.uuid4().hex[:8]}", "pw-drafts", "")
    dovecot_no_drafts.add_user(user.username, user.password)
    user = MailUser(user.username, user.password, f"{user.username}@example.test")
    rig = _rig(cast, dovecot_no_drafts, user)
    with tenancy.bound(rig.company_id):
        assert (
            not MailFolder.objects.for_company(rig.company_id)
            .filter(account=rig.account, role="drafts")
            .exists()
        )

    draft = rig.start(subject="Somewhere to go")
    assert rig.run().written == 1

    assert [c.subject for c in rig.on_server("Drafts")] == ["Somewhere to go"]
    # Subscribed, so mail clients show it (this server cannot mark it \\Drafts: no
    # CREATE-SPECIAL-USE; its name says what it is).
    with rig.dovecot.session(user.username, user.password) as client:
        _, subscribed = client.lsub('""', '"Drafts"')
    assert subscribed[0] is not None
    assert subscribed[0].endswith(b" Drafts")
    stored = rig.row(draft)
    assert stored is not None
    assert stored.remote_folder is not None
    assert (stored.remote_folder.name, stored.remote_folder.role) == ("Drafts", "drafts")
    rig.sync()
    assert [m.subject for m in rig.drafts_folder_messages()] == ["Somewhere to go"]


def test_a_refused_sign_in_leaves_the_draft_with_its_error(rig: Rig) -> None:
    draft = rig.start(subject="Waiting")
    with tenancy.bound(rig.company_id):
        MailAccount.objects.for_company(rig.company_id).filter(pk=rig.account.pk).update(
            secret_encrypted=encryption.encrypt("wrong password")
        )

    started = datetime.now(UTC)
    outcome = rig.run()

    assert outcome.retrying == 1
    stored = rig.row(draft)
    assert stored is not None
    assert stored.state == DraftState.OPEN
    assert "password" in stored.remote_error
    assert stored.remote_due is not None
    assert stored.remote_due >= started + draft_sync.AUTH_RETRY
    assert rig.on_server() == []


def test_a_provider_without_an_adapter_has_nothing_to_write(cast: Cast, rig: Rig) -> None:
    with tenancy.bound(rig.company_id):
        gmail = MailAccount.objects.create(
            company=cast.company_a,
            owner=cast.alice,
            provider="gmail",
            email_address="alice@gmail.test",
        )
    draft = rig.call(
        drafts.draft_start, content=DraftContent(account_id=gmail.pk, subject="Gmail later")
    )
    assert draft.remote_due is not None

    outcome = draft_sync.account_drafts_run(
        company_id=rig.company_id, account_id=gmail.pk, now=datetime.now(UTC) + LATER
    )

    assert outcome == draft_sync.DraftsOutcome()
    stored = rig.row(draft)
    assert stored is not None
    assert (stored.remote_due, stored.remote_error) == (None, "")


def test_a_connection_cut_anywhere_in_a_write_resumes_without_duplicates(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser, cut_proxy: CutProxy
) -> None:
    rig = _rig(cast, dovecot, mail_user, port=cut_proxy.port)
    rig.sync()
    draft = rig.start(subject="Version 1")
    assert rig.run().written == 1
    cuts = appended_unheard = 0
    budget = 0
    for step in range(2, 400):
        budget += 41
        draft = rig.save(draft, subject=f"Version {step}")
        cut_proxy.cut_after_server_bytes(budget)  # the next connection: this run's
        outcome = rig.run()
        if outcome.written:
            break  # the budget outlasted the whole write: every point was cut before
        cuts += 1
        assert outcome.retrying == 1
        stored = rig.row(draft)
        assert stored is not None
        assert stored.remote_error
        # Cut after the server stored the new copy, before we heard where or removed the old.
        appended_unheard += len(rig.on_server()) == 2
        # The retry, on a whole connection, leaves exactly one copy: this version.
        assert rig.run(at=datetime.now(UTC) + timedelta(days=1)).written == 1
        copies = rig.on_server()
        assert [c.subject for c in copies] == [f"Version {step}"], f"cut after {budget} bytes"
        stored = rig.row(draft)
        assert stored is not None
        assert (stored.remote_uid, stored.remote_error) == (copies[0].uid, "")
    assert cuts > 20  # the write was cut at many points along the way
    assert appended_unheard >= 1
    assert [c.subject for c in rig.on_server()] == [f"Version {step}"]
    rig.sync()
    assert len(rig.drafts_folder_messages()) == 1


def test_the_sweeper_finds_due_drafts_of_every_company(
    rig: Rig, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    draft = rig.start(subject="Not lost")
    assert draft.remote_due is not None
    with tenancy.bound(cast.company_b.pk):
        globex = MailAccount.objects.create(
            company=cast.company_b, owner=cast.carol, email_address="carol@globex.test"
        )
        MailDraft.objects.create(
            company=cast.company_b,
            token=uuid.uuid4().hex,
            account=globex,
            created_by=cast.carol,
            remote_due=now + timedelta(hours=2),
        )
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(
        tasks.company_drafts_run, "apply_async", lambda **kwargs: queued.append(kwargs)
    )

    assert draft_sync.due_companies(now) == []  # the user is still typing
    assert draft_sync.due_companies(now + LATER) == [rig.company_id]
    assert draft_sync.due_companies(now + timedelta(hours=3)) == [
        rig.company_id,
        cast.company_b.pk,
    ]
    with tenancy.bound(rig.company_id):
        MailDraft.objects.for_company(rig.company_id).filter(pk=draft.pk).update(
            remote_due=now - timedelta(seconds=1)
        )
    assert tasks.drafts_due() == 1
    assert tasks.drafts_due() == 0  # queued once until the run starts
    assert queued == [{"kwargs": {"company_id": rig.company_id}, "queue": tasks.SYNC_QUEUE}]
    tasks.company_drafts_run(company_id=rig.company_id)

    assert [c.subject for c in rig.on_server()] == ["Not lost"]
    assert draft_sync.due_companies(datetime.now(UTC)) == []
