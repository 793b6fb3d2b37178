"""Real-IMAP fixtures: one throwaway Dovecot per flavour for the whole test run, a fresh user per
test. They use no database; a test that needs one asks for `db` itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from crm import tenancy
from inbox.models import MailAccount
from mailsync import services
from tests.conftest import Cast, service_missing
from tests.mailsync.dovecot import (
    MINIMAL_CAPABILITIES,
    SPECIAL_USE,
    CutProxy,
    Dovecot,
    is_available,
)
from tests.mailsync.smtpd import SmtpServer


@dataclass(frozen=True)
class MailUser:
    username: str
    password: str
    email: str


def connect(
    cast: Cast, server: Dovecot, user: MailUser, *, port: int | None = None, **extra: object
) -> MailAccount:
    """Alice connects the Dovecot user's mailbox to Acme, as Settings → Email sync does."""
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        return services.account_connect(
            company=cast.company_a,
            owner=cast.alice,
            data=services.ImapAccountInput(
                email_address=user.email,
                imap_host=server.host,
                imap_port=port or server.port,
                imap_security="none",
                username=user.username,
                password=user.password,
                **extra,  # type: ignore[arg-type]
            ),
        )


def _start(
    *,
    condstore: bool,
    capabilities: tuple[str, ...] | None = None,
    special_use: dict[str, str] | None = None,
) -> Iterator[Dovecot]:
    if not is_available():
        service_missing("dovecot (Debian dovecot-imapd)")
    server = Dovecot(condstore=condstore, capabilities=capabilities, special_use=special_use)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """Dovecot with its default capabilities: CONDSTORE and QRESYNC advertised."""
    yield from _start(condstore=True)


@pytest.fixture(scope="session")
def dovecot_plain() -> Iterator[Dovecot]:
    """Dovecot advertising neither CONDSTORE nor QRESYNC."""
    yield from _start(condstore=False)


@pytest.fixture(scope="session")
def dovecot_minimal() -> Iterator[Dovecot]:
    """Dovecot advertising an older server's list (no CONDSTORE, QRESYNC, MOVE or UIDPLUS),
    with no Archive folder."""
    yield from _start(
        condstore=False,
        capabilities=MINIMAL_CAPABILITIES,
        special_use={k: v for k, v in SPECIAL_USE.items() if k != "Archive"},
    )


def _new_user(server: Dovecot) -> MailUser:
    username = f"u{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    server.add_user(username, password)
    return MailUser(username=username, password=password, email=f"{username}@example.test")


@pytest.fixture
def mail_user(dovecot: Dovecot) -> MailUser:
    """A fresh, empty account on `dovecot`."""
    return _new_user(dovecot)


@pytest.fixture
def mail_user_plain(dovecot_plain: Dovecot) -> MailUser:
    """A fresh, empty account on `dovecot_plain`."""
    return _new_user(dovecot_plain)


@pytest.fixture
def mail_user_minimal(dovecot_minimal: Dovecot) -> MailUser:
    """A fresh, empty account on `dovecot_minimal`."""
    return _new_user(dovecot_minimal)


@pytest.fixture
def cut_proxy(dovecot: Dovecot) -> Iterator[CutProxy]:
    """A proxy in front of `dovecot` that can cut, reset or refuse connections."""
    proxy = CutProxy(dovecot.host, dovecot.port)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server in this process (aiosmtpd) with AUTH, on loopback, for the run."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_user(smtp_server: SmtpServer, mail_user: MailUser) -> MailUser:
    """`mail_user`, able to sign in to `smtp_server` with the same credentials."""
    smtp_server.add_user(mail_user.username, mail_user.password)
    return mail_user
