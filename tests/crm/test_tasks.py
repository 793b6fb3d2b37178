"""The Celery task base binds each task to the company it was given (K1)."""

from __future__ import annotations

import json
import uuid

import pytest
from django.conf import settings
from redis import Redis
from redis.exceptions import RedisError

from crm import tenancy
from crm.celery_app import TenantTask, app
from crm.models import Team
from tests.conftest import Cast, service_missing


@app.task(base=TenantTask, name="tests.team_names_seen")
def team_names_seen(*, company_id: int) -> list[str]:
    # Past the Python wall on purpose: only row-level security scopes this query.
    return sorted(Team._base_manager.values_list("name", flat=True))


@app.task(base=TenantTask, name="tests.report_team_names")
def report_team_names(*, company_id: int, key: str) -> None:
    """The worker reports what it saw through Redis (no result backend is configured)."""
    names = sorted(Team._base_manager.values_list("name", flat=True))
    Redis.from_url(settings.REDIS_URL).rpush(key, json.dumps(names))


def _add_globex_team(cast: Cast) -> None:
    with tenancy.bound(cast.company_b.pk):
        Team.objects.create(company=cast.company_b, name="Globex Ops")


@pytest.mark.django_db
def test_a_tenant_task_sees_only_the_company_it_was_given(cast: Cast) -> None:
    _add_globex_team(cast)
    assert team_names_seen.apply(kwargs={"company_id": cast.company_a.pk}).get() == ["Sales"]
    assert team_names_seen.apply(kwargs={"company_id": cast.company_b.pk}).get() == ["Globex Ops"]


@pytest.mark.django_db
def test_a_tenant_task_without_company_id_is_refused() -> None:
    result = team_names_seen.apply(kwargs={})
    assert result.failed()
    assert isinstance(result.result, tenancy.TenancyError)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_tenant_task_through_redis_bound_to_its_company(
    cast: Cast,
) -> None:
    try:
        Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except RedisError:
        service_missing(f"Redis at {settings.REDIS_URL}")
    from celery.contrib.testing.worker import start_worker

    _add_globex_team(cast)
    redis = Redis.from_url(settings.REDIS_URL)
    key = f"tests:report_team_names:{uuid.uuid4()}"
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            report_team_names.apply_async(kwargs={"company_id": cast.company_b.pk, "key": key})
            reported = redis.blpop([key], timeout=30)
    finally:
        redis.delete(key)
    assert reported is not None, "the worker did not run the task"
    assert json.loads(reported[1]) == ["Globex Ops"]
