"""The sending settings' connection test against a real SMTP server (aiosmtpd): signed in,
refused, STARTTLS missing, port closed; in plain words, without the password."""

from __future__ import annotations

import socket

import pytest

from mailsync.providers.base import ConnectionSettings, ErrorKind, ProviderError
from mailsync.providers.smtp import smtp_connection_test
from tests.mailsync.smtpd import SmtpServer

PASSWORD = "smtp-Pa55word"


def settings_for(port: int, security: str, password: str = PASSWORD) -> ConnectionSettings:
    return ConnectionSettings(
        email_address="pat@example.test",
        host="127.0.0.1",
        port=port,
        security=security,
        username="pat",
        password=password,
        timeout=5.0,
    )


def refused(settings: ConnectionSettings) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        smtp_connection_test(settings)
    assert settings.password not in str(caught.value)
    return caught.value


@pytest.fixture
def server(smtp_server: SmtpServer) -> SmtpServer:
    smtp_server.add_user("pat", PASSWORD)
    return smtp_server


def test_good_credentials_sign_in(server: SmtpServer) -> None:
    smtp_connection_test(settings_for(server.port, "none"))


def test_a_wrong_password_is_refused_in_plain_words(server: SmtpServer) -> None:
    error = refused(settings_for(server.port, "none", password="wrong"))
    assert error.kind == ErrorKind.AUTH
    assert "username or password" in error.message


def test_starttls_not_offered_says_to_use_ssl(server: SmtpServer) -> None:
    error = refused(settings_for(server.port, "starttls"))
    assert "does not offer STARTTLS" in error.message


def test_tls_to_a_plain_port_says_to_check_the_port(server: SmtpServer) -> None:
    error = refused(settings_for(server.port, "ssl"))
    assert "secure (TLS) connection" in error.message
    assert "465" in error.message


def test_a_closed_port_is_refused(server: SmtpServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    error = refused(settings_for(port, "none"))
    assert "refused the connection" in error.message
