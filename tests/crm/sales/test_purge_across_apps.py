"""Purging a deleted person never blocks on, nor deletes, a lead that named only them."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from contacts.models import Person
from contacts.services import contacts_purge_deleted
from crm import tenancy
from crm.sales.models import Lead
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def test_purging_a_person_keeps_their_lead_without_a_contact(cast: Cast) -> None:
    company = cast.company_a
    long_ago = timezone.now() - datetime.timedelta(days=31)
    with tenancy.bound(company.pk):
        person = Person.objects.create(company=company, owner=cast.alice, name="Gone Soon")
        lead = Lead.objects.create(company=company, owner=cast.alice, title="Hot", person=person)
        Person.objects.for_company(company).filter(pk=person.pk).update(deleted_at=long_ago)

        assert contacts_purge_deleted(company=company) == 1

        assert not Person.objects.for_company(company).filter(pk=person.pk).exists()
        kept = Lead.objects.for_company(company).get(pk=lead.pk)
        assert (kept.person_id, kept.organization_id, kept.title) == (None, None, "Hot")
