"""Benchmark: persons at scale (CRM core issue).

Loads 100,000 persons with 150,000 email addresses into one company of a fresh database
(`crm_bench` on the server DATABASE_URL names, or the embedded one), then reports p50 / p95
latency of
- `GET /api/v2/persons?limit=100`: the first page, a deep page (past 90,000 rows), and every
  page of a walk through the whole list;
- the same first page for a regular user, whose list goes through the item-access filter;
- `contacts.selectors.persons_by_addresses` with 1,000 addresses (the mail-linking lookup).

Requests go through Django's full stack in-process (middleware, token auth, row-level
security, serialization, JSON rendering) with the test client: server time without the
network. Run: `.venv/bin/python bench/persons_api.py` (add `--persons 20000` for a quick run).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _use_bench_database(name: str) -> None:
    """Point DATABASE_URL at a fresh database `name` on the same server."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    from crm import localservices

    url = localservices.database_url()
    import psycopg

    server, _, _db = url.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = f"{server}/{name}"


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {p50 * 1000:6.2f} ms   p95 {p95 * 1000:6.2f} ms   (n={len(ordered)})"


def _time(call: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def _copy_rows(model: type, rows: list[dict[str, object]]) -> None:
    """COPY rows into the model's table as the owner (loading is not what we measure)."""
    from django.db import connection

    fields = list(model._meta.concrete_fields)  # type: ignore[attr-defined]
    columns = [f'"{f.column}"' for f in fields]  # quoted: "primary" is a keyword
    with connection.cursor() as cursor:
        table = model._meta.db_table  # type: ignore[attr-defined]
        with cursor.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(
                    [row[f.attname] if f.attname in row else f.get_default() for f in fields]
                )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--database", default="crm_bench")
    args = parser.parse_args()

    _use_bench_database(args.database)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.http import HttpResponse
    from django.test import Client
    from django.utils import timezone

    from contacts.models import Person, PersonEmail
    from contacts.selectors import persons_by_addresses
    from crm import services, tenancy
    from crm.db import roles
    from crm.models import Company, Role

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    company, admin, admin_token = services.bootstrap_company(
        name="Bench Co", admin_email="admin@bench.test", password="bench-password-123"
    )
    with tenancy.bound(company.pk):
        rep = services.user_get_or_create(
            email="rep@bench.test", password="bench-password-123", name="Rep"
        )
        services.membership_add(company=company, user=rep, role=Role.REGULAR)
        rep_token = services.api_token_issue(company=company, user=rep)

    now = timezone.now()
    rng = random.Random(42)
    n = args.persons
    with tenancy.owner_mode():
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence('contacts_person', 'id'))")
            first_id = int(cursor.fetchone()[0])
        persons, emails, addresses = [], [], []
        for i in range(n):
            person_id = first_id + i
            visible_to = 7 if i % 10 else rng.choice([1, 3])
            persons.append(
                {
                    "id": person_id,
                    "company_id": company.pk,
                    "owner_id": admin.pk,
                    "visible_to": visible_to,
                    "name": f"Person {i}",
                    "first_name": "Person",
                    "last_name": str(i),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            count = 2 if i < n // 2 else 1  # 1.5 addresses per person on average
            for position in range(count):
                address = f"person{i}.{position}@company{i % 997}.example"
                addresses.append(address)
                emails.append(
                    {
                        "company_id": company.pk,
                        "person_id": person_id,
                        "value": address,
                        "normalized": address,
                        "label": "work",
                        "primary": position == 0,
                        "position": position,
                    }
                )
        _copy_rows(Person, persons)
        _copy_rows(PersonEmail, [{"id": first_id + k, **e} for k, e in enumerate(emails)])
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('contacts_person', 'id'), %s)",
                [first_id + n],
            )
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('contacts_personemail', 'id'), %s)",
                [first_id + len(emails)],
            )
    # Measure a settled database, as a live one is: vacuumed (the visibility map lets index-only
    # scans skip the heap) and checkpointed (no flush of the load competes with the requests).
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")  # the login: VACUUM and CHECKPOINT need an owner / superuser
        cursor.execute("VACUUM (ANALYZE) contacts_person, contacts_personemail")
        cursor.execute("CHECKPOINT")
        cursor.execute(roles.role_statement())
    print(
        f"loaded {n} persons and {len(emails)} addresses in {time.perf_counter() - started:.1f} s"
    )
    # Measure a process shaped like a server's: the 250,000 loading rows would otherwise make
    # every full garbage collection of the measured requests walk them.
    email_count = len(emails)
    sample = rng.sample(addresses, 900) + [f"nobody{k}@nowhere.example" for k in range(100)]
    del persons, emails, addresses
    gc.collect()

    # One client per user, as one server process serves many requests: a new test Client
    # rebuilds Django's middleware chain, which no server does per request.
    clients = {admin_token: Client(), rep_token: Client()}

    def get(token: str, url: str) -> HttpResponse:
        response = clients[token].get(url, HTTP_X_API_TOKEN=token)
        assert response.status_code == 200, response.content[:300]
        return response

    first_page = "/api/v2/persons?limit=100"
    get(admin_token, first_page)  # warm up connections and caches

    # Walk every page once, keeping the cursor of a deep one.
    walk, cursor, deep_cursor, pages = [], None, None, 0
    while True:
        url = first_page + (f"&cursor={cursor}" if cursor else "")
        start = time.perf_counter()
        response = get(admin_token, url)
        walk.append(time.perf_counter() - start)
        body = json.loads(response.content)  # parsing is the client's time, not measured
        pages += 1
        cursor = body["additional_data"]["next_cursor"]  # type: ignore[index]
        if pages * 100 >= int(n * 0.9) and deep_cursor is None:
            deep_cursor = cursor
        if not cursor:
            break
    assert pages * 100 >= n, f"walked {pages} pages for {n} persons"
    deep_page = first_page + f"&cursor={deep_cursor}"

    with tenancy.bound(company.pk):
        company = Company.objects.get(pk=company.pk)

    def lookup() -> None:
        with tenancy.bound(company.pk):
            found = persons_by_addresses(company=company, addresses=sample)
        assert len(found) == 900

    results = {
        "GET /api/v2/persons?limit=100, first page (admin)": _time(
            lambda: get(admin_token, first_page), 200
        ),
        f"GET /api/v2/persons?limit=100, deep page (past row {int(n * 0.9)})": _time(
            lambda: get(admin_token, deep_page), 200
        ),
        f"GET /api/v2/persons?limit=100, all {pages} pages walked once": walk,
        "GET /api/v2/persons?limit=100, first page (regular user, access filter)": _time(
            lambda: get(rep_token, first_page), 200
        ),
        "persons_by_addresses, 1,000 addresses (900 known)": _time(lookup, 200),
    }
    print(
        f"\n{n} persons, {email_count} addresses, PostgreSQL "
        f"{connection.cursor().connection.info.server_version}"
    )
    for name, samples in results.items():
        print(f"{name:75s} {_percentiles(samples)}")


if __name__ == "__main__":
    main()
