"""`make run` end to end: `manage.py serve` on a fresh database migrates, loads the demo
company once, serves /healthz with a worker and beat beside it, stops every process on Ctrl-C,
and keeps its data for the next start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _login_url(database: str) -> str:
    params = connection.settings_dict
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return (
        f"postgresql://{params['USER']}{password}@{params['HOST'] or '127.0.0.1'}:"
        f"{params['PORT'] or 5432}/{database}"
    )


@pytest.fixture
def fresh_database() -> Iterator[str]:
    name = f"crm_serve_test_{os.getpid()}"
    with psycopg.connect(_login_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _login_url(name)
    finally:
        with psycopg.connect(_login_url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _serve(database_url: str, port: int, var_dir: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CRM_VAR_DIR": str(var_dir),
        "CRM_CACHE_PREFIX": f"serve-test-{port}",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )


def _wait_healthy(port: int, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError("serve did not become healthy in time")


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _ctrl_c(process: subprocess.Popen[str]) -> str:
    children = _children(process.pid)
    assert len(children) >= 4, "web, worker, beat and the mail listener should run under serve"
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    alive = {pid for pid in children if Path(f"/proc/{pid}").exists()}
    assert not alive, f"processes left behind: {alive}"
    return output


@pytest.mark.services
def test_serve_starts_everything_loads_the_demo_once_and_stops_cleanly(
    fresh_database: str, tmp_path: Path
) -> None:
    port = _free_port()
    first = _serve(fresh_database, port, tmp_path)
    try:
        _wait_healthy(port, first)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as page:
            assert page.status == 200
    finally:
        output = _ctrl_c(first) if first.poll() is None else ""
    assert "Sign in as demo@example.com / demo-sales-inbox" in output
    assert f"Serving on http://127.0.0.1:{port}" in output

    with psycopg.connect(fresh_database) as conn:
        admins = conn.execute("SELECT email FROM crm_user ORDER BY email").fetchall()
    assert ("demo@example.com",) in admins

    second = _serve(fresh_database, port, tmp_path)
    try:
        _wait_healthy(port, second)
    finally:
        output = _ctrl_c(second)
    assert "Loaded the demo company" not in output
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("SELECT count(*) FROM crm_company").fetchone() == (1,)
