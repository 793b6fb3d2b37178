"""Provider adapters, found by an account's `provider` through `PROVIDERS` (an explicit dict,
no import scanning). Each implements `mailsync.providers.base.Provider`."""

from __future__ import annotations

from collections.abc import Callable

from mailsync.providers.base import ConnectionSettings, Provider
from mailsync.providers.imap import ImapProvider

PROVIDERS: dict[str, Callable[[ConnectionSettings], Provider]] = {
    "imap": ImapProvider,
}
