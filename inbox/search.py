"""The query path of the Sales Inbox (B1, B2, B3): one page of a user's mailbox, for a folder,
some of their accounts and a query of the search language (`inbox.mailquery`), newest activity
first, paged by position (keyset), never by offset. Also keeps the full-text index of
conversations (`threads_reindex`). See docs/decisions/0010-mail-search.md.

Who sees what comes from `inbox.visibility`: only conversations of the accounts whose mailbox
the user reads (`mailbox_accounts`), never a blocked one. A page is one SQL statement over
`inbox_mailthread` under row-level security, walking each account's
(company, account, last_message_at, id) index newest first; a query with words (or `from:` /
`to:`) first asks the door `inbox_thread_search` (migration 0005) for matching conversations
of those accounts in order, in growing batches, and keeps those that pass the folder and the
filters.

Full text: each conversation has one tsvector (`inbox_mailthreadsearch.vector`), made of each
message's subject and own words (`own_text`: no quotes, the first `BODY_CHARS` characters) in
the configuration of the message's language (`inbox.languages`), its participants' names and
addresses (also as `f:` and `t:` words for `from:` and `to:`), and its attachments' names. A
query word is looked for in every configuration at once (its English, Dutch and Turkish stems,
and unaccented as typed, as a prefix), so it is found whatever language the message was taken
for."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from crm.models import Label, LabelKind, Membership
from inbox import languages, visibility
from inbox.mailquery import MailQuery
from inbox.models import MailFolder

# --- Positions in a list -----------------------------------------------------------------------

_CURSOR = re.compile(r"(-|-?[0-9]{1,20})\.([0-9]{1,19})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cursor:
    """The last conversation of a page: the next page starts after it. Conversations are in
    (last_message_at DESC NULLS LAST, id DESC) order."""

    last_message_at: datetime | None
    thread_id: int

    def encode(self) -> str:
        """A short URL-safe text: microseconds since 1970 (or "-"), a dot, the thread id."""
        if self.last_message_at is None:
            return f"-.{self.thread_id}"
        delta = self.last_message_at - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return f"{micros}.{self.thread_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor `encode` wrote; None for anything else (a bad URL is a first page)."""
        found = _CURSOR.fullmatch(text.strip()) if isinstance(text, str) else None
        if found is None:
            return None
        thread_id = int(found[2])
        if thread_id > 2**63 - 1:
            return None
        if found[1] == "-":
            return cls(None, thread_id)
        try:
            at = _EPOCH + timedelta(microseconds=int(found[1]))
        except OverflowError:
            return None
        return cls(at, thread_id)


@dataclass(frozen=True)
class MailboxPage:
    thread_ids: list[int]  # newest activity first
    next_cursor: Cursor | None  # None: this is the last page
    # What the query named that does not exist (an unknown label), in plain words.
    errors: tuple[str, ...] = ()


# --- Folders -----------------------------------------------------------------------------------

FOLDERS = ("inbox", "sent", "drafts", "archive", "trash", "all")
_FOLDER_ID = re.compile(r"folder:([0-9]{1,18})")
# What each folder shows, over a thread `t` (the rules of `selectors.thread_list`, plus trash
# and all): inbox: in an inbox folder, not archived or deleted; archive: archived here, or only
# in archive folders on the server; sent, drafts: with a message in such a folder; trash:
# deleted here or in a trash folder; all: everything not deleted.
_FOLDER_SQL = {
    "inbox": "'inbox' = ANY(t.folder_roles) AND NOT t.archived AND NOT t.deleted",
    "archive": (
        "NOT t.deleted AND (t.archived OR (t.folder_roles && ARRAY['archive', 'all']::varchar[]"
        " AND NOT 'inbox' = ANY(t.folder_roles)))"
    ),
    "sent": "'sent' = ANY(t.folder_roles) AND NOT t.deleted",
    "drafts": "'drafts' = ANY(t.folder_roles) AND NOT t.deleted",
    "trash": "(t.deleted OR 'trash' = ANY(t.folder_roles))",
    "all": "NOT t.deleted",
}

# --- Full text: how a query becomes a tsquery ---------------------------------------------------

# Configurations of migration 0005, by language (`inbox.languages`); others: mail_simple.
CONFIGURATIONS = {
    languages.ENGLISH: "mail_english",
    languages.DUTCH: "mail_dutch",
    languages.TURKISH: "mail_turkish",
}
SIMPLE = "mail_simple"
_STEMMED = ("mail_english", "mail_dutch", "mail_turkish")
PREFIX_MIN = 3  # shorter words are matched whole, not as prefixes (too many words start so)

# A lexeme as tsquery text: quoted, quotes doubled and backslashes escaped.
_QUOTE_LEXEME = "'''' || replace(replace({value}, '\\', '\\\\'), '''', '''''') || ''''"


def _word_lexemes_sql(param: str, *, prefix: str = "", match_prefix: bool) -> str:
    """The words of a text as a tsquery of ANDed lexemes (unaccented, lower case, as
    `mail_simple` makes them), each with `prefix` in front and, when long enough and
    `match_prefix`, matched as a prefix."""
    quoted = _QUOTE_LEXEME.format(value=f"'{prefix}' || x" if prefix else "x")
    star = f"CASE WHEN length(x) >= {PREFIX_MIN} THEN ':*' ELSE '' END" if match_prefix else "''"
    return (
        f"coalesce((SELECT string_agg({quoted} || {star}, ' & ')::tsquery "  # noqa: S608 - our own SQL
        f"FROM unnest(tsvector_to_array(to_tsvector('{SIMPLE}', %({param})s))) AS x), "
        "''::tsquery)"
    )


def _term_sql(param: str, term: str) -> str:
    """A free word or phrase, in every configuration (OR): stemmed as English, Dutch and
    Turkish, and as typed (unaccented), a single word also as a prefix."""
    if " " in term:
        variants = [f"phraseto_tsquery('{c}', %({param})s)" for c in (*_STEMMED, SIMPLE)]
    else:
        variants = [f"plainto_tsquery('{c}', %({param})s)" for c in (*_STEMMED, SIMPLE)]
        variants.append(_word_lexemes_sql(param, match_prefix=True))
    return "(" + " || ".join(variants) + ")"


def _party_sql(param: str, value: str, prefix: str) -> str:
    """`from:` (prefix "f:") or `to:` ("t:"): an address or a domain as one word, else the
    words of a name (each as a prefix)."""
    if "@" in value or ("." in value and " " not in value):
        lexeme = _QUOTE_LEXEME.format(value=f"'{prefix}' || lower(%({param})s)")
        return f"({lexeme})::tsquery"
    return _word_lexemes_sql(param, prefix=prefix, match_prefix=True)


def _tsquery_sql(query: MailQuery, params: dict[str, Any]) -> str:
    """The SQL expression of the query's tsquery (its words, phrases, from: and to:)."""
    parts: list[str] = []

    def param(value: str) -> str:
        name = f"w{len(params)}"
        params[name] = value
        return name

    for term in query.terms:
        parts.append(_term_sql(param(term), term))
    for value in query.from_:
        parts.append(_party_sql(param(value), value, "f:"))
    for value in query.to:
        parts.append(_party_sql(param(value), value, "t:"))
    for term in query.excluded:
        parts.append(f"!!{_term_sql(param(term), term)}")
    return " && ".join(parts)


# --- A page ------------------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def _conditions(
    query: MailQuery, *, folder_sql: str, label_ids: Sequence[int], params: dict[str, Any]
) -> str:
    """The folder and the filters, over a thread `t` (row-level security applies)."""
    where = ["NOT t.blocked", folder_sql]
    if query.has_attachment is not None:
        where.append("t.has_attachments" if query.has_attachment else "NOT t.has_attachments")
    if query.unread is not None:
        where.append("t.is_unread" if query.unread else "NOT t.is_unread")
    if query.linked is not None:
        linked = (
            "(t.deal_id IS NOT NULL OR t.lead_id IS NOT NULL OR t.project_id IS NOT NULL "
            "OR cardinality(t.person_ids) > 0)"
        )
        where.append(linked if query.linked else f"NOT {linked}")
    if query.before is not None:
        params["before"] = _day_start(query.before)
        where.append("t.last_message_at < %(before)s")
    if query.after is not None:
        params["after"] = _day_start(query.after)
        where.append("t.last_message_at >= %(after)s")
    for number, label_id in enumerate(label_ids):
        params[f"label{number}"] = label_id
        where.append(
            "EXISTS (SELECT 1 FROM inbox_mailthreadlabel l WHERE l.company_id = %(company)s "  # noqa: S608 - our own SQL
            f"AND l.thread_id = t.id AND l.label_id = %(label{number})s)"
        )
    return " AND ".join(where)


# The plain list: each account's conversations newest first from its index, merged; those
# without any message time (none in practice: the store sets it) after them, by id.
_LIST = """
SELECT page.id, page.last_message_at FROM (
    (SELECT found.id, found.last_message_at
     FROM unnest(%(accounts)s::bigint[]) AS account(id)
     CROSS JOIN LATERAL (
         SELECT t.id, t.last_message_at FROM inbox_mailthread t
         WHERE t.company_id = %(company)s AND t.account_id = account.id
           AND t.last_message_at IS NOT NULL AND {dated_after} AND {conditions}
         ORDER BY t.last_message_at DESC, t.id DESC
         LIMIT %(limit)s
     ) AS found
     ORDER BY found.last_message_at DESC, found.id DESC
     LIMIT %(limit)s)
    UNION ALL
    (SELECT t.id, t.last_message_at FROM inbox_mailthread t
     WHERE t.company_id = %(company)s AND t.account_id = ANY(%(accounts)s::bigint[])
       AND t.last_message_at IS NULL AND {undated_after} AND {conditions}
     ORDER BY t.id DESC
     LIMIT %(limit)s)
) AS page
ORDER BY page.last_message_at DESC NULLS LAST, page.id DESC
LIMIT %(limit)s
"""

# With a label: from the label's conversations (a label is on few of a mailbox's threads, and a
# walk down every account would read them all to find none).
_LABELLED = """
SELECT t.id, t.last_message_at FROM inbox_mailthread t
WHERE t.company_id = %(company)s AND t.account_id = ANY(%(accounts)s::bigint[])
  AND t.id IN (SELECT l.thread_id FROM inbox_mailthreadlabel l
               WHERE l.company_id = %(company)s AND l.label_id = %(label0)s)
  AND {after} AND {conditions}
ORDER BY t.last_message_at DESC NULLS LAST, t.id DESC
LIMIT %(limit)s
"""

# A batch of the door's matches, each marked whether it passes the folder and the filters.
_SEARCH = """
SELECT found.thread_id, found.last_message_at, shown.id IS NOT NULL
FROM inbox_thread_search(%(accounts)s::bigint[], {tsquery}, {after_at}, %(after_id)s,
                         {since}, %(batch)s) AS found
LEFT JOIN LATERAL (
    SELECT t.id FROM inbox_mailthread t
    WHERE t.company_id = %(company)s AND t.id = found.thread_id AND {conditions}
) AS shown ON true
ORDER BY found.last_message_at DESC NULLS LAST, found.thread_id DESC
"""
SEARCH_BATCH = 200  # the door's first batch; each further one is 4 times larger
SEARCH_BATCH_MAX = 20_000


def _accounts(
    membership: Membership, folder: str, account_ids: Sequence[int] | None
) -> tuple[list[int], str] | None:
    """The accounts to list and the folder's condition; None when nothing can show (an unknown
    folder, one of another user's accounts, no account left)."""
    mine = list(
        visibility.mailbox_accounts(
            company=membership.company_id, user=membership.user_id
        ).values_list("pk", flat=True)
    )
    if account_ids is not None:
        wanted = set(account_ids)
        mine = [pk for pk in mine if pk in wanted]
    found = _FOLDER_ID.fullmatch(folder)
    if found is not None:
        folder_id = int(found[1])
        owner = (
            MailFolder.objects.for_company(membership.company_id)
            .filter(pk=folder_id, account_id__in=mine)
            .values_list("account_id", flat=True)
            .first()
        )
        if owner is None:
            return None
        return [owner], f"{folder_id} = ANY(t.folder_ids) AND NOT t.deleted"
    if folder not in _FOLDER_SQL or not mine:
        return None
    return sorted(mine), _FOLDER_SQL[folder]


def _labels(membership: Membership, names: Sequence[str]) -> tuple[list[int], tuple[str, ...]]:
    """The ids of the conversation labels named (any case), and an error per unknown name."""
    wanted = {name.casefold(): name for name in names}
    found: dict[str, int] = {}
    for pk, name in (
        Label.objects.for_company(membership.company_id)
        .filter(kind=LabelKind.MAIL_THREAD)
        .values_list("pk", "name")
    ):
        if name.casefold() in wanted:
            found[name.casefold()] = pk
    errors = tuple(
        f'There is no label "{name}".' for key, name in wanted.items() if key not in found
    )
    return list(found.values()), errors


def mailbox_page(
    *,
    membership: Membership,
    folder: str,
    account_ids: Sequence[int] | None,
    query: MailQuery,
    after: Cursor | None,
    limit: int = 50,
) -> MailboxPage:
    """One page of the member's mailbox: the conversations of `folder` ("inbox", "sent",
    "drafts", "archive", "trash", "all" or "folder:<id>" of a synced folder of theirs) in the
    accounts whose mailbox they read (only those of `account_ids` when given; others are
    ignored) that match `query`, newest activity first, after the cursor. Never a blocked
    conversation. An unknown label matches nothing and is named in `errors`.

    `before:` / `after:` compare the conversation's latest message with the start of the day
    in the current time zone. Two queries for a page (three with labels or a synced folder);
    a search with words asks the door again only while its batches do not fill the page."""
    limit = max(1, min(int(limit), 500))
    chosen = _accounts(membership, folder, account_ids)
    if chosen is None:
        return MailboxPage([], None)
    accounts, folder_sql = chosen
    label_ids: list[int] = []
    errors: tuple[str, ...] = ()
    if query.labels:
        label_ids, errors = _labels(membership, query.labels)
        if errors:
            return MailboxPage([], None, errors)
    params: dict[str, Any] = {"company": membership.company_id, "accounts": accounts}
    conditions = _conditions(query, folder_sql=folder_sql, label_ids=label_ids, params=params)
    if query.has_text:
        rows = _search(query, conditions, params, after, limit + 1)
    elif label_ids:
        rows = _labelled(conditions, params, after, limit + 1)
    else:
        rows = _list(conditions, params, after, limit + 1)
    if len(rows) <= limit:
        return MailboxPage([pk for pk, _ in rows], None)
    rows = rows[:limit]
    last_id, last_at = rows[-1]
    return MailboxPage([pk for pk, _ in rows], Cursor(last_at, last_id))


def _list(
    conditions: str, params: dict[str, Any], after: Cursor | None, limit: int
) -> list[tuple[int, datetime | None]]:
    params["limit"] = limit
    if after is None:
        dated, undated = "true", "true"
    elif after.last_message_at is None:
        dated, undated = "false", "t.id < %(after_id)s"
        params["after_id"] = after.thread_id
    else:
        dated = "(t.last_message_at, t.id) < (%(after_at)s, %(after_id)s)"
        undated = "true"
        params["after_at"], params["after_id"] = after.last_message_at, after.thread_id
    sql = _LIST.format(dated_after=dated, undated_after=undated, conditions=conditions)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(row[0], row[1]) for row in cursor.fetchall()]


def _labelled(
    conditions: str, params: dict[str, Any], after: Cursor | None, limit: int
) -> list[tuple[int, datetime | None]]:
    params["limit"] = limit
    if after is None:
        position = "true"
    elif after.last_message_at is None:
        position = "t.last_message_at IS NULL AND t.id < %(after_id)s"
        params["after_id"] = after.thread_id
    else:
        position = (
            "(t.last_message_at IS NULL "
            "OR (t.last_message_at, t.id) < (%(after_at)s, %(after_id)s))"
        )
        params["after_at"], params["after_id"] = after.last_message_at, after.thread_id
    sql = _LABELLED.format(after=position, conditions=conditions)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(row[0], row[1]) for row in cursor.fetchall()]


def _start(after: Cursor | None, before: date | None) -> Cursor | None:
    """Where a search starts: after the cursor, and below the day `before:` names (a position
    just above that day's first instant, so nothing newer is read at all)."""
    if before is None:
        return after
    day = _day_start(before)
    if after is not None and (after.last_message_at is None or after.last_message_at < day):
        return after
    return Cursor(day, 0)


def _search(
    query: MailQuery,
    conditions: str,
    params: dict[str, Any],
    after: Cursor | None,
    limit: int,
) -> list[tuple[int, datetime | None]]:
    """Ask the door for matches in growing batches until `limit` of them pass the filters or
    the matches run out."""
    tsquery = _tsquery_sql(query, params)
    found: list[tuple[int, datetime | None]] = []
    position = _start(after, query.before)
    since = "'-infinity'::timestamptz"
    if query.after is not None:
        since, params["since"] = "%(since)s", _day_start(query.after)
    batch = SEARCH_BATCH
    while True:
        if position is None:
            after_at, params["after_id"] = "'infinity'::timestamptz", 0
        elif position.last_message_at is None:
            after_at, params["after_id"] = "'-infinity'::timestamptz", position.thread_id
        else:
            after_at, params["after_id"] = "%(after_at)s", position.thread_id
            params["after_at"] = position.last_message_at
        params["batch"] = batch
        sql = _SEARCH.format(tsquery=tsquery, after_at=after_at, since=since, conditions=conditions)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        for thread_id, at, shown in rows:
            if shown:
                found.append((thread_id, at))
                if len(found) == limit:
                    return found
        if len(rows) < batch:
            return found
        last_id, last_at, _ = rows[-1]
        position = Cursor(last_at, last_id)
        batch = min(batch * 4, SEARCH_BATCH_MAX)


# --- Keeping the index -------------------------------------------------------------------------

# Of each message's body, its own words: quoted lines and the quoted message under a reply
# header are left out (they are indexed with the message they quote), then the first
# BODY_CHARS characters (about 230 words: most business emails whole). PostgreSQL's text parser
# costs about 0.1 µs a character, most of what indexing adds to the ingest (docs/benchmarks.md,
# "Sales Inbox"). Read from the first BODY_READ characters.
BODY_CHARS = 1_500
BODY_READ = 3_000
SUBJECT_CHARS = 500
PARTIES_MAX = 50  # participants of a message that are indexed
FILES_MAX = 20  # attachment names of a message that are indexed
# A thread's vectors in all, in bytes: a tsvector holds at most 1 MB. Past it, older messages
# of a very long conversation are not indexed (the newest are: a rebuild goes newest first).
VECTOR_BUDGET = 800_000

_STATE = """
SELECT listed.id, t.account_id, t.last_message_at, s.message_ids, s.indexed_bytes,
       NULLIF(s.last_message_at, '-infinity'),
       ARRAY(SELECT tm.message_id FROM inbox_mailthreadmessage tm
             WHERE tm.company_id = %(company)s AND tm.thread_id = listed.id)
FROM unnest(%(ids)s::bigint[]) AS listed(id)
LEFT JOIN inbox_mailthread t ON t.company_id = %(company)s AND t.id = listed.id
LEFT JOIN inbox_mailthreadsearch s ON s.company_id = %(company)s AND s.thread_id = listed.id
"""

# Each message to index: a sample of its text (its language), its participants and its files.
_MESSAGES = f"""
SELECT m.id, m.received_at, left(m.subject, {SUBJECT_CHARS}), left(m.body_text, {BODY_READ}),
       parties.roles, parties.addresses, parties.names, files.names
FROM unnest(%(ids)s::bigint[]) AS wanted(id)
JOIN inbox_mailmessage m ON m.company_id = %(company)s AND m.id = wanted.id
CROSS JOIN LATERAL (
    SELECT array_agg(p.role ORDER BY p.position) AS roles,
           array_agg(p.address ORDER BY p.position) AS addresses,
           array_agg(p.name ORDER BY p.position) AS names
    FROM (SELECT p.role, p.address, p.name, p.position FROM inbox_mailparticipant p
          WHERE p.company_id = %(company)s AND p.message_id = m.id
          ORDER BY p.position LIMIT {PARTIES_MAX}) AS p
) AS parties
CROSS JOIN LATERAL (
    SELECT array_agg(a.filename ORDER BY a.id) AS names
    FROM (SELECT a.id, a.filename FROM inbox_mailattachment a
          WHERE a.company_id = %(company)s AND a.message_id = m.id
          ORDER BY a.id LIMIT {FILES_MAX}) AS a
) AS files
"""  # noqa: S608 - SQL from our own constants

# The words of one message (configuration `config`): its subject and own words, the lexemes
# of its participants' addresses (made in Python, `party_lexemes`), the words of their names (as
# they are, and with "f:" for senders and "t:" for To, Cc and Bcc) and its attachments' names.
_MESSAGE_VECTOR = f"""
to_tsvector(config, wanted.text)
|| array_to_tsvector(string_to_array(wanted.lexemes, E'\\x1f'))
|| to_tsvector('{SIMPLE}', wanted.names)
|| array_to_tsvector(ARRAY(
    SELECT 'f:' || word FROM unnest(tsvector_to_array(to_tsvector('{SIMPLE}', wanted.senders)))
        AS word))
|| array_to_tsvector(ARRAY(
    SELECT 't:' || word
    FROM unnest(tsvector_to_array(to_tsvector('{SIMPLE}', wanted.recipients))) AS word))
|| to_tsvector('{SIMPLE}', wanted.files)
"""  # noqa: S608 - SQL from our own constants

_WRITE = f"""
WITH listed AS (
    SELECT * FROM unnest(%(threads)s::bigint[], %(append)s::boolean[], %(base)s::int[])
        AS l(thread_id, append, base)
), vectors AS MATERIALIZED (
    SELECT wanted.thread_id, wanted.id, wanted.received_at, v.vector
    FROM unnest(%(message_threads)s::bigint[], %(messages)s::bigint[],
                %(received)s::timestamptz[], %(configs)s::text[], %(texts)s::text[],
                %(lexemes)s::text[], %(names)s::text[], %(senders)s::text[],
                %(recipients)s::text[], %(files)s::text[])
        AS wanted(thread_id, id, received_at, config, text, lexemes, names, senders,
                  recipients, files)
    CROSS JOIN LATERAL (
        SELECT {_MESSAGE_VECTOR.replace("(config,", "(wanted.config::regconfig,")} AS vector
        OFFSET 0  -- computed once, not once per reference
    ) AS v
), running AS (
    SELECT v.*, pg_column_size(v.vector) AS bytes, l.base + sum(pg_column_size(v.vector)) OVER (
        PARTITION BY v.thread_id ORDER BY v.received_at DESC, v.id DESC) AS total
    FROM vectors v JOIN listed l ON l.thread_id = v.thread_id
), kept AS (
    SELECT thread_id, inbox_tsvector_agg(vector ORDER BY received_at DESC, id DESC) AS vector,
           sum(bytes)::int AS bytes
    FROM running WHERE total <= %(budget)s
    GROUP BY thread_id
)
INSERT INTO inbox_mailthreadsearch AS s
    (company_id, thread_id, account_id, last_message_at, message_ids, indexed_bytes, vector)
SELECT %(company)s, t.id, t.account_id, coalesce(t.last_message_at, '-infinity'),
       ARRAY(SELECT tm.message_id FROM inbox_mailthreadmessage tm
             WHERE tm.company_id = %(company)s AND tm.thread_id = t.id),
       l.base + coalesce(k.bytes, 0),
       CASE WHEN l.append THEN coalesce(old.vector, ''::tsvector) ELSE ''::tsvector END
           || coalesce(k.vector, ''::tsvector)
FROM listed l
JOIN inbox_mailthread t ON t.company_id = %(company)s AND t.id = l.thread_id
LEFT JOIN kept k ON k.thread_id = l.thread_id
LEFT JOIN inbox_mailthreadsearch old ON old.company_id = %(company)s AND old.thread_id = t.id
ON CONFLICT (company_id, thread_id) DO UPDATE SET
    account_id = excluded.account_id, last_message_at = excluded.last_message_at,
    message_ids = excluded.message_ids, indexed_bytes = excluded.indexed_bytes,
    vector = excluded.vector
"""  # noqa: S608 - SQL from our own constants

_MOVED = """
UPDATE inbox_mailthreadsearch s SET last_message_at = coalesce(t.last_message_at, '-infinity')
FROM unnest(%(ids)s::bigint[]) AS listed(id)
JOIN inbox_mailthread t ON t.company_id = %(company)s AND t.id = listed.id
WHERE s.company_id = %(company)s AND s.thread_id = listed.id
"""


@dataclass
class _Plan:
    """What to write for a batch of threads."""

    threads: list[int]
    append: list[bool]
    base: list[int]
    message_threads: list[int]
    messages: list[int]
    moved: list[int]  # only their time changed


def _plan(rows: Iterable[tuple[Any, ...]]) -> _Plan:
    plan = _Plan([], [], [], [], [], [])
    for thread_id, account_id, last_at, indexed, indexed_bytes, indexed_at, current in rows:
        if account_id is None:
            continue  # gone: the delete trigger took its row
        held = set(current)
        if indexed is not None and set(indexed) <= held:
            new = sorted(held - set(indexed))
            if not new:
                if last_at != indexed_at:
                    plan.moved.append(thread_id)
                continue
            append, base = True, indexed_bytes
        else:
            new, append, base = sorted(held), False, 0
        plan.threads.append(thread_id)
        plan.append.append(append)
        plan.base.append(base)
        plan.message_threads += [thread_id] * len(new)
        plan.messages += new
    return plan


_SENDER_ROLES = frozenset({"from", "sender"})
_RECIPIENT_ROLES = frozenset({"to", "cc", "bcc"})
_LOCAL_PIECES = re.compile(r"[._+-]+")


def party_lexemes(role: str, address: str) -> set[str]:
    """The words an address is found by: itself, its local part and the pieces of it, its
    domain and each parent domain (not the bare top level); each also with "f:" (senders) or
    "t:" (To, Cc, Bcc) for `from:` and `to:`."""
    address = address.strip().lower()
    if not address:
        return set()
    local, _, domain = address.partition("@")
    words = {address, local, *_LOCAL_PIECES.split(local)}
    labels = domain.split(".") if domain else []
    words.update(".".join(labels[level:]) for level in range(len(labels) - 1))
    words = {word for word in words if word and len(word.encode()) < 1000 and "\x1f" not in word}
    prefix = "f:" if role in _SENDER_ROLES else "t:" if role in _RECIPIENT_ROLES else ""
    return words | {prefix + word for word in words} if prefix else words


@dataclass(frozen=True)
class _MessageText:
    """What a message's vector is made of besides its subject and body (see _MESSAGE_VECTOR)."""

    received_at: datetime
    config: str
    text: str  # the subject and the body's own_text
    lexemes: str  # party lexemes joined by \x1f
    names: str
    senders: str
    recipients: str
    files: str


# Where the quoted message starts under a reply: "On Mon, 1 Dec 2026 Ann <a@b.c> wrote:" and
# its Dutch, German, French, Polish, Spanish, Turkish ("yazd\u0131", a dotless i) and Estonian
# forms, and Outlook's separators.
_REPLY_HEADER = re.compile(
    r"^(?:(?:On|Op|Am|Le|W dniu|El) .{0,300}(?:wrote|schreef|schrieb|a écrit|napisał|napisała|"
    r"escribió).{0,300}:|.{0,300}(?:yazd\u0131|kirjutas)\s*:|-{2,}\s*Original Message\s*-{2,}"
    r"|_{20,})\s*$",
    re.IGNORECASE,
)


def own_text(body: str, limit: int = BODY_CHARS) -> str:
    """The message's own words: its lines up to a reply header or a signature ("-- "), without
    quoted lines ("> ..."), at most `limit` characters."""
    kept: list[str] = []
    size = 0
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if line == "-- " or (stripped.endswith((":", "-", "_")) and _REPLY_HEADER.match(stripped)):
            break
        kept.append(line)
        size += len(line) + 1
        if size >= limit:
            break
    return "\n".join(kept)[:limit]


def _message_text(
    received_at: datetime,
    subject: str | None,
    body: str | None,
    roles: Sequence[str] | None,
    addresses: Sequence[str] | None,
    names: Sequence[str] | None,
    files: Sequence[str] | None,
) -> _MessageText:
    text = f"{subject or ''}\n{own_text(body or '')}"
    language = languages.detect(text)
    lexemes: set[str] = set()
    senders, recipients, everyone = [], [], []
    for role, address, name in zip(roles or (), addresses or (), names or (), strict=True):
        lexemes |= party_lexemes(role, address)
        everyone.append(name)
        if role in _SENDER_ROLES:
            senders.append(name)
        elif role in _RECIPIENT_ROLES:
            recipients.append(name)
    return _MessageText(
        received_at=received_at,
        config=CONFIGURATIONS.get(language or "", SIMPLE),
        text=text,
        lexemes="\x1f".join(sorted(lexemes)),
        names=" ".join(everyone),
        senders=" ".join(senders),
        recipients=" ".join(recipients),
        # Whole names (`offer-2026.pdf`) and their parts (`offer`, `2026`, `pdf`).
        files=" ".join(f"{name} {re.sub(r'[._-]+', ' ', name)}" for name in files or ()),
    )


def threads_reindex(*, company_id: int, thread_ids: Iterable[int]) -> None:
    """Bring the full-text index of these threads up to date with their messages: add the
    words of messages new to a thread, rebuild a thread that lost messages (merged, deleted),
    forget threads that are gone. Called by the ingest after `threads_refresh`.

    Precondition: inside a transaction bound to `company_id` (or as the owner role)."""
    ids = sorted(set(thread_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_STATE, {"company": company_id, "ids": ids})
        plan = _plan(cursor.fetchall())
        if plan.moved:
            cursor.execute(_MOVED, {"company": company_id, "ids": plan.moved})
        if not plan.threads:
            return
        texts: dict[int, _MessageText] = {}
        if plan.messages:
            cursor.execute(_MESSAGES, {"company": company_id, "ids": plan.messages})
            for message_id, *facts in cursor.fetchall():
                texts[message_id] = _message_text(*facts)
        # A message deleted meanwhile is not in `texts`: it is left out (its thread is
        # refreshed again when its deletion is stored).
        kept = [
            (pk, thread)
            for pk, thread in zip(plan.messages, plan.message_threads, strict=True)
            if pk in texts
        ]
        chosen = [texts[pk] for pk, _ in kept]
        cursor.execute(
            _WRITE,
            {
                "company": company_id,
                "budget": VECTOR_BUDGET,
                "threads": plan.threads,
                "append": plan.append,
                "base": plan.base,
                "message_threads": [thread for _, thread in kept],
                "messages": [pk for pk, _ in kept],
                "received": [text.received_at for text in chosen],
                "configs": [text.config for text in chosen],
                "texts": [text.text for text in chosen],
                "lexemes": [text.lexemes for text in chosen],
                "names": [text.names for text in chosen],
                "senders": [text.senders for text in chosen],
                "recipients": [text.recipients for text in chosen],
                "files": [text.files for text in chosen],
            },
        )


# --- Indexing later: a queue a task drains ------------------------------------------------------
#
# Indexing costs about as much as the rest of the ingest (docs/benchmarks.md, "Sales Inbox"). A
# caller that must not pay it in its own transaction (a first sync) queues the threads instead;
# `queue_drain` (a task) indexes them soon after. Until then they are listed but not found by
# words.

_QUEUE = """
INSERT INTO inbox_mailsearchqueue (company_id, thread_id)
SELECT %(company)s, listed.id FROM unnest(%(ids)s::bigint[]) AS listed(id)
ON CONFLICT (company_id, thread_id) DO NOTHING
"""
_TAKE = """
DELETE FROM inbox_mailsearchqueue q
WHERE q.company_id = %(company)s AND q.thread_id IN (
    SELECT w.thread_id FROM inbox_mailsearchqueue w
    WHERE w.company_id = %(company)s
    ORDER BY w.queued_at, w.thread_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING q.thread_id
"""
DRAIN_CHUNK = 500


def threads_queue(*, company_id: int, thread_ids: Iterable[int]) -> None:
    """Queue these threads for `queue_drain` (one statement; a thread queued twice is indexed
    once). Precondition as `threads_reindex`."""
    ids = sorted(set(thread_ids))
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_QUEUE, {"company": company_id, "ids": ids})


def queue_drain(*, company_id: int, limit: int = 20_000) -> int:
    """Index up to `limit` queued threads of the company, oldest queued first, in chunks;
    returns how many it took. Two drains at once take different threads (SKIP LOCKED).
    Precondition: inside a transaction bound to `company_id` (a TenantTask)."""
    done = 0
    while done < limit:
        with connection.cursor() as cursor:
            cursor.execute(_TAKE, {"company": company_id, "limit": min(DRAIN_CHUNK, limit - done)})
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            break
        threads_reindex(company_id=company_id, thread_ids=ids)
        done += len(ids)
    return done


def queue_waiting(*, company_id: int) -> bool:
    """Does the company's search queue hold threads? Precondition as `queue_drain`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM inbox_mailsearchqueue WHERE company_id = %s)",
            [company_id],
        )
        return bool(cursor.fetchone()[0])


REINDEX_CHUNK = 1_000


def company_reindex(*, company_id: int) -> int:
    """Index every conversation of a company (a backfill); returns how many. Precondition as
    `threads_reindex`."""
    done, last = 0, 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM inbox_mailthread WHERE company_id = %s AND id > %s "
                "ORDER BY company_id, id LIMIT %s",
                [company_id, last, REINDEX_CHUNK],
            )
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return done
        threads_reindex(company_id=company_id, thread_ids=ids)
        done, last = done + len(ids), ids[-1]


def threads_reindex_all() -> int:
    """Index every company's conversations: for migration 0005, which runs as the owner role
    (row-level security does not apply to the owner)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT company_id FROM inbox_mailthread ORDER BY 1")
        companies = [row[0] for row in cursor.fetchall()]
    return sum(company_reindex(company_id=company_id) for company_id in companies)
