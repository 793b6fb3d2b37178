"""The tracking endpoints' answers and what they buffer (E1, E2), through the WSGI application
every server shares the logic of (`tracking.hits`), with real Redis and PostgreSQL:

- the pixel is the 43-byte GIF, never cached, for any path under `/t/o/`; a well-formed token's
  hit is in the stream with exactly the contract's fields;
- a click redirects only to the link stored when the message was sent; a tampered signature,
  an unknown token, a number out of range, a message not tracking links and company B's token
  under a signature made for company A's link number all get the same 404 page, byte for
  byte, and record nothing;
- Redis down: the hit is spooled in PostgreSQL through the door, and answered; both down: still
  answered, and a warning counts the hit lost without naming any secret.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.signals import request_started
from redis import Redis

from crm import tenancy
from inbox import trackmarks
from inbox.models import MailOutbound
from tests.tracking import endpoints
from tests.tracking.endpoints import (
    LINKS_A,
    Sent,
    click_path,
    closed_port,
    entries,
    spooled_rows,
)
from tracking import hits
from tracking.buffer import SyncBuffer, hit_fields, packed_xadd
from tracking.doors import Doors
from tracking.hits import NOT_FOUND, PIXEL_GIF, Endpoints, Hit, LinkCache
from tracking.wsgi import TrackingApplication

# The fixtures of tests/tracking/endpoints.py, by name.
redis_client = endpoints.redis_client
stream = endpoints.stream
tracked_cast = endpoints.tracked_cast
sent_a = endpoints.sent_a
sent_b = endpoints.sent_b

TOKEN = "0123456789abcdef0123456789abcdef"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Thunderbird/128.0"


class Response:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.code = int(status.split()[0])
        self.headers = dict(headers)
        self.header_list = headers
        self.body = body


def call(
    app: Callable[..., Any],
    path: str,
    *,
    method: str = "GET",
    peer: str = "198.51.100.20",
    headers: dict[str, str] | None = None,
    query: str = "",
) -> Response:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REMOTE_ADDR": peer,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        started.append((status, response_headers))

    body = b"".join(app(environ, start_response))
    return Response(started[0][0], started[0][1], body)


@pytest.fixture
def app(stream: str) -> TrackingApplication:
    return TrackingApplication()


def assert_pixel(response: Response) -> None:
    assert response.code == 200
    assert response.body == PIXEL_GIF
    assert len(response.body) == 43
    assert response.headers["Content-Type"] == "image/gif"
    assert response.headers["Content-Length"] == "43"
    assert response.headers["Cache-Control"] == (
        "no-store, no-cache, must-revalidate, private, max-age=0"
    )
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in response.headers


def assert_not_found(response: Response) -> None:
    assert response.code == 404
    assert response.body == hits.NOT_FOUND_HTML
    assert response.header_list == list(NOT_FOUND.headers)  # no Location, nothing else


# --- The pixel --------------------------------------------------------------------------------


def test_the_pixel_is_a_transparent_gif_of_43_bytes_that_is_never_cached(
    app: TrackingApplication, redis_client: Redis[bytes], stream: str
) -> None:
    assert PIXEL_GIF.startswith(b"GIF89a\x01\x00\x01\x00")  # 1 x 1
    assert PIXEL_GIF.endswith(b";")
    response = call(app, f"/t/o/{TOKEN}.gif", headers={"User-Agent": UA})
    assert_pixel(response)
    assert len(entries(redis_client, stream)) == 1


def test_an_open_is_buffered_with_exactly_the_contracts_fields(
    app: TrackingApplication, redis_client: Redis[bytes], stream: str, settings: Any
) -> None:
    before = time.time_ns() // 1000
    call(app, f"/t/o/{TOKEN}.gif", peer="203.0.113.9", headers={"User-Agent": UA})
    after = time.time_ns() // 1000
    [entry] = entries(redis_client, stream)
    assert set(entry) == {"t", "k", "n", "at", "ip", "ua", "s"}
    assert entry["t"] == TOKEN
    assert entry["k"] == "o"
    assert entry["n"] == ""
    assert before <= int(entry["at"]) <= after
    assert entry["ip"] == "203.0.113.9"
    assert entry["ua"] == UA
    assert entry["s"] == ""


def test_the_session_mark_is_an_hmac_of_the_session_cookie_never_the_cookie(
    app: TrackingApplication, redis_client: Redis[bytes], stream: str, settings: Any
) -> None:
    session = "q9rwy2l1k0session0value"
    cookie = f"csrftoken=abc; {settings.SESSION_COOKIE_NAME}={session}; theme=dark"
    call(app, f"/t/o/{TOKEN}.gif", headers={"Cookie": cookie})
    [entry] = entries(redis_client, stream)
    key = trackmarks.tracking_key(settings.SECRET_KEY)
    expected = hmac.new(key, session.encode(), hashlib.sha256).hexdigest()[:32]
    assert entry["s"] == expected
    assert session not in str(redis_client.xrange(stream))
    # Other cookies alone mark nothing.
    call(app, f"/t/o/{TOKEN}.gif", headers={"Cookie": "csrftoken=abc"})
    assert entries(redis_client, stream)[1]["s"] == ""


def test_the_user_agent_is_cut_at_512_characters(
    app: TrackingApplication, redis_client: Redis[bytes], stream: str
) -> None:
    call(app, f"/t/o/{TOKEN}.gif", headers={"User-Agent": "A" * 2000})
    assert entries(redis_client, stream)[0]["ua"] == "A" * 512


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    app: TrackingApplication, redis_client: Redis[bytes], stream: str
) -> None:
    forwarded = {"X-Forwarded-For": "192.0.2.44, 10.0.0.2"}
    call(app, f"/t/o/{TOKEN}.gif", peer="127.0.0.1", headers=forwarded)  # loopback: trusted
    call(app, f"/t/o/{TOKEN}.gif", peer="203.0.113.7", headers=forwarded)  # anyone: not
    call(app, f"/t/o/{TOKEN}.gif", peer="127.0.0.1", headers={"X-Forwarded-For": "evil"})
    assert [entry["ip"] for entry in entries(redis_client, stream)] == [
        "192.0.2.44",
        "203.0.113.7",
        "127.0.0.1",
    ]


def test_trusted_proxies_come_from_the_setting(settings: Any) -> None:
    settings.CRM_TRACKING_TRUSTED_PROXIES = ["10.1.0.0/16"]
    endpoints = Endpoints.from_settings()
    assert endpoints.client_ip("10.1.2.3", "192.0.2.1") == "192.0.2.1"
    assert endpoints.client_ip("127.0.0.1", "192.0.2.1") == "127.0.0.1"


@pytest.mark.parametrize(
    "path",
    [
        f"/t/o/{TOKEN.upper()}.gif",
        f"/t/o/{TOKEN[:-1]}.gif",
        f"/t/o/{TOKEN}.png",
        f"/t/o/{TOKEN}",
        f"/t/o/{TOKEN}.gif/extra",
        f"/t/o/{TOKEN[:-1]}g.gif",
        "/t/o/",
        "/t/o/../../etc/passwd.gif",
    ],
)
def test_a_malformed_pixel_path_still_gets_the_pixel_and_records_nothing(
    app: TrackingApplication, redis_client: Redis[bytes], stream: str, path: str
) -> None:
    assert_pixel(call(app, path))
    assert entries(redis_client, stream) == []


def test_head_gets_the_headers_only_and_other_methods_405(
    app: TrackingApplication, redis_client: Redis[bytes], stream: str
) -> None:
    head = call(app, f"/t/o/{TOKEN}.gif", method="HEAD")
    assert head.code == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == "43"
    post = call(app, f"/t/o/{TOKEN}.gif", method="POST")
    assert post.code == 405
    assert post.headers["Allow"] == "GET, HEAD"
    assert entries(redis_client, stream) == []


def test_a_path_under_t_that_is_no_endpoint_is_the_plain_404(app: TrackingApplication) -> None:
    assert_not_found(call(app, "/t/x/whatever"))
    assert_not_found(call(app, "/t/"))


# --- Clicks -----------------------------------------------------------------------------------


def test_a_click_redirects_to_the_stored_link_and_is_buffered(
    app: TrackingApplication,
    redis_client: Redis[bytes],
    stream: str,
    sent_a: Sent,
    settings: Any,
) -> None:
    response = call(
        app,
        click_path(sent_a.token, 1, settings.SECRET_KEY),
        query="url=https://evil.example/",
        headers={"User-Agent": UA, "Referer": "https://evil.example/"},
    )
    assert response.code == 302
    assert response.headers["Location"] == LINKS_A[1]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.body == b""
    [entry] = entries(redis_client, stream)
    assert {key: entry[key] for key in ("t", "k", "n", "ua")} == {
        "t": sent_a.token,
        "k": "c",
        "n": "1",
        "ua": UA,
    }
    # Link 0 too, from the cache now.
    assert (
        call(app, click_path(sent_a.token, 0, settings.SECRET_KEY)).headers["Location"]
        == (LINKS_A[0])
    )


def test_refused_clicks_all_get_the_same_404_and_record_nothing(
    app: TrackingApplication,
    redis_client: Redis[bytes],
    stream: str,
    sent_a: Sent,
    sent_b: Sent,
    settings: Any,
) -> None:
    secret = settings.SECRET_KEY
    good = click_path(sent_a.token, 0, secret)
    signature_a0 = good.rsplit("/", 1)[1]
    flipped = signature_a0[:-1] + ("0" if signature_a0[-1] != "0" else "1")
    refused = {
        "tampered signature": f"/t/c/{sent_a.token}/0/{flipped}",
        "signature of another number": f"/t/c/{sent_a.token}/1/{signature_a0}",
        "unknown token": click_path("f" * 32, 0, secret),
        "number out of range": click_path(sent_a.token, len(LINKS_A), secret),
        "B's token under A's signature for link 0": f"/t/c/{sent_b.token}/0/{signature_a0}",
        "no signature": f"/t/c/{sent_a.token}/0",
        "signature not hex": f"/t/c/{sent_a.token}/0/{'z' * 16}",
        "signature not ascii": f"/t/c/{sent_a.token}/0/{'é' * 16}",
        "number not a number": f"/t/c/{sent_a.token}/x/{signature_a0}",
        "negative number": f"/t/c/{sent_a.token}/-1/{signature_a0}",
        "huge number": click_path(sent_a.token, 10**12, secret),
        "extra segment": f"{good}/https://evil.example/",
        "uppercase token": f"/t/c/{sent_a.token.upper()}/0/{signature_a0}",
    }
    for reason, path in refused.items():
        response = call(app, path)
        assert response.code == 404, reason
        assert_not_found(response)
    assert entries(redis_client, stream) == []
    # B's own signed link works, for B's link only.
    response = call(app, click_path(sent_b.token, 0, secret))
    assert response.headers["Location"] == sent_b.links[0]


def test_a_message_that_does_not_track_links_redirects_nowhere(
    app: TrackingApplication,
    redis_client: Redis[bytes],
    stream: str,
    tracked_cast: Any,
    settings: Any,
) -> None:
    from tests.tracking.endpoints import send_tracked

    sent = send_tracked(
        tracked_cast,
        tracked_cast.bob,
        tracked_cast.company_a,
        links=["https://example.com/"],
        track_links=False,
    )
    assert_not_found(call(app, click_path(sent.token, 0, settings.SECRET_KEY)))
    assert entries(redis_client, stream) == []


def test_only_web_addresses_are_redirected_to_and_with_header_safe_characters() -> None:
    tracked = hits.tracked_from_links(
        True,
        [
            "javascript:alert(1)",
            "https://example.com/a b/ü?q=1#x",
            "https://example.com/\r\nSet-Cookie: x=1",
            "mailto:pat@example.com",
            "HTTPS://EXAMPLE.COM/UP",
        ],
    )
    locations = [answer and dict(answer.headers)["Location"] for answer in tracked.redirects]
    assert locations == [
        None,
        "https://example.com/a%20b/%C3%BC?q=1#x",
        None,
        None,
        "HTTPS://EXAMPLE.COM/UP",
    ]
    assert hits.tracked_from_links(False, ["https://example.com/"]).redirects == ()


def test_the_link_cache_forgets_after_its_time_and_stays_bounded() -> None:
    cache = LinkCache(ttl=0.05, miss_ttl=0.0, size=10)
    tracked = hits.tracked_from_links(True, ["https://example.com/"])
    cache.put("a" * 32, tracked)
    assert cache.get("a" * 32) == (True, tracked)
    cache.put("b" * 32, None)
    time.sleep(0.06)
    assert cache.get("a" * 32) == (False, None)
    assert cache.get("b" * 32) == (False, None)
    for number in range(100):
        cache.put(f"{number:032x}", tracked)
    assert len(cache._entries) <= 10


def test_a_burst_of_clicks_costs_one_lookup(
    app: TrackingApplication, sent_a: Sent, settings: Any
) -> None:
    path = click_path(sent_a.token, 0, settings.SECRET_KEY)
    assert call(app, path).headers["Location"] == LINKS_A[0]
    # The stored links change behind the endpoint's back: the burst is answered from what the
    # first click read, without asking the database again.
    with tenancy.bound(sent_a.company.pk):
        MailOutbound.objects.for_company(sent_a.company).filter(pk=sent_a.outbound.pk).update(
            tracked_links=["https://changed.example/"]
        )
    for _ in range(20):
        assert call(app, path).headers["Location"] == LINKS_A[0]
    app._ready()[0].cache.clear()
    assert call(app, path).headers["Location"] == "https://changed.example/"


def test_the_cookie_parser_finds_the_named_cookie_only() -> None:
    assert hits.cookie_value("a=1; sessionid=xyz; b=2", "sessionid") == "xyz"
    assert hits.cookie_value("xsessionid=1; sessionid=2", "sessionid") == "2"
    assert hits.cookie_value("sessionidx=1", "sessionid") == ""
    assert hits.cookie_value("", "sessionid") == ""


# --- When Redis or PostgreSQL fail ------------------------------------------------------------


def test_redis_down_spools_the_hit_in_postgresql_through_the_door(
    stream: str, sent_a: Sent, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = TrackingApplication(
        buffer=SyncBuffer(redis_url=f"redis://127.0.0.1:{closed_port()}/0", stream=stream)
    )
    with caplog.at_level(logging.WARNING, logger="tracking"):
        assert_pixel(
            call(app, f"/t/o/{sent_a.token}.gif", peer="192.0.2.7", headers={"User-Agent": UA})
        )
        click = call(app, click_path(sent_a.token, 1, settings.SECRET_KEY), peer="192.0.2.7")
    assert click.headers["Location"] == LINKS_A[1]
    rows = spooled_rows(sent_a.token)
    assert [(row[1], row[2], row[4], row[5], row[6]) for row in rows] == [
        ("o", None, "192.0.2.7", UA, ""),
        ("c", 1, "192.0.2.7", "", ""),
    ]
    assert all(row[0] == sent_a.token for row in rows)
    assert "spooled in PostgreSQL" in caplog.text


def test_redis_and_postgresql_down_the_hit_is_still_answered_and_counted_lost(
    stream: str, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    dead_database = {
        "host": "127.0.0.1",
        "port": closed_port(),
        "dbname": "crm",
        "user": "crm",
        "password": "secret-password",
        "connect_timeout": 2,
    }
    redis_url = f"redis://:redis-password@127.0.0.1:{closed_port()}/0"
    app = TrackingApplication(
        buffer=SyncBuffer(redis_url=redis_url, stream=stream, doors=Doors(dead_database))
    )
    with caplog.at_level(logging.WARNING, logger="tracking"):
        assert_pixel(call(app, f"/t/o/{TOKEN}.gif"))
        # A signed click whose links cannot be read: no redirect, a "try again" page.
        click = call(app, click_path(TOKEN, 0, settings.SECRET_KEY))
    assert click.code == 503
    assert "Location" not in click.headers
    assert "1 hit(s) answered but not recorded" in caplog.text
    for secret in ("secret-password", "redis-password", TOKEN):
        assert secret not in caplog.text


def test_a_stream_entry_is_the_same_from_both_buffers() -> None:
    hit = Hit(TOKEN, "c", "3", 1_700_000_000_000_001, "192.0.2.1", "Mozilla/5.0 ü", "ab" * 16)
    packed = packed_xadd("crm:tracking:hits", hit)
    values = [str(value) for pair in hit_fields(hit).items() for value in pair]
    assert packed.startswith(b"*17\r\n$4\r\nXADD\r\n$17\r\ncrm:tracking:hits\r\n$1\r\n*\r\n")
    for value in values:
        assert f"${len(value.encode())}\r\n{value}\r\n".encode() in packed


# --- In front of Django -----------------------------------------------------------------------


def test_the_sites_wsgi_entry_answers_the_pixel_before_django(
    redis_client: Redis[bytes], stream: str, db: None
) -> None:
    from crm.wsgi import application

    django_requests: list[object] = []

    def count(**kwargs: object) -> None:
        django_requests.append(kwargs)

    request_started.connect(count)
    try:
        response = call(application, f"/t/o/{TOKEN}.gif", headers={"User-Agent": UA})
        assert django_requests == []  # Django's handler (and its middleware) never ran
        assert_pixel(response)
        assert "X-Frame-Options" not in response.headers  # no middleware touched it
        assert "Vary" not in response.headers
        assert [entry["t"] for entry in entries(redis_client, stream)] == [TOKEN]
        # Everything else is Django's, with its middleware.
        other = call(application, "/t-is-not-tracking")
        assert len(django_requests) == 1
        assert other.code == 404
        assert other.headers["X-Frame-Options"] == "DENY"
    finally:
        request_started.disconnect(count)
