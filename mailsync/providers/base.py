"""The provider interface: the few operations the sync engine needs from any mailbox.

A provider is a context manager around one connection (or HTTP session) to one account, found
through `mailsync.providers.PROVIDERS` by the account's `provider`. The engine calls:

- `list_folders()` → `RemoteFolder`s (name, role). Gmail: labels; Graph / EWS: mail folders.
- `folder_status(folder, cursor)` → `FolderStatus`: the folder's validity and what is new, changed
  and gone since `cursor` (cheap: ids and flags, no bodies). Raises `ProviderError(CURSOR_LOST)`
  when the cursor can no longer be used; the engine then relists and reconciles.
- `backfill_ids(folder, before, since)` → provider ids of older messages in the first-sync window,
  newest first, below a position (`before`), for the resumable newest-first first sync.
- `fetch(folder, ids)` → batches of `FetchedMessage`s (bounded in count and bytes, so memory stays
  flat): raw RFC 822 bytes, flags, arrival time. Never marks anything read (IMAP `BODY.PEEK[]`).

Two-way sync (A5, `mailsync.actions`) changes the mailbox through three more:

- `ensure_folder(role)` → the account's folder with that role (inbox, archive, trash, …); an
  archive or trash folder is created when the mailbox has none.
- `move(folder, ids, target)` → the ids moved into `target`, each mapped to its new provider id
  there when the provider says (None when it does not: the next sync of `target` finds it).
  Ids from before the folder was renumbered raise CURSOR_LOST (sync relists it first).
- `set_flags(folder, ids, add=…, remove=…)`: add or remove flags (`\\Seen` for read / unread).

They are idempotent as the executor needs them: moving an id that is no longer in `folder`, or
storing a flag a message already has, succeeds and changes nothing.

Errors leave a provider only as `ProviderError` with one of the five kinds (auth, rate limited,
transient, cursor lost, permanent), a plain message for the user and, when known, Retry-After.

How each provider maps onto it:

- **IMAP** (`imap.py`): a folder is a mailbox; provider id `"<uidvalidity>:<uid>"`; cursor
  `(validity=UIDVALIDITY, next_uid=UIDNEXT, modseq=HIGHESTMODSEQ)`. New: `UID FETCH next_uid:*`;
  changed and gone: CONDSTORE `CHANGEDSINCE modseq` with QRESYNC `VANISHED`, else a full
  `UID FETCH 1:* (FLAGS)` compared with what we hold (a complete listing, so absence is a delete).
  UIDVALIDITY changed: cursor lost.
- **Gmail** (next issue): `list_folders` = labels (INBOX, SENT, user labels); one account-wide
  pseudo folder carries the cursor `token = historyId`; `folder_status` pages
  `users.history.list(startHistoryId)` (messagesAdded / labelsAdded / labelsRemoved /
  messagesDeleted) into new / changed / gone, with each message's label ids as its folders; a
  404 on an expired historyId is CURSOR_LOST (then a full `messages.list` relist). Provider id
  = the Gmail message id; `fetch` = `messages.get(format=raw)` in batches; threads come with
  `threadId` (a "provider:" thread key). 429 / 403 rateLimitExceeded: RATE_LIMITED with
  Retry-After; 401 after a token refresh: AUTH. Two-way: a folder is a label, so `move` is
  `messages.batchModify` (removeLabelIds `folder`, addLabelIds `target`; archive removes INBOX
  and adds nothing, delete is `messages.trash`, restore `messages.untrash`) and the id stays
  the same (`moved[id] = id`); `set_flags` adds or removes the UNREAD label;
  `ensure_folder("archive")` is the pseudo folder "no INBOX label" and never creates one.
- **Microsoft Graph** (next issue): a folder is a mailFolder; `token` = the `@odata.deltaLink`
  of `messages/delta` (with `Prefer: IdType="ImmutableId"`, so provider ids survive moves);
  `@removed` entries are gone; 410 Gone / `syncStateNotFound` is CURSOR_LOST; `fetch` reads
  `/messages/{id}/$value` (MIME). 429 / 503 with Retry-After: RATE_LIMITED. Two-way: `move`
  is `POST /messages/{id}/move {destinationId}` (batched with `$batch`, 20 a request); with
  ImmutableId the id survives the move. `set_flags` is `PATCH /messages/{id} {isRead}`;
  `ensure_folder` uses the well-known names `inbox`, `archive`, `deleteditems`.
- **Exchange EWS** (next issue): a folder is a FolderId; `token` = the `SyncState` of
  `SyncFolderItems` (Create / Update / ReadFlagChange / Delete), paged by
  `IncludesLastItemInRange`; an invalid SyncState is CURSOR_LOST; `fetch` = GetItem with
  MimeContent; ErrorServerBusy with BackOffMilliseconds: RATE_LIMITED. Two-way: `move` is
  `MoveItem` to a DistinguishedFolderId (`inbox`, `archive`, `deleteditems`), whose answer
  carries the moved items' new ItemIds; `set_flags` is `UpdateItem` setting `IsRead`.
- **IMAP** two-way: see `imap.py` (UID MOVE, or COPY + STORE \\Deleted + EXPUNGE; COPYUID).

The outbox (`mailsync.outbox`, decision 0012) files sent mail and looks for it with two more:

- `append(folder, raw, flags)` → the stored copy's provider id when the provider says (IMAP
  APPENDUID), else None: our copy of a sent message in Sent, with \\Seen.
- `find_message_id(folder, message_id)` → provider ids of the folder's messages with that
  Message-ID (IMAP `UID SEARCH HEADER Message-ID`; Gmail `messages.list q=rfc822msgid:`,
  Graph `$filter=internetMessageId eq`): did a message that may have gone out reach Sent?

Drafts' copies in the Drafts folder (`mailsync.drafts`) use `append` and two more:

- `find_message_id_containing(folder, part)` → provider ids of the folder's messages whose
  Message-ID contains `part`: every copy of one draft, any version.
- `delete(folder, ids)`: remove those messages for good (IMAP STORE \\Deleted + UID EXPUNGE),
  not into the bin; ids no longer there are skipped.

Sending itself is a `Sender` (one connection to the account's outgoing server, `smtp.py` for
IMAP accounts; later the Gmail, Graph and EWS send calls), in two steps around the point of
no return, where the outbox commits "in flight":

- `begin(envelope, size)`: everything that cannot deliver anything yet (SMTP: connect, sign
  in, MAIL FROM, RCPT TO; an API: nothing); `abort()` drops a begun message (SMTP RSET).
- `hand_over(raw)` → the server's answer: the message is given (SMTP DATA; an API's send).

A `SendError` says which recipients the server refused, and whether the message may have been
delivered anyway (`maybe_sent`: the connection broke after the server was given the whole
message, before it answered). A plain `ProviderError` from `begin` concerns the connection
(every message of the account alike), not the message.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import TracebackType
from typing import Protocol, Self


class ErrorKind(StrEnum):
    AUTH = "auth"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    CURSOR_LOST = "cursor_lost"
    PERMANENT = "permanent"


class ProviderError(Exception):
    """A provider failure in one of the five kinds. `message` is plain words for the user
    (what went wrong and what to do), never a secret."""

    def __init__(self, kind: ErrorKind, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


_PORT_ADVICE = {
    "IMAP": "SSL/TLS is usually port 993, STARTTLS port 143",
    "SMTP": "SSL/TLS is usually port 465, STARTTLS port 587",
}


def network_error(exc: BaseException, *, host: str, service: str) -> ProviderError:
    """A connection-level failure (of an IMAP or SMTP server) in plain words."""
    if isinstance(exc, socket.gaierror):
        return ProviderError(
            ErrorKind.TRANSIENT,
            f"The mail server {host} was not found. Check the server name (the {service} "
            "host), or try again if your network is down.",
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ProviderError(
            ErrorKind.PERMANENT,
            f"The TLS certificate of {host} could not be verified ({exc.verify_message}). "
            "Check the server name; a self-signed certificate is not accepted.",
        )
    if isinstance(exc, ssl.SSLError):
        return ProviderError(
            ErrorKind.PERMANENT,
            f"A secure (TLS) connection to {host} could not be set up. Check the port and "
            f"the security setting ({_PORT_ADVICE.get(service, '')}).",
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return ProviderError(
            ErrorKind.TRANSIENT,
            f"The mail server {host} did not answer in time. Check the host and port; "
            "we will keep retrying.",
        )
    if isinstance(exc, ConnectionRefusedError):
        return ProviderError(
            ErrorKind.TRANSIENT,
            f"The mail server {host} refused the connection. Check the port; we will keep "
            "retrying.",
        )
    return ProviderError(
        ErrorKind.TRANSIENT,
        f"The connection to {host} was lost ({type(exc).__name__}). We will retry.",
    )


@dataclass(frozen=True, slots=True)
class RemoteFolder:
    name: str  # the provider's full path or id
    role: str  # inbox | sent | drafts | archive | trash | junk | all | other


@dataclass(frozen=True, slots=True)
class Cursor:
    validity: str = ""
    next_uid: int = 0
    modseq: int | None = None
    token: str = ""


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """A folder's changes since a cursor.

    `changed` maps provider ids we may hold to their current flags. `gone` lists ids deleted on
    the server: from a complete listing (`complete_listing`, every id still present is in
    `present`) or from the provider's own record of deletions (QRESYNC VANISHED, Gmail history)."""

    cursor: Cursor  # to store once everything up to it is stored
    total: int  # messages in the folder now
    new: Sequence[str]  # provider ids above the old cursor, newest first
    changed: dict[str, frozenset[str]] = field(default_factory=dict)
    gone: Sequence[str] = ()
    complete_listing: bool = False
    present: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    provider_id: str
    uid: int  # IMAP UID; 0 for providers without one
    raw: bytes
    flags: frozenset[str]
    received_at: datetime | None


class Provider(Protocol):
    """One open connection to one account (see the module docstring)."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def list_folders(self) -> list[RemoteFolder]: ...

    def folder_status(self, folder: str, cursor: Cursor) -> FolderStatus: ...

    def backfill_ids(
        self, folder: str, *, validity: str, before_uid: int, since: date
    ) -> list[str]: ...

    def fetch(self, folder: str, ids: Sequence[str]) -> Iterator[list[FetchedMessage]]: ...

    def ensure_folder(self, role: str) -> RemoteFolder: ...

    def move(self, folder: str, ids: Sequence[str], target: str) -> dict[str, str | None]: ...

    def set_flags(
        self,
        folder: str,
        ids: Sequence[str],
        *,
        add: frozenset[str] = frozenset(),
        remove: frozenset[str] = frozenset(),
    ) -> None: ...

    def append(self, folder: str, raw: bytes, flags: frozenset[str]) -> str | None: ...

    def find_message_id(self, folder: str, message_id: str) -> list[str]: ...

    def find_message_id_containing(self, folder: str, part: str) -> list[str]: ...

    def delete(self, folder: str, ids: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who a message goes from and to, as the transport carries it (SMTP MAIL FROM / RCPT
    TO): the account's address, and every recipient (to, cc and bcc) once, IDNA domains."""

    sender: str
    recipients: tuple[str, ...]


class SendError(ProviderError):
    """A send that did not go through. `maybe_sent`: the server may have the message all the
    same (the connection broke after its end was handed over, before the answer): never
    retried without the user. `refused`: recipient → the server's answer, for those it
    refused."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        maybe_sent: bool = False,
        refused: dict[str, str] | None = None,
        reply: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(kind, message, retry_after=retry_after)
        self.maybe_sent = maybe_sent
        self.refused = refused or {}
        self.reply = reply


class Sender(Protocol):
    """One open connection to one account's outgoing server (see the module docstring)."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def begin(self, envelope: Envelope, size: int) -> None: ...

    def hand_over(self, raw: bytes) -> str: ...

    def abort(self) -> None: ...


@dataclass(frozen=True)
class ConnectionSettings:
    """What a provider needs to connect; built by mailsync from an account (password
    decrypted only here, never logged: `repr=False`)."""

    email_address: str
    host: str
    port: int
    security: str  # ssl | starttls | none
    username: str
    password: str = field(repr=False)
    timeout: float = 30.0
