"""The sync engine against a real Dovecot: first sync, new mail, flags, expunges, folder
changes, a UIDVALIDITY reset, a cut connection, a wrong password and a server gone."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crm import hooks, tenancy
from inbox import rawstore
from inbox.models import (
    MailAccount,
    MailFolder,
    MailMessage,
    MailMessageLocation,
    MailThread,
    MailThreadMessage,
)
from mailsync import push, services, sync
from mailsync.idle import IdleSupervisor
from mailsync.models import FolderCursor, Health, SyncState
from tests.conftest import Cast
from tests.mailsync.conftest import MailUser, connect
from tests.mailsync.dovecot import CutProxy, Dovecot
from tests.mailsync.mail import message

pytestmark = pytest.mark.services


def run(cast: Cast, account: MailAccount) -> sync.PassOutcome:
    return sync.account_sync(company_id=cast.company_a.pk, account_id=account.pk)


def state_of(cast: Cast, account: MailAccount) -> SyncState:
    with tenancy.bound(cast.company_a.pk):
        return SyncState.objects.for_company(cast.company_a).get(account=account)


def counts(cast: Cast, account: MailAccount) -> dict[str, int]:
    with tenancy.bound(cast.company_a.pk):
        company = cast.company_a
        return {
            "messages": MailMessage.objects.for_company(company).count(),
            "locations": MailMessageLocation.objects.for_company(company)
            .filter(account=account)
            .count(),
            "threads": MailThread.objects.for_company(company).filter(account=account).count(),
        }


def subjects_in(cast: Cast, account: MailAccount, folder: str) -> list[str]:
    with tenancy.bound(cast.company_a.pk):
        return sorted(
            MailMessageLocation.objects.for_company(cast.company_a)
            .filter(account=account, folder__name=folder)
            .values_list("message__subject", flat=True)
        )


@pytest.fixture
def received(db, django_capture_on_commit_callbacks):
    """MAIL_RECEIVED events published by the test's passes: `received.run(cast, account)`
    runs a pass and its on-commit callbacks, as a real commit would."""

    class Received(list[hooks.MailReceived]):
        def run(self, cast: Cast, account: MailAccount) -> sync.PassOutcome:
            with django_capture_on_commit_callbacks(execute=True):
                return run(cast, account)

    events = Received()
    hooks.subscribe(hooks.MAIL_RECEIVED, events.append)
    yield events
    hooks.unsubscribe(hooks.MAIL_RECEIVED, events.append)


def test_first_sync_stores_every_message_of_the_window_once_with_progress(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    for n in range(1, 8):
        dovecot.append(u.username, u.password, "INBOX", message(n))
    dovecot.append(u.username, u.password, "Sent", message(20, sender=u.email, to="pat@c.test"))
    # Older than the 90-day window: not part of the first sync.
    old = datetime.now(UTC) - timedelta(days=200)
    dovecot.append(u.username, u.password, "INBOX", message(30, date=old), date=old)
    account = connect(cast, dovecot, u)

    outcome = run(cast, account)

    assert outcome.ran
    assert outcome.stored == 8
    assert counts(cast, account) == {"messages": 8, "locations": 8, "threads": 8}
    state = state_of(cast, account)
    assert state.health == Health.OK
    assert state.initial_done
    assert (state.progress_done, state.progress_total) == (8, 8)
    assert state.last_synced_at is not None
    assert subjects_in(cast, account, "Sent") == ["Message 20"]
    # A second pass finds nothing new and changes nothing.
    assert run(cast, account).stored == 0
    assert counts(cast, account) == {"messages": 8, "locations": 8, "threads": 8}


def test_reading_never_marks_mail_seen_on_the_server(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    uid = dovecot.append(u.username, u.password, "INBOX", message(1))
    account = connect(cast, dovecot, u)
    run(cast, account)
    with dovecot.session(u.username, u.password) as client:
        client.select("INBOX", readonly=True)
        _, data = client.uid("FETCH", str(uid), "(FLAGS)")
    assert b"\\Seen" not in data[0]
    with tenancy.bound(cast.company_a.pk):
        assert MailThread.objects.for_company(cast.company_a).get(account=account).is_unread


@pytest.mark.parametrize("flavour", ["dovecot", "dovecot_plain"])
def test_new_mail_flag_changes_and_expunges_come_through(
    cast: Cast, flavour: str, request: pytest.FixtureRequest, received
) -> None:
    server: Dovecot = request.getfixturevalue(flavour)
    u = request.getfixturevalue("mail_user" if flavour == "dovecot" else "mail_user_plain")
    first = dovecot_uid = server.append(u.username, u.password, "INBOX", message(1))
    second = server.append(u.username, u.password, "INBOX", message(2))
    account = connect(cast, server, u)
    received.run(cast, account)
    assert received == []  # the first sync announces nothing

    server.append(u.username, u.password, "INBOX", message(3))
    server.set_flags(u.username, u.password, "INBOX", first, "\\Seen")
    server.expunge_uid(u.username, u.password, "INBOX", second)
    received.run(cast, account)

    assert counts(cast, account) == {"messages": 2, "locations": 2, "threads": 2}
    assert subjects_in(cast, account, "INBOX") == ["Message 1", "Message 3"]
    with tenancy.bound(cast.company_a.pk):
        location = MailMessageLocation.objects.for_company(cast.company_a).get(
            account=account, uid=dovecot_uid
        )
        assert "\\Seen" in location.flags
        thread = (
            MailThreadMessage.objects.for_company(cast.company_a)
            .get(message=location.message)
            .thread
        )
        assert not thread.is_unread
    assert len(received) == 1
    assert len(received[0].message_ids) == 1


def test_replies_thread_with_their_parent_even_when_they_arrive_first(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    parent_id = "<parent.1@customer.test>"
    sent = datetime.now(UTC) - timedelta(hours=2)
    reply = message(
        2,
        subject="Re: Quote",
        message_id="<reply.2@x.test>",
        references=[parent_id],
        date=sent + timedelta(hours=1),
    )
    dovecot.append(u.username, u.password, "INBOX", reply)
    account = connect(cast, dovecot, u)
    run(cast, account)
    assert counts(cast, account)["threads"] == 1

    dovecot.append(
        u.username,
        u.password,
        "Sent",
        message(1, subject="Quote", message_id=parent_id, date=sent),
    )
    run(cast, account)

    assert counts(cast, account) == {"messages": 2, "locations": 2, "threads": 1}
    with tenancy.bound(cast.company_a.pk):
        thread = MailThread.objects.for_company(cast.company_a).get(account=account)
    assert thread.message_count == 2
    assert thread.subject == "Quote"
    assert sorted(thread.folder_roles) == ["inbox", "sent"]


def test_a_message_in_two_folders_is_stored_once_and_leaves_with_its_last_location(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    raw = message(1, message_id="<same@customer.test>")
    dovecot.create_folder(u.username, u.password, "Projects")
    in_inbox = dovecot.append(u.username, u.password, "INBOX", raw)
    in_projects = dovecot.append(u.username, u.password, "Projects", raw)
    account = connect(cast, dovecot, u)
    run(cast, account)
    assert counts(cast, account) == {"messages": 1, "locations": 2, "threads": 1}

    dovecot.expunge_uid(u.username, u.password, "INBOX", in_inbox)
    run(cast, account)
    assert counts(cast, account) == {"messages": 1, "locations": 1, "threads": 1}

    dovecot.expunge_uid(u.username, u.password, "Projects", in_projects)
    run(cast, account)
    assert counts(cast, account) == {"messages": 0, "locations": 0, "threads": 0}


def test_a_uidvalidity_reset_relists_silently_without_duplicates(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser, received
) -> None:
    u = mail_user
    dovecot.create_folder(u.username, u.password, "Projects")
    raws = [message(n, message_id=f"<p{n}@customer.test>") for n in range(1, 5)]
    for raw in raws:
        dovecot.append(u.username, u.password, "Projects", raw)
    account = connect(cast, dovecot, u)
    received.run(cast, account)
    with tenancy.bound(cast.company_a.pk):
        thread_ids = set(
            MailThread.objects.for_company(cast.company_a).values_list("pk", flat=True)
        )

    dovecot.recreate_folder(u.username, u.password, "Projects")
    for raw in raws[:3]:  # the fourth is gone for good
        dovecot.append(u.username, u.password, "Projects", raw)
    received.run(cast, account)

    assert counts(cast, account) == {"messages": 3, "locations": 3, "threads": 3}
    validity = str(dovecot.uidvalidity(u.username, u.password, "Projects"))
    with tenancy.bound(cast.company_a.pk):
        provider_ids = MailMessageLocation.objects.for_company(cast.company_a).values_list(
            "provider_id", flat=True
        )
        assert all(pid.startswith(validity + ":") for pid in provider_ids)
        # The threads (and so their links and visibility) survive the renumbering.
        assert (
            set(MailThread.objects.for_company(cast.company_a).values_list("pk", flat=True))
            < thread_ids
        )
    assert received == []


def test_a_renamed_folder_keeps_its_messages_and_threads(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    dovecot.create_folder(u.username, u.password, "Clients")
    for n in range(1, 4):
        dovecot.append(u.username, u.password, "Clients", message(n))
    account = connect(cast, dovecot, u)
    run(cast, account)
    with tenancy.bound(cast.company_a.pk):
        before = set(MailThread.objects.for_company(cast.company_a).values_list("pk", flat=True))

    dovecot.rename_folder(u.username, u.password, "Clients", "Customers")
    run(cast, account)

    assert counts(cast, account) == {"messages": 3, "locations": 3, "threads": 3}
    assert len(subjects_in(cast, account, "Customers")) == 3
    with tenancy.bound(cast.company_a.pk):
        assert (
            set(MailThread.objects.for_company(cast.company_a).values_list("pk", flat=True))
            == before
        )
        old = MailFolder.objects.for_company(cast.company_a).get(account=account, name="Clients")
        assert old.removed_at is not None


def test_selecting_folders_drops_the_others_and_imports_the_chosen(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    dovecot.create_folder(u.username, u.password, "Projects")
    dovecot.append(u.username, u.password, "INBOX", message(1))
    dovecot.append(u.username, u.password, "Projects", message(2))
    account = connect(cast, dovecot, u, sync_all_folders=False, selected_folders=("INBOX",))
    run(cast, account)
    assert subjects_in(cast, account, "INBOX") == ["Message 1"]
    assert subjects_in(cast, account, "Projects") == []

    with tenancy.bound(cast.company_a.pk):
        services.account_update(
            company=cast.company_a, account=account, selected_folders=["Projects"]
        )
    run(cast, account)

    assert subjects_in(cast, account, "INBOX") == []
    assert subjects_in(cast, account, "Projects") == ["Message 2"]
    assert counts(cast, account)["messages"] == 1


def test_a_connection_cut_mid_fetch_resumes_without_loss_or_duplicates(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser, cut_proxy: CutProxy, settings
) -> None:
    u = mail_user
    for n in range(1, 41):
        dovecot.append(u.username, u.password, "INBOX", message(n, body="x" * 5000))
    account = connect(cast, dovecot, u, port=cut_proxy.port)
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            imap_host=cut_proxy.host
        )
    settings.CRM_MAIL_BATCH_SIZE = 10  # small batches, so that some commit before the cut
    cut_proxy.cut_after_server_bytes(120_000)
    outcome = run(cast, account)
    assert outcome.error_kind == "transient"
    state = state_of(cast, account)
    assert state.health == Health.RETRYING
    assert "connection" in state.last_error_message
    assert 0 < counts(cast, account)["messages"] < 40

    run(cast, account)

    assert counts(cast, account) == {"messages": 40, "locations": 40, "threads": 40}
    state = state_of(cast, account)
    assert state.health == Health.OK
    assert state.initial_done


def test_a_wrong_password_asks_for_a_reconnect_in_plain_words(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser
) -> None:
    account = connect(cast, dovecot, mail_user)
    dovecot.add_user(mail_user.username, "a-new-password")  # changed at the provider

    outcome = run(cast, account)

    assert outcome.error_kind == "auth"
    state = state_of(cast, account)
    assert state.health == Health.NEEDS_RECONNECT
    assert "username or password" in state.last_error_message
    assert state.next_sync_at is None  # no retrying with a bad password

    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        services.account_reconnect(
            company=cast.company_a, account=account, password="a-new-password"
        )
    assert run(cast, account).error_kind == ""
    assert state_of(cast, account).health == Health.OK


def test_a_server_gone_is_retried_with_backoff(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser, cut_proxy: CutProxy
) -> None:
    account = connect(cast, dovecot, mail_user, port=cut_proxy.port)
    cut_proxy.refuse(True)

    run(cast, account)
    first = state_of(cast, account)
    run(cast, account)
    second = state_of(cast, account)

    assert first.health == Health.RETRYING
    assert first.last_error_kind == "transient"
    assert second.consecutive_failures == 2
    assert first.next_sync_at is not None
    assert first.last_error_at is not None
    assert second.next_sync_at is not None
    assert second.last_error_at is not None
    assert second.next_sync_at - second.last_error_at > first.next_sync_at - first.last_error_at
    cut_proxy.refuse(False)
    assert run(cast, account).error_kind == ""
    assert state_of(cast, account).consecutive_failures == 0


def test_the_account_lock_keeps_a_second_pass_out(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser
) -> None:
    account = connect(cast, dovecot, mail_user)
    with sync.account_lock(account.pk) as first:
        assert first
        # Another session (worker) holding it: a second, separate connection.
        from django.db import connections

        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", [sync._LOCK_NAMESPACE, account.pk]
                )
                assert cursor.fetchone()[0] is False
        finally:
            other.close()


def test_cursor_is_kept_per_folder(cast: Cast, dovecot: Dovecot, mail_user: MailUser) -> None:
    u = mail_user
    dovecot.append(u.username, u.password, "INBOX", message(1))
    account = connect(cast, dovecot, u)
    run(cast, account)
    with tenancy.bound(cast.company_a.pk):
        inbox = MailFolder.objects.for_company(cast.company_a).get(account=account, name="INBOX")
        cursor = FolderCursor.objects.for_company(cast.company_a).get(folder=inbox)
    assert cursor.validity == str(dovecot.uidvalidity(u.username, u.password, "INBOX"))
    assert cursor.next_uid == 2
    assert cursor.backfill_before_uid == 0
    assert cursor.modseq is not None  # CONDSTORE


CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "emails"


def test_the_ugly_corpus_syncs_whole_with_unreadable_mail_stored_raw_and_counted(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    files = sorted(CORPUS.glob("*.eml"))
    for path in files:
        dovecot.append(u.username, u.password, "INBOX", path.read_bytes())
    # A 20 MB attachment and a 1 MB HTML body, made here rather than committed.
    dovecot.append(u.username, u.password, "INBOX", message(90, attachment=os.urandom(20 << 20)))
    html_body = "<html><body>" + "<p>Lorem ipsum dolor sit amet.</p>" * 30_000 + "</body></html>"
    dovecot.append(
        u.username, u.password, "INBOX",
        message(91, subject="Huge HTML", body="").replace(
            b"Content-Type: text/plain", b"Content-Type: text/html"
        ).replace(b"\n\n", b"\n\n" + html_body.encode(), 1),
    )  # fmt: skip
    account = connect(cast, dovecot, u, sync_since_days=730)

    outcome = run(cast, account)

    assert outcome.error_kind == ""
    assert outcome.stored == len(files) + 2
    with tenancy.bound(cast.company_a.pk):
        messages = MailMessage.objects.for_company(cast.company_a)
        assert messages.count() == len(files) + 2
        malformed = messages.exclude(parse_error="")
        assert malformed.count() >= 1  # the garbage bytes at least
        for stored in malformed:
            assert rawstore.raw_read(stored.raw_path)  # kept raw: can be parsed again
        big = messages.get(subject="Message 90")
        assert big.attachments.get().size == 20 << 20
        assert "Lorem ipsum" in messages.get(subject="Huge HTML").body_text
        # The reply and its parent from the corpus form one conversation.
        parent = messages.get(message_id="parent-24@acme.example.com")
        reply = (
            messages.exclude(pk=parent.pk)
            .filter(references__len__gt=0)
            .get(references__contains=[parent.message_id])
        )
        threads = MailThreadMessage.objects.for_company(cast.company_a).filter(
            message__in=[parent, reply]
        )
        assert len({m.thread_id for m in threads}) == 1
    assert state_of(cast, account).malformed_count == malformed.count()


def test_new_mail_arrives_by_idle_push(cast: Cast, dovecot: Dovecot, mail_user: MailUser) -> None:
    u = mail_user
    account = connect(cast, dovecot, u)
    run(cast, account)
    targets = [t for t in push.push_targets() if t.key.endswith(f":{account.pk}")]
    assert targets[0].folders == ("INBOX", "Sent")

    async def wait_for_push() -> list[tuple[str, str]]:
        changes: list[tuple[str, str]] = []
        supervisor = IdleSupervisor(lambda key, folder: changes.append((key, folder)))
        await supervisor.set_targets(targets)
        try:
            for _ in range(100):  # up to 10 s for the watcher to be idling
                if set(supervisor.status().values()) == {"idling"}:
                    break
                await asyncio.sleep(0.1)
            await asyncio.to_thread(
                dovecot.append, u.username, u.password, "INBOX", message(1, subject="Pushed")
            )
            for _ in range(50):
                if changes:
                    break
                await asyncio.sleep(0.1)
        finally:
            await supervisor.close()
        return changes

    changes = asyncio.run(wait_for_push())

    assert changes == [(f"{cast.company_a.pk}:{account.pk}", "INBOX")]
    run(cast, account)  # what the woken Celery task runs
    assert subjects_in(cast, account, "INBOX") == ["Pushed"]
