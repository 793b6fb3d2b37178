"""Signing in and out, password reset, and the user who belongs to no company."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from pytest_django import Settings

from crm import services, tenancy
from crm.models import User
from tests.conftest import PASSWORD, Cast

pytestmark = pytest.mark.django_db


def test_sign_in_with_email_and_password_lands_on_home_in_the_first_company(cast: Cast) -> None:
    client = Client()
    response = client.post(
        "/login", {"username": "alice@acme.test", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain == [("/", 302)]
    assert client.session["company_id"] == cast.company_a.pk
    assert "Welcome, Alice Adams" in response.content.decode()
    assert "Acme" in response.content.decode()


def test_sign_in_ignores_the_case_and_spaces_of_the_address(cast: Cast) -> None:
    client = Client()
    response = client.post("/login", {"username": "  Alice@ACME.test ", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["company_id"] == cast.company_a.pk


def test_a_wrong_password_says_so_and_signs_nobody_in(cast: Cast) -> None:
    client = Client()
    response = client.post("/login", {"username": "alice@acme.test", "password": "nope"})
    assert response.status_code == 200
    assert "The email address or the password is wrong." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_pages_send_a_signed_out_visitor_to_sign_in() -> None:
    response = Client().get("/settings/teams")
    assert response.status_code == 302
    assert response["Location"] == "/login?next=/settings/teams"


def test_the_sign_in_page_carries_the_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.get("/login")
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()
    assert client.post("/login", {"username": "x", "password": "y"}).status_code == 403


def test_sign_out_is_a_post_that_ends_the_session(cast: Cast, alice_client: Client) -> None:
    assert alice_client.get("/logout").status_code == 405
    response = alice_client.post("/logout")
    assert response.status_code == 302
    assert response["Location"] == "/login"
    assert alice_client.get("/").status_code == 302


def test_password_reset_mails_a_link_that_sets_a_new_password(
    cast: Cast, mailoutbox: list[mail.EmailMessage], settings: Settings
) -> None:
    # The link points at SITE_URL, not at whatever Host header the request carried.
    settings.SITE_URL = "https://crm.example.test"
    client = Client()
    response = client.post("/password-reset", {"email": "bob@acme.test"}, follow=True)
    assert response.redirect_chain == [("/password-reset/sent", 302)]
    assert "Check your email" in response.content.decode()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["bob@acme.test"]
    match = re.search(
        r"https://crm\.example\.test(/password-reset/\S+/\S+)", str(mailoutbox[0].body)
    )
    assert match is not None, mailoutbox[0].body

    form_page = client.get(match.group(1), follow=True)
    assert "Choose a new password" in form_page.content.decode()
    new_password = "a fresh long passphrase 42"
    mismatch = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": "something else entirely"},
    )
    assert "The two password fields" in mismatch.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": new_password},
        follow=True,
    )
    assert done.redirect_chain[-1][0] == "/password-reset/done"
    assert "Password changed" in done.content.decode()

    signed_in = Client()
    assert (
        signed_in.post("/login", {"username": "bob@acme.test", "password": new_password})[
            "Location"
        ]
        == "/"
    )
    assert (
        Client().post("/login", {"username": "bob@acme.test", "password": PASSWORD}).status_code
        == 200
    )
    # The link works once.
    reused = client.get(match.group(1), follow=True)
    assert "This link no longer works" in reused.content.decode()


def test_password_reset_of_an_unknown_address_mails_nothing_and_says_the_same(
    cast: Cast, mailoutbox: list[mail.EmailMessage]
) -> None:
    response = Client().post("/password-reset", {"email": "nobody@acme.test"}, follow=True)
    assert "Check your email" in response.content.decode()
    assert mailoutbox == []


def test_a_user_with_no_active_company_is_told_so_not_crashed(cast: Cast) -> None:
    User.objects.create_user(email="dora@nowhere.test", password=PASSWORD)
    client = Client()
    response = client.post(
        "/login", {"username": "dora@nowhere.test", "password": PASSWORD}, follow=True
    )
    assert response.status_code == 403
    assert "You are not in any company" in response.content.decode()
    assert "company_id" not in client.session


def test_a_member_deactivated_everywhere_is_told_so_on_sign_in(cast: Cast) -> None:
    with tenancy.bound(cast.company_a.pk):
        membership = services.membership_add(company=cast.company_a, user=cast.bob, role="regular")
        services.membership_set_active(company=cast.company_a, membership=membership, active=False)
    response = Client().post(
        "/login", {"username": "bob@acme.test", "password": PASSWORD}, follow=True
    )
    assert response.status_code == 403
    assert "not an active member of any company" in response.content.decode()
