"""SMTP, for the account's sending settings: the connection test the "Add account" form runs
before it saves, and `SmtpSender`, the outbox's transport for IMAP accounts (decision 0012).

    S: 220 smtp.example.com ESMTP
    C: EHLO crm                     S: 250-STARTTLS / 250-AUTH PLAIN LOGIN / 250 SIZE 26214400
    C: STARTTLS (for "starttls")    then EHLO again over TLS
    C: AUTH PLAIN …                 S: 235 ok | 535 authentication failed
    C: MAIL FROM:<me@example.com> SIZE=48213          S: 250
    C: RCPT TO:<pat@customer.test>                    S: 250 | 550 5.1.1 no such user
       (before_data: the outbox commits "sending")
    C: DATA                                           S: 354
    C: <the message, dot-stuffed> CRLF . CRLF         S: 250 2.0.0 Ok: queued as 4F2A1

Where a failure leaves the message decides what happens next: refused before DATA, or the
connection lost before the final "." was written, the server does not have it (retried). Lost
after the "." and before the answer, the server may have it: `SendError(maybe_sent=True)`,
which the outbox never retries on its own (RFC 1047: "Duplicate messages and SMTP"). Any
recipient refused for good aborts the whole message (RSET): the others would get it now and
again after the user fixed the address.
"""

from __future__ import annotations

import contextlib
import re
import select
import smtplib
import socket
import ssl
from types import TracebackType
from typing import Self

from mailsync.providers.base import (
    ConnectionSettings,
    Envelope,
    ErrorKind,
    ProviderError,
    SendError,
    network_error,
)

_EOLS = re.compile(rb"(?:\r\n|\n|\r(?!\n))")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_AUTH_CODES = frozenset({530, 534, 535, 538})
_RATE_WORDS = ("rate", "too many", "throttl", "try again later")


def smtp_open(settings: ConnectionSettings, *, local_hostname: str | None = None) -> smtplib.SMTP:
    """Connect, secure and sign in. Raises ProviderError in plain words."""
    host = settings.host
    client: smtplib.SMTP | None = None
    try:
        if settings.security == "ssl":
            client = smtplib.SMTP_SSL(
                host,
                settings.port,
                local_hostname=local_hostname,
                timeout=settings.timeout,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(
                host, settings.port, local_hostname=local_hostname, timeout=settings.timeout
            )
        client.ehlo()
        if settings.security == "starttls":
            if not client.has_extn("starttls"):
                raise ProviderError(
                    ErrorKind.PERMANENT,
                    f"The SMTP server {host} does not offer STARTTLS on port "
                    f"{settings.port}. Choose SSL/TLS (usually port 465) instead.",
                )
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        # A server without AUTH (a relay that trusts this network) needs no sign-in.
        if client.has_extn("auth"):
            client.login(settings.username, settings.password)
        return client
    except BaseException as exc:
        if client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.close()
        raise _open_error(exc, host) from None


def _open_error(exc: BaseException, host: str) -> BaseException:
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return ProviderError(
            ErrorKind.AUTH,
            "The SMTP server refused the username or password for sending. Check them (many "
            "providers need an app password) and try again.",
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return ProviderError(
            ErrorKind.PERMANENT,
            f"The SMTP server {host} offers no sign-in method we can use on this connection. "
            "Choose SSL/TLS or STARTTLS.",
        )
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return network_error(exc, host=host, service="SMTP")
    if isinstance(exc, smtplib.SMTPException):
        return ProviderError(
            ErrorKind.PERMANENT, f"The SMTP server {host} refused the connection: {exc}"
        )
    if isinstance(exc, OSError):
        return network_error(exc, host=host, service="SMTP")
    return exc


def smtp_connection_test(settings: ConnectionSettings) -> None:
    """Connect, secure and sign in as sending would. Raises ProviderError in plain words."""
    client = smtp_open(settings)
    with contextlib.suppress(OSError, smtplib.SMTPException):
        client.quit()


# --- Sending ---------------------------------------------------------------------------------


def _answer(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(f"{code} {text}".split())[:300]


def _refusal(code: int, reply: bytes, *, host: str) -> SendError:
    """The server's "no" to the sender, the message or its size, in plain words."""
    answer = _answer(code, reply)
    lowered = answer.lower()
    if code == 552 or "5.3.4" in answer or (code >= 500 and "size" in lowered):
        return SendError(
            ErrorKind.PERMANENT,
            f"The message is too large for the mail server ({answer}). Remove or shrink "
            "files, then send it again.",
            reply=answer,
        )
    if code in _AUTH_CODES:
        return SendError(
            ErrorKind.AUTH,
            f"The mail server {host} asks to sign in again ({answer}). Reconnect the account "
            "in Settings → Email sync, then send it again.",
            reply=answer,
        )
    if 500 <= code < 600:
        return SendError(
            ErrorKind.PERMANENT, f"The mail server refused the message: {answer}.", reply=answer
        )
    kind = (
        ErrorKind.RATE_LIMITED
        if any(word in lowered for word in _RATE_WORDS)
        else ErrorKind.TRANSIENT
    )
    return SendError(
        kind, f"The mail server put the message off ({answer}); we will retry.", reply=answer
    )


def _recipients_refused(refused: dict[str, tuple[int, str]]) -> SendError:
    permanent = {rcpt: answer for rcpt, (code, answer) in refused.items() if code >= 500}
    if permanent:
        named = "; ".join(f"{rcpt} ({answer})" for rcpt, answer in permanent.items())
        noun = "recipient" if len(permanent) == 1 else "recipients"
        return SendError(
            ErrorKind.PERMANENT,
            f"The mail server refused the {noun} {named}. Check the address, then send it "
            "again; nobody was sent the message.",
            refused=permanent,
        )
    named = "; ".join(f"{rcpt} ({answer})" for rcpt, (_, answer) in refused.items())
    return SendError(
        ErrorKind.TRANSIENT,
        f"The mail server put off {named}; we will retry.",
        refused={rcpt: answer for rcpt, (_, answer) in refused.items()},
    )


def data_bytes(raw: bytes) -> bytes:
    """The message as DATA carries it: CRLF line ends, lines starting with "." doubled,
    ending with CRLF (the final "." line is sent apart)."""
    data = _LEADING_DOT.sub(b"..", _EOLS.sub(b"\r\n", raw))
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _hung_up(sock: socket.socket) -> bool:
    """Did the server close the connection while we wrote the message? It says nothing
    during DATA, so anything to read now is the end of the connection (or an early error
    answer, which the reply after the "." reads). TLS sockets cannot peek: not checked."""
    if isinstance(sock, ssl.SSLSocket):
        return False
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class SmtpSender:
    """One SMTP connection for a run of one account's outbox (`base.Sender`); opened at the
    first message, reused for the next, opened again after a broken one."""

    def __init__(self, settings: ConnectionSettings, *, local_hostname: str | None = None) -> None:
        self.settings = settings
        self.local_hostname = local_hostname
        self._client: smtplib.SMTP | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.quit()
        with contextlib.suppress(OSError):
            client.close()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(OSError):
                client.close()

    def _connected(self) -> smtplib.SMTP:
        if self._client is None:
            client = smtp_open(self.settings, local_hostname=self.local_hostname)
            if client.sock is not None:
                # The message and its final "." are two writes in a row: without this the
                # second waits for the first's (delayed) acknowledgement, 40 ms a message.
                with contextlib.suppress(OSError):
                    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._client = client
        return self._client

    def _reset(self) -> None:
        if self._client is None:
            return
        try:
            code, _ = self._client.rset()
        except (OSError, smtplib.SMTPException):
            code = 0
        if code != 250:
            self._drop()

    def begin(self, envelope: Envelope, size: int) -> None:
        """Connect (once per run), MAIL FROM and RCPT TO: nothing is delivered yet. A refused
        recipient aborts the message (see the module docstring)."""
        try:
            self._envelope(self._connected(), envelope, size)
        except (smtplib.SMTPServerDisconnected, OSError):
            # A connection left idle may have been closed by the server: nothing was handed
            # over yet, so once more on a fresh one.
            self._drop()
            try:
                self._envelope(self._connected(), envelope, size)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._drop()
                raise network_error(exc, host=self.settings.host, service="SMTP") from None

    def abort(self) -> None:
        """Drop the begun message (RSET), or the connection when even that fails."""
        self._reset()

    def hand_over(self, raw: bytes) -> str:
        """DATA: the message, then the server's answer (see the module docstring)."""
        if self._client is None:
            raise SendError(ErrorKind.TRANSIENT, "Not connected; we will retry.")
        return self._data(self._client, data_bytes(raw))

    def _envelope(self, client: smtplib.SMTP, envelope: Envelope, size: int) -> None:
        options = [f"SIZE={size}"] if client.has_extn("size") else []
        code, reply = client.mail(envelope.sender, options)
        if code != 250:
            self._reset()
            raise _refusal(code, reply, host=self.settings.host)
        refused: dict[str, tuple[int, str]] = {}
        for recipient in envelope.recipients:
            code, reply = client.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, _answer(code, reply))
        if refused:
            self._reset()
            raise _recipients_refused(refused)

    def _data(self, client: smtplib.SMTP, data: bytes) -> str:
        host = self.settings.host
        try:
            code, reply = client.docmd("data")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise network_error(exc, host=host, service="SMTP") from None
        if code != 354:
            self._reset()
            raise _refusal(code, reply, host=host)
        sock = client.sock
        try:
            if sock is None:
                raise ConnectionResetError("not connected")
            sock.sendall(data)
            if _hung_up(sock):
                raise ConnectionResetError("the server hung up")
            sock.sendall(b".\r\n")
        except OSError:
            # The end of the message was never written: the server cannot have taken it.
            self._drop()
            raise SendError(
                ErrorKind.TRANSIENT,
                f"The connection to {host} broke off while the message was being handed "
                "over; it was not delivered. We will retry.",
            ) from None
        try:
            code, reply = client.getreply()
        except (smtplib.SMTPServerDisconnected, OSError):
            self._drop()
            raise SendError(
                ErrorKind.TRANSIENT,
                f"The connection to {host} broke off right after the message was handed "
                "over, before the server confirmed it.",
                maybe_sent=True,
            ) from None
        if code == 250:
            return _answer(code, reply)
        if code == 421:  # the server is closing the connection
            self._drop()
        raise _refusal(code, reply, host=host)
