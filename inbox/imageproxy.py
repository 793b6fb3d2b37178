"""Remote images of a message, fetched by our server instead of the reader's browser.

A remote image in a mail is a read receipt: the sender learns when, from which address and in
which browser the message was opened. Once the reader allows a message's images, the body
points them at `GET /mail/image-proxy?u=<url>&m=<message id>&s=<signature>`, and this module
fetches them:

- the signature (HMAC with SECRET_KEY over the message id and the URL) is made only when a
  body is rendered for a reader who allowed its images, so the proxy fetches nothing else: it
  is not an open proxy. The body's frame is sandboxed (an opaque origin), so the browser sends
  no cookies with these requests: the signature is the whole authorization;
- the target passes `crm.outbound.check_url`, the SSRF guard of every outbound call: http and
  https only, no credentials, every address the host resolves to public (not private,
  loopback, link-local, multicast, reserved, shared). The connection goes to an address that
  was checked (no DNS rebinding between check and connect), with the Host header and TLS SNI
  on the name. Redirects are followed up to `MAX_REDIRECTS` times, each target checked again;
- the request carries no cookie, no referrer and a neutral User-Agent; one deadline bounds the
  whole exchange, redirects included; the body is read up to `MAX_BYTES`;
- only raster images are served: the response must say `image/*` (never SVG, which can carry
  script) and its first bytes must be PNG, JPEG, GIF, WebP or AVIF. It is served with the type
  found in the bytes, `nosniff` and `Content-Security-Policy: default-src 'none'; sandbox`.

Tests allow a loopback image server by host name with
`settings.INBOX_IMAGE_PROXY_ALLOWED_PRIVATE_HOSTS` (empty by default: nothing private)."""

from __future__ import annotations

import hmac
import http.client
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

from django.conf import settings
from django.urls import reverse
from django.utils.crypto import salted_hmac

from crm import outbound

MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 3
DEFAULT_TIMEOUT = 10.0  # seconds for the whole fetch, redirects included
# Says what we are and nothing about the reader or their browser.
USER_AGENT = "CRM-ImageProxy/1.0"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_SALT = "inbox.imageproxy"

# The raster formats mail uses, by their first bytes. Anything else (SVG, HTML, ICO, BMP, a
# "PNG" that is not one) is refused.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"ftypavif", 4, "image/avif"),
    (b"ftypavis", 4, "image/avif"),
)


class ImageProxyError(Exception):
    """An image not served. `refused`: the guard said no (the URL, its addresses); otherwise
    the remote side failed or sent something that is not a raster image."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.refused = refused


@dataclass(frozen=True)
class Image:
    content_type: str  # from the bytes, one of the raster types above
    body: bytes


# --- Signed URLs ---------------------------------------------------------------------------------


def signature(url: str, *, message_id: int) -> str:
    return salted_hmac(_SALT, f"{message_id}\n{url}", algorithm="sha256").hexdigest()


def signature_valid(url: str, *, message_id: int, given: str) -> bool:
    return hmac.compare_digest(signature(url, message_id=message_id), given)


def proxy_url(url: str, *, message_id: int) -> str:
    """Our URL for a remote image of a message whose reader allowed its images."""
    query = urlencode({"u": url, "m": message_id, "s": signature(url, message_id=message_id)})
    return f"{reverse('inbox_image_proxy')}?{query}"


# --- Raster types --------------------------------------------------------------------------------


def raster_type(data: bytes) -> str | None:
    """The raster image type the bytes are, by their signature; None for anything else."""
    for magic, offset, content_type in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def declared_image(content_type: str) -> bool:
    """Whether a Content-Type header says image, and not SVG (the bytes decide the rest)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("image/") and "svg" not in media_type


# --- The fetch -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    status: int
    location: str
    content_type: str
    body: bytes


def image_fetch(url: str) -> Image:
    """Fetch a remote image through the guard. Raises ImageProxyError."""
    timeout = float(getattr(settings, "INBOX_IMAGE_PROXY_TIMEOUT", DEFAULT_TIMEOUT))
    deadline = time.monotonic() + timeout
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        target = _checked(current)
        answer = _get(target, deadline)
        if answer.status in _REDIRECTS:
            if not answer.location:
                raise ImageProxyError(f"HTTP {answer.status} without a Location.")
            current = urljoin(current, answer.location)
            continue
        if answer.status != 200:
            raise ImageProxyError(f"The image server answered HTTP {answer.status}.")
        if not declared_image(answer.content_type):
            raise ImageProxyError("Not an image (or an SVG image).")
        found = raster_type(answer.body)
        if found is None:
            raise ImageProxyError("The bytes are not a PNG, JPEG, GIF, WebP or AVIF image.")
        return Image(content_type=found, body=answer.body)
    raise ImageProxyError("Too many redirects.")


def _checked(url: str) -> outbound.Target:
    allowed = {
        host.lower() for host in getattr(settings, "INBOX_IMAGE_PROXY_ALLOWED_PRIVATE_HOSTS", ())
    }
    try:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    except ValueError as exc:
        raise ImageProxyError("The URL is not valid.", refused=True) from exc
    try:
        # Explicitly False for every other host: the webhooks' switch
        # (CRM_OUTBOUND_ALLOW_PRIVATE) must not open the image proxy too.
        return outbound.check_url(url, allow_private=host in allowed)
    except outbound.OutboundError as exc:
        raise ImageProxyError(exc.message, refused=exc.permanent) from exc


def _get(target: outbound.Target, deadline: float) -> _Answer:
    """GET from the first of the target's checked addresses that connects."""
    failure = "No address to connect to."
    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        connection = _connection(target, str(address), remaining)
        try:
            try:
                connection.connect()
            except (OSError, ssl.SSLError) as exc:
                failure = f"Connecting failed ({exc.__class__.__name__})."
                continue
            return _exchange(connection, target, deadline)
        finally:
            connection.close()
    raise ImageProxyError(failure)


def _connection(
    target: outbound.Target, address: str, timeout: float
) -> http.client.HTTPConnection:
    if target.scheme == "https":
        return outbound.PinnedHTTPSConnection(
            address, target.port, server_hostname=target.host, timeout=timeout
        )
    return http.client.HTTPConnection(address, target.port, timeout=timeout)


def _exchange(
    connection: http.client.HTTPConnection, target: outbound.Target, deadline: float
) -> _Answer:
    headers = {
        # "Host" given makes http.client send ours instead of the address it connects to.
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": "image/avif,image/webp,image/png,image/jpeg,image/gif;q=0.9,*/*;q=0.1",
        "Accept-Encoding": "identity",
        "Connection": "close",
    }
    try:
        connection.request("GET", target.path, headers=headers)
        response = connection.getresponse()
        status = response.status
        location = response.getheader("location", "") or ""
        content_type = response.getheader("content-type", "") or ""
        if status != 200:
            return _Answer(status, location, content_type, b"")
        length = response.getheader("content-length", "")
        if length.isdigit() and int(length) > MAX_BYTES:
            raise ImageProxyError("The image is larger than the proxy serves.")
        body = _read_capped(connection, response, deadline)
    except TimeoutError as exc:
        raise ImageProxyError("The image server did not answer in time.") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ImageProxyError(f"The connection failed ({exc.__class__.__name__}).") from exc
    return _Answer(status, location, content_type, body)


def _read_capped(
    connection: http.client.HTTPConnection, response: http.client.HTTPResponse, deadline: float
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            # A server trickling bytes must not hold a web worker past the timeout.
            raise TimeoutError
        if connection.sock is not None:
            connection.sock.settimeout(remaining)
        chunk = response.read1(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BYTES:
            raise ImageProxyError("The image is larger than the proxy serves.")
        chunks.append(chunk)
