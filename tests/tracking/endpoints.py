"""Fixtures and helpers of the tracking endpoints' tests (test_hits, test_server): real Redis (a
stream of each test's own, `CRM_TRACKING_STREAM`), real PostgreSQL with tracked messages sent
through `inbox.sending.message_send` and committed (the endpoints read them through their own
connection, so these tests use `transactional_db`). The test modules take the fixtures by name
(`redis_client = endpoints.redis_client`); conftest.py holds the flush worker's."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from redis import Redis
from redis.exceptions import RedisError

from crm import tenancy
from crm.models import Company, User
from inbox import sending, trackmarks
from inbox.models import MailAccount, MailOutbound
from tests.conftest import Cast, _build_cast, service_missing
from tests.inbox.conftest import Mailbox

LINKS_A = ["https://shop.example/offer?id=7", "https://docs.example/guide#start"]


@dataclass
class Sent:
    """A tracked message as the endpoints see it."""

    company: Company
    outbound: MailOutbound
    links: list[str]

    @property
    def token(self) -> str:
        return self.outbound.token


@pytest.fixture
def redis_client(settings: Any) -> Redis[bytes]:
    client: Redis[bytes] = Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except RedisError:
        service_missing(f"Redis at {settings.REDIS_URL}")
    return client


@pytest.fixture
def stream(settings: Any, redis_client: Redis[bytes]) -> Iterator[str]:
    """A stream of this test's own (the contract's key is the setting's default)."""
    name = f"test:tracking:hits:{uuid.uuid4().hex}"
    settings.CRM_TRACKING_STREAM = name
    yield name
    redis_client.delete(name)


@pytest.fixture
def tracked_cast(transactional_db: None) -> Cast:
    return _build_cast()


@pytest.fixture
def sent_a(tracked_cast: Cast) -> Sent:
    """Alice's tracked message in company A, with two links."""
    return send_tracked(tracked_cast, tracked_cast.alice, tracked_cast.company_a, links=LINKS_A)


@pytest.fixture
def sent_b(tracked_cast: Cast) -> Sent:
    """Carol's tracked message in company B, with one link."""
    return send_tracked(
        tracked_cast,
        tracked_cast.carol,
        tracked_cast.company_b,
        links=["https://globex.example/private-pricing"],
    )


def send_tracked(
    cast: Cast,
    owner: User,
    company: Company,
    *,
    links: Sequence[str],
    track_opens: bool = True,
    track_links: bool = True,
) -> Sent:
    """A message sent with tracking from `owner`'s mailbox, its stored links set as sending
    stores them."""
    account = Mailbox(cast).account(owner, company=company)
    with tenancy.bound(company.pk):
        MailAccount.objects.for_company(company).filter(pk=account.pk).update(
            smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none"
        )
    membership = cast.membership(owner, company)
    body = "".join(f'<p><a href="{link}">link</a></p>' for link in links)
    with tenancy.bound(company.pk, user_id=owner.pk):
        outbound = sending.message_send(
            membership=membership,
            draft=sending.Draft(
                account_id=account.pk,
                to=["pat@customer.test"],
                subject="Our offer",
                body_html=f"<p>Hello</p>{body}",
                track_opens=track_opens,
                track_links=track_links,
            ),
            undo=timedelta(0),
        )
        MailOutbound.objects.for_company(company).filter(pk=outbound.pk).update(
            tracked_links=list(links)
        )
        outbound.refresh_from_db()
    return Sent(company, outbound, list(links))


def entries(client: Redis[bytes], stream: str) -> list[dict[str, str]]:
    return [
        {key.decode(): value.decode() for key, value in fields.items()}
        for _id, fields in client.xrange(stream)
    ]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url() -> str:
    """The test database's URL, for a server in another process."""
    params = connection.settings_dict
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return (
        f"postgresql://{params['USER']}{password}@{params['HOST'] or '127.0.0.1'}:"
        f"{params['PORT'] or 5432}/{params['NAME']}"
    )


def spooled_rows(token: str) -> list[tuple[Any, ...]]:
    """The spool's rows of a token (token, kind, link, at, ip, ua, session), read through the
    flush worker's door, then removed (the spool is no Django table: a transactional test's
    flush leaves it alone)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, token, kind, link_number, occurred_at, ip, user_agent, session "
            "FROM inbox_tracking_spool_take(100000)"
        )
        rows = [row for row in cursor.fetchall() if row[1] == token]
        if rows:
            cursor.execute("SELECT inbox_tracking_spool_done(%s)", [[row[0] for row in rows]])
    return [row[1:] for row in rows]


def click_path(token: str, number: int, secret_key: str) -> str:
    key = trackmarks.tracking_key(secret_key)
    return f"/t/c/{token}/{number}/{trackmarks.link_signature(key, token, number)}"
