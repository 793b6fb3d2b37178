"""Running imports through the services, chunk by chunk as the task does: outcomes, the
report, duplicates, resume after a crash, rollback, deals and leads."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from contacts.imports import selectors, services, tasks
from contacts.imports.persons import PersonHandler
from contacts.models import ImportJob, ImportRow, ImportStatus, Organization, Person, PersonEmail
from contacts.services import ContactPoint
from crm import tenancy
from crm.sales.models import Deal, Lead, Pipeline, Stage
from crm.services import ServiceError
from tests.conftest import Cast
from tests.contacts.conftest import make_person
from tests.contacts.imports.conftest import job_make, job_run

pytestmark = pytest.mark.django_db


def live_persons(cast: Cast) -> list[Person]:
    with tenancy.bound(cast.company_a.pk):
        return list(
            Person.objects.for_company(cast.company_a)
            .filter(deleted_at__isnull=True)
            .order_by("id")
        )


def thousand_rows(count: int = 1000) -> bytes:
    """`count` persons; a tenth of them (every tenth row from the end of the first tenth on)
    has an invalid address: rows 100, 200 … 1000 of a thousand."""
    lines = ["Name,Email,Phone"]
    for number in range(1, count + 1):
        every = count // 10
        email = "not-an-address" if number % every == 0 else f"p{number}@example.test"
        lines.append(f"Person {number},{email},+1 555 {number:04d}")
    return ("\n".join(lines) + "\n").encode()


def test_preview_shows_problems_per_cell(cast: Cast) -> None:
    data = (
        b"Name,Email,Owner,Organization\n"
        b"Ada,ada@example.test,Bob Brown,Engines\n"
        b"Bad,not an email,Nobody Here,\n"
        b",missing@example.test,,\n"
    )
    job = job_make(cast, data, start=False)
    membership = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk):
        preview = selectors.import_preview(membership=membership, job=job)
    assert [row.problem_count for row in preview] == [0, 2, 1]
    bad = preview[1].cells
    assert "not an email is not a valid email address" in bad[1].problem
    assert "No active user named Nobody Here" in bad[2].problem
    assert preview[2].cells[0].problem == "Required."


def test_thousand_rows_with_ten_bad_ones(cast: Cast) -> None:
    job = job_run(cast, job_make(cast, thousand_rows()))
    assert job.status == ImportStatus.DONE
    assert (job.created_count, job.failed_count, job.processed_rows) == (990, 10, 1000)
    with tenancy.bound(cast.company_a.pk):
        failed = list(selectors.import_failed_rows(job=job))
    assert [row.number for row in failed] == list(range(100, 1001, 100))
    assert all("not-an-address is not a valid email address" in row.error for row in failed)
    assert len(live_persons(cast)) == 990


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The crash and resume tests need several chunks, not a thousand slow rows.
    monkeypatch.setattr(services, "CHUNK_SIZE", 20)


@pytest.mark.usefixtures("small_chunks")
def test_a_crash_mid_run_resumes_from_the_checkpoint_without_duplicates(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = job_make(cast, thousand_rows(100))
    original = PersonHandler.apply
    crashed: list[bool] = []

    def crashing(self: PersonHandler, **kwargs: object) -> object:
        if kwargs["values"]["name"] == "Person 45" and not crashed:  # type: ignore[index]
            crashed.append(True)
            raise RuntimeError("worker lost")
        return original(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(PersonHandler, "apply", crashing)
    with pytest.raises(RuntimeError):
        job_run(cast, job)
    # The third chunk (rows 41-60) was rolled back with its checkpoint.
    with tenancy.bound(cast.company_a.pk):
        job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count) == ("running", 40, 36)
    assert len(live_persons(cast)) == 36
    with tenancy.bound(cast.company_a.pk):
        services.import_job_resume(company=cast.company_a, job=job)
    job = job_run(cast, job)
    assert (job.status, job.created_count, job.failed_count) == ("done", 90, 10)
    names = [person.name for person in live_persons(cast)]
    assert len(names) == len(set(names)) == 90


@pytest.mark.usefixtures("small_chunks")
def test_running_only_some_chunks_then_resuming_finishes_the_job(cast: Cast) -> None:
    job = job_run(cast, job_make(cast, thousand_rows(100)), max_chunks=2)
    assert (job.status, job.processed_rows) == ("running", 40)
    job = job_run(cast, job)
    assert (job.status, job.created_count) == ("done", 90)
    assert len(live_persons(cast)) == 90


@pytest.mark.usefixtures("small_chunks")
def test_stalled_jobs_are_found_by_the_sweeper(cast: Cast) -> None:
    job = job_run(cast, job_make(cast, thousand_rows(100)), max_chunks=1)
    with tenancy.bound(cast.company_a.pk):
        assert services.import_jobs_stalled_resume(company=cast.company_a) == 0
        assert (
            services.import_jobs_stalled_resume(company=cast.company_a, stale_after_seconds=-1) == 1
        )
    assert job.status == ImportStatus.RUNNING


DUPLICATES = (
    b"Name,Email,Job title\nAda New,ada@example.test,Countess\nNew Person,new@example.test,\n"
)


@pytest.mark.parametrize(
    ("policy", "counts", "persons"),
    [
        ("skip", (1, 0, 1), 2),
        ("update", (1, 1, 0), 2),
        ("create", (2, 0, 0), 3),
    ],
)
def test_duplicates_matched_on_email(
    cast: Cast, policy: str, counts: tuple[int, int, int], persons: int
) -> None:
    ada = make_person(cast, name="Ada Lovelace", emails=[ContactPoint(value="ADA@example.test")])
    job = job_run(cast, job_make(cast, DUPLICATES, policy=policy))
    assert (job.created_count, job.updated_count, job.skipped_count) == counts
    assert len(live_persons(cast)) == persons
    with tenancy.bound(cast.company_a.pk):
        ada.refresh_from_db()
    expected = ("Ada New", "Countess") if policy == "update" else ("Ada Lovelace", "")
    assert (ada.name, ada.job_title) == expected


def test_organizations_duplicates_matched_on_name(cast: Cast) -> None:
    with tenancy.bound(cast.company_a.pk):
        Organization.objects.for_company(cast.company_a)  # scoped: nothing yet
    job_run(cast, job_make(cast, b"Name,Website\nInitech,a.test\n", kind="organization"))
    job = job_run(
        cast,
        job_make(cast, b"Name,Website\nINITECH,b.test\nHooli,h.test\n", kind="organization"),
    )
    assert (job.created_count, job.skipped_count) == (1, 1)


def test_rollback_deletes_what_was_created_and_restores_what_was_updated(cast: Cast) -> None:
    ada = make_person(
        cast,
        name="Ada Lovelace",
        job_title="Countess",
        emails=[ContactPoint(value="ada@example.test")],
    )
    data = (
        b"Name,Email,Job title,Organization\n"
        b"Ada King,ada@example.test,Mathematician,Engines Ltd\n"
        b"Charles Babbage,charles@example.test,,Engines Ltd\n"
    )
    job = job_run(cast, job_make(cast, data, policy="update"))
    assert (job.created_count, job.updated_count) == (1, 1)
    with tenancy.bound(cast.company_a.pk):
        ada.refresh_from_db()
        assert (ada.name, ada.job_title, ada.organization is not None) == (
            "Ada King",
            "Mathematician",
            True,
        )
        services.import_job_rollback(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            job=job,
        )
        ada.refresh_from_db()
        job.refresh_from_db()
        organizations = Organization.objects.for_company(cast.company_a).filter(
            deleted_at__isnull=True
        )
        emails = list(
            PersonEmail.objects.for_company(cast.company_a)
            .filter(person=ada)
            .values_list("value", flat=True)
        )
        assert not organizations.exists()
    assert job.status == ImportStatus.ROLLED_BACK
    assert (ada.name, ada.job_title, ada.organization_id) == ("Ada Lovelace", "Countess", None)
    assert emails == ["ada@example.test"]
    assert [person.pk for person in live_persons(cast)] == [ada.pk]


def test_formula_text_is_imported_as_plain_text(cast: Cast) -> None:
    data = b"Name,Email\n\"=cmd|' /C calc'!A0\",evil@example.test\n"
    job = job_run(cast, job_make(cast, data))
    assert job.created_count == 1
    assert [person.name for person in live_persons(cast)] == ["=cmd|' /C calc'!A0"]


def test_owner_defaults_to_the_importer_and_may_be_named(cast: Cast) -> None:
    data = b"Name,Owner\nMine,\nAlices,alice@acme.test\n"
    job_run(cast, job_make(cast, data, user=cast.bob))
    owners = {person.name: person.owner_id for person in live_persons(cast)}
    assert owners == {"Mine": cast.bob.pk, "Alices": cast.alice.pk}


def test_deals_import_with_stage_and_pipeline_names(cast: Cast) -> None:
    with tenancy.bound(cast.company_a.pk):
        sales = Pipeline.objects.create(company=cast.company_a, name="Sales", position=0)
        partners = Pipeline.objects.create(company=cast.company_a, name="Partners", position=1)
        for pipeline in (sales, partners):
            for position, name in enumerate(("Qualified", "Won over")):
                Stage.objects.create(
                    company=cast.company_a, pipeline=pipeline, name=name, position=position
                )
    data = (
        b"Deal - Title,Deal - Value,Deal - Currency,Deal - Stage,Deal - Pipeline,"
        b"Person - Name,Organization - Name,Deal - Owner\n"
        b'Big deal,"1,500.50",EUR,won over,Partners,Ada Lovelace,Engines,Bob Brown\n'
        b"Small deal,10,usd,,,,,\n"
        b"Bad stage,10,EUR,Nowhere,Sales,,,\n"
        b"Bad pipeline,10,EUR,,Nope,,,\n"
        b"Bad money,ten,EURO,,,,,\n"
    )
    job = job_run(cast, job_make(cast, data, kind="deal"))
    assert (job.created_count, job.failed_count) == (2, 3)
    with tenancy.bound(cast.company_a.pk):
        deals = {
            deal.title: deal
            for deal in Deal.objects.for_company(cast.company_a).select_related(
                "stage", "pipeline", "person", "organization"
            )
        }
        errors = [row.error for row in selectors.import_failed_rows(job=job)]
    big = deals["Big deal"]
    assert (str(big.value), big.currency, big.stage.name, big.pipeline.name) == (
        "1500.50",
        "EUR",
        "Won over",
        "Partners",
    )
    assert big.person is not None
    assert big.person.name == "Ada Lovelace"
    assert big.organization is not None
    assert big.organization.name == "Engines"
    assert big.owner_id == cast.bob.pk
    assert deals["Small deal"].currency == "USD"
    assert "No stage named Nowhere" in errors[0]
    assert "No pipeline named Nope" in errors[1]
    assert "ten is not a number" in errors[2]
    assert "EURO" in errors[2]


def test_leads_import_needs_a_person_or_organization(cast: Cast) -> None:
    data = (
        b"Lead - Title,Person - Name,Organization - Name,Lead - Value\n"
        b"Warm lead,Ada Lovelace,,250\n"
        b"Orphan lead,,,\n"
    )
    job = job_run(cast, job_make(cast, data, kind="lead"))
    assert (job.created_count, job.failed_count) == (1, 1)
    with tenancy.bound(cast.company_a.pk):
        lead = Lead.objects.for_company(cast.company_a).select_related("person").get()
        row = ImportRow.objects.for_company(cast.company_a).get(job_id=job.pk, number=2)
        services.import_job_rollback(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            job=job,
        )
        lead.refresh_from_db()
    assert lead.person is not None
    assert lead.person.name == "Ada Lovelace"
    assert (str(lead.value_amount), lead.value_currency) == ("250.00", "USD")
    assert row.error.startswith("Person: Required.")
    assert lead.deleted_at is not None
    assert live_persons(cast) == []


def test_mapping_refuses_two_columns_for_one_field(cast: Cast) -> None:
    job = job_make(cast, b"Name,Other name\nA,B\n", start=False)
    with tenancy.bound(cast.company_a.pk), pytest.raises(ServiceError):
        services.import_job_map(
            company=cast.company_a,
            job=job,
            mapping={"0": "name", "1": "name"},
            duplicate_policy="skip",
        )


@pytest.mark.usefixtures("small_chunks", "eager_celery")
def test_the_task_runs_chunk_after_chunk_until_done(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    job = job_make(cast, thousand_rows(50), start=False)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        tenancy.bound(cast.company_a.pk),
    ):
        services.import_job_start(company=cast.company_a, job=job)
    # One task per chunk, each enqueued when the previous one committed.
    assert len(callbacks) == 3
    with tenancy.bound(cast.company_a.pk):
        job.refresh_from_db()
    assert (job.status, job.created_count, job.failed_count) == ("done", 40, 10)


def test_the_sweeper_task_re_enqueues_stalled_jobs_of_every_company(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    job = job_make(cast, thousand_rows(10))
    with tenancy.bound(cast.company_a.pk):
        ImportJob.objects.for_company(cast.company_a).filter(pk=job.pk).update(
            updated_at=timezone.now() - datetime.timedelta(hours=1)
        )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert tasks.import_sweep() == 1
    assert len(callbacks) == 1
