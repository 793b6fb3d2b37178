"""The IMAP provider, over the standard library's `imaplib`.

`imaplib` rather than a richer client: the first sync's bulk `UID FETCH` is the hot loop, and
imaplib hands back the literal bytes without parsing them (about five times the messages per
second of imapclient's response parser on loopback; see docs/benchmarks.md). The few responses
we need beyond that (LIST, SEARCH, FETCH metadata, VANISHED) are parsed here.

Raw payload shapes, as imaplib returns them:

- `LIST "" "*"` →
  `[b'(\\HasNoChildren \\Sent) "/" "Sent"', (b'(\\HasNoChildren) "/" {9}', b'Caf&AOk-s'), …]`
- `UID FETCH 7:9 (UID FLAGS INTERNALDATE BODY.PEEK[])` →
  `[(b'1 (UID 7 FLAGS (\\Seen) INTERNALDATE "02-Mar-2026 10:00:00 +0000" BODY[] {1234}',
  b'<raw>'), b')', …]`
  (some servers send FLAGS after the literal: `b' FLAGS (\\Seen))'`)
- with QRESYNC enabled, `UID FETCH 1:99 (FLAGS) (CHANGEDSINCE 40 VANISHED)` → FETCH items like
  `b'3 (UID 12 MODSEQ (41) FLAGS (\\Flagged))'` and an untagged `* VANISHED (EARLIER) 3:5,9`.

Provider ids are `"<uidvalidity>:<uid>"`. Nothing here changes the mailbox while reading:
folders are opened with EXAMINE and bodies fetched with `BODY.PEEK[]`.

Two-way sync (A5) changes it only through `move`, `set_flags` and `ensure_folder`, in folders
opened with SELECT:

- `move`: `UID MOVE 7:9 "Archive"` (RFC 6851) when the server advertises MOVE; else
  `UID COPY 7:9 "Archive"`, `UID STORE 7:9 +FLAGS.SILENT (\\Deleted)` and, with UIDPLUS,
  `UID EXPUNGE 7:9`. Without UIDPLUS a plain EXPUNGE would also remove messages the user had
  marked \\Deleted in another client, so it is sent only when no other message of the folder
  carries \\Deleted; otherwise ours stay flagged until the mailbox's next expunge (our copy of
  them is gone already, and a complete listing never counts an id we do not hold).
  The new UIDs come in the COPYUID response code (UIDPLUS, RFC 4315), untagged for MOVE:
  `* OK [COPYUID 1700000000 7:9 31:33] Moved UIDs.`, which imaplib keeps as
  `untagged_responses["COPYUID"] == [b"1700000000 7:9 31:33"]` (source and target UIDs in
  corresponding order). Servers that do not advertise UIDPLUS are not trusted with it: the
  moved messages are then found by the next sync of the target folder.
- `set_flags`: `UID STORE 7:9 +FLAGS.SILENT (\\Seen)` (or `-FLAGS.SILENT`).
- `ensure_folder`: the folder LIST shows with the role (SPECIAL-USE flag, else a known name);
  for archive, trash and drafts, when there is none, `CREATE "Archive" (USE (\\Archive))` (the
  USE part only with CREATE-SPECIAL-USE), under the personal namespace's prefix (`NAMESPACE` →
  `(("INBOX." "."))` gives "INBOX.Archive"), then SUBSCRIBE so mail clients show it.

The outbox (decision 0012) files sent mail and looks for it:

- `append`: `APPEND "Sent" (\\Seen) {n}` → `OK [APPENDUID 1700000000 12] Append completed.`
  (the new message's provider id; only trusted from a server that advertises UIDPLUS).
- `find_message_id`: `UID SEARCH HEADER Message-ID "<id>"` in a folder opened with EXAMINE
  → `* SEARCH 12`.

Drafts' server copies (`mailsync.drafts`) are found and removed with:

- `find_message_id_containing`: `UID SEARCH HEADER Message-ID "<part>"` (IMAP header search
  matches a substring): every copy of one draft, whichever its version (one marked \\Deleted
  by a delete that broke off too, to finish it).
- `delete`: `UID STORE 7:9 +FLAGS.SILENT (\\Deleted)` then `UID EXPUNGE 7:9` (UIDPLUS), else
  EXPUNGE under the same rule as `move`: removed for good, not moved to the bin.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import re
import ssl
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self

from mailsync.providers.base import (
    ConnectionSettings,
    Cursor,
    ErrorKind,
    FetchedMessage,
    FolderStatus,
    ProviderError,
    RemoteFolder,
    network_error,
)

# A FETCH asks for at most this many messages or (roughly, by RFC822.SIZE) bytes at once, so a
# batch's memory stays bounded however large the mailbox is.
FETCH_MAX_MESSAGES = 500
FETCH_MAX_BYTES = 32 * 1024 * 1024

_SPECIAL_USE = {
    "\\sent": "sent",
    "\\drafts": "drafts",
    "\\trash": "trash",
    "\\junk": "junk",
    "\\archive": "archive",
    "\\all": "all",
}
# Folder names of servers without SPECIAL-USE (lower-cased last path segment).
_ROLE_NAMES = {
    "sent": "sent",
    "sent items": "sent",
    "sent messages": "sent",
    "sent mail": "sent",
    "gesendet": "sent",
    "gönderilmiş": "sent",
    "wysłane": "sent",
    "verzonden": "sent",
    "saadetud": "sent",
    "drafts": "drafts",
    "draft": "drafts",
    "trash": "trash",
    "deleted items": "trash",
    "deleted messages": "trash",
    "bin": "trash",
    "junk": "junk",
    "spam": "junk",
    "junk e-mail": "junk",
    "archive": "archive",
    "archives": "archive",
    "all mail": "all",
}

_LIST_LINE = re.compile(
    rb'^\((?P<flags>[^)]*)\) (?P<delimiter>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$'
)
_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_FETCH_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_COPYUID = re.compile(rb"^\s*(\d+)\s+([\d:,]+)\s+([\d:,]+)")
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
_NAMESPACE_PERSONAL = re.compile(rb'^\(\("((?:[^"\\]|\\.)*)"')

# The folders two-way sync (and the drafts' server copies) create when a mailbox has none: name
# and special-use flag.
_CREATED_FOLDERS = {
    "archive": ("Archive", "\\Archive"),
    "trash": ("Trash", "\\Trash"),
    "drafts": ("Drafts", "\\Drafts"),
}
# Flags that describe one copy of a message in one folder, not the message: not carried over.
_LOCAL_FLAGS = frozenset({"\\deleted", "\\recent"})
# A move or STORE names at most this many UIDs per command (sets stay short, answers quick).
CHANGE_MAX_MESSAGES = 500


def _login_error(text: str) -> ProviderError:
    lowered = text.lower()
    if "imap" in lowered and any(
        word in lowered for word in ("disabled", "not enabled", "enable", "not allowed")
    ):
        return ProviderError(
            ErrorKind.AUTH,
            "The provider refused IMAP access for this account: IMAP is turned off there. "
            "Turn IMAP on in the mailbox's web settings (some providers also need an app "
            "password), then reconnect.",
        )
    if "web login" in lowered or "app password" in lowered or "application-specific" in lowered:
        return ProviderError(
            ErrorKind.AUTH,
            "The provider wants an app password for IMAP. Create one in the mailbox's "
            "security settings and use it here instead of your normal password.",
        )
    return ProviderError(
        ErrorKind.AUTH,
        "The server refused the username or password. Check them (many providers need an "
        "app password for IMAP) and reconnect.",
    )


def folder_role(name: str, flags: Iterable[str]) -> str:
    for flag in flags:
        role = _SPECIAL_USE.get(flag.lower())
        if role:
            return role
    if name.upper() == "INBOX":
        return "inbox"
    last = re.split(r"[/.]", name)[-1].strip().lower()
    return _ROLE_NAMES.get(last, "other")


# --- Mailbox names: IMAP's modified UTF-7 (RFC 3501, 5.1.3) -------------------------------------


def decode_mailbox_name(encoded: str) -> str:
    def expand(match: re.Match[str]) -> str:
        chunk = match.group(1)
        if not chunk:
            return "&"
        padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
        return base64.b64decode(padded).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", expand, encoded)


def encode_mailbox_name(name: str) -> str:
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            out.append("&" + data.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _quote(name: str) -> str:
    encoded = encode_mailbox_name(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    return decode_mailbox_name(text)


def uid_set(uids: Iterable[int]) -> str:
    """`[1, 2, 3, 7, 9, 10]` → `"1:3,7,9:10"`: short FETCH and STORE commands."""
    ordered = sorted(set(uids))
    ranges: list[str] = []
    start = previous = None
    for uid in ordered:
        if start is None:
            start = previous = uid
        elif previous is not None and uid == previous + 1:
            previous = uid
        else:
            ranges.append(f"{start}" if start == previous else f"{start}:{previous}")
            start = previous = uid
    if start is not None:
        ranges.append(f"{start}" if start == previous else f"{start}:{previous}")
    return ",".join(ranges)


def _parse_uid_ranges(text: str) -> list[int]:
    uids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if ":" in part:
            low, high = (int(x) for x in part.split(":", 1))
            uids.extend(range(min(low, high), max(low, high) + 1))
        else:
            uids.append(int(part))
    return uids


def parse_copyuid(data: bytes) -> tuple[str, dict[int, int]]:
    """`b"1700000000 7:9 31:33"` → `("1700000000", {7: 31, 8: 32, 9: 33})`: the target's
    UIDVALIDITY and each source UID's new UID. Unequal sets (a broken answer): no mapping."""
    match = _COPYUID.match(data)
    if match is None:
        return "", {}
    sources = _parse_uid_ranges(match.group(2).decode("ascii"))
    targets = _parse_uid_ranges(match.group(3).decode("ascii"))
    if len(sources) != len(targets):
        return match.group(1).decode("ascii"), {}
    return match.group(1).decode("ascii"), dict(zip(sources, targets, strict=True))


def provider_id(validity: str, uid: int) -> str:
    return f"{validity}:{uid}"


def uid_of(provider_id: str) -> int:
    return int(provider_id.rpartition(":")[2])


class ImapProvider:
    """One IMAP connection to one account (mailsync.providers.base.Provider)."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._conn: imaplib.IMAP4 | None = None
        self._selected: str | None = None
        self._validity = ""
        self.capabilities: frozenset[str] = frozenset()

    # --- Connection ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        s = self.settings
        try:
            if s.security == "ssl":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    s.host, s.port, ssl_context=ssl.create_default_context(), timeout=s.timeout
                )
            else:
                conn = imaplib.IMAP4(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    if "STARTTLS" not in conn.capabilities:
                        conn.shutdown()
                        raise ProviderError(
                            ErrorKind.PERMANENT,
                            f"{s.host} does not offer STARTTLS on port {s.port}. Choose SSL/TLS "
                            "(usually port 993) instead.",
                        )
                    conn.starttls(ssl.create_default_context())
        except ProviderError:
            raise
        except (OSError, imaplib.IMAP4.error) as exc:
            raise network_error(exc, host=s.host, service="IMAP") from None
        try:
            conn.login(s.username, s.password)
        except imaplib.IMAP4.abort as exc:
            raise network_error(exc, host=s.host, service="IMAP") from None
        except imaplib.IMAP4.error as exc:
            conn.shutdown()
            raise _login_error(str(exc)) from None
        except OSError as exc:
            raise network_error(exc, host=s.host, service="IMAP") from None
        except UnicodeEncodeError:
            conn.shutdown()
            raise ProviderError(
                ErrorKind.AUTH,
                "The username or password has characters this server cannot take over IMAP.",
            ) from None
        self._conn = conn
        self.capabilities = frozenset(
            cap.decode("ascii", "replace").upper()
            for cap in self._command(lambda c: c.capability())[0].split()
        )
        if "QRESYNC" in self.capabilities:
            self._command(lambda c: c.enable("QRESYNC"))
        elif "CONDSTORE" in self.capabilities:
            self._command(lambda c: c.enable("CONDSTORE"))

    def close(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self._conn.logout()
        self._conn = None
        self._selected = None

    @property
    def condstore(self) -> bool:
        return "CONDSTORE" in self.capabilities or "QRESYNC" in self.capabilities

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.capabilities

    def _connection(self) -> imaplib.IMAP4:
        if self._conn is None:
            raise ProviderError(ErrorKind.TRANSIENT, "The connection was lost. We will retry.")
        return self._conn

    def _command(self, call: Any) -> list[Any]:
        """Run one imaplib call; map its failures to ProviderError kinds."""
        if self._conn is None:
            raise ProviderError(ErrorKind.TRANSIENT, "Not connected.")
        try:
            typ, data = call(self._conn)
        except imaplib.IMAP4.readonly:  # (a kind of abort: caught first)
            raise ProviderError(
                ErrorKind.PERMANENT,
                "The server lets us read this folder but not change it (read-only). Check the "
                "folder's permissions on the server.",
            ) from None
        except imaplib.IMAP4.abort as exc:
            self._conn = None
            raise ProviderError(
                ErrorKind.TRANSIENT,
                f"The connection to {self.settings.host} broke off ({exc}). We will retry.",
            ) from None
        except imaplib.IMAP4.error as exc:
            raise ProviderError(
                ErrorKind.PERMANENT, f"The server refused a command: {exc}"
            ) from None
        except OSError as exc:
            self._conn = None
            raise network_error(exc, host=self.settings.host, service="IMAP") from None
        if typ != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise ProviderError(ErrorKind.PERMANENT, f"The server refused a command: {detail}")
        return list(data)

    # --- Folders ------------------------------------------------------------------------------

    def list_folders(self) -> list[RemoteFolder]:
        data = self._command(lambda c: c.list('""', "*"))
        folders: list[RemoteFolder] = []
        for item in data:
            if item is None:
                continue
            if isinstance(item, tuple):  # the name came as a literal
                line, literal = item
                match = _LIST_LINE.match(line.rsplit(b"{", 1)[0].rstrip() + b' ""')
                name = decode_mailbox_name(literal.decode("utf-8", "replace"))
            else:
                match = _LIST_LINE.match(item)
                name = _unquote(match.group("name")) if match else ""
            if match is None or not name:
                continue
            flags = match.group("flags").decode("ascii", "replace").split()
            if any(flag.lower() in ("\\noselect", "\\nonexistent") for flag in flags):
                continue
            folders.append(RemoteFolder(name=name, role=folder_role(name, flags)))
        return folders

    def _select(self, folder: str, *, writable: bool = False) -> dict[str, int | str]:
        """EXAMINE the folder (read-only), or SELECT it to change it, and return its status."""
        self._command(lambda c: c.select(_quote(folder), readonly=not writable))
        self._selected = folder
        conn = self._connection()

        def number(code: str) -> int | None:
            values = conn.untagged_responses.get(code) or []
            for value in values:
                if isinstance(value, bytes) and value.split()[:1]:
                    try:
                        return int(value.split()[0])
                    except ValueError:
                        continue
            return None

        validity = number("UIDVALIDITY")
        if validity is None:
            raise ProviderError(
                ErrorKind.PERMANENT, f"The server gave no UIDVALIDITY for {folder}."
            )
        self._validity = str(validity)
        return {
            "validity": str(validity),
            "exists": number("EXISTS") or 0,
            "uidnext": number("UIDNEXT") or 0,
            "modseq": number("HIGHESTMODSEQ") or 0,
        }

    def folder_status(self, folder: str, cursor: Cursor) -> FolderStatus:
        status = self._select(folder)
        validity = str(status["validity"])
        if cursor.validity and cursor.validity != validity:
            raise ProviderError(
                ErrorKind.CURSOR_LOST,
                f"The server renumbered {folder} (UIDVALIDITY changed); resyncing it.",
            )
        exists = int(status["exists"])
        uidnext = int(status["uidnext"]) or self._uidnext_by_search(exists)
        modseq = int(status["modseq"]) or None
        new_cursor = Cursor(validity=validity, next_uid=uidnext, modseq=modseq)
        if not cursor.validity:
            # First look at the folder: the first sync (backfill) takes it from here.
            return FolderStatus(cursor=new_cursor, total=exists, new=())
        new: list[str] = []
        if uidnext > cursor.next_uid and exists:
            found = self._search(f"UID {cursor.next_uid}:*")
            new = [
                provider_id(validity, uid)
                for uid in sorted(found, reverse=True)
                if uid >= cursor.next_uid
            ]
        known_high = cursor.next_uid - 1
        if known_high < 1:
            return FolderStatus(cursor=new_cursor, total=exists, new=new)
        if self.condstore and cursor.modseq is not None:
            if modseq is not None and modseq == cursor.modseq:
                return FolderStatus(cursor=new_cursor, total=exists, new=new)
            modifier = f"(CHANGEDSINCE {cursor.modseq}{' VANISHED' if self.qresync else ''})"
            changed, vanished = self._fetch_flags(f"1:{known_high}", modifier)
            if self.qresync:
                gone = [provider_id(validity, uid) for uid in vanished if uid <= known_high]
                return FolderStatus(
                    cursor=new_cursor, total=exists, new=new, changed=changed, gone=gone
                )
            present = frozenset(
                provider_id(validity, uid)
                for uid in self._search(f"UID 1:{known_high}")
                if uid <= known_high
            )
            return FolderStatus(
                cursor=new_cursor,
                total=exists,
                new=new,
                changed=changed,
                complete_listing=True,
                present=present,
            )
        # No CONDSTORE: the whole folder's flags, a complete listing.
        changed, _ = self._fetch_flags(f"1:{known_high}", "") if exists else ({}, [])
        changed = {pid: flags for pid, flags in changed.items() if uid_of(pid) <= known_high}
        return FolderStatus(
            cursor=new_cursor,
            total=exists,
            new=new,
            changed=changed,
            complete_listing=True,
            present=frozenset(changed),
        )

    def _uidnext_by_search(self, exists: int) -> int:
        """Servers that omit UIDNEXT: one more than the highest UID."""
        if not exists:
            return 1
        uids = self._search("ALL")
        return (max(uids) + 1) if uids else 1

    def _search(self, criteria: str) -> list[int]:
        data = self._command(lambda c: c.uid("SEARCH", criteria))
        uids: list[int] = []
        for line in data:
            if isinstance(line, bytes):
                uids.extend(int(token) for token in line.split() if token.isdigit())
        return uids

    def _fetch_flags(self, uids: str, modifier: str) -> tuple[dict[str, frozenset[str]], list[int]]:
        args = f"(UID FLAGS) {modifier}".strip()
        data = self._command(lambda c: c.uid("FETCH", uids, args))
        changed: dict[str, frozenset[str]] = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid_match, flags_match = _FETCH_UID.search(line), _FETCH_FLAGS.search(line)
            if uid_match and flags_match:
                changed[provider_id(self._validity, int(uid_match.group(1)))] = frozenset(
                    flags_match.group(1).decode("ascii", "replace").split()
                )
        vanished: list[int] = []
        for value in self._connection().untagged_responses.pop("VANISHED", []):
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else ""
            vanished.extend(_parse_uid_ranges(text.replace("(EARLIER)", "").strip()))
        return changed, vanished

    # --- First sync and fetching --------------------------------------------------------------

    def backfill_ids(
        self, folder: str, *, validity: str, before_uid: int, since: date
    ) -> list[str]:
        if before_uid <= 1:
            return []
        status = self._select(folder)
        if str(status["validity"]) != validity:
            raise ProviderError(
                ErrorKind.CURSOR_LOST,
                f"The server renumbered {folder} (UIDVALIDITY changed); resyncing it.",
            )
        if not status["exists"]:
            return []
        since_text = f"{since.day:02d}-{since.strftime('%b')}-{since.year}"
        uids = self._search(f"UID 1:{before_uid - 1} SINCE {since_text}")
        return [
            provider_id(validity, uid)
            for uid in sorted(set(uids), reverse=True)
            if uid < before_uid
        ]

    def fetch(self, folder: str, ids: Sequence[str]) -> Iterator[list[FetchedMessage]]:
        """The messages in batches of at most FETCH_MAX_MESSAGES and about FETCH_MAX_BYTES
        (a batch of one when a single message is larger), in the order of `ids`."""
        if not ids:
            return
        if self._selected != folder:
            self._select(folder)
        validity = self._validity
        uids = [uid_of(pid) for pid in ids if pid.rpartition(":")[0] == validity]
        for chunk in self._chunks(uids):
            data = self._command(
                lambda c, chunk=chunk: c.uid(
                    "FETCH", uid_set(chunk), "(UID FLAGS INTERNALDATE BODY.PEEK[])"
                )
            )
            by_uid = {message.uid: message for message in self._parse_fetch(data, validity)}
            yield [by_uid[uid] for uid in chunk if uid in by_uid]

    def _chunks(self, uids: list[int]) -> Iterator[list[int]]:
        """Split by count, and by size as the server reports it (RFC822.SIZE, one cheap
        round trip per FETCH_MAX_MESSAGES)."""
        for start in range(0, len(uids), FETCH_MAX_MESSAGES):
            group = uids[start : start + FETCH_MAX_MESSAGES]
            data = self._command(
                lambda c, group=group: c.uid("FETCH", uid_set(group), "(UID RFC822.SIZE)")
            )
            sizes: dict[int, int] = {}
            for item in data:
                line = item[0] if isinstance(item, tuple) else item
                if isinstance(line, bytes):
                    uid_match, size_match = _FETCH_UID.search(line), _FETCH_SIZE.search(line)
                    if uid_match and size_match:
                        sizes[int(uid_match.group(1))] = int(size_match.group(1))
            chunk: list[int] = []
            chunk_bytes = 0
            for uid in group:
                size = sizes.get(uid, 0)
                if chunk and chunk_bytes + size > FETCH_MAX_BYTES:
                    yield chunk
                    chunk, chunk_bytes = [], 0
                chunk.append(uid)
                chunk_bytes += size
            if chunk:
                yield chunk

    @staticmethod
    def _parse_fetch(data: list[Any], validity: str) -> list[FetchedMessage]:
        messages: list[FetchedMessage] = []
        index = 0
        while index < len(data):
            item = data[index]
            index += 1
            if not isinstance(item, tuple):
                continue
            head, raw = item
            # Metadata may follow the literal: b' FLAGS (\\Seen))'.
            tail = data[index] if index < len(data) and isinstance(data[index], bytes) else b""
            meta = head + b" " + tail
            uid_match = _FETCH_UID.search(meta)
            if uid_match is None or not isinstance(raw, bytes):
                continue
            flags_match = _FETCH_FLAGS.search(meta)
            date_match = _FETCH_INTERNALDATE.search(meta)
            received_at: datetime | None = None
            if date_match:
                try:
                    received_at = parsedate_to_datetime(
                        date_match.group(1).decode("ascii").replace("-", " ", 2)
                    )
                except (TypeError, ValueError):
                    received_at = None
            uid = int(uid_match.group(1))
            messages.append(
                FetchedMessage(
                    provider_id=provider_id(validity, uid),
                    uid=uid,
                    raw=raw,
                    flags=frozenset(
                        flags_match.group(1).decode("ascii", "replace").split()
                        if flags_match
                        else ()
                    ),
                    received_at=received_at,
                )
            )
        return messages

    # --- Two-way sync: changing the mailbox (A5) ----------------------------------------------

    def ensure_folder(self, role: str) -> RemoteFolder:
        """The folder with this role; an archive, trash or drafts folder is created when there
        is none (see the module docstring). Other roles must exist: PERMANENT otherwise."""
        if role == "inbox":
            return RemoteFolder(name="INBOX", role="inbox")
        found = self._folder_with_role(role)
        if found is not None:
            return found
        if role not in _CREATED_FOLDERS:
            raise ProviderError(ErrorKind.PERMANENT, f"The mailbox has no {role} folder.")
        base, flag = _CREATED_FOLDERS[role]
        name = self._personal_prefix() + base
        use = f" (USE ({flag}))" if "CREATE-SPECIAL-USE" in self.capabilities else ""
        try:
            self._command(lambda c: c.create(_quote(name) + use))
        except ProviderError as error:
            # Created meanwhile (another client, another worker): use it.
            found = self._folder_with_role(role)
            if error.kind != ErrorKind.PERMANENT or found is None:
                raise
            return found
        # Not subscribed, most mail clients would not show the folder at all.
        with contextlib.suppress(ProviderError):
            self._command(lambda c: c.subscribe(_quote(name)))
        return RemoteFolder(name=name, role=role)

    def _folder_with_role(self, role: str) -> RemoteFolder | None:
        matches = [folder for folder in self.list_folders() if folder.role == role]
        # The shortest name: "Archive" before "Archive/2019".
        return min(matches, key=lambda f: (len(f.name), f.name)) if matches else None

    def _personal_prefix(self) -> str:
        """Where the user's own folders live ("" on most servers, "INBOX." on some)."""
        if "NAMESPACE" not in self.capabilities:
            return ""
        data = self._command(lambda c: c.namespace())
        line = data[0] if data and isinstance(data[0], bytes) else b""
        match = _NAMESPACE_PERSONAL.match(line)
        return _unquote(b'"' + match.group(1) + b'"') if match else ""

    def _writable(self, folder: str, ids: Sequence[str]) -> list[int]:
        """SELECT the folder to change it; the UIDs of `ids`, which must be of its current
        UIDVALIDITY (ids of an older one: the folder was renumbered, CURSOR_LOST)."""
        status = self._select(folder, writable=True)
        validity = str(status["validity"])
        if any(pid.rpartition(":")[0] != validity for pid in ids):
            raise ProviderError(
                ErrorKind.CURSOR_LOST,
                f"The server renumbered {folder} (UIDVALIDITY changed); resyncing it first.",
            )
        return sorted({uid_of(pid) for pid in ids})

    def move(self, folder: str, ids: Sequence[str], target: str) -> dict[str, str | None]:
        """Move the messages to `target`; returns each id's new provider id there, when the
        server says (UIDPLUS), else None. Ids no longer in the folder are skipped by the server
        (a retried move is harmless)."""
        if not ids:
            return {}
        uids = self._writable(folder, ids)
        validity = self._validity
        moved: dict[str, str | None] = {provider_id(validity, uid): None for uid in uids}
        for start in range(0, len(uids), CHANGE_MAX_MESSAGES):
            chunk = uids[start : start + CHANGE_MAX_MESSAGES]
            self._connection().untagged_responses.pop("COPYUID", None)
            if "MOVE" in self.capabilities:
                self._command(lambda c, chunk=chunk: c.uid("MOVE", uid_set(chunk), _quote(target)))
                copied = self._copyuid()
            else:
                self._command(lambda c, chunk=chunk: c.uid("COPY", uid_set(chunk), _quote(target)))
                copied = self._copyuid()
                self._store(chunk, "+FLAGS.SILENT", frozenset({"\\Deleted"}))
                self._expunge(chunk)
            target_validity, mapping = copied
            for source, new in mapping.items():
                key = provider_id(validity, source)
                if key in moved:
                    moved[key] = provider_id(target_validity, new)
        return moved

    def _copyuid(self) -> tuple[str, dict[int, int]]:
        """The last command's COPYUID (only from a server that advertises UIDPLUS)."""
        answers = self._connection().untagged_responses.pop("COPYUID", None) or []
        if "UIDPLUS" not in self.capabilities:
            return "", {}
        validity, mapping = "", {}
        for answer in answers:
            if isinstance(answer, bytes):
                validity, part = parse_copyuid(answer)
                mapping.update(part)
        return validity, mapping

    def _expunge(self, uids: list[int]) -> None:
        """Remove the copied originals, and only them (see the module docstring)."""
        if "UIDPLUS" in self.capabilities:
            self._command(lambda c: c.uid("EXPUNGE", uid_set(uids)))
            return
        others = set(self._search("DELETED")) - set(uids)
        if not others:
            self._command(lambda c: c.expunge())

    def _store(self, uids: list[int], item: str, flags: frozenset[str]) -> None:
        self._command(
            lambda c: c.uid("STORE", uid_set(uids), item, "(" + " ".join(sorted(flags)) + ")")
        )

    def set_flags(
        self,
        folder: str,
        ids: Sequence[str],
        *,
        add: frozenset[str] = frozenset(),
        remove: frozenset[str] = frozenset(),
    ) -> None:
        """Add and remove flags (`.SILENT`: the server need not echo them back)."""
        if not ids or not (add or remove):
            return
        uids = self._writable(folder, ids)
        for start in range(0, len(uids), CHANGE_MAX_MESSAGES):
            chunk = uids[start : start + CHANGE_MAX_MESSAGES]
            if add:
                self._store(chunk, "+FLAGS.SILENT", add)
            if remove:
                self._store(chunk, "-FLAGS.SILENT", remove)

    # --- The outbox: filing sent mail, and looking for it (decision 0012) ----------------------

    def append(self, folder: str, raw: bytes, flags: frozenset[str]) -> str | None:
        """Store a message in the folder with these flags (`APPEND "Sent" (\\Seen) {n}`);
        its provider id there when the server says (UIDPLUS: `OK [APPENDUID 1700000000 12]
        Append completed.`), else None (the next sync of the folder finds it)."""
        flag_list = "(" + " ".join(sorted(flags)) + ")" if flags else None
        data = self._command(lambda c: c.append(_quote(folder), flag_list, None, raw))
        if "UIDPLUS" not in self.capabilities:
            return None
        for item in data:
            match = _APPENDUID.search(item) if isinstance(item, bytes) else None
            if match:
                return provider_id(match.group(1).decode("ascii"), int(match.group(2)))
        return None

    def find_message_id(self, folder: str, message_id: str) -> list[str]:
        """Provider ids of the folder's messages whose Message-ID header holds `message_id`
        (`UID SEARCH HEADER Message-ID "<id>"`; read-only)."""
        token = message_id.strip().strip("<>")
        if not token or not token.isascii() or any(c in token for c in '"\\\r\n'):
            return []
        self._select(folder)
        validity = self._validity
        uids = self._search(f'HEADER Message-ID "<{token}>"')
        return [provider_id(validity, uid) for uid in sorted(set(uids))]

    # --- Drafts' server copies ------------------------------------------------------------------

    def find_message_id_containing(self, folder: str, part: str) -> list[str]:
        """Provider ids of the folder's messages whose Message-ID header contains `part`
        (`UID SEARCH HEADER Message-ID "<part>"`, a substring match; read-only), in UID
        order."""
        part = part.strip()
        if not part or not part.isascii() or any(c in part for c in '"\\\r\n'):
            return []
        self._select(folder)
        validity = self._validity
        uids = self._search(f'HEADER Message-ID "{part}"')
        return [provider_id(validity, uid) for uid in sorted(set(uids))]

    def delete(self, folder: str, ids: Sequence[str]) -> None:
        """Remove the messages for good (not into the bin): `UID STORE +FLAGS.SILENT
        (\\Deleted)`, then `UID EXPUNGE` of exactly them (UIDPLUS), else EXPUNGE when no other
        message of the folder carries \\Deleted (ours otherwise stay flagged until the
        mailbox's next expunge). Ids no longer there are skipped by the server; ids of an
        older UIDVALIDITY raise CURSOR_LOST."""
        if not ids:
            return
        uids = self._writable(folder, ids)
        for start in range(0, len(uids), CHANGE_MAX_MESSAGES):
            chunk = uids[start : start + CHANGE_MAX_MESSAGES]
            self._store(chunk, "+FLAGS.SILENT", frozenset({"\\Deleted"}))
            self._expunge(chunk)


def carried_flags(flags: Iterable[str]) -> list[str]:
    """The flags a moved copy keeps (\\Deleted and \\Recent belong to the old copy)."""
    return sorted(flag for flag in flags if flag.lower() not in _LOCAL_FLAGS)


def connection_test(settings: ConnectionSettings) -> list[RemoteFolder]:
    """Connect, sign in and list the folders: what the "Add account" form checks before it
    saves. Raises ProviderError with the reason in plain words."""
    with ImapProvider(settings) as provider:
        return provider.list_folders()
