"""The one outbound HTTP client (webhooks today; any later call to a user-given URL).

Users choose the URLs, so every request passes an SSRF guard:

- only `http` and `https`, no credentials in the URL;
- the host is resolved once, and every address it resolves to must be public: private,
  loopback, link-local, multicast, reserved, unspecified and shared (CGNAT) addresses are
  refused, IPv4-mapped / 6to4 / Teredo IPv6 judged by the IPv4 address inside. An operator may
  allow them with `settings.CRM_OUTBOUND_ALLOW_PRIVATE` (the tests' loopback receiver does);
- the connection goes to the address that was checked, with the Host header and TLS SNI /
  certificate check kept on the name, so a DNS answer that changes between check and connect
  (rebinding) cannot switch the target;
- redirects are never followed (a 3xx is a permanent failure), the response body is read up to
  `MAX_RESPONSE_BYTES`, and connect, each read and the whole exchange are bounded by
  `settings.CRM_OUTBOUND_TIMEOUT`.

Every failure is one `OutboundError` with `permanent` (retrying cannot help: the guard refused,
a 4xx other than 408 / 429, a redirect) or not (5xx, 408, 429 with `retry_after`, timeouts,
connection and DNS errors). The standard library's http.client does the HTTP: no dependency.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import ipaddress
import math
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "CRM-Webhooks/1.0"
_SCHEMES = {"http": 80, "https": 443}
_CHUNK = 8192

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundError(Exception):
    """A request that did not end in a 2xx. `message` is safe to store and show: it never
    holds the URL's query, headers or credentials."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Target:
    """A URL that passed the guard, with the addresses its host resolved to."""

    scheme: str
    host: str  # as in the URL, lower-cased, without brackets
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[IPAddress, ...] = field(default=())

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _SCHEMES[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes  # at most MAX_RESPONSE_BYTES


# --- The guard ---------------------------------------------------------------------------------


def is_public_address(address: IPAddress) -> bool:
    """Whether an address is one the public internet routes to us as itself."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 reaches that IPv4 host: judge the IPv4 address.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            return is_public_address(embedded)
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        # Catches what the flags above miss (100.64.0.0/10, documentation ranges, ...).
        or not address.is_global
    )


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises ValueError on a port out of range or not a number)
    except ValueError as exc:
        raise OutboundError("The URL is not valid.", permanent=True) from exc
    return parts


def check_url(url: str, *, allow_private: bool | None = None) -> Target:
    """The URL's target if it may be called: scheme, host and every resolved address checked.

    Raises OutboundError: permanent for a refused URL or address, transient when the name
    does not resolve (DNS may answer next time)."""
    if allow_private is None:
        allow_private = bool(settings.CRM_OUTBOUND_ALLOW_PRIVATE)
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise OutboundError("Only http and https URLs can be called.", permanent=True)
    if parts.username is not None or parts.password is not None:
        raise OutboundError("Credentials in the URL are not allowed.", permanent=True)
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise OutboundError("The URL has no host.", permanent=True)
    port = parts.port or _SCHEMES[scheme]
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    addresses = _resolve(host, port)
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise OutboundError(
                    "The host resolves to a private or reserved address.", permanent=True
                )
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=addresses)


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError("The host name does not resolve.", permanent=False) from exc
    addresses: list[IPAddress] = []
    for info in infos:
        # A scoped IPv6 address ("fe80::1%eth0") carries its zone after a percent sign.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundError("The host name does not resolve.", permanent=False)
    return tuple(addresses)


# --- The request -------------------------------------------------------------------------------


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a checked address, with SNI and the certificate check on the URL's host name
    (also used by the image proxy, inbox.imageproxy, which checks its targets the same way)."""

    def __init__(self, address: str, port: int, *, server_hostname: str, timeout: float) -> None:
        self._tls_context = ssl.create_default_context()
        super().__init__(address, port, timeout=timeout, context=self._tls_context)
        self._server_hostname = server_hostname

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._tls_context.wrap_socket(self.sock, server_hostname=self._server_hostname)


def post_json(
    *,
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> Response:
    """POST a JSON body (already serialized: callers sign these exact bytes) to a checked URL.

    Returns the 2xx response; raises OutboundError otherwise."""
    target = check_url(url)
    timeout = float(settings.CRM_OUTBOUND_TIMEOUT)
    request_headers = {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Connection": "close",
        **(headers or {}),
    }
    if basic_auth is not None:
        credentials = f"{basic_auth[0]}:{basic_auth[1]}".encode()
        request_headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
    last_error: OutboundError | None = None
    # Every address passed the guard; try each, as a browser would, until one connects.
    for address in target.addresses:
        try:
            return _exchange(target, address, body, request_headers, timeout)
        except _ConnectFailed as exc:
            last_error = OutboundError(exc.message, permanent=False)
    assert last_error is not None  # noqa: S101  (check_url never returns no address)
    raise last_error


class _ConnectFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _exchange(
    target: Target,
    address: IPAddress,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> Response:
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = PinnedHTTPSConnection(
            str(address), target.port, server_hostname=target.host, timeout=timeout
        )
    else:
        connection = http.client.HTTPConnection(str(address), target.port, timeout=timeout)
    deadline = time.monotonic() + timeout
    try:
        try:
            connection.connect()
        except ssl.SSLError as exc:
            raise OutboundError(
                f"TLS handshake failed: {exc.__class__.__name__}.", permanent=False
            ) from exc
        except TimeoutError as exc:
            raise _ConnectFailed("Connecting timed out.") from exc
        except OSError as exc:
            raise _ConnectFailed(f"Connecting failed: {exc.strerror or 'error'}.") from exc
        try:
            # "Host" among the headers makes http.client send ours instead of the address.
            connection.request("POST", target.path, body=body, headers=dict(headers))
            response = connection.getresponse()
            content = _read_capped(response, deadline)
        except TimeoutError as exc:
            raise OutboundError("The receiver did not answer in time.", permanent=False) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise OutboundError(
                f"The connection failed: {exc.__class__.__name__}.", permanent=False
            ) from exc
    finally:
        connection.close()
    response_headers = {name.lower(): value for name, value in response.getheaders()}
    result = Response(status=response.status, headers=response_headers, body=content)
    raise_for_status(result)
    return result


def _read_capped(response: http.client.HTTPResponse, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES:
        if time.monotonic() > deadline:
            # A receiver trickling bytes must not hold a worker beyond the timeout.
            raise TimeoutError
        chunk = response.read(min(_CHUNK, MAX_RESPONSE_BYTES - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def raise_for_status(response: Response) -> None:
    """Nothing for a 2xx; the classified OutboundError for anything else."""
    status = response.status
    if 200 <= status < 300:
        return
    message = f"The receiver answered HTTP {status}."
    if 300 <= status < 400:
        raise OutboundError(
            f"The receiver answered HTTP {status}; redirects are not followed.",
            permanent=True,
            status=status,
        )
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise OutboundError(message, permanent=False, status=status, retry_after=retry_after)
    if status == 408 or status >= 500:
        raise OutboundError(message, permanent=False, status=status)
    raise OutboundError(message, permanent=True, status=status)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return float(max(0, math.ceil(seconds)))
