"""`GET /healthz`: 200 when PostgreSQL and Redis answer, 503 when either does not.
Outside the tenancy middleware's transaction, so a dead database gives 503, not 500."""

from __future__ import annotations

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from redis import Redis
from redis.exceptions import RedisError


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:
        connection.close_if_unusable_or_obsolete()
        return f"error: {exc.__class__.__name__}"


def _redis_state() -> str:
    try:
        client = Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        return "ok"
    except RedisError as exc:
        return f"error: {exc.__class__.__name__}"


@never_cache
@transaction.non_atomic_requests  # must answer 503, not fail opening a transaction
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_state(), "redis": _redis_state()}
    healthy = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
    )
