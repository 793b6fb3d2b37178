"""The list pages link to Import and to an Export CSV of what they show, filters included."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from contacts.models import Person
from crm import tenancy
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def test_the_persons_list_exports_with_its_own_owner_filter(cast: Cast, client_for) -> None:
    with tenancy.bound(cast.company_a.pk):
        for owner, name in ((cast.alice, "Alice's"), (cast.bob, "Bob's")):
            Person.objects.create(company=cast.company_a, owner=owner, name=name)
    alice: Client = client_for(cast.alice)
    page = alice.get(f"/contacts/persons?owner={cast.bob.pk}").content.decode()
    assert f'href="/persons/export.csv?owner={cast.bob.pk}"' in page
    assert 'href="/imports/new?kind=person"' in page
    exported = alice.get(f"/persons/export.csv?owner={cast.bob.pk}")
    rows = list(csv.reader(io.StringIO(exported.getvalue().decode())))
    names = [row[rows[0].index("Name")] for row in rows[1:]]
    assert names == ["Bob's"]


def test_the_import_page_preselects_the_kind_of_the_list(cast: Cast, client_for) -> None:
    page = client_for(cast.alice).get("/imports/new?kind=deal").content.decode()
    # A select: the kind the list page named is the one chosen.
    assert '<option value="deal" selected>' in page
