"""A message's body as our pages and the API show it: sanitized HTML (or the text, escaped),
answered with headers that keep it inert in its sandboxed frame. One place, so the API's
`body_url` and the pages' frames can never differ."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from django.http import HttpResponse

from inbox import sanitize

if TYPE_CHECKING:
    from inbox.models import MailMessage

# No scripts, no remote loads, no forms, no referrer; shown in a sandboxed frame.
BODY_HEADERS = {
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def message_body_html(message: MailMessage) -> str:
    """The body for display: the HTML sanitized, or the text escaped into a <pre>."""
    if message.body_html:
        return sanitize.sanitize_html(message.body_html)
    return f'<pre style="white-space: pre-wrap">{html.escape(message.body_text)}</pre>'


def body_response(message: MailMessage) -> HttpResponse:
    response = HttpResponse(message_body_html(message), content_type="text/html; charset=utf-8")
    for header, value in BODY_HEADERS.items():
        response[header] = value
    return response
