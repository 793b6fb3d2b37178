"""The import pages and the CSV exports, through the browser's requests."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from contacts.exports import cell_neutralize
from contacts.models import ImportJob, ImportStatus
from contacts.services import ContactPoint
from crm import tenancy
from crm.access import Visibility
from tests.conftest import Cast
from tests.contacts.conftest import make_person
from tests.contacts.imports.conftest import job_make, job_run

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.contacts.imports.urls")]

DATA = (
    b"Name,Email - Work,Owner\n"
    b"Ada Lovelace,ada@example.test,\n"
    b"Bad Row,not-an-address,\n"
    b"\"=cmd|' /C calc'!A0\",evil@example.test,\n"
)


def upload(client: Client, data: bytes, *, kind: str = "person", name: str = "people.csv") -> Any:
    return client.post(
        "/imports/new", {"kind": kind, "file": SimpleUploadedFile(name, data, "text/csv")}
    )


def latest_job(cast: Cast) -> ImportJob:
    with tenancy.bound(cast.company_a.pk):
        return ImportJob.objects.for_company(cast.company_a).latest("id")


def read_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


@pytest.mark.usefixtures("eager_celery")
def test_regular_user_uploads_maps_previews_and_runs_an_import(
    cast: Cast, bob_client: Client, django_capture_on_commit_callbacks: object
) -> None:
    assert bob_client.get("/imports/new").status_code == 200
    response = upload(bob_client, DATA)
    job = latest_job(cast)
    assert response.status_code == 302
    assert response["Location"] == f"/imports/{job.pk}"
    page = bob_client.get(f"/imports/{job.pk}")
    assert page.status_code == 200
    assert b"not-an-address is not a valid email address" in page.content
    assert b'value="email_work" selected' in page.content
    form = {
        "column_0": "name",
        "column_1": "email_work",
        "column_2": "",
        "duplicate_policy": "skip",
    }
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        response = bob_client.post(f"/imports/{job.pk}", {**form, "start": "1"})
    assert response.status_code == 302
    job = latest_job(cast)
    assert (job.status, job.created_count, job.failed_count) == (ImportStatus.DONE, 2, 1)
    progress = bob_client.get(f"/imports/{job.pk}/progress")
    assert b'value="3"' in progress.content
    assert b"every 1s" not in progress.content
    failures = bob_client.get(f"/imports/{job.pk}/failures.csv")
    assert failures["Content-Type"].startswith("text/csv")
    rows = read_csv(failures.content)
    assert rows[0] == ["Row", "Reason", "Name", "Email - Work", "Owner"]
    assert rows[1][0] == "2"
    assert "not-an-address" in rows[1][1]
    with tenancy.bound(cast.company_a.pk):
        from contacts.models import Person

        owners = set(Person.objects.for_company(cast.company_a).values_list("owner_id", flat=True))
    assert owners == {cast.bob.pk}


def test_running_job_page_polls_the_progress_every_second(cast: Cast, alice_client: Client) -> None:
    job = job_make(cast, DATA)
    page = alice_client.get(f"/imports/{job.pk}")
    assert b'hx-trigger="every 1s"' in page.content
    assert b"<progress" in page.content


def test_bad_files_get_a_clear_message(alice_client: Client) -> None:
    response = upload(alice_client, b"\x89PNG\r\n\x1a\n\x00\x00binary", name="photo.png")
    assert response.status_code == 400
    assert b"binary file, not a spreadsheet" in response.content
    response = upload(alice_client, b"Name\n")
    assert b"no data rows" in response.content


def test_resume_and_rollback_buttons(cast: Cast, alice_client: Client) -> None:
    job = job_run(cast, job_make(cast, DATA))
    assert job.status == ImportStatus.DONE
    assert alice_client.post(f"/imports/{job.pk}/rollback").status_code == 302
    assert latest_job(cast).status == ImportStatus.ROLLED_BACK
    response = alice_client.post(f"/imports/{job.pk}/resume", follow=True)
    assert b"Only a running import can be resumed" in response.content


def test_carol_gets_404_on_acmes_import_job(
    cast: Cast, carol_client: Client, bob_client: Client
) -> None:
    job = job_make(cast, DATA, user=cast.alice)
    for path in ("", "/progress", "/failures.csv"):
        assert carol_client.get(f"/imports/{job.pk}{path}").status_code == 404
        # Bob is in Acme but did not start it and is no admin: the same answer.
        assert bob_client.get(f"/imports/{job.pk}{path}").status_code == 404
    assert carol_client.post(f"/imports/{job.pk}/rollback").status_code == 404
    assert carol_client.post(f"/imports/{job.pk}/resume").status_code == 404


def test_cells_starting_with_formula_characters_are_neutralized() -> None:
    assert cell_neutralize("=1+1") == "'=1+1"
    assert cell_neutralize("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    for value in ("+1 555", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert cell_neutralize(value) == f"'{value}"
    assert cell_neutralize("Ada") == "Ada"
    assert cell_neutralize(None) == ""
    assert cell_neutralize(12) == "12"


def test_persons_export_neutralizes_formulas_and_respects_access(
    cast: Cast, alice_client: Client, bob_client: Client, carol_client: Client
) -> None:
    make_person(cast, name="=cmd|' /C calc'!A0", emails=[ContactPoint(value="evil@example.test")])
    make_person(cast, name="Alice's secret", visible_to=Visibility.OWNER)
    rows = read_csv(alice_client.get("/persons/export.csv").content)
    assert rows[0][:3] == ["ID", "Name", "First name"]
    names = {row[1] for row in rows[1:]}
    assert names == {"'=cmd|' /C calc'!A0", "Alice's secret"}
    assert rows[1][4] == "evil@example.test"
    bob_names = {row[1] for row in read_csv(bob_client.get("/persons/export.csv").content)[1:]}
    assert bob_names == {"'=cmd|' /C calc'!A0"}
    assert read_csv(carol_client.get("/persons/export.csv").content)[1:] == []


def test_organizations_deals_and_leads_export(cast: Cast, alice_client: Client) -> None:
    job_run(
        cast,
        job_make(
            cast,
            b"Deal - Title,Deal - Value,Organization - Name\n@risk deal,100,=Evil Corp\n",
            kind="deal",
        ),
    )
    job_run(cast, job_make(cast, b"Lead - Title,Person - Name\nHot lead,-Ada\n", kind="lead"))
    organizations = read_csv(alice_client.get("/organizations/export.csv").content)
    assert [row[1] for row in organizations[1:]] == ["'=Evil Corp"]
    deals = read_csv(alice_client.get("/deals/export.csv").content)
    assert deals[1][1:4] == ["'@risk deal", "100.00", "USD"]
    assert deals[1][8] == "'=Evil Corp"
    leads = read_csv(alice_client.get("/leads/export.csv").content)
    assert leads[1][1] == "Hot lead"
    assert leads[1][4] == "'-Ada"


def test_exports_need_sign_in(client: Client) -> None:
    for path in ("/persons/export.csv", "/deals/export.csv", "/imports/new"):
        assert client.get(path).status_code == 302
