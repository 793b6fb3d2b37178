"""Helpers for the web pages' tests: signed-in browsers for the cast, and Celery run inline so
that a task enqueued on commit runs inside the test (with django_capture_on_commit_callbacks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.test import Client

from crm.celery_app import app
from crm.models import User
from tests.conftest import Cast

ClientFor = Callable[[User], Client]


@pytest.fixture
def eager_celery() -> Iterator[None]:
    # The Celery app read its configuration at import; flip the live setting and restore it.
    previous = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture
def alice_client(cast: Cast, client_for: ClientFor) -> Client:
    return client_for(cast.alice)


@pytest.fixture
def bob_client(cast: Cast, client_for: ClientFor) -> Client:
    return client_for(cast.bob)


@pytest.fixture
def carol_client(cast: Cast, client_for: ClientFor) -> Client:
    return client_for(cast.carol)
