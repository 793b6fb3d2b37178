"""A throwaway Dovecot IMAP server for tests, and a TCP proxy that cuts connections on demand.

The server listens on 127.0.0.1 on a free port, plaintext (no TLS), with everything it owns under
one temp dir: config, `base_dir` (sockets), `state_dir`, log and mail. It runs as root (the only
user here) but its mail processes run as nobody/nogroup (65534), because Dovecot refuses uid 0
for mail access; each user's home is created and chowned by `add_user`.

Choices that tests can rely on:

- Mail is `maildir:<root>/mail/%u/Maildir:LAYOUT=fs` with the hierarchy separator "/": folders
  are plain directories ("Projects/2024" is `Maildir/Projects/2024/`), and names may contain "."
  (Maildir++ would reserve it as its separator).
- Special-use folders exist for every user (created on first LIST or access, subscribed):
  Sent (\\Sent), Drafts (\\Drafts), Trash (\\Trash), Junk (\\Junk), Archive (\\Archive).
- `condstore=True` advertises Dovecot's default capabilities (CONDSTORE and QRESYNC included);
  `condstore=False` advertises the same list minus those two, through `imap_capability`. Dovecot
  still accepts `ENABLE CONDSTORE` when it is not advertised: only the advertisement changes, so
  a client must honour what CAPABILITY says.
- `capabilities=` advertises exactly the list given instead (e.g. `MINIMAL_CAPABILITIES`: no
  CONDSTORE, QRESYNC, MOVE or UIDPLUS), and `special_use=` replaces the special-use folders
  (a server without an Archive folder).
- Login failures answer within ~0.5 s: `auth_failure_delay = 0` and the anvil auth penalty is
  switched off (otherwise every later failure from 127.0.0.1 waits seconds).
- `mailbox_idle_check_interval = 1 secs`, so IDLE notices changes quickly even without inotify.
- `mail_fsync = never`: tests do not need durability, and the disk here is slow.
"""

from __future__ import annotations

import atexit
import contextlib
import imaplib
import os
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import cast

from mailsync.providers.imap import encode_mailbox_name

MAIL_UID = 65534  # nobody
MAIL_GID = 65534  # nogroup

# What Dovecot 2.3.19 advertises after login by default (a CAPABILITY command against the
# `condstore=True` flavour). `test_dovecot_harness` checks that the running Dovecot still says
# exactly this, so an upgrade that changes the list fails loudly instead of silently drifting.
_DEFAULT_CAPABILITY_LINE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW "
    "STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE"
)
DEFAULT_CAPABILITIES: tuple[str, ...] = tuple(_DEFAULT_CAPABILITY_LINE.split())
PLAIN_CAPABILITIES: tuple[str, ...] = tuple(
    cap for cap in DEFAULT_CAPABILITIES if cap not in {"CONDSTORE", "QRESYNC"}
)
# An older server's list: no CONDSTORE / QRESYNC, no MOVE (RFC 6851), no UIDPLUS (RFC 4315).
MINIMAL_CAPABILITIES: tuple[str, ...] = tuple(
    cap for cap in PLAIN_CAPABILITIES if cap not in {"MOVE", "UIDPLUS"}
)

# Folder name -> special-use flag, configured for every user.
SPECIAL_USE: dict[str, str] = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@-]*\Z")
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


def dovecot_binary() -> str | None:
    """The `dovecot` binary (Debian package dovecot-imapd); it lives in /usr/sbin, which a
    non-login shell's PATH may lack."""
    found = shutil.which("dovecot")
    if found is None and Path("/usr/sbin/dovecot").exists():
        found = "/usr/sbin/dovecot"
    return found


def is_available() -> bool:
    """Whether the `dovecot` binary is installed."""
    return dovecot_binary() is not None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quote_mailbox(name: str) -> str:
    """A folder name as an IMAP quoted string (imaplib sends mailbox arguments verbatim)."""
    encoded = encode_mailbox_name(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Dovecot:
    """One Dovecot instance. Call `start()`, then `add_user()`; `stop()` when done."""

    def __init__(
        self,
        *,
        condstore: bool = True,
        root: Path | None = None,
        capabilities: tuple[str, ...] | None = None,
        special_use: dict[str, str] | None = None,
    ) -> None:
        self.condstore = condstore
        self.capabilities = capabilities
        self.special_use = SPECIAL_USE if special_use is None else special_use
        self.host = "127.0.0.1"
        self.port = free_port()
        self.root = Path(root or tempfile.mkdtemp(prefix="dovecot-"))
        # Mail processes (uid 65534) must traverse the root to reach their Maildir.
        self.root.chmod(0o755)
        self.mail_root = self.root / "mail"
        self.mail_root.mkdir(exist_ok=True)
        self.mail_root.chmod(0o755)
        self.config_path = self.root / "dovecot.conf"
        self.users_dir = self.root / "users"
        self.users_dir.mkdir(exist_ok=True)
        self.log_path = self.root / "dovecot.log"
        self._passwords: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self.config_path.write_text(self._config())
        atexit.register(self.close)  # if a test run dies without its teardown

    def __repr__(self) -> str:
        return f"<Dovecot {self.host}:{self.port} condstore={self.condstore} root={self.root}>"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        # A stale socket left by an earlier run would be connected to, and refuse, slowly.
        with contextlib.suppress(FileNotFoundError):
            (self.root / "run" / "anvil-auth-penalty").unlink()
        with self.log_path.open("ab") as log:
            # -F: stay in the foreground, so the process is ours to wait for and kill.
            self._process = subprocess.Popen(  # noqa: S603 -- fixed argv, our own config
                [dovecot_binary() or "dovecot", "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group, for stop() to signal
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited ({self._process.returncode}):\n{self.log_tail()}"
                )
            # Wait for the greeting, not just the listening socket: then auth is up as well.
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"dovecot did not answer on {self.host}:{self.port}:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # The whole group at once: the master alone waits a second for its children to exit.
        # Clients get "* BYE Server shutting down."
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def close(self) -> None:
        """Stop, and delete the temp dir with all mail."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    # -- users --------------------------------------------------------------------------------

    def add_user(self, username: str, password: str) -> None:
        """Add a user, or set the password of an existing one; works while running.

        Each user has a passwd-file of their own (`users/<name>`): Dovecot checks a passwd-file
        for changes at most once a second, so a shared file would miss a user added right after
        another login. A new file is read on first use; a changed password needs the next second,
        which this waits for."""
        if not _USERNAME.match(username):
            raise ValueError(f"unsupported username for the test server: {username!r}")
        if any(char in password for char in ":\r\n\0"):
            raise ValueError("the passwd-file cannot hold ':' or line breaks in a password")
        home = self.mail_root / username
        home.mkdir(exist_ok=True)
        os.chown(home, MAIL_UID, MAIL_GID)
        previous = self._passwords.get(username)
        if previous == password:
            return
        self._passwords[username] = password
        path = self.users_dir / username
        path.write_text(
            f"{username}:{{PLAIN}}{password}:{MAIL_UID}:{MAIL_GID}::{home}::\n", encoding="utf-8"
        )
        path.chmod(0o644)
        if previous is not None:
            # Dovecot compares mtime (whole seconds) and size: make the mtime differ, and return
            # only once a new second has begun, when Dovecot will look at the file again.
            written = int(time.time())
            mtime = written + 1
            os.utime(path, (mtime, mtime))
            time.sleep(max(0.0, written + 1 - time.time()) + 0.01)

    def remove_user_mail(self, username: str) -> None:
        """Delete the user's Maildir (all folders and messages); the account stays."""
        shutil.rmtree(self.mail_root / username / "Maildir", ignore_errors=True)

    # -- IMAP helpers -------------------------------------------------------------------------

    def imap(self, username: str, password: str) -> imaplib.IMAP4:
        """A logged-in stdlib client; the caller logs out."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(username, password)
        except BaseException:
            client.shutdown()
            raise
        return client

    @contextlib.contextmanager
    def session(self, username: str, password: str) -> Iterator[imaplib.IMAP4]:
        client = self.imap(username, password)
        try:
            yield client
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def append(
        self,
        username: str,
        password: str,
        folder: str,
        raw: bytes,
        *,
        flags: str = "",
        date: datetime | None = None,
    ) -> int:
        """Store a message; returns its UID (from the APPENDUID response code)."""
        with self.session(username, password) as client:
            # typeshed says append() returns str; it returns (typ, data) like every command.
            typ, data = cast(
                "tuple[str, list[bytes]]",
                client.append(
                    quote_mailbox(folder),
                    f"({flags})" if flags else "",
                    imaplib.Time2Internaldate(date) if date else "",
                    raw,
                ),
            )
            _check(typ, data, "APPEND")
            match = _APPENDUID.search(data[0] if isinstance(data[0], bytes) else b"")
            if match is None:
                raise RuntimeError(f"no APPENDUID in {data!r}")
            return int(match.group(2))

    def create_folder(self, username: str, password: str, folder: str) -> None:
        with self.session(username, password) as client:
            _check(*client.create(quote_mailbox(folder)), "CREATE")

    def delete_folder(self, username: str, password: str, folder: str) -> None:
        with self.session(username, password) as client:
            _check(*client.delete(quote_mailbox(folder)), "DELETE")

    def rename_folder(self, username: str, password: str, old: str, new: str) -> None:
        with self.session(username, password) as client:
            _check(*client.rename(quote_mailbox(old), quote_mailbox(new)), "RENAME")

    def recreate_folder(self, username: str, password: str, folder: str) -> None:
        """Delete and create the folder again: it comes back empty with a new UIDVALIDITY.
        Not for INBOX, which IMAP cannot delete."""
        if folder.upper() == "INBOX":
            raise ValueError("INBOX cannot be deleted")
        with self.session(username, password) as client:
            _check(*client.delete(quote_mailbox(folder)), "DELETE")
            _check(*client.create(quote_mailbox(folder)), "CREATE")

    def uidvalidity(self, username: str, password: str, folder: str) -> int:
        with self.session(username, password) as client:
            typ, data = client.status(quote_mailbox(folder), "(UIDVALIDITY)")
            _check(typ, data, "STATUS")
            match = re.search(rb"UIDVALIDITY (\d+)", data[0] if isinstance(data[0], bytes) else b"")
            if match is None:
                raise RuntimeError(f"no UIDVALIDITY in {data!r}")
            return int(match.group(1))

    def set_flags(
        self, username: str, password: str, folder: str, uid: int, flags: str, *, add: bool = True
    ) -> None:
        """Add (or with `add=False` remove) flags, e.g. `"\\\\Seen \\\\Flagged"`, on one UID."""
        with self.session(username, password) as client:
            _check(*client.select(quote_mailbox(folder)), "SELECT")
            item = "+FLAGS" if add else "-FLAGS"
            _check(*client.uid("STORE", str(uid), item, f"({flags})"), "UID STORE")

    def expunge_uid(self, username: str, password: str, folder: str, uid: int) -> None:
        """Expunge exactly one message (UID EXPUNGE, UIDPLUS), leaving other \\Deleted ones."""
        with self.session(username, password) as client:
            _check(*client.select(quote_mailbox(folder)), "SELECT")
            _check(*client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)"), "UID STORE")
            _check(*client.uid("EXPUNGE", str(uid)), "UID EXPUNGE")

    # -- configuration -------------------------------------------------------------------------

    def _config(self) -> str:
        root = self.root
        mailboxes = "".join(
            f"  mailbox {name} {{\n    special_use = {flag}\n    auto = subscribe\n  }}\n"
            for name, flag in self.special_use.items()
        )
        advertised = self.capabilities or (None if self.condstore else PLAIN_CAPABILITIES)
        capability = f"  imap_capability = {' '.join(advertised)}\n" if advertised else ""
        return f"""# Written by tests/mailsync/dovecot.py; see its docstring.
base_dir = {root}/run
state_dir = {root}/state
instance_name = dovecot-test-{self.port}
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
log_path = {root}/dovecot.log
mail_location = maildir:{self.mail_root}/%u/Maildir:LAYOUT=fs
mail_plugins =
mail_fsync = never
first_valid_uid = {MAIL_UID}
mailbox_idle_check_interval = 1 secs

passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.users_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = {self.users_dir}/%u
}}

namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}}}

protocol imap {{
  mail_max_userip_connections = 100
{capability}}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  # One long-lived login process for all connections: no fork per connection.
  service_count = 0
  process_min_avail = 1
}}
service imap {{
  process_limit = 500
}}
service anvil {{
  # No auth penalty: without this socket, failed logins from 127.0.0.1 are not slowed down.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def _check(typ: str, data: object, what: str) -> None:
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{what} failed: {typ} {data!r}")


class _Relay:
    """One proxied connection, pumped by its own thread."""

    def __init__(self, proxy: CutProxy, client: socket.socket, budget: int | None) -> None:
        self.proxy = proxy
        self.client = client
        self.budget = budget  # server bytes still allowed before the cut; None: no cut
        self.killed = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="cut-proxy-relay")

    def _run(self) -> None:
        try:
            upstream = socket.create_connection(self.proxy.target, timeout=5)
        except OSError:
            _abort(self.client)
            self.proxy._forget(self)
            return
        selector = selectors.DefaultSelector()
        selector.register(self.client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, self.client)
        try:
            self._pump(selector, upstream)
        finally:
            selector.close()
            _abort(self.client)
            upstream.close()
            self.proxy._forget(self)

    def _pump(self, selector: selectors.BaseSelector, upstream: socket.socket) -> None:
        while not self.killed:
            for key, _ in selector.select(timeout=0.02):
                source = key.fileobj
                assert isinstance(source, socket.socket)
                destination: socket.socket = key.data
                try:
                    data = source.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if source is upstream:
                    with self.proxy._lock:
                        budget = self.budget
                        if budget is not None:
                            self.budget = budget - len(data)
                    if budget is not None and len(data) >= budget:
                        with contextlib.suppress(OSError):
                            destination.sendall(data[:budget])
                        return  # cut: the finally clause resets the client connection
                try:
                    destination.sendall(data)
                except OSError:
                    return


def _abort(sock: socket.socket) -> None:
    """Close with a TCP reset instead of an orderly FIN: what a dropped connection looks like."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class CutProxy:
    """A TCP proxy on 127.0.0.1 in front of a server, that breaks connections on demand."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.host = "127.0.0.1"
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._relays: set[_Relay] = set()
        self._pending_cut: int | None = None
        self._refusing = False
        self._closed = False
        self._accepter = threading.Thread(target=self._accept, daemon=True, name="cut-proxy")
        self._accepter.start()

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._relays)

    def cut_after_server_bytes(self, n: int) -> None:
        """Reset every current connection once the server has sent it `n` more bytes (the
        client receives exactly those `n`): a cut in the middle of a FETCH. With no connection
        open, the next new connection gets the cut instead."""
        with self._lock:
            if not self._relays:
                self._pending_cut = n
            for relay in self._relays:
                relay.budget = n

    def kill_all(self) -> None:
        """Reset every current connection; returns once they are gone."""
        with self._lock:
            relays = list(self._relays)
            for relay in relays:
                relay.killed = True
        for relay in relays:
            relay.thread.join(timeout=2)

    def refuse(self, refusing: bool = True) -> None:
        """While refusing, a new connection is reset as soon as it is accepted (the server is
        gone). Current connections stay up: call `kill_all()` as well to drop them."""
        self._refusing = refusing

    def close(self) -> None:
        self._closed = True
        self._accepter.join(timeout=2)
        self._listener.close()
        self.kill_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if self._refusing:
                _abort(client)
                continue
            with self._lock:  # started under the lock, so kill_all() can always join it
                relay = _Relay(self, client, self._pending_cut)
                self._pending_cut = None
                self._relays.add(relay)
                relay.thread.start()

    def _forget(self, relay: _Relay) -> None:
        with self._lock:
            self._relays.discard(relay)
