"""The IDLE supervisor against a real Dovecot: it notices changes, survives cuts and bad
passwords, and runs many watchers on one thread."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from mailsync.idle import IdleSupervisor, IdleTarget
from mailsync.providers.imap import decode_mailbox_name, encode_mailbox_name
from tests.mailsync.conftest import MailUser
from tests.mailsync.dovecot import CutProxy, Dovecot

pytestmark = pytest.mark.services

MESSAGE = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello.\r\n"


def _target(
    server: Dovecot | CutProxy,
    user: MailUser,
    *,
    key: str = "1:1",
    password: str | None = None,
    folders: tuple[str, ...] = ("INBOX",),
    security: str = "none",
) -> IdleTarget:
    return IdleTarget(
        key=key,
        host=server.host,
        port=server.port,
        security=security,
        username=user.username,
        password=user.password if password is None else password,
        folders=folders,
    )


class Recorder:
    """An on_change that remembers its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, key: str, folder: str) -> None:
        self.calls.append((key, folder))


async def _until(condition: Callable[[], bool], timeout: float = 2.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _in_thread(function: Callable[[], object]) -> None:
    """Blocking imaplib work from a test, off the event loop the watchers run on."""
    await asyncio.to_thread(function)


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 10))


def test_append_by_another_client_calls_on_change(dovecot: Dovecot, mail_user: MailUser) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        supervisor = IdleSupervisor(recorder)
        await supervisor.set_targets([_target(dovecot, mail_user)])
        await _until(lambda: supervisor.status() == {("1:1", "INBOX"): "idling"})
        assert recorder.calls == []  # the first connection is not a change

        started = time.monotonic()
        await _in_thread(
            lambda: dovecot.append(mail_user.username, mail_user.password, "INBOX", MESSAGE)
        )
        await _until(lambda: recorder.calls == [("1:1", "INBOX")], timeout=2)
        assert time.monotonic() - started < 2
        await supervisor.close()
        assert supervisor.status() == {}

    _run(scenario)


def test_expunge_calls_on_change(dovecot: Dovecot, mail_user: MailUser) -> None:
    user = (mail_user.username, mail_user.password)
    uid = dovecot.append(*user, "INBOX", MESSAGE)

    async def scenario() -> None:
        recorder = Recorder()
        supervisor = IdleSupervisor(recorder)
        await supervisor.set_targets([_target(dovecot, mail_user)])
        await _until(lambda: supervisor.status() == {("1:1", "INBOX"): "idling"})

        await _in_thread(lambda: dovecot.expunge_uid(*user, "INBOX", uid))
        await _until(lambda: len(recorder.calls) >= 1, timeout=2)
        await supervisor.close()

    _run(scenario)


def test_burst_of_changes_is_coalesced(dovecot: Dovecot, mail_user: MailUser) -> None:
    user = (mail_user.username, mail_user.password)

    async def scenario() -> None:
        recorder = Recorder()
        supervisor = IdleSupervisor(recorder)
        await supervisor.set_targets([_target(dovecot, mail_user)])
        await _until(lambda: supervisor.status() == {("1:1", "INBOX"): "idling"})

        def burst() -> None:
            with dovecot.session(*user) as client:
                for _ in range(10):
                    client.append("INBOX", "", "", MESSAGE)

        await _in_thread(burst)
        await _until(lambda: len(recorder.calls) >= 1)
        await asyncio.sleep(0.7)  # a trailing call may follow, then no more
        assert 1 <= len(recorder.calls) <= 2
        await supervisor.close()

    _run(scenario)


def test_cut_connection_reconnects_and_calls_on_change_once(
    dovecot: Dovecot, mail_user: MailUser, cut_proxy: CutProxy
) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        supervisor = IdleSupervisor(recorder)
        await supervisor.set_targets([_target(cut_proxy, mail_user)])
        await _until(lambda: supervisor.status() == {("1:1", "INBOX"): "idling"})

        await asyncio.to_thread(cut_proxy.kill_all)
        await _until(lambda: supervisor.status()[("1:1", "INBOX")].startswith("backoff:"))
        await _until(lambda: supervisor.status() == {("1:1", "INBOX"): "idling"})
        await _until(lambda: recorder.calls == [("1:1", "INBOX")], timeout=1)
        await asyncio.sleep(0.3)
        assert recorder.calls == [("1:1", "INBOX")]
        await supervisor.close()

    _run(scenario)


def test_wrong_password_backs_off_without_crashing(dovecot: Dovecot, mail_user: MailUser) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        supervisor = IdleSupervisor(recorder, max_backoff=60)
        await supervisor.set_targets([_target(dovecot, mail_user, password="wrong")])

        await _until(lambda: supervisor.status()[("1:1", "INBOX")].startswith("backoff:"))
        status = supervisor.status()[("1:1", "INBOX")]
        assert "authentication failed" in status
        assert "wrong" not in status
        assert "wrong" not in repr(_target(dovecot, mail_user, password="wrong"))
        await supervisor.close()
        assert recorder.calls == []

    _run(scenario)


def test_starttls_is_required_when_asked_for(dovecot: Dovecot, mail_user: MailUser) -> None:
    """The test Dovecot has no TLS: a "starttls" target must not fall back to clear text."""

    async def scenario() -> None:
        supervisor = IdleSupervisor(Recorder())
        await supervisor.set_targets([_target(dovecot, mail_user, security="starttls")])
        await _until(lambda: supervisor.status()[("1:1", "INBOX")].startswith("backoff:"))
        assert "STARTTLS" in supervisor.status()[("1:1", "INBOX")]
        await supervisor.close()

    _run(scenario)


def test_set_targets_stops_removed_watchers_and_closes_their_connections(
    dovecot: Dovecot, mail_user: MailUser, cut_proxy: CutProxy
) -> None:
    dovecot.create_folder(mail_user.username, mail_user.password, "Sent/Ünterordner")

    async def scenario() -> None:
        supervisor = IdleSupervisor(Recorder())
        both = _target(cut_proxy, mail_user, folders=("INBOX", "Sent/Ünterordner"))
        other = _target(cut_proxy, mail_user, key="1:2")
        await supervisor.set_targets([both, other])
        await _until(lambda: set(supervisor.status().values()) == {"idling"})
        assert len(supervisor.status()) == 3
        assert cut_proxy.connection_count == 3

        await supervisor.set_targets([both])
        assert set(supervisor.status()) == {("1:1", "INBOX"), ("1:1", "Sent/Ünterordner")}
        await _until(lambda: cut_proxy.connection_count == 2, timeout=1)

        await supervisor.set_targets([_target(cut_proxy, mail_user, folders=("INBOX",))])
        await _until(lambda: cut_proxy.connection_count == 1, timeout=1)
        assert supervisor.status() == {("1:1", "INBOX"): "idling"}  # kept its connection

        await supervisor.close()
        await _until(lambda: cut_proxy.connection_count == 0, timeout=1)

    _run(scenario)


def test_twenty_targets_on_one_thread(dovecot: Dovecot) -> None:
    users = [MailUser(f"u{uuid.uuid4().hex[:8]}", "secret", "") for _ in range(20)]
    for user in users:
        dovecot.add_user(user.username, user.password)

    async def scenario() -> None:
        recorder = Recorder()
        supervisor = IdleSupervisor(recorder)
        threads_before = threading.active_count()
        targets = [_target(dovecot, user, key=f"1:{n}") for n, user in enumerate(users)]

        await supervisor.set_targets(targets)
        await _until(lambda: list(supervisor.status().values()) == ["idling"] * 20)
        assert threading.active_count() == threads_before  # no thread per account

        await asyncio.to_thread(
            lambda: dovecot.append(users[7].username, users[7].password, "INBOX", MESSAGE)
        )
        await _until(lambda: recorder.calls == [("1:7", "INBOX")], timeout=2)
        await supervisor.close()

    _run(scenario)


def test_unicode_folder_names_are_encoded_in_modified_utf7() -> None:
    # RFC 3501 section 5.1.3's own example, and round trips.
    assert encode_mailbox_name("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert encode_mailbox_name("Entwürfe") == "Entw&APw-rfe"
    assert encode_mailbox_name("A&B") == "A&-B"
    for name in ("INBOX", "Entwürfe", "A&B", "日本語/メール", "~user"):
        assert decode_mailbox_name(encode_mailbox_name(name)) == name


def test_renewed_idle_still_reports_changes(dovecot: Dovecot, mail_user: MailUser) -> None:
    async def scenario() -> None:
        calls: list[tuple[str, str]] = []
        supervisor = IdleSupervisor(
            lambda key, folder: calls.append((key, folder)), renew_seconds=0.2
        )
        await supervisor.set_targets([_target(dovecot, mail_user)])
        await _until(lambda: supervisor.status() == {("1:1", "INBOX"): "idling"})
        await asyncio.sleep(0.7)  # three DONE / IDLE rounds

        await _in_thread(
            lambda: dovecot.append(mail_user.username, mail_user.password, "INBOX", MESSAGE)
        )
        await _until(lambda: calls == [("1:1", "INBOX")], timeout=2)
        assert supervisor.status() == {("1:1", "INBOX"): "idling"}
        await supervisor.close()

    _run(scenario)


def test_password_with_quotes_and_umlauts_logs_in(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    user = MailUser(f"u{uuid.uuid4().hex[:8]}", 'p"ä\\ss wörd', "")
    dovecot.add_user(user.username, user.password)

    async def scenario() -> None:
        supervisor = IdleSupervisor(Recorder())
        await supervisor.set_targets([_target(dovecot, user)])
        await _until(lambda: supervisor.status() == {("1:1", "INBOX"): "idling"})
        await supervisor.close()

    with caplog.at_level("DEBUG", logger="mailsync.idle"):
        _run(scenario)
    assert "wörd" not in caplog.text


def test_server_restart_reconnects_and_calls_on_change(
    dovecot: Dovecot, mail_user: MailUser
) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        supervisor = IdleSupervisor(recorder)
        await supervisor.set_targets([_target(dovecot, mail_user)])
        await _until(lambda: supervisor.status() == {("1:1", "INBOX"): "idling"})

        await asyncio.to_thread(dovecot.restart)  # "* BYE Server shutting down."
        await _until(lambda: recorder.calls == [("1:1", "INBOX")])
        assert supervisor.status() == {("1:1", "INBOX"): "idling"}
        await supervisor.close()

    _run(scenario)


def test_server_without_idle_is_marked_unsupported() -> None:
    """A minimal fake server (Dovecot always offers IDLE): the watcher gives up, quietly."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK fake IMAP ready\r\n")
        while line := await reader.readline():
            tag, command = line.split()[:2]
            if command.upper() == b"CAPABILITY":
                writer.write(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
            writer.write(tag + b" OK done\r\n")
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        supervisor = IdleSupervisor(Recorder())
        target = IdleTarget(
            key="9:9",
            host="127.0.0.1",
            port=port,
            security="none",
            username="someone",
            password="secret",
            folders=("INBOX",),
        )
        await supervisor.set_targets([target])
        await _until(lambda: supervisor.status() == {("9:9", "INBOX"): "unsupported"})
        await supervisor.close()
        server.close()
        await server.wait_closed()

    _run(scenario)
