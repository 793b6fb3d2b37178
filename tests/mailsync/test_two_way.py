"""Two-way sync (A5) against a real Dovecot: provider actions written as the inbox writes them
(`MailAction` rows with the thread's message ids, the thread changed here first), carried out
by the executor, then checked on the server (an imaplib session as the user: which folder holds
the message, with which flags) and on our side after the next sync (no duplicate message or
thread, the thread's state and folder roles)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from crm import tenancy
from inbox.models import (
    ActionKind,
    ActionState,
    MailAccount,
    MailAction,
    MailFolder,
    MailMessage,
    MailMessageLocation,
    MailThread,
    MailThreadMessage,
)
from mailsync import actions, sync
from tests.conftest import Cast
from tests.mailsync.conftest import MailUser, connect
from tests.mailsync.dovecot import CutProxy, Dovecot, quote_mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.services

FIRST = "<deal-1@customer.test>"
REPLY = "<deal-2@customer.test>"
OURS = "<deal-3@example.test>"


@dataclass
class Setup:
    cast: Cast
    server: Dovecot
    user: MailUser
    account: MailAccount

    @property
    def company_id(self) -> int:
        return self.cast.company_a.pk

    def sync(self) -> sync.PassOutcome:
        outcome = sync.account_sync(company_id=self.company_id, account_id=self.account.pk)
        assert outcome.error_kind == ""
        return outcome

    def thread(self) -> MailThread:
        """The conversation's thread (every test mails one, starting with FIRST)."""
        with tenancy.bound(self.company_id):
            return MailThread.objects.for_company(self.company_id).get(
                account=self.account, memberships__message__message_id=FIRST.strip("<>")
            )

    def ask(
        self, kind: str, *, run_after: datetime | None = None, state: str = ActionState.PENDING
    ) -> MailAction:
        """What the inbox writes: the local change and, in the same transaction, the action
        with the thread's messages at that time (due now, the undo window over)."""
        thread = self.thread()
        local = {
            ActionKind.ARCHIVE: {"archived": True},
            ActionKind.UNARCHIVE: {"archived": False},
            ActionKind.DELETE: {"deleted": True},
            ActionKind.RESTORE: {"deleted": False},
            ActionKind.READ: {"is_unread": False},
            ActionKind.UNREAD: {"is_unread": True},
        }[ActionKind(kind)]
        with tenancy.bound(self.company_id):
            MailThread.objects.for_company(self.company_id).filter(pk=thread.pk).update(**local)
            message_ids = list(
                MailThreadMessage.objects.for_company(self.company_id)
                .filter(thread=thread)
                .values_list("message_id", flat=True)
            )
            return MailAction.objects.create(
                company_id=self.company_id,
                account=self.account,
                thread=thread,
                kind=kind,
                message_ids=sorted(message_ids),
                state=state,
                run_after=run_after or datetime.now(UTC) - timedelta(seconds=1),
                created_by=self.cast.alice,
            )

    def run(self, *, at: datetime | None = None) -> actions.ActionsOutcome:
        return actions.company_actions_run(company_id=self.company_id, now=at)

    def reload(self, action: MailAction) -> MailAction:
        with tenancy.bound(self.company_id):
            return MailAction.objects.for_company(self.company_id).get(pk=action.pk)

    def on_server(self) -> dict[str, dict[str, set[str]]]:
        """Message-ID → folder → flags, as the user's own IMAP session sees the mailbox."""
        found: dict[str, dict[str, set[str]]] = {}
        with self.server.session(self.user.username, self.user.password) as client:
            _, listing = client.list('""', "*")
            names = [
                line.decode().rsplit(' "/" ', 1)[1].strip('"')
                for line in listing
                if isinstance(line, bytes)
            ]
            for name in names:
                client.select(quote_mailbox(name), readonly=True)
                _, data = client.uid(
                    "FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
                )
                for item in data:
                    if not isinstance(item, tuple):
                        continue
                    flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
                    mid = re.search(rb"<[^>]+>", item[1])
                    if mid:
                        found.setdefault(mid.group().decode(), {})[name] = set(
                            flags.group(1).decode().split() if flags else ()
                        ) - {"\\Recent"}  # the first session's, not the message's
        return found

    def ours(self) -> dict[str, object]:
        """Our side: counts (no duplicates), and the thread's state and folders."""
        company = self.company_id
        with tenancy.bound(company):
            threads = MailThread.objects.for_company(company).filter(account=self.account)
            thread = threads.get() if threads.count() == 1 else None
            folders = {
                f"<{mid}>": name  # stored without the angle brackets
                for mid, name in MailMessageLocation.objects.for_company(company)
                .filter(account=self.account)
                .values_list("message__message_id", "folder__name")
            }
            return {
                "messages": MailMessage.objects.for_company(company).count(),
                "locations": MailMessageLocation.objects.for_company(company)
                .filter(account=self.account)
                .count(),
                "threads": threads.count(),
                "archived": thread.archived if thread else None,
                "deleted": thread.deleted if thread else None,
                "unread": thread.is_unread if thread else None,
                "roles": sorted(thread.folder_roles) if thread else None,
                "folders": folders,
            }


def _conversation(server: Dovecot, user: MailUser, *, with_sent: bool = True) -> None:
    """A customer's message, their reply (both in INBOX) and our answer in Sent: one thread."""
    server.append(user.username, user.password, "INBOX", message(3, message_id=FIRST))
    server.append(
        user.username,
        user.password,
        "INBOX",
        message(1, subject="Re: Message 3", message_id=REPLY, references=[FIRST]),
    )
    if with_sent:
        server.append(
            user.username,
            user.password,
            "Sent",
            message(
                2,
                subject="Re: Message 3",
                sender=user.email,
                to="pat@customer.test",
                message_id=OURS,
                references=[FIRST],
            ),
            flags="\\Seen",
        )


@pytest.fixture
def two_way(cast: Cast, dovecot: Dovecot, mail_user: MailUser) -> Setup:
    _conversation(dovecot, mail_user)
    account = connect(cast, dovecot, mail_user, two_way_sync=True)
    setup = Setup(cast, dovecot, mail_user, account)
    setup.sync()
    assert setup.ours()["threads"] == 1
    return setup


def test_archive_moves_the_inbox_mail_to_the_archive_and_unarchive_brings_it_back(
    two_way: Setup,
) -> None:
    action = two_way.ask(ActionKind.ARCHIVE)

    outcome = two_way.run()

    assert (outcome.done, outcome.failed, outcome.retrying) == (1, 0, 0)
    server = two_way.on_server()
    assert server[FIRST].keys() == {"Archive"}
    assert server[REPLY].keys() == {"Archive"}
    assert server[OURS].keys() == {"Sent"}  # our own answer stays in Sent
    done = two_way.reload(action)
    assert done.state == ActionState.DONE
    assert done.done_at is not None
    assert done.last_error == ""
    expected = {
        "messages": 3,
        "locations": 3,
        "threads": 1,
        "archived": True,
        "deleted": False,
        "unread": True,
        "roles": ["archive", "sent"],
        "folders": {FIRST: "Archive", REPLY: "Archive", OURS: "Sent"},
    }
    assert two_way.ours() == expected  # recorded at once (COPYUID)
    two_way.sync()
    assert two_way.ours() == expected  # and the next sync agrees: nothing new, nothing gone

    two_way.ask(ActionKind.UNARCHIVE)
    assert two_way.run().done == 1

    server = two_way.on_server()
    assert server[FIRST].keys() == server[REPLY].keys() == {"INBOX"}
    two_way.sync()
    assert two_way.ours() | {"folders": None} == expected | {
        "archived": False,
        "roles": ["inbox", "sent"],
        "folders": None,
    }


def test_an_undone_or_not_yet_due_action_never_reaches_the_server(two_way: Setup) -> None:
    undone = two_way.ask(ActionKind.ARCHIVE, state=ActionState.CANCELLED)
    waiting = two_way.ask(ActionKind.DELETE, run_after=datetime.now(UTC) + timedelta(seconds=10))

    outcome = two_way.run()

    assert (outcome.done, outcome.failed, outcome.retrying) == (0, 0, 0)
    assert two_way.on_server()[FIRST].keys() == {"INBOX"}
    assert two_way.reload(undone).state == ActionState.CANCELLED
    assert two_way.reload(waiting).state == ActionState.PENDING


def test_delete_moves_every_copy_to_the_trash_and_restore_puts_them_back(
    two_way: Setup,
) -> None:
    two_way.ask(ActionKind.DELETE)

    assert two_way.run().done == 1

    server = two_way.on_server()
    assert {mid: folders.keys() for mid, folders in server.items()} == {
        FIRST: {"Trash"},
        REPLY: {"Trash"},
        OURS: {"Trash"},
    }
    two_way.sync()  # the bin syncs with two-way sync: the conversation stays, deleted
    ours = two_way.ours()
    assert (ours["messages"], ours["threads"], ours["deleted"], ours["roles"]) == (
        3,
        1,
        True,
        ["trash"],
    )

    two_way.ask(ActionKind.RESTORE)
    assert two_way.run().done == 1

    server = two_way.on_server()
    assert {mid: folders.keys() for mid, folders in server.items()} == {
        FIRST: {"INBOX"},
        REPLY: {"INBOX"},
        OURS: {"Sent"},  # the account's own message goes back to Sent
    }
    two_way.sync()
    ours = two_way.ours()
    assert (ours["messages"], ours["threads"], ours["deleted"], ours["roles"]) == (
        3,
        1,
        False,
        ["inbox", "sent"],
    )


def test_read_and_unread_store_seen_on_every_copy(two_way: Setup) -> None:
    two_way.ask(ActionKind.READ)
    assert two_way.run().done == 1

    server = two_way.on_server()
    assert all("\\Seen" in flags for mid in (FIRST, REPLY) for flags in server[mid].values())
    two_way.sync()
    assert two_way.ours()["unread"] is False

    two_way.ask(ActionKind.UNREAD)
    assert two_way.run().done == 1

    server = two_way.on_server()
    assert not any("\\Seen" in flags for mid in server for flags in server[mid].values())
    two_way.sync()
    assert two_way.ours()["unread"] is True


def test_a_server_without_move_or_uidplus_copies_expunges_and_sync_finds_the_copy(
    cast: Cast, dovecot_minimal: Dovecot, mail_user_minimal: MailUser
) -> None:
    server, user = dovecot_minimal, mail_user_minimal
    _conversation(server, user, with_sent=False)
    # Someone else's message the user marked \Deleted in another client: a plain EXPUNGE
    # would remove it too, so ours are left flagged for the mailbox's next expunge.
    server.append(user.username, user.password, "INBOX", message(9), flags="\\Deleted")
    account = connect(cast, server, user, two_way_sync=True)
    setup = Setup(cast, server, user, account)
    setup.sync()
    with tenancy.bound(setup.company_id):
        assert not MailFolder.objects.for_company(setup.company_id).filter(
            account=account, role="archive"
        )

    setup.ask(ActionKind.ARCHIVE)
    assert setup.run().done == 1

    # The server had no archive folder: "Archive" was made, and holds the copies.
    on_server = setup.on_server()
    assert on_server[FIRST]["Archive"] == set()
    assert on_server[FIRST]["INBOX"] == {"\\Deleted"}
    assert on_server[REPLY]["INBOX"] == {"\\Deleted"}
    with tenancy.bound(setup.company_id):
        archive = MailFolder.objects.for_company(setup.company_id).get(
            account=account, name="Archive"
        )
    assert archive.role == "archive"
    # No COPYUID to trust: the archive's sync right after found the copies by their key.
    expected = {
        "messages": 3,
        "threads": 2,
        "folders": {FIRST: "Archive", REPLY: "Archive", on_server_mid(on_server): "INBOX"},
    }
    ours = setup.ours()
    assert {k: ours[k] for k in expected} == expected
    thread = setup.thread()
    assert thread.archived
    assert thread.folder_roles == ["archive"]

    # Once the other client expunges, the next sync changes nothing of ours.
    with server.session(user.username, user.password) as client:
        client.select("INBOX")
        client.expunge()
    setup.sync()
    ours = setup.ours()
    assert {k: ours[k] for k in expected} == {
        **expected,
        "messages": 2,  # the other client's deleted message is gone
        "threads": 1,
        "folders": {FIRST: "Archive", REPLY: "Archive"},
    }


def on_server_mid(on_server: dict[str, dict[str, set[str]]]) -> str:
    """The Message-ID of the message that is not the conversation's."""
    return next(mid for mid in on_server if mid not in (FIRST, REPLY, OURS))


def test_a_refused_connection_is_retried_later_and_the_move_done_once(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser, cut_proxy: CutProxy
) -> None:
    _conversation(dovecot, mail_user)
    account = connect(cast, dovecot, mail_user, port=cut_proxy.port, two_way_sync=True)
    setup = Setup(cast, dovecot, mail_user, account)
    setup.sync()
    action = setup.ask(ActionKind.ARCHIVE)
    cut_proxy.refuse(True)

    outcome = setup.run()

    assert (outcome.done, outcome.retrying) == (0, 1)
    waiting = setup.reload(action)
    assert waiting.state == ActionState.PENDING
    assert waiting.attempts == 1
    assert "connection" in waiting.last_error
    assert waiting.run_after > datetime.now(UTC) + timedelta(seconds=20)  # backoff
    assert setup.run().done == 0  # not due again yet
    cut_proxy.refuse(False)

    later = waiting.run_after + timedelta(seconds=1)
    assert setup.run(at=later).done == 1
    assert setup.run(at=later + timedelta(minutes=5)).done == 0  # done once

    on_server = setup.on_server()
    assert on_server[FIRST].keys() == on_server[REPLY].keys() == {"Archive"}
    setup.sync()
    assert setup.ours()["messages"] == 3
    assert setup.ours()["threads"] == 1
    assert setup.reload(action).attempts == 1


def test_a_move_the_server_made_before_the_connection_broke_is_found_not_duplicated(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser
) -> None:
    """The cut fell after the server moved the mail and before we recorded it: the action
    is still pending when the next sync runs, which finds the mail gone from INBOX and new in
    the archive. The messages are in transit, so they keep their rows and their thread (no
    second download, the thread stays archived), and the retry finds nothing left to move."""
    _conversation(dovecot, mail_user, with_sent=False)
    account = connect(cast, dovecot, mail_user, two_way_sync=True)
    setup = Setup(cast, dovecot, mail_user, account)
    setup.sync()
    thread = setup.thread()
    with tenancy.bound(setup.company_id):
        message_ids = set(MailMessage.objects.for_company(setup.company_id).values_list("pk"))
    action = setup.ask(ActionKind.ARCHIVE)
    with dovecot.session(mail_user.username, mail_user.password) as client:
        client.select("INBOX")
        client.uid("MOVE", "1:*", "Archive")  # what the cut attempt did on the server

    setup.sync()  # a pass between the attempts

    expected = {"messages": 2, "locations": 2, "threads": 1, "archived": True, "roles": ["archive"]}
    ours = setup.ours()
    assert {k: ours[k] for k in expected} == expected
    assert setup.thread().pk == thread.pk
    with tenancy.bound(setup.company_id):
        assert set(MailMessage.objects.for_company(setup.company_id).values_list("pk")) == (
            message_ids
        )
    assert setup.run().done == 1
    ours = setup.ours()
    assert {k: ours[k] for k in expected} == expected
    assert setup.reload(action).state == ActionState.DONE


def test_a_wrong_password_fails_the_action_in_plain_words(two_way: Setup) -> None:
    action = two_way.ask(ActionKind.ARCHIVE)
    two_way.server.add_user(two_way.user.username, "changed-at-the-provider")

    outcome = two_way.run()

    assert outcome.failed == 1
    failed = two_way.reload(action)
    assert failed.state == ActionState.FAILED
    assert "username or password" in failed.last_error


def test_an_action_failing_every_time_is_given_up_after_the_last_try(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser, cut_proxy: CutProxy
) -> None:
    _conversation(dovecot, mail_user, with_sent=False)
    account = connect(cast, dovecot, mail_user, port=cut_proxy.port, two_way_sync=True)
    setup = Setup(cast, dovecot, mail_user, account)
    setup.sync()
    action = setup.ask(ActionKind.READ)
    with tenancy.bound(setup.company_id):
        MailAction.objects.for_company(setup.company_id).filter(pk=action.pk).update(
            attempts=actions.MAX_ATTEMPTS - 1
        )
    cut_proxy.refuse(True)

    assert setup.run().failed == 1

    given_up = setup.reload(action)
    assert given_up.state == ActionState.FAILED
    assert given_up.attempts == actions.MAX_ATTEMPTS
    assert given_up.last_error.startswith(f"Gave up after {actions.MAX_ATTEMPTS} tries.")


def test_mail_moved_back_to_the_inbox_in_a_mail_client_unarchives_the_thread(
    two_way: Setup,
) -> None:
    two_way.ask(ActionKind.ARCHIVE)
    two_way.run()
    two_way.sync()
    assert two_way.ours()["archived"] is True

    with two_way.server.session(two_way.user.username, two_way.user.password) as client:
        client.select("Archive")
        client.uid("MOVE", "1:*", "INBOX")
    two_way.sync()

    ours = two_way.ours()
    assert (ours["messages"], ours["threads"], ours["archived"], ours["roles"]) == (
        3,
        1,
        False,
        ["inbox", "sent"],
    )


def test_new_mail_in_an_archived_thread_brings_it_back_unless_an_archive_waits(
    two_way: Setup,
) -> None:
    u = two_way.user
    two_way.ask(ActionKind.ARCHIVE)
    two_way.run()
    waiting = two_way.ask(ActionKind.ARCHIVE, run_after=datetime.now(UTC) + timedelta(seconds=10))

    # A new reply while the user's archive is still waiting for its undo window: it stays.
    two_way.server.append(
        u.username,
        u.password,
        "INBOX",
        message(
            0, subject="Re: Message 3", message_id="<deal-4@customer.test>", references=[FIRST]
        ),
    )
    two_way.sync()
    assert two_way.ours()["archived"] is True

    with tenancy.bound(two_way.company_id):
        MailAction.objects.for_company(two_way.company_id).filter(pk=waiting.pk).update(
            state=ActionState.CANCELLED
        )
    two_way.server.append(
        u.username,
        u.password,
        "INBOX",
        message(
            0, subject="Re: Message 3", message_id="<deal-5@customer.test>", references=[FIRST]
        ),
    )
    two_way.sync()

    ours = two_way.ours()
    assert (ours["threads"], ours["archived"]) == (1, False)
    assert "inbox" in ours["roles"]  # type: ignore[operator]


def test_seen_set_on_the_server_comes_back_as_read(two_way: Setup) -> None:
    assert two_way.ours()["unread"] is True
    for uid in (1, 2):
        two_way.server.set_flags(
            two_way.user.username, two_way.user.password, "INBOX", uid, "\\Seen"
        )

    two_way.sync()

    assert two_way.ours()["unread"] is False


def test_a_thread_all_moved_to_the_trash_in_a_mail_client_is_deleted(two_way: Setup) -> None:
    with two_way.server.session(two_way.user.username, two_way.user.password) as client:
        for folder in ("INBOX", "Sent"):
            client.select(folder)
            client.uid("MOVE", "1:*", "Trash")

    two_way.sync()

    ours = two_way.ours()
    assert (ours["threads"], ours["deleted"], ours["roles"]) == (1, True, ["trash"])


def test_a_conversation_archived_in_a_mail_client_keeps_its_thread_and_messages(
    cast: Cast, dovecot: Dovecot, mail_user: MailUser
) -> None:
    """INBOX → Archive in the user's mail app: the sync finds the copies in the archive (by
    key) before it drops the inbox ones, so nothing is deleted and downloaded again and the
    conversation keeps what the CRM knows of it."""
    _conversation(dovecot, mail_user, with_sent=False)
    account = connect(cast, dovecot, mail_user, two_way_sync=True)
    setup = Setup(cast, dovecot, mail_user, account)
    setup.sync()
    thread = setup.thread()
    with tenancy.bound(setup.company_id):
        message_ids = set(MailMessage.objects.for_company(setup.company_id).values_list("pk"))
    with dovecot.session(mail_user.username, mail_user.password) as client:
        client.select("INBOX")
        client.uid("MOVE", "1:*", "Archive")

    setup.sync()

    ours = setup.ours()
    assert (ours["messages"], ours["threads"], ours["roles"]) == (2, 1, ["archive"])
    assert setup.thread().pk == thread.pk
    with tenancy.bound(setup.company_id):
        assert set(MailMessage.objects.for_company(setup.company_id).values_list("pk")) == (
            message_ids
        )
