"""Raw RFC 822 bytes of stored messages, through a Django storage backend (`STORAGES["mailraw"]`:
local disk by default, any S3-compatible backend in production), so any parse can be redone.

Names are content addressed (`<company>/<sha256[:2]>/<sha256>.eml`): a retried batch rewrites
nothing, and a file written by a batch that then rolled back is simply reused by its retry."""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages


def _storage() -> Storage:
    return storages["mailraw"]


def raw_name(company_id: int, raw: bytes) -> str:
    digest = hashlib.sha256(raw).hexdigest()
    return f"{company_id}/{digest[:2]}/{digest}.eml"


def raw_save(company_id: int, raw: bytes) -> str:
    """Store the bytes (once) and return their name."""
    name = raw_name(company_id, raw)
    storage = _storage()
    if not storage.exists(name):
        saved = storage.save(name, ContentFile(raw))
        if saved != name:  # a concurrent writer won the name: same content, keep one copy
            storage.delete(saved)
    return name


def raw_read(name: str) -> bytes:
    with _storage().open(name, "rb") as handle:
        data: bytes = handle.read()
    return data


def raw_delete(name: str) -> None:
    _storage().delete(name)
