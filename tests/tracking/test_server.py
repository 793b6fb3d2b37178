"""The production tracking server (`python -m tracking.server`), started for real in its own
process on a free loopback port, with real Redis and the test database: HTTP/1.1 keep-alive
and pipelining (answers in request order), HTTP/1.0, broken and oversized requests, a flood
in which every answered hit is in the stream exactly once, clicks, a killed worker replaced, a
graceful stop, and Redis down (the hits spooled in PostgreSQL)."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import pytest
import yaml
from django.conf import settings as django_settings
from redis import Redis

from tests.conftest import service_missing
from tests.tracking import endpoints
from tests.tracking.endpoints import (
    LINKS_A,
    Sent,
    click_path,
    closed_port,
    database_url,
    entries,
    spooled_rows,
)
from tracking.hits import NOT_FOUND_HTML, PIXEL_GIF

# The fixtures of tests/tracking/endpoints.py, by name.
tracked_cast = endpoints.tracked_cast
sent_a = endpoints.sent_a
sent_b = endpoints.sent_b

pytestmark = pytest.mark.services
REPO = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, process: subprocess.Popen[str], port: int, log: IO[str], stream: str):
        self.process = process
        self.port = port
        self.log = log
        self.stream = stream

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def workers(self) -> set[int]:
        return _children(self.process.pid)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode


def start_server(*, workers: int = 2, redis_url: str | None = None) -> Server:
    stream = f"test:tracking:server:{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url or django_settings.REDIS_URL,
        "SECRET_KEY": django_settings.SECRET_KEY,
        "CRM_TRACKING_STREAM": stream,
        "PYTHONUNBUFFERED": "1",
    }
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - kept for the server's life
    process = subprocess.Popen(  # noqa: S603 - our own command
        [
            sys.executable,
            "-m",
            "tracking.server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--workers",
            str(workers),
            "--graceful-timeout",
            "5",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        log.seek(0)
        raise AssertionError(f"the server did not start: {line!r} {log.read()}")
    port = int(line.split()[3].rsplit(":", 1)[1])
    server = Server(process, port, log, stream)
    _wait_answering(server)
    return server


def _wait_answering(server: Server) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        assert server.process.poll() is None, server.output()
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The fields after the command's closing parenthesis: state, ppid, ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[Server]:
    started = start_server(workers=2)
    yield started
    assert started.stop() == 0, started.output()
    Redis.from_url(django_settings.REDIS_URL).delete(started.stream)


@pytest.fixture
def redis_client() -> Redis[bytes]:
    return Redis.from_url(django_settings.REDIS_URL)


def token() -> str:
    return uuid.uuid4().hex


def of_token(client: Redis[bytes], stream: str, wanted: str) -> list[dict[str, str]]:
    return [entry for entry in entries(client, stream) if entry["t"] == wanted]


class RawClient:
    """HTTP over one socket, written by hand: pipelining and broken requests included."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        status_line = self.file.readline()
        assert status_line, "the connection closed"
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head else int(headers.get("content-length", "0"))
        return status, headers, self.file.read(length)

    def closed(self) -> bool:
        return self.file.read(1) == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def get(path: str, *, extra: str = "", version: str = "1.1", method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/{version}\r\nHost: t.example\r\n{extra}\r\n".encode()


# --- HTTP -------------------------------------------------------------------------------------


def test_keep_alive_answers_many_requests_on_one_connection(
    server: Server, redis_client: Redis[bytes]
) -> None:
    mark = token()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    sockets = set()
    for _ in range(5):
        connection.request("GET", f"/t/o/{mark}.gif", headers={"User-Agent": "Outlook/16.0"})
        response = connection.getresponse()
        assert response.status == 200
        assert response.read() == PIXEL_GIF
        assert response.getheader("Cache-Control") == (
            "no-store, no-cache, must-revalidate, private, max-age=0"
        )
        assert response.getheader("Pragma") == "no-cache"
        assert response.getheader("Referrer-Policy") == "no-referrer"
        assert response.getheader("Date")
        assert response.getheader("Connection") is None  # HTTP/1.1 keeps it open
        sockets.add(id(connection.sock))
    assert len(sockets) == 1
    connection.close()
    found = of_token(redis_client, server.stream, mark)
    assert len(found) == 5
    assert {(entry["k"], entry["n"], entry["ip"], entry["ua"]) for entry in found} == {
        ("o", "", "127.0.0.1", "Outlook/16.0")
    }


def test_pipelined_requests_are_answered_in_their_order(
    server: Server, redis_client: Redis[bytes], sent_a: Sent
) -> None:
    mark = token()
    client = RawClient(server.port)
    client.send(
        get(f"/t/o/{mark}.gif")
        + get("/t/c/not/a/link")
        + get(f"/t/o/{mark}.gif", method="HEAD")
        + get(click_path(sent_a.token, 1, django_settings.SECRET_KEY))
        + get("/healthz")
        + get(f"/t/o/{mark}.gif")
    )
    pixel = client.response()
    assert (pixel[0], pixel[2]) == (200, PIXEL_GIF)
    missing = client.response()
    assert (missing[0], missing[2]) == (404, NOT_FOUND_HTML)
    head = client.response(head=True)
    assert (head[0], head[1]["content-length"], head[2]) == (200, "43", b"")
    click = client.response()
    assert click[0] == 302
    assert click[1]["location"] == LINKS_A[1]
    assert click[1]["cache-control"] == "no-store"
    assert click[1]["referrer-policy"] == "no-referrer"
    assert client.response()[2] == b"ok\n"
    assert client.response()[2] == PIXEL_GIF
    client.close()
    assert len(of_token(redis_client, server.stream, mark)) == 2  # HEAD records nothing
    [clicked] = of_token(redis_client, server.stream, sent_a.token)
    assert (clicked["k"], clicked["n"]) == ("c", "1")


def test_clicks_redirect_only_to_stored_links_and_refusals_look_alike(
    server: Server, redis_client: Redis[bytes], sent_a: Sent, sent_b: Sent
) -> None:
    secret = django_settings.SECRET_KEY
    signature_a0 = click_path(sent_a.token, 0, secret).rsplit("/", 1)[1]
    client = RawClient(server.port)
    refused = [
        f"/t/c/{sent_b.token}/0/{signature_a0}",  # B's token, A's signature
        click_path(sent_a.token, 2, secret),  # out of range
        click_path(uuid.uuid4().hex, 0, secret),  # unknown
        f"/t/c/{sent_a.token}/0/{'0' * 16}",  # tampered
        f"/t/c/{sent_a.token}/0/{signature_a0}?to=https://evil.example/",  # query ignored...
    ]
    answers = []
    for path in refused:
        client.send(get(path))
        answers.append(client.response())
    *refusals, with_query = answers
    for status, headers, body in refusals:
        assert (status, body) == (404, NOT_FOUND_HTML)
        assert "location" not in headers
    assert with_query[1]["location"] == LINKS_A[0]  # ...the stored link, never the request's
    client.close()
    assert of_token(redis_client, server.stream, sent_b.token) == []
    assert len(of_token(redis_client, server.stream, sent_a.token)) == 1


def test_http_10_without_keep_alive_is_answered_then_closed(server: Server) -> None:
    client = RawClient(server.port)
    client.send(get(f"/t/o/{token()}.gif", version="1.0"))
    status, headers, body = client.response()
    assert (status, body) == (200, PIXEL_GIF)
    assert headers["connection"] == "close"
    assert client.closed()
    client.close()
    # HTTP/1.0 asking for keep-alive keeps it.
    client = RawClient(server.port)
    for _ in range(2):
        client.send(get(f"/t/o/{token()}.gif", version="1.0", extra="Connection: keep-alive\r\n"))
        status, headers, _body = client.response()
        assert (status, headers["connection"]) == (200, "keep-alive")
    client.close()


def test_a_client_that_half_closes_still_gets_its_answers(
    server: Server, redis_client: Redis[bytes]
) -> None:
    mark = token()
    client = RawClient(server.port)
    client.send(get(f"/t/o/{mark}.gif") * 3)
    client.sock.shutdown(socket.SHUT_WR)  # as `printf ... | nc` does
    for _ in range(3):
        assert client.response()[2] == PIXEL_GIF
    assert client.closed()
    client.close()
    assert len(of_token(redis_client, server.stream, mark)) == 3


def test_a_broken_request_gets_400_and_the_connection_closes(server: Server) -> None:
    client = RawClient(server.port)
    client.send(b"GARBAGE\x00\x01 nonsense\r\n\r\n")
    assert client.response()[0] == 400
    assert client.closed()
    client.close()


def test_an_oversized_request_gets_431_and_the_connection_closes(server: Server) -> None:
    client = RawClient(server.port)
    client.send(get(f"/t/o/{token()}.gif", extra=f"X-Big: {'a' * 40_000}\r\n"))
    assert client.response()[0] == 431
    assert client.closed()
    client.close()
    client = RawClient(server.port)
    client.send(get("/t/o/" + "a" * 10_000))
    assert client.response()[0] == 431
    client.close()


def test_a_flood_of_hits_loses_none_and_doubles_none(
    server: Server, redis_client: Redis[bytes]
) -> None:
    mark = token()
    per_connection, connections = 150, 24

    def visitor(index: int) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        answered = 0
        for _ in range(per_connection):
            connection.request("GET", f"/t/o/{mark}.gif", headers={"User-Agent": f"v{index}"})
            response = connection.getresponse()
            answered += response.status == 200 and response.read() == PIXEL_GIF
        connection.close()
        return answered

    with ThreadPoolExecutor(connections) as pool:
        answered = sum(pool.map(visitor, range(connections)))
    assert answered == per_connection * connections
    found = of_token(redis_client, server.stream, mark)
    assert len(found) == answered
    assert {entry["ua"] for entry in found} == {f"v{index}" for index in range(connections)}


# --- Processes ----------------------------------------------------------------------------------


def test_a_killed_worker_is_replaced_and_a_stop_is_graceful(
    django_db_setup: None, redis_client: Redis[bytes]
) -> None:
    server = start_server(workers=2)
    try:
        workers = server.workers()
        assert len(workers) == 2
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while (len(server.workers()) < 2 or victim in server.workers()) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert len(server.workers() - {victim}) == 2, server.output()
        mark = token()
        for _ in range(20):  # new connections land on both workers' sockets
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", f"/t/o/{mark}.gif")
            assert connection.getresponse().status == 200
            connection.close()
        # A graceful stop: an idle keep-alive connection is closed, the process exits 0.
        idle = RawClient(server.port)
        idle.send(get(f"/t/o/{mark}.gif"))
        assert idle.response()[0] == 200
        started = time.monotonic()
        assert server.stop() == 0, server.output()
        assert time.monotonic() - started < 10
        assert idle.closed()
        idle.close()
        assert len(of_token(redis_client, server.stream, mark)) == 21
        assert server.workers() == set()
    finally:
        server.stop()
        redis_client.delete(server.stream)


def test_with_redis_down_the_server_spools_hits_in_postgresql(sent_a: Sent) -> None:
    server = start_server(workers=1, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    try:
        client = RawClient(server.port)
        client.send(get(f"/t/o/{sent_a.token}.gif", extra="User-Agent: Gmail-Proxy\r\n"))
        assert client.response()[2] == PIXEL_GIF
        client.send(get(click_path(sent_a.token, 0, django_settings.SECRET_KEY)))
        assert client.response()[1]["location"] == LINKS_A[0]
        client.close()
        rows = spooled_rows(sent_a.token)
        assert [(row[1], row[2], row[4], row[5]) for row in rows] == [
            ("o", None, "127.0.0.1", "Gmail-Proxy"),
            ("c", 0, "127.0.0.1", ""),
        ]
    finally:
        assert server.stop() == 0, server.output()
    assert "spooled in PostgreSQL" in server.output()


# --- What the hot path is made of ---------------------------------------------------------------


def test_the_server_answers_without_django_request_orm_session_or_templates() -> None:
    """The production server's modules, with a hit answered: none of Django's request handling,
    database layer, sessions or templates is even imported."""
    script = (
        "import os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'crm.settings')\n"
        "import tracking.server\n"
        "from tracking.hits import Endpoints\n"
        "endpoints = Endpoints.from_settings()\n"
        "assert endpoints.request('GET', '/t/o/' + 'a' * 32 + '.gif', peer='::1').hit\n"
        "heavy = ('django.db', 'django.http', 'django.template', 'django.contrib',\n"
        "         'django.core.handlers', 'django.apps', 'crm.models', 'inbox.models')\n"
        "print(sorted(name for name in sys.modules if name.startswith(heavy)))\n"
    )
    checked = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "[]"


def test_docker_compose_runs_the_tracking_server_with_the_apps_settings() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        service_missing("docker-compose (Debian package docker-compose) validates the file")
        return
    checked = subprocess.run(  # noqa: S603 - fixed tool, our file
        [tool, "-f", str(REPO / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    services = yaml.safe_load(checked.stdout)["services"]
    tracking = services["tracking"]
    assert tracking["command"][:3] == ["python", "-m", "tracking.server"]
    assert "--port" in tracking["command"]
    for name in ("web", "tracking", "worker"):
        environment = services[name]["environment"]
        assert environment["CRM_TRACKING_URL"]
        assert environment["REDIS_URL"] == services["tracking"]["environment"]["REDIS_URL"]
    assert "COPY tracking ./tracking" in (REPO / "Dockerfile").read_text()
