"""Connection failures in plain words, against real sockets: TLS problems, a server that never
answers, a refused port, and the providers' "IMAP is off" answers. The password never shows."""

from __future__ import annotations

import datetime
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailsync.providers import imap
from mailsync.providers.base import ConnectionSettings, ErrorKind, ProviderError
from tests.mailsync.dovecot import Dovecot


def settings_for(
    host: str, port: int, security: str, *, timeout: float = 5.0
) -> ConnectionSettings:
    return ConnectionSettings(
        email_address="pat@example.test",
        host=host,
        port=port,
        security=security,
        username="pat",
        password="s3cret-Pa55word",
        timeout=timeout,
    )


def refused(settings: ConnectionSettings) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        imap.connection_test(settings)
    assert "s3cret-Pa55word" not in str(caught.value)
    return caught.value


@pytest.fixture
def self_signed_tls_server(tmp_path: Path) -> Iterator[int]:
    """A TLS server with a self-signed certificate that greets like IMAP."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(client, server_side=True) as tls:
                    tls.sendall(b"* OK ready\r\n")
            except (ssl.SSLError, OSError):
                client.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    listener.close()


def test_a_self_signed_certificate_is_refused_with_the_reason(self_signed_tls_server: int) -> None:
    error = refused(settings_for("localhost", self_signed_tls_server, "ssl"))
    assert error.kind == ErrorKind.PERMANENT
    assert "certificate" in error.message
    assert "could not be verified" in error.message


@pytest.mark.services
def test_tls_to_a_plain_port_says_to_check_port_and_security(dovecot: Dovecot) -> None:
    error = refused(settings_for(dovecot.host, dovecot.port, "ssl"))
    assert "secure (TLS) connection" in error.message
    assert "port" in error.message


@pytest.mark.services
def test_starttls_not_offered_says_to_use_ssl(dovecot: Dovecot) -> None:
    error = refused(settings_for(dovecot.host, dovecot.port, "starttls"))
    assert "does not offer STARTTLS" in error.message


def test_a_server_that_never_answers_times_out_in_plain_words() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        error = refused(settings_for("127.0.0.1", port, "none", timeout=0.5))
    assert error.kind == ErrorKind.TRANSIENT
    assert "did not answer in time" in error.message


def test_a_closed_port_is_refused_in_plain_words() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    error = refused(settings_for("127.0.0.1", port, "none"))
    assert error.kind == ErrorKind.TRANSIENT
    assert "refused the connection" in error.message


def test_an_unknown_host_is_not_found() -> None:
    error = refused(settings_for("imap.nonexistent.invalid", 993, "ssl"))
    assert "was not found" in error.message


@pytest.mark.parametrize(
    ("server_says", "expected"),
    [
        ("[AUTHENTICATIONFAILED] Authentication failed.", "username or password"),
        ("[ALERT] Please enable IMAP in your account settings.", "IMAP is turned off"),
        ("IMAP access is disabled for this account", "IMAP is turned off"),
        ("[ALERT] Application-specific password required", "app password"),
        ("Web login required", "app password"),
    ],
)
def test_login_refusals_are_told_apart(server_says: str, expected: str) -> None:
    error = imap._login_error(server_says)
    assert error.kind == ErrorKind.AUTH
    assert expected in error.message


@pytest.mark.services
def test_the_password_never_reaches_the_logs(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    error = refused(settings_for(dovecot.host, dovecot.port, "none"))
    assert error.kind == ErrorKind.AUTH
    assert "s3cret-Pa55word" not in caplog.text
    assert "s3cret-Pa55word" not in repr(settings_for(dovecot.host, dovecot.port, "none"))
