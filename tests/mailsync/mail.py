"""Test messages: small, valid RFC 822 messages built with the standard library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime


def message(
    n: int = 1,
    *,
    subject: str | None = None,
    sender: str = "Pat Customer <pat@customer.test>",
    to: str = "owner@example.test",
    message_id: str | None = None,
    references: list[str] | None = None,
    date: datetime | None = None,
    body: str | None = None,
    attachment: bytes | None = None,
) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject if subject is not None else f"Message {n}"
    mail["Date"] = format_datetime(date or datetime.now(UTC) - timedelta(minutes=n))
    mail["Message-ID"] = message_id or f"<m{n}.{id(mail)}@customer.test>"
    if references:
        mail["In-Reply-To"] = references[-1]
        mail["References"] = " ".join(references)
    mail.set_content(body if body is not None else f"Hello, this is message number {n}.\n")
    if attachment is not None:
        mail.add_attachment(
            attachment, maintype="application", subtype="octet-stream", filename="file.bin"
        )
    return bytes(mail)
