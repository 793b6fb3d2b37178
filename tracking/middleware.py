"""Recording whose session is whose for tracking (E2; `tracking.sessions`): after Django's
authentication middleware, for a signed-in request, `crm:tracking:session:<mark>` → user id in
Redis, at most once an hour per session and process.

Off everyone's hot path: a request whose session was recorded within the hour costs a dict
lookup; the one that is due costs one Redis SET (with a short timeout; a failure is logged and
tried again a minute later, never the request's problem). The user is the one the request has
loaded anyway (the tenancy middleware reads it next): no query of its own.

In `tracking`, not `crm.middleware`: the mark is an HMAC of the tracking key
(`inbox.trackmarks`), and the platform part of crm knows nothing of mail."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Final

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from redis import Redis
from redis.exceptions import RedisError

from crm.middleware import EXEMPT_PREFIXES
from inbox import trackmarks
from tracking import sessions

logger = logging.getLogger(__name__)

_REDIS_TIMEOUT_SECONDS: Final = 0.5
# After Redis failed, a session is tried again this much later.
_RETRY_SECONDS: Final = 60.0
# Sessions remembered per process; past this the memory starts afresh (each session then
# costs one SET more, once).
_REMEMBERED: Final = 50_000


@functools.cache
def _client(url: str) -> Redis[bytes]:
    return Redis.from_url(
        url, socket_timeout=_REDIS_TIMEOUT_SECONDS, socket_connect_timeout=_REDIS_TIMEOUT_SECONDS
    )


class SenderSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Session cookie value → when its mark is next due (time.monotonic()).
        self.due: dict[str, float] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
        if cookie and not request.path.startswith(EXEMPT_PREFIXES):
            now = time.monotonic()
            if self.due.get(cookie, 0.0) <= now:
                self.due[cookie] = now + self._note(request, cookie)
        return self.get_response(request)

    def _note(self, request: HttpRequest, cookie: str) -> float:
        """Record the session's user if signed in; seconds until the session is due again."""
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return float(sessions.REFRESH_SECONDS)
        if len(self.due) >= _REMEMBERED:
            self.due.clear()
        mark = trackmarks.session_mark(trackmarks.tracking_key(settings.SECRET_KEY), cookie)
        try:
            sessions.session_record(
                _client(settings.REDIS_URL),
                mark=mark,
                user_id=int(user.pk),
                ttl_seconds=int(settings.SESSION_COOKIE_AGE),
            )
        except RedisError as exc:
            logger.warning("tracking: session mark not recorded, Redis failed: %s", exc)
            return _RETRY_SECONDS
        return float(sessions.REFRESH_SECONDS)
