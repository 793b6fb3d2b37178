"""Item access on the contacts pages: Bob (regular, Alice's team) never sees Alice's owner-only
person, not in the list, a search, the autocomplete, the detail page or its endpoints; Carol
(another company) gets 404 on everything of Acme's."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import Cast
from tests.contacts.conftest import make_organization, make_person

pytestmark = pytest.mark.django_db


def test_bob_never_sees_alices_owner_only_person(cast: Cast, bob_client: Client) -> None:
    secret = make_person(cast, name="Secret Sam", visible_to=1)
    make_person(cast, name="Shared Sue")
    listed = bob_client.get("/contacts/persons").content.decode()
    assert "Shared Sue" in listed
    assert "Secret Sam" not in listed
    searched = bob_client.get("/contacts/persons", {"q": "sam"}).content.decode()
    assert "Secret Sam" not in searched
    options = bob_client.get("/contacts/persons/search", {"q": "secret"}).content.decode()
    assert "Secret Sam" not in options
    assert bob_client.get(f"/contacts/persons/{secret.pk}").status_code == 403
    for path in ("fields/name?edit=1", "emails", "labels?edit=1", "merge"):
        assert bob_client.get(f"/contacts/persons/{secret.pk}/{path}").status_code == 403
    assert bob_client.post(f"/contacts/persons/{secret.pk}/delete").status_code == 403


def test_bob_cannot_merge_a_hidden_person_into_his_own(cast: Cast, bob_client: Client) -> None:
    secret = make_person(cast, name="Secret Sam", visible_to=1)
    mine = make_person(cast, cast.bob, name="Bob's Sam")
    response = bob_client.post(f"/contacts/persons/{mine.pk}/merge", {"merged_id": secret.pk})
    assert response.status_code == 403


def test_bob_never_sees_alices_owner_only_organization(cast: Cast, bob_client: Client) -> None:
    secret = make_organization(cast, name="Hidden Corp", visible_to=1)
    make_organization(cast, name="Open Corp")
    listed = bob_client.get("/contacts/organizations").content.decode()
    assert "Open Corp" in listed
    assert "Hidden Corp" not in listed
    options = bob_client.get("/contacts/organizations/search", {"q": "corp"}).content.decode()
    assert "Open Corp" in options
    assert "Hidden Corp" not in options
    assert bob_client.get(f"/contacts/organizations/{secret.pk}").status_code == 403
    assert bob_client.get(f"/contacts/organizations/{secret.pk}/persons/new").status_code == 403


def test_carol_gets_404_on_acmes_person_and_organization(cast: Cast, carol_client: Client) -> None:
    person = make_person(cast, name="Pat Person")
    organization = make_organization(cast, name="Initech")
    for url in (
        f"/contacts/persons/{person.pk}",
        f"/contacts/persons/{person.pk}/fields/name?edit=1",
        f"/contacts/persons/{person.pk}/emails",
        f"/contacts/persons/{person.pk}/merge",
        f"/contacts/organizations/{organization.pk}",
        f"/contacts/organizations/{organization.pk}/persons/new",
    ):
        assert carol_client.get(url).status_code == 404, url
    assert carol_client.post(f"/contacts/persons/{person.pk}/delete").status_code == 404
    assert carol_client.post(f"/contacts/persons/{person.pk}/restore").status_code == 404
    assert "Pat Person" not in carol_client.get("/contacts/persons").content.decode()
    assert "Pat" not in carol_client.get("/contacts/persons/search", {"q": "pat"}).content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(client: Client, cast: Cast) -> None:
    response = client.get("/contacts/persons")
    assert response.status_code == 302
    assert response["Location"].startswith("/login")
