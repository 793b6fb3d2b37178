"""Celery tasks of the platform. Each is an interface like a view: ids in, one service out.

Tenant tasks take `company_id` and run on `TenantTask`, which opens a transaction bound to that
company; enqueue them with `transaction.on_commit` so they never run before their rows exist."""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from celery import Task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from crm import notifications, selectors, services, tenancy, webhooks
from crm.celery_app import TenantTask, app

logger = logging.getLogger(__name__)


@app.task(
    base=TenantTask,
    # A mail server that is down or slow is worth waiting for; the link is valid for days.
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    max_retries=8,
)
def invitation_send(*, company_id: int, invitation_id: int, token: str) -> bool:
    """Email the one-time invitation link. The token lives only in this message and the email:
    the database keeps its digest. Returns False when the invitation was revoked or accepted
    before the email went out."""
    invitation = selectors.invitation_get_pending(company=company_id, invitation_id=invitation_id)
    if invitation is None:
        return False
    context = {
        "invitation": invitation,
        "company_name": invitation.company.name,
        "inviter": invitation.invited_by.display_name if invitation.invited_by else "",
        "link": settings.SITE_URL + reverse("invitation_accept", kwargs={"token": token}),
        "days": settings.CRM_INVITATION_DAYS,
    }
    subject = render_to_string("emails/invitation_subject.txt", context)
    body = render_to_string("emails/invitation.txt", context)
    send_mail(" ".join(subject.split()), body, None, [invitation.email])
    return True


@app.task
def invitations_expire() -> int:
    """Beat, hourly: revoke expired invitations, visiting each company in its own bound
    transaction. Returns how many were revoked."""
    expired = 0
    for company_id in tenancy.company_ids():
        try:
            with tenancy.request_scope(), tenancy.bound(company_id):
                company = selectors.company_get(company_id=company_id)
                if company is not None:
                    expired += services.invitations_expire(company=company)
        except Exception:
            # One company's failure must not keep the others' links alive; the next run retries.
            logger.exception("Expiring invitations failed for company %s", company_id)
    return expired


# --- Webhooks (crm/webhooks.py) ----------------------------------------------------------------


@app.task(bind=True, max_retries=None, acks_late=True, name=webhooks.DELIVER_TASK)
def webhook_deliver(self: Task[Any, Any], *, company_id: int, delivery_id: int) -> str:
    """POST one webhook delivery; the retry policy is `webhooks.retry_countdown`.

    Bound to its company like a TenantTask, but by hand: the attempt must be committed before
    the retry is raised, and TenantTask's transaction spans the whole task, so raising Retry
    inside it would roll the attempt's record back. Run eagerly (apply(), tests), Celery runs
    the retry inline without waiting the countdown."""
    if not isinstance(company_id, int):
        raise tenancy.TenancyError(f"Task {self.name} needs an integer company_id keyword.")
    with tenancy.request_scope(), tenancy.bound(company_id):
        outcome = webhooks.delivery_attempt(company=company_id, delivery_id=delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@app.task
def webhook_deliveries_resume() -> int:
    """Beat, every few minutes: enqueue again the pending webhook deliveries whose task was lost
    (broker or worker down), visiting each company in its own bound transaction."""
    resumed = 0
    for company_id in tenancy.company_ids():
        try:
            with tenancy.request_scope(), tenancy.bound(company_id):
                resumed += webhooks.deliveries_resume(company=company_id)
        except Exception:
            # One company's failure must not hold up the others' deliveries.
            logger.exception("Resuming webhook deliveries failed for company %s", company_id)
    return resumed


# --- Notifications (crm/notifications.py) ------------------------------------------------------


@app.task
def notifications_digest() -> int:
    """Beat, hourly: the daily email of opens and clicks (E2) to the users who asked for it,
    each in their own morning, visiting each company in its own bound transaction. Returns how
    many emails went out."""
    sent = 0
    for company_id in tenancy.company_ids():
        try:
            with tenancy.request_scope(), tenancy.bound(company_id):
                company = selectors.company_get(company_id=company_id)
                if company is not None:
                    sent += notifications.notifications_digest_send(company=company)
        except Exception:
            # One company's failure must not keep the others' digests; the next hour retries.
            logger.exception("The notifications digest failed for company %s", company_id)
    return sent
