"""Inviting users: the invite form, the email sent by a task after commit, the accept page,
and the beat task that expires old invitations."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks as CaptureOnCommit

from crm import services, tasks, tenancy
from crm.models import Invitation, Membership, Role, User
from tests.conftest import PASSWORD, Cast

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

NEW_PASSWORD = "a long and unusual passphrase"


def _invite(client: Client, capture: CaptureOnCommit, email: str, role: str = Role.REGULAR) -> str:
    """Invite through the page; return the path of the emailed link."""
    with capture(execute=True):
        response = client.post("/settings/users/invite", {"email": email, "role": role})
    assert response.status_code == 302, response.content.decode()
    message = mail.outbox[-1]
    assert message.to == [email]
    match = re.search(re.escape(settings.SITE_URL) + r"(/invite/[\w-]+)", str(message.body))
    assert match is not None, message.body
    return match.group(1)


def _membership(company_id: int, email: str) -> Membership | None:
    with tenancy.bound(company_id):
        return Membership.objects.for_company(company_id).filter(user__email=email).first()


def test_invite_email_and_accept_as_a_new_user(
    cast: Cast,
    alice_client: Client,
    django_capture_on_commit_callbacks: CaptureOnCommit,
    mailoutbox: list[mail.EmailMessage],
) -> None:
    link = _invite(alice_client, django_capture_on_commit_callbacks, "dave@acme.test", "admin")
    assert "Alice Adams invites you to join Acme" in mailoutbox[0].body
    assert "Acme" in mailoutbox[0].subject
    pending = alice_client.get("/settings/users").content.decode()
    assert "dave@acme.test" in pending

    browser = Client()
    page = browser.get(link).content.decode()
    assert "Join Acme" in page
    assert "dave@acme.test" in page
    response = browser.post(
        link,
        {"name": "Dave Dunn", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
        follow=True,
    )
    assert response.redirect_chain == [("/", 302)]
    assert "Welcome to Acme!" in response.content.decode()
    assert browser.session["company_id"] == cast.company_a.pk
    membership = _membership(cast.company_a.pk, "dave@acme.test")
    assert membership is not None
    assert membership.role == Role.ADMIN
    assert membership.is_active
    assert User.objects.get(email="dave@acme.test").name == "Dave Dunn"

    # The link works once.
    again = Client().get(link)
    assert again.status_code == 410
    assert "This invitation link no longer works" in again.content.decode()
    # Dave signs in with the password he chose.
    assert (
        Client().post("/login", {"username": "dave@acme.test", "password": NEW_PASSWORD})[
            "Location"
        ]
        == "/"
    )


def test_the_join_form_shows_field_errors(
    cast: Cast, alice_client: Client, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    link = _invite(alice_client, django_capture_on_commit_callbacks, "dave@acme.test")
    browser = Client()
    mismatch = browser.post(
        link, {"name": "Dave", "password": NEW_PASSWORD, "password_again": "other"}
    ).content.decode()
    assert "The two passwords differ." in mismatch
    weak = browser.post(
        link, {"name": "Dave", "password": "12345678", "password_again": "12345678"}
    ).content.decode()
    assert "This password is too common." in weak
    assert 'id="id_password_error"' in weak
    assert _membership(cast.company_a.pk, "dave@acme.test") is None


def test_an_expired_link_says_so(
    cast: Cast, alice_client: Client, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    link = _invite(alice_client, django_capture_on_commit_callbacks, "dave@acme.test")
    with tenancy.bound(cast.company_a.pk):
        Invitation.objects.for_company(cast.company_a).update(
            expires_at=timezone.now() - timedelta(minutes=1)
        )
    response = Client().get(link)
    assert response.status_code == 410
    assert "It has expired, was revoked, or was used already" in response.content.decode()
    assert Client().get("/invite/not-a-real-token").status_code == 410


def test_a_signed_in_user_with_the_invited_address_accepts_in_one_click(
    cast: Cast,
    alice_client: Client,
    carol_client: Client,
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    link = _invite(alice_client, django_capture_on_commit_callbacks, "carol@globex.test")
    page = carol_client.get(link).content.decode()
    assert "Accept and join" in page
    assert "password" not in page
    response = carol_client.post(link, follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert carol_client.session["company_id"] == cast.company_a.pk
    assert "Welcome to Acme!" in response.content.decode()
    membership = _membership(cast.company_a.pk, "carol@globex.test")
    assert membership is not None
    assert membership.role == Role.REGULAR
    # Carol is in both companies now: the switcher appears.
    assert 'action="/switch-company"' in response.content.decode()


def test_someone_else_signed_in_cannot_use_the_link(
    cast: Cast,
    alice_client: Client,
    carol_client: Client,
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    link = _invite(alice_client, django_capture_on_commit_callbacks, "dave@acme.test")
    response = carol_client.post(link)
    assert response.status_code == 403
    assert "This invitation is for dave@acme.test" in response.content.decode()
    assert _membership(cast.company_a.pk, "carol@globex.test") is None
    assert Client().get(link).status_code == 200  # still usable by Dave


def test_an_existing_user_signed_out_is_asked_to_sign_in_first(
    cast: Cast, alice_client: Client, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    link = _invite(alice_client, django_capture_on_commit_callbacks, "carol@globex.test")
    browser = Client()
    html = browser.get(link).content.decode()
    assert "has an account already" in html
    assert f'href="/login?next={link}"' in html
    # Signing in returns to the link, which then accepts in one click.
    response = browser.post(
        f"/login?next={link}", {"username": "carol@globex.test", "password": PASSWORD, "next": link}
    )
    assert response["Location"] == link
    assert browser.post(link)["Location"] == "/"
    assert _membership(cast.company_a.pk, "carol@globex.test") is not None


def test_inviting_shows_field_errors(cast: Cast, alice_client: Client) -> None:
    html = alice_client.post(
        "/settings/users/invite", {"email": "not an address", "role": "admin"}
    ).content.decode()
    assert "Enter a valid email address." in html
    html = alice_client.post(
        "/settings/users/invite", {"email": "bob@acme.test", "role": "regular"}
    ).content.decode()
    assert "bob@acme.test is already a user here." in html
    with tenancy.bound(cast.company_a.pk):
        assert not Invitation.objects.for_company(cast.company_a).exists()


def test_no_email_goes_out_for_an_invitation_revoked_before_sending(
    cast: Cast, mailoutbox: list[mail.EmailMessage]
) -> None:
    with tenancy.bound(cast.company_a.pk):
        issued = services.invitation_create(
            company=cast.company_a, email="eve@acme.test", role="regular", invited_by=cast.alice
        )
        services.invitation_revoke(company=cast.company_a, invitation=issued.invitation)
    sent = tasks.invitation_send.apply(
        kwargs={
            "company_id": cast.company_a.pk,
            "invitation_id": issued.invitation.pk,
            "token": issued.token,
        }
    ).get()
    assert sent is False
    assert mailoutbox == []


def test_the_send_task_cannot_reach_another_company_invitation(
    cast: Cast, mailoutbox: list[mail.EmailMessage]
) -> None:
    with tenancy.bound(cast.company_a.pk):
        issued = services.invitation_create(
            company=cast.company_a, email="eve@acme.test", role="regular", invited_by=cast.alice
        )
    sent = tasks.invitation_send.apply(
        kwargs={
            "company_id": cast.company_b.pk,
            "invitation_id": issued.invitation.pk,
            "token": issued.token,
        }
    ).get()
    assert sent is False
    assert mailoutbox == []


def test_the_beat_task_expires_old_invitations_in_every_company(cast: Cast) -> None:
    past = timezone.now() - timedelta(hours=1)
    with tenancy.bound(cast.company_a.pk):
        old_a = services.invitation_create(
            company=cast.company_a, email="old@acme.test", role="regular", invited_by=cast.alice
        )
        fresh_a = services.invitation_create(
            company=cast.company_a, email="new@acme.test", role="regular", invited_by=cast.alice
        )
        Invitation.objects.for_company(cast.company_a).filter(pk=old_a.invitation.pk).update(
            expires_at=past
        )
    with tenancy.bound(cast.company_b.pk):
        old_b = services.invitation_create(
            company=cast.company_b, email="old@globex.test", role="regular", invited_by=cast.carol
        )
        Invitation.objects.for_company(cast.company_b).update(expires_at=past)

    assert tasks.invitations_expire.apply().get() == 2

    for company, invitation, revoked in (
        (cast.company_a, old_a.invitation, True),
        (cast.company_a, fresh_a.invitation, False),
        (cast.company_b, old_b.invitation, True),
    ):
        with tenancy.bound(company.pk):
            row = Invitation.objects.for_company(company).get(pk=invitation.pk)
            assert (row.revoked_at is not None) is revoked
