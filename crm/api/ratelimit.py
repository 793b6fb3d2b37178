"""Per-token rate limiting: a fixed window counted in Redis.

`settings.CRM_API_RATE_LIMIT` requests per `settings.CRM_API_RATE_WINDOW` seconds per key (a
token, or a user in a company for sessions). Every authenticated response carries
`x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` (seconds left in the
window), as Pipedrive's burst limit does; past the limit the answer is 429 with `Retry-After`.

A fixed window (one INCR per request) rather than a sliding one: a client may burst up to twice
the limit across a window edge, which is what Pipedrive's own 2-second windows allow too, and
it costs one round trip. Keys carry the cache KEY_PREFIX so that parallel test runs (and
several deployments on one Redis) do not count each other's requests.

If Redis does not answer, the request goes through (fail open) with a warning in the log: an
outage of the counter must not become an outage of the API.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from redis import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Short: the limiter sits on every request, and a dead Redis must cost little before we give up.
_REDIS_TIMEOUT_SECONDS = 0.25


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset: int  # whole seconds until the window ends, at least 1
    exceeded: bool

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
        }


@functools.cache
def _client(url: str) -> Redis[bytes]:
    # One connection pool per URL for the life of the process.
    return Redis.from_url(
        url,
        socket_timeout=_REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
    )


def _key_prefix() -> str:
    return str(settings.CACHES["default"].get("KEY_PREFIX", ""))


def rate_limit_hit(*, key: str, now: float | None = None) -> RateLimitState | None:
    """Count one request for `key`; the window's state after it, or None if Redis is down."""
    limit = int(settings.CRM_API_RATE_LIMIT)
    window = max(1, int(settings.CRM_API_RATE_WINDOW))
    now = time.time() if now is None else now
    window_start = int(now // window) * window
    redis_key = f"{_key_prefix()}:api-ratelimit:{key}:{window_start}"
    try:
        pipeline = _client(settings.REDIS_URL).pipeline(transaction=True)
        pipeline.incr(redis_key)
        # The window's start is in the key, so the key only has to outlive its window.
        pipeline.expire(redis_key, window + 1)
        count = int(pipeline.execute()[0])
    except RedisError as exc:
        logger.warning("API rate limit not applied, Redis unreachable: %s", exc)
        return None
    return RateLimitState(
        limit=limit,
        remaining=max(0, limit - count),
        reset=max(1, math.ceil(window_start + window - now)),
        exceeded=count > limit,
    )
