"""Parse one raw RFC 5322 message into a `ParsedMessage`: the first stage of the pipeline.

Pure: standard library only, no Django, no database. `parse_message` never raises; a message
that cannot be read comes back with `parse_error` set and `key` = the hash of its bytes.

Why not `email.message_from_bytes(policy=default)`: the first sync of a mailbox parses tens of
thousands of messages, and the modern policy manages ~600 a second. This module finds the MIME
structure itself with `bytes.find` over the raw bytes (offsets, no copies: a 20 MB attachment is
counted, never decoded or copied), and decodes only the headers and the two bodies it keeps.
The walk follows RFC 2046 leniently, as real mail needs: missing closing boundaries, bodies
without headers, 8-bit header bytes, misspelled charsets.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import hashlib
import html
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from urllib.parse import unquote_to_bytes

from mailsync.pipeline.types import (
    AttachmentKind,
    ParsedAttachment,
    ParsedMessage,
    Participant,
    ParticipantRole,
)

SNIPPET_LENGTH = 225
# Deeper nesting than this is an attack or a loop, not mail; the rest is kept as one leaf.
MAX_MIME_DEPTH = 32
# Headers kept in `ParsedMessage.headers` for later stages, with the spelling used there.
KEPT_HEADERS = ("List-Id", "List-Unsubscribe", "Precedence", "Auto-Submitted", "X-Mailer")
# At least one of these must be present for bytes to count as a message at all.
_MESSAGE_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "sender",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "received",
        "return-path",
        "delivered-to",
        "mime-version",
        "content-type",
        "in-reply-to",
        "references",
    }
)
_ADDRESS_HEADERS = (
    ("from", ParticipantRole.FROM),
    ("sender", ParticipantRole.SENDER),
    ("reply-to", ParticipantRole.REPLY_TO),
    ("to", ParticipantRole.TO),
    ("cc", ParticipantRole.CC),
    ("bcc", ParticipantRole.BCC),
)


# --- Public API -------------------------------------------------------------------------------


def parse_message(raw: bytes) -> ParsedMessage:
    """Read everything the pipeline needs from one raw message. Never raises."""
    try:
        return _parse(raw)
    except Exception as error:  # any input bytes must give a result
        return _unreadable(raw, f"unreadable message ({type(error).__name__})")


def attachment_content(raw: bytes, part_path: str) -> tuple[str, bytes]:
    """The content type and the decoded bytes of the part at `part_path` ("1.2", as in
    `ParsedAttachment.part_path`). Raises KeyError when the message has no such part."""
    part = _find_part(_parse_structure(raw), part_path)
    content = _transfer_decode(raw[part.body_start : part.body_end], part.transfer_encoding)
    return part.content_type, content


def normalize_message_id(value: str) -> str:
    """The first `<...>` token of a Message-ID style header, without brackets, with the domain
    (after the last "@") lower-cased; the local part keeps its case, which is significant.
    "" when the value holds nothing usable: no "@", empty halves, or spaces inside."""
    match = _ANGLE_TOKEN.search(value)
    token = match.group(1) if match else (value.split() or [""])[0]
    token = token.strip().strip("<>")
    local, at, domain = token.rpartition("@")
    if not at or not local or not domain or _HAS_SPACE_OR_CONTROL.search(token):
        return ""
    return f"{local}@{domain.lower()}"


def thread_subject(subject: str) -> str:
    """The subject as threading compares it: reply/forward prefixes in the languages our users
    write (`Re:`, `AW:`, `SV:`, `Odp:`, `YNT:`, `İlt:`, `Antw:`, `Re[2]:` …) and leading
    `[list]` tags removed, whitespace collapsed, case-folded."""
    text = unicodedata.normalize("NFC", " ".join(subject.split()).casefold())
    while True:
        stripped = _SUBJECT_PREFIX.sub("", text, count=1)
        if stripped == text:
            return text
        text = stripped.lstrip()


# --- Addresses and message ids ----------------------------------------------------------------

_ANGLE_TOKEN = re.compile(r"<([^<>]*)>")
_HAS_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_ADDRESS_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f<>()\[\],;:\\\"]")

# Reply and forward prefixes of English, German, Scandinavian, Estonian, Polish, Turkish, Czech
# and Dutch mail clients. Compared case-folded: "İlt" folds to "i̇lt" (a combining dot), "ILT"
# to "ilt", so both are listed.
_REPLY_FORWARD_PREFIXES = tuple(
    unicodedata.normalize("NFC", prefix.casefold())
    for prefix in (
        *("Re", "Fwd", "Fw", "AW", "WG", "SV", "VS", "Odp", "PD", "YNT", "İlt", "Ilt"),
        *("Vá", "Antw", "Doorst", "Edasi"),
    )
)
_SUBJECT_PREFIX = re.compile(
    r"^(?:\[[^\]]*\]"
    r"|(?:" + "|".join(re.escape(p) for p in _REPLY_FORWARD_PREFIXES) + r")"
    r"\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:\uff1a])"  # also the full-width colon
)


def normalize_address(value: str) -> str:
    """`local@domain` lower-cased with an IDNA (ASCII) domain; "" when `value` is not an
    address. Deliberately small: the contacts app owns the full rules."""
    address = value.strip().strip("<>").strip().lower()
    local, at, domain = address.rpartition("@")
    domain = domain.rstrip(".")
    if not at or not local or not domain or _ADDRESS_FORBIDDEN.search(address):
        return ""
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    if "." not in domain and domain != "localhost":
        return ""
    return f"{local}@{domain}"


# --- Charsets ---------------------------------------------------------------------------------

# What mail says versus what it means (the WHATWG encoding standard makes the same calls):
# "latin-1" mail is really windows-1252, Turkish latin-5 really windows-1254, and so on.
# "us-ascii" stays strict, so 8-bit text labelled ASCII goes on to the UTF-8 attempt.
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "iso-8859-8-i": "iso-8859-8",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}
# Codecs Python accepts by name that are no charset of mail: they would turn bytes into escapes
# or fail in surprising ways.
_NOT_CHARSETS = frozenset({"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined"})


@functools.lru_cache(maxsize=256)
def _codec(charset: str) -> str | None:
    """The Python codec for a charset label, or None when the label names no text codec."""
    label = charset.strip().strip("\"'").lower().partition("*")[0]  # RFC 2231 language
    label = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if info.name in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _decode_text(data: bytes, charset: str = "", fallback: str = "") -> str:
    """Decode bytes by their declared charset, then UTF-8, then `fallback` (another charset the
    message uses), then windows-1252 with replacement characters. Never raises."""
    if data.isascii():
        return data.decode("ascii")
    for label in (charset, "utf-8", fallback):
        codec = _codec(label) if label else None
        if codec is None:
            continue
        try:
            return data.decode(codec)
        except UnicodeError:
            continue
    return data.decode("cp1252", errors="replace")


# RFC 2047 encoded words, matched leniently: broken mailers put spaces in the encoded text.
# "[^?]*" rather than ".*?" keeps the scan linear on hostile headers.
_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([bBqQ])\?([^?]*)\?=")
_BLANK = re.compile(r"[ \t\r\n]*")


def decode_header_words(value: str) -> str:
    """Decode RFC 2047 encoded words. Adjacent words are joined before decoding, so a character
    split across two words survives; the white space between them is dropped (RFC 2047 §6.2).
    Broken base64, unknown charsets and undecodable bytes degrade, never raise."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending = bytearray()
    pending_charset = ""
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        if pending and not _BLANK.fullmatch(between):
            out.append(_decode_text(bytes(pending), pending_charset))
            pending.clear()
        if between and not (pending and _BLANK.fullmatch(between)):
            out.append(between)
        charset, encoding, text = match.groups()
        if pending and charset.lower() != pending_charset.lower():
            out.append(_decode_text(bytes(pending), pending_charset))
            pending.clear()
        pending_charset = charset
        pending += _decode_word(encoding, text)
        position = match.end()
    if pending:
        out.append(_decode_text(bytes(pending), pending_charset))
    out.append(value[position:])
    return "".join(out)


def _decode_word(encoding: str, text: str) -> bytes:
    data = text.encode("ascii", errors="surrogateescape")
    if encoding in "qQ":
        return binascii.a2b_qp(data, header=True)
    return _base64_decode(data)


def _base64_decode(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        # Bad padding or a truncated tail: keep what decodes.
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4 if len(cleaned) % 4 == 1 else None]
        cleaned += b"=" * (-len(cleaned) % 4)
        try:
            return binascii.a2b_base64(cleaned)
        except binascii.Error:
            return b""


# --- MIME structure ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Header:
    name: str  # lower-case
    value: bytes  # raw, unfolded, stripped


@dataclass(slots=True)
class _Part:
    """One node of the MIME tree, as offsets into the raw message."""

    path: str
    headers: list[_Header]
    content_type: str
    params: dict[str, str]
    body_start: int
    body_end: int
    children: list[_Part] = field(default_factory=list)
    truncated: bool = False  # a multipart whose closing boundary never came

    def header(self, name: str) -> bytes | None:
        for header in self.headers:
            if header.name == name:
                return header.value
        return None

    @property
    def transfer_encoding(self) -> str:
        value = self.header("content-transfer-encoding") or b""
        return value.decode("ascii", errors="replace").strip().lower()

    def walk_leaves(self) -> Iterator[_Part]:
        if not self.children:
            yield self
        for child in self.children:
            yield from child.walk_leaves()


_HEADER_LINE = re.compile(rb"([!-9;-~]+)[ \t]*:(.*)", re.DOTALL)


def _split_head(raw: bytes, start: int, end: int) -> tuple[list[_Header], int]:
    """Parse the header block at `start`; returns the headers and where the body starts.
    Headers end at the first empty line, or at the first line that is not a header."""
    fields: list[tuple[str, list[bytes]]] = []  # name, and the lines of a folded value
    position = body_start = start
    while position < end:
        newline = raw.find(b"\n", position, end)
        line_end = end if newline < 0 else newline
        next_line = end if newline < 0 else newline + 1
        line = raw[position:line_end].rstrip(b"\r")
        body_start = position
        if not line:
            body_start = next_line
            break
        if line[:1] in (b" ", b"\t"):
            if not fields:
                break
            fields[-1][1].append(line.strip())
        elif match := _HEADER_LINE.fullmatch(line):
            fields.append((match.group(1).decode("ascii").lower(), [match.group(2).strip()]))
        elif fields or not line.startswith(b"From "):  # skip an mbox separator line only
            break
        position = body_start = next_line
    headers = [_Header(name, b" ".join(lines).strip()) for name, lines in fields]
    return headers, body_start


def _parse_params(value: str) -> tuple[str, dict[str, str]]:
    """Split `type/subtype; a=b; c*=utf-8''%C3%BC` into the lower-case first token and its
    parameters, with RFC 2231 continuations and charsets and RFC 2047 words decoded."""
    pieces = _split_params(value)
    head = pieces[0].strip().lower() if pieces else ""
    simple: dict[str, str] = {}
    sections: dict[str, list[tuple[int, bool, str]]] = {}
    for piece in pieces[1:]:
        name, eq, raw_value = piece.partition("=")
        name = name.strip().lower()
        if not eq or not name:
            continue
        raw_value = raw_value.strip()
        if len(raw_value) >= 2 and raw_value[0] == raw_value[-1] == '"':
            raw_value = re.sub(r"\\(.)", r"\1", raw_value[1:-1])
        if "*" in name:
            base, _, rest = name.partition("*")
            encoded = rest.endswith("*") or rest == ""
            number = rest.rstrip("*")
            index = int(number) if number.isdigit() else 0
            sections.setdefault(base, []).append((index, encoded, raw_value))
        else:
            simple.setdefault(name, raw_value)
    params = {name: decode_header_words(text) for name, text in simple.items()}
    for name, parts in sections.items():
        params[name] = _join_rfc2231(sorted(parts))
    return head, params


def _split_params(value: str) -> list[str]:
    """Split on semicolons outside quoted strings."""
    pieces: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return pieces


def _join_rfc2231(parts: list[tuple[int, bool, str]]) -> str:
    charset = ""
    data = bytearray()
    for position, (_, encoded, text) in enumerate(parts):
        if encoded and position == 0 and text.count("'") >= 2:
            charset, _language, text = text.split("'", 2)
        if encoded:
            data += unquote_to_bytes(text)
        else:
            data += text.encode("utf-8", errors="surrogateescape")
    return _decode_text(bytes(data), charset)


def _header_text(value: bytes | None, fallback: str = "") -> str:
    if value is None:
        return ""
    return _decode_text(value, "", fallback).replace("\x00", "")


def _parse_part(raw: bytes, start: int, end: int, path: str, depth: int, digest: bool) -> _Part:
    headers, body_start = _split_head(raw, start, end)
    part = _Part(path, headers, "", {}, body_start, end)
    content_type_header = part.header("content-type")
    content_type, params = _parse_params(_header_text(content_type_header))
    if content_type.count("/") != 1 or " " in content_type:
        # RFC 2045 §5.2: a missing or unreadable Content-Type means text/plain.
        content_type = "message/rfc822" if digest else "text/plain"
    part.content_type, part.params = content_type, params
    boundary = params.get("boundary", "")
    if content_type.startswith("multipart/") and boundary and depth < MAX_MIME_DEPTH:
        spans, closed = _split_multipart(raw, body_start, end, boundary.encode("utf-8"))
        child_digest = content_type == "multipart/digest"
        for number, (child_start, child_end) in enumerate(spans, start=1):
            child_path = f"{path}.{number}" if path else str(number)
            part.children.append(
                _parse_part(raw, child_start, child_end, child_path, depth + 1, child_digest)
            )
        part.truncated = not closed and bool(spans)
        if not spans:
            part.content_type = "text/plain"  # no boundary found: read it as text
    elif content_type.startswith("multipart/"):
        part.content_type = "text/plain"
    if not part.children and not path:
        part.path = "1"  # IMAP calls the body of a single-part message part 1
    return part


def _split_multipart(
    raw: bytes, start: int, end: int, boundary: bytes
) -> tuple[list[tuple[int, int]], bool]:
    """The (start, end) spans of the body parts between `--boundary` lines, and whether the
    closing `--boundary--` came. A part that runs to the end of the message is kept."""
    delimiter = b"--" + boundary
    spans: list[tuple[int, int]] = []
    current: int | None = None
    position = start
    while True:
        found = _find_delimiter(raw, delimiter, position, end)
        if found < 0:
            break
        after = found + len(delimiter)
        newline = raw.find(b"\n", after, end)
        line_end = end if newline < 0 else newline
        closing = raw.startswith(b"--", after, end)
        rest = raw[after + 2 if closing else after : line_end]
        if (found > start and raw[found - 1] != 0x0A) or rest.strip():
            position = found + 1  # inside a line, or a longer boundary that starts alike
            continue
        if current is not None:
            part_end = found
            if part_end > current and raw[part_end - 1] == 0x0A:
                part_end -= 1
                if part_end > current and raw[part_end - 1] == 0x0D:
                    part_end -= 1
            spans.append((current, part_end))
        if closing:
            return spans, True
        current = end if newline < 0 else newline + 1
        position = current
    if current is not None:
        spans.append((current, end))
    return spans, False


def _find_delimiter(raw: bytes, delimiter: bytes, start: int, end: int) -> int:
    """`raw.find(delimiter, start, end)`, faster on big attachments: a one-byte search for "-"
    runs at memory speed, and base64 has no dashes, whereas a short boundary makes the general
    search crawl (~1 ms a megabyte). Text full of dashes falls back to the general search."""
    position = start
    for _ in range(64):
        dash = raw.find(b"-", position, end)
        if dash < 0 or raw.startswith(delimiter, dash, end):
            return dash
        position = dash + 1
    return raw.find(delimiter, position, end)


def _parse_structure(raw: bytes) -> _Part:
    return _parse_part(raw, 0, len(raw), "", 0, False)


def _find_part(root: _Part, part_path: str) -> _Part:
    if not root.children:
        if part_path == "1":
            return root
        raise KeyError(part_path)
    node = root
    for number in part_path.split("."):
        if not number.isdigit() or not 1 <= int(number) <= len(node.children):
            raise KeyError(part_path)
        node = node.children[int(number) - 1]
    return node


# --- Bodies and attachments -------------------------------------------------------------------


def _transfer_decode(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return _base64_decode(data)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    return data


def _decoded_size(raw: bytes, part: _Part) -> int:
    """The decoded size of a part, computed without decoding base64 (which is most of the
    bytes of a big attachment): 3 bytes per 4 characters, less the padding."""
    start, end = part.body_start, part.body_end
    encoding = part.transfer_encoding
    if encoding == "base64":
        while end > start and raw[end - 1] in b" \t\r\n":
            end -= 1
        tail = raw[max(start, end - 2) : end]
        padding = len(tail) - len(tail.rstrip(b"="))
        return max(0, (_base64_characters(raw, start, end) - padding) * 3 // 4)
    if encoding == "quoted-printable":
        return len(binascii.a2b_qp(raw[start:end]))
    return end - start


def _base64_characters(raw: bytes, start: int, end: int) -> int:
    """The characters of base64 text between line breaks. Encoders write lines of one width,
    so the count is arithmetic when the last full line ends where that width says it should;
    otherwise (a hand-edited part) the line breaks are counted."""
    first_newline = raw.find(b"\n", start, end)
    if first_newline < 0:
        return end - start
    eol = 2 if first_newline > start and raw[first_newline - 1] == 0x0D else 1
    width = first_newline - start - (eol - 1)
    stride = width + eol
    full_lines = (end - start) // stride
    last_newline = start + full_lines * stride - 1
    if width > 0 and raw[last_newline] == 0x0A and raw.find(b"\n", last_newline + 1, end) < 0:
        return end - start - full_lines * eol
    breaks = sum(raw.count(c, start, end) for c in (b"\r", b"\n", b" ", b"\t"))
    return end - start - breaks


_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_\-:.]+)", re.I)


def _body_text(raw: bytes, part: _Part, fallback_charset: str) -> tuple[str, bool]:
    """The decoded text of a body part, and whether its declared charset was unknown."""
    data = _transfer_decode(raw[part.body_start : part.body_end], part.transfer_encoding)
    charset = part.params.get("charset", "")
    if not charset and part.content_type == "text/html":
        match = _META_CHARSET.search(data, 0, 4096)
        charset = match.group(1).decode("ascii") if match else ""
    unknown = bool(charset) and _codec(charset) is None
    text = _decode_text(data, charset, fallback_charset)
    return text.replace("\r\n", "\n").replace("\x00", ""), unknown


def _filename(part: _Part) -> str:
    name = ""
    disposition = part.header("content-disposition")
    if disposition is not None:
        name = _parse_params(_header_text(disposition))[1].get("filename", "")
    if not name:
        name = part.params.get("name", "")
    # Keep the last path segment: some mailers send "C:\\Users\\me\\report.pdf".
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return " ".join(decode_header_words(name).split()).replace("\x00", "")


def _disposition(part: _Part) -> str:
    value = part.header("content-disposition")
    return _parse_params(_header_text(value))[0] if value is not None else ""


def _content_id(part: _Part) -> str:
    value = _header_text(part.header("content-id")).strip()
    return value.strip("<>").strip()


_ATTACHMENT_KIND_BY_TYPE = {
    "application/ms-tnef": AttachmentKind.TNEF,
    "application/vnd.ms-tnef": AttachmentKind.TNEF,
    "application/pkcs7-signature": AttachmentKind.SMIME,
    "application/pkcs7-mime": AttachmentKind.SMIME,
    "application/pgp-signature": AttachmentKind.PGP,
    "application/pgp-encrypted": AttachmentKind.PGP,
    "message/rfc822": AttachmentKind.MESSAGE,
    "message/global": AttachmentKind.MESSAGE,
}
_EXTENSION_BY_TYPE = {
    "text/plain": "txt",
    "text/html": "html",
    "text/calendar": "ics",
    "message/rfc822": "eml",
    "message/global": "eml",
    "application/pdf": "pdf",
    "application/ms-tnef": "dat",
    "application/pkcs7-signature": "p7s",
    "application/pkcs7-mime": "p7m",
    "application/pgp-signature": "asc",
    "application/pgp-encrypted": "asc",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
}


def _attachment_kind(
    part: _Part, filename: str, content_id: str, html_lower: str, parent_type: str
) -> AttachmentKind:
    kind = _ATTACHMENT_KIND_BY_TYPE.get(part.content_type)
    if kind is not None:
        return kind
    lower_name = filename.lower()
    if lower_name == "winmail.dat":
        return AttachmentKind.TNEF
    if part.content_type.startswith("application/x-pkcs7-") or lower_name.endswith(
        (".p7s", ".p7m")
    ):
        return AttachmentKind.SMIME
    if parent_type == "multipart/encrypted":
        return AttachmentKind.PGP
    if content_id and f"cid:{content_id.lower()}" in html_lower:
        return AttachmentKind.INLINE
    return AttachmentKind.FILE


def _parents(root: _Part) -> dict[str, str]:
    """The content type of each part's parent, by part path."""
    parents: dict[str, str] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node.children:
            parents[child.path] = node.content_type
            stack.append(child)
    return parents


# --- HTML to text -----------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figure"),
        *("footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main"),
        *("nav", "ol", "p", "pre", "section", "table", "tbody", "tfoot", "thead", "tr", "ul"),
    }
)
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript"})


class _TextExtractor(HTMLParser):
    """Visible text of an HTML body: tags dropped, scripts and styles with their content,
    entities unescaped, a line break for each block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden_depth += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")
        elif tag in ("td", "th"):
            self.chunks.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden_depth = max(0, self.hidden_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.chunks.append(data)


_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def html_to_text(markup: str) -> str:
    """Readable plain text of an HTML body, for bodies that came without a text part."""
    extractor = _TextExtractor()
    try:
        extractor.feed(markup)
        extractor.close()
    except (AssertionError, ValueError):  # html.parser's reaction to some broken markup
        return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", markup)).split())
    text = _SPACES.sub(" ", "".join(extractor.chunks).replace("\xa0", " "))
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _snippet(text: str) -> str:
    """The start of the text, whitespace collapsed, without quoted (">") lines when any other
    line has something to say."""
    head = text[: SNIPPET_LENGTH * 20]
    lines = [line for line in head.splitlines() if not line.lstrip().startswith(">")]
    collapsed = " ".join(" ".join(lines).split()) or " ".join(head.split())
    return collapsed[:SNIPPET_LENGTH].rstrip()


# --- The message ------------------------------------------------------------------------------


def _unreadable(raw: bytes, reason: str) -> ParsedMessage:
    return ParsedMessage(
        key="sha256:" + hashlib.sha256(raw).hexdigest(),
        message_id="",
        in_reply_to="",
        references=(),
        subject="",
        thread_subject="",
        date=None,
        participants=(),
        body_text="",
        body_html="",
        snippet="",
        attachments=(),
        size=len(raw),
        is_bulk=False,
        parse_error=reason,
    )


def _message_charset(root: _Part) -> str:
    """A charset the message declares, for reading raw 8-bit headers the same way."""
    for part in root.walk_leaves():
        charset = part.params.get("charset", "")
        if charset and _codec(charset) not in (None, "utf-8", "ascii"):
            return charset
    return ""


def _parse_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:  # the stdlib raises several kinds on garbage; all mean "no date"
        return None
    if not 1970 <= parsed.year <= 2100:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# Senders that are machines, not people: a message from one concerns nobody in the CRM.
_AUTOMATED_LOCAL_PART = re.compile(
    r"(?:[^@]*[-_.])?(?:(?:no|do[-_.]?not)[-_.]?reply|bounces?)(?:[-_.][^@]*)?"
    r"|mailer[-_.]?daemon|postmaster|notifications?"
)


def automated_sender(address: str) -> bool:
    """`noreply@`, `no-reply-123@`, `mailer-daemon@`, `bounce+abc@`, `notifications@` ..."""
    local = address.partition("@")[0].partition("+")[0]
    return bool(local) and _AUTOMATED_LOCAL_PART.fullmatch(local) is not None


def _participants(values_by_name: dict[str, list[str]]) -> tuple[Participant, ...]:
    participants: list[Participant] = []
    seen: set[tuple[ParticipantRole, str]] = set()
    for header, role in _ADDRESS_HEADERS:
        values = values_by_name.get(header)
        if not values:
            continue
        for raw_name, raw_address in _address_pairs(values):
            name = " ".join(decode_header_words(raw_name).split())
            address = normalize_address(raw_address)
            if not address and not name:
                continue
            if address:
                if (role, address) in seen:
                    continue
                seen.add((role, address))
            participants.append(Participant(role=role, address=address, name=name))
    return tuple(participants)


# `Name <address>`, `"Name" <address>` and a bare address: nearly every header, read here
# without `getaddresses`, which costs a third of the parse.
_SIMPLE_ADDRESS = re.compile(
    r'\s*(?:"([^"\\]*)"|([^"(),:;<>@\\]*?))\s*<([^\s"(),:;<>\\]+)>\s*'
    r'|\s*()()([^\s"(),:;<>\\]+@[^\s"(),:;<>\\]+)\s*'
)


def _address_pairs(values: list[str]) -> list[tuple[str, str]]:
    """(name, address) pairs of address headers. Split on the still-encoded text: a decoded
    "=?utf-8?Q?Doe=2C_John?=" would split in two at its comma."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        match = _SIMPLE_ADDRESS.fullmatch(value)
        if match is None:
            pairs.extend(getaddresses([value]))
            continue
        quoted, plain, address = match.group(1, 2, 3)
        if address is None:
            quoted, plain, address = match.group(4, 5, 6)
        pairs.append((quoted if quoted is not None else " ".join(plain.split()), address))
    return pairs


def _message_ids(value: str) -> list[str]:
    tokens = _ANGLE_TOKEN.findall(value) or value.split()
    return [normalized for token in tokens if (normalized := normalize_message_id(f"<{token}>"))]


def _parse(raw: bytes) -> ParsedMessage:
    if not raw or raw.isspace():
        return _unreadable(raw, "empty message")
    root = _parse_structure(raw)
    if not any(header.name in _MESSAGE_HEADERS for header in root.headers):
        return _unreadable(raw, "no message headers")

    notes: list[str] = []
    fallback_charset = ""
    if any(not header.value.isascii() for header in root.headers):
        notes.append("8bit-headers")
        fallback_charset = _message_charset(root)

    values: dict[str, list[str]] = {}
    for header in root.headers:
        text = _header_text(header.value, fallback_charset)
        values.setdefault(header.name, []).append(text)

    def first(name: str) -> str:
        found = values.get(name)
        return found[0] if found else ""

    message_id = normalize_message_id(first("message-id"))
    in_reply_to = normalize_message_id(first("in-reply-to"))
    references = list(dict.fromkeys(_message_ids(first("references"))))
    if in_reply_to and in_reply_to not in references:
        references.append(in_reply_to)
    subject = " ".join(decode_header_words(first("subject")).split())
    date_value = first("date")
    date = _parse_date(date_value) if date_value else None
    if date_value and date is None:
        notes.append("unreadable-date")

    # Bodies: the first text/plain and the first text/html that are not attachments.
    text_part = html_part = None
    leaves = list(root.walk_leaves())
    for part in leaves:
        if part.content_type not in ("text/plain", "text/html"):
            continue
        if _disposition(part) == "attachment" or _filename(part):
            continue
        if part.content_type == "text/plain" and text_part is None:
            text_part = part
        elif part.content_type == "text/html" and html_part is None:
            html_part = part
    body_text = body_html = ""
    message_charset = _message_charset(root) if (text_part or html_part) else ""
    if text_part is not None:
        body_text, unknown = _body_text(raw, text_part, message_charset)
        if unknown:
            notes.append("unknown-charset")
    if html_part is not None:
        body_html, unknown = _body_text(raw, html_part, message_charset)
        if unknown and "unknown-charset" not in notes:
            notes.append("unknown-charset")
        if not body_text.strip():
            body_text = html_to_text(body_html)

    attachments = _attachments(raw, root, leaves, (text_part, html_part), body_html)
    if any(attachment.kind is AttachmentKind.TNEF for attachment in attachments):
        notes.append("tnef")
    if any(part.truncated for part in _walk_all(root)):
        notes.append("truncated-mime")

    participants = _participants(values)
    auto_submitted = first("auto-submitted").split(";")[0].strip().lower()
    is_bulk = (
        any(p.role is ParticipantRole.FROM and automated_sender(p.address) for p in participants)
        or "list-id" in values
        or "list-unsubscribe" in values
        or first("precedence").strip().lower() in ("bulk", "list", "junk")
        or auto_submitted not in ("", "no")
    )
    kept = tuple(
        (name, " ".join(decode_header_words(first(name.lower())).split()))
        for name in KEPT_HEADERS
        if name.lower() in values
    )
    return ParsedMessage(
        key=message_id or "sha256:" + hashlib.sha256(raw).hexdigest(),
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=tuple(references),
        subject=subject,
        thread_subject=thread_subject(subject),
        date=date,
        participants=participants,
        body_text=body_text,
        body_html=body_html,
        snippet=_snippet(body_text),
        attachments=attachments,
        size=len(raw),
        is_bulk=is_bulk,
        headers=kept,
        notes=tuple(notes),
    )


def _walk_all(root: _Part) -> Iterator[_Part]:
    yield root
    for child in root.children:
        yield from _walk_all(child)


def _attachments(
    raw: bytes,
    root: _Part,
    leaves: list[_Part],
    bodies: tuple[_Part | None, _Part | None],
    body_html: str,
) -> tuple[ParsedAttachment, ...]:
    """Every leaf that is not a body. Extra unnamed text parts (a list footer, the alternative
    we did not pick) are body pieces, not files, and are left out."""
    parents = _parents(root)
    html_lower = body_html.lower()
    attachments: list[ParsedAttachment] = []
    for part in leaves:
        if part is bodies[0] or part is bodies[1]:
            continue
        filename = _filename(part)
        is_text = part.content_type in ("text/plain", "text/html")
        if is_text and not filename and _disposition(part) != "attachment":
            continue
        content_id = _content_id(part)
        kind = _attachment_kind(part, filename, content_id, html_lower, parents.get(part.path, ""))
        if not filename and kind is AttachmentKind.MESSAGE:
            filename = _attached_message_filename(raw, part)
        if not filename:
            extension = _EXTENSION_BY_TYPE.get(part.content_type, "bin")
            filename = f"attachment-{len(attachments) + 1}.{extension}"
        attachments.append(
            ParsedAttachment(
                filename=filename,
                content_type=part.content_type,
                size=_decoded_size(raw, part),
                kind=kind,
                content_id=content_id,
                part_path=part.path,
            )
        )
    return tuple(attachments)


def _attached_message_filename(raw: bytes, part: _Part) -> str:
    """The name mail clients show for an attached message that came without one,
    "<subject>.eml"; "" when it has no readable subject."""
    if part.transfer_encoding not in ("", "7bit", "8bit", "binary"):
        return ""
    headers, _ = _split_head(raw, part.body_start, part.body_end)
    subject = next((header.value for header in headers if header.name == "subject"), None)
    text = " ".join(decode_header_words(_header_text(subject)).split())
    text = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", text)[:100].strip(" .")
    return f"{text}.eml" if text else ""
