"""Journey of the spreadsheet import: upload a 1,000-row CSV of persons with 10 bad rows, map
its columns, start the import and read the report (990 created, 10 failed).

The file is generated at test time (nothing large is committed). No Celery worker runs in the
tests: `eager_celery` runs the import task inline in the live server's thread, when the
request that starts it commits."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import Page, expect

from contacts.models import Person
from crm import tenancy
from tests.browser.conftest import screenshot, signed_in
from tests.conftest import Cast

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROWS = 1_000
BAD_ROWS = frozenset(range(50, ROWS, 100))  # 10 rows, spread over the file


def persons_csv() -> bytes:
    """Pipedrive-like headers; the bad rows carry an address that is not one."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Name", "Email", "Phone", "Organization", "Job title"])
    for i in range(ROWS):
        email = f"broken-address-{i}@@example" if i in BAD_ROWS else f"imported{i}@example.test"
        writer.writerow(
            [f"Imported Person {i}", email, f"+1 555 {i:04d}", f"Import Org {i % 20}", "Buyer"]
        )
    return out.getvalue().encode()


def test_import_a_csv_of_persons_with_bad_rows_and_read_the_report(
    page: Page, browser_cast: Cast, eager_celery: None
) -> None:
    signed_in(page, browser_cast.alice)
    page.goto("/imports/new")
    page.get_by_label("What the file holds").select_option(label="Persons")
    page.get_by_label("CSV or XLSX file").set_input_files(
        {"name": "persons.csv", "mimeType": "text/csv", "buffer": persons_csv()}
    )
    page.get_by_role("button", name="Upload").click()

    # The mapping: columns guessed from the headers, a preview that flags the bad address.
    expect(page.get_by_role("heading", level=1)).to_have_text("Import persons.csv")
    expect(page.get_by_text("1000 rows to import")).to_be_visible()
    columns = page.get_by_role("group", name="Columns")
    # Each column's select is labelled by its header (a label suffix may follow it).
    expect(columns.get_by_label(re.compile(r"^Email\W*$"))).to_have_value("email")
    expect(columns.get_by_label(re.compile(r"^Name\W*$"))).to_have_value("name")
    expect(columns.get_by_label(re.compile(r"^Organization\W*$"))).to_have_value("organization")
    screenshot(page, "import-mapping")
    page.get_by_role("button", name="Start import").click()

    # The report, once the run is done: the task runs inline in the request, and 1,000 persons
    # take about a minute on a busy 2-core machine (person creation: bench/persons_api.py).
    report = page.locator(".import-report")
    expect(report.locator("[data-count='created']")).to_have_text("990", timeout=180_000)
    expect(report.locator("[data-count='failed']")).to_have_text("10")
    expect(report.locator("[data-count='updated']")).to_have_text("0")
    screenshot(page, "import-report")

    # The failed rows, downloaded as CSV: each bad row with its reason.
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("failed rows")).click()
    path = download.value.path()
    with open(path, newline="", encoding="utf-8-sig") as failures:
        failed = list(csv.DictReader(failures))
    assert sorted(row["Email"] for row in failed) == sorted(
        f"broken-address-{i}@@example" for i in BAD_ROWS
    )
    assert all("not a valid email address" in row["Reason"] for row in failed)

    company = browser_cast.company_a
    with tenancy.bound(company.pk, user_id=browser_cast.alice.pk):
        imported = Person.objects.for_company(company).filter(name__startswith="Imported Person")
        assert imported.count() == ROWS - len(BAD_ROWS)
        assert not imported.filter(name__in=[f"Imported Person {i}" for i in BAD_ROWS]).exists()
