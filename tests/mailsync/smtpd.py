"""A real SMTP server in the test process: aiosmtpd on loopback, with AUTH PLAIN / LOGIN over a
plain connection (loopback only), its users in a dict, and the messages it accepted kept."""

from __future__ import annotations

from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.mailsync.dovecot import free_port


class _Handler:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.users: dict[str, str] = {}
        self.handler = _Handler()
        self._controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
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

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
