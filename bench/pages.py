"""Benchmark: the contacts pages at scale (CRM in the browser issue).

Loads 100,000 persons (150,000 email addresses, 50,000 phone numbers, 2,000 organizations)
into one company of a fresh database (`crm_bench_pages` on the server DATABASE_URL names, or
the embedded one), then reports server time p50 / p95 and the number of SQL queries of
- the persons list page (URL name "person_list", else "contacts"), for the admin and for a
  regular user, whose list goes through the item-access filter;
- person detail pages of many different persons.

Requests go through Django's full stack in-process (sessions, authentication, tenancy
middleware, row-level security, templates) with one signed-in test Client per user, reused
across requests as a server process serves many: server time without the network or the
browser. Loading follows bench/persons_api.py: COPY as the owner, then VACUUM ANALYZE and a
CHECKPOINT so the measurement sees a settled database.

Run: `.venv/bin/python bench/pages.py` (add `--persons 20000` for a quick run).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# The loader and the statistics of the persons benchmark, shared rather than copied.
from bench.persons_api import (  # noqa: E402 - needs REPO on sys.path
    _copy_rows,
    _percentiles,
    _time,
    _use_bench_database,
)

ORGANIZATIONS = 2_000


def _load(*, company_id: int, owner_id: int, persons: int, seed: int) -> list[int]:
    """COPY the contacts into the company as the owner role; returns the persons' ids."""
    from django.db import connection
    from django.utils import timezone

    from contacts.models import Organization, Person, PersonEmail, PersonPhone
    from crm import tenancy

    now = timezone.now()
    rng = random.Random(seed)

    def next_id(table: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))")
            return int(cursor.fetchone()[0])

    def set_sequence(table: str, last: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [last])

    owned = {"company_id": company_id, "owner_id": owner_id, "created_at": now, "updated_at": now}
    with tenancy.owner_mode():
        first_org = next_id("contacts_organization")
        organizations = [
            {**owned, "id": first_org + k, "visible_to": 7, "name": f"Company {k}"}
            for k in range(ORGANIZATIONS)
        ]
        _copy_rows(Organization, organizations)
        set_sequence("contacts_organization", first_org + ORGANIZATIONS)

        first_person = next_id("contacts_person")
        rows: list[dict[str, Any]] = []
        emails: list[dict[str, Any]] = []
        phones: list[dict[str, Any]] = []
        for i in range(persons):
            person_id = first_person + i
            # Spread over a year, as a live table is: sorting by "last updated" must not
            # benefit from every row sharing one timestamp.
            stamp = now - datetime.timedelta(minutes=rng.randrange(525_600))
            rows.append(
                {
                    **owned,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "id": person_id,
                    # 10% owner-only or team-only: the regular user's list filters by access.
                    "visible_to": 7 if i % 10 else rng.choice([1, 3]),
                    "name": f"Person {i}",
                    "first_name": "Person",
                    "last_name": str(i),
                    # Two persons in three work for an organization, as in a real CRM.
                    "organization_id": first_org + i % ORGANIZATIONS if i % 3 else None,
                    "job_title": "Buyer" if i % 2 else "",
                }
            )
            for position in range(2 if i < persons // 2 else 1):
                address = f"person{i}.{position}@company{i % 997}.example"
                emails.append(
                    {
                        "company_id": company_id,
                        "person_id": person_id,
                        "value": address,
                        "normalized": address,
                        "label": "work",
                        "primary": position == 0,
                        "position": position,
                    }
                )
            if i % 2 == 0:
                phones.append(
                    {
                        "company_id": company_id,
                        "person_id": person_id,
                        "value": f"+1555{i:07d}",
                        "label": "work",
                        "primary": True,
                        "position": 0,
                    }
                )
        _copy_rows(Person, rows)
        set_sequence("contacts_person", first_person + persons)
        first_email = next_id("contacts_personemail")
        _copy_rows(PersonEmail, [{"id": first_email + k, **e} for k, e in enumerate(emails)])
        set_sequence("contacts_personemail", first_email + len(emails))
        first_phone = next_id("contacts_personphone")
        _copy_rows(PersonPhone, [{"id": first_phone + k, **p} for k, p in enumerate(phones)])
        set_sequence("contacts_personphone", first_phone + len(phones))
    return [int(row["id"]) for row in rows]


def _list_url() -> str:
    from django.urls import NoReverseMatch, reverse

    for name in ("person_list", "contacts"):
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    raise SystemExit("no persons list page yet (URL name person_list or contacts)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--database", default="crm_bench_pages")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument(
        "--slowest", type=int, default=5, help="print the N slowest SQL queries of each page"
    )
    args = parser.parse_args()

    _use_bench_database(args.database)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from crm import services, tenancy
    from crm.db import roles
    from crm.models import Role

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    company, admin, _token = services.bootstrap_company(
        name="Bench Co", admin_email="admin@bench.test", password="bench-password-123"
    )
    with tenancy.bound(company.pk):
        rep = services.user_get_or_create(
            email="rep@bench.test", password="bench-password-123", name="Rep"
        )
        services.membership_add(company=company, user=rep, role=Role.REGULAR)
    person_ids = _load(company_id=company.pk, owner_id=admin.pk, persons=args.persons, seed=42)
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")  # the login: VACUUM and CHECKPOINT need an owner / superuser
        cursor.execute(
            "VACUUM (ANALYZE) contacts_organization, contacts_person, contacts_personemail, "
            "contacts_personphone"
        )
        cursor.execute("CHECKPOINT")
        cursor.execute(roles.role_statement())
    print(f"loaded {len(person_ids)} persons in {time.perf_counter() - started:.1f} s")
    # Measure a process shaped like a server's: no loading rows for the collector to walk.
    gc.collect()

    # One signed-in client per user, reused: a new test Client rebuilds Django's middleware
    # chain, which no server does per request.
    clients = {"admin": Client(), "rep": Client()}
    clients["admin"].force_login(admin)
    clients["rep"].force_login(rep)

    def get(user: str, url: str) -> object:
        response = clients[user].get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        return response

    slowest: dict[str, list[tuple[float, str]]] = {}

    def queries(user: str, url: str, *, show: bool = True) -> int:
        with CaptureQueriesContext(connection) as captured:
            get(user, url)
        # Where a slow page spends its time: its slowest statements, for the page's authors.
        if show:
            timed = sorted(
                ((float(q["time"]), q["sql"]) for q in captured.captured_queries), reverse=True
            )
            slowest[f"{user} {url}"] = timed[: args.slowest]
        return len(captured.captured_queries)

    list_url = _list_url()
    # Persons everybody may see (visible_to 7: every tenth is not), spread over the table.
    rng = random.Random(7)
    detail_urls = [
        reverse("person_detail", args=[pid])
        for pid in rng.sample([p for k, p in enumerate(person_ids) if k % 10], 50)
    ]
    for user in clients:  # warm up connections, templates and caches
        get(user, list_url)
        get(user, detail_urls[0])

    cycle = iter(detail_urls * (args.repeat // len(detail_urls) + 1))
    results = {
        f"GET {list_url} persons list, first page (admin)": (
            _time(lambda: get("admin", list_url), args.repeat),
            queries("admin", list_url),
        ),
        f"GET {list_url} persons list, first page (regular user, access filter)": (
            _time(lambda: get("rep", list_url), args.repeat),
            queries("rep", list_url),
        ),
        f"GET person detail, {len(detail_urls)} different persons (admin)": (
            _time(lambda: get("admin", next(cycle)), args.repeat),
            max(queries("admin", url, show=url == detail_urls[0]) for url in detail_urls[:10]),
        ),
    }
    version = connection.cursor().connection.info.server_version
    print(f"\n{len(person_ids)} persons, {ORGANIZATIONS} organizations, PostgreSQL {version}")
    for name, (samples, count) in results.items():
        print(f"{name:78s} {_percentiles(samples)}   {count} queries")
    if args.slowest:
        print("\nslowest SQL of one request of each page (seconds):")
        for page, timed in slowest.items():
            print(f"  {page}")
            for seconds, sql in timed:
                print(f"    {seconds:.3f}  {sql[:300]}")


if __name__ == "__main__":
    main()
