"""Shared set-up of the API tests: the API's routes (with test-only endpoints) as URLconf, and
helpers to call the API as one of the cast."""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django import Settings

from tests.conftest import Cast


@pytest.fixture(autouse=True)
def api_urls(settings: Settings) -> None:
    # crm/urls.py also mounts the web pages; these tests need only the API's routes.
    settings.ROOT_URLCONF = "tests.crm.api.urls"


@pytest.fixture
def api(cast: Cast) -> Client:
    """A client with no session: every request states its own credentials."""
    return Client()
