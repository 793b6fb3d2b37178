"""The purge task visits every company."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from contacts import tasks
from contacts.models import Person
from crm import tenancy
from tests.conftest import Cast
from tests.contacts.conftest import make_person

pytestmark = pytest.mark.django_db


def test_purge_deleted_task_hard_deletes_expired_persons_in_every_company(cast: Cast) -> None:
    expired = make_person(cast, name="Expired")
    kept = make_person(cast, name="Kept")
    with tenancy.bound(cast.company_a.pk):
        Person.objects.for_company(cast.company_a).filter(pk=expired.pk).update(
            deleted_at=timezone.now() - datetime.timedelta(days=40)
        )

    assert tasks.purge_deleted() == 1
    with tenancy.bound(cast.company_a.pk):
        assert list(Person.objects.for_company(cast.company_a).values_list("pk", flat=True)) == [
            kept.pk
        ]
