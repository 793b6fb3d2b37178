"""A real SMTP server in the test process: aiosmtpd on loopback, with AUTH PLAIN / LOGIN over a
plain connection (loopback only), its users in a dict, and the messages it accepted kept.

For the outbox's tests it can also:

- offer STARTTLS with a throwaway self-signed certificate made at start (`tls=True`; sign-in
  then only after STARTTLS). Clients trust it through `SSL_CERT_FILE` = `cert_path`;
- refuse recipients (`refuse(address, "550 5.1.1 ...")`), for good (5xx) or for now (4xx);
- drop the connection in the middle of DATA (`drop_next_data(n)`: the next n messages, after
  `DROP_AFTER_BYTES` of their content, the connection is reset: they are not delivered);
- hold its answer to DATA (`hold()`: the message is kept, then the server waits for the test
  before it says 250), to kill the sending worker between the two;
- answer DATA with something else than 250 (`data_reply`)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.mailsync.dovecot import free_port

DROP_AFTER_BYTES = 4096


@dataclass
class Hold:
    """The server has the message (`arrived`) and answers once `release` is set."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class _Handler:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []
        self.refused: dict[str, str] = {}
        self.data_reply: str | None = None
        self.held: Hold | None = None

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        answer = self.refused.get(address.lower())
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None and not self.data_reply.startswith("250"):
            return self.data_reply
        self.messages.append(envelope)
        held, self.held = self.held, None
        if held is not None:
            held.arrived.set()
            await asyncio.get_running_loop().run_in_executor(None, held.release.wait, 30)
        return self.data_reply or "250 2.0.0 OK: queued"


class _Smtp(SMTP):
    """aiosmtpd's server, able to reset the connection in the middle of DATA."""

    owner: SmtpServer

    async def smtp_DATA(self, arg: str) -> None:
        owner = self.owner
        if owner.drops_left <= 0 or arg or self.envelope is None or not self.envelope.rcpt_tos:
            await super().smtp_DATA(arg)
            return
        owner.drops_left -= 1
        owner.dropped += 1
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        received = 0
        while received < DROP_AFTER_BYTES:
            received += len(await self._reader.readuntil(b"\r\n"))
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()  # a reset, unread data and all


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, *args: Any, **kwargs: Any) -> None:
        self.owner = owner
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        server = _Smtp(self.handler, **self.SMTP_kwargs)
        server.owner = self.owner
        return server


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, its own authority, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class SmtpServer:
    def __init__(self, *, tls: bool = False) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.users: dict[str, str] = {}
        self.handler = _Handler()
        self.drops_left = 0
        self.dropped = 0
        self.cert_path: Path | None = None
        self._directory: Path | None = None
        options: dict[str, Any] = {"auth_require_tls": False}
        if tls:
            self._directory = Path(tempfile.mkdtemp(prefix="smtpd-"))
            self.cert_path, key_path = _self_signed(self._directory)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert_path, key_path)
            options = {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
        self._controller = _Controller(
            self,
            self.handler,
            hostname=self.host,
            port=self.port,
            authenticator=self._authenticate,
            **options,
        )

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            username = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if self.users.get(username) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def add_user(self, username: str, password: str) -> None:
        self.users[username] = password

    # -- what the outbox's tests ask of it -------------------------------------------------------

    @property
    def messages(self) -> list[Envelope]:
        return self.handler.messages

    def received(self, recipient: str) -> list[bytes]:
        """The contents of the messages accepted for this recipient, oldest first."""
        return [
            bytes(envelope.original_content or b"")
            for envelope in self.handler.messages
            if recipient.lower() in {r.lower() for r in envelope.rcpt_tos}
        ]

    def refuse(self, address: str, answer: str) -> None:
        self.handler.refused[address.lower()] = answer

    def drop_next_data(self, count: int = 1) -> None:
        self.drops_left = count

    def hold(self) -> Hold:
        self.handler.held = Hold()
        return self.handler.held

    def reset(self) -> None:
        """Forget what earlier tests asked (the server is shared by the run)."""
        self.handler.messages.clear()
        self.handler.refused.clear()
        self.handler.data_reply = None
        self.handler.held = None
        self.drops_left = 0
        self.dropped = 0

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
