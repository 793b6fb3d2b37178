"""Notifications (the bell; E2 is the first to write them): one row per user and subject,
written once however often the event behind it happens (`subject_key`)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from crm.models import Notification


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
