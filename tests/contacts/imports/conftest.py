"""The import tests: signed-in browsers of the cast (from the web pages' tests) and helpers that
make a job from bytes and run it chunk by chunk, as the task would."""

from __future__ import annotations

import io

from contacts.imports import services
from contacts.models import ImportJob
from crm import tenancy
from crm.models import User
from tests.conftest import Cast
from tests.crm.web.conftest import alice_client, bob_client, carol_client, eager_celery

__all__ = ["alice_client", "bob_client", "carol_client", "eager_celery"]


def job_make(
    cast: Cast,
    data: bytes,
    *,
    kind: str = "person",
    user: User | None = None,
    policy: str = "skip",
    start: bool = True,
) -> ImportJob:
    """A job of Acme's made from `data` with the guessed mapping, started unless told not."""
    membership = cast.membership(user or cast.alice, cast.company_a)
    with tenancy.bound(cast.company_a.pk):
        job = services.import_job_create(
            company=cast.company_a,
            membership=membership,
            kind=kind,
            file_name="upload.csv",
            stream=io.BytesIO(data),
        )
        services.import_job_map(
            company=cast.company_a, job=job, mapping=job.mapping, duplicate_policy=policy
        )
        if start:
            services.import_job_start(company=cast.company_a, job=job)
    return job


def job_run(cast: Cast, job: ImportJob, *, max_chunks: int | None = None) -> ImportJob:
    """Run chunks, each in its own bound transaction as the task does; the job reloaded."""
    chunks = 0
    while max_chunks is None or chunks < max_chunks:
        chunks += 1
        with tenancy.bound(cast.company_a.pk):
            if not services.import_chunk_run(company=cast.company_a, job_id=job.pk):
                break
    with tenancy.bound(cast.company_a.pk):
        return ImportJob.objects.for_company(cast.company_a).get(pk=job.pk)
