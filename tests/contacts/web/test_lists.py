"""The persons and organizations lists: search, filters, sort, paging, bulk actions, and the
"+ Person" / "+ Organization" dialogs."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from contacts.models import Organization, Person
from contacts.services import ContactPoint
from crm import services as crm_services
from crm import tenancy
from tests.conftest import Cast
from tests.contacts.conftest import make_organization, make_person

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _person(cast: Cast, pk: int) -> Person:
    with tenancy.bound(cast.company_a.pk):
        return Person.objects.for_company(cast.company_a).select_related("owner").get(pk=pk)


def _label(cast: Cast, name: str, kind: str = "person") -> Any:
    with tenancy.bound(cast.company_a.pk):
        return crm_services.label_create(company=cast.company_a, kind=kind, name=name)


def test_contacts_opens_the_persons_list_and_lights_up_the_navigation(
    cast: Cast, alice_client: Client
) -> None:
    organization = make_organization(cast, name="Initech")
    make_person(
        cast,
        name="Pat Person",
        org_id=organization.pk,
        emails=[ContactPoint(value="pat@initech.test")],
    )
    html = alice_client.get("/contacts").content.decode()
    assert '<a href="/contacts" aria-current="page">Contacts</a>' in html
    assert "Pat Person" in html
    assert "Initech" in html
    assert "pat@initech.test" in html
    assert alice_client.get("/contacts/persons").status_code == 200


def test_search_as_you_type_returns_only_the_results(cast: Cast, alice_client: Client) -> None:
    make_person(cast, name="Pat Person", emails=[ContactPoint(value="pat@initech.test")])
    make_person(cast, name="Quinn Other")
    response = alice_client.get(
        "/contacts/persons", {"q": "initech"}, headers={**HTMX, "HX-Target": "results"}
    )
    html = response.content.decode()
    assert "Pat Person" in html
    assert "Quinn Other" not in html
    assert "<h1>" not in html  # the fragment, not the page
    html = alice_client.get("/contacts/persons", {"q": "quinn"}).content.decode()
    assert "Quinn Other" in html
    assert "Pat Person" not in html


def test_filters_narrow_by_owner_label_and_organization(cast: Cast, alice_client: Client) -> None:
    vip = _label(cast, "VIP")
    organization = make_organization(cast, name="Initech")
    make_person(cast, name="Alpha Labelled", label_ids=[vip.pk])
    make_person(cast, cast.bob, name="Bravo Bobs")
    make_person(cast, name="Charlie Employed", org_id=organization.pk)

    def names(**params: str | int) -> set[str]:
        html = alice_client.get("/contacts/persons", params).content.decode()
        return {name for name in ("Alpha", "Bravo", "Charlie") if f"{name} " in html}

    assert names() == {"Alpha", "Bravo", "Charlie"}
    assert names(label=vip.pk) == {"Alpha"}
    assert names(owner=cast.bob.pk) == {"Bravo"}
    assert names(organization=organization.pk) == {"Charlie"}
    assert names(owner="junk") == {"Alpha", "Bravo", "Charlie"}  # a bad value is ignored


def test_columns_sort_and_pages_go_next_and_back(
    cast: Cast, alice_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("contacts.web.views.PAGE_SIZE", 2)
    for name in ("Ann", "Ben", "Cid"):
        make_person(cast, name=name)
    first = alice_client.get("/contacts/persons", {"sort": "name", "dir": "asc"}).content.decode()
    assert "Ann" in first
    assert "Ben" in first
    assert "Cid" not in first
    assert 'rel="next"' in first
    assert 'rel="prev"' not in first
    query: dict[str, str | int] = {"sort": "name", "dir": "asc", "page": 2}
    second = alice_client.get("/contacts/persons", query).content.decode()
    assert "Cid" in second
    assert "Ann" not in second
    assert 'rel="prev"' in second
    assert 'rel="next"' not in second
    descending = alice_client.get(
        "/contacts/persons", {"sort": "name", "dir": "desc"}
    ).content.decode()
    assert "Cid" in descending
    assert "Ann" not in descending
    assert 'aria-sort="descending"' in descending


def test_the_person_dialog_shows_field_errors_then_creates(
    cast: Cast, alice_client: Client
) -> None:
    dialog = alice_client.get("/contacts/persons/new", headers=HTMX).content.decode()
    assert dialog.lstrip().startswith("<dialog")
    refused = alice_client.post(
        "/contacts/persons/new", {"name": "", "email": "not-an-address"}, headers=HTMX
    )
    assert refused.status_code == 422
    assert "This field is required." in refused.content.decode()
    bad_email = alice_client.post(
        "/contacts/persons/new", {"name": "Pat", "email": "not-an-address"}, headers=HTMX
    )
    assert bad_email.status_code == 422
    created = alice_client.post(
        "/contacts/persons/new",
        {"name": "Pat Person", "email": "pat@initech.test", "job_title": "CTO"},
        headers=HTMX,
    )
    with tenancy.bound(cast.company_a.pk):
        person = Person.objects.for_company(cast.company_a).get(name="Pat Person")
        assert list(person.emails.values_list("value", "primary")) == [("pat@initech.test", True)]
    assert created["HX-Redirect"] == f"/contacts/persons/{person.pk}"
    assert person.job_title == "CTO"


def test_the_organization_dialog_creates_and_works_without_javascript(
    cast: Cast, alice_client: Client
) -> None:
    page = alice_client.get("/contacts/organizations/new").content.decode()
    assert "<h1>New organization</h1>" in page
    response = alice_client.post(
        "/contacts/organizations/new", {"name": "Initech", "address": "1 Main St"}
    )
    with tenancy.bound(cast.company_a.pk):
        organization = Organization.objects.for_company(cast.company_a).get(name="Initech")
    assert response.status_code == 302
    assert response["Location"] == f"/contacts/organizations/{organization.pk}"
    assert organization.address_value == "1 Main St"
    assert "Initech" in alice_client.get("/contacts/organizations").content.decode()


def test_bulk_assigns_an_owner_adds_a_label_and_deletes(cast: Cast, alice_client: Client) -> None:
    first, second = make_person(cast, name="One"), make_person(cast, name="Two")
    vip = _label(cast, "VIP")
    ids = [first.pk, second.pk]
    alice_client.post(
        "/contacts/persons/bulk", {"ids": ids, "action": "owner", "owner": cast.bob.pk}
    )
    assert {_person(cast, pk).owner_id for pk in ids} == {cast.bob.pk}
    alice_client.post("/contacts/persons/bulk", {"ids": ids, "action": "label", "label": vip.pk})
    with tenancy.bound(cast.company_a.pk):
        labelled = {pk: set(_person(cast, pk).labels.values_list("pk", flat=True)) for pk in ids}
    assert labelled == {pk: {vip.pk} for pk in ids}
    response = alice_client.post(
        "/contacts/persons/bulk", {"ids": ids, "action": "delete"}, follow=True
    )
    assert "2 items changed." in response.content.decode()
    assert all(_person(cast, pk).deleted_at is not None for pk in ids)


def test_bulk_on_a_hidden_person_changes_nothing(cast: Cast, bob_client: Client) -> None:
    secret = make_person(cast, name="Secret Sam", visible_to=1)
    shared = make_person(cast, name="Shared Sue")
    response = bob_client.post(
        "/contacts/persons/bulk", {"ids": [secret.pk, shared.pk], "action": "delete"}
    )
    assert response.status_code == 404
    assert _person(cast, shared.pk).deleted_at is None


def test_organizations_bulk_and_list(cast: Cast, alice_client: Client) -> None:
    organization = make_organization(cast, name="Initech")
    make_person(cast, name="Pat", org_id=organization.pk)
    html = alice_client.get("/contacts/organizations", {"q": "init"}).content.decode()
    assert "Initech" in html
    alice_client.post(
        "/contacts/organizations/bulk",
        {"ids": [organization.pk], "action": "owner", "owner": cast.bob.pk},
    )
    with tenancy.bound(cast.company_a.pk):
        organization.refresh_from_db()
    assert organization.owner_id == cast.bob.pk


def _many_persons(cast: Cast, count: int) -> None:
    organization = make_organization(cast, name="Initech")
    vip = _label(cast, "VIP")
    for number in range(count):
        make_person(
            cast,
            cast.bob if number % 2 else None,
            name=f"Person {number}",
            org_id=organization.pk,
            emails=[ContactPoint(value=f"p{number}@initech.test")],
            phones=[ContactPoint(value=f"+1555{number:04}")],
            label_ids=[vip.pk],
        )


@pytest.mark.parametrize("url", ["/contacts/persons", "/contacts/organizations"])
def test_list_pages_run_the_same_queries_for_5_or_30_rows(
    cast: Cast, bob_client: Client, django_assert_num_queries: Any, url: str
) -> None:
    _many_persons(cast, 5)
    bob_client.get(url)  # the session's first request does its own bookkeeping
    with CaptureQueriesContext(connection) as five:
        assert bob_client.get(url).status_code == 200
    _many_persons(cast, 25)
    with django_assert_num_queries(len(five.captured_queries)):
        html = bob_client.get(url).content.decode()
    if url == "/contacts/persons":
        assert html.count("@initech.test</a>") == 30  # each address, a mailto link
    # Session, user, membership, tenancy, the page, its 3 attachments, labels and owners.
    assert len(five.captured_queries) <= 20
