"""What the tracking endpoints answer (E1, E2), for every server that carries them: the
production server (`tracking.server`) and the WSGI entry in front of Django (`tracking.wsgi`).

Two paths, from `inbox.trackmarks`:

- `GET /t/o/<token>.gif`: the open pixel. Always the 43-byte transparent GIF, never cached; a
  well-formed token's hit is buffered without a lookup (the flush worker drops unknown tokens).
- `GET /t/c/<token>/<n>/<sig>`: a tracked link. A 302 to link `n` as it was stored when the
  message was sent, once the signature over token and number holds and the message tracks its
  links; anything else (tampered, unknown, another company's token, a number out of range) gets
  the same plain 404 page, so no answer tells which. Only a redirected click is buffered.

Nothing here touches Django's request, ORM, session or templates: a hit is parsed from the path
and three headers, answered from prepared bytes, and handed to `tracking.buffer` by the server.
The one read, a click's stored links, goes through the `inbox_tracking_token` door
(`tracking.doors`) and is kept for a minute per token (`LinkCache`), so a burst of clicks on one
message costs one lookup. A HEAD gets the GET's headers and records nothing (it fetched no image
and followed no link); other methods get 405.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote

from inbox import trackmarks

# The smallest transparent GIF (1x1, one palette entry, transparency extension): 43 bytes.
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NOT_FOUND_HTML = (
    b"<!doctype html><html><head><meta charset=utf-8><title>Not found</title></head>"
    b"<body><p>This link is not available.</p></body></html>"
)
USER_AGENT_MAX = 512
# A link number has at most this many digits (messages carry far fewer links).
NUMBER_DIGITS = 6
_OPEN_PREFIX = "/t/o/"
_CLICK_PREFIX = "/t/c/"
_OPEN_LENGTH = len(_OPEN_PREFIX) + 32 + len(".gif")
_HEX = frozenset("0123456789abcdef")
_SIGNATURE_CHARS = frozenset("0123456789abcdefABCDEF")
_PROXIES_REMEMBERED = 1024


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete response: the servers add only Date and Connection."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def status_line(self) -> str:
        return f"{self.status} {self.reason}"


_NO_STORE = "no-store, no-cache, must-revalidate, private, max-age=0"
PIXEL = Answer(
    200,
    "OK",
    (
        ("Content-Type", "image/gif"),
        ("Content-Length", str(len(PIXEL_GIF))),
        ("Cache-Control", _NO_STORE),
        ("Pragma", "no-cache"),
        ("Expires", "0"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
    ),
    PIXEL_GIF,
)
NOT_FOUND = Answer(
    404,
    "Not Found",
    (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(NOT_FOUND_HTML))),
        ("Cache-Control", _NO_STORE),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
    ),
    NOT_FOUND_HTML,
)
METHOD_NOT_ALLOWED = Answer(
    405,
    "Method Not Allowed",
    (
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", "19"),
        ("Allow", "GET, HEAD"),
        ("Cache-Control", "no-store"),
    ),
    b"Method not allowed\n",
)


UNAVAILABLE_HTML = (
    b"<!doctype html><html><head><meta charset=utf-8><title>Try again</title></head>"
    b"<body><p>This link cannot be opened right now. Please try again in a moment.</p>"
    b"</body></html>"
)


def redirect(location: str) -> Answer:
    return Answer(
        302,
        "Found",
        (
            ("Location", location),
            ("Content-Length", "0"),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
        ),
        b"",
    )


class Hit(NamedTuple):
    """One hit as the buffer stores it (the contract of docs/decisions/0014-tracking.md):
    kind "o" or "c", link number as decimal text ("" for opens), time in microseconds since
    the epoch (UTC), the client's address, its User-Agent (at most 512 characters) and the
    session mark ("" or 32 hex characters)."""

    token: str
    kind: str
    link: str
    at: int
    ip: str
    ua: str
    session: str


class Outcome(NamedTuple):
    """The answer, and the hit to buffer before sending it (None: nothing to record)."""

    answer: Answer
    hit: Hit | None


# A signed click whose stored links cannot be read (PostgreSQL down): no redirect without them,
# and no 404 either (the link is fine); the visitor is asked to try again.
UNAVAILABLE = Outcome(
    Answer(
        503,
        "Service Unavailable",
        (
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(UNAVAILABLE_HTML))),
            ("Retry-After", "5"),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
        ),
        UNAVAILABLE_HTML,
    ),
    None,
)


@dataclass(frozen=True, slots=True)
class Pending:
    """A click whose message's links are not in the cache: look them up through the door,
    then `Endpoints.click_resolved`."""

    token: str
    number: int
    hit: Hit | None  # None for a HEAD


class Tracked(NamedTuple):
    """What the token door answers that the endpoints use: the redirect of each stored link
    (None for a link that is not a web address), or no links when the message does not
    track them."""

    redirects: tuple[Answer | None, ...]


def tracked_from_links(track_links: bool, links: Sequence[str] | None) -> Tracked:
    if not track_links or not links:
        return Tracked(())
    return Tracked(tuple(_redirect_for(link) for link in links))


def _redirect_for(link: str) -> Answer | None:
    """The 302 to a stored link, or None when it is no http(s) address or holds control
    characters. Spaces and non-ASCII characters are percent-encoded, as a browser does."""
    stripped = link.strip()
    if not stripped.lower().startswith(("http://", "https://")):
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in stripped):
        return None
    return redirect(quote(stripped, safe="!#$%&'()*+,/:;=?@[]~"))


class LinkCache:
    """Token -> Tracked for `ttl` seconds (None: no such tracked message, for `miss_ttl`),
    at most `size` tokens, oldest dropped first. A sent message's links never change, so the
    time to live only bounds how long a deleted message keeps redirecting."""

    def __init__(self, *, ttl: float = 60.0, miss_ttl: float = 10.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.miss_ttl = miss_ttl
        self.size = size
        self._entries: dict[str, tuple[float, Tracked | None]] = {}

    def get(self, token: str) -> tuple[bool, Tracked | None]:
        """(found, tracked); found is False when the token must be looked up."""
        entry = self._entries.get(token)
        if entry is None:
            return False, None
        if entry[0] < time.monotonic():
            self._entries.pop(token, None)
            return False, None
        return True, entry[1]

    def put(self, token: str, tracked: Tracked | None) -> None:
        entries = self._entries
        if token not in entries and len(entries) >= self.size:
            # Dropping the oldest keeps this O(1); expired entries go first in practice, as
            # every entry lives about as long.
            for old in list(entries)[: max(1, self.size // 10)]:
                del entries[old]
        ttl = self.ttl if tracked is not None else self.miss_ttl
        entries[token] = (time.monotonic() + ttl, tracked)

    def clear(self) -> None:
        self._entries.clear()


class Endpoints:
    """The endpoints' logic with the site's settings, one per process (the link cache and
    the trusted proxies it remembers live here)."""

    def __init__(
        self,
        *,
        secret_key: str,
        session_cookie: str,
        trusted_proxies: Sequence[str],
        cache: LinkCache | None = None,
    ) -> None:
        self.key = trackmarks.tracking_key(secret_key)
        self.session_cookie = session_cookie
        self.cache = cache or LinkCache()
        self._proxy_networks = tuple(
            ipaddress.ip_network(entry.strip(), strict=False)
            for entry in trusted_proxies
            if entry.strip()
        )
        self._proxies: dict[str, bool] = {}

    @classmethod
    def from_settings(cls) -> Endpoints:
        from django.conf import settings

        return cls(
            secret_key=settings.SECRET_KEY,
            session_cookie=settings.SESSION_COOKIE_NAME,
            trusted_proxies=settings.CRM_TRACKING_TRUSTED_PROXIES,
        )

    # --- The request --------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        peer: str,
        forwarded_for: str = "",
        user_agent: str = "",
        cookie: str = "",
    ) -> Outcome | Pending:
        """The answer to one request for a `/t/` path (without its query string)."""
        head = method == "HEAD"
        if not head and method != "GET":
            return Outcome(METHOD_NOT_ALLOWED, None)
        if path.startswith(_OPEN_PREFIX):
            token = path[5:37]
            if len(path) != _OPEN_LENGTH or not path.endswith(".gif") or not _is_token(token):
                return Outcome(PIXEL, None)
            if head:
                return Outcome(PIXEL, None)
            return Outcome(
                PIXEL, self._hit(token, "o", "", peer, forwarded_for, user_agent, cookie)
            )
        if path.startswith(_CLICK_PREFIX):
            return self._click(head, path, peer, forwarded_for, user_agent, cookie)
        return Outcome(NOT_FOUND, None)

    def _click(
        self, head: bool, path: str, peer: str, forwarded_for: str, user_agent: str, cookie: str
    ) -> Outcome | Pending:
        parts = path.split("/")
        if len(parts) != 6:
            return Outcome(NOT_FOUND, None)
        token, number_text, signature = parts[3], parts[4], parts[5]
        if (
            not _is_token(token)
            or not number_text.isascii()
            or not number_text.isdigit()
            or len(number_text) > NUMBER_DIGITS
            or len(signature) != trackmarks.SIGNATURE_HEX
            or not _SIGNATURE_CHARS.issuperset(signature)
        ):
            return Outcome(NOT_FOUND, None)
        number = int(number_text)
        if not trackmarks.signature_valid(self.key, token, number, signature):
            return Outcome(NOT_FOUND, None)
        hit = (
            None
            if head
            else self._hit(token, "c", str(number), peer, forwarded_for, user_agent, cookie)
        )
        found, tracked = self.cache.get(token)
        if not found:
            return Pending(token, number, hit)
        return _click_answer(tracked, number, hit)

    def click_resolved(self, pending: Pending, tracked: Tracked | None) -> Outcome:
        """The answer to a click once its message's links were looked up (None: the door
        knows no tracked message with this token)."""
        self.cache.put(pending.token, tracked)
        return _click_answer(tracked, pending.number, pending.hit)

    # --- Who it is from -----------------------------------------------------------------------

    def _hit(
        self,
        token: str,
        kind: str,
        link: str,
        peer: str,
        forwarded_for: str,
        user_agent: str,
        cookie: str,
    ) -> Hit:
        return Hit(
            token,
            kind,
            link,
            time.time_ns() // 1000,
            self.client_ip(peer, forwarded_for),
            user_agent[:USER_AGENT_MAX].replace("\x00", ""),
            self.session_mark(cookie),
        )

    def client_ip(self, peer: str, forwarded_for: str) -> str:
        """The left-most X-Forwarded-For address when the direct peer is a trusted proxy (and
        the entry is an address), else the peer's."""
        if not forwarded_for or not self._trusted(peer):
            return peer
        first = forwarded_for.split(",", 1)[0].strip()
        try:
            return str(ipaddress.ip_address(first))
        except ValueError:
            return peer

    def _trusted(self, peer: str) -> bool:
        trusted = self._proxies.get(peer)
        if trusted is None:
            try:
                address = ipaddress.ip_address(peer)
            except ValueError:
                trusted = False
            else:
                trusted = any(address in network for network in self._proxy_networks)
            if len(self._proxies) >= _PROXIES_REMEMBERED:
                self._proxies.clear()
            self._proxies[peer] = trusted
        return trusted

    def session_mark(self, cookie: str) -> str:
        """The first 32 hex characters of an HMAC of the session cookie's value, or "": lets
        the flush worker recognise the sender's own opens without storing their session."""
        if not cookie or self.session_cookie not in cookie:
            return ""
        value = cookie_value(cookie, self.session_cookie)
        if not value:
            return ""
        return trackmarks.session_mark(self.key, value)


def cookie_value(header: str, name: str) -> str:
    """The value of cookie `name` in a Cookie header, or ""."""
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            return value.strip()
    return ""


def _is_token(token: str) -> bool:
    return len(token) == 32 and _HEX.issuperset(token)


def _click_answer(tracked: Tracked | None, number: int, hit: Hit | None) -> Outcome:
    if tracked is None or number >= len(tracked.redirects):
        return Outcome(NOT_FOUND, None)
    answer = tracked.redirects[number]
    if answer is None:
        return Outcome(NOT_FOUND, None)
    return Outcome(answer, hit)
