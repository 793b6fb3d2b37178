"""The marks tracking puts into the HTML we send (`inbox.trackmarks.mark_html`), pure: no
database. The pixel early (Gmail clips long messages), every web link through the click
endpoint and nothing else, odd markup read by a tokenizer, the rest left byte for byte."""

from __future__ import annotations

import hashlib
import hmac
import re

from inbox import mime, trackmarks

BASE = "https://t.acme.test"
KEY = trackmarks.tracking_key("a secret of the site")
TOKEN = "0123456789abcdef0123456789abcdef"
PIXEL = f"{BASE}/t/o/{TOKEN}.gif"


def mark(markup: str, *, opens: bool = True, links: bool = True) -> trackmarks.Marked:
    return trackmarks.mark_html(
        markup, base_url=BASE, key=KEY, token=TOKEN, opens=opens, links=links
    )


def link(number: int) -> str:
    return trackmarks.link_url(BASE, KEY, TOKEN, number)


def hrefs(markup: str) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]*)"', markup)


def test_the_pixel_follows_the_body_tag_so_clipping_cannot_cut_it() -> None:
    # 300 KB of text: Gmail shows about the first 102 KB, the pixel is in the first few hundred
    # bytes (after the head) however long the message.
    long_body = "<p>" + "A long proposal. " * 18_000 + "</p>"
    document = mime.html_document(long_body)

    marked = mark(document)

    body_tag = marked.html.index("<body>")
    pixel_at = marked.html.index(PIXEL)
    assert body_tag < pixel_at < body_tag + 50
    assert len(marked.html[:pixel_at].encode()) < 1024
    assert marked.html.count(PIXEL) == 1
    assert re.search(r'<img src="[^"]+" width="1" height="1" alt=""', marked.html)


def test_a_fragment_gets_the_pixel_at_its_very_start() -> None:
    marked = mark("<p>Hello Pat</p>", links=False)
    assert marked.html.startswith(f'<img src="{PIXEL}"')
    assert marked.html.endswith("<p>Hello Pat</p>")
    assert marked.links == ()


def test_a_document_without_a_body_tag_gets_it_after_the_head() -> None:
    head = "<!DOCTYPE html><html><head><style>p { color: red }</style></head>"
    marked = mark(head + "<p>Hi</p></html>", links=False)
    assert marked.html.startswith(head + f'<img src="{PIXEL}"')
    no_head = mark('<!DOCTYPE html>\n<html lang="de"><p>Hi</p></html>', links=False)
    assert no_head.html.startswith(f'<!DOCTYPE html>\n<html lang="de"><img src="{PIXEL}"')


def test_the_body_tag_keeps_its_attributes_and_the_pixel_goes_after_it() -> None:
    document = '<html><head></head><BODY dir="rtl" style="margin:0">\n<p>سلام</p></BODY></html>'
    marked = mark(document, links=False)
    assert f'<BODY dir="rtl" style="margin:0"><img src="{PIXEL}"' in marked.html


def test_web_links_point_through_the_click_endpoint_numbered_by_address() -> None:
    markup = (
        '<p><a href="https://acme.test/offer" class="btn" target="_blank">Offer</a> '
        '<a href="http://acme.test/pricing?plan=team&amp;seats=5">Prices</a> '
        "<a href='https://acme.test/offer'>the offer again</a></p>"
    )

    marked = mark(markup, opens=False)

    # The same address twice is one tracked link: one number, one address stored.
    assert marked.links == ("https://acme.test/offer", "http://acme.test/pricing?plan=team&seats=5")
    assert hrefs(marked.html) == [link(0), link(1), link(0)]
    assert '<a href="' + link(0) + '" class="btn" target="_blank">Offer</a>' in marked.html
    assert PIXEL not in marked.html
    for number in (0, 1):
        signature = link(number).rsplit("/", 1)[1]
        assert trackmarks.signature_valid(KEY, TOKEN, number, signature)
        assert not trackmarks.signature_valid(KEY, TOKEN, number + 1, signature)


def test_mail_phone_anchor_inline_relative_and_script_links_stay_as_written() -> None:
    kept = [
        "mailto:alice@acme.test?subject=Hi",
        "tel:+4930123456",
        "#section-2",
        "cid:logo@acme",
        "/relative/path",
        "javascript:alert(1)",
        "ftp://files.acme.test/a.pdf",
        "https:no-host",
        f"{BASE}/t/c/{TOKEN}/0/abcdef0123456789",  # already ours
        f"{BASE.upper()}/T/O/{TOKEN}.gif",
    ]
    markup = "".join(f'<a href="{href}">x</a>' for href in kept) + "<a name='top'>top</a>"

    marked = mark(markup, opens=False)

    assert marked.links == ()
    assert marked.html == markup  # byte for byte


def test_links_in_comments_scripts_and_styles_are_no_links() -> None:
    markup = (
        '<!-- <a href="https://commented.test/">old</a> -->'
        "<script>var s = '<a href=\"https://script.test/\">';</script>"
        "<style>a[href='https://style.test/'] { color: red }</style>"
        '<!--[if mso]><a href="https://mso.test/">Outlook only</a><![endif]-->'
        '<a href="https://real.test/">real</a>'
    )
    marked = mark(markup, opens=False)
    assert marked.links == ("https://real.test/",)
    assert marked.html == markup.replace('href="https://real.test/"', f'href="{link(0)}"')


def test_odd_markup_is_read_as_a_browser_would() -> None:
    markup = (
        "<P>Unquoted <A HREF=https://acme.test/a?x=1&y=2 TARGET=_blank>upper case</A>\n"
        "<a\n  href = ' https://acme.test/spaced '\n  data-x>spread over lines</a>"
        '<a href="https://acme.test/first" href="https://acme.test/second">two hrefs</a>'
        '<a href="https://acme.test/&quot;quoted&quot;" title="say &quot;hi&quot; &amp; go">q</a>'
        "<a>no href</a><br/><img src=https://acme.test/logo.png alt=logo>"
        '<a href="https://acme.test/unclosed'
    )

    marked = mark(markup, opens=False)

    assert marked.links == (
        "https://acme.test/a?x=1&y=2",
        "https://acme.test/spaced",  # what a browser follows: the address, trimmed
        "https://acme.test/first",  # the first href wins, as in a browser
        'https://acme.test/"quoted"',
    )
    assert f'<a href="{link(0)}" target="_blank">upper case</A>' in marked.html
    assert f'<a href="{link(1)}" data-x>spread over lines</a>' in marked.html
    assert f'<a href="{link(2)}">two hrefs</a>' in marked.html  # the second href dropped
    assert f'<a href="{link(3)}" title="say &quot;hi&quot; &amp; go">q</a>' in marked.html
    assert "<a>no href</a><br/><img src=https://acme.test/logo.png alt=logo>" in marked.html
    assert marked.html.endswith('<a href="https://acme.test/unclosed')  # no tag: left alone


def test_everything_but_the_marks_is_left_byte_for_byte() -> None:
    document = mime.html_document(
        '<p style="color:#333">Dear Pat,&nbsp;see <b><a href="https://acme.test/o">this</a></b>'
        "</p>\r\n<table><tr><td>€ 12,00</td></tr></table>"
    )
    marked = mark(document)
    restored = marked.html.replace(link(0), "https://acme.test/o")
    restored = re.sub(r'<img src="[^"]*/t/o/[^"]*"[^>]*>', "", restored)
    assert restored == document


def test_nothing_is_marked_when_nothing_is_tracked() -> None:
    markup = '<p><a href="https://acme.test/">x</a></p>'
    assert mark(markup, opens=False, links=False) == trackmarks.Marked(markup, ())
    assert mark("", opens=True, links=True).html.startswith("<img")


def test_a_message_with_very_many_links_tracks_the_first_five_hundred() -> None:
    markup = "".join(f'<a href="https://acme.test/{n}">{n}</a>' for n in range(600))
    marked = mark(markup, opens=False)
    assert len(marked.links) == trackmarks.MAX_TRACKED_LINKS
    assert '<a href="https://acme.test/599">599</a>' in marked.html
    assert f'<a href="{link(499)}">499</a>' in marked.html


def test_the_session_mark_is_the_contracts_hmac_of_the_cookie() -> None:
    cookie = "k3x9session0value0of0a0browser"
    mark_ = trackmarks.session_mark(KEY, cookie)
    assert mark_ == hmac.new(KEY, cookie.encode(), hashlib.sha256).hexdigest()[:32]
    assert trackmarks.SESSION_MARK.fullmatch(mark_)
    assert cookie not in mark_
