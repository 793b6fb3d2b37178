"""The tracking endpoints as a WSGI application, and in front of Django (`crm.wsgi`): a `/t/`
path is answered here, before Django's handler, middleware, session or database connection;
everything else goes on to Django. `make run`, `runserver` and the web service's gunicorn answer
tracked mail's pixel and links this way when CRM_TRACKING_URL is the site itself; production's
`tracking` service (`tracking.server`) answers them faster.

Each hit is stored before it is answered (`tracking.buffer.SyncBuffer`: one XADD, or the spool).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import psycopg

from tracking.buffer import SyncBuffer, error_name
from tracking.doors import Doors
from tracking.hits import UNAVAILABLE, Answer, Endpoints, Outcome, Pending

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PREFIX = "/t/"
logger = logging.getLogger(__name__)


def _header(environ: WSGIEnvironment, name: str) -> str:
    # WSGI hands headers over as latin-1; what the client sent is mostly UTF-8.
    value: str = environ.get(name, "")
    if value.isascii():
        return value
    return value.encode("latin-1", "replace").decode("utf-8", "replace")


class TrackingApplication:
    """The WSGI application of the `/t/` paths; by default with the site's settings, read on
    the first request."""

    def __init__(
        self,
        *,
        endpoints: Endpoints | None = None,
        buffer: SyncBuffer | None = None,
    ) -> None:
        self._endpoints = endpoints
        self._buffer = buffer

    def _ready(self) -> tuple[Endpoints, SyncBuffer]:
        if self._endpoints is None:
            self._endpoints = Endpoints.from_settings()
        if self._buffer is None:
            self._buffer = SyncBuffer.from_settings()
        return self._endpoints, self._buffer

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        endpoints, buffer = self._ready()
        method = environ.get("REQUEST_METHOD", "GET")
        outcome = endpoints.request(
            method,
            environ.get("PATH_INFO", ""),
            peer=environ.get("REMOTE_ADDR", ""),
            forwarded_for=environ.get("HTTP_X_FORWARDED_FOR", ""),
            user_agent=_header(environ, "HTTP_USER_AGENT"),
            cookie=environ.get("HTTP_COOKIE", ""),
        )
        if isinstance(outcome, Pending):
            outcome = _resolved(endpoints, buffer.doors, outcome)
        if outcome.hit is not None:
            buffer.add(outcome.hit)
        return _respond(outcome.answer, method == "HEAD", start_response)


def _resolved(endpoints: Endpoints, doors: Doors, pending: Pending) -> Outcome:
    try:
        tracked = doors.tracked(pending.token)
    except psycopg.Error as exc:
        logger.warning("tracking: a click's links could not be read (%s)", error_name(exc))
        return UNAVAILABLE
    return endpoints.click_resolved(pending, tracked)


def _respond(answer: Answer, head: bool, start_response: StartResponse) -> Iterable[bytes]:
    start_response(answer.status_line, list(answer.headers))
    return [] if head else [answer.body]


def in_front_of(
    django: WSGIApplication, tracking: WSGIApplication | None = None
) -> WSGIApplication:
    """A WSGI application answering `/t/` paths with the tracking endpoints and the rest with
    `django`."""
    endpoints: WSGIApplication = tracking or TrackingApplication()

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return endpoints(environ, start_response)
        return django(environ, start_response)

    return application
