"""Whose browser session a hit came from, so a sender's own opens and clicks are not counted as
the recipient's (E2; docs/decisions/0014-tracking.md).

The tracking endpoints never see a user: only, when the browser sends it, our session cookie,
which they pass on as a *session mark* (`trackmarks.session_mark`: an HMAC of the cookie's value,
so the cookie itself is never stored). The web app, which does know the user, records
`crm:tracking:session:<mark>` → user id in Redis for every signed-in session
(`tracking.middleware.SenderSessionMiddleware`), renewed at most once an hour per session and
kept as long as a session lives; the flush worker reads the marks of a batch in one MGET.

What it can tell: a click on a tracked link from the browser the sender uses the CRM in (a
top-level navigation carries our SameSite=Lax cookie). What it cannot: an open in a mail client,
or in a webmail in another site's page (images there are cross-site requests, which carry no
Lax cookie), or anything behind an image proxy. The sender's own view of a sent message in the
CRM never fires the pixel at all: it shows the stored, unmarked copy."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from redis import Redis

KEY_PREFIX: Final = "crm:tracking:session:"
# A session's mark is written again after this long (the key itself lives as long as a session
# may: SESSION_COOKIE_AGE).
REFRESH_SECONDS: Final = 3600


def session_key(mark: str) -> str:
    return f"{KEY_PREFIX}{mark}"


def session_record(client: Redis[bytes], *, mark: str, user_id: int, ttl_seconds: int) -> None:
    """This session mark is this user's, for `ttl_seconds`."""
    client.set(session_key(mark), str(user_id), ex=max(ttl_seconds, REFRESH_SECONDS))


def session_users(client: Redis[bytes], marks: Collection[str]) -> dict[str, int]:
    """Mark → user id, for the marks a signed-in session was recorded with (one MGET)."""
    ordered = sorted(set(marks))
    if not ordered:
        return {}
    values = client.mget([session_key(mark) for mark in ordered])
    found: dict[str, int] = {}
    for mark, value in zip(ordered, values, strict=True):
        if value is not None and value.isdigit():
            found[mark] = int(value)
    return found
