"""Signed-in browsers for the cast, and the Acme data the deal, lead and project pages show,
made through the services inside `tenancy.bound` as the pages would make it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from contacts import services as contact_services
from contacts.models import Organization, Person
from crm import tenancy
from crm.models import User
from crm.sales import services
from crm.sales.models import Deal, Lead, Pipeline, Project, Stage
from tests.conftest import Cast
from tests.crm.sales.conftest import membership_of

ClientFor = Callable[[User], Client]


@pytest.fixture
def alice_client(cast: Cast, client_for: ClientFor) -> Client:
    return client_for(cast.alice)


@pytest.fixture
def bob_client(cast: Cast, client_for: ClientFor) -> Client:
    return client_for(cast.bob)


@pytest.fixture
def carol_client(cast: Cast, client_for: ClientFor) -> Client:
    return client_for(cast.carol)


class Acme:
    """Writes in company A as one of its users."""

    def __init__(self, cast: Cast, user: User) -> None:
        self.cast = cast
        self.company = cast.company_a
        self.membership = membership_of(user, cast.company_a)

    def pipeline(self) -> Pipeline:
        with tenancy.bound(self.company.pk):
            return services.pipeline_default_ensure(company=self.company)

    def stages(self, pipeline: Pipeline | None = None) -> list[Stage]:
        pipeline = pipeline or self.pipeline()
        with tenancy.bound(self.company.pk):
            return list(Stage.objects.for_company(self.company).filter(pipeline=pipeline))

    def person(self, name: str, *, org_id: int | None = None, visible_to: int = 7) -> Person:
        with tenancy.bound(self.company.pk):
            return contact_services.person_create(
                company=self.company,
                membership=self.membership,
                fields={"name": name, "org_id": org_id, "visible_to": visible_to},
            )

    def organization(self, name: str) -> Organization:
        with tenancy.bound(self.company.pk):
            return contact_services.organization_create(
                company=self.company, membership=self.membership, fields={"name": name}
            )

    def deal(self, title: str, **fields: Any) -> Deal:
        with tenancy.bound(self.company.pk):
            return services.deal_create(
                company=self.company, membership=self.membership, fields={"title": title, **fields}
            )

    def lead(self, title: str, **fields: Any) -> Lead:
        with tenancy.bound(self.company.pk):
            return services.lead_create(
                company=self.company, membership=self.membership, fields={"title": title, **fields}
            )

    def project(self, title: str, **fields: Any) -> Project:
        with tenancy.bound(self.company.pk):
            return services.project_create(
                company=self.company, membership=self.membership, fields={"title": title, **fields}
            )


@pytest.fixture
def acme(cast: Cast) -> Acme:
    """Acme's data, made as Alice."""
    return Acme(cast, cast.alice)
