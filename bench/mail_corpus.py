"""A synthetic mailbox for bench/mail_sync.py, written straight into a Maildir.

`corpus_write` writes N messages into the folders of one Dovecot user's Maildir (LAYOUT=fs,
INBOX at the Maildir's root), deterministically from a seed (dates are relative to today's
midnight, UTC, so one seed gives the same bytes all day):

- sizes: most messages 3-30 KB of text and HTML (multipart/alternative, log-uniform, so small
  ones are common); about 2% carry an attachment of 100 KB - 2 MB (multipart/mixed); a few
  (one per 20,000, at least two) carry 5-10 MB;
- threads: about 30% are replies (In-Reply-To, References, "Re:" subject) to a recent earlier
  message, with the same correspondent;
- 2,000 distinct correspondents; dates spread over the last 80 days (inside the default 90-day
  window of the first sync);
- folders: INBOX ~70%, Sent ~25%, Archive ~3%, Clients ~2%.

Writing files beats APPEND by far (100,000 APPENDs take many minutes): each file goes into
`cur/` under a unique name `<date>.M<n>P<seed>.bench,S=<size>,W=<rfc822 size>:2,<flags>`,
owned by the mail user, with its mtime set to the message's date (Dovecot's INTERNALDATE for
Maildir). Names start with the date, so Dovecot numbers UIDs in date order, as a real mailbox
grows. The caller then lets Dovecot index them (`doveadm index`).
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

MAIL_UID = MAIL_GID = 65534  # what tests/mailsync/dovecot.py runs mail processes as

# Folder, share of the messages. Dovecot's special-use config names Sent and Archive.
FOLDERS: tuple[tuple[str, float], ...] = (
    ("INBOX", 0.70),
    ("Sent", 0.25),
    ("Archive", 0.03),
    ("Clients", 0.02),
)
CORRESPONDENTS = 2_000
DAYS = 80
REPLY_SHARE = 0.30
ATTACHMENT_SHARE = 0.02
# A reply answers one of this many latest messages: threads stay recent, as real ones do.
REPLY_WINDOW = 3_000

_FIRST = (  # noqa: SIM905 - words read better as text
    "Anna Ben Carla David Emma Felix Greta Hugo Ines Jonas Katrin Lukas Maria Niklas Olga "
    "Paul Rosa Simon Tanja Uwe Vera Walter Xenia Yusuf Zoe Chloé José Søren Łukasz Zoë"
).split()
_LAST = (  # noqa: SIM905 - words read better as text
    "Adams Becker Costa Dubois Eriksen Fischer García Hansen Ivanova Jensen Kowalski Larsen "
    "Müller Nowak Olsen Petrov Quinn Rossi Schmidt Tanaka Umarov Vogel Weber Young Zhang"
).split()
_WORDS = (  # noqa: SIM905 - words read better as text
    "the of and to in a is that for it as with was on be by this are from or have an they "
    "which one you were all we there can when your said more what some time if will each "
    "about how up out them then many would these so other into has her two like him see "
    "could no make than first been its who now people my made over did down only way find "
    "use may water long little very after words called just where most know get through "
    "back much before go good new write our used me man too any day same right look think "
    "also around another came come work three must because does part even place well such "
    "proposal invoice meeting quarter budget contract delivery schedule review pricing "
    "order shipment forecast renewal agenda update customer account report draft figures "
    "café naïve résumé Zürich Straße coöperate"
).split()
_TOPICS = (
    "Quote for",
    "Meeting about",
    "Invoice",
    "Question on",
    "Update:",
    "Follow-up:",
    "Proposal for",
    "Contract",
    "Delivery of",
    "Feedback on",
    "Schedule for",
    "Re-order of",
)
_THINGS = (
    "the Q3 plan",
    "order 4711",
    "the new warehouse",
    "pricing 2027",
    "the renewal",
    "the pilot",
    "support hours",
    "the workshop",
    "your account",
    "the shipment",
    "the roadmap",
    "onboarding",
    "the trade fair",
    "Zürich office",
    "the migration",
)


@dataclass
class CorpusStats:
    messages: int = 0
    bytes: int = 0
    replies: int = 0
    with_attachment: int = 0
    large: int = 0
    folders: Counter[str] = field(default_factory=Counter)
    correspondents: int = 0
    # Every correspondent's address (also those only ever in Cc), as written in the headers:
    # bench/mail_sync.py --persons gives each one to a CRM person.
    addresses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Sent:
    """What a reply needs of an earlier message."""

    message_id: str
    references: tuple[str, ...]
    subject: str
    correspondent: int


def _encode_header(text: str) -> str:
    if text.isascii():
        return text
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode("ascii") + "?="


def _address(name: str, email: str) -> str:
    return f"{_encode_header(name)} <{email}>" if not name.isascii() else f'"{name}" <{email}>'


class _Material:
    """Text lines and base64 lines cut into bodies and attachments by offset (generating
    fresh words for 2 GB of mail would take longer than the benchmark)."""

    def __init__(self, rng: random.Random) -> None:
        lines: list[str] = []
        for _ in range(20_000):
            words: list[str] = []
            length = 0
            while length < 66:
                word = rng.choice(_WORDS)
                words.append(word)
                length += len(word) + 1
            line = " ".join(words)
            lines.append(line[0].upper() + line[1:] + ".")
        self.lines = lines
        blob = base64.encodebytes(rng.randbytes(11 * 1024 * 1024))  # 76-char lines + "\n"
        self.b64 = blob
        self.b64_lines = len(blob) // 77

    def text(self, rng: random.Random, size: int) -> list[str]:
        count = max(1, size // 72)
        start = rng.randrange(len(self.lines) - count) if count < len(self.lines) else 0
        return self.lines[start : start + count]

    def attachment(self, rng: random.Random, size: int) -> bytes:
        count = math.ceil(size / 57)
        start = rng.randrange(self.b64_lines - count)
        return self.b64[start * 77 : (start + count) * 77]


def _log_uniform(rng: random.Random, low: float, high: float) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def _body(
    rng: random.Random, material: _Material, size: int, boundary: str, greeting: str
) -> bytes:
    """A multipart/alternative body (text 8bit, HTML quoted-printable) of about `size` bytes."""
    lines = material.text(rng, int(size * 0.42))
    paragraphs = ["\n".join(lines[k : k + 5]) for k in range(0, len(lines), 5)]
    text = greeting + "\n\n" + "\n\n".join(paragraphs) + "\n\nBest regards\n"
    html = (
        '<html><head><meta charset="utf-8"></head><body>'
        + f"<p>{greeting}</p>\n"
        + "\n".join(f'<p style="margin:0 0 1em 0">{p}</p>' for p in paragraphs)
        + "\n<p>Best regards</p></body></html>\n"
    )
    html_qp = binascii.b2a_qp(html.encode(), istext=True)
    return (
        (
            f"--{boundary}\n"
            'Content-Type: text/plain; charset="utf-8"\n'
            "Content-Transfer-Encoding: 8bit\n\n"
        ).encode()
        + text.encode()
        + (
            f"\n--{boundary}\n"
            'Content-Type: text/html; charset="utf-8"\n'
            "Content-Transfer-Encoding: quoted-printable\n\n"
        ).encode()
        + html_qp
        + f"\n--{boundary}--\n".encode()
    )


def message_bytes(
    *,
    message_id: str,
    date: datetime,
    sender: str,
    recipient: str,
    subject: str,
    body: bytes,
    content_type: str,
    cc: str = "",
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
) -> bytes:
    headers = [
        f"Return-Path: <{sender.rpartition('<')[2].rstrip('>')}>",
        f"Date: {format_datetime(date)}",
        f"From: {sender}",
        f"To: {recipient}",
    ]
    if cc:
        headers.append(f"Cc: {cc}")
    headers.append(f"Subject: {_encode_header(subject)}")
    headers.append(f"Message-ID: {message_id}")
    if in_reply_to:
        headers.append(f"In-Reply-To: {in_reply_to}")
        headers.append("References: " + "\n ".join(references))
    headers += ["MIME-Version: 1.0", f"Content-Type: {content_type}", "X-Mailer: bench-corpus"]
    return ("\n".join(headers) + "\n\n").encode() + body


def simple_message(*, message_id: str, sender: str, recipient: str, subject: str) -> bytes:
    """A small text message, for APPEND (CRLF line ends, as IMAP wants them)."""
    raw = message_bytes(
        message_id=message_id,
        date=datetime.now(UTC),
        sender=sender,
        recipient=recipient,
        subject=subject,
        body=b"Hello,\n\nthis is a new message for the latency measurement.\n\nBest\n",
        content_type='text/plain; charset="utf-8"',
    )
    return raw.replace(b"\n", b"\r\n")


def corpus_write(
    maildir: Path, *, messages: int, seed: int, owner_email: str, owner_name: str = "Bench Owner"
) -> CorpusStats:
    """Write the mailbox into `maildir` (the user's `Maildir`, created here)."""
    rng = random.Random(seed)
    material = _Material(rng)
    stats = CorpusStats()
    names = [(rng.choice(_FIRST), rng.choice(_LAST)) for _ in range(CORRESPONDENTS)]
    stats.addresses = [
        f"{first.lower()}.{k}@client{k % 400}.example" for k, (first, _) in enumerate(names)
    ]
    correspondents = [
        _address(f"{first} {last}", email)
        for (first, last), email in zip(names, stats.addresses, strict=True)
    ]
    owner = _address(owner_name, owner_email)
    folder_dirs: dict[str, Path] = {}
    for folder, _ in FOLDERS:
        base = maildir if folder == "INBOX" else maildir / folder
        for directory in (base, base / "cur", base / "new", base / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)
            os.chown(directory, MAIL_UID, MAIL_GID)
            directory.chmod(0o700)
        folder_dirs[folder] = base / "cur"

    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight - timedelta(days=DAYS)
    span = int((midnight - start).total_seconds())
    stamps = sorted(rng.randrange(span) for _ in range(messages))
    large = set(rng.sample(range(messages), min(messages, max(2, messages // 20_000))))
    weights = [share for _, share in FOLDERS]
    folder_names = [name for name, _ in FOLDERS]
    earlier: list[_Sent] = []
    used: set[int] = set()
    for i in range(messages):
        date = start + timedelta(seconds=stamps[i])
        folder = rng.choices(folder_names, weights)[0]
        parent = (
            rng.choice(earlier[-REPLY_WINDOW:]) if earlier and rng.random() < REPLY_SHARE else None
        )
        if parent is not None:
            who = parent.correspondent
            subject = (
                parent.subject if parent.subject.startswith("Re: ") else ("Re: " + parent.subject)
            )
            references = (*parent.references[-9:], parent.message_id)
            stats.replies += 1
        else:
            who = rng.randrange(CORRESPONDENTS)
            subject = f"{rng.choice(_TOPICS)} {rng.choice(_THINGS)}"
            references = ()
        used.add(who)
        them = correspondents[who]
        sender, recipient = (owner, them) if folder == "Sent" else (them, owner)
        cc = correspondents[rng.randrange(CORRESPONDENTS)] if rng.random() < 0.1 else ""
        domain = "example.test" if folder == "Sent" else f"client{who % 400}.example"
        message_id = f"<{i:07d}.{seed}.{rng.getrandbits(48):012x}@{domain}>"
        greeting = f"Hello {names[who][0]}," if folder == "Sent" else "Hello,"
        alternative = f"alt-{i}-{rng.getrandbits(32):08x}"
        body_size = _log_uniform(rng, 3_000, 30_000)
        body = _body(rng, material, body_size, alternative, greeting)
        attachment_size = 0
        if i in large:
            attachment_size = rng.randrange(5_000_000, 10_000_000)
            stats.large += 1
        elif rng.random() < ATTACHMENT_SHARE:
            attachment_size = _log_uniform(rng, 100_000, 2_000_000)
        if attachment_size:
            stats.with_attachment += 1
            mixed = f"mix-{i}-{rng.getrandbits(32):08x}"
            kind, extension = rng.choice(
                [("application/pdf", "pdf"), ("image/jpeg", "jpg"), ("application/zip", "zip")]
            )
            body = (
                (
                    f'--{mixed}\nContent-Type: multipart/alternative; boundary="{alternative}"\n\n'
                ).encode()
                + body
                + (
                    f'\n--{mixed}\nContent-Type: {kind}; name="file-{i}.{extension}"\n'
                    f'Content-Disposition: attachment; filename="file-{i}.{extension}"\n'
                    "Content-Transfer-Encoding: base64\n\n"
                ).encode()
                + material.attachment(rng, attachment_size)
                + f"\n--{mixed}--\n".encode()
            )
            content_type = f'multipart/mixed; boundary="{mixed}"'
        else:
            content_type = f'multipart/alternative; boundary="{alternative}"'
        raw = message_bytes(
            message_id=message_id,
            date=date,
            sender=sender,
            recipient=recipient,
            subject=subject,
            body=body,
            content_type=content_type,
            cc=cc,
            in_reply_to=parent.message_id if parent else "",
            references=references,
        )
        if folder == "INBOX":
            flags = ("F" if rng.random() < 0.03 else "") + ("S" if rng.random() < 0.85 else "")
        else:
            flags = "S"
        stamp = int(date.timestamp())
        rfc822_size = len(raw) + raw.count(b"\n")  # IMAP counts CRLF line ends
        name = f"{stamp}.M{i}P{seed}.bench,S={len(raw)},W={rfc822_size}:2,{flags}"
        path = folder_dirs[folder] / name
        with open(path, "wb") as handle:
            handle.write(raw)
        os.chown(path, MAIL_UID, MAIL_GID)
        os.utime(path, (stamp, stamp))
        earlier.append(_Sent(message_id, references, subject, who))
        stats.messages += 1
        stats.bytes += len(raw)
        stats.folders[folder] += 1
    stats.correspondents = len(used)
    return stats
