"""A real HTTP receiver on loopback for the webhook tests, and helpers to publish item events.

The receiver answers from a script of (status, headers, body, delay) and records every request
it got: method, path, headers and the raw body (to check signatures byte for byte)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pytest_django import Settings

from crm import hooks, tenancy


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok": true}'
    delay: float = 0.0


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[Answer] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            "POST",
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    answer = receiver.script.pop(0) if receiver.script else Answer()
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *answers: Answer) -> None:
        self.script.extend(answers)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture
def allow_private(settings: Settings) -> None:
    """The loopback receiver is a private address: allow it, as an operator could."""
    settings.CRM_OUTBOUND_ALLOW_PRIVATE = True


def item_event(
    *,
    company_id: int,
    kind: str = "deal",
    action: str = "updated",
    item_id: str = "42",
    actor_id: int | None = None,
    permitted_user_ids: tuple[int, ...] = (),
    current: dict[str, Any] | None = None,
    previous: dict[str, Any] | None = None,
    changed_fields: tuple[str, ...] = (),
    merged_into_id: str | None = None,
    source: str = "api",
) -> hooks.ItemEvent:
    """An ItemEvent as the item apps publish it; the v1 and v2 shapes differ a little, as the
    APIs do (v1 `value` as a number and `title`, v2 the same plus `custom_fields`)."""
    now = current if current is not None else {"id": int(item_id), "title": "Big deal"}
    before = previous
    return hooks.ItemEvent(
        company_id=company_id,
        kind=kind,
        action=action,
        item_id=item_id,
        actor_id=actor_id,
        source=source,
        current={"1.0": dict(now), "2.0": {**now, "custom_fields": {}}},
        previous=(
            None
            if before is None
            else {"1.0": dict(before), "2.0": {**before, "custom_fields": {}}}
        ),
        changed_fields=changed_fields,
        merged_into_id=merged_into_id,
        permitted_user_ids=permitted_user_ids,
    )


def publish(event: hooks.ItemEvent) -> None:
    """Publish as an item app does: inside its write transaction, bound to the company."""
    with tenancy.bound(event.company_id):
        hooks.publish(hooks.ITEM_EVENT, event)
