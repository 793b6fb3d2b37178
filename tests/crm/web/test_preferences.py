"""Settings → Preferences: the user's time zone (shown times, "send later") and what email
links open (B8), saved for the user in every company; the preference on every page's <body>
for static/js/mailto.js; persons' addresses rendered as mailto links."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import services, tenancy
from crm.models import User
from crm.services import ServiceError
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

BODY = re.compile(r"<body\b[^>]*>")


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


def _selected_zone(html: str) -> str:
    found = re.search(r'<option value="([^"]+)"[^>]*\bselected\b', html)
    assert found, "a time zone is selected"
    return found.group(1)


def test_the_page_shows_utc_and_the_composer_by_default(alice_client: Client) -> None:
    response = alice_client.get("/settings/preferences")

    assert response.status_code == 200
    html = response.content.decode()
    assert _selected_zone(html) == "UTC"
    assert re.search(r'value="composer"[^>]*checked', html)
    assert "Open my computer&#x27;s mail app" in html or "Open my computer's mail app" in html
    # Grouped by region, places labelled first, with their offset now.
    assert '<optgroup label="Europe">' in html
    assert re.search(r'<option value="Asia/Kolkata">Kolkata \(UTC\+05:30\)</option>', html)
    assert '<option value="Etc/GMT+5"' not in html  # legacy aliases are not offered


def test_the_page_is_linked_from_the_settings_navigation_and_the_user_menu(
    bob_client: Client,
) -> None:
    html = bob_client.get("/settings/api-token").content.decode()
    assert html.count('href="/settings/preferences"') == 2

    page = bob_client.get("/settings/preferences").content.decode()
    assert re.search(r'href="/settings/preferences" aria-current="page"', page)


def test_saving_changes_the_users_time_zone_and_email_links(
    cast: Cast, alice_client: Client
) -> None:
    response = alice_client.post(
        "/settings/preferences",
        {"timezone": "America/Argentina/Buenos_Aires", "email_links": "mail_app"},
        follow=True,
    )

    assert response.redirect_chain == [("/settings/preferences", 302)]
    html = response.content.decode()
    assert "Your preferences are saved." in html
    assert _selected_zone(html) == "America/Argentina/Buenos_Aires"
    assert re.search(r'value="mail_app"[^>]*checked', html)
    alice = _fresh(cast.alice)
    assert (alice.timezone, alice.email_links) == ("America/Argentina/Buenos_Aires", "mail_app")
    # The API's users/me carries the zone (Pipedrive's timezone_name and offset).
    me = Client().get("/api/v1/users/me", headers={"x-api-token": cast.alice_token}).json()["data"]
    assert (me["timezone_name"], me["timezone_offset"]) == (
        "America/Argentina/Buenos_Aires",
        "-03:00",
    )


def test_an_unknown_time_zone_or_choice_is_refused_and_nothing_changes(
    cast: Cast, alice_client: Client
) -> None:
    response = alice_client.post(
        "/settings/preferences", {"timezone": "Mars/Olympus_Mons", "email_links": "pigeon"}
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "Select a valid choice. Mars/Olympus_Mons is not one of the available choices." in html
    assert "Select a valid choice. pigeon is not one of the available choices." in html
    alice = _fresh(cast.alice)
    assert (alice.timezone, alice.email_links) == ("UTC", "composer")


def test_the_service_checks_the_zone_against_the_tz_database(cast: Cast) -> None:
    with pytest.raises(ServiceError) as refused:
        services.user_preferences_update(
            user=cast.alice, timezone="Europe/Atlantis", email_links="composer"
        )
    assert refused.value.field == "timezone"
    with pytest.raises(ServiceError) as refused:
        services.user_preferences_update(user=cast.alice, timezone="UTC", email_links="fax")
    assert refused.value.field == "email_links"

    # Any name the tz database knows is valid, legacy aliases too.
    services.user_preferences_update(
        user=cast.alice, timezone=" US/Eastern ", email_links="mail_app"
    )
    assert _fresh(cast.alice).timezone == "US/Eastern"


def test_a_legacy_zone_chosen_before_is_kept_when_the_form_is_saved(
    cast: Cast, alice_client: Client
) -> None:
    services.user_preferences_update(user=cast.alice, timezone="US/Eastern", email_links="composer")

    html = alice_client.get("/settings/preferences").content.decode()
    assert _selected_zone(html) == "US/Eastern"
    response = alice_client.post(
        "/settings/preferences", {"timezone": "US/Eastern", "email_links": "mail_app"}
    )
    assert response.status_code == 302
    assert (_fresh(cast.alice).timezone, _fresh(cast.alice).email_links) == (
        "US/Eastern",
        "mail_app",
    )


def test_preferences_are_the_users_own_in_every_company(
    cast: Cast, alice_client: Client, bob_client: Client
) -> None:
    alice_client.post(
        "/settings/preferences", {"timezone": "Asia/Tokyo", "email_links": "mail_app"}
    )

    assert _fresh(cast.bob).timezone == "UTC"
    assert _selected_zone(bob_client.get("/settings/preferences").content.decode()) == "UTC"


def test_signed_out_visitors_are_sent_to_sign_in(client: Client) -> None:
    response = client.get("/settings/preferences")
    assert response.status_code == 302
    assert response["Location"].startswith("/login")


# --- Email links (B8) ---------------------------------------------------------------------------


def test_every_page_carries_the_users_email_links_choice_on_its_body(
    cast: Cast, alice_client: Client, client: Client
) -> None:
    body = BODY.search(alice_client.get("/").content.decode())
    assert body is not None
    assert 'data-email-links="composer"' in body.group(0)
    assert 'data-compose-url="/inbox/compose"' in body.group(0)

    services.user_preferences_update(user=cast.alice, timezone="UTC", email_links="mail_app")
    body = BODY.search(alice_client.get("/contacts/persons").content.decode())
    assert body is not None
    assert 'data-email-links="mail_app"' in body.group(0)

    signed_out = BODY.search(client.get("/login").content.decode())
    assert signed_out is not None
    assert "data-email-links" not in signed_out.group(0)


def test_persons_addresses_are_mailto_links_on_their_page_the_list_and_their_organization(
    cast: Cast, alice_client: Client
) -> None:
    company = cast.company_a
    membership = cast.membership(cast.alice, company)
    with tenancy.bound(company.pk, user_id=cast.alice.pk):
        organization = contact_services.organization_create(
            company=company, membership=membership, fields={"name": "Initech"}
        )
        person = contact_services.person_create(
            company=company,
            membership=membership,
            fields={
                "name": "Peter Gibbons",
                "org_id": organization.pk,
                "emails": [ContactPoint(value="peter+tps@initech.test", primary=True)],
            },
        )
    link = '<a href="mailto:peter+tps@initech.test">peter+tps@initech.test</a>'

    assert link in alice_client.get(f"/contacts/persons/{person.pk}").content.decode()
    assert link in alice_client.get("/contacts/persons").content.decode()
    organization_page = alice_client.get(f"/contacts/organizations/{organization.pk}")
    assert 'href="mailto:peter+tps@initech.test"' in organization_page.content.decode()


# --- Email tracking (E2, E3) -------------------------------------------------------------------


def _checked(html: str, name: str) -> bool:
    found = re.search(rf'<input type="checkbox" name="{name}"[^>]*>', html)
    assert found, f"the {name} checkbox is on the page"
    return " checked" in found.group(0)


def test_tracking_preferences_start_on_for_opens_and_links_and_off_for_the_digest(
    alice_client: Client,
) -> None:
    html = alice_client.get("/settings/preferences").content.decode()

    assert "Track opens by default" in html
    assert "Track link clicks by default" in html
    assert "Email me a daily digest of opens and clicks" in html
    assert "An open is a hint, not proof" in html
    assert _checked(html, "track_opens_default")
    assert _checked(html, "track_links_default")
    assert not _checked(html, "tracking_digest")
    # Each box is described by its help text.
    assert re.search(
        r'name="tracking_digest"[^>]*aria-describedby="id_tracking_digest_helptext"', html
    )
    assert 'id="id_tracking_digest_helptext"' in html


def test_saving_tracking_preferences(cast: Cast, alice_client: Client, bob_client: Client) -> None:
    response = alice_client.post(
        "/settings/preferences",
        {
            "timezone": "UTC",
            "email_links": "composer",
            "track_links_default": "on",
            "tracking_digest": "on",
        },
        follow=True,
    )

    assert response.redirect_chain == [("/settings/preferences", 302)]
    html = response.content.decode()
    assert not _checked(html, "track_opens_default")
    assert _checked(html, "track_links_default")
    assert _checked(html, "tracking_digest")
    alice = _fresh(cast.alice)
    assert (alice.track_opens_default, alice.track_links_default, alice.tracking_digest) == (
        False,
        True,
        True,
    )
    bob = _fresh(cast.bob)  # Alice's choice is hers
    assert (bob.track_opens_default, bob.track_links_default, bob.tracking_digest) == (
        True,
        True,
        False,
    )


def test_the_service_leaves_tracking_preferences_it_is_not_given(cast: Cast) -> None:
    services.user_preferences_update(
        user=cast.alice, timezone="UTC", email_links="composer", tracking_digest=True
    )
    services.user_preferences_update(user=cast.alice, timezone="Asia/Tokyo", email_links="composer")

    alice = _fresh(cast.alice)
    assert (alice.timezone, alice.tracking_digest, alice.track_opens_default) == (
        "Asia/Tokyo",
        True,
        True,
    )
