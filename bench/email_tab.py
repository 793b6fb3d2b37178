"""Benchmark: an item's Email tab at scale (linking and visibility issue).

Loads one company of a fresh database (`crm_bench_email_tab` on the server DATABASE_URL names,
or the embedded one) with
- 100,000 persons (bench/pages.py's loader: 150,000 addresses, 2,000 organizations, 10%
  owner-only or team-only);
- four mail accounts: the account owner's (a regular user), the admin's, a team account the
  owner is a member of, and another user's; sharing of each conversation is a mix of shared
  (80%) and private or team-only (20%);
- one person with 5,000 conversations across the four accounts, 20% linked to one of their
  deals; an organization of 50 persons (that person and 49 others with about 80
  conversations each);
- 195,000 conversations in all (the rest each with one or two random persons, or none), one
  in ten of them copied into a second account (the same messages, the same root message: the
  Email tab's dedupe), so 214,500 threads; 2 to 2.5 messages each, with their thread
  memberships, locations, participants linked to persons, and a few attachments. Bodies are
  2 KB of text and HTML for the measured items' mail, a line for the rest.
Rows go in as INSERT ... SELECT over generate_series as the owner role (loading is not what we
measure), then VACUUM ANALYZE and a CHECKPOINT, as the other benchmarks settle their data.

It then measures, as a regular user who reads no mailbox ("rep") and as the account owner
("owner", a regular user too), for the person and for the organization, the first page and
the last (deep) page of
- the Email tab fragment (URL name `inbox_item_emails`) when it exists, through Django's whole
  stack in-process with a signed-in test Client per user (server time, without the network);
- `inbox.selectors.item_conversations(..., offset=, limit=20)` (what the fragment lists);
- `GET /api/v1/persons/{id}/mailMessages?limit=20` (and `organizations/{id}`), with a token.
p50 / p95 over --repeat requests each, and the SQL queries of one request
(CaptureQueriesContext). `--explain` prints EXPLAIN (ANALYZE, BUFFERS) of the slowest statement
of each measurement, run as the runtime role with row-level security, as the request runs it.

Run: `DATABASE_URL=postgresql://postgres@127.0.0.1:5432/crm .venv/bin/python bench/email_tab.py`
(`--threads 50000 --repeat 50` for a quick run; `--reuse` measures the database of an earlier
run again, without loading it).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pages import _load  # noqa: E402 - needs REPO on sys.path
from bench.persons_api import _percentiles, _time, _use_bench_database  # noqa: E402

PAGE = 20
HEAVY_CONVERSATIONS = 5_000
ORGANIZATION_SIZE = 50


@dataclass
class _Seeded:
    company_id: int
    users: dict[str, Any]  # name → User
    tokens: dict[str, str]
    person_id: int
    organization_id: int
    threads: int
    messages: int


# One statement per table, from a plan of the conversations (`bench_conv`): conversation n,
# its account and sharing, the account and sharing of its copy (if any), its persons, its
# number of messages, its deal and the time of its latest message. Conversations 1..heavy are
# the heavy person's.
_PLAN = """
CREATE TEMP TABLE bench_conv AS
SELECT n, acc, sharing, copy_acc, copy_sharing, persons, msgs, deal_id, last_at, rich
FROM (
    SELECT n,
        CASE WHEN n <= %(heavy)s THEN
            CASE WHEN n %% 20 < 8 THEN %(a1)s WHEN n %% 20 < 13 THEN %(a2)s
                 WHEN n %% 20 < 17 THEN %(a3)s ELSE %(a4)s END
        ELSE (ARRAY[%(a1)s, %(a2)s, %(a3)s, %(a4)s]::bigint[])[(1 + n %% 4)::int] END AS acc,
        CASE WHEN n %% 10 = 1 THEN true ELSE n > %(heavy)s AND n %% 20 = 1 END AS copied,
        CASE WHEN n <= %(heavy)s THEN
            ARRAY[%(person)s]::bigint[]
            || CASE WHEN n %% 3 = 0 THEN ARRAY[%(org_first)s + n %% 49]::bigint[]
                    ELSE '{}' END
            || CASE WHEN n %% 7 = 0 THEN ARRAY[%(first)s + (n * 7919) %% %(persons)s]::bigint[]
                    ELSE '{}' END
        WHEN n %% 50 = 0 THEN ARRAY[%(org_first)s + (n / 50) %% 49]::bigint[]
        WHEN n %% 100 < 15 THEN '{}'::bigint[]
        WHEN n %% 5 = 0 THEN ARRAY[%(first)s + (n * 7919) %% %(persons)s,
                                   %(first)s + (n * 104729) %% %(persons)s]::bigint[]
        ELSE ARRAY[%(first)s + (n * 7919) %% %(persons)s]::bigint[] END AS persons,
        CASE WHEN n <= %(heavy)s THEN 1 + n %% 4 ELSE 1 + n %% 3 END AS msgs,
        CASE WHEN n <= %(heavy)s AND n %% 5 = 0
             THEN (ARRAY[%(deal1)s, %(deal2)s]::bigint[])[(1 + n %% 2)::int] END AS deal_id,
        now() - interval '1 minute' * ((n * 7919) %% 1000000) AS last_at,
        n <= %(heavy)s OR n %% 50 = 0 AS rich
    FROM generate_series(1, %(threads)s::bigint) AS n
) c
CROSS JOIN LATERAL (
    SELECT CASE WHEN (n / 20) %% 5 = 0
                THEN CASE WHEN acc = %(a3)s THEN 'team' ELSE 'private' END
                ELSE 'shared' END AS sharing,
           CASE WHEN copied THEN CASE WHEN acc = %(a1)s THEN %(a2)s ELSE %(a1)s END END
               AS copy_acc,
           CASE WHEN copied THEN CASE WHEN n %% 3 = 0 THEN 'private' ELSE 'shared' END END
               AS copy_sharing
) s;
CREATE TEMP TABLE bench_msg AS
SELECT c.n, k, c.msgs, c.rich, c.last_at - interval '3 hours' * (c.msgs - k) AS at,
       %(message_base)s + row_number() OVER (ORDER BY c.n, k) AS id
FROM bench_conv c CROSS JOIN LATERAL generate_series(1, c.msgs) AS k;
CREATE TEMP TABLE bench_root AS SELECT n, min(id) AS id FROM bench_msg GROUP BY n;
CREATE TEMP TABLE bench_thread AS
SELECT %(thread_base)s + 2 * c.n AS id, c.n, c.acc, c.sharing, false AS copy FROM bench_conv c
UNION ALL
SELECT %(thread_base)s + 2 * c.n + 1, c.n, c.copy_acc, c.copy_sharing, true
FROM bench_conv c WHERE c.copy_acc IS NOT NULL;
ANALYZE bench_conv;
ANALYZE bench_msg;
ANALYZE bench_root;
ANALYZE bench_thread;
"""

_ROWS = """
INSERT INTO inbox_mailmessage (id, company_id, key, message_id, in_reply_to, "references",
    subject, sent_at, received_at, from_address, from_name, snippet, body_text, body_html,
    has_attachments, is_bulk, size, raw_path, parse_error, created_at)
SELECT m.id, %(company)s, '<' || m.id || '@bench.example>', '<' || m.id || '@bench.example>',
    CASE WHEN m.k > 1 THEN '<' || (m.id - 1) || '@bench.example>' ELSE '' END, '{}',
    CASE WHEN m.k > 1 THEN 'Re: ' ELSE '' END || 'Conversation ' || m.n, m.at, m.at,
    'sender' || m.n || '@client.example', 'Sender ' || m.n,
    'About the order of conversation ' || m.n || ', message ' || m.k,
    b.text, CASE WHEN m.rich THEN '<html><body><p>' || b.text || '</p></body></html>' ELSE '' END,
    m.n %% 50 = 0, false, 2000 + length(b.text) * 2, 'bench/' || m.id || '.eml', '', now()
FROM bench_msg m
CROSS JOIN LATERAL (
    SELECT CASE WHEN m.rich
        THEN (SELECT string_agg(md5(m.id::text || g::text), ' ') FROM generate_series(1, 60) g)
        ELSE 'Hello, see the figures below. Best regards' END AS text
) b;

INSERT INTO inbox_mailthread (id, company_id, account_id, subject, snippet, message_count,
    first_message_at, last_message_at, has_attachments, is_unread, folder_roles, folder_ids,
    archived, deleted, root_message_id, sharing, blocked, person_ids, deal_id, link_manual,
    created_at, updated_at)
SELECT t.id, %(company)s, t.acc, 'Conversation ' || c.n, 'About the order of conversation '
    || c.n, c.msgs, c.last_at - interval '3 hours' * (c.msgs - 1), c.last_at, c.n %% 50 = 0,
    c.n %% 9 = 0, '{inbox}', ARRAY[f.id], false, false,
    r.id, t.sharing, false, c.persons, c.deal_id, false, now(), now()
FROM bench_thread t
JOIN bench_conv c ON c.n = t.n
JOIN bench_root r ON r.n = t.n
JOIN inbox_mailfolder f ON f.company_id = %(company)s AND f.account_id = t.acc;

-- The persons of each thread as rows, as inbox.linking keeps them (MailThreadPerson).
INSERT INTO inbox_mailthreadperson (company_id, thread_id, person_id)
SELECT %(company)s, t.id, p.person_id
FROM inbox_mailthread t CROSS JOIN LATERAL unnest(t.person_ids) AS p(person_id)
WHERE t.company_id = %(company)s;

INSERT INTO inbox_mailthreadmessage (company_id, thread_id, message_id, account_id, is_unread)
SELECT %(company)s, t.id, m.id, t.acc, false
FROM bench_thread t JOIN bench_msg m ON m.n = t.n;

INSERT INTO inbox_mailmessagelocation (company_id, account_id, folder_id, provider_id,
    message_id, uid, flags, created_at)
SELECT %(company)s, t.acc, f.id, '1:' || m.id, m.id, m.id, ARRAY['\\Seen'], now()
FROM bench_thread t
JOIN bench_msg m ON m.n = t.n
JOIN inbox_mailfolder f ON f.company_id = %(company)s AND f.account_id = t.acc;

-- The mailbox's side (from on a sent message, to on a received one) with no person, then
-- each person of the conversation: the first one the other side, the others in Cc.
INSERT INTO inbox_mailparticipant (company_id, message_id, role, address, name, position,
    person_id)
SELECT %(company)s, m.id, CASE WHEN m.k %% 2 = 0 THEN 'from' ELSE 'to' END,
    a.email_address, 'Bench', 0, NULL
FROM bench_msg m
JOIN bench_thread t ON t.n = m.n AND NOT t.copy
JOIN inbox_mailaccount a ON a.company_id = %(company)s AND a.id = t.acc
UNION ALL
SELECT %(company)s, m.id,
    CASE WHEN p.position > 1 THEN 'cc' WHEN m.k %% 2 = 0 THEN 'to' ELSE 'from' END,
    e.normalized, 'Person', p.position, p.person_id
FROM bench_msg m
JOIN bench_conv c ON c.n = m.n
CROSS JOIN LATERAL unnest(c.persons) WITH ORDINALITY AS p(person_id, position)
JOIN contacts_personemail e
    ON e.company_id = %(company)s AND e.person_id = p.person_id AND e.position = 0
UNION ALL
SELECT %(company)s, m.id, CASE WHEN m.k %% 2 = 0 THEN 'to' ELSE 'from' END,
    'someone' || m.n || '@unknown.example', 'Someone', 1, NULL
FROM bench_msg m JOIN bench_conv c ON c.n = m.n AND cardinality(c.persons) = 0;

INSERT INTO inbox_mailattachment (company_id, message_id, filename, content_type, size, kind,
    content_id, part_path)
SELECT %(company)s, m.id, 'figures-' || m.n || '.pdf', 'application/pdf', 120000, 'file', '',
    '2'
FROM bench_msg m WHERE m.n %% 50 = 0;
"""


def _seed(*, persons: int, threads: int) -> _Seeded:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from contacts.models import Organization
    from crm import services, tenancy
    from crm.db import roles
    from crm.models import Role
    from crm.sales import services as sales_services
    from crm.sales.models import Deal, Stage
    from inbox.models import (
        AccountKind,
        FolderRole,
        MailAccount,
        MailAccountMember,
        MailFolder,
        Sharing,
    )

    if threads <= HEAVY_CONVERSATIONS:
        raise SystemExit(f"--threads must be more than {HEAVY_CONVERSATIONS}")
    call_command("migrate", verbosity=0)
    company, admin, _ = services.bootstrap_company(
        name="Bench Co", admin_email="admin@bench.test", password="bench-password-123"
    )
    users = {"admin": admin}
    tokens: dict[str, str] = {}
    with tenancy.bound(company.pk):
        for name in ("owner", "rep", "other"):
            users[name] = services.user_get_or_create(
                email=f"{name}@bench.test", password="bench-password-123", name=name.title()
            )
            services.membership_add(company=company, user=users[name], role=Role.REGULAR)
        for name in ("owner", "rep"):
            tokens[name] = services.api_token_issue(company=company, user=users[name])
        accounts = []
        for owner, kind in (("owner", "personal"), ("admin", "personal"), ("admin", "team")):
            accounts.append(
                MailAccount.objects.create(
                    company=company,
                    owner=users[owner],
                    kind=kind,
                    email_address=f"{owner}-{kind}@bench.test",
                    default_sharing=Sharing.SHARED,
                )
            )
        accounts.append(
            MailAccount.objects.create(
                company=company,
                owner=users["other"],
                kind=AccountKind.PERSONAL,
                email_address="other@bench.test",
            )
        )
        for name in ("owner", "other"):  # the team account's members
            MailAccountMember.objects.create(company=company, account=accounts[2], user=users[name])
        for account in accounts:
            MailFolder.objects.create(
                company=company, account=account, name="INBOX", role=FolderRole.INBOX
            )
    person_ids = _load(company_id=company.pk, owner_id=admin.pk, persons=persons, seed=42)
    first = person_ids[0]
    # Person 1 (visible to everyone: every tenth is not) is the busy one; persons 2..50 and it
    # make the organization.
    person_id = person_ids[1]
    with tenancy.bound(company.pk):
        organization = Organization.objects.create(
            company=company, owner=admin, name="Email Tab Organization", visible_to=7
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE contacts_person SET organization_id = %s "
                "WHERE company_id = %s AND id = ANY(%s)",
                [organization.pk, company.pk, person_ids[1 : 1 + ORGANIZATION_SIZE]],
            )
        pipeline = sales_services.pipeline_default_ensure(company=company)
        stage = Stage.objects.for_company(company).filter(pipeline=pipeline).order_by("position")[0]
        deals = [
            Deal.objects.create(
                company=company,
                owner=admin,
                title=f"Order {k}",
                pipeline=pipeline,
                stage=stage,
                person_id=person_id,
                updated_at=timezone.now(),
            )
            for k in range(2)
        ]

    with tenancy.owner_mode(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval('inbox_mailmessage_id_seq'), nextval('inbox_mailthread_id_seq')"
        )
        message_base, thread_base = cursor.fetchone()
        parameters = {
            "company": company.pk,
            "a1": accounts[0].pk,
            "a2": accounts[1].pk,
            "a3": accounts[2].pk,
            "a4": accounts[3].pk,
            "heavy": HEAVY_CONVERSATIONS,
            "person": person_id,
            "org_first": person_ids[2],
            "first": first,
            "persons": persons,
            "deal1": deals[0].pk,
            "deal2": deals[1].pk,
            "threads": threads,
            "message_base": message_base,
            "thread_base": thread_base,
        }
        cursor.execute(_PLAN, parameters)
        for statement in _ROWS.split(";\n"):
            if statement.strip():
                cursor.execute(statement, parameters)
        cursor.execute("SELECT count(*), max(id) FROM bench_thread")
        thread_count, last_thread = cursor.fetchone()
        cursor.execute("SELECT count(*), max(id) FROM bench_msg")
        message_count, last_message = cursor.fetchone()
        cursor.execute("SELECT setval('inbox_mailmessage_id_seq', %s)", [last_message])
        cursor.execute("SELECT setval('inbox_mailthread_id_seq', %s)", [last_thread])
        cursor.execute("DROP TABLE bench_conv, bench_msg, bench_thread")
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")  # the login: VACUUM and CHECKPOINT need an owner / superuser
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute("CHECKPOINT")
        cursor.execute(roles.role_statement())
    return _Seeded(
        company_id=company.pk,
        users=users,
        tokens=tokens,
        person_id=person_id,
        organization_id=organization.pk,
        threads=int(thread_count),
        messages=int(message_count),
    )


def _seeded_again() -> _Seeded:
    """What `_seed` returned, read back from a database it loaded before (--reuse). The API
    tokens are issued anew (only their digests are stored)."""
    from django.db import connection

    from contacts.models import Organization, Person
    from crm import services, tenancy
    from crm.models import Company, User
    from inbox.models import MailMessage, MailThread

    with tenancy.owner_mode(), connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM crm_company")
        company_id = int(cursor.fetchone()[0])
    users = {
        name: User.objects.get(email=f"{name}@bench.test")
        for name in ("admin", "owner", "rep", "other")
    }
    with tenancy.bound(company_id):
        company = Company.objects.get(pk=company_id)
        tokens = {
            name: services.api_token_issue(company=company, user=users[name])
            for name in ("owner", "rep")
        }
        persons = Person.objects.for_company(company_id).order_by("pk")
        return _Seeded(
            company_id=company_id,
            users=users,
            tokens=tokens,
            person_id=persons.values_list("pk", flat=True)[1],  # as `_seed` chose it
            organization_id=Organization.objects.for_company(company_id)
            .get(name="Email Tab Organization")
            .pk,
            threads=MailThread.objects.for_company(company_id).count(),
            messages=MailMessage.objects.for_company(company_id).count(),
        )


@dataclass
class _Result:
    what: str
    user: str
    item: str
    page: str
    samples: list[float]
    queries: int
    slowest: list[tuple[float, str]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=195_000, help="conversations (+ copies)")
    parser.add_argument("--database", default="crm_bench_email_tab")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument(
        "--fragment-deep",
        default="page={page}",
        help="query string of the fragment's deep page; {page} is the last page's number, "
        "{offset} its first row",
    )
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the slowest statements")
    parser.add_argument("--items", default="person,organization", help="of person,organization")
    parser.add_argument("--users", default="rep,owner", help="of rep,owner")
    parser.add_argument(
        "--measure", default="fragment,selector,api", help="of fragment,selector,api"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the database an earlier run loaded (--database) without loading it again",
    )
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    if args.reuse:
        from crm import localservices

        server, _, _name = localservices.database_url().rpartition("/")
        os.environ["DATABASE_URL"] = f"{server}/{args.database}"
    else:
        _use_bench_database(args.database)
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import NoReverseMatch, reverse

    from crm import tenancy
    from crm.models import Membership
    from inbox import selectors

    started = time.perf_counter()
    seeded = _seeded_again() if args.reuse else _seed(persons=args.persons, threads=args.threads)
    print(
        f"loaded {args.persons:,} persons, {seeded.threads:,} threads, {seeded.messages:,} "
        f"messages in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    gc.collect()  # measure a process shaped like a server's

    items = {"person": seeded.person_id, "organization": seeded.organization_id}
    api_paths = {"person": "persons", "organization": "organizations"}
    with tenancy.bound(seeded.company_id):
        memberships = {
            name: Membership.objects.get(company_id=seeded.company_id, user=seeded.users[name])
            for name in ("rep", "owner")
        }
    clients = {name: Client() for name in memberships}
    for name, client in clients.items():
        client.force_login(seeded.users[name])
    try:
        reverse("inbox_item_emails", kwargs={"kind": "person", "item_id": seeded.person_id})
        has_fragment = True
    except NoReverseMatch:
        has_fragment = False

    def ok(response: Any) -> Any:
        assert response.status_code == 200, (response.status_code, response.content[:300])
        return response

    results: list[_Result] = []

    def measure(what: str, user: str, item: str, page: str, call: Callable[[], object]) -> None:
        call()  # warm up
        with CaptureQueriesContext(connection) as captured:
            call()
        # Read now: `captured_queries` slices the connection's log, which the next request
        # (request_started → reset_queries) empties.
        queries = list(captured.captured_queries)
        slowest = sorted(((float(q["time"]), q["sql"]) for q in queries), reverse=True)
        samples = _time(call, args.repeat)
        results.append(_Result(what, user, item, page, samples, len(queries), slowest))
        print(f"  {what:34s} {user:6s} {item:12s} {page:22s} {_percentiles(samples)}", flush=True)

    for item, item_id in items.items():
        if item not in args.items.split(","):
            continue
        for user, membership in memberships.items():
            if user not in args.users.split(","):
                continue
            with tenancy.bound(seeded.company_id, user_id=membership.user_id):
                conversations = selectors.item_conversations(
                    membership=membership, kind=item, item_id=item_id
                ).total
                messages = selectors.item_messages(
                    membership=membership, kind=item, item_id=item_id
                ).count()
            deep = max(0, conversations - PAGE)
            deep_messages = max(0, messages - PAGE)
            print(
                f"{item} {item_id} as {user}: {conversations:,} conversations, "
                f"{messages:,} messages",
                flush=True,
            )

            def conversations_page(
                offset: int, _membership: Membership = membership, _kind: str = item
            ) -> Callable[[], object]:
                def call() -> object:
                    with tenancy.bound(seeded.company_id, user_id=_membership.user_id):
                        page = list(
                            selectors.item_conversations(
                                membership=_membership,
                                kind=_kind,
                                item_id=items[_kind],
                                offset=offset,
                                limit=PAGE,
                            ).threads
                        )
                    assert page, "no conversations on the page"
                    return page

                return call

            def get(url: str, _user: str = user, **headers: str) -> Callable[[], object]:
                return lambda: ok(clients[_user].get(url, **headers))

            wanted = set(args.measure.split(","))
            if has_fragment and "fragment" in wanted:
                url = reverse("inbox_item_emails", kwargs={"kind": item, "item_id": item_id})
                query = args.fragment_deep.format(page=deep // PAGE + 1, offset=deep)
                measure("fragment inbox_item_emails", user, item, "first page", get(url))
                measure(
                    "fragment inbox_item_emails", user, item, f"?{query}", get(f"{url}?{query}")
                )
            if "selector" in wanted:
                measure("selector item_conversations", user, item, "[0:20]", conversations_page(0))
                measure(
                    "selector item_conversations",
                    user,
                    item,
                    f"[{deep}:{deep + PAGE}] (last)",
                    conversations_page(deep),
                )
            if "api" in wanted:
                api = f"/api/v1/{api_paths[item]}/{item_id}/mailMessages?limit={PAGE}"
                token = {"HTTP_X_API_TOKEN": seeded.tokens[user]}
                measure("API mailMessages", user, item, "first page", get(api, **token))
                measure(
                    "API mailMessages",
                    user,
                    item,
                    f"start={deep_messages} (last)",
                    get(f"{api}&start={deep_messages}", **token),
                )

    version = connection.cursor().connection.info.server_version
    print(
        f"\n{args.persons:,} persons, {seeded.threads:,} threads, {seeded.messages:,} messages; "
        f"PostgreSQL {version // 10000}.{version % 10000}; load {os.getloadavg()[0]:.2f}; "
        f"{'' if has_fragment else 'no fragment URL inbox_item_emails yet; '}"
        f"p50 / p95 over {args.repeat} requests (target p95 < 100 ms)"
    )
    for r in results:
        print(
            f"{r.what:30s} {r.user:6s} {r.item:12s} {r.page:24s} {_percentiles(r.samples)}  "
            f"{r.queries:3d} queries"
        )
    print("\nslowest statement of one request of each (seconds):")
    for r in results:
        seconds, sql = r.slowest[0]
        print(f"  {r.what} {r.user} {r.item} {r.page}: {seconds:.3f}  {sql[:200]}")
    if args.explain:
        _explain(results, seeded, memberships)


def _explain(results: list[_Result], seeded: _Seeded, memberships: dict[str, Any]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each measurement's slowest statement, bound to the company
    and the user as the request was (row-level security shapes the plan)."""
    from django.db import connection

    from crm import tenancy

    done: set[str] = set()
    for r in results:
        seconds, sql = r.slowest[0]
        if sql in done:
            continue
        done.add(sql)
        user_id = memberships[r.user].user_id
        with tenancy.bound(seeded.company_id, user_id=user_id), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"\n=== {r.what}, {r.user}, {r.item}, {r.page} ({seconds * 1000:.1f} ms)\n{sql}\n")
        print(plan)


if __name__ == "__main__":
    main()
