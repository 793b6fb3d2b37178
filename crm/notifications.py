"""Notifications (the bell; E2 is the first to write them): one row per user and subject,
written once however often the event behind it happens (`subject_key`).

Each is its user's alone, in one company: every read and write here takes both and filters on
both, so Bob never sees Alice's, nor Carol Acme's (row-level security is the second wall). The
bell's count, the notifications page and its "mark read", and the daily email digest for the
users who asked for it (`User.tracking_digest`)."""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm import timezones
from crm.models import Company, Membership, Notification, User
from crm.services import ServiceError

logger = logging.getLogger(__name__)


def notification_add(
    *,
    company_id: int,
    user_id: int,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    subject_key: str,
) -> bool:
    """Notify the user, unless this subject already did: True when a notification was
    written. The caller is bound to the company."""
    try:
        with transaction.atomic():
            Notification.objects.create(
                company_id=company_id,
                user_id=user_id,
                kind=kind[:32],
                title=title[:300],
                body=body[:1000],
                url=url[:500],
                subject_key=subject_key[:128],
            )
    except IntegrityError:
        return False
    return True


# --- The bell and the notifications page --------------------------------------------------------

PAGE_SIZE = 30
# The bell says "99+" past this: counting stops there, so a forgotten pile costs no more than a
# short one (the partial index `notification_unread` holds the unread rows only).
BELL_CAP = 99


def notifications_unread_count(*, company_id: int, user_id: int) -> int:
    """How many of the user's notifications are unread, up to `BELL_CAP + 1`: one index scan,
    on every page with the shell."""
    unread = Notification.objects.for_company(company_id).filter(
        user_id=user_id, read_at__isnull=True
    )
    return unread.values("pk")[: BELL_CAP + 1].count()


@dataclass(frozen=True)
class NotificationPage:
    notifications: list[Notification]  # newest first
    more: bool  # an older page follows
    unread: int  # on every page (capped like the bell)


def notifications_page(*, company_id: int, user_id: int, page: int = 1) -> NotificationPage:
    """A page of the user's notifications in this company, newest first; nobody else's."""
    start = (max(page, 1) - 1) * PAGE_SIZE
    rows = list(
        Notification.objects.for_company(company_id)
        .filter(user_id=user_id)
        .order_by("-created_at", "-id")[start : start + PAGE_SIZE + 1]
    )
    return NotificationPage(
        notifications=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        unread=notifications_unread_count(company_id=company_id, user_id=user_id),
    )


def notification_read(*, company_id: int, user_id: int, notification_id: int) -> Notification:
    """Mark one of the user's notifications read (once: a second time keeps the first time).
    Another user's, or another company's, is "not there": the same refusal as a missing one."""
    found = (
        Notification.objects.for_company(company_id)
        .filter(pk=notification_id, user_id=user_id)
        .first()
    )
    if found is None:
        raise ServiceError(_("This notification is not there."), field="notification")
    if found.read_at is None:
        found.read_at = timezone.now()
        found.save(update_fields=["read_at"])
    return found


def notifications_read_all(*, company_id: int, user_id: int) -> int:
    """Mark every unread notification of the user in this company read: how many were."""
    return (
        Notification.objects.for_company(company_id)
        .filter(user_id=user_id, read_at__isnull=True)
        .update(read_at=timezone.now())
    )


# --- The daily email (E2's "optionally an email digest") ----------------------------------------

# The digest goes out in the user's morning, once a day: the beat runs hourly
# (`notifications-digest`) and each user's turn is the hour their clock shows DIGEST_HOUR.
DIGEST_HOUR = 8
# "The last day", with an hour to spare: a beat a little late one day loses nothing, and what
# was emailed (`emailed_at`) is never emailed again.
DIGEST_WINDOW = timedelta(hours=25)
DIGEST_MOST = 50  # listed in one email; the rest are counted and wait on the page


def _digest_due(user: User, now: datetime) -> bool:
    return now.astimezone(timezones.zone_of(user)).hour == DIGEST_HOUR


def notifications_digest_send(*, company: Company, now: datetime | None = None) -> int:
    """Email each user of the company who asked for it (`User.tracking_digest`, active here)
    and whose morning it is their unread notifications of the last day not yet emailed, and
    mark them emailed: how many emails went out. The caller is bound to the company.

    Twice in a row sends nothing the second time: the rows are locked (another run skips them)
    and marked in the same savepoint the email is sent in, so a failed send marks nothing and
    the next run tries again. A mail server that takes the email and then the database commit
    failing would send one twice; the other order could lose one, which is worse for a
    notice nobody asks for again."""
    now = now or timezone.now()
    active = Membership.objects.for_company(company).filter(
        user_id=OuterRef("user_id"), is_active=True
    )
    due = (
        Notification.objects.for_company(company)
        .filter(
            Exists(active),
            read_at__isnull=True,
            emailed_at__isnull=True,
            created_at__gte=now - DIGEST_WINDOW,
            created_at__lte=now,
            user__tracking_digest=True,
            user__is_active=True,
        )
        .select_related("user")
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("user_id", "-created_at", "-id")
    )
    by_user: dict[int, list[Notification]] = {}
    for notification in due:
        by_user.setdefault(notification.user_id, []).append(notification)
    sent = 0
    for rows in by_user.values():
        user = rows[0].user
        if not _digest_due(user, now):
            continue
        try:
            with transaction.atomic():
                Notification.objects.for_company(company).filter(
                    pk__in=[row.pk for row in rows]
                ).update(emailed_at=now)
                _digest_email(company=company, user=user, notifications=rows)
        except (smtplib.SMTPException, OSError):
            # One user's address or a mail server hiccup must not hold up the others'.
            logger.exception("The digest to user %s of company %s failed", user.pk, company.pk)
            continue
        sent += 1
    return sent


def _digest_email(*, company: Company, user: User, notifications: list[Notification]) -> None:
    site = settings.SITE_URL
    shown = notifications[:DIGEST_MOST]
    with translation.override(user.locale or None), timezone.override(timezones.zone_of(user)):
        context = {
            "user": user,
            "company_name": company.name,
            "count": len(notifications),
            "items": [
                {
                    "title": row.title,
                    "body": row.body,
                    "created_at": row.created_at,
                    # Through the bell's own link: following it from the email reads it too.
                    "link": site + reverse("notification_open", args=[row.pk]),
                }
                for row in shown
            ],
            "more": len(notifications) - len(shown),
            "page_link": site + reverse("notifications"),
            "preferences_link": site + reverse("settings_preferences"),
        }
        subject = " ".join(
            render_to_string("emails/notifications_digest_subject.txt", context).split()
        )
        text = render_to_string("emails/notifications_digest.txt", context)
        html = render_to_string("emails/notifications_digest.html", context)
    send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, [user.email], html_message=html)
