"""A message's body as our pages and the API show it: sanitized HTML (or the text, escaped),
answered with headers that keep it inert in its sandboxed frame. One place, so the API's
`body_url` and the pages' frames can never differ. Also what a body loads besides itself: the
bytes of one MIME part of the raw message (attachments and inline images), and the reader's
choice to show remote images.

docs/decisions/0008-mail-html-safety.md explains the layers: the allow-list (`inbox.sanitize`),
the frame's sandbox and CSP below, the image proxy (`inbox.imageproxy`)."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import TYPE_CHECKING

from django.http import HttpResponse

from inbox import sanitize

if TYPE_CHECKING:
    from inbox.models import MailMessage

# The frame's document may run nothing, submit nothing and load nothing but images from our
# own origin (the image proxy and inline parts) and our `data:` placeholder. Its sandbox allows
# popups that escape it, and nothing else: a link the reader clicks opens in a new tab as a
# normal page (`rel="noopener noreferrer"` from the sanitizer), while the message itself stays
# without scripts, forms, top navigation or our origin. The frame's `sandbox` attribute in
# templates/inbox/_message.html says the same; a browser applies the stricter of the two.
# no-store: the body holds signed, expiring URLs and changes when images are allowed.
BODY_HEADERS = {
    "Content-Security-Policy": (
        "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
        "img-src data: 'self'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Chromium resolves the host names of links ahead of a click on plain-HTTP pages: a DNS
    # query the sender's name server sees is a read receipt too.
    "X-DNS-Prefetch-Control": "off",
    "Cache-Control": "private, no-store",
}


# The frame's own base style, before the message: a readable default for mail that sets none
# (the message's own styles, inline, win). Only the frame gets it, not the API's `body`.
FRAME_HEAD = (
    '<meta charset="utf-8"><style>body{margin:8px;color:#1f2328;'
    'font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;'
    "overflow-wrap:break-word}pre{font:inherit}</style>"
)


def message_body_html(
    message: MailMessage,
    *,
    remote_image_url: Callable[[str], str] | None = None,
    cid_url: Callable[[str], str | None] | None = None,
) -> str:
    """The body for display: the HTML sanitized, or the text escaped into a <pre>.

    Without `remote_image_url` remote images stay behind a placeholder; without `cid_url`
    inline images lose their source (see `sanitize.sanitize_html`)."""
    if message.body_html:
        return sanitize.sanitize_html(
            message.body_html, remote_image_url=remote_image_url, cid_url=cid_url
        )
    return f'<pre style="white-space: pre-wrap">{html.escape(message.body_text)}</pre>'


def body_response(
    message: MailMessage,
    *,
    remote_image_url: Callable[[str], str] | None = None,
    cid_url: Callable[[str], str | None] | None = None,
) -> HttpResponse:
    """The body in its frame: sanitized, its quoted history folded (the API's body is not)."""
    if message.body_html:
        body = sanitize.collapse_quoted_html(
            sanitize.sanitize_html(
                message.body_html, remote_image_url=remote_image_url, cid_url=cid_url
            )
        )
    else:
        body = sanitize.collapse_quoted_text(message.body_text)
    response = HttpResponse(FRAME_HEAD + body, content_type="text/html; charset=utf-8")
    for header, value in BODY_HEADERS.items():
        response[header] = value
    return response


# --- One part of the raw message -----------------------------------------------------------------


class PartMissing(LookupError):
    """The raw message has no such part, or not the one that was stored under that number."""


def part_content(raw: bytes, part_path: str, *, content_type: str) -> bytes:
    """The decoded bytes of the part at `part_path` ("1.2": IMAP's numbering, as the ingest
    pipeline stores it in `MailAttachment.part_path`).

    The ingest parser lives in `mailsync`, above this app; the standard library numbers the
    parts the same way for any message that parses (tests/inbox/web/test_media.py holds the
    two to that on the fixture corpus). The part found must have the `content_type` stored
    for it: on a message so broken that the two parsers split it differently, the answer is
    "missing", never another part's bytes."""
    part = _find_part(BytesParser(policy=compat32).parsebytes(raw), part_path)
    if part.get_content_type() != content_type.lower():
        raise PartMissing(part_path)
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    inner = part.get_payload()
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        # An attached message, which the standard library parsed: written back out as it
        # came (compat32 keeps the headers as they were folded), in the message's line endings.
        output = io.BytesIO()
        policy = compat32.clone(linesep="\r\n" if b"\r\n" in raw else "\n")
        BytesGenerator(output, mangle_from_=False, maxheaderlen=0, policy=policy).flatten(inner[0])
        return output.getvalue()
    return b""


def _find_part(root: Message, part_path: str) -> Message:
    if not _is_container(root):
        if part_path == "1":  # IMAP calls the body of a single-part message part 1
            return root
        raise PartMissing(part_path)
    node = root
    for number in part_path.split("."):
        children = _children(node)
        if not number.isdigit() or not 1 <= int(number) <= len(children):
            raise PartMissing(part_path)
        node = children[int(number) - 1]
    return node


def _children(part: Message) -> list[Message]:
    payload = part.get_payload() if _is_container(part) else []
    return [child for child in payload if isinstance(child, Message)]


def _is_container(part: Message) -> bool:
    # Only multiparts hold numbered parts: an attached message/rfc822 is one part of its own.
    return part.get_content_maintype() == "multipart" and isinstance(part.get_payload(), list)


_MEDIA_TYPE_PART = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # an RFC 9110 token
_MEDIA_TYPE = re.compile(rf"{_MEDIA_TYPE_PART}/{_MEDIA_TYPE_PART}")


def download_content_type(stored: str) -> str:
    """The Content-Type to send a file with: its own when it is a plain `type/subtype`, else
    `application/octet-stream`. The file goes out as an attachment with nosniff, so the type
    only tells the reader's system which program opens it."""
    stored = stored.strip().lower()
    return stored if _MEDIA_TYPE.fullmatch(stored) else "application/octet-stream"


# --- The reader's choice to show remote images ---------------------------------------------------
