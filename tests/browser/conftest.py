"""Browser tests: headless Debian Chromium driven by Playwright against pytest-django's
`live_server`.

One Chromium runs for the whole browser suite (starting it costs about a second); every test
gets a fresh browser context (its own cookies and storage) and page. Screenshots land under
`test-output/screenshots/`, which git ignores.

The live server answers from another thread, so these tests need the transactional database
(`@pytest.mark.django_db(transaction=True)`) and build the cast through `browser_cast`, not
the `cast` fixture of tests/conftest.py, which sits on the rollback-wrapped `db` fixture."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from crm.celery_app import app as celery_app
from crm.models import User
from tests.conftest import PASSWORD, Cast, _build_cast, service_missing

CHROMIUM = "/usr/bin/chromium"
# The flags this machine needs (docs: NOTES-TRANCHE-1, "Traps seen on this machine"): root
# needs --no-sandbox, and the closed network refuses Chromium's background connections.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "screenshots"
# Long enough for a slow shared laptop, short enough that a missing element fails fast.
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)


class LiveServer(Protocol):
    url: str


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the whole browser suite.

    Package scope rather than session scope: Playwright's sync API keeps an asyncio loop
    running in the main thread while the browser lives, so Django refuses ORM calls there
    (SynchronousOnlyOperation) unless DJANGO_ALLOW_ASYNC_UNSAFE is set. The tests drive the
    browser and query the database in turn, never at once, so allowing it is safe here; the
    package scope ends the browser, the loop and the allowance before the rest of the suite."""
    if not os.path.exists(CHROMIUM):
        service_missing(f"{CHROMIUM} (Debian package chromium) runs the browser tests")
    # Shots of an earlier run's failures would mislead: this run makes its own.
    for stale in SCREENSHOTS.glob("failed-*.png"):
        stale.unlink()
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            # launch() gives Chromium a fresh temporary profile of its own (it refuses
            # --user-data-dir); each test's new context starts without cookies or storage.
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Keep each phase's report on the test item, so the page fixture knows a test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(
    browser: Browser,
    live_server: LiveServer,
    transactional_db: None,
    request: pytest.FixtureRequest,
) -> Iterator[Page]:
    """A page in a new context (no cookies from other tests) whose relative URLs go to the
    live server. A failing test leaves a screenshot of where it stopped, `failed-<test>.png`,
    and the browser console's errors in its report.

    It asks for the transactional database so that it closes before the database is emptied
    after the test, and it lets the page's last requests finish first: a request the live
    server still runs while the tables are truncated can deadlock with it."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    in_flight: set[object] = set()
    page.on("request", lambda r: in_flight.add(r))
    page.on("requestfinished", lambda r: in_flight.discard(r))
    page.on("requestfailed", lambda r: in_flight.discard(r))
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        screenshot(page, f"failed-{request.node.name}")
        print("browser console errors:", *errors, sep="\n  ")
    _settle(page, in_flight)
    context.close()


def _settle(page: Page, in_flight: set[object], timeout: float = 5.0) -> None:
    """Wait (a little) for the page's requests under way to be answered."""
    deadline = time.monotonic() + timeout
    while in_flight and time.monotonic() < deadline:
        page.wait_for_timeout(50)


@pytest.fixture
def browser_cast(transactional_db: None) -> Cast:
    """The cast of tests/conftest.py on the transactional database the live server sees."""
    return _build_cast()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Run Celery tasks inline in the live server's thread: no worker runs in the tests. The
    app read its configuration at import, so flip the live setting and restore it after."""
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


def signed_in(page: Page, user: User, password: str = PASSWORD) -> Page:
    """Sign in through the real /login form, as a person would, and wait for the home page."""
    page.goto("/login")
    page.get_by_label(re.compile("email", re.IGNORECASE)).fill(user.email)
    page.get_by_label(re.compile("password", re.IGNORECASE)).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))
    return page


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as test-output/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass(frozen=True)
class SampleItems:
    """One of each item in Acme, owned by Alice: what the page screenshots show."""

    organization_id: int
    person_id: int
    deal_id: int
    lead_id: str
    project_id: int


def sample_items(cast: Cast) -> SampleItems:
    """Create the items through the services, as the pages would."""
    # Imported here: collecting the browser tests should not need the item apps loaded early.
    from contacts import services as contacts
    from contacts.services import ContactPoint
    from crm import tenancy
    from crm.sales import services as sales

    company = cast.company_a
    membership = cast.membership(cast.alice, company)
    with tenancy.bound(company.pk, user_id=cast.alice.pk):
        organization = contacts.organization_create(
            company=company, membership=membership, fields={"name": "Initech"}
        )
        person = contacts.person_create(
            company=company,
            membership=membership,
            fields={
                "name": "Peter Gibbons",
                "org_id": organization.pk,
                "job_title": "Engineer",
                "emails": [ContactPoint(value="peter@initech.test", primary=True)],
                "phones": [ContactPoint(value="+1 555 0100")],
            },
        )
        deal = sales.deal_create(
            company=company,
            membership=membership,
            fields={
                "title": "Initech TPS licences",
                "value": 12000,
                "person_id": person.pk,
                "organization_id": organization.pk,
            },
        )
        lead = sales.lead_create(
            company=company,
            membership=membership,
            fields={"title": "Initech printers", "person_id": person.pk},
        )
        project = sales.project_create(
            company=company,
            membership=membership,
            fields={"title": "Initech roll-out", "deal_ids": [deal.pk], "person_ids": [person.pk]},
        )
    return SampleItems(organization.pk, person.pk, deal.pk, str(lead.pk), project.pk)
