"""What an opened message loads besides the page: its body in the sandboxed frame, the images
in that body, and its files.

- `GET mail/messages/<id>/body`: a message's body, sanitized, for the sandboxed frame. Remote
  images point at the image proxy once the reader allowed them; `cid:` images at the signed
  inline URL of their part.
- `POST mail/messages/<id>/images` (`scope=message|sender`, `thread=<id>`): show this
  message's remote images, or every message's from its sender, to this reader; answers with
  the conversation re-read (a 303 to `mail/threads/<id>`, which htmx follows and swaps in).
- `GET mail/attachments/<id>`: a file of a message, as a download.
- `GET mail/attachments/<id>/inline?c=&u=&e=&s=`: an inline image of a body (raster only).
- `GET mail/image-proxy?u=&m=&s=`: a remote image, fetched by our server (`inbox.imageproxy`).

Reads go through `inbox.selectors.access_message` (directly or via `inbox.media_selectors`),
so only who may see the conversation gets anything; anyone else gets the same 404 as for
something that does not exist.

The body's frame is sandboxed into an opaque origin, so the browser sends no cookies with the
requests it makes: the inline and proxy URLs it loads carry their own HMAC signature instead of
relying on the session. An inline URL names the company and user it was made for and expires;
it is honoured by re-reading the file as that user, so a user who lost access loses the image.
docs/decisions/0008-mail-html-safety.md records the choices."""

from __future__ import annotations

import hmac
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.crypto import salted_hmac
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from crm import tenancy
from crm.web.permissions import MemberRequest, member_required
from inbox import bodies, imageproxy, media_selectors, rawstore, selectors, services

if TYPE_CHECKING:
    from crm.models import Membership
    from inbox.models import MailMessage

logger = logging.getLogger(__name__)

# Files: never rendered by the browser (a download), never sniffed, and sandboxed should one
# be opened anyway.
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}
# Images (inline parts and proxied ones): shown by an <img>, nothing else.
IMAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}
# An inline URL lives a day or so, and stays the same for an hour: the browser's cache keeps
# the image while the reader goes back and forth.
INLINE_URL_HOURS = 24
_INLINE_SALT = "inbox.inline-image"
_NUMBER = re.compile(r"[0-9]{1,18}")


def _not_found() -> HttpResponse:
    """404 for htmx posts: nothing is swapped in place of the conversation."""
    return HttpResponse(status=404, headers={"HX-Reswap": "none"})


# --- The body ------------------------------------------------------------------------------------


@xframe_options_sameorigin
@require_GET
@member_required
def message_body(request: MemberRequest, message_id: int) -> HttpResponse:
    """The body in its sandboxed frame on our own pages (hence SAMEORIGIN, not DENY)."""
    found = selectors.access_message(membership=request.membership, message_id=message_id)
    if found is None:
        raise Http404
    message, _thread = found
    membership = request.membership
    remote_image_url: Callable[[str], str] | None = None
    if message.pk in media_selectors.images_allowed(membership=membership, messages=[message]):
        remote_image_url = partial(imageproxy.proxy_url, message_id=message.pk)
    return bodies.body_response(
        message,
        remote_image_url=remote_image_url,
        cid_url=_inline_resolver(membership, message),
    )


def _inline_resolver(membership: Membership, message: MailMessage) -> Callable[[str], str | None]:
    parts = media_selectors.inline_images(company=membership.company_id, message=message)
    expires = (int(time.time()) // 3600 + INLINE_URL_HOURS + 1) * 3600

    def cid_url(content_id: str) -> str | None:
        attachment_id = parts.get(content_id.lower())
        if attachment_id is None:
            return None
        return inline_url(
            company_id=membership.company_id,
            user_id=membership.user_id,
            attachment_id=attachment_id,
            expires=expires,
        )

    return cid_url


def _inline_signature(*, company_id: int, user_id: int, attachment_id: int, expires: int) -> str:
    value = f"{company_id}:{user_id}:{attachment_id}:{expires}"
    return salted_hmac(_INLINE_SALT, value, algorithm="sha256").hexdigest()


def inline_url(*, company_id: int, user_id: int, attachment_id: int, expires: int) -> str:
    """The signed URL of an inline image for one reader, valid until `expires` (epoch s)."""
    signature = _inline_signature(
        company_id=company_id, user_id=user_id, attachment_id=attachment_id, expires=expires
    )
    query = urlencode({"c": company_id, "u": user_id, "e": expires, "s": signature})
    return f"{reverse('inbox_attachment_inline', args=[attachment_id])}?{query}"


# --- Remote images: the reader's choice ------------------------------------------------------


@require_POST
@member_required
def message_images(request: MemberRequest, message_id: int) -> HttpResponse:
    found = selectors.access_message(membership=request.membership, message_id=message_id)
    if found is None:
        return _not_found()
    message, thread = found
    scope = request.POST.get("scope", "")
    if scope not in ("message", "sender") or (scope == "sender" and not message.from_address):
        return HttpResponse(status=400, headers={"HX-Reswap": "none"})
    services.remote_images_allow(
        membership=request.membership, message=message, sender=scope == "sender"
    )
    # The conversation the reader has open (an item's shared copy may differ from the one
    # access_message prefers); the thread view checks access again.
    shown = request.POST.get("thread", "")
    thread_id = int(shown) if _NUMBER.fullmatch(shown) else thread.pk
    return HttpResponseRedirect(reverse("inbox_thread", args=[thread_id]), status=303)


# --- Files ---------------------------------------------------------------------------------------


def _file_bytes(raw_path: str, part_path: str, content_type: str) -> bytes | None:
    if not raw_path:
        return None
    try:
        return bodies.part_content(
            rawstore.raw_read(raw_path), part_path, content_type=content_type
        )
    except (bodies.PartMissing, FileNotFoundError):
        logger.warning("Attachment part %s not found in its raw message", part_path)
        return None


def content_disposition(filename: str) -> str:
    """`attachment` with the name twice: RFC 6266's `filename*` in UTF-8 for browsers, and a
    plain ASCII `filename` for the rest. No path, no control or quote characters in either."""
    name = unicodedata.normalize("NFC", filename)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Format characters (bidirectional overrides: "report<U+202E>fdp.exe" reads "reportexe.pdf",
    # zero-width ones) go; controls and separators (a CR LF to inject a header) become spaces.
    name = "".join(
        ""
        if unicodedata.category(char) == "Cf"
        else " "
        if unicodedata.category(char)[0] in "CZ"
        else char
        for char in name
    )
    name = " ".join(name.replace('"', "'").split()).lstrip(".")[:200] or "attachment"
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fallback = re.sub(r"[^A-Za-z0-9 ._()'+,-]", "_", fallback).strip() or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@require_GET
@member_required
def attachment_download(request: MemberRequest, attachment_id: int) -> HttpResponse:
    found = media_selectors.access_attachment(
        membership=request.membership, attachment_id=attachment_id
    )
    if found is None:
        raise Http404
    attachment, message = found
    content = _file_bytes(message.raw_path, attachment.part_path, attachment.content_type)
    if content is None:
        raise Http404
    response = HttpResponse(
        content, content_type=bodies.download_content_type(attachment.content_type)
    )
    response["Content-Disposition"] = content_disposition(attachment.filename)
    for header, value in FILE_HEADERS.items():
        response[header] = value
    return response


def _signed_reader(request: HttpRequest, attachment_id: int) -> tuple[int, int] | None:
    """(company id, user id) an inline URL was made for, if its signature holds and it has not
    expired."""
    values = {name: request.GET.get(name, "") for name in ("c", "u", "e")}
    if not all(_NUMBER.fullmatch(value) for value in values.values()):
        return None
    company_id, user_id, expires = (int(values[name]) for name in ("c", "u", "e"))
    if expires < time.time():
        return None
    expected = _inline_signature(
        company_id=company_id, user_id=user_id, attachment_id=attachment_id, expires=expires
    )
    if not hmac.compare_digest(expected, request.GET.get("s", "")):
        return None
    return company_id, user_id


def _image_response(content: bytes, content_type: str, cache: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    for header, value in IMAGE_HEADERS.items():
        response[header] = value
    response["Cache-Control"] = cache
    return response


@require_GET
def attachment_inline(request: HttpRequest, attachment_id: int) -> HttpResponse:
    """An inline image for the body frame, which sends no cookies: the signed URL stands in
    for the session. Bound as the user it was made for, the file is read through visibility
    as they would read it."""
    reader = _signed_reader(request, attachment_id)
    if reader is None:
        raise Http404
    company_id, user_id = reader
    # The tenancy middleware opened the request's transaction; without a session it bound
    # no company. The signature says which one.
    tenancy.bind(company_id=company_id, user_id=user_id)
    membership = media_selectors.active_membership(company_id=company_id, user_id=user_id)
    if membership is None:
        raise Http404
    found = media_selectors.access_attachment(membership=membership, attachment_id=attachment_id)
    if found is None:
        raise Http404
    attachment, message = found
    if not imageproxy.declared_image(attachment.content_type):
        raise Http404
    content = _file_bytes(message.raw_path, attachment.part_path, attachment.content_type)
    found_type = imageproxy.raster_type(content or b"")
    if content is None or found_type is None:
        raise Http404
    return _image_response(content, found_type, "private, max-age=3600")


# --- Remote images: the proxy --------------------------------------------------------------


def _proxy_request(query: Mapping[str, str]) -> tuple[str, int] | None:
    url, message, given = query.get("u", ""), query.get("m", ""), query.get("s", "")
    if not url or not _NUMBER.fullmatch(message):
        return None
    if not imageproxy.signature_valid(url, message_id=int(message), given=given):
        return None
    return url, int(message)


@require_GET
def image_proxy(request: HttpRequest) -> HttpResponse:
    """A remote image of a body whose reader allowed its images. The signature is the
    authorization (see the module's docstring); what is fetched is what the signature
    covers, through the SSRF guard of `inbox.imageproxy`."""
    signed = _proxy_request(request.GET)
    if signed is None:
        return HttpResponse(status=403)
    url, _message_id = signed
    try:
        image = imageproxy.image_fetch(url)
    except imageproxy.ImageProxyError as exc:
        logger.info("Image proxy: not served (%s)", exc.message)
        return HttpResponse(status=403 if exc.refused else 502)
    return _image_response(image.body, image.content_type, "private, max-age=86400")


urlpatterns: list[URLPattern | URLResolver] = [
    path("mail/messages/<int:message_id>/body", message_body, name="inbox_message_body"),
    path("mail/messages/<int:message_id>/images", message_images, name="inbox_message_images"),
    path("mail/attachments/<int:attachment_id>", attachment_download, name="inbox_attachment"),
    path(
        "mail/attachments/<int:attachment_id>/inline",
        attachment_inline,
        name="inbox_attachment_inline",
    ),
    path("mail/image-proxy", image_proxy, name="inbox_image_proxy"),
]
