"""Shared set-up of the contacts tests: Dave (a regular user of Acme on no team), the acting
memberships, a recorder of published hooks, and helpers that call the API as one of the cast."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client

from contacts import services
from contacts.models import Organization, Person
from crm import hooks, tenancy
from crm import services as crm_services
from crm.models import Membership, Role, User
from tests.conftest import PASSWORD, Cast


@dataclass
class Dave:
    user: User
    token: str


@pytest.fixture
def dave(cast: Cast) -> Dave:
    with tenancy.bound(cast.company_a.pk):
        user = crm_services.user_get_or_create(
            email="dave@acme.test", password=PASSWORD, name="Dave Davis"
        )
        crm_services.membership_add(company=cast.company_a, user=user, role=Role.REGULAR)
        token = crm_services.api_token_issue(company=cast.company_a, user=user)
    return Dave(user=user, token=token)


def member(cast: Cast, user: User) -> Membership:
    company = cast.company_b if user.pk == cast.carol.pk else cast.company_a
    return cast.membership(user, company)


@dataclass
class Recorder:
    events: dict[str, list[Any]] = field(default_factory=dict)

    def of(self, topic: str) -> list[Any]:
        return self.events.get(topic, [])


@pytest.fixture
def published() -> Iterator[Recorder]:
    """Every event published on the contacts topics while the test runs."""
    recorder = Recorder()
    topics = (
        hooks.ITEM_EVENT,
        hooks.PERSON_ADDRESSES_CHANGED,
        hooks.PERSONS_MERGED,
        hooks.ORGANIZATIONS_MERGED,
    )
    handlers = {}
    for topic in topics:

        def handler(event: Any, topic: str = topic) -> None:
            recorder.events.setdefault(topic, []).append(event)

        handlers[topic] = handler
        hooks.subscribe(topic, handler)
    yield recorder
    for topic, handler in handlers.items():
        hooks.unsubscribe(topic, handler)


def make_person(cast: Cast, user: User | None = None, **fields: Any) -> Person:
    """A person of Acme created by `user` (Alice when absent) through the service."""
    user = user or cast.alice
    membership = member(cast, user)
    fields.setdefault("name", "Pat Person")
    fields = {key: value for key, value in fields.items() if value is not None}
    with tenancy.bound(cast.company_a.pk):
        return services.person_create(
            company=cast.company_a,
            membership=membership,
            fields=services.PersonFields(**fields),  # type: ignore[typeddict-item]
        )


def make_organization(cast: Cast, user: User | None = None, **fields: Any) -> Organization:
    user = user or cast.alice
    membership = member(cast, user)
    fields.setdefault("name", "Initech")
    with tenancy.bound(cast.company_a.pk):
        return services.organization_create(
            company=cast.company_a,
            membership=membership,
            fields=services.OrganizationFields(**fields),  # type: ignore[typeddict-item]
        )


def call(
    method: str, path: str, token: str, body: Any = None, **params: Any
) -> tuple[int, dict[str, Any]]:
    """Call the API with a token; returns (status, parsed JSON body)."""
    client = Client()
    headers = {"x-api-token": token}
    if method == "get":
        response = client.get(path, params, headers=headers)
    elif method == "delete":
        query = "&".join(f"{key}={value}" for key, value in params.items())
        response = client.delete(f"{path}?{query}" if query else path, headers=headers)
    else:
        response = getattr(client, method)(
            path, body, content_type="application/json", headers=headers
        )
    return response.status_code, response.json()
