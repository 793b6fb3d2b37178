"""Email addresses as the CRM compares them (pure: no Django, no database).

Linking mail to people looks persons up by address at high volume, so every stored address
keeps a normalized form: surrounding whitespace and angle brackets gone, the domain in IDNA
(punycode) and the whole address lower-cased. Mail providers treat the local part
case-insensitively in practice, and people type it in any case."""

from __future__ import annotations

import functools
import re

_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u0080-\uffff]+$")


class InvalidEmailAddress(ValueError):
    pass


@functools.lru_cache(maxsize=65536)
def normalize_email(value: str) -> str:
    """The comparable form of an address; InvalidEmailAddress when it is not one.

    Cached: mail linking meets the same correspondents' addresses over and over."""
    address = value.strip().strip("<>").strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or " " in address:
        raise InvalidEmailAddress(value)
    if (
        not _LOCAL_PART.match(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise InvalidEmailAddress(value)
    domain = domain.rstrip(".")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidEmailAddress(value) from exc
    labels = ascii_domain.split(".")
    if len(labels) < 2 or any(not label or len(label) > 63 for label in labels):
        raise InvalidEmailAddress(value)
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise InvalidEmailAddress(value)
    return f"{local}@{ascii_domain}".lower()


def email_domain(normalized: str) -> str:
    return normalized.rpartition("@")[2]
