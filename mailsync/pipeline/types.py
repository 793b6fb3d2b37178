"""The plain data that flows through the ingest pipeline: `parse → dedupe → thread → link →
visibility → store` (DESIGN.md). Frozen dataclasses, no Django: the pure stages take and return
these, so they test in milliseconds without a database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ParticipantRole(StrEnum):
    FROM = "from"
    SENDER = "sender"
    REPLY_TO = "reply_to"
    TO = "to"
    CC = "cc"
    BCC = "bcc"


class AttachmentKind(StrEnum):
    FILE = "file"
    INLINE = "inline"  # an image referenced by cid: from the HTML body
    TNEF = "tnef"  # winmail.dat: Outlook's wrapper; noted, kept as is
    SMIME = "smime"  # application/pkcs7-*: signature or encrypted part, kept as is
    PGP = "pgp"  # application/pgp-*: signature or encrypted part, kept as is
    MESSAGE = "message"  # an attached message/rfc822


@dataclass(frozen=True, slots=True)
class Participant:
    role: ParticipantRole
    address: str  # normalized: lower-cased, IDNA domain; "" when the header held no address
    name: str  # display name, decoded; "" when absent


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    filename: str  # decoded; a made-up "attachment-N.<ext>" when the part named none
    content_type: str  # lower-case "type/subtype"
    size: int  # decoded bytes
    kind: AttachmentKind
    content_id: str  # without <>; "" when absent
    # Offsets are not kept: the content is re-read from the raw message when downloaded.
    # `part_path` addresses the MIME part ("1.2" style, like IMAP BODY[1.2]).
    part_path: str


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """One RFC 822 message, as much of it as could be read.

    `parse_error` is "" for a message that parsed; otherwise a short reason, and the fields hold
    whatever could still be read (at worst only `key` and `size`)."""

    key: str  # the dedupe key: "<normalized message-id>", or "sha256:<hex>" of the raw bytes
    message_id: str  # normalized Message-ID (no <>, lower-cased domain); "" when absent/invalid
    in_reply_to: str  # normalized, "" when absent
    references: tuple[str, ...]  # normalized, oldest first, without duplicates
    subject: str  # decoded
    thread_subject: str  # subject without Re:/Fwd:/AW:/SV:/[tags], case-folded, for threading
    date: datetime | None  # the Date header, aware; None when absent or unreadable
    participants: tuple[Participant, ...]
    body_text: str
    body_html: str  # the original HTML, unsanitized ("" when the message had none)
    snippet: str  # up to 225 characters of text, whitespace collapsed
    attachments: tuple[ParsedAttachment, ...]
    size: int  # bytes of the raw message
    # List-Id / Precedence: bulk|list|junk / Auto-Submitted other than "no", or a machine sender
    # (noreply@, mailer-daemon@, ...): mail about nobody, never linked to persons or deals.
    is_bulk: bool
    headers: tuple[tuple[str, str], ...] = ()  # a few kept for later stages (e.g. List-Id)
    parse_error: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. "tnef", "8bit-headers"

    @property
    def from_participant(self) -> Participant | None:
        for participant in self.participants:
            if participant.role is ParticipantRole.FROM:
                return participant
        return None
