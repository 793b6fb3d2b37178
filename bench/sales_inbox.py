"""Benchmark: the Sales Inbox's list, search and thread view at a million messages (Sales Inbox
issue, B1 / B3).

Loads one company of a fresh database (`crm_bench_sales_inbox` on the server DATABASE_URL
names, or the embedded one) with
- 100 users and 50 mail accounts: 40 personal (users 1 to 40) and 10 team accounts (owned by
  the admin; users 41 to 100 are members of one each, six a team; user 1 is also a member of
  teams 1 to 4);
- 20,000 persons (bench/pages.py's loader), one correspondent in ten being one of them;
- `--messages` messages (1,000,000) in conversations of 1 to 30 messages (2.5 on average)
  over two years, one conversation in eight also copied into a second account (the same
  messages, the account's own thread), so about 450,000 threads; each message received
  (INBOX, or Archive when older than 60 days, one in four) or sent (Sent), with its
  participants (from, to, sometimes cc), 5% with an attachment; unread mail in the last 30
  days; labels on 4.5% of the threads; 0.2% blocked;
- text in the seeds' five languages (English 30%, Dutch 20%, Turkish 20%, Estonian 15%, Polish
  15%) from sentence templates, with a product name from a pool of 3,000 invented words, a
  purchase order number, the common term "Acme" in about 35% of messages and the rare term
  "Zanzibar" in 30 messages.
Rows go in by COPY as the owner role (loading is not what we measure); then the full-text
index is built by `inbox.search.company_reindex` (the backfill path of migration 0005, timed
and reported), then VACUUM ANALYZE and a CHECKPOINT.

It then measures, for a user with one account ("one", user 20), a user with five ("several",
user 1: personal and four team accounts) and the admin (the ten team accounts), p50 / p95 over
`--repeat` calls and the SQL queries of one call:
- `inbox.search.mailbox_page` (what the web page calls once per page): the inbox's first
  page, a deep page (by cursor, after `--deep` conversations), one account of several,
  searches for a rare term, a common term (first and a deep page), and operator queries
  (`from:` + `has:attachment`, `label:`, a word + `before:`), and is:unread;
- the thread view (`inbox_thread`, a GET through Django's whole stack with a signed-in test
  Client, server time without the network), for `--threads` different conversations;
- the Sales Inbox page itself (URL name `inbox`, with and without `q=`) when it exists.
`--explain` prints the plan of the door's statement for each search, run as the owner.

Run: `DATABASE_URL=postgresql://postgres@127.0.0.1:5432/crm .venv/bin/python
bench/sales_inbox.py` (`--messages 100000` for a quick run; `--reuse` measures the database of
an earlier run again without loading it).
"""

# ruff: noqa: RUF001 - the Turkish dotless i is a letter here, not a typo
from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pages import _load  # noqa: E402 - needs REPO on sys.path
from bench.persons_api import _percentiles, _time, _use_bench_database  # noqa: E402

USERS = 100
PERSONAL_ACCOUNTS = 40
TEAM_ACCOUNTS = 10
TEAM_SIZE = 6
PERSONS = 20_000
CONTACTS = 5_000
DOMAINS = 600
PRODUCTS = 3_000
RARE = "Zanzibar"
RARE_MESSAGES = 30
COMMON = "Acme"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CHUNK = 20_000  # conversations loaded per round of COPY

LANGUAGES = {  # share of conversations
    "en": 0.30,
    "nl": 0.20,
    "tr": 0.20,
    "et": 0.15,
    "pl": 0.15,
}
SENTENCES = {
    "en": [
        "Hi {name}, thanks for your message about the {product} order.",
        "Please find the updated quotation for {product} attached.",
        "We can deliver the {product} units by {day}, as agreed with {acme}.",
        "Could you confirm the purchase order {po} so we can schedule the shipment?",
        "The invoice for {po} is overdue; please let us know when it will be paid.",
        "Our team reviewed the contract and we have a few questions about the warranty.",
        "Let me know if you would like to schedule a call next week.",
        "Best regards, and thank you for choosing {acme}.",
    ],
    "nl": [
        "Beste {name}, bedankt voor uw bericht over de bestelling van {product}.",
        "In de bijlage vindt u de aangepaste offerte voor {product}.",
        "Wij kunnen de {product} leveren op {day}, zoals afgesproken met {acme}.",
        "Kunt u de inkooporder {po} bevestigen zodat wij de levering kunnen plannen?",
        "De factuur voor {po} is nog niet betaald; wanneer kunnen wij de betaling verwachten?",
        "Ons team heeft het contract bekeken en wij hebben nog enkele vragen over de garantie.",
        "Laat het ons weten als u volgende week een afspraak wilt maken.",
        "Met vriendelijke groet, namens het hele team van {acme}.",
    ],
    "tr": [
        "Merhaba {name}, {product} siparişi hakkındaki mesajınız için teşekkür ederiz.",
        "Güncellenmiş {product} teklifimizi ekte bulabilirsiniz.",
        "{acme} ile anlaştığımız gibi {product} ürünlerini {day} tarihinde teslim edebiliriz.",
        "Sevkiyatı planlayabilmemiz için {po} numaralı siparişi onaylar mısınız?",
        "{po} numaralı faturanın ödemesi gecikti; ödemenin ne zaman yapılacağını bildirin.",
        "Ekibimiz sözleşmeyi inceledi ve garanti hakkında birkaç sorumuz var.",
        "Gelecek hafta bir görüşme ayarlamak isterseniz lütfen bize bildirin.",
        "Saygılarımla, {acme} ekibi adına iyi çalışmalar dileriz.",
    ],
    "et": [
        "Tere {name}, aitäh teie sõnumi eest {product} tellimuse kohta.",
        "Lisatud on uuendatud hinnapakkumine toote {product} kohta.",
        "Saame {product} tarnida {day}, nagu {acme} meeskonnaga kokku lepiti.",
        "Palun kinnitage ostutellimus {po}, et saaksime saadetise planeerida.",
        "Arve {po} on tasumata; palun andke teada, millal see makstakse.",
        "Meie meeskond vaatas lepingu üle ja meil on garantii kohta mõned küsimused.",
        "Andke teada, kui soovite järgmisel nädalal kõne kokku leppida.",
        "Parimate soovidega, {acme} meeskond.",
    ],
    "pl": [
        "Dzień dobry {name}, dziękujemy za wiadomość w sprawie zamówienia {product}.",
        "W załączniku przesyłam zaktualizowaną ofertę na {product}.",
        "Możemy dostarczyć {product} do {day}, zgodnie z ustaleniami z {acme}.",
        "Proszę o potwierdzenie zamówienia {po}, abyśmy mogli zaplanować wysyłkę.",
        "Faktura {po} jest przeterminowana; proszę o informację, kiedy zostanie opłacona.",
        "Nasz zespół przejrzał umowę i mamy kilka pytań dotyczących gwarancji.",
        "Proszę dać znać, czy możemy umówić rozmowę w przyszłym tygodniu.",
        "Z poważaniem, zespół {acme}.",
    ],
}
SUBJECTS = {
    "en": ["Quotation for {product}", "Order {po}", "Question about {product}", "Invoice {po}"],
    "nl": ["Offerte voor {product}", "Bestelling {po}", "Vraag over {product}", "Factuur {po}"],
    "tr": ["{product} teklifi", "Sipariş {po}", "{product} hakkında soru", "Fatura {po}"],
    "et": ["Hinnapakkumine: {product}", "Tellimus {po}", "Küsimus: {product}", "Arve {po}"],
    "pl": ["Oferta na {product}", "Zamówienie {po}", "Pytanie o {product}", "Faktura {po}"],
}
NAMES = {
    "en": (["Anna", "James", "Emily", "Oliver", "Sophie"], ["Smith", "Brown", "Taylor", "Jones"]),
    "nl": (["Jan", "Sanne", "Pieter", "Lotte", "Daan"], ["de Vries", "Jansen", "Bakker", "Visser"]),
    "tr": (["Ayşe", "Mehmet", "İsmail", "Zeynep", "Ömer"], ["Yılmaz", "Kaya", "Şahin", "Çelik"]),
    "et": (["Mari", "Jüri", "Kadri", "Tõnu", "Liis"], ["Tamm", "Saar", "Sepp", "Mägi"]),
    "pl": (["Łukasz", "Agnieszka", "Paweł", "Zofia", "Michał"], ["Nowak", "Wójcik", "Kowalczyk"]),
}
FILES = {
    "en": "quotation-{n}.pdf",
    "nl": "offerte_{n}.pdf",
    "tr": "teklif-{n}.pdf",
    "et": "hinnapakkumine_{n}.pdf",
    "pl": "faktura-{n}.pdf",
}
LABELS = (("Hot", 0.01), ("Follow up", 0.03), ("Big deal", 0.005))


@dataclass
class _Seeded:
    company_id: int
    users: dict[str, Any]  # "one", "several", "admin" → User
    accounts: dict[str, list[int]]  # the same names → the account ids they read
    threads: int
    messages: int
    index_seconds: float = 0.0
    sample_threads: dict[str, list[int]] = field(default_factory=dict)
    customer_domain: str = ""


# --- The text -----------------------------------------------------------------------------------


def _products(rng: random.Random) -> list[str]:
    syllables = ["ka", "lo", "mi", "ve", "tro", "nix", "sa", "pe", "ru", "dor", "li", "xen", "ta"]
    found: set[str] = set()
    while len(found) < PRODUCTS:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        found.add(word.capitalize() + str(rng.randint(1, 99)))
    return sorted(found)


@dataclass(frozen=True)
class _Contact:
    name: str
    address: str
    person_id: int | None
    language: str


def _contacts(rng: random.Random, person_emails: list[tuple[int, str]]) -> list[_Contact]:
    contacts = []
    domains = [f"customer{k}.example" for k in range(DOMAINS)]
    for k in range(CONTACTS):
        language = rng.choices(list(LANGUAGES), weights=list(LANGUAGES.values()))[0]
        first, last = NAMES[language]
        name = f"{rng.choice(first)} {rng.choice(last)}"
        if k % 10 == 0 and person_emails:
            person_id, address = person_emails[k % len(person_emails)]
        else:
            person_id = None
            address = f"{name.split()[0].lower()}.{k}@{rng.choice(domains)}"
        contacts.append(_Contact(name, address, person_id, language))
    return contacts


def _by_language(contacts: list[_Contact]) -> dict[str, list[_Contact]]:
    grouped: dict[str, list[_Contact]] = {language: [] for language in LANGUAGES}
    for contact in contacts:
        grouped[contact.language].append(contact)
    return grouped


# --- Loading ------------------------------------------------------------------------------------


@dataclass
class _Rows:
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    threads: list[tuple[Any, ...]] = field(default_factory=list)
    thread_messages: list[tuple[Any, ...]] = field(default_factory=list)
    locations: list[tuple[Any, ...]] = field(default_factory=list)
    participants: list[tuple[Any, ...]] = field(default_factory=list)
    attachments: list[tuple[Any, ...]] = field(default_factory=list)
    labels: list[tuple[Any, ...]] = field(default_factory=list)
    thread_persons: list[tuple[Any, ...]] = field(default_factory=list)


COLUMNS = {
    "inbox_mailmessage": (
        'id, company_id, key, message_id, in_reply_to, "references", subject, sent_at, '
        "received_at, from_address, from_name, snippet, body_text, body_html, has_attachments, "
        "is_bulk, size, raw_path, parse_error, created_at"
    ),
    "inbox_mailthread": (
        "id, company_id, account_id, subject, snippet, message_count, first_message_at, "
        "last_message_at, has_attachments, is_unread, folder_roles, folder_ids, archived, "
        "deleted, root_message_id, sharing, blocked, person_ids, link_manual, created_at, "
        "updated_at"
    ),
    "inbox_mailthreadmessage": "company_id, thread_id, message_id, account_id, is_unread",
    "inbox_mailmessagelocation": (
        "company_id, account_id, folder_id, provider_id, message_id, uid, flags, created_at"
    ),
    "inbox_mailparticipant": "company_id, message_id, role, address, name, position, person_id",
    "inbox_mailattachment": (
        "company_id, message_id, filename, content_type, size, kind, content_id, part_path"
    ),
    "inbox_mailthreadlabel": "company_id, thread_id, label_id, created_at",
    "inbox_mailthreadperson": "company_id, thread_id, person_id",
}


@dataclass
class _World:
    company_id: int
    accounts: list[tuple[int, str]]  # (id, address)
    folders: dict[int, dict[str, int]]  # account id → role → folder id
    labels: list[tuple[int, float]]
    contacts: dict[str, list[_Contact]]  # by language
    products: list[str]
    rare_conversations: set[int]


def _conversations(
    world: _World, rng: random.Random, messages: int
) -> Iterator[tuple[int, int, int | None, str, _Contact, list[datetime]]]:
    """(number, account, copy account, language, contact, message times) per conversation,
    until `messages` messages."""
    total, number = 0, 0
    account_ids = [pk for pk, _ in world.accounts]
    while total < messages:
        count = min(30, 1 + int(rng.expovariate(1 / 1.5)), messages - total)
        start = NOW - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
        times = sorted(
            min(NOW, start + timedelta(hours=rng.uniform(0.2, 30) * k)) for k in range(count)
        )
        account = rng.choice(account_ids)
        copy = (
            rng.choice([pk for pk in account_ids if pk != account]) if rng.random() < 0.12 else None
        )
        language = rng.choices(list(LANGUAGES), weights=list(LANGUAGES.values()))[0]
        contact = rng.choice(world.contacts[language])
        yield number, account, copy, language, contact, times
        total += count
        number += 1


def _body(rng: random.Random, language: str, values: dict[str, str], common: bool) -> str:
    sentences = SENTENCES[language]
    chosen = [sentences[0], *rng.sample(sentences[1:-1], rng.randint(2, 5)), sentences[-1]]
    acme = COMMON if common else values["customer"]
    text = " ".join(s.format(**values, acme=acme) for s in chosen)
    # Some messages are longer: quoted history and signatures.
    if rng.random() < 0.3:
        text += "\n\n> " + " ".join(rng.sample(sentences, 4)).format(**values, acme=acme)
    return text


def _chunk_rows(
    world: _World,
    rng: random.Random,
    conversations: list[tuple[int, int, int | None, str, _Contact, list[datetime]]],
    ids: dict[str, int],
) -> _Rows:
    rows = _Rows()
    company = world.company_id
    addresses = dict(world.accounts)
    for number, account, copy, language, contact, times in conversations:
        product = rng.choice(world.products)
        po = f"PO{rng.randrange(100000, 999999)}"
        values = {"name": contact.name.split()[0], "product": product, "po": po,
                  "day": (times[0] + timedelta(days=14)).strftime("%Y-%m-%d"),
                  "customer": contact.address.split("@")[1].split(".")[0].capitalize()}  # fmt: skip
        subject = rng.choice(SUBJECTS[language]).format(**values)
        message_ids: list[int] = []
        threads = [(account, False), *([(copy, True)] if copy else [])]
        thread_ids = {acc: ids["thread"] + k for k, (acc, _) in enumerate(threads)}
        ids["thread"] += len(threads)
        per_thread: dict[int, dict[str, Any]] = {
            acc: {"roles": set(), "folders": set(), "unread": False} for acc, _ in threads
        }
        attachments = False
        snippet = ""
        for k, at in enumerate(times):
            message_id = ids["message"]
            ids["message"] += 1
            message_ids.append(message_id)
            received = k % 2 == 0 if rng.random() < 0.8 else k % 2 == 1
            common = rng.random() < 0.32
            body = _body(rng, language, values, common)
            if number in world.rare_conversations and k == 0:
                body += f" Project {RARE} is on schedule."
            snippet = body[:200]
            has_file = rng.random() < 0.05
            attachments = attachments or has_file
            sender = contact if received else None
            account_address = addresses[account]
            rows.messages.append((
                message_id, company, f"<b{message_id}@bench.example>",
                f"b{message_id}@bench.example",
                f"b{message_ids[-2]}@bench.example" if k else "", [],
                ("Re: " if k else "") + subject, at, at,
                sender.address if sender else account_address,
                sender.name if sender else "Bench User",
                snippet, body, "", has_file, False, 3000 + len(body), "", "", at,
            ))  # fmt: skip
            parties = (
                [("from", contact.address, contact.name, contact.person_id),
                 ("to", account_address, "Bench User", None)]
                if received
                else [("from", account_address, "Bench User", None),
                      ("to", contact.address, contact.name, contact.person_id)]
            )  # fmt: skip
            if rng.random() < 0.25:
                colleague = addresses[rng.choice(list(addresses))]
                parties.append(("cc", colleague, "Colleague", None))
            for position, (role, address, name, person_id) in enumerate(parties):
                rows.participants.append(
                    (company, message_id, role, address, name, position, person_id)
                )
            if has_file:
                filename = FILES[language].format(n=rng.randrange(1000, 9999))
                rows.attachments.append(
                    (company, message_id, filename, "application/pdf", 120_000, "file", "", "2")
                )
            for acc, is_copy in threads:
                if received:
                    role = "archive" if (NOW - at).days > 60 and rng.random() < 0.25 else "inbox"
                else:
                    role = "sent"
                folder = world.folders[acc][role]
                unread = received and not is_copy and (NOW - at).days < 30 and rng.random() < 0.3
                state = per_thread[acc]
                state["roles"].add(role)
                state["folders"].add(folder)
                state["unread"] = state["unread"] or unread
                rows.thread_messages.append((company, thread_ids[acc], message_id, acc, False))
                rows.locations.append((
                    company, acc, folder, f"1:{message_id}", message_id, message_id,
                    [] if unread else ["\\Seen"], at,
                ))  # fmt: skip
        persons = [contact.person_id] if contact.person_id else []
        for acc, _ in threads:
            state = per_thread[acc]
            thread_id = thread_ids[acc]
            rows.threads.append((
                thread_id, company, acc, subject, snippet, len(times), times[0], times[-1],
                attachments, state["unread"], sorted(state["roles"]), sorted(state["folders"]),
                False, False, message_ids[0], "shared", rng.random() < 0.002, persons, False,
                times[0], times[-1],
            ))  # fmt: skip
            for person_id in persons:
                rows.thread_persons.append((company, thread_id, person_id))
            for label_id, share in world.labels:
                if rng.random() < share:
                    rows.labels.append((company, thread_id, label_id, times[-1]))
    return rows


def _copy(cursor: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    with cursor.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _seed(*, messages: int, seed: int) -> _Seeded:
    from django.core.management import call_command
    from django.db import connection

    from contacts.models import PersonEmail
    from crm import services, tenancy
    from crm.db import roles
    from crm.models import Label, LabelKind, Role
    from inbox import search
    from inbox.models import AccountKind, FolderRole, MailAccount, MailAccountMember, MailFolder

    rng = random.Random(seed)
    call_command("migrate", verbosity=0)
    company, admin, _ = services.bootstrap_company(
        name="Bench Co", admin_email="admin@bench.test", password="bench-password-123"
    )
    users = [admin]
    account_rows: list[tuple[int, str]] = []
    folders: dict[int, dict[str, int]] = {}
    with tenancy.bound(company.pk):
        for k in range(1, USERS + 1):
            user = services.user_get_or_create(
                email=f"user{k}@bench.test", password="bench-password-123", name=f"User {k}"
            )
            services.membership_add(company=company, user=user, role=Role.REGULAR)
            users.append(user)
        accounts = []
        for k in range(1, PERSONAL_ACCOUNTS + 1):
            accounts.append(
                MailAccount.objects.create(
                    company=company,
                    owner=users[k],
                    kind=AccountKind.PERSONAL,
                    email_address=f"user{k}@bench.test",
                )
            )
        for team in range(TEAM_ACCOUNTS):
            account = MailAccount.objects.create(
                company=company, owner=admin, kind=AccountKind.TEAM,
                email_address=f"team{team + 1}@bench.test",
            )  # fmt: skip
            accounts.append(account)
            members = list(range(41 + TEAM_SIZE * team, 41 + TEAM_SIZE * (team + 1)))
            if team < 4:
                members.append(1)
            for member in members:
                MailAccountMember.objects.create(
                    company=company, account=account, user=users[member]
                )
        for account in accounts:
            account_rows.append((account.pk, account.email_address))
            folders[account.pk] = {}
            for name, role in (
                ("INBOX", FolderRole.INBOX),
                ("Sent", FolderRole.SENT),
                ("Archive", FolderRole.ARCHIVE),
                ("Clients", FolderRole.OTHER),
            ):
                folder = MailFolder.objects.create(
                    company=company, account=account, name=name, role=role
                )
                folders[account.pk][role] = folder.pk
        labels = [
            (Label.objects.create(company=company, kind=LabelKind.MAIL_THREAD, name=name).pk, share)
            for name, share in LABELS
        ]
    person_ids = _load(company_id=company.pk, owner_id=admin.pk, persons=PERSONS, seed=seed)
    with tenancy.bound(company.pk):
        person_emails = list(
            PersonEmail.objects.for_company(company)
            .filter(person_id__in=person_ids, position=0)
            .values_list("person_id", "normalized")[:CONTACTS]
        )
    world = _World(
        company_id=company.pk,
        accounts=account_rows,
        folders=folders,
        labels=labels,
        contacts=_by_language(_contacts(rng, person_emails)),
        products=_products(rng),
        rare_conversations=set(rng.sample(range(messages // 3), RARE_MESSAGES)),
    )

    started = time.perf_counter()
    with tenancy.owner_mode(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval('inbox_mailmessage_id_seq'), nextval('inbox_mailthread_id_seq')"
        )
        message_base, thread_base = cursor.fetchone()
        ids = {"message": message_base, "thread": thread_base}
        chunk: list[Any] = []
        for conversation in _conversations(world, rng, messages):
            chunk.append(conversation)
            if len(chunk) == CHUNK:
                _write(cursor, _chunk_rows(world, rng, chunk, ids))
                chunk = []
                print(f"  {ids['message'] - message_base:,} messages", flush=True)
        _write(cursor, _chunk_rows(world, rng, chunk, ids))
        cursor.execute("SELECT setval('inbox_mailmessage_id_seq', %s)", [ids["message"]])
        cursor.execute("SELECT setval('inbox_mailthread_id_seq', %s)", [ids["thread"]])
    print(f"loaded the mail in {time.perf_counter() - started:.0f} s", flush=True)

    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")  # the login: VACUUM and CHECKPOINT need an owner / superuser
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute(roles.role_statement())
    started = time.perf_counter()
    with tenancy.owner_mode():
        threads = search.company_reindex(company_id=company.pk)
    index_seconds = time.perf_counter() - started
    print(f"indexed {threads:,} threads in {index_seconds:.0f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute("CHECKPOINT")
        cursor.execute(roles.role_statement())
    seeded = _seeded_again(company.pk)
    seeded.index_seconds = index_seconds
    return seeded


def _write(cursor: Any, rows: _Rows) -> None:
    _copy(cursor, "inbox_mailmessage", rows.messages)
    _copy(cursor, "inbox_mailthread", rows.threads)
    _copy(cursor, "inbox_mailthreadmessage", rows.thread_messages)
    _copy(cursor, "inbox_mailmessagelocation", rows.locations)
    _copy(cursor, "inbox_mailparticipant", rows.participants)
    _copy(cursor, "inbox_mailattachment", rows.attachments)
    _copy(cursor, "inbox_mailthreadlabel", rows.labels)
    _copy(cursor, "inbox_mailthreadperson", rows.thread_persons)


def _seeded_again(company_id: int | None = None) -> _Seeded:
    """The measured users and their accounts, read back from the database (also --reuse)."""
    from django.db import connection

    from crm import tenancy
    from crm.models import User
    from inbox import visibility
    from inbox.models import MailMessage, MailThread

    if company_id is None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # the code may have moved on since the load
        with tenancy.owner_mode(), connection.cursor() as cursor:
            cursor.execute("SELECT min(id) FROM crm_company")
            company_id = int(cursor.fetchone()[0])
    users = {
        "one": User.objects.get(email="user20@bench.test"),
        "several": User.objects.get(email="user1@bench.test"),
        "admin": User.objects.get(email="admin@bench.test"),
    }
    with tenancy.bound(company_id):
        accounts = {
            name: sorted(
                visibility.mailbox_accounts(company=company_id, user=user).values_list(
                    "pk", flat=True
                )
            )
            for name, user in users.items()
        }
        seeded = _Seeded(
            company_id=company_id,
            users=users,
            accounts=accounts,
            threads=MailThread.objects.for_company(company_id).count(),
            messages=MailMessage.objects.for_company(company_id).count(),
        )
        for name, ids in accounts.items():
            seeded.sample_threads[name] = list(
                MailThread.objects.for_company(company_id)
                .filter(account_id__in=ids, blocked=False, message_count__gte=2)
                .order_by("-last_message_at")
                .values_list("pk", flat=True)[:2000:40]
            )
        with connection.cursor() as cursor:
            # The customer domain the "several" user hears from most, for from: + has:attachment.
            cursor.execute(
                "SELECT split_part(p.address, '@', 2), count(*) FROM inbox_mailparticipant p "
                "JOIN inbox_mailthreadmessage tm ON tm.company_id = p.company_id "
                "AND tm.message_id = p.message_id "
                "WHERE p.company_id = %s AND p.role = 'from' AND tm.account_id = ANY(%s) "
                "AND p.address LIKE '%%customer%%' GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
                [company_id, accounts["several"]],
            )
            seeded.customer_domain = cursor.fetchone()[0]
    return seeded


# --- Measuring ----------------------------------------------------------------------------------


@dataclass
class _Result:
    what: str
    user: str
    samples: list[float]
    queries: int
    rows: int


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--database", default="crm_bench_sales_inbox")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--deep", type=int, default=5_000, help="conversations before a deep page")
    parser.add_argument("--threads", type=int, default=50, help="thread views measured")
    parser.add_argument("--users", default="one,several,admin")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--explain", action="store_true")
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
    from inbox import mailquery, search

    started = time.perf_counter()
    seeded = _seeded_again() if args.reuse else _seed(messages=args.messages, seed=args.seed)
    print(
        f"{seeded.threads:,} threads, {seeded.messages:,} messages ready in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    gc.collect()

    results: list[_Result] = []

    def measure(what: str, user: str, call: Callable[[], int]) -> None:
        try:
            call()  # warm up
        except Exception as error:  # pages are other engineers' work in progress
            print(f"  {what:44s} {user:8s} failed: {error!r}"[:300], flush=True)
            return
        with CaptureQueriesContext(connection) as captured:
            rows = call()
        queries = len(captured.captured_queries)
        samples = _time(call, args.repeat)
        results.append(_Result(what, user, samples, queries, rows))
        print(f"  {what:44s} {user:8s} {_percentiles(samples)}  {queries} q, {rows} rows")

    searches = {
        "search rare term": RARE.lower(),
        "search common term": COMMON.lower(),
        "search from: + has:attachment": f"from:{seeded.customer_domain} has:attachment",
        "search label:": "label:Hot",
        "search word + before:": f"{COMMON.lower()} before:2025-06-01",
        "filter is:unread": "is:unread",
    }
    for name in args.users.split(","):
        user = seeded.users[name]
        with tenancy.bound(seeded.company_id, user_id=user.pk):
            membership = Membership.objects.get(company_id=seeded.company_id, user=user)
        print(f"{name}: {len(seeded.accounts[name])} accounts", flush=True)

        def page(
            text: str = "",
            after: search.Cursor | None = None,
            accounts: list[int] | None = None,
            _membership: Membership = membership,
        ) -> search.MailboxPage:
            with tenancy.bound(seeded.company_id, user_id=_membership.user_id):
                return search.mailbox_page(
                    membership=_membership,
                    folder="inbox",
                    account_ids=accounts,
                    query=mailquery.parse(text),
                    after=after,
                    limit=50,
                )

        def deep_cursor(text: str, depth: int) -> search.Cursor | None:
            cursor = None
            for _ in range(depth // 50):
                found = page(text, cursor)
                if found.next_cursor is None:
                    break
                cursor = found.next_cursor
            return cursor

        measure("inbox, first page", name, lambda: len(page().thread_ids))
        deep = deep_cursor("", args.deep)
        measure(
            f"inbox, page after {args.deep:,}",
            name,
            lambda deep=deep: len(page("", deep).thread_ids),
        )
        if len(seeded.accounts[name]) > 1:
            one = seeded.accounts[name][-1:]
            measure(
                "inbox, one account of several",
                name,
                lambda one=one: len(page("", None, one).thread_ids),
            )
        for what, text in searches.items():
            measure(what, name, lambda text=text: len(page(text).thread_ids))
        common_deep = deep_cursor(COMMON.lower(), 1_000)
        measure(
            "search common term, page after 1,000",
            name,
            lambda cursor=common_deep: len(page(COMMON.lower(), cursor).thread_ids),
        )
        if args.explain:
            _explain(seeded, name, [*searches.values()])

        client = Client()
        client.force_login(user)
        threads = seeded.sample_threads[name][: args.threads]
        position = {"next": 0}

        def thread_view(
            _client: Client = client, _threads: list[int] = threads, _at: dict[str, int] = position
        ) -> int:
            thread_id = _threads[_at["next"] % len(_threads)]
            _at["next"] += 1
            response = _client.get(reverse("inbox_thread", args=[thread_id]))
            assert response.status_code == 200, (response.status_code, response.content[:200])
            return 1

        if threads:
            measure("thread view GET inbox_thread", name, thread_view)
        try:
            inbox_url = reverse("inbox")
        except NoReverseMatch:
            inbox_url = ""
        if inbox_url:
            for what, query in (("", ""), (" ?q=common", f"?q={COMMON.lower()}")):
                url = inbox_url + query

                def inbox_page(_client: Client = client, _url: str = url) -> int:
                    response = _client.get(_url)
                    assert response.status_code == 200, response.status_code
                    return 1

                measure(f"Sales Inbox page GET inbox{what}", name, inbox_page)

    version = connection.cursor().connection.info.server_version
    print(
        f"\n{seeded.messages:,} messages, {seeded.threads:,} threads; PostgreSQL "
        f"{version // 10000}.{version % 10000}; load {os.getloadavg()[0]:.2f}; "
        f"p50 / p95 over {args.repeat} calls"
        + (f"; full-text backfill {seeded.index_seconds:.0f} s" if seeded.index_seconds else "")
    )
    for r in results:
        print(f"{r.what:44s} {r.user:8s} {_percentiles(r.samples)}  {r.queries:3d} queries")


def _explain(seeded: _Seeded, name: str, texts: list[str]) -> None:
    """The door's statement for each search, as the door runs it (as the owner, bound to the
    company), under EXPLAIN (ANALYZE, BUFFERS)."""
    from django.db import connection

    from crm import tenancy
    from inbox import mailquery, search

    accounts = seeded.accounts[name]
    for text in texts:
        query = mailquery.parse(text)
        if not query.has_text:
            continue
        params: dict[str, Any] = {}
        tsquery = search._tsquery_sql(query, params)
        with tenancy.owner_mode(), connection.cursor() as cursor:
            cursor.execute(f"SELECT ({tsquery})::text", params)
            (value,) = cursor.fetchone()
            cursor.execute(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT found.thread_id FROM unnest(%s::bigint[]) "
                "AS account(id) CROSS JOIN LATERAL (SELECT s.thread_id, s.last_message_at "
                "FROM inbox_mailthreadsearch s WHERE s.company_id = %s AND s.account_id = "
                "account.id AND s.vector @@ %s::tsquery AND (s.last_message_at, s.thread_id) "
                "< ('infinity', 0) ORDER BY s.last_message_at DESC, s.thread_id DESC "
                "LIMIT 200) AS found ORDER BY found.last_message_at DESC, "
                "found.thread_id DESC LIMIT 200",
                [accounts, seeded.company_id, value],
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"\n=== {text} ({name}): {value[:300]}\n{plan}\n", flush=True)


if __name__ == "__main__":
    main()
