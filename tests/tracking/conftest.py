"""Fixtures of the recorder's tests (test_flush.py, test_delivery.py, test_marks.py): hits written
to the buffer by hand in the contract's format, as the tracking endpoints write them (a stream of
the test's own: `CRM_TRACKING_STREAM` is a setting), mailboxes to send tracked mail from (one
delivered for real through the outbox to aiosmtpd and Dovecot, one that only queues), and
readers of what was recorded. The endpoints' tests keep theirs in endpoints.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from redis import Redis
from redis.exceptions import ResponseError

from crm import encryption, tenancy
from crm.models import Company, Membership, Notification, User
from inbox import sending
from inbox.models import (
    MailAccount,
    MailOutbound,
    MailThread,
    MailThreadMessage,
    MailTrackingEvent,
)
from mailsync import outbox
from tests.conftest import Cast, service_missing
from tests.mailsync.conftest import (  # noqa: F401 - Dovecot and aiosmtpd, for `rig`
    MailUser,
    connect,
    dovecot,
    mail_user,
    smtp_server,
    smtp_user,
)
from tests.mailsync.dovecot import Dovecot
from tests.mailsync.smtpd import SmtpServer
from tracking import flush

PAT = "pat@customer.test"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Real user agents, as the tracking endpoints receive them.
OUTLOOK_DESKTOP = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
OFFER = "https://acme.test/offer"
BODY = (
    "<p>Dear Pat,</p><p>see <a href='https://acme.test/offer'>the offer</a> and "
    "<a href='https://acme.test/pricing?plan=team&amp;seats=5'>the prices</a>, or "
    "<a href='mailto:alice@acme.test'>write to me</a>.</p>"
)


def micros(at: datetime) -> str:
    return str((at - EPOCH) // timedelta(microseconds=1))


@dataclass
class Buffer:
    """The hits' stream of this test (`CRM_TRACKING_STREAM`), written as the endpoints do."""

    client: Redis[bytes]
    stream: str

    def add(
        self,
        token: str,
        *,
        kind: str = "o",
        link: str = "",
        at: datetime | None = None,
        ip: str = "198.51.100.7",
        ua: str = OUTLOOK_DESKTOP,
        session: str = "",
    ) -> str:
        entry = self.client.xadd(
            self.stream,
            {
                "t": token,
                "k": kind,
                "n": link,
                "at": micros(at or datetime.now(UTC)),
                "ip": ip,
                "ua": ua,
                "s": session,
            },
        )
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    def length(self) -> int:
        return int(self.client.xlen(self.stream))

    def pending(self) -> int:
        try:
            return int(self.client.xpending(self.stream, flush.GROUP)["pending"])
        except ResponseError:  # no group yet
            return 0

    def flush(self, **options: Any) -> flush.FlushOutcome:
        return flush.hits_flush(client=self.client, **options)


@pytest.fixture
def buffer(settings: Any) -> Iterator[Buffer]:
    client: Redis[bytes] = Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    try:
        client.ping()
    except Exception:
        service_missing(f"Redis at {settings.REDIS_URL}")
    settings.CRM_TRACKING_STREAM = f"test:tracking:hits:{uuid.uuid4().hex}"
    yield Buffer(client, settings.CRM_TRACKING_STREAM)
    client.delete(settings.CRM_TRACKING_STREAM)


def spool_add(
    token: str,
    *,
    kind: str = "o",
    link: int | None = None,
    at: datetime | None = None,
    ip: str = "198.51.100.7",
    ua: str = OUTLOOK_DESKTOP,
    session: str = "",
) -> None:
    """A hit as the endpoint spools it when Redis fails (the door `inbox_tracking_spool_add`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inbox_tracking_spool_add(%s, %s, %s, %s, %s, %s, %s)",
            [token, kind, link, at or datetime.now(UTC), ip, ua, session],
        )


def spool_tokens() -> list[str]:
    """The tokens of every spooled hit (through the door: the app role cannot read the table)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM inbox_tracking_spool_take(100000)")
        return [row[0] for row in cursor.fetchall()]


def queued_account(company: Company, owner: User) -> MailAccount:
    """A mailbox that can queue mail (an outgoing server is set) but is never delivered from
    here: its messages stay queued, tokens and all."""
    with tenancy.bound(company.pk):
        found = MailAccount.objects.for_company(company).filter(owner=owner).first()
        if found is not None:
            return found
        return MailAccount.objects.create(
            company=company,
            owner=owner,
            email_address=owner.email,
            imap_host="127.0.0.1",
            imap_port=143,
            imap_security="none",
            username=owner.email,
            secret_encrypted=encryption.encrypt("imap-password"),
            smtp_host="127.0.0.1",
            smtp_port=25,
            smtp_security="none",
        )


def send(membership: Membership, account: MailAccount, **fields: Any) -> MailOutbound:
    """What pressing Send does (tracking on unless said otherwise), with no undo window."""
    values: dict[str, Any] = {
        "to": [f"Pat Customer <{PAT}>"],
        "subject": "Quote",
        "body_html": BODY,
        "track_opens": True,
        "track_links": True,
    }
    values.update(fields)
    with tenancy.bound(membership.company_id, user_id=membership.user_id):
        return sending.message_send(
            membership=membership,
            draft=sending.Draft(account_id=account.pk, **values),
            undo=timedelta(0),
        )


def outbound_row(company_id: int, outbound_id: int) -> MailOutbound:
    with tenancy.bound(company_id):
        return MailOutbound.objects.for_company(company_id).get(pk=outbound_id)


def thread_of(company_id: int, outbound: MailOutbound) -> MailThread:
    with tenancy.bound(company_id):
        held = MailThreadMessage.objects.for_company(company_id).get(
            account_id=outbound.account_id, message_id=outbound.message_id
        )
        return MailThread.objects.for_company(company_id).get(pk=held.thread_id)


def events(company_id: int) -> list[MailTrackingEvent]:
    with tenancy.bound(company_id):
        return list(MailTrackingEvent.objects.for_company(company_id).order_by("occurred_at", "pk"))


def notifications(company_id: int) -> list[Notification]:
    with tenancy.bound(company_id):
        return list(Notification.objects.for_company(company_id).order_by("pk"))


@dataclass
class Rig:
    """Alice's mailbox on Dovecot, sending through aiosmtpd."""

    cast: Cast
    dovecot: Dovecot
    smtp: SmtpServer
    user: MailUser
    account: MailAccount

    @property
    def company_id(self) -> int:
        return self.cast.company_a.pk

    @property
    def alice(self) -> Membership:
        return self.cast.membership(self.cast.alice, self.cast.company_a)

    def send(self, **fields: Any) -> MailOutbound:
        return send(self.alice, self.account, **fields)

    def deliver(self) -> outbox.OutboxOutcome:
        outcome = outbox.account_outbox_run(company_id=self.company_id, account_id=self.account.pk)
        assert (outcome.failed, outcome.retrying) == (0, 0)
        return outcome

    def on_server(self, folder: str = "Sent") -> list[bytes]:
        """The bytes of every message in the folder, as the user's own client sees them."""
        found: list[bytes] = []
        with self.dovecot.session(self.user.username, self.user.password) as client:
            client.select(f'"{folder}"', readonly=True)
            _, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
            for item in data:
                if isinstance(item, tuple):
                    found.append(item[1])
        return found


@pytest.fixture
def rig(
    cast: Cast,
    dovecot: Dovecot,  # noqa: F811
    smtp_server: SmtpServer,  # noqa: F811
    smtp_user: MailUser,  # noqa: F811
    settings: Any,
) -> Iterator[Rig]:
    settings.CRM_MAIL_SEND_INTERVAL = 0
    smtp_server.reset()
    account = connect(
        cast,
        dovecot,
        smtp_user,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
        display_name="Alice Adams",
    )
    cache.delete(f"mailsync:outbox:last:{account.pk}")
    yield Rig(cast, dovecot, smtp_server, smtp_user, account)
    smtp_server.reset()
