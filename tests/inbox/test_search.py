"""A page of the Sales Inbox (`inbox.search.mailbox_page`) on the real database, as the runtime
role under row-level security: folders, the account switch, each filter, keyset paging, full
text in five languages, and who may see what. Mail comes in through the real ingest pipeline
(`tests/inbox/conftest.Mailbox`), so the full-text index is kept as in production."""

# ruff: noqa: RUF001 - the Turkish dotless i is a letter here, not a typo
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from crm import tenancy
from crm.models import Company, Label, LabelKind, User
from inbox import mailquery, search
from inbox.models import (
    AccountKind,
    MailAccount,
    MailFolder,
    MailThread,
    MailThreadLabel,
    MailThreadMessage,
)
from mailsync import ingest
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db


def _page(
    cast: Cast,
    user: User,
    text: str = "",
    *,
    folder: str = "inbox",
    accounts: Sequence[int] | None = None,
    after: search.Cursor | None = None,
    limit: int = 50,
    company: Company | None = None,
) -> search.MailboxPage:
    company = company or cast.company_a
    membership = cast.membership(user, company)
    with tenancy.bound(company.pk, user_id=user.pk):
        return search.mailbox_page(
            membership=membership,
            folder=folder,
            account_ids=accounts,
            query=mailquery.parse(text),
            after=after,
            limit=limit,
        )


def _found(cast: Cast, user: User, text: str = "", **options: object) -> list[int]:
    return _page(cast, user, text, **options).thread_ids  # type: ignore[arg-type]


def _thread(account: MailAccount, subject: str) -> int:
    with tenancy.bound(account.company_id):
        return (
            MailThread.objects.for_company(account.company_id)
            .get(account=account, subject=subject)
            .pk
        )


def _update(company_id: int, thread_id: int, **changes: object) -> None:
    with tenancy.bound(company_id):
        MailThread.objects.for_company(company_id).filter(pk=thread_id).update(**changes)


def _folder(account: MailAccount, name: str, role: str) -> None:
    with tenancy.bound(account.company_id):
        MailFolder.objects.create(
            company_id=account.company_id, account=account, name=name, role=role
        )


def _mail(subject: str, *, n: int = 1, **headers: Any) -> bytes:
    """A message whose Message-ID follows from its subject (one conversation per subject)."""
    return message(
        n, subject=subject, message_id=f"<{subject.replace(' ', '.')}@t.test>", **headers
    )


# --- Accounts and folders -----------------------------------------------------------------------


def test_the_inbox_lists_own_and_team_accounts_newest_first_and_nobody_elses(
    cast: Cast, mailbox: Mailbox
) -> None:
    bobs = mailbox.account(cast.bob)
    team = mailbox.account(
        cast.alice, kind=AccountKind.TEAM, members=[cast.bob], email="sales@acme.test"
    )
    alices = mailbox.account(cast.alice)
    carols = mailbox.account(cast.carol, company=cast.company_b)
    for account, subject in ((bobs, "one"), (team, "two"), (alices, "three"), (bobs, "four")):
        mailbox.deliver(account, "INBOX", _mail(subject))
    mailbox.deliver(carols, "INBOX", _mail("five"))

    expected = [_thread(bobs, "four"), _thread(team, "two"), _thread(bobs, "one")]
    assert _found(cast, cast.bob) == expected
    assert _found(cast, cast.alice) == [_thread(alices, "three"), _thread(team, "two")]
    assert _found(cast, cast.carol, company=cast.company_b) == [_thread(carols, "five")]

    # The account switch: one account, the team ones; another user's account is ignored.
    assert _found(cast, cast.bob, accounts=[team.pk]) == [_thread(team, "two")]
    assert _found(cast, cast.bob, accounts=[alices.pk]) == []
    assert _found(cast, cast.bob, accounts=[alices.pk, bobs.pk]) == [
        _thread(bobs, "four"),
        _thread(bobs, "one"),
    ]
    assert _found(cast, cast.bob, accounts=[carols.pk]) == []
    assert _found(cast, cast.bob, accounts=[]) == []


def test_a_removed_account_shows_nothing(cast: Cast, mailbox: Mailbox) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(bobs, "INBOX", _mail("gone soon"))
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=bobs.pk).update(
            removed_at=datetime.now(UTC)
        )
    assert _found(cast, cast.bob, folder="all") == []
    assert _found(cast, cast.bob, "gone", folder="all") == []


def test_each_folder_shows_what_it_names(cast: Cast, mailbox: Mailbox) -> None:
    bobs = mailbox.account(cast.bob)
    _folder(bobs, "Drafts", "drafts")
    _folder(bobs, "Trash", "trash")
    _folder(bobs, "Clients", "other")
    for folder, subject in (
        ("INBOX", "in the inbox"),
        ("INBOX", "archived here"),
        ("INBOX", "deleted here"),
        ("Sent", "sent"),
        ("Drafts", "draft"),
        ("Archive", "archived on the server"),
        ("Trash", "in the trash"),
        ("Clients", "in a folder"),
    ):
        mailbox.deliver(bobs, folder, _mail(subject))
    ids = {
        subject: _thread(bobs, subject)
        for subject in (
            "in the inbox",
            "archived here",
            "deleted here",
            "sent",
            "draft",
            "archived on the server",
            "in the trash",
            "in a folder",
        )
    }
    _update(bobs.company_id, ids["archived here"], archived=True)
    _update(bobs.company_id, ids["deleted here"], deleted=True)

    def shown(folder: str) -> set[str]:
        found = set(_found(cast, cast.bob, folder=folder))
        return {subject for subject, pk in ids.items() if pk in found}

    assert shown("inbox") == {"in the inbox"}
    assert shown("archive") == {"archived here", "archived on the server"}
    assert shown("sent") == {"sent"}
    assert shown("drafts") == {"draft"}
    assert shown("trash") == {"deleted here", "in the trash"}
    assert shown("all") == set(ids) - {"deleted here"}
    with tenancy.bound(cast.company_a.pk):
        clients = MailFolder.objects.for_company(cast.company_a).get(account=bobs, name="Clients")
    assert shown(f"folder:{clients.pk}") == {"in a folder"}
    assert shown("spam") == set()
    assert shown("folder:x") == set()


def test_a_synced_folder_of_another_users_account_shows_nothing(
    cast: Cast, mailbox: Mailbox
) -> None:
    alices = mailbox.account(cast.alice)
    mailbox.deliver(alices, "INBOX", _mail("private"))
    with tenancy.bound(cast.company_a.pk):
        inbox = MailFolder.objects.for_company(cast.company_a).get(account=alices, name="INBOX")
    assert _found(cast, cast.alice, folder=f"folder:{inbox.pk}") == [_thread(alices, "private")]
    assert _found(cast, cast.bob, folder=f"folder:{inbox.pk}") == []
    assert _found(cast, cast.bob, "private", folder=f"folder:{inbox.pk}") == []


def test_a_blocked_conversation_is_never_listed_nor_found(cast: Cast, mailbox: Mailbox) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(bobs, "INBOX", _mail("spammy offer"))
    mailbox.deliver(bobs, "INBOX", _mail("real offer"))
    _update(bobs.company_id, _thread(bobs, "spammy offer"), blocked=True)
    real = [_thread(bobs, "real offer")]
    assert _found(cast, cast.bob) == real
    assert _found(cast, cast.bob, "offer", folder="all") == real
    assert _found(cast, cast.bob, "spammy", folder="all") == []
    assert _found(cast, cast.bob, folder="trash") == []


def test_another_company_never_finds_a_word_of_ours(cast: Cast, mailbox: Mailbox) -> None:
    bobs = mailbox.account(cast.bob)
    carols = mailbox.account(cast.carol, company=cast.company_b)
    mailbox.deliver(bobs, "INBOX", _mail("zanzibar proposal"))
    assert _found(cast, cast.bob, "zanzibar") == [_thread(bobs, "zanzibar proposal")]
    assert _found(cast, cast.carol, "zanzibar", company=cast.company_b) == []
    # Even asked for Bob's account by id, the door answers for the bound company only.
    assert _found(cast, cast.carol, "zanzibar", company=cast.company_b, accounts=[bobs.pk]) == []
    with tenancy.bound(cast.company_b.pk), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM inbox_thread_search(%s, to_tsquery('mail_simple', 'zanzibar'), "
            "'infinity', 0, '-infinity', 10)",
            [[bobs.pk, carols.pk]],
        )
        assert cursor.fetchone() == (0,)
    with tenancy.bound(None), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM inbox_thread_search(%s, to_tsquery('mail_simple', 'zanzibar'), "
            "'infinity', 0, '-infinity', 10)",
            [[bobs.pk]],
        )
        assert cursor.fetchone() == (0,)


# --- Paging --------------------------------------------------------------------------------------


def _walk(cast: Cast, user: User, text: str, limit: int, **options: object) -> list[int]:
    seen: list[int] = []
    after = None
    for _ in range(50):
        page = _page(cast, user, text, after=after, limit=limit, **options)  # type: ignore[arg-type]
        seen += page.thread_ids
        if page.next_cursor is None:
            return seen
        assert len(page.thread_ids) == limit
        after = search.Cursor.decode(page.next_cursor.encode())
    raise AssertionError("the pages never end")


def test_keyset_paging_walks_every_conversation_once_with_ties_and_undated_last(
    cast: Cast, mailbox: Mailbox
) -> None:
    bobs = mailbox.account(cast.bob)
    team = mailbox.account(
        cast.alice, kind=AccountKind.TEAM, members=[cast.bob], email="sales@acme.test"
    )
    subjects = [f"offer {n}" for n in range(9)]
    for n, subject in enumerate(subjects):
        mailbox.deliver(bobs if n % 2 else team, "INBOX", _mail(subject))
    ids = {subject: _thread(bobs if n % 2 else team, subject) for n, subject in enumerate(subjects)}
    tie = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    for subject in subjects[2:7]:  # five conversations at the same moment, in two accounts
        _update(cast.company_a.pk, ids[subject], last_message_at=tie)
    for subject in subjects[7:]:  # no time at all: last
        _update(cast.company_a.pk, ids[subject], last_message_at=None)
    with tenancy.bound(cast.company_a.pk):
        search.threads_reindex(company_id=cast.company_a.pk, thread_ids=ids.values())
        expected = list(
            MailThread.objects.for_company(cast.company_a)
            .filter(pk__in=ids.values())
            .order_by("last_message_at", "id")
            .reverse()
            .values_list("pk", flat=True)
        )
    # Django's reverse() of "last_message_at" ascending (NULLS LAST) is DESC NULLS FIRST:
    undated = [pk for pk in expected if pk in (ids[subjects[7]], ids[subjects[8]])]
    expected = [pk for pk in expected if pk not in undated] + undated
    for limit in (1, 2, 3, 50):
        assert _walk(cast, cast.bob, "", limit) == expected, limit
        assert _walk(cast, cast.bob, "offer", limit) == expected, limit
    assert _page(cast, cast.bob, limit=9).next_cursor is None


def test_search_asks_the_door_again_until_the_page_fills(
    cast: Cast, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "SEARCH_BATCH", 2)
    bobs = mailbox.account(cast.bob)
    for n in range(12):
        mailbox.deliver(bobs, "INBOX", _mail(f"quote {n}"), flags=() if n % 4 else ["\\Seen"])
    read = [_thread(bobs, f"quote {n}") for n in (8, 4, 0)]  # newest first
    assert _walk(cast, cast.bob, "quote is:read", 2) == read
    assert _found(cast, cast.bob, "quote is:read", limit=1) == read[:1]


@pytest.mark.parametrize("text", ["", "offer"])
def test_a_cursor_from_anywhere_is_harmless(cast: Cast, mailbox: Mailbox, text: str) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(bobs, "INBOX", _mail("offer"))
    far = search.Cursor(datetime(1900, 1, 1, tzinfo=UTC), 1)
    assert _found(cast, cast.bob, text, after=far) == []
    future = search.Cursor(datetime(2999, 1, 1, tzinfo=UTC), 2**62)
    assert _found(cast, cast.bob, text, after=future) == [_thread(bobs, "offer")]
    assert _found(cast, cast.bob, text, after=search.Cursor(None, 2**62)) == []


def test_a_cursor_reads_back_and_garbage_is_none() -> None:
    for cursor in (
        search.Cursor(datetime(2026, 11, 1, 12, 30, 5, 123456, tzinfo=UTC), 42),
        search.Cursor(datetime(1969, 12, 31, 23, 59, tzinfo=UTC), 7),
        search.Cursor(None, 9),
    ):
        assert search.Cursor.decode(cursor.encode()) == cursor
    for garbage in (
        "",
        "x",
        "1.2.3",
        "-.",
        ".5",
        "99999999999999999999.1",
        "1.99999999999999999999",
    ):
        assert search.Cursor.decode(garbage) is None, garbage


# --- Filters -------------------------------------------------------------------------------------


def test_each_filter_narrows_the_list(cast: Cast, mailbox: Mailbox) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(bobs, "INBOX", _mail("plain", n=1), flags=["\\Seen"])
    mailbox.deliver(bobs, "INBOX", _mail("with file", n=2, attachment=b"%PDF"), flags=["\\Seen"])
    mailbox.deliver(bobs, "INBOX", _mail("unread"))
    mailbox.deliver(bobs, "INBOX", _mail("linked"), flags=["\\Seen"])
    ids = {s: _thread(bobs, s) for s in ("plain", "with file", "unread", "linked")}
    _update(cast.company_a.pk, ids["linked"], person_ids=[1])
    _update(cast.company_a.pk, ids["plain"], last_message_at=datetime(2026, 10, 15, tzinfo=UTC))
    _update(cast.company_a.pk, ids["with file"], last_message_at=datetime(2026, 11, 1, tzinfo=UTC))
    with tenancy.bound(cast.company_a.pk):
        hot = Label.objects.create(company=cast.company_a, kind=LabelKind.MAIL_THREAD, name="Hot")
        big = Label.objects.create(
            company=cast.company_a, kind=LabelKind.MAIL_THREAD, name="Big deal"
        )
        Label.objects.create(company=cast.company_a, kind=LabelKind.DEAL, name="Cold")
        for subject, label in (("plain", hot), ("unread", hot), ("unread", big)):
            MailThreadLabel.objects.create(
                company=cast.company_a, thread_id=ids[subject], label=label
            )

    def shown(text: str) -> set[str]:
        found = set(_found(cast, cast.bob, text))
        return {subject for subject, pk in ids.items() if pk in found}

    assert shown("has:attachment") == {"with file"}
    assert shown("is:unread") == {"unread"}
    assert shown("is:read") == {"plain", "with file", "linked"}
    assert shown("is:linked") == {"linked"}
    assert shown("is:unlinked") == {"plain", "with file", "unread"}
    assert shown("before:2026-11-01") == {"plain"}
    assert shown("after:2026-11-01") == {"with file", "unread", "linked"}
    assert shown("after:2026-10-01 before:2026/11/02") == {"plain", "with file"}
    assert shown("label:hot") == {"plain", "unread"}
    assert shown('label:HOT label:"big DEAL"') == {"unread"}
    assert shown("label:Hot is:read") == {"plain"}
    page = _page(cast, cast.bob, "label:Cold label:Nope")
    assert page.thread_ids == []
    assert page.errors == ('There is no label "Cold".', 'There is no label "Nope".')


# --- Full text ----------------------------------------------------------------------------------


def test_words_are_found_in_subject_body_names_addresses_and_file_names(
    cast: Cast, mailbox: Mailbox
) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(
        bobs,
        "INBOX",
        _mail(
            "Quarterly figures",
            sender="Maria Garcia <maria.garcia@globex-partners.example>",
            to="Bob Brown <bob@acme.test>",
            body="The spreadsheet is attached. Regards",
            attachment=b"data",
        ),
    )
    mailbox.deliver(bobs, "INBOX", _mail("Lunch", body="See you at noon."))
    figures = [_thread(bobs, "Quarterly figures")]
    for text in (
        "quarterly",  # subject
        "Figure",  # subject, stemmed
        "spreadsheets",  # body, stemmed
        "maria",  # sender's name
        "Garcia",
        "maria.garcia@globex-partners.example",  # address
        "globex-partners.example",  # domain
        "globex",  # prefix of the domain
        "file.bin",  # attachment name
        "bin",
        "quart",  # a prefix of a word
        "QUARTERLY spreadsheet",  # every word must be there
    ):
        assert _found(cast, cast.bob, text) == figures, text
    assert _found(cast, cast.bob, "quarterly noon") == []
    assert _found(cast, cast.bob, "spreadshit") == []


def test_from_and_to_look_at_senders_and_recipients(cast: Cast, mailbox: Mailbox) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(
        bobs,
        "INBOX",
        _mail("incoming", sender="Alice Smith <alice.smith@acme.com>", to="bob@acme.test"),
    )
    mailbox.deliver(
        bobs,
        "Sent",
        message(
            2,
            subject="outgoing",
            message_id="<outgoing@t.test>",
            sender="Bob Brown <bob@acme.test>",
            to="Alice Smith <alice.smith@acme.com>",
        ),
    )
    incoming, outgoing = _thread(bobs, "incoming"), _thread(bobs, "outgoing")
    for text, expected in (
        ("from:alice.smith@acme.com", [incoming]),
        ("from:ALICE.SMITH@ACME.COM", [incoming]),
        ("from:acme.com", [incoming]),
        ("from:alice", [incoming]),
        ("from:smith", [incoming]),
        ('from:"Alice Smith"', [incoming]),
        ('from:"Alice Jones"', []),
        ("from:bob", [outgoing]),
        ("to:alice.smith@acme.com", [outgoing]),
        ("to:acme.test", [incoming]),
        ("from:acme.com to:acme.test", [incoming]),
        ("from:nobody@acme.com", []),
    ):
        assert _found(cast, cast.bob, text, folder="all") == expected, text


def test_left_out_words_and_phrases(cast: Cast, mailbox: Mailbox) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(bobs, "INBOX", _mail("one", body="The price list for next year."))
    mailbox.deliver(bobs, "INBOX", _mail("two", body="A list of the prices, no year."))
    one, two = _thread(bobs, "one"), _thread(bobs, "two")
    assert _found(cast, cast.bob, "prices") == [two, one]
    assert _found(cast, cast.bob, '"price list"') == [one]
    assert _found(cast, cast.bob, "list -year") == []
    assert _found(cast, cast.bob, 'prices -"price list"') == [two]
    assert _found(cast, cast.bob, "-next") == [two]


MULTILINGUAL = [
    pytest.param(
        "Teklif ve fiyatlar",
        "Merhaba Ayşe, teklifleri yarın göndereceğiz. Şirketimiz için fiyatları ılık "
        "bir tablo halinde hazırladık. Saygılarımla, İsmail",
        (
            "teklif",
            "teklifler",
            "şirket",
            "sirketimiz",
            "fiyat",
            "gondereceğiz",
            "ilik",
            "ISMAIL",
            "ismail",
            "ayse",
        ),
        id="turkish",
    ),
    pytest.param(
        "Pakkumine",
        "Tere! Saadame teile homme uue pakkumise. Hinnad on väga head ja kõik on korras. "
        "Aitäh, õhtul räägime",
        ("pakkumise", "pakkum", "vaga", "väga", "korras", "ohtul", "räägime", "raagime"),
        id="estonian",
    ),
    pytest.param(
        "Faktura",
        "Dzień dobry, przesyłam fakturę za usługi i żółty formularz z Łodzi. Proszę o "
        "potwierdzenie. Pozdrawiam",
        ("fakture", "fakturę", "faktur", "zolty", "żółty", "lodzi", "łodzi", "uslugi", "potwierdz"),
        id="polish",
    ),
    pytest.param(
        "De offerte",
        "Beste Jan, wij versturen morgen de offertes voor het project. Wij zijn geïnteresseerd "
        "in een afspraak. Met vriendelijke groet",
        ("offerte", "offertes", "geinteresseerd", "afspraak", "afspraken", "projecten"),
        id="dutch",
    ),
    pytest.param(
        "Quotation",
        "Hi Anna, we are sending the updated quotations for the projects tomorrow. "
        "Please let me know what you think. Best regards",
        ("quotation", "quotations", "sending", "send", "project", "update", "updating"),
        id="english",
    ),
]


@pytest.mark.parametrize(("subject", "body", "queries"), MULTILINGUAL)
def test_an_inflected_or_unaccented_form_finds_the_message(
    cast: Cast, mailbox: Mailbox, subject: str, body: str, queries: tuple[str, ...]
) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(bobs, "INBOX", _mail(subject, body=body))
    mailbox.deliver(bobs, "INBOX", _mail("Other", body="Nothing to see here, colleague."))
    expected = [_thread(bobs, subject)]
    missing = [text for text in queries if _found(cast, cast.bob, text) != expected]
    assert missing == []


def test_the_language_of_each_message_picks_its_configuration(cast: Cast, mailbox: Mailbox) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(
        bobs, "INBOX", _mail("Vraag", body="Wij sturen u graag de offertes voor het project.")
    )
    with tenancy.bound(cast.company_a.pk), connection.cursor() as cursor:
        cursor.execute(
            "SELECT vector FROM inbox_mailthreadsearch WHERE thread_id = %s",
            [_thread(bobs, "Vraag")],
        )
        (vector,) = cursor.fetchone()
    assert "'offertes'" in vector  # Dutch stemming keeps it; English would make 'offert'
    assert "'stur'" in vector  # Dutch "sturen" → "stur"


# --- Keeping the index --------------------------------------------------------------------------


def test_the_index_follows_new_removed_and_deleted_messages(cast: Cast, mailbox: Mailbox) -> None:
    bobs = mailbox.account(cast.bob)
    day = datetime(2026, 11, 1, tzinfo=UTC)
    first = message(
        1, subject="Project", message_id="<p1@t.test>", body="About the zebra.", date=day
    )
    reply = message(
        2,
        subject="Re: Project",
        message_id="<p2@t.test>",
        references=["<p1@t.test>"],
        body="And the giraffe.",
        date=day + timedelta(hours=1),
    )
    mailbox.deliver(bobs, "INBOX", first)
    mailbox.deliver(bobs, "INBOX", reply)
    thread = _thread(bobs, "Project")
    assert _found(cast, cast.bob, "zebra giraffe") == [thread]

    # The reply leaves the mailbox on the server: its words go, the first message's stay.
    with tenancy.bound(cast.company_a.pk):
        inbox = MailFolder.objects.for_company(cast.company_a).get(account=bobs, name="INBOX")
        ingest.locations_remove(
            company_id=cast.company_a.pk,
            account_id=bobs.pk,
            folder_id=inbox.pk,
            provider_ids=[f"1:{mailbox.uid}"],
        )
    assert _found(cast, cast.bob, "giraffe") == []
    assert _found(cast, cast.bob, "zebra") == [thread]

    # The thread goes: so does its row.
    with tenancy.bound(cast.company_a.pk):
        MailThreadMessage.objects.for_company(cast.company_a).filter(thread_id=thread).delete()
        MailThread.objects.for_company(cast.company_a).filter(pk=thread).delete()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM inbox_mailthreadsearch")
            assert cursor.fetchone() == (0,)


def test_a_huge_message_or_a_huge_thread_never_breaks_the_ingest(
    cast: Cast, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    bobs = mailbox.account(cast.bob)
    # 200,000 distinct words: only the first BODY_CHARS characters are indexed.
    junk = " ".join(f"w{n:06d}x" for n in range(200_000))
    many = ", ".join(f"Person {n} <p{n}@many.example>" for n in range(300))
    mailbox.deliver(bobs, "INBOX", _mail("Huge", body=junk, to=many))
    assert _found(cast, cast.bob, "w000001x") == [_thread(bobs, "Huge")]
    assert _found(cast, cast.bob, "w150000x") == []
    assert _found(cast, cast.bob, "to:p10@many.example") == [_thread(bobs, "Huge")]

    # Past the budget a long conversation stops adding words (in the order its messages came);
    # rebuilt (a message left it), it keeps its newest messages' words.
    monkeypatch.setattr(search, "VECTOR_BUDGET", 2_000)
    references: list[str] = []
    for n in range(6):
        mid = f"<long{n}@t.test>"
        mailbox.deliver(
            bobs,
            "INBOX",
            message(
                n,
                subject="Long",
                message_id=mid,
                references=references or None,
                date=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=n),
                body=f"Part{n} " + " ".join(f"filler{n}x{k}" for k in range(30)),
            ),
        )
        references = [*references, mid]
    long = _thread(bobs, "Long")

    def indexed() -> tuple[int, int]:
        with tenancy.bound(cast.company_a.pk), connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexed_bytes, cardinality(message_ids) FROM inbox_mailthreadsearch "
                "WHERE thread_id = %s",
                [long],
            )
            row = cursor.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    size, considered = indexed()
    assert 0 < size <= 2_000
    assert considered == 6
    assert _found(cast, cast.bob, "part0") == [long]
    assert _found(cast, cast.bob, "part5") == []
    with tenancy.bound(cast.company_a.pk):
        inbox = MailFolder.objects.for_company(cast.company_a).get(account=bobs, name="INBOX")
        ingest.locations_remove(
            company_id=cast.company_a.pk,
            account_id=bobs.pk,
            folder_id=inbox.pk,
            provider_ids=[f"1:{mailbox.uid - 5}"],  # the first message
        )
    size, considered = indexed()
    assert 0 < size <= 2_000
    assert considered == 5
    assert _found(cast, cast.bob, "part5") == [long]
    assert _found(cast, cast.bob, "part1") == []


def test_indexing_existing_conversations_again_changes_nothing(
    cast: Cast, mailbox: Mailbox
) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(bobs, "INBOX", _mail("Again", body="Twice the words"))
    with tenancy.bound(cast.company_a.pk), connection.cursor() as cursor:
        cursor.execute("SELECT vector::text FROM inbox_mailthreadsearch")
        before = cursor.fetchall()
        cursor.execute("DELETE FROM inbox_mailthreadsearch")
        assert search.company_reindex(company_id=cast.company_a.pk) == 1
        cursor.execute("SELECT vector::text FROM inbox_mailthreadsearch")
        assert cursor.fetchall() == before


def test_dates_before_and_after_use_the_start_of_the_day() -> None:
    start = search._day_start(date(2026, 11, 1))
    assert (start.year, start.month, start.day, start.hour, start.minute) == (2026, 11, 1, 0, 0)
    assert start.tzinfo is not None


def test_dates_and_labels_narrow_a_search_and_page_alike(cast: Cast, mailbox: Mailbox) -> None:
    bobs = mailbox.account(cast.bob)
    team = mailbox.account(
        cast.alice, kind=AccountKind.TEAM, members=[cast.bob], email="sales@acme.test"
    )
    days = [datetime(2026, 10, day, 12, tzinfo=UTC) for day in (1, 2, 2, 3, 4, 5)]
    for n, day in enumerate(days):
        mailbox.deliver(bobs if n % 2 else team, "INBOX", _mail(f"offer {n}", date=day))
    ids = [_thread(bobs if n % 2 else team, f"offer {n}") for n in range(len(days))]
    for thread_id, day in zip(ids, days, strict=True):
        _update(cast.company_a.pk, thread_id, last_message_at=day)
    with tenancy.bound(cast.company_a.pk):
        search.threads_reindex(company_id=cast.company_a.pk, thread_ids=ids)
        hot = Label.objects.create(company=cast.company_a, kind=LabelKind.MAIL_THREAD, name="Hot")
        for thread_id in ids[1:5]:
            MailThreadLabel.objects.create(company=cast.company_a, thread_id=thread_id, label=hot)
    # Newest first; the two on 2 October tie on time and go by id.
    newest_first = [ids[5], ids[4], ids[3], max(ids[1:3]), min(ids[1:3]), ids[0]]
    for text, expected in (
        ("offer before:2026-10-03", newest_first[3:]),
        ("offer after:2026-10-02", newest_first[:5]),
        ("offer after:2026-10-02 before:2026-10-04", newest_first[2:5]),
        ("label:hot", newest_first[1:5]),
        ("offer label:hot before:2026-10-04", newest_first[2:5]),
        ("label:hot after:2026-10-03", newest_first[1:3]),
    ):
        for limit in (1, 2, 10):
            assert _walk(cast, cast.bob, text, limit) == expected, (text, limit)
    # A cursor already below the day of before: is kept.
    page = _page(cast, cast.bob, "offer before:2026-10-05", limit=2)
    assert page.next_cursor is not None
    rest = _page(cast, cast.bob, "offer before:2026-10-04", after=page.next_cursor).thread_ids
    assert rest == newest_first[3:]


def test_own_text_leaves_out_quotes_reply_headers_and_signatures() -> None:
    body = (
        "Thanks, the price works for us.\n"
        "> Our price is 100 per unit.\n"
        "We will order next week.\n"
        "-- \n"
        "Ann, Buyer\n"
    )
    assert search.own_text(body) == "Thanks, the price works for us.\nWe will order next week."
    for header in (
        "On Mon, 1 Dec 2026 at 10:00, Bob <bob@acme.test> wrote:",
        "Op ma 1 dec. 2026 om 10:00 schreef Jan <jan@x.nl>:",
        "W dniu 1.12.2026 o 10:00 Jan Nowak <j@x.pl> napisał:",
        "1 Ara 2026 Pzt 10:00 tarihinde Ayşe <a@x.tr> şunu yazdı:",
        "E, 1. dets 2026 kell 10:00 Mari <m@x.ee> kirjutas:",
        "-----Original Message-----",
    ):
        assert search.own_text(f"Yes.\n{header}\nThe old text") == "Yes.", header
    assert len(search.own_text("word " * 10_000)) == search.BODY_CHARS


def test_quoted_text_is_found_through_the_message_it_quotes(cast: Cast, mailbox: Mailbox) -> None:
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(
        bobs,
        "INBOX",
        _mail("Reply only", body="Sounds good.\n\nOn Monday Ann wrote:\n> the pineapple offer"),
    )
    assert _found(cast, cast.bob, "sounds") == [_thread(bobs, "Reply only")]
    assert _found(cast, cast.bob, "pineapple") == []


def test_queued_threads_are_listed_at_once_and_found_once_drained(
    cast: Cast, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    bobs = mailbox.account(cast.bob)
    # The ingest queues instead of indexing (what a first sync may choose).
    with monkeypatch.context() as patched:
        patched.setattr(search, "threads_reindex", search.threads_queue)
        mailbox.deliver(bobs, "INBOX", _mail("Walrus", body="About the walrus tusks."))
        mailbox.deliver(bobs, "INBOX", _mail("Narwhal", body="About the narwhal tusks."))
    walrus, narwhal = _thread(bobs, "Walrus"), _thread(bobs, "Narwhal")
    assert _found(cast, cast.bob) == [narwhal, walrus]
    assert _found(cast, cast.bob, "tusks") == []
    with tenancy.bound(cast.company_a.pk):
        assert search.queue_drain(company_id=cast.company_a.pk, limit=1) == 1
        assert search.queue_drain(company_id=cast.company_a.pk) == 1
        assert search.queue_drain(company_id=cast.company_a.pk) == 0
    assert _found(cast, cast.bob, "tusks") == [narwhal, walrus]


def test_a_first_sync_batch_is_queued_then_indexed_by_the_drain_task(
    cast: Cast, mailbox: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    from inbox import tasks as inbox_tasks
    from mailsync.providers.base import FetchedMessage

    account = mailbox.account(cast.bob)
    count = ingest.SEARCH_INLINE_THREADS + 5
    fetched = [
        FetchedMessage(
            provider_id=f"1:{n}",
            uid=n,
            raw=_mail(f"Batch {n}", n=n, body="The okapi shipment."),
            flags=frozenset(),
            received_at=datetime.now(UTC),
        )
        for n in range(1, count + 1)
    ]
    with tenancy.bound(cast.company_a.pk):
        inbox_folder = MailFolder.objects.for_company(cast.company_a).get(
            account=account, name="INBOX"
        )
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            ingest.ingest_batch(
                company_id=cast.company_a.pk,
                account_id=account.pk,
                folder_id=inbox_folder.pk,
                fetched=fetched,
                parsed=ingest.parse_batch(fetched),
                announce=False,
            )
        assert callbacks, "the drain is queued after commit"
        assert search.queue_waiting(company_id=cast.company_a.pk)
    assert len(_found(cast, cast.bob)) == count  # listed at once
    assert _found(cast, cast.bob, "okapi") == []  # not searchable until drained

    assert inbox_tasks.search_drain.apply(kwargs={"company_id": cast.company_a.pk}).get() == count
    assert len(_found(cast, cast.bob, "okapi")) == count
    with tenancy.bound(cast.company_a.pk):
        assert not search.queue_waiting(company_id=cast.company_a.pk)
