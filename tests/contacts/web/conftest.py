"""Signed-in browsers for the cast on the contacts pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from crm.models import User
from tests.conftest import Cast

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
