"""`inbox.sanitize.sanitize_authored_html`: what users write to send (templates, signatures)
goes through the same allow-list as mail we show, but keeps its links and images as written
for the recipients, and its smart fields untouched. Pure: no database."""

from __future__ import annotations

import pytest

from inbox.sanitize import sanitize_authored_html
from tests.inbox.test_sanitize import XSS, assert_safe


@pytest.mark.parametrize("payload", XSS)
def test_nothing_executable_survives_in_what_users_write(payload: str) -> None:
    """The hostile markup the display sanitizer is tested with, beside a smart field."""
    cleaned = sanitize_authored_html(f"<p>{{{{person.first_name}}}}</p>{payload}")

    assert_safe(cleaned)
    assert cleaned.startswith("<p>{{person.first_name}}</p>")


def test_links_and_images_stay_as_written_for_the_recipients() -> None:
    cleaned = sanitize_authored_html(
        '<p><a href="https://acme.test/offer?a=1&amp;b=2">offer</a> '
        '<a href="mailto:{{person.email}}">write</a> <a href="/inbox">ours</a></p>'
        '<img src="https://cdn.acme.test/logo.png" alt="Acme"><img src="cid:logo@acme">'
        '<img src="/static/x.png"><p dir="rtl">سلام {{ person.name }}</p>'
    )

    assert cleaned == (
        '<p><a href="https://acme.test/offer?a=1&amp;b=2">offer</a> '
        '<a href="mailto:{{person.email}}">write</a> <a>ours</a></p>'
        '<img src="https://cdn.acme.test/logo.png" alt="Acme"><img src="cid:logo@acme">'
        '<img><p dir="rtl">سلام {{ person.name }}</p>'
    )
