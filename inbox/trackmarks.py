"""The marks tracking puts into a message we send (E1, E2), and how they are checked. Pure: no
Django import; the caller passes the key and the base URL.

- The open pixel: `<base>/t/o/<token>.gif`.
- A tracked link: `<base>/t/c/<token>/<n>/<sig>`, where `n` is the link's index in the
  message's stored links (`MailOutbound.tracked_links`) and `sig` an HMAC over token and
  number: the endpoint redirects only to the stored address, and only for a number the
  message was sent with.

The key is derived from the site's secret (`tracking_key`), so it needs no setting of its own
and changes with it."""

from __future__ import annotations

import hashlib
import hmac
import re

# 64 bits of HMAC-SHA256: enough against guessing (a wrong one costs a request each), short in
# the links the recipient sees.
SIGNATURE_HEX = 16
TOKEN = re.compile(r"[0-9a-f]{32}")


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
