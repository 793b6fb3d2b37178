"""The marks tracking puts into a message we send (E1, E2), and how they are checked. Pure: no
Django import; the caller passes the key and the base URL.

- The open pixel: `<base>/t/o/<token>.gif`, placed right after `<body>`'s opening tag (at the
  very start of a fragment): Gmail clips a message's HTML after about 102 KB and shows the rest
  behind a link, and a pixel at the end of a long message would never load.
- A tracked link: `<base>/t/c/<token>/<n>/<sig>`, where `n` is the link's index in the
  message's stored links (`MailOutbound.tracked_links`) and `sig` an HMAC over token and
  number: the endpoint redirects only to the stored address, and only for a number the
  message was sent with.
- A session mark (`session_mark`): who a hit is from when it carries our session cookie, as an
  HMAC of the cookie's value, so neither Redis nor the buffer ever holds the cookie itself.

The key is derived from the site's secret (`tracking_key`), so it needs no setting of its own
and changes with it.

`mark_html` reads the HTML with the standard library's tokenizer (`html.parser`), not with
regular expressions over the document: a link inside a comment, a script or a style is no
link, and attributes come with their entities decoded. It changes only what it must (the pixel
inserted, each tracked `<a>` tag rewritten); everything else stays byte for byte."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

# 64 bits of HMAC-SHA256: enough against guessing (a wrong one costs a request each), short in
# the links the recipient sees.
SIGNATURE_HEX = 16
TOKEN = re.compile(r"[0-9a-f]{32}")
# The session mark's length in hex (128 bits), as the tracking endpoints write it.
SESSION_MARK_HEX = 32
SESSION_MARK = re.compile(r"[0-9a-f]{32}")
# Links beyond this many in one message stay as written (a sales email has a handful; this
# only bounds what a pasted newsletter stores in `tracked_links`).
MAX_TRACKED_LINKS = 500
_TRACKED_SCHEMES = frozenset({"http", "https"})
# Tags whose `href` a reader follows by clicking (image maps' `<area>` too).
_LINK_TAGS = frozenset({"a", "area"})
# The pixel: an image of one pixel that takes no room and shows nothing where images are off
# (no alt text). Its `display:block` keeps Outlook from giving it a line of its own height.
_PIXEL = (
    '<img src="{src}" width="1" height="1" alt="" border="0" '
    'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">'
)


def tracking_key(secret_key: str) -> bytes:
    """The tracking HMAC key: the site's secret, for this purpose only."""
    return hmac.new(secret_key.encode(), b"crm.tracking.links.v1", hashlib.sha256).digest()


def link_signature(key: bytes, token: str, number: int) -> str:
    message = f"{token}:{number}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:SIGNATURE_HEX]


def signature_valid(key: bytes, token: str, number: int, signature: str) -> bool:
    return hmac.compare_digest(link_signature(key, token, number), signature.lower())


def pixel_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/t/o/{token}.gif"


def link_url(base_url: str, key: bytes, token: str, number: int) -> str:
    signature = link_signature(key, token, number)
    return f"{base_url.rstrip('/')}/t/c/{token}/{number}/{signature}"


def session_mark(key: bytes, session_cookie: str) -> str:
    """The mark of a browser session (the tracking endpoints send it with a hit as `s`; the
    web app records whose session it is): the first 128 bits of an HMAC of the session
    cookie's value."""
    digest = hmac.new(key, session_cookie.encode(), hashlib.sha256).hexdigest()
    return digest[:SESSION_MARK_HEX]


# --- Marking a message's HTML --------------------------------------------------------------------


@dataclass(frozen=True)
class Marked:
    """The HTML to send, and the addresses its tracked links lead to (`n` indexes these)."""

    html: str
    links: tuple[str, ...]


@dataclass(frozen=True)
class _LinkTag:
    start: int  # offset of "<" in the source
    end: int  # offset after ">"
    tag: str
    attrs: list[tuple[str, str | None]]
    self_closing: bool


class _Scanner(HTMLParser):
    """Where the pixel goes and where the link tags are, as offsets into the source."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self.line_starts = [0]
        for index, char in enumerate(source):
            if char == "\n":
                self.line_starts.append(index + 1)
        self.source = source
        self.body_end: int | None = None  # after <body ...>
        self.head_end: int | None = None  # after </head>
        self.html_end: int | None = None  # after <html ...>
        self.decl_end: int | None = None  # after <!DOCTYPE ...>
        self.links: list[_LinkTag] = []

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> None:
        start = self._offset()
        text = self.get_starttag_text() or ""
        end = start + len(text)
        if tag == "body" and self.body_end is None:
            self.body_end = end
        elif tag == "html" and self.html_end is None:
            self.html_end = end
        elif tag in _LINK_TAGS:
            self.links.append(_LinkTag(start, end, tag, attrs, self_closing))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, True)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head" and self.head_end is None:
            start = self._offset()
            close = self.source.find(">", start)
            self.head_end = close + 1 if close >= 0 else None

    def handle_decl(self, decl: str) -> None:
        if self.decl_end is None:
            start = self._offset()
            close = self.source.find(">", start)
            self.decl_end = close + 1 if close >= 0 else None

    def pixel_at(self) -> int:
        """Right after <body>; in a document without one, after </head>, <html> or the
        doctype; at the very start of a fragment."""
        for place in (self.body_end, self.head_end, self.html_end, self.decl_end):
            if place is not None:
                return place
        return 0


def _tracked_address(href: str, base_url: str) -> str | None:
    """The address to track for a link's `href`, or None to leave the link alone: web
    addresses only (not mailto:, tel:, #anchors, cid: or relative ones), and never a link
    into our own tracking endpoints."""
    address = href.strip()
    try:
        parts = urlsplit(address)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    if parts.scheme.lower() not in _TRACKED_SCHEMES or not parts.netloc:
        return None
    own = base_url.rstrip("/") + "/t/"
    if address.lower().startswith(own.lower()):
        return None
    return address


def _link_tag(link: _LinkTag, href: str) -> str:
    """The tag again with its (first) `href` replaced; its other attributes as they were,
    quoted anew (the tokenizer gives their decoded values)."""
    parts = [f"<{link.tag}"]
    replaced = False
    for name, value in link.attrs:
        if name == "href":
            if replaced:
                continue  # a second href is ignored by browsers: drop it rather than keep it
            value, replaced = href, True
        if value is None:
            parts.append(f" {name}")
        else:
            parts.append(f' {name}="{html.escape(value, quote=True)}"')
    parts.append(" />" if link.self_closing else ">")
    return "".join(parts)


def mark_html(
    markup: str, *, base_url: str, key: bytes, token: str, opens: bool, links: bool
) -> Marked:
    """The message's HTML with tracking marks: the open pixel early (`opens`), and every web
    link pointing through our click endpoint (`links`), numbered by address: the same
    address twice is one tracked link (one number), so a click on either reads the same in
    the timeline, which shows the address."""
    if not (opens or links):
        return Marked(markup, ())
    scanner = _Scanner(markup)
    try:
        scanner.feed(markup)
        scanner.close()
    except (AssertionError, ValueError):  # html.parser's reaction to some broken markup
        scanner.links = []  # links unknown: none tracked, the pixel still goes in
        if scanner.body_end is None:
            scanner.head_end = scanner.html_end = scanner.decl_end = None
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), in order
    if opens:
        at = scanner.pixel_at()
        edits.append((at, at, _PIXEL.format(src=html.escape(pixel_url(base_url, token)))))
    numbers: dict[str, int] = {}
    if links:
        for link in scanner.links:
            href = next((value for name, value in link.attrs if name == "href"), None)
            address = _tracked_address(href, base_url) if href else None
            if address is None:
                continue
            number = numbers.get(address)
            if number is None:
                if len(numbers) >= MAX_TRACKED_LINKS:
                    continue
                number = numbers[address] = len(numbers)
            edits.append(
                (link.start, link.end, _link_tag(link, link_url(base_url, key, token, number)))
            )
    edits.sort(key=lambda edit: (edit[0], edit[1]))
    pieces: list[str] = []
    done = 0
    for start, end, replacement in edits:
        pieces.append(markup[done:start])
        pieces.append(replacement)
        done = end
    pieces.append(markup[done:])
    return Marked("".join(pieces), tuple(numbers))
