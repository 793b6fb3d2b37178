"""The daily email of opens and clicks (E2's "optionally an email digest"): to the users who
asked for it, in their morning, their unread notifications of the last day not yet emailed,
plain text and HTML; marked emailed, so a second run sends nothing; a refused send marks
nothing and is tried again. Django's locmem backend, and once a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from pytest_django import Settings

from crm import notifications, services, tasks, tenancy
from crm.models import Company, Membership, Notification, User
from tests.conftest import Cast
from tests.mailsync.smtpd import SmtpServer

pytestmark = pytest.mark.django_db

# 07:30 UTC: 08:30 in Paris (winter, UTC+1), the Paris users' digest hour; 02:30 in New York.
MORNING_IN_PARIS = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)


def prefer(user: User, *, zone: str = "Europe/Paris", digest: bool = True) -> None:
    services.user_preferences_update(
        user=user, timezone=zone, email_links="composer", tracking_digest=digest
    )


def notify(
    user: User, company: Company, title: str, *, at: datetime, url: str = "/inbox?thread=7"
) -> Notification:
    with tenancy.bound(company.pk):
        notifications.notification_add(
            company_id=company.pk,
            user_id=user.pk,
            kind="tracking_open",
            title=title,
            body="Opened on an iPhone.",
            url=url,
            subject_key=f"open:{title}",
        )
        rows = Notification.objects.for_company(company).filter(subject_key=f"open:{title}")
        rows.update(created_at=at)
        return rows.get()


def digest(company: Company, now: datetime) -> int:
    with tenancy.bound(company.pk):
        return notifications.notifications_digest_send(company=company, now=now)


def fresh(notification: Notification) -> Notification:
    with tenancy.bound(notification.company_id):
        return Notification.objects.for_company(notification.company_id).get(pk=notification.pk)


def test_the_digest_lists_the_days_unread_notifications_once(
    cast: Cast, settings: Settings
) -> None:
    settings.SITE_URL = "https://crm.example.test"
    prefer(cast.alice)
    now = MORNING_IN_PARIS
    recent = notify(cast.alice, cast.company_a, "Pat opened “Quote”", at=now - timedelta(hours=2))
    older = notify(
        cast.alice, cast.company_a, "Lee clicked a link in “Offer”", at=now - timedelta(hours=20)
    )
    read = notify(cast.alice, cast.company_a, "Already read", at=now - timedelta(hours=1))
    with tenancy.bound(cast.company_a.pk):
        notifications.notification_read(
            company_id=cast.company_a.pk, user_id=cast.alice.pk, notification_id=read.pk
        )
    stale = notify(cast.alice, cast.company_a, "Two days ago", at=now - timedelta(days=2))
    notify(cast.bob, cast.company_a, "Bob did not ask", at=now - timedelta(hours=1))

    assert digest(cast.company_a, now) == 1

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["alice@acme.test"]
    assert email.from_email == settings.DEFAULT_FROM_EMAIL
    assert email.subject == "Acme: 2 new notifications about your email"
    text = email.body
    assert text.index("Pat opened “Quote”") < text.index("Lee clicked a link in “Offer”")
    assert f"https://crm.example.test/notifications/{recent.pk}/open" in text
    assert "https://crm.example.test/settings/preferences" in text
    assert "An open is a hint, not proof" in text
    assert "Already read" not in text
    assert "Two days ago" not in text
    assert "Dec. 2, 2026, 6:30 a.m." in text  # 05:30 UTC, shown in Paris
    assert isinstance(email, EmailMultiAlternatives)
    html, kind = email.alternatives[0]
    assert kind == "text/html"
    assert isinstance(html, str)
    assert f'<a href="https://crm.example.test/notifications/{older.pk}/open"' in html
    assert "Pat opened “Quote”" in html
    assert fresh(recent).emailed_at == now
    assert fresh(older).emailed_at == now
    assert fresh(read).emailed_at is None
    assert fresh(stale).emailed_at is None

    # Run twice: nothing new, nothing sent.
    assert digest(cast.company_a, now + timedelta(minutes=5)) == 0
    assert len(mail.outbox) == 1


def test_the_digest_waits_for_the_users_morning(cast: Cast) -> None:
    prefer(cast.alice, zone="America/New_York")  # 02:30 there
    waiting = notify(cast.alice, cast.company_a, "Pat opened it", at=MORNING_IN_PARIS)

    assert digest(cast.company_a, MORNING_IN_PARIS) == 0
    assert mail.outbox == []
    assert fresh(waiting).emailed_at is None

    eight_in_new_york = MORNING_IN_PARIS + timedelta(hours=5, minutes=30)  # 13:00 UTC
    assert digest(cast.company_a, eight_in_new_york) == 1
    assert fresh(waiting).emailed_at == eight_in_new_york


def test_no_digest_without_the_preference_or_for_an_inactive_member(cast: Cast) -> None:
    prefer(cast.alice, digest=False)
    prefer(cast.bob)
    notify(cast.alice, cast.company_a, "Alice's", at=MORNING_IN_PARIS)
    bobs = notify(cast.bob, cast.company_a, "Bob's", at=MORNING_IN_PARIS)
    with tenancy.bound(cast.company_a.pk):
        Membership.objects.for_company(cast.company_a).filter(user=cast.bob).update(is_active=False)

    assert digest(cast.company_a, MORNING_IN_PARIS) == 0
    assert mail.outbox == []
    assert fresh(bobs).emailed_at is None


def test_each_company_emails_its_own_notifications(cast: Cast) -> None:
    prefer(cast.alice)
    prefer(cast.carol)
    notify(cast.alice, cast.company_a, "Acme's", at=MORNING_IN_PARIS)
    notify(cast.carol, cast.company_b, "Globex's", at=MORNING_IN_PARIS)

    assert digest(cast.company_a, MORNING_IN_PARIS) == 1
    assert [email.to for email in mail.outbox] == [["alice@acme.test"]]
    assert "Globex's" not in mail.outbox[0].body

    assert digest(cast.company_b, MORNING_IN_PARIS) == 1
    assert mail.outbox[1].to == ["carol@globex.test"]
    assert "Globex's" in mail.outbox[1].body
    assert "Acme's" not in mail.outbox[1].body


def test_the_beat_task_visits_every_company(cast: Cast) -> None:
    """The task runs at the real now: the users' zone is chosen so that it is 08:xx there."""
    now = datetime.now(UTC)
    if now.minute == 59 and now.second >= 50:  # not across the hour while the test runs
        time.sleep(11)
        now = datetime.now(UTC)
    offset = (8 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset  # Etc/GMT-N is UTC+N, from -12 to +14
    zone = f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"
    prefer(cast.alice, zone=zone)
    prefer(cast.carol, zone=zone)
    notify(cast.alice, cast.company_a, "Acme's", at=now - timedelta(minutes=1))
    notify(cast.carol, cast.company_b, "Globex's", at=now - timedelta(minutes=1))

    assert tasks.notifications_digest.apply().get() == 2
    assert sorted(email.to[0] for email in mail.outbox) == ["alice@acme.test", "carol@globex.test"]
    assert tasks.notifications_digest.apply().get() == 0


def test_the_beat_runs_the_digest_hourly() -> None:
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["notifications-digest"]
    assert entry["task"] == "crm.tasks.notifications_digest"
    assert str(entry["schedule"]) == "<crontab: 0 * * * * (m/h/dM/MY/d)>"


# --- Through a real SMTP server -------------------------------------------------------------------


@pytest.fixture
def smtpd(settings: Settings) -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    try:
        yield server
    finally:
        server.stop()


def test_the_digest_goes_through_smtp_and_a_refusal_marks_nothing(
    cast: Cast, smtpd: SmtpServer
) -> None:
    prefer(cast.alice)
    prefer(cast.bob)
    alices = notify(cast.alice, cast.company_a, "Pat opened “Quote”", at=MORNING_IN_PARIS)
    bobs = notify(cast.bob, cast.company_a, "Sam opened “Offer”", at=MORNING_IN_PARIS)
    smtpd.refuse("bob@acme.test", "550 5.1.1 No such user")

    assert digest(cast.company_a, MORNING_IN_PARIS) == 1  # Bob's refusal does not stop Alice's

    received = smtpd.received("alice@acme.test")
    assert len(received) == 1
    raw = received[0].decode()
    assert "Subject: Acme: 1 new notification about your email" in raw
    assert "multipart/alternative" in raw
    assert "text/html" in raw
    assert fresh(alices).emailed_at is not None
    assert fresh(bobs).emailed_at is None  # not sent: not marked

    smtpd.handler.refused.clear()
    assert digest(cast.company_a, MORNING_IN_PARIS + timedelta(minutes=10)) == 1
    assert len(smtpd.received("bob@acme.test")) == 1
    assert fresh(bobs).emailed_at is not None
    assert len(smtpd.received("alice@acme.test")) == 1
