"""The person and organization detail pages: editing in place, emails and phones, labels,
delete and undo, merge, people of an organization, related organizations, the Email tab."""

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
        return Person.objects.for_company(cast.company_a).get(pk=pk)


def _emails(cast: Cast, pk: int) -> list[tuple[str, bool]]:
    with tenancy.bound(cast.company_a.pk):
        return list(_person(cast, pk).emails.values_list("value", "primary"))


def test_the_person_page_shows_fields_emails_and_history(cast: Cast, alice_client: Client) -> None:
    organization = make_organization(cast, name="Initech")
    person = make_person(
        cast,
        name="Pat Person",
        job_title="CTO",
        org_id=organization.pk,
        emails=[ContactPoint(value="pat@initech.test")],
        phones=[ContactPoint(value="+15550100")],
    )
    html = alice_client.get(f"/contacts/persons/{person.pk}").content.decode()
    assert "<h1>Pat Person</h1>" in html
    for text in ("CTO", "Initech", "pat@initech.test", "+15550100", "Change history", "Alice"):
        assert text in html
    assert f'hx-get="/contacts/persons/{person.pk}/fields/job_title?edit=1"' in html


def test_fields_are_edited_in_place(cast: Cast, alice_client: Client) -> None:
    organization = make_organization(cast, name="Initech")
    person = make_person(cast, name="Pat Person")
    url = f"/contacts/persons/{person.pk}/fields"
    editor = alice_client.get(f"{url}/job_title?edit=1", headers=HTMX).content.decode()
    assert 'name="value"' in editor
    assert "<form" in editor
    shown = alice_client.post(f"{url}/job_title", {"value": "CTO"}, headers=HTMX).content.decode()
    assert "CTO" in shown
    assert "<form" not in shown
    alice_client.post(f"{url}/organization", {"value": organization.pk}, headers=HTMX)
    alice_client.post(f"{url}/owner", {"value": cast.bob.pk}, headers=HTMX)
    alice_client.post(f"{url}/visible_to", {"value": 1}, headers=HTMX)
    alice_client.post(f"{url}/notes", {"value": "Likes tea"}, headers=HTMX)
    alice_client.post(f"{url}/postal_address", {"value": "1 Main St"}, headers=HTMX)
    saved = _person(cast, person.pk)
    assert (saved.job_title, saved.organization_id, saved.owner_id) == (
        "CTO",
        organization.pk,
        cast.bob.pk,
    )
    assert (saved.visible_to, saved.notes, saved.postal_address) == (1, "Likes tea", "1 Main St")
    refused = alice_client.post(f"{url}/name", {"value": ""}, headers=HTMX)
    assert refused.status_code == 422
    assert "This field is required." in refused.content.decode()
    assert alice_client.get(f"{url}/id?edit=1").status_code == 404


def test_emails_are_added_labelled_made_primary_and_removed(
    cast: Cast, alice_client: Client
) -> None:
    person = make_person(cast, emails=[ContactPoint(value="pat@work.test")])
    url = f"/contacts/persons/{person.pk}/emails"
    assert 'name="primary"' in alice_client.get(f"{url}?edit=1").content.decode()
    # Add a second address (the editor's last, empty row) and make it the primary one.
    shown = alice_client.post(
        url,
        {"value": ["pat@work.test", "pat@home.test"], "label": ["work", "home"], "primary": "1"},
        headers=HTMX,
    ).content.decode()
    assert "pat@home.test" in shown
    assert _emails(cast, person.pk) == [("pat@work.test", False), ("pat@home.test", True)]
    alice_client.post(
        url,
        {
            "value": ["pat@work.test", "pat@home.test", ""],
            "label": ["work", "home", "work"],
            "primary": "1",
            "remove": "0",
        },
    )
    assert _emails(cast, person.pk) == [("pat@home.test", True)]
    refused = alice_client.post(url, {"value": ["nope"], "label": ["work"]}, headers=HTMX)
    assert refused.status_code == 422
    assert _emails(cast, person.pk) == [("pat@home.test", True)]


def test_phones_are_added(cast: Cast, alice_client: Client) -> None:
    person = make_person(cast)
    alice_client.post(
        f"/contacts/persons/{person.pk}/phones", {"value": ["+15550100"], "label": ["mobile"]}
    )
    with tenancy.bound(cast.company_a.pk):
        assert list(_person(cast, person.pk).phones.values_list("value", "label", "primary")) == [
            ("+15550100", "mobile", True)
        ]


def test_labels_are_picked_or_made_inline_with_a_colour(cast: Cast, alice_client: Client) -> None:
    person = make_person(cast)
    with tenancy.bound(cast.company_a.pk):
        vip = crm_services.label_create(company=cast.company_a, kind="person", name="VIP")
    url = f"/contacts/persons/{person.pk}/labels"
    editor = alice_client.get(f"{url}?edit=1", headers=HTMX).content.decode()
    assert "VIP" in editor
    assert 'name="new_color"' in editor
    shown = alice_client.post(
        url, {"label_ids": [vip.pk], "new_label": "Hot lead", "new_color": "red"}, headers=HTMX
    ).content.decode()
    assert "label-red" in shown
    assert "Hot lead" in shown
    assert "VIP" in shown
    with tenancy.bound(cast.company_a.pk):
        labels = set(_person(cast, person.pk).labels.values_list("name", "color"))
    assert labels == {("VIP", "gray"), ("Hot lead", "red")}


def test_delete_then_undo_restores(cast: Cast, alice_client: Client) -> None:
    person = make_person(cast, name="Pat Person")
    response = alice_client.post(f"/contacts/persons/{person.pk}/delete", follow=True)
    html = response.content.decode()
    assert "Person deleted." in html
    assert f'action="/contacts/persons/{person.pk}/restore"' in html
    assert alice_client.get(f"/contacts/persons/{person.pk}").status_code == 404
    response = alice_client.post(f"/contacts/persons/{person.pk}/restore", follow=True)
    assert "Pat Person restored." in response.content.decode()
    assert _person(cast, person.pk).deleted_at is None


def test_merge_picks_the_other_person_by_search(cast: Cast, alice_client: Client) -> None:
    keep = make_person(cast, name="Pat Person", emails=[ContactPoint(value="pat@a.test")])
    other = make_person(cast, name="Patricia P", emails=[ContactPoint(value="pat@b.test")])
    search: dict[str, str | int] = {"q": "pat", "exclude": keep.pk}
    options = alice_client.get("/contacts/persons/search", search).content.decode()
    assert f'value="{other.pk}"' in options
    assert f'value="{keep.pk}"' not in options
    assert (
        "<dialog"
        in alice_client.get(f"/contacts/persons/{keep.pk}/merge", headers=HTMX).content.decode()
    )
    response = alice_client.post(
        f"/contacts/persons/{keep.pk}/merge", {"merged_id": other.pk}, headers=HTMX
    )
    assert response["HX-Redirect"] == f"/contacts/persons/{keep.pk}"
    assert _person(cast, other.pk).merged_into_id == keep.pk
    assert {value for value, _ in _emails(cast, keep.pk)} == {"pat@a.test", "pat@b.test"}


def test_the_email_tab_loads_the_inbox_fragment_and_its_empty_state(
    cast: Cast, alice_client: Client
) -> None:
    person = make_person(cast)
    organization = make_organization(cast)
    for kind, url in (
        ("person", f"/contacts/persons/{person.pk}"),
        ("organization", f"/contacts/organizations/{organization.pk}"),
    ):
        item_id = person.pk if kind == "person" else organization.pk
        html = alice_client.get(url).content.decode()
        assert 'id="tab-email"' in html
        fragment_url = f"/items/{kind}/{item_id}/emails"
        assert f'hx-get="{fragment_url}"' in html
        fragment = alice_client.get(fragment_url, headers=HTMX)
        assert fragment.status_code == 200
        assert "No email conversations yet." in fragment.content.decode()


@pytest.mark.urls("tests.contacts.web.urls_with_slots")
def test_the_slots_load_the_other_apps_fragments_once_they_exist(
    cast: Cast, alice_client: Client
) -> None:
    person = make_person(cast)
    organization = make_organization(cast)
    html = alice_client.get(f"/contacts/persons/{person.pk}").content.decode()
    assert f'hx-get="/test/emails/person/{person.pk}"' in html
    assert f'hx-get="/test/persons/{person.pk}/deals"' in html
    assert "No email conversations yet" not in html
    html = alice_client.get(f"/contacts/organizations/{organization.pk}").content.decode()
    assert f'hx-get="/test/emails/organization/{organization.pk}"' in html
    assert f'hx-get="/test/organizations/{organization.pk}/deals"' in html


def test_the_plus_of_an_organization_adds_a_person_into_it(
    cast: Cast, alice_client: Client
) -> None:
    organization = make_organization(cast, name="Initech")
    url = f"/contacts/organizations/{organization.pk}/persons/new"
    assert "Add a person to Initech" in alice_client.get(url, headers=HTMX).content.decode()
    response = alice_client.post(url, {"name": "Pat Person"}, headers=HTMX)
    assert response["HX-Redirect"] == f"/contacts/organizations/{organization.pk}"
    with tenancy.bound(cast.company_a.pk):
        assert Person.objects.for_company(cast.company_a).get(
            name="Pat Person"
        ).organization_id == (organization.pk)
    html = alice_client.get(f"/contacts/organizations/{organization.pk}").content.decode()
    assert "Pat Person" in html


def test_a_relation_shows_from_both_sides_and_is_removed(cast: Cast, alice_client: Client) -> None:
    holding = make_organization(cast, name="Holding Co")
    branch = make_organization(cast, name="Branch Co")
    # From the branch: Holding Co is its parent.
    alice_client.post(
        f"/contacts/organizations/{branch.pk}/relations",
        {"kind": "parent", "other_id": holding.pk},
    )
    branch_page = alice_client.get(f"/contacts/organizations/{branch.pk}").content.decode()
    holding_page = alice_client.get(f"/contacts/organizations/{holding.pk}").content.decode()
    assert "Holding Co" in branch_page
    assert ">Parent</span>" in branch_page
    assert "Branch Co" in holding_page
    assert ">Subsidiary</span>" in holding_page
    with tenancy.bound(cast.company_a.pk):
        relation = (
            Organization.objects.for_company(cast.company_a).get(pk=holding.pk).relations_out.get()
        )
    assert relation.related_organization_id == branch.pk
    alice_client.post(
        f"/contacts/organizations/{holding.pk}/relations/remove", {"relation_id": relation.pk}
    )
    assert (
        "No related organizations."
        in alice_client.get(f"/contacts/organizations/{branch.pk}").content.decode()
    )


def test_organization_fields_labels_delete_and_restore(cast: Cast, alice_client: Client) -> None:
    organization = make_organization(cast, name="Initech")
    url = f"/contacts/organizations/{organization.pk}"
    alice_client.post(f"{url}/fields/website", {"value": "initech.test"}, headers=HTMX)
    alice_client.post(f"{url}/fields/address", {"value": "1 Main St"}, headers=HTMX)
    alice_client.post(f"{url}/labels", {"new_label": "Partner", "new_color": "green"})
    html = alice_client.get(url).content.decode()
    assert "initech.test" in html
    assert "1 Main St" in html
    assert "label-green" in html
    response = alice_client.post(f"{url}/delete", follow=True)
    assert "Organization deleted." in response.content.decode()
    alice_client.post(f"{url}/restore")
    assert alice_client.get(url).status_code == 200


def _busy_person(cast: Cast, *, points: int) -> Person:
    organization = make_organization(cast, name="Initech")
    person = make_person(
        cast,
        name="Pat Person",
        org_id=organization.pk,
        emails=[ContactPoint(value=f"pat{n}@initech.test") for n in range(points)],
        phones=[ContactPoint(value=f"+1555000{n}") for n in range(points)],
    )
    return person


def test_the_person_page_runs_a_bounded_number_of_queries(
    cast: Cast, alice_client: Client, django_assert_num_queries: Any
) -> None:
    few = _busy_person(cast, points=1)
    many = _busy_person(cast, points=20)
    alice_client.get(f"/contacts/persons/{few.pk}")
    with CaptureQueriesContext(connection) as baseline:
        alice_client.get(f"/contacts/persons/{few.pk}")
    with django_assert_num_queries(len(baseline.captured_queries)):
        html = alice_client.get(f"/contacts/persons/{many.pk}").content.decode()
    assert html.count("@initech.test</a>") == 20
    assert len(baseline.captured_queries) <= 20
