"""Shared set-up of the sales tests: Dave (a regular user of Acme on no team), persons and
organizations made directly with the models, an API client per member, the published events,
and Celery tasks run eagerly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from contacts.models import Organization, Person, PersonEmail
from crm import hooks, services, tenancy
from crm.celery_app import app
from crm.models import Company, Membership, Role, User
from tests.conftest import PASSWORD, Cast


@dataclass
class Dave:
    user: User
    token: str


@pytest.fixture
def dave(cast: Cast) -> Dave:
    with tenancy.bound(cast.company_a.pk):
        user = services.user_get_or_create(
            email="dave@acme.test", password=PASSWORD, name="Dave Davis"
        )
        services.membership_add(company=cast.company_a, user=user, role=Role.REGULAR)
        token = services.api_token_issue(company=cast.company_a, user=user)
    return Dave(user=user, token=token)


def membership_of(user: User, company: Company) -> Membership:
    """The membership, with its company loaded (services read `membership.company`)."""
    with tenancy.bound(company.pk, user_id=user.pk):
        return Membership.objects.for_company(company).select_related("company").get(user=user)


def make_person(
    company: Company, owner: User, name: str = "Pat Person", *, visible_to: int = 7, **kw: Any
) -> Person:
    with tenancy.bound(company.pk):
        person = Person.objects.create(
            company=company, owner=owner, name=name, visible_to=visible_to, **kw
        )
        PersonEmail.objects.create(
            company=company,
            person=person,
            value=f"{name.split()[0].lower()}@example.test",
            normalized=f"{name.split()[0].lower()}@example.test",
            primary=True,
        )
        return person


def make_organization(
    company: Company, owner: User, name: str = "Orgco", *, visible_to: int = 7
) -> Organization:
    with tenancy.bound(company.pk):
        return Organization.objects.create(
            company=company, owner=owner, name=name, visible_to=visible_to
        )


@pytest.fixture
def api(cast: Cast) -> Client:
    return Client()


Call = Callable[..., tuple[int, Any]]


@pytest.fixture
def call(api: Client) -> Call:
    """`call(token, "get", "/api/v2/deals", data)` -> (status, parsed body)."""

    def do(token: str, method: str, path: str, data: Any = None) -> tuple[int, Any]:
        headers = {"x-api-token": token}
        if method == "get":
            response = api.get(path, data or {}, headers=headers)
        else:
            response = getattr(api, method)(
                path, data, content_type="application/json", headers=headers
            )
        return response.status_code, response.json()

    return do


@pytest.fixture
def events() -> Iterator[dict[str, list[Any]]]:
    """What the services published, by topic."""
    seen: dict[str, list[Any]] = {hooks.ITEM_EVENT: [], hooks.DEAL_STATUS_CHANGED: []}
    handlers = {topic: seen[topic].append for topic in seen}
    for topic, handler in handlers.items():
        hooks.subscribe(topic, handler)
    yield seen
    for topic, handler in handlers.items():
        hooks.unsubscribe(topic, handler)


@pytest.fixture
def eager_celery() -> Iterator[None]:
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
