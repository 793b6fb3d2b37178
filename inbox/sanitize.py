"""Make the HTML of an email safe to show inside our pages.

An allow-list, applied by bleach (html5lib parses the markup the way a browser does, so
split or entity-encoded tricks are seen as the browser would see them): layout and text tags,
presentational attributes, a short list of CSS properties without any CSS function except
colours. Remote images are swapped for a placeholder until the reader allows them: a remote
image tells the sender when and where the mail was read. Once allowed, they point at our image
proxy (`remote_image_url`), never at the remote host. `cid:` images point at our URL for the
inline part (`cid_url`). Nothing else may load: no `data:` URL but our own placeholder.

The result is shown in a sandboxed frame under a strict CSP (`inbox.bodies`): the allow-list is
the first wall, not the only one. docs/decisions/0008-mail-html-safety.md has the whole picture.

Pure: no Django import. Callers sanitize at display time, from `ParsedMessage.body_html`.
`sanitize_authored_html` is the other door: HTML our users write to send (templates,
signatures), cleaned by the same allow-list when it is saved, its links and images kept.
"""

from __future__ import annotations

import html as html_entities
import re
from collections.abc import Callable, Iterator
from functools import partial
from html.entities import html5 as html5_entities
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

import bleach
import tinycss2  # type: ignore[import-untyped]
from bleach.css_sanitizer import CSSSanitizer

if TYPE_CHECKING:
    from html5lib.filters.base import Filter
else:  # bleach ships html5lib inside itself
    from bleach.html5lib_shim import Filter

# A transparent 1x1 GIF: keeps the layout of a blocked image without fetching anything.
REMOTE_IMAGE_PLACEHOLDER: Final = (
    "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
)

ALLOWED_TAGS: Final = frozenset(
    {
        *("a", "abbr", "address", "article", "b", "bdi", "bdo", "big", "blockquote", "br"),
        *("caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "dfn", "div"),
        *("dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1", "h2", "h3", "h4"),
        *("h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "main", "mark", "ol"),
        *("p", "pre", "q", "s", "samp", "section", "small", "span", "strike", "strong", "sub"),
        *("sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u"),
        *("ul", "var", "wbr"),
    }
)
# No `id`, `name` or `class`: they would let a message reach into our page (DOM clobbering,
# our own CSS classes).
_COMMON_ATTRIBUTES = ["style", "title", "dir", "lang", "align"]
_CELL_ATTRIBUTES = ["width", "height", "bgcolor", "valign", "colspan", "rowspan", "nowrap"]
ALLOWED_ATTRIBUTES: Final[dict[str, list[str]]] = {
    "*": _COMMON_ATTRIBUTES,
    "a": [*_COMMON_ATTRIBUTES, "href"],
    "img": [*_COMMON_ATTRIBUTES, "src", "alt", "width", "height", "border", "hspace", "vspace"],
    "table": [
        *_COMMON_ATTRIBUTES,
        *("width", "border", "cellpadding", "cellspacing", "bgcolor", "summary"),
    ],
    "td": [*_COMMON_ATTRIBUTES, *_CELL_ATTRIBUTES],
    "th": [*_COMMON_ATTRIBUTES, *_CELL_ATTRIBUTES],
    "tr": [*_COMMON_ATTRIBUTES, "bgcolor", "valign", "height"],
    "col": [*_COMMON_ATTRIBUTES, "span", "width"],
    "colgroup": [*_COMMON_ATTRIBUTES, "span", "width"],
    "font": [*_COMMON_ATTRIBUTES, "color", "face", "size"],
    "hr": [*_COMMON_ATTRIBUTES, "width", "size", "noshade", "color"],
    "ol": [*_COMMON_ATTRIBUTES, "start", "type", "reversed"],
    "ul": [*_COMMON_ATTRIBUTES, "type"],
    "li": [*_COMMON_ATTRIBUTES, "value"],
    "time": [*_COMMON_ATTRIBUTES, "datetime"],
}
# cid: survives bleach only to be rewritten by `_EmailFilter` (or dropped).
_PROTOCOLS = frozenset({"http", "https", "mailto", "tel", "cid"})

# No `position`, `z-index` or offsets (a message could lay itself over our page), no
# `background-image`, `content`, `behavior` or `-moz-binding`.
ALLOWED_CSS_PROPERTIES: Final = frozenset(
    {
        *("color", "background", "background-color", "font", "font-family", "font-size"),
        *("font-style", "font-variant", "font-weight", "line-height", "letter-spacing"),
        *("word-spacing", "text-align", "text-decoration", "text-indent", "text-transform"),
        *("white-space", "word-break", "word-wrap", "overflow-wrap", "vertical-align"),
        *("direction", "display", "float", "clear", "overflow", "visibility"),
        *("width", "min-width", "max-width", "height", "min-height", "max-height"),
        *("margin", "margin-top", "margin-right", "margin-bottom", "margin-left"),
        *("padding", "padding-top", "padding-right", "padding-bottom", "padding-left"),
        *("border", "border-top", "border-right", "border-bottom", "border-left"),
        *("border-color", "border-style", "border-width", "border-radius"),
        *("border-top-color", "border-right-color", "border-bottom-color", "border-left-color"),
        *("border-top-style", "border-right-style", "border-bottom-style", "border-left-style"),
        *("border-top-width", "border-right-width", "border-bottom-width", "border-left-width"),
        *("border-collapse", "border-spacing", "table-layout", "list-style-type"),
        *("list-style-position", "text-overflow"),
    }
)
# Colour functions are the only CSS functions a value may use: url() fetches, expression()
# ran script in old Internet Explorer, and image-set(), var() or attr() have no place in mail.
_CSS_FUNCTIONS = frozenset({"rgb", "rgba", "hsl", "hsla"})

# Elements whose content is not text to show: bleach strips disallowed tags but keeps their
# text, which for these would print scripts and style sheets into the message.
_HIDDEN_CONTENT_TAGS = (
    *("script", "style", "title", "head", "template", "noscript", "xml", "object", "iframe"),
    *("noembed", "noframes"),
)
_HIDDEN_CONTENT_START = re.compile(r"<(" + "|".join(_HIDDEN_CONTENT_TAGS) + r")\b", re.I)
_HIDDEN_CONTENT_END = {tag: re.compile(rf"</{tag}\b[^>]*>?", re.I) for tag in _HIDDEN_CONTENT_TAGS}


# Removing one element can join the text around it into a new one (`<scr<script></script>ipt>`):
# a few more passes catch the nesting mail actually carries. What is left after them is only
# shown as text by bleach, never run.
_HIDDEN_CONTENT_PASSES = 4


def _drop_hidden_content(html: str) -> str:
    for _ in range(_HIDDEN_CONTENT_PASSES):
        dropped = _drop_hidden_content_once(html)
        if dropped == html:
            break
        html = dropped
    return html


def _drop_hidden_content_once(html: str) -> str:
    """Remove those elements with their content before bleach sees them. Linear in the size of
    the markup, also for hostile markup full of unclosed `<script>`s: a tag that is never
    closed again is not searched for again (bleach then strips the bare tag)."""
    pieces: list[str] = []
    position = 0
    unclosed: set[str] = set()
    for start in _HIDDEN_CONTENT_START.finditer(html):
        tag = start.group(1).lower()
        if start.start() < position or tag in unclosed:
            continue
        end = _HIDDEN_CONTENT_END[tag].search(html, start.end())
        if end is None:
            unclosed.add(tag)
            continue
        pieces.append(html[position : start.start()])
        position = end.end()
    pieces.append(html[position:])
    return "".join(pieces)


_CHARACTER_REFERENCE = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")


def attribute_text(value: str) -> str:
    """An attribute value as written → its text, as a browser decodes it (HTML's rule for
    attributes: a named reference without its `;`, followed by `=` or a letter or digit, stays
    as written, so `?id=1&sect=2` keeps its `&sect`)."""

    def decode(match: re.Match[str]) -> str:
        reference = match.group(1)
        if reference.startswith("#"):
            return html_entities.unescape(match.group(0))
        following = value[match.end() : match.end() + 1]
        if reference not in html5_entities or (not reference.endswith(";") and following == "="):
            return match.group(0)
        return html5_entities[reference]

    return _CHARACTER_REFERENCE.sub(decode, value) if "&" in value else value


class _EmailCSSSanitizer(CSSSanitizer):
    """bleach's sanitizer checks property names only; this one also drops every declaration
    whose value holds a url, a block, or a function other than a colour."""

    def sanitize_css(self, style: str) -> str:
        # bleach hands over the attribute as written, entities and all; the browser decodes
        # them before its CSS parser runs, so this one must too. Outlook's
        # `font-family:&quot;Calibri&quot;` would otherwise lose the declarations after it.
        kept: list[str] = []
        for declaration in tinycss2.parse_blocks_contents(attribute_text(style)):
            if declaration.type != "declaration":
                continue
            if declaration.lower_name not in self.allowed_css_properties:
                continue
            if not _css_value_is_plain(declaration.value):
                continue
            value = tinycss2.serialize(declaration.value).strip()
            important = " !important" if declaration.important else ""
            kept.append(f"{declaration.lower_name}: {value}{important}")
        return "; ".join(kept)


def _css_value_is_plain(tokens: list[Any]) -> bool:
    for token in tokens:
        if token.type in ("url", "at-keyword", "() block", "[] block", "{} block"):
            return False
        if token.type == "function" and (
            token.lower_name not in _CSS_FUNCTIONS or not _css_value_is_plain(token.arguments)
        ):
            return False
        if token.type == "ident" and token.lower_value.startswith(("expression", "javascript")):
            return False
        if token.type == "error":
            return False
    return True


_ABSOLUTE_LINK = re.compile(r"\s*(https?|mailto|tel):", re.I)


class _EmailFilter(Filter):
    """After bleach: links open in a new tab without a window.opener; `cid:` images point to
    our URL for the attachment; remote images wait behind a placeholder, or go through our
    image proxy once the reader allowed them."""

    def __init__(
        self,
        source: Any,
        *,
        remote_image_url: Callable[[str], str] | None,
        cid_url: Callable[[str], str | None] | None,
    ) -> None:
        super().__init__(source)
        self.remote_image_url = remote_image_url
        self.cid_url = cid_url

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag"):
                if token["name"] == "a":
                    href = token["data"].get((None, "href"), "")
                    if href and not _ABSOLUTE_LINK.match(href):
                        # A relative link would point into our own site.
                        del token["data"][(None, "href")]
                    token["data"][(None, "target")] = "_blank"
                    token["data"][(None, "rel")] = "noopener noreferrer"
                elif token["name"] == "img":
                    self._rewrite_image(token["data"])
            yield token

    def _rewrite_image(self, attributes: dict[tuple[str | None, str], str]) -> None:
        # bleach leaves attribute values as written: `&amp;` in a newsletter's image URL is
        # `&` to the browser, and must be to the proxy too (the serializer escapes it again).
        source = attribute_text(attributes.pop((None, "src"), "")).strip()
        scheme = source.partition(":")[0].lower()
        if scheme == "cid" and self.cid_url is not None:
            content_id = unquote(source[4:]).strip().strip("<>")
            ours = self.cid_url(content_id)
            if ours:
                attributes[(None, "src")] = ours
        elif scheme in ("http", "https") and self.remote_image_url is not None:
            attributes[(None, "src")] = self.remote_image_url(source)
        elif scheme in ("http", "https"):
            attributes[(None, "src")] = REMOTE_IMAGE_PLACEHOLDER
            attributes[(None, "data-remote-src")] = source
        # Anything else (cid: without a resolver or an inline part, data:, mailto:, a
        # protocol-relative //host) is left without a source.


def sanitize_html(
    html: str,
    *,
    remote_image_url: Callable[[str], str] | None = None,
    cid_url: Callable[[str], str | None] | None = None,
) -> str:
    """Safe HTML for showing an email's HTML body inside our pages.

    `cid_url` turns a Content-ID (without <>) into our URL for that inline attachment (None:
    no such image); without it `cid:` images lose their source. Remote images get
    `REMOTE_IMAGE_PLACEHOLDER` as source and keep their address in `data-remote-src`, unless
    `remote_image_url` is given: it turns the remote address into our proxy's URL for it."""
    email_filter = partial(_EmailFilter, remote_image_url=remote_image_url, cid_url=cid_url)
    # A Cleaner per call: bleach's Cleaner is not safe to share between threads.
    cleaner = bleach.Cleaner(
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        protocols=_PROTOCOLS,
        strip=True,
        strip_comments=True,
        filters=[email_filter],
        css_sanitizer=_EmailCSSSanitizer(allowed_css_properties=ALLOWED_CSS_PROPERTIES),
    )
    return cleaner.clean(_drop_hidden_content(html))


# `<img ... src=http...`: the attribute named exactly src (not data-src), its value quoted or not.
_REMOTE_IMAGE = re.compile(r"<img\b[^>]*?(?<![\w-])src\s*=\s*[\"'`]?\s*https?:", re.I)


def has_remote_images(html: str) -> bool:
    """Whether the body has remote images to offer to show: a cheap scan of the markup, not a
    parse, so the conversation view need not sanitize every message to know. An image it
    misses (split by odd markup) stays blocked: the safe way to be wrong."""
    if _REMOTE_IMAGE.search(html):
        return True
    return "&" in html and bool(_REMOTE_IMAGE.search(html_entities.unescape(html)))


# --- Quoted history, collapsed -----------------------------------------------------------------

_BLOCKQUOTE_TAG = re.compile(r"<(/?)blockquote\b[^>]*>", re.I)
QUOTE_SUMMARY = "···"  # the toggle of a folded quote, as mail clients draw it


def _folded(inner: str) -> str:
    # <details> needs no script: it folds and unfolds in the sandboxed frame as it is.
    return (
        '<details class="quoted"><summary title="Show quoted text" '
        f'style="cursor:pointer;color:#57606a">{QUOTE_SUMMARY}</summary>{inner}</details>'
    )


def collapse_quoted_html(safe_html: str) -> str:
    """Fold each outermost `<blockquote>` (the quoted history of replies in Gmail, Apple Mail,
    Thunderbird and most clients) behind a toggle. Takes `sanitize_html`'s output, whose tags
    are balanced, so counting the blockquote tags finds each outermost one."""
    pieces: list[str] = []
    depth = 0
    start = position = 0
    for tag in _BLOCKQUOTE_TAG.finditer(safe_html):
        closing = tag.group(1) == "/"
        if not closing:
            if depth == 0:
                pieces.append(safe_html[position : tag.start()])
                start = tag.start()
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                pieces.append(_folded(safe_html[start : tag.end()]))
                position = tag.end()
    if depth:  # unbalanced after all: leave the rest as it is
        position = start
    pieces.append(safe_html[position:])
    return "".join(pieces)


def collapse_quoted_text(text: str) -> str:
    """A plain-text body as escaped HTML in a <pre>, each run of quoted lines ("> …") folded
    behind a toggle."""
    out: list[str] = []
    quoted: list[str] = []

    def flush() -> None:
        if quoted:
            out.append(_folded("".join(quoted)))
            quoted.clear()

    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith(">"):
            quoted.append(html_entities.escape(line))
        else:
            flush()
            out.append(html_entities.escape(line))
    flush()
    return f'<pre style="white-space: pre-wrap">{"".join(out)}</pre>'


# --- HTML our users write ------------------------------------------------------------------------

_AUTHORED_IMAGE = re.compile(r"\s*(https?|cid):", re.I)


class _AuthoredFilter(Filter):
    """After bleach, for HTML written in our editor: links and images keep absolute addresses
    only (a relative one would point nowhere from the recipient's mail client, or into our
    site); `cid:` images stay for the composer's inline files. Nothing is rewritten: the
    markup is sent as the user wrote it."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag"):
                attributes = token["data"]
                if token["name"] == "a":
                    href = attributes.get((None, "href"))
                    if href is not None and not _ABSOLUTE_LINK.match(attribute_text(href)):
                        del attributes[(None, "href")]
                elif token["name"] == "img":
                    source = attributes.get((None, "src"))
                    if source is not None and not _AUTHORED_IMAGE.match(attribute_text(source)):
                        del attributes[(None, "src")]
            yield token


def sanitize_authored_html(html: str) -> str:
    """Safe HTML of what our users write to send: email templates, signatures. The same
    allow-list as mail we show (no script, no event handler, plain CSS only), but links and
    images are left as written, for the recipients: no placeholder, proxy or new-tab target.
    Smart fields (`{{deal.title}}`, `inbox.smartfields`) pass untouched, in text and inside
    attributes (`href="mailto:{{person.email}}"`). Stored as returned, shown in our editor."""
    cleaner = bleach.Cleaner(
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        protocols=_PROTOCOLS,
        strip=True,
        strip_comments=True,
        filters=[_AuthoredFilter],
        css_sanitizer=_EmailCSSSanitizer(allowed_css_properties=ALLOWED_CSS_PROPERTIES),
    )
    return cleaner.clean(_drop_hidden_content(html))
