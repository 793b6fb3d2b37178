"""Secrets stored encrypted at rest: webhook signing secrets and Basic-auth passwords, later
mailbox passwords and OAuth tokens.

Fernet (AES-128-CBC with an HMAC-SHA256 tag) through `MultiFernet`, so keys can rotate:
`settings.CRM_ENCRYPTION_KEY` is a comma-separated list of Fernet keys; the first encrypts,
every one decrypts. Rotating is: put a new key first, run `reencrypt` over the stored values,
then drop the old key. With no key configured, one is derived from SECRET_KEY with HKDF, so a
development install works without set-up (and rotating SECRET_KEY then needs the derived key
listed; `derived_key()` prints it).

Nothing here logs or puts a secret or a key into an exception message.
"""

from __future__ import annotations

import base64
import binascii
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Fixed: changing it changes the derived key and makes every stored secret unreadable.
_HKDF_INFO = b"crm.encryption.fernet.v1"


class DecryptionError(Exception):
    """The value was not encrypted with any configured key, or was altered."""


def encrypt(plaintext: str) -> str:
    """The text encrypted with the current (first) key, as URL-safe ASCII."""
    return _fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The text of a value `encrypt` made with any configured key."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        # No detail: the token and the keys stay out of logs and tracebacks.
        raise DecryptionError("The value cannot be decrypted with the configured keys.") from exc


def reencrypt(token: str) -> str:
    """The same text encrypted with the current key (for rotation); raises DecryptionError."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError("The value cannot be decrypted with the configured keys.") from exc


def derived_key(secret_key: str) -> str:
    """The Fernet key derived from a Django SECRET_KEY."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode())).decode("ascii")


def _fernet() -> MultiFernet:
    # Settings are read per call (tests override them); the keys are built once per value.
    return _keyring(settings.CRM_ENCRYPTION_KEY, settings.SECRET_KEY)


@functools.lru_cache(maxsize=8)
def _keyring(configured: str, secret_key: str) -> MultiFernet:
    keys = [key.strip() for key in configured.split(",") if key.strip()]
    if not keys:
        if not secret_key:
            raise ImproperlyConfigured("Set CRM_ENCRYPTION_KEY or SECRET_KEY.")
        keys = [derived_key(secret_key)]
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, binascii.Error) as exc:
            # The position, never the value: this message reaches logs.
            raise ImproperlyConfigured(
                f"CRM_ENCRYPTION_KEY: key {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)."
            ) from exc
    return MultiFernet(fernets)
