"""The Dovecot harness does what the mail tests rely on."""

from __future__ import annotations

import imaplib
import re
from datetime import UTC, datetime

import pytest

from tests.mailsync.conftest import MailUser
from tests.mailsync.dovecot import (
    DEFAULT_CAPABILITIES,
    PLAIN_CAPABILITIES,
    SPECIAL_USE,
    CutProxy,
    Dovecot,
    quote_mailbox,
)

pytestmark = pytest.mark.services


def _message(subject: str, body: bytes = b"Hello.\r\n") -> bytes:
    return (
        b"From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\n"
        b"Subject: "
        + subject.encode()
        + b"\r\nMessage-ID: <"
        + subject.encode()
        + b"@example.test>"
        b"\r\n\r\n" + body
    )


def _capabilities(server: Dovecot, user: MailUser) -> tuple[str, ...]:
    with server.session(user.username, user.password) as client:
        typ, data = client.capability()
    assert typ == "OK"
    assert isinstance(data[0], bytes)
    return tuple(data[0].decode().split())


def test_flavours_differ_only_in_condstore_and_qresync(
    dovecot: Dovecot, mail_user: MailUser, dovecot_plain: Dovecot, mail_user_plain: MailUser
) -> None:
    full = _capabilities(dovecot, mail_user)
    plain = _capabilities(dovecot_plain, mail_user_plain)

    assert full == DEFAULT_CAPABILITIES  # a Dovecot upgrade that changes the list shows here
    assert plain == PLAIN_CAPABILITIES
    assert {"CONDSTORE", "QRESYNC"} <= set(full)
    assert not {"CONDSTORE", "QRESYNC"} & set(plain)
    assert {"IDLE", "UIDPLUS", "SPECIAL-USE", "MOVE"} <= set(plain)


def test_append_returns_increasing_uids(dovecot: Dovecot, mail_user: MailUser) -> None:
    user = (mail_user.username, mail_user.password)
    first = dovecot.append(*user, "INBOX", _message("one"))
    second = dovecot.append(
        *user, "INBOX", _message("two"), flags="\\Seen", date=datetime(2024, 5, 1, tzinfo=UTC)
    )

    assert (first, second) == (1, 2)
    with dovecot.session(*user) as client:
        client.select("INBOX")
        typ, data = client.uid("FETCH", str(second), "(FLAGS INTERNALDATE)")
    assert typ == "OK"
    assert isinstance(data[0], bytes)
    assert b"\\Seen" in data[0]
    assert b'"01-May-2024 00:00:00 +0000"' in data[0]


def test_recreate_folder_changes_uidvalidity(dovecot: Dovecot, mail_user: MailUser) -> None:
    user = (mail_user.username, mail_user.password)
    dovecot.create_folder(*user, "Projects/2024.Q1")
    dovecot.append(*user, "Projects/2024.Q1", _message("kept"))
    before = dovecot.uidvalidity(*user, "Projects/2024.Q1")

    dovecot.recreate_folder(*user, "Projects/2024.Q1")

    assert dovecot.uidvalidity(*user, "Projects/2024.Q1") != before
    assert dovecot.append(*user, "Projects/2024.Q1", _message("new")) == 1


def test_folder_helpers_handle_hierarchy_and_unicode(dovecot: Dovecot, mail_user: MailUser) -> None:
    user = (mail_user.username, mail_user.password)
    dovecot.create_folder(*user, "Kunden/Müller & Söhne")
    dovecot.rename_folder(*user, "Kunden/Müller & Söhne", "Kunden/Archiv")
    uid = dovecot.append(*user, "Kunden/Archiv", _message("a"))
    dovecot.set_flags(*user, "Kunden/Archiv", uid, "\\Flagged")
    dovecot.expunge_uid(*user, "Kunden/Archiv", uid)
    dovecot.delete_folder(*user, "Kunden/Archiv")

    with dovecot.session(*user) as client:
        typ, data = client.list()
    assert typ == "OK"
    names = [line.decode().rsplit(' "/" ', 1)[1] for line in data if isinstance(line, bytes)]
    assert "Kunden" in names
    assert "Kunden/Archiv" not in names
    assert quote_mailbox("Müller & Söhne") == '"M&APw-ller &- S&APY-hne"'


def test_special_use_folders_exist_for_a_new_user(dovecot: Dovecot, mail_user: MailUser) -> None:
    # Usable before anything listed them: Dovecot creates them on first access.
    assert dovecot.append(mail_user.username, mail_user.password, "Sent", _message("s")) == 1

    with dovecot.session(mail_user.username, mail_user.password) as client:
        typ, data = client.list()
    assert typ == "OK"
    roles = {}
    for line in data:
        assert isinstance(line, bytes)
        match = re.match(rb'\(([^)]*)\) "/" (.+)', line)
        assert match is not None
        for flag in match.group(1).decode().split():
            if flag in SPECIAL_USE.values():
                roles[match.group(2).decode()] = flag
    assert roles == SPECIAL_USE


def test_proxy_cut_aborts_a_fetch_midway(
    dovecot: Dovecot, mail_user: MailUser, cut_proxy: CutProxy
) -> None:
    body = b"x" * 76 + b"\r\n"
    uid = dovecot.append(
        mail_user.username, mail_user.password, "INBOX", _message("big", body * 20_000)
    )
    client = imaplib.IMAP4(cut_proxy.host, cut_proxy.port, timeout=5)
    client.login(mail_user.username, mail_user.password)
    client.select("INBOX")

    cut_proxy.cut_after_server_bytes(100_000)
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        client.uid("FETCH", str(uid), "(BODY.PEEK[])")
    client.shutdown()


def test_proxy_kill_all_and_refuse(
    dovecot: Dovecot, mail_user: MailUser, cut_proxy: CutProxy
) -> None:
    client = imaplib.IMAP4(cut_proxy.host, cut_proxy.port, timeout=5)
    client.login(mail_user.username, mail_user.password)
    assert cut_proxy.connection_count == 1

    cut_proxy.kill_all()

    assert cut_proxy.connection_count == 0
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        client.noop()
    client.shutdown()
    cut_proxy.refuse(True)
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        imaplib.IMAP4(cut_proxy.host, cut_proxy.port, timeout=5)
    cut_proxy.refuse(False)
    imaplib.IMAP4(cut_proxy.host, cut_proxy.port, timeout=5).logout()


def test_users_can_be_added_while_running_and_wiped(dovecot: Dovecot, mail_user: MailUser) -> None:
    dovecot.append(mail_user.username, mail_user.password, "INBOX", _message("gone"))
    dovecot.add_user(mail_user.username, "a-new-password")  # same length rewrite, same second

    with pytest.raises(imaplib.IMAP4.error):
        dovecot.imap(mail_user.username, mail_user.password)
    dovecot.remove_user_mail(mail_user.username)
    with dovecot.session(mail_user.username, "a-new-password") as client:
        typ, data = client.select("INBOX")
    assert (typ, data) == ("OK", [b"0"])
