"""Outgoing messages as RFC 5322 bytes (B4, B5): pure, the standard library's `email` package
only, no Django, no database.

`build` turns an `Outgoing` (sender, recipients, subject, HTML and / or text, files, the
reply's ids) into the bytes we store and APPEND to Sent, and the facts the store needs:

    multipart/mixed                       (only with files)
      multipart/alternative               (only with HTML)
        text/plain                        the given text, or one made from the HTML
        multipart/related                 (only with inline images)
          text/html                       the HTML as given; a fragment gets a document
          image/png  Content-ID: <...>    inline images, referenced as cid: by the HTML
      application/pdf  filename*=utf-8''R%C3%A9sum%C3%A9.pdf

Headers: non-ASCII display names and subjects as RFC 2047 encoded words, file names as RFC
2231 parameters, domains in IDNA (punycode); 7-bit bodies (quoted-printable or base64,
whichever is shorter), CRLF line ends. `Message-ID: <token.outbox@domain>`: our own token,
which marks the message as ours wherever it comes back (`outbox_token`). A reply carries
`In-Reply-To` and `References`, written unfolded by hand: the email package would encode a
long message id as an encoded word, which no mail client reads as an id. The stored copy has
the `Bcc` header (the sender sees whom they copied, as every mail client's Sent folder does);
`transmitted` strips it for the SMTP server.
"""

from __future__ import annotations

import html
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import MIMEPart
from email.utils import format_datetime
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

# Headers folded at 78 characters, bodies 7-bit clean (no 8BITMIME needed), CRLF line ends.
POLICY = policy.SMTP.clone(cte_type="7bit")
# References beyond this many keep the first (the conversation's root) and the latest.
MAX_REFERENCES = 20
SNIPPET_LENGTH = 225
_TOKEN_BYTES = 16
_OUTBOX_ID = re.compile(r"^([0-9a-f]{32})\.outbox@", re.IGNORECASE)
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

# Reply and forward prefixes mail clients write (compared case-folded, with the colon).
_REPLY_PREFIXES = ("re", "aw", "sv", "vs", "odp", "ynt", "antw", "r", "rif")
_FORWARD_PREFIXES = ("fwd", "fw", "wg", "tr", "pd", "i̇lt", "ilt", "doorst", "edasi", "vb", "rv")
_PREFIX = re.compile(r"^\s*([^\s:\uff1a\[]{1,8})\s*(?:\[\d+\])?\s*[:\uff1a]")


@dataclass(frozen=True)
class Party:
    """An address as the user gave it (the domain may be Unicode: it goes out as IDNA)."""

    address: str
    name: str = ""


@dataclass(frozen=True)
class Attachment:
    """A file to send. `content_id` (without <>) and `inline`: an image the HTML shows with
    `cid:` (it travels in multipart/related next to the HTML)."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    content_id: str = ""
    inline: bool = False


@dataclass(frozen=True)
class Outgoing:
    sender: Party
    message_id: str  # without <>
    date: datetime  # aware
    to: Sequence[Party] = ()
    cc: Sequence[Party] = ()
    bcc: Sequence[Party] = ()
    subject: str = ""
    body_html: str = ""
    body_text: str = ""  # given: sent as is; else made from the HTML
    attachments: Sequence[Attachment] = ()
    in_reply_to: str = ""  # without <>
    references: Sequence[str] = ()  # without <>, oldest first
    extra_headers: Sequence[tuple[str, str]] = ()  # e.g. Auto-Submitted for automations


@dataclass(frozen=True)
class BuiltAttachment:
    """Where a file ended up: what `MailAttachment` stores (the ingest parser finds the same)."""

    filename: str
    content_type: str
    size: int
    content_id: str
    part_path: str  # "1.2" style, as IMAP numbers parts
    inline: bool


@dataclass(frozen=True)
class Built:
    raw: bytes = field(repr=False)  # with Bcc: what we store and file in Sent
    body_html: str  # the HTML part as sent ("" without one)
    body_text: str  # the plain-text part as sent
    attachments: tuple[BuiltAttachment, ...]


# --- Message ids ---------------------------------------------------------------------------------


def party_text(name: str, address: str) -> str:
    """ "Name <address>" as a recipient field shows and takes it (the name quoted when it
    holds characters that would split it), or the bare address without a name."""
    if not name or name == address:
        return address
    if any(char in name for char in ',;<>"@'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def new_message_id(domain: str) -> tuple[str, str]:
    """A fresh (token, Message-ID without <>): `<token>.outbox@<domain>`, 128 random bits."""
    token = secrets.token_hex(_TOKEN_BYTES)
    return token, f"{token}.outbox@{_ascii_domain(domain.strip().lower()) or 'localhost'}"


def outbox_token(message_id: str) -> str | None:
    """Our token when the Message-ID is one of ours (`<token>.outbox@...`), else None."""
    match = _OUTBOX_ID.match(message_id.strip().strip("<>"))
    return match.group(1).lower() if match else None


def reply_references(message_id: str, references: Sequence[str]) -> tuple[str, ...]:
    """A reply's References: the parent's References, then the parent's own id (RFC 5322,
    3.6.4), each once; a long chain keeps its root and its latest ids."""
    chain = list(dict.fromkeys([*references, message_id]))
    chain = [item for item in chain if item]
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return tuple(chain)


# --- Subjects ------------------------------------------------------------------------------------


def _has_prefix(subject: str, prefixes: Sequence[str]) -> bool:
    match = _PREFIX.match(subject)
    if match is None:
        return False
    word = unicodedata.normalize("NFC", match.group(1).casefold())
    return word in prefixes


def reply_subject(subject: str) -> str:
    """`Re: <subject>`, without stacking: "RE: Offer" and "AW: Offer" stay as they are."""
    subject = clean_header_text(subject)
    if _has_prefix(subject, _REPLY_PREFIXES):
        return subject
    return f"Re: {subject}" if subject else "Re:"


def forward_subject(subject: str) -> str:
    """`Fwd: <subject>`, without stacking ("Fw:", "WG:", "Doorst:" ... count as forwards)."""
    subject = clean_header_text(subject)
    if _has_prefix(subject, _FORWARD_PREFIXES):
        return subject
    return f"Fwd: {subject}" if subject else "Fwd:"


def clean_header_text(text: str) -> str:
    """One line: control characters (a header injection's CR / LF) become spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())


# --- Addresses -----------------------------------------------------------------------------------


def _ascii_domain(domain: str) -> str:
    domain = domain.rstrip(".")
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def envelope_address(address: str) -> str:
    """The address as SMTP and the headers carry it: an IDNA domain. The caller validated it
    (an ASCII local part, one "@")."""
    local, _, domain = address.strip().rpartition("@")
    return f"{local}@{_ascii_domain(domain)}"


def _header_address(party: Party) -> Address:
    return Address(
        display_name=clean_header_text(party.name), addr_spec=envelope_address(party.address)
    )


# --- HTML to text --------------------------------------------------------------------------------

_BLOCK = frozenset(
    {
        *("address", "article", "aside", "center", "dd", "dl", "dt", "figcaption", "figure"),
        *("footer", "form", "header", "main", "nav", "section", "table", "tbody", "tfoot"),
        *("thead",),
    }
)
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "pre"})
_HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})
_LINK_SCHEMES = frozenset({"http", "https", "ftp"})


class _TextWriter(HTMLParser):
    """Readable plain text of HTML: paragraphs and line breaks kept, lists marked ("- ",
    "1. "), quotes prefixed with "> ", links as "text (url)", images by their alt text,
    scripts and styles dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.line_prefix = ""  # the quote and list prefix of the current line
        self.blank_wanted = False
        self.blank_depth = 0  # the quote depth of the blank line wanted (the outermost asked)
        self.quote_depth = 0
        self.lists: list[list[int]] = []  # [ordered (0/1), counter] per open list
        self.item_marker = ""  # the marker the next text of a list item starts with
        self.pre_depth = 0
        self.hidden_depth = 0
        self.links: list[tuple[str, int]] = []  # (href, length of the text before it)
        self.link_text: list[str] = []

    # -- the line being written --------------------------------------------------------------

    def _prefix(self) -> str:
        quote = "> " * self.quote_depth
        indent = "  " * max(len(self.lists) - 1, 0)
        return quote + indent

    def _flush(self, *, force: bool = False) -> None:
        text = "".join(self.line).rstrip()
        if text or force:
            self.lines.append((self.line_prefix + text).rstrip())
        self.line = []
        self.line_prefix = ""

    def _start_line(self) -> None:
        if self.line:
            return
        if self.blank_wanted and self.lines and self.lines[-1].strip("> "):
            self.lines.append(("> " * min(self.blank_depth, self.quote_depth)).rstrip())
        self.blank_wanted = False
        self.line_prefix = self._prefix() + self.item_marker
        if self.item_marker:
            self.item_marker = ""

    def _paragraph(self) -> None:
        self._flush()
        depth = self.quote_depth
        self.blank_depth = min(self.blank_depth, depth) if self.blank_wanted else depth
        self.blank_wanted = True

    def _add(self, text: str) -> None:
        if not text:
            return
        self._start_line()
        self.line.append(text)
        if self.links:
            self.link_text.append(text)

    # -- parser callbacks ----------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden_depth += 1
            return
        if self.hidden_depth:
            return
        if tag == "br":
            if self.line:
                self._flush()
            else:
                self._start_line()
                self._flush(force=True)
        elif tag == "div" or tag == "tr" or tag in _BLOCK:
            self._flush()
        elif tag in ("ul", "ol"):
            # A list inside a list item continues it, on the next line; others are paragraphs.
            self._flush() if self.lists else self._paragraph()
            self.lists.append([1 if tag == "ol" else 0, 0])
        elif tag in _PARAGRAPH:
            self._paragraph()
            if tag == "pre":
                self.pre_depth += 1
        elif tag == "blockquote":
            self._paragraph()
            self.quote_depth += 1
        elif tag == "li":
            self._flush()
            if self.lists:
                current = self.lists[-1]
                current[1] += 1
                self.item_marker = f"{current[1]}. " if current[0] else "- "
            else:
                self.item_marker = "- "
        elif tag == "hr":
            self._paragraph()
            self._add("-" * 24)
            self._paragraph()
        elif tag in ("td", "th"):
            if self.line and not "".join(self.line).endswith(" "):
                self.line.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt") or ""
            self._add(" ".join(alt.split()))
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.link_text)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "img", "hr"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden_depth = max(0, self.hidden_depth - 1)
            return
        if self.hidden_depth:
            return
        if tag == "div" or tag == "tr" or tag in _BLOCK or tag == "li":
            self._flush()
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._flush() if self.lists else self._paragraph()
        elif tag in _PARAGRAPH:
            if tag == "pre":
                self.pre_depth = max(0, self.pre_depth - 1)
            self._paragraph()
        elif tag == "blockquote":
            self._paragraph()
            self.quote_depth = max(0, self.quote_depth - 1)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            text = "".join(self.link_text[start:]).strip()
            if not self.links:
                self.link_text = []
            shown = _link_target(href)
            if shown and _normalized_link(shown) != _normalized_link(text):
                self._add(f" ({shown})" if text else shown)

    def handle_data(self, data: str) -> None:
        if self.hidden_depth:
            return
        if self.pre_depth:
            pieces = data.replace("\r\n", "\n").split("\n")
            for index, piece in enumerate(pieces):
                if index:
                    self._start_line()
                    self._flush(force=True)
                self._add(piece)
            return
        text = re.sub(r"\s+", " ", data.replace("\xa0", " "))
        if not self.line or "".join(self.line).endswith(" "):
            text = text.lstrip()
        self._add(text)

    def text(self) -> str:
        self._flush()
        joined = "\n".join(line.rstrip() for line in self.lines)
        return re.sub(r"\n{3,}", "\n\n", joined).strip("\n")


def _link_target(href: str) -> str:
    """What a link shows in plain text: a web address as is, a mailto: address without the
    scheme; nothing for anchors, scripts and the rest."""
    href = href.strip()
    if not href:
        return ""
    parts = urlsplit(href)
    scheme = parts.scheme.lower()
    if scheme in _LINK_SCHEMES:
        return href
    if scheme == "mailto":
        return unquote(parts.path)
    if scheme == "tel":
        return unquote(parts.path)
    return ""


def _normalized_link(text: str) -> str:
    text = text.strip().lower().rstrip("/")
    for scheme in ("https://", "http://", "mailto:"):
        if text.startswith(scheme):
            text = text[len(scheme) :]
    return text.removeprefix("www.")


def html_to_text(markup: str) -> str:
    """The plain-text alternative of an HTML body (see `_TextWriter`)."""
    writer = _TextWriter()
    try:
        writer.feed(markup)
        writer.close()
    except (AssertionError, ValueError):  # html.parser's reaction to some broken markup
        return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", markup)).split())
    return writer.text()


def snippet(text: str) -> str:
    """The start of the text for lists, whitespace collapsed, quoted ("> ") lines left out
    when anything else is said (as the ingest parser makes it)."""
    head = text[: SNIPPET_LENGTH * 20]
    lines = [line for line in head.splitlines() if not line.lstrip().startswith(">")]
    collapsed = " ".join(" ".join(lines).split()) or " ".join(head.split())
    return collapsed[:SNIPPET_LENGTH].rstrip()


# --- Right to left -------------------------------------------------------------------------------

_DIR_ATTRIBUTE = re.compile(r"<[^>]+\sdir\s*=", re.IGNORECASE)
_DOCUMENT = re.compile(r"<html[\s>]", re.IGNORECASE)


def first_strong_direction(text: str) -> str:
    """ "rtl" or "ltr" by the first letter with a strong direction (Unicode bidi classes R,
    AL: Hebrew, Arabic, Persian, Urdu ...; L: Latin and most others); "" when none."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return ""


def html_document(markup: str) -> str:
    """The HTML part: a full document as given; a fragment (what editors produce) inside a
    minimal document, its body `dir="rtl"` when the text starts right to left and the
    fragment sets no direction itself (`dir` attributes the editor wrote stay as they are)."""
    if _DOCUMENT.search(markup):
        return markup
    direction = ""
    if not _DIR_ATTRIBUTE.search(markup) and first_strong_direction(html_to_text(markup)) == "rtl":
        direction = ' dir="rtl"'
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>'
        f"<body{direction}>\n{markup}\n</body></html>\n"
    )


# --- Building ------------------------------------------------------------------------------------


def _media_type(value: str) -> tuple[str, str]:
    value = value.strip().lower()
    if not _MEDIA_TYPE.match(value) or value.startswith(("multipart/", "message/")):
        # A message/* or multipart/* file cannot travel base64-encoded (RFC 2046): as bytes.
        return "application", "octet-stream"
    maintype, _, subtype = value.partition("/")
    return maintype, subtype


def _file_part(attachment: Attachment) -> MIMEPart:
    part = MIMEPart(policy=POLICY)
    maintype, subtype = _media_type(attachment.content_type)
    filename = clean_header_text(attachment.filename).replace("/", "_").replace("\\", "_")
    part.set_content(
        attachment.data,
        maintype=maintype,
        subtype=subtype,
        disposition="inline" if attachment.inline else "attachment",
        filename=filename or None,
        cid=f"<{attachment.content_id}>" if attachment.content_id else None,
    )
    return part


def _text_part(text: str, subtype: str) -> MIMEPart:
    part = MIMEPart(policy=POLICY)
    part.set_content(text, subtype=subtype, charset="utf-8")
    return part


def _multipart(subtype: str, parts: Sequence[MIMEPart]) -> MIMEPart:
    container = MIMEPart(policy=POLICY)
    container["Content-Type"] = f"multipart/{subtype}"
    for part in parts:
        container.attach(part)
    return container


def _numbered(root: MIMEPart) -> dict[int, str]:
    """Part paths as IMAP numbers them ("1.2.1"; a single-part message's body is "1")."""
    paths: dict[int, str] = {}

    def walk(part: MIMEPart, path: str) -> None:
        paths[id(part)] = path or "1"
        if part.is_multipart():
            for number, child in enumerate(part.iter_parts(), start=1):
                walk(child, f"{path}.{number}" if path else str(number))

    walk(root, "")
    return paths


def _header_line(name: str, ids: Sequence[str]) -> bytes:
    """`References: <a>` with each further id on a folded line of its own: never encoded."""
    tokens = [f"<{item}>" for item in ids if item]
    return (f"{name}: " + "\r\n ".join(tokens) + "\r\n").encode("ascii", "replace")


def build(outgoing: Outgoing) -> Built:
    """The message's bytes and the facts of its parts (see the module docstring)."""
    html_body = html_document(outgoing.body_html) if outgoing.body_html.strip() else ""
    text_body = outgoing.body_text or (html_to_text(outgoing.body_html) if html_body else "")
    text_body = text_body.replace("\r\n", "\n")
    if not text_body.endswith("\n"):
        text_body += "\n"
    inline = [a for a in outgoing.attachments if a.inline and a.content_id and html_body]
    files = [a for a in outgoing.attachments if a not in inline]

    made: list[tuple[Attachment, MIMEPart]] = []
    body: MIMEPart
    text_part = _text_part(text_body, "plain")
    if html_body:
        html_part: MIMEPart = _text_part(html_body, "html")
        if inline:
            images = [(a, _file_part(a)) for a in inline]
            made.extend(images)
            html_part = _multipart("related", [html_part, *(p for _, p in images)])
        body = _multipart("alternative", [text_part, html_part])
    else:
        body = text_part
    if files:
        file_parts = [(a, _file_part(a)) for a in files]
        made.extend(file_parts)
        body = _multipart("mixed", [body, *(p for _, p in file_parts)])

    message = MIMEPart(policy=POLICY)
    message["From"] = _header_address(outgoing.sender)
    for name, parties in (("To", outgoing.to), ("Cc", outgoing.cc), ("Bcc", outgoing.bcc)):
        if parties:
            message[name] = [_header_address(p) for p in parties]
    message["Subject"] = clean_header_text(outgoing.subject)
    message["Date"] = format_datetime(outgoing.date)
    message["Message-ID"] = f"<{outgoing.message_id}>"
    for name, value in outgoing.extra_headers:
        message[name] = clean_header_text(value)
    message["MIME-Version"] = "1.0"
    for name, value in body.items():
        message[name] = value
    if body.is_multipart():
        for part in body.iter_parts():
            message.attach(part)
    else:
        message.set_payload(body.get_payload())
    raw = message.as_bytes()
    threading = b""
    if outgoing.in_reply_to:
        threading += _header_line("In-Reply-To", [outgoing.in_reply_to])
    if outgoing.references:
        threading += _header_line("References", outgoing.references)
    if threading:
        # After Message-ID, before the MIME headers: where mail clients put them.
        head_end = raw.index(b"\r\nMIME-Version:") + 2
        raw = raw[:head_end] + threading + raw[head_end:]

    paths = _numbered(message)
    # `message` took over the body's children; a single part is the message itself.
    located = {id(part): paths.get(id(part), "") for _, part in made}
    return Built(
        raw=raw,
        body_html=html_body,
        body_text=text_body,
        attachments=tuple(
            BuiltAttachment(
                filename=clean_header_text(a.filename) or "attachment",
                content_type="/".join(_media_type(a.content_type)),
                size=len(a.data),
                content_id=a.content_id,
                part_path=located[id(part)],
                inline=a in inline,
            )
            for a, part in made
        ),
    )


_BCC = re.compile(rb"^bcc:", re.IGNORECASE)


def transmitted(raw: bytes) -> bytes:
    """The bytes for the SMTP server: the stored copy without its Bcc header (and its folded
    continuation lines); the recipients in Bcc are in the envelope only."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return raw
    head, rest = raw[: end + 2], raw[end + 2 :]
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = _BCC.match(line) is not None
        if not skipping:
            kept.append(line)
    return b"\r\n".join(kept) + b"\r\n" + rest
