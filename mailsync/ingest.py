"""The ingest pipeline's database side: one batch of fetched messages of one folder in, stored
messages, locations and threads out (DESIGN.md, The ingest pipeline).

    parse (pure, before the transaction) → dedupe → thread (pure) → link (persons by address,
    pure) → store → link the threads (`inbox.linking`: persons, blocked senders, the open deal
    or lead) and visibility (a new thread takes its account's default sharing)

Everything here runs inside the caller's transaction, bound to the company, while the caller
holds the account's sync lock. One read per stage for the whole batch, then bulk writes keyed
by the idempotency keys (message key per company; folder + provider id per location; account +
message per thread membership), so a crash or a retry never duplicates or loses a message.
New message rows go in by one INSERT from arrays per table, with ids taken from their sequence
first (COPY would be faster, but PostgreSQL refuses it on tables with row-level security).

The outbox's messages (decision 0012) are stored when the user sends them, in no folder;
`messages_place` threads them into their account once the server took them, and the sync of
Sent later finds their copy by the same key: a location for the same message, in the same
thread (the outbox writes its locations through `ingest_batch` too, with the sync lock or
without it: every write here is an idempotent upsert)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from contacts import selectors as contacts_selectors
from crm import hooks
from inbox import linking, rawstore, search
from inbox import tasks as inbox_tasks
from inbox.linkrules import link_addresses
from mailsync.pipeline import threads
from mailsync.pipeline.parse import parse_message
from mailsync.pipeline.types import ParsedMessage
from mailsync.providers.base import FetchedMessage

# A refresh of at most this many threads (new mail arriving) indexes them for search in its own
# transaction; a larger one (a first-sync batch) queues them for inbox.tasks.search_drain.
SEARCH_INLINE_THREADS = 20


@dataclass
class IngestResult:
    stored: int = 0  # locations added
    new_messages: int = 0  # message rows created (not already in the company)
    malformed: int = 0  # of the new ones, stored raw and flagged
    thread_ids: set[int] = field(default_factory=set)


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; a few broken mails carry them.
    return text.replace("\x00", "") if "\x00" in text else text


def parse_batch(fetched: Sequence[FetchedMessage]) -> list[ParsedMessage]:
    """The pure first stage, run outside the transaction (CPU only)."""
    return [parse_message(message.raw) for message in fetched]


def ingest_batch(
    *,
    company_id: int,
    account_id: int,
    folder_id: int,
    fetched: Sequence[FetchedMessage],
    parsed: Sequence[ParsedMessage],
    announce: bool,
    raw_paths: Sequence[str] | None = None,
) -> IngestResult:
    """Store one folder's batch. `announce` publishes MAIL_RECEIVED for messages new to the
    company after commit (never for a first sync or a reconcile: no replay of old mail).

    Precondition: inside a transaction bound to `company_id`; the caller holds the account
    lock; `parsed[i]` is `parse_message(fetched[i].raw)`; `raw_paths[i]`, when given, is
    where `rawstore.raw_save` already put `fetched[i].raw` (else it is saved here)."""
    result = IngestResult()
    if not fetched:
        return result
    now = datetime.now(UTC)
    paths = list(raw_paths) if raw_paths is not None else [""] * len(fetched)
    with connection.cursor() as cursor:
        # --- Locations already held: a retried batch skips what it stored before. ---
        held = set(
            held_provider_ids(
                cursor, company_id, folder_id, [message.provider_id for message in fetched]
            )
        )
        triples = [
            (f, p, path)
            for f, p, path in zip(fetched, parsed, paths, strict=True)
            if f.provider_id not in held
        ]
        if not triples:
            return result
        pairs = [(f, p) for f, p, _ in triples]

        # --- Dedupe: one message per company and key. ---
        keys = list(dict.fromkeys(p.key for _, p in pairs))
        cursor.execute(
            "SELECT m.key, m.id, m.raw_path FROM unnest(%s::text[]) AS r(key) "
            "JOIN inbox_mailmessage m ON m.company_id = %s AND m.key = r.key",
            [keys, company_id],
        )
        existing = cursor.fetchall()
        message_ids: dict[str, int] = {key: message_id for key, message_id, _ in existing}
        first_of_key: dict[str, tuple[FetchedMessage, ParsedMessage, str]] = {}
        for fetched_message, parsed_message, path in triples:
            if parsed_message.key not in message_ids:
                first_of_key.setdefault(parsed_message.key, (fetched_message, parsed_message, path))
        created: list[str] = []
        if first_of_key:
            created = _messages_create(cursor, company_id, first_of_key, message_ids, now)
        if raw_paths is not None:
            # Bytes saved ahead for a message the company already had in other bytes (the
            # sender's copy and a recipient's differ in their headers): not needed.
            kept = {path for _, _, path in existing} | {first_of_key[k][2] for k in created}
            unneeded = {path for _, _, path in triples if path and path not in kept}
            if unneeded:
                transaction.on_commit(lambda: _raw_delete_all(unneeded))
            result.new_messages = len(created)
            result.malformed = sum(1 for key in created if first_of_key[key][1].parse_error)

        # --- Locations. ---
        cursor.execute(
            """
            INSERT INTO inbox_mailmessagelocation
                (company_id, account_id, folder_id, provider_id, message_id, uid, flags, created_at)
            SELECT %s, %s, %s, r.provider_id, r.message_id, r.uid,
                   CASE WHEN r.flags = '' THEN '{}'::varchar[]
                        ELSE string_to_array(r.flags, ' ')::varchar[] END, %s
            FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[])
                AS r(provider_id, message_id, uid, flags)
            ON CONFLICT (company_id, folder_id, provider_id) DO NOTHING
            RETURNING id, message_id
            """,
            [
                company_id,
                account_id,
                folder_id,
                now,
                [f.provider_id for f, _ in pairs],
                [message_ids[p.key] for _, p in pairs],
                [f.uid for f, _ in pairs],
                [" ".join(sorted(f.flags)) for f, _ in pairs],
            ],
        )
        located: dict[int, int] = dict(cursor.fetchall())  # location id → message id
        result.stored = len(located)

        # --- Thread the messages new to this account. ---
        batch_message_ids = list(dict.fromkeys(message_ids[p.key] for _, p in pairs))
        cursor.execute(
            "SELECT tm.message_id, tm.thread_id FROM unnest(%s::bigint[]) AS r(message_id) "
            "JOIN inbox_mailthreadmessage tm ON tm.company_id = %s AND tm.account_id = %s "
            "AND tm.message_id = r.message_id",
            [batch_message_ids, company_id, account_id],
        )
        threaded: dict[int, int] = dict(cursor.fetchall())
        result.thread_ids.update(threaded.values())
        to_thread: list[tuple[int, ParsedMessage, FetchedMessage]] = []
        for fetched_message, parsed_message in pairs:
            message_id = message_ids[parsed_message.key]
            if message_id not in threaded:
                threaded[message_id] = 0  # placeholder: once per message
                to_thread.append((message_id, parsed_message, fetched_message))
        if to_thread:
            result.thread_ids.update(_thread(cursor, company_id, account_id, to_thread, now))
        if announce and located:
            _inbox_return(cursor, company_id, account_id, folder_id, located)
        threads_refresh(company_id=company_id, thread_ids=result.thread_ids)
        # --- Link (persons, blocked senders, the open deal or lead) and visibility. ---
        linking.threads_relink(company_id=company_id, thread_ids=result.thread_ids)

    if announce and created:
        event = hooks.MailReceived(
            company_id=company_id,
            account_id=account_id,
            message_ids=tuple(message_ids[key] for key in created),
        )
        transaction.on_commit(lambda: hooks.publish(hooks.MAIL_RECEIVED, event))
    return result


def _inbox_return(
    cursor: CursorWrapper,
    company_id: int,
    account_id: int,
    folder_id: int,
    located: Mapping[int, int],
) -> None:
    """New mail of an inbox folder brings its conversation back to the inbox (A5): a message
    that was in no inbox folder of the account before this batch (new mail in the thread, or
    moved back to the inbox in a mail client) un-archives its thread, and un-deletes it.

    Not while an archive or delete the user asked for is still to be carried out on the
    server (`inbox_mailaction` pending): that newer wish wins, and the executor moves the
    message out again. The executor's own moves to the inbox (unarchive, restore) agree with
    the thread's state already, so they change nothing here."""
    cursor.execute(
        """
        UPDATE inbox_mailthread t SET archived = false, deleted = false, updated_at = now()
        FROM (
            SELECT DISTINCT tm.thread_id FROM inbox_mailthreadmessage tm
            WHERE tm.company_id = %(company)s AND tm.account_id = %(account)s
              AND tm.message_id = ANY(%(messages)s)
              AND NOT EXISTS (
                  SELECT 1 FROM inbox_mailmessagelocation l
                  JOIN inbox_mailfolder f ON f.company_id = l.company_id AND f.id = l.folder_id
                  WHERE l.company_id = tm.company_id AND l.account_id = tm.account_id
                    AND l.message_id = tm.message_id AND f.role = 'inbox'
                    AND l.id <> ALL(%(new_locations)s))
        ) returned
        WHERE t.company_id = %(company)s AND t.id = returned.thread_id
          AND (t.archived OR t.deleted)
          AND EXISTS (SELECT 1 FROM inbox_mailfolder f
                      WHERE f.company_id = %(company)s AND f.id = %(folder)s AND f.role = 'inbox')
          AND NOT EXISTS (
              SELECT 1 FROM inbox_mailaction a
              WHERE a.company_id = t.company_id AND a.thread_id = t.id
                AND a.state = 'pending' AND a.kind IN ('archive', 'delete'))
        """,
        {
            "company": company_id,
            "account": account_id,
            "messages": sorted(set(located.values())),
            "new_locations": sorted(located),
            "folder": folder_id,
        },
    )


def _raw_delete_all(paths: Iterable[str]) -> None:
    for path in paths:
        rawstore.raw_delete(path)


def held_provider_ids(
    cursor: CursorWrapper, company_id: int, folder_id: int, provider_ids: Sequence[str]
) -> list[str]:
    """Which of these provider ids the folder holds already (one index probe each)."""
    if not provider_ids:
        return []
    cursor.execute(
        "SELECT l.provider_id FROM unnest(%s::text[]) AS r(provider_id) "
        "JOIN inbox_mailmessagelocation l ON l.company_id = %s AND l.folder_id = %s "
        "AND l.provider_id = r.provider_id",
        [list(provider_ids), company_id, folder_id],
    )
    return [row[0] for row in cursor.fetchall()]


def _messages_create(
    cursor: CursorWrapper,
    company_id: int,
    first_of_key: Mapping[str, tuple[FetchedMessage, ParsedMessage, str]],
    message_ids: dict[str, int],
    now: datetime,
) -> list[str]:
    """Insert the new messages, their participants (linked to persons) and attachments;
    return the keys of the messages this call inserted."""
    cursor.execute(
        "SELECT nextval('inbox_mailmessage_id_seq') FROM generate_series(1, %s)",
        [len(first_of_key)],
    )
    new_ids = [row[0] for row in cursor.fetchall()]
    addresses = {
        participant.address
        for _, parsed, _ in first_of_key.values()
        for participant in parsed.participants
        if participant.address
    }
    persons = link_addresses(
        addresses,
        contacts_selectors.persons_by_addresses(company=company_id, addresses=addresses)
        if addresses
        else {},
    )
    rows = list(zip(new_ids, first_of_key.items(), strict=True))
    for new_id, (key, _) in rows:
        message_ids[key] = new_id
    senders = [parsed.from_participant for _, (_, (_, parsed, _)) in rows]
    # COPY is refused on tables with row-level security. The bodies are most of a batch's
    # bytes: they go as one pipelined executemany on a server-side-binding cursor, so psycopg
    # sends each value as it is rather than quoting it into the SQL (Django's cursors bind on
    # the client side, which costs more CPU than the INSERT itself here).
    with psycopg.Cursor(connection.connection) as insert:
        insert.executemany(
            """
            INSERT INTO inbox_mailmessage (id, company_id, key, message_id, in_reply_to,
                "references", subject, sent_at, received_at, from_address, from_name, snippet,
                body_text, body_html, has_attachments, is_bulk, size, raw_path, parse_error,
                created_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                    %s, %s)
            ON CONFLICT (company_id, key) DO NOTHING
            """,
            [
                (
                    new_id,
                    company_id,
                    key,
                    parsed.message_id,
                    parsed.in_reply_to,
                    list(parsed.references),
                    _clean(parsed.subject),
                    parsed.date,
                    fetched.received_at or parsed.date or now,
                    sender.address if sender else "",
                    _clean(sender.name)[:320] if sender else "",
                    _clean(parsed.snippet)[:225],
                    _clean(parsed.body_text),
                    _clean(parsed.body_html),
                    bool(parsed.attachments),
                    parsed.is_bulk,
                    parsed.size,
                    path or rawstore.raw_save(company_id, fetched.raw),
                    parsed.parse_error[:500],
                    now,
                )
                for (new_id, (key, (fetched, parsed, path))), sender in zip(
                    rows, senders, strict=True
                )
            ],
        )
    cursor.execute(
        "SELECT id FROM inbox_mailmessage WHERE company_id = %s AND id = ANY(%s)",
        [company_id, new_ids],
    )
    inserted = {row[0] for row in cursor.fetchall()}
    if len(inserted) < len(rows):
        # Another account's sync stored some of these meanwhile (it committed first): use its rows.
        lost = [key for new_id, (key, _) in rows if new_id not in inserted]
        cursor.execute(
            "SELECT key, id FROM inbox_mailmessage WHERE company_id = %s AND key = ANY(%s)",
            [company_id, lost],
        )
        message_ids.update(dict(cursor.fetchall()))
        rows = [row for row in rows if row[0] in inserted]
    participants = [
        (new_id, position, participant)
        for new_id, (_, (_, parsed, _)) in rows
        for position, participant in enumerate(parsed.participants)
    ]
    if participants:
        cursor.execute(
            """
            INSERT INTO inbox_mailparticipant (company_id, message_id, role, address, name,
                                               position, person_id)
            SELECT %s, r.message_id, r.role, r.address, r.name, r.position, r.person_id
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::int[],
                        %s::bigint[]) AS r(message_id, role, address, name, position, person_id)
            """,
            [
                company_id,
                [new_id for new_id, _, _ in participants],
                [str(p.role) for _, _, p in participants],
                [p.address[:320] for _, _, p in participants],
                [_clean(p.name)[:320] for _, _, p in participants],
                [position for _, position, _ in participants],
                [persons.get(p.address) for _, _, p in participants],
            ],
        )
    attachments = [
        (new_id, attachment)
        for new_id, (_, (_, parsed, _)) in rows
        for attachment in parsed.attachments
    ]
    if attachments:
        cursor.execute(
            """
            INSERT INTO inbox_mailattachment (company_id, message_id, filename, content_type,
                                              size, kind, content_id, part_path)
            SELECT %s, r.message_id, r.filename, r.content_type, r.size, r.kind, r.content_id,
                   r.part_path
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[], %s::text[],
                        %s::text[], %s::text[])
                AS r(message_id, filename, content_type, size, kind, content_id, part_path)
            """,
            [
                company_id,
                [new_id for new_id, _ in attachments],
                [_clean(a.filename)[:1000] for _, a in attachments],
                [a.content_type[:255] for _, a in attachments],
                [a.size for _, a in attachments],
                [str(a.kind) for _, a in attachments],
                [a.content_id[:998] for _, a in attachments],
                [a.part_path[:64] for _, a in attachments],
            ],
        )
    return [key for _, (key, _) in rows]


def _thread(
    cursor: CursorWrapper,
    company_id: int,
    account_id: int,
    to_thread: Sequence[tuple[int, ParsedMessage, FetchedMessage]],
    now: datetime,
) -> set[int]:
    """Plan (pure) and apply the threading of messages new to the account; return the threads
    touched."""
    inputs = [
        threads.ThreadInput(
            message_id=parsed.message_id,
            references=parsed.references,
            thread_subject=parsed.thread_subject,
            addresses=frozenset(p.address for p in parsed.participants if p.address),
            when=parsed.date or fetched.received_at or now,
        )
        for _, parsed, fetched in to_thread
    ]
    wanted = list({key for item in inputs for key in threads.message_keys(item)})
    cursor.execute(
        "SELECT k.key, k.thread_id, k.last_seen_at FROM unnest(%s::text[]) AS r(key) "
        "JOIN inbox_mailthreadkey k ON k.company_id = %s AND k.account_id = %s AND k.key = r.key",
        [wanted, company_id, account_id],
    )
    known = {
        key: threads.KnownKey(thread_id=thread_id, last_seen_at=seen)
        for key, thread_id, seen in cursor.fetchall()
    }
    plan = threads.plan_threads(inputs, known)

    new_thread_ids: list[int] = []
    if plan.new_thread_count:
        cursor.execute(
            """
            INSERT INTO inbox_mailthread
                (company_id, account_id, subject, snippet, message_count, has_attachments,
                 is_unread, folder_roles, folder_ids, archived, deleted, created_at, updated_at,
                 sharing, blocked, person_ids, link_manual)
            SELECT %s, a.id, '', '', 0, false, false, '{}', '{}', false, false, %s, %s,
                   a.default_sharing, false, '{}', false
            FROM inbox_mailaccount a CROSS JOIN generate_series(1, %s)
            WHERE a.company_id = %s AND a.id = %s
            RETURNING id
            """,
            [company_id, now, now, plan.new_thread_count, company_id, account_id],
        )
        new_thread_ids = sorted(row[0] for row in cursor.fetchall())

    def resolve(ref: threads.ThreadRef) -> int:
        return new_thread_ids[ref.number] if isinstance(ref, threads.NewThread) else ref

    touched = set(new_thread_ids)
    for gone, into in plan.merges.items():
        # A link chosen by hand survives the merge (onto a thread without one).
        cursor.execute(
            """
            UPDATE inbox_mailthread t
            SET deal_id = g.deal_id, lead_id = g.lead_id, project_id = g.project_id,
                link_manual = true
            FROM inbox_mailthread g
            WHERE t.company_id = %s AND t.id = %s AND g.company_id = %s AND g.id = %s
              AND g.link_manual AND NOT t.link_manual
            """,
            [company_id, into, company_id, gone],
        )
        for table in ("inbox_mailthreadmessage", "inbox_mailthreadkey", "inbox_mailaction"):
            cursor.execute(
                f"UPDATE {table} SET thread_id = %s "  # noqa: S608 - our own table names
                "WHERE company_id = %s AND thread_id = %s",
                [into, company_id, gone],
            )
        # Its labels join the merged thread's (once each).
        cursor.execute(
            """
            INSERT INTO inbox_mailthreadlabel (company_id, thread_id, label_id, created_at)
            SELECT company_id, %s, label_id, created_at FROM inbox_mailthreadlabel
            WHERE company_id = %s AND thread_id = %s
            ON CONFLICT (company_id, thread_id, label_id) DO NOTHING
            """,
            [into, company_id, gone],
        )
        cursor.execute(
            "DELETE FROM inbox_mailthreadlabel WHERE company_id = %s AND thread_id = %s",
            [company_id, gone],
        )
        # Its persons come back with the merged thread's relink.
        cursor.execute(
            "DELETE FROM inbox_mailthreadperson WHERE company_id = %s AND thread_id = %s",
            [company_id, gone],
        )
        cursor.execute(
            "DELETE FROM inbox_mailthread WHERE company_id = %s AND id = %s", [company_id, gone]
        )
        touched.add(into)

    assigned = [resolve(ref) for ref in plan.assignments]
    touched.update(assigned)
    cursor.execute(
        """
        INSERT INTO inbox_mailthreadmessage (company_id, thread_id, message_id, account_id,
                                             is_unread)
        SELECT %s, r.thread_id, r.message_id, %s, false
        FROM unnest(%s::bigint[], %s::bigint[]) AS r(thread_id, message_id)
        ON CONFLICT (company_id, account_id, message_id) DO NOTHING
        """,
        [company_id, account_id, assigned, [message_id for message_id, _, _ in to_thread]],
    )
    key_items = list(plan.keys.items())
    cursor.execute(
        """
        INSERT INTO inbox_mailthreadkey (company_id, account_id, key, thread_id, last_seen_at)
        SELECT %s, %s, r.key, r.thread_id, r.seen
        FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[]) AS r(key, thread_id, seen)
        ON CONFLICT (company_id, account_id, key) DO UPDATE
            SET thread_id = EXCLUDED.thread_id,
                last_seen_at = GREATEST(inbox_mailthreadkey.last_seen_at, EXCLUDED.last_seen_at)
        """,
        [
            company_id,
            account_id,
            [key[:998] for key, _ in key_items],
            [resolve(ref) for _, (ref, _) in key_items],
            [seen for _, (_, seen) in key_items],
        ],
    )
    return touched


def messages_place(
    *, company_id: int, account_id: int, placed: Sequence[tuple[int, ParsedMessage]]
) -> set[int]:
    """File messages the account sent (the outbox's: stored already, in no folder yet) into
    its conversations, as the sync of its Sent folder would: threaded by their References and
    In-Reply-To through the account's thread keys, then the threads refreshed and linked.
    `placed` pairs a stored message's id with the parse of its bytes. A message already in a
    thread of the account stays where it is (its Sent copy may have been synced first), so a
    retry changes nothing. Returns the threads holding the messages.

    Precondition: inside a transaction bound to `company_id`."""
    if not placed:
        return set()
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tm.message_id, tm.thread_id FROM inbox_mailthreadmessage tm "
            "WHERE tm.company_id = %s AND tm.account_id = %s AND tm.message_id = ANY(%s)",
            [company_id, account_id, [message_id for message_id, _ in placed]],
        )
        threaded: dict[int, int] = dict(cursor.fetchall())
        touched = set(threaded.values())
        to_thread: list[tuple[int, ParsedMessage, FetchedMessage]] = []
        for message_id, parsed in placed:
            if message_id in threaded:
                continue
            threaded[message_id] = 0  # once per message
            unlocated = FetchedMessage(
                provider_id="", uid=0, raw=b"", flags=frozenset(), received_at=parsed.date
            )
            to_thread.append((message_id, parsed, unlocated))
        if to_thread:
            touched |= _thread(cursor, company_id, account_id, to_thread, now)
    threads_refresh(company_id=company_id, thread_ids=touched)
    linking.threads_relink(company_id=company_id, thread_ids=touched)
    return touched


def threads_refresh(*, company_id: int, thread_ids: Iterable[int]) -> None:
    """Recompute the listed threads' summary columns from their messages and locations, and
    delete threads left without messages. Set-based: merges, deletions and flag changes all
    end here.

    With two-way sync (A5) the bin syncs, and a conversation follows it: one whose mail all
    went into the bin is deleted, one whose mail left the bin (for a folder that is not the
    bin) is not, unless the user's opposite wish is still waiting for the executor
    (`inbox_mailaction` pending)."""
    ids = sorted(set(thread_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        # Each listed thread's figures from its own rows (LATERAL: index probes per thread,
        # however little the planner knows about a company whose first sync is running).
        cursor.execute(
            """
            UPDATE inbox_mailthread t SET
                message_count = a.message_count,
                first_message_at = a.first_at,
                last_message_at = a.last_at,
                has_attachments = a.has_attachments,
                is_unread = a.is_unread,
                folder_ids = a.folder_ids,
                folder_roles = a.folder_roles,
                subject = a.subject,
                snippet = a.snippet,
                root_message_id = a.root_message_id,
                deleted = CASE
                    WHEN NOT ac.two_way_sync THEN t.deleted
                    WHEN a.folder_roles <> '{}' AND a.folder_roles <@ '{trash}'::varchar[]
                         AND NOT (t.folder_roles <> '{}'
                                  AND t.folder_roles <@ '{trash}'::varchar[])
                         AND NOT EXISTS (
                             SELECT 1 FROM inbox_mailaction pa
                             WHERE pa.company_id = t.company_id AND pa.thread_id = t.id
                               AND pa.state = 'pending' AND pa.kind IN ('restore', 'unarchive'))
                        THEN true
                    WHEN t.folder_roles <> '{}' AND t.folder_roles <@ '{trash}'::varchar[]
                         AND a.folder_roles <> '{}'
                         AND NOT (a.folder_roles <@ '{trash}'::varchar[])
                         AND NOT EXISTS (
                             SELECT 1 FROM inbox_mailaction pa
                             WHERE pa.company_id = t.company_id AND pa.thread_id = t.id
                               AND pa.state = 'pending' AND pa.kind = 'delete')
                        THEN false
                    ELSE t.deleted END,
                updated_at = now()
            FROM unnest(%s::bigint[]) AS listed(thread_id)
            CROSS JOIN LATERAL (
                SELECT count(DISTINCT tm.message_id) AS message_count,
                       min(m.received_at) AS first_at,
                       max(m.received_at) AS last_at,
                       bool_or(m.has_attachments) AS has_attachments,
                       coalesce(bool_or(loc.unread), false) AS is_unread,
                       coalesce(array_agg(DISTINCT folder_id) FILTER
                                (WHERE folder_id IS NOT NULL), '{}') AS folder_ids,
                       coalesce(array_agg(DISTINCT role) FILTER
                                (WHERE role IS NOT NULL), '{}') AS folder_roles,
                       -- The conversation's order is its messages' Date headers.
                       (array_agg(m.subject ORDER BY coalesce(m.sent_at, m.received_at), m.id)
                       )[1] AS subject,
                       (array_agg(m.snippet ORDER BY coalesce(m.sent_at, m.received_at) DESC,
                                  m.id DESC))[1] AS snippet,
                       (array_agg(m.id ORDER BY coalesce(m.sent_at, m.received_at), m.id)
                       )[1] AS root_message_id
                FROM inbox_mailthreadmessage tm
                JOIN inbox_mailmessage m ON m.id = tm.message_id AND m.company_id = %s
                CROSS JOIN LATERAL (
                    SELECT bool_or(NOT ('\\Seen' = ANY(l.flags))) AS unread,
                           array_agg(l.folder_id) AS folders,
                           array_agg(f.role) AS roles
                    FROM inbox_mailmessagelocation l
                    JOIN inbox_mailfolder f ON f.id = l.folder_id AND f.company_id = %s
                    WHERE l.company_id = %s AND l.account_id = tm.account_id
                      AND l.message_id = tm.message_id
                ) loc
                LEFT JOIN LATERAL unnest(loc.folders, loc.roles) AS lf(folder_id, role) ON true
                WHERE tm.company_id = %s AND tm.thread_id = listed.thread_id
                HAVING count(*) > 0
            ) a
            CROSS JOIN inbox_mailaccount ac
            WHERE t.company_id = %s AND t.id = listed.thread_id
              AND ac.company_id = %s AND ac.id = t.account_id
            """,
            [ids, company_id, company_id, company_id, company_id, company_id, company_id],
        )
        cursor.execute(
            """
            SELECT t.id FROM inbox_mailthread t
            WHERE t.company_id = %s AND t.id = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM inbox_mailthreadmessage tm
                              WHERE tm.company_id = t.company_id AND tm.thread_id = t.id)
            """,
            [company_id, ids],
        )
        empty = [row[0] for row in cursor.fetchall()]
        if empty:
            for table in ("inbox_mailthreadkey", "inbox_mailthreadperson", "inbox_mailthreadlabel"):
                cursor.execute(
                    f"DELETE FROM {table} "  # noqa: S608 - our own table names
                    "WHERE company_id = %s AND thread_id = ANY(%s)",
                    [company_id, empty],
                )
            # The provider actions asked for it stay, as the record of what was done.
            cursor.execute(
                "UPDATE inbox_mailaction SET thread_id = NULL "
                "WHERE company_id = %s AND thread_id = ANY(%s)",
                [company_id, empty],
            )
            cursor.execute(
                "DELETE FROM inbox_mailthread WHERE company_id = %s AND id = ANY(%s)",
                [company_id, empty],
            )
    # Incremental mail is searchable at commit; a first sync's batches are indexed after it
    # (inbox.tasks), which keeps the sync's pace.
    if len(ids) <= SEARCH_INLINE_THREADS:
        search.threads_reindex(company_id=company_id, thread_ids=ids)
    else:
        search.threads_queue(company_id=company_id, thread_ids=ids)
        transaction.on_commit(lambda: inbox_tasks.search_drain_enqueue(company_id=company_id))


def flags_update(
    *, company_id: int, folder_id: int, flags: Mapping[str, frozenset[str]]
) -> set[int]:
    """Set the flags of held locations (provider id → flags); return the threads whose
    messages changed.

    Messages the user marked read or unread here, while the executor has yet to tell the
    server (`inbox_mailaction` pending), keep the flags we hold: the server's are older."""
    if not flags:
        return set()
    items = list(flags.items())
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT coalesce(array_agg(DISTINCT m.message_id), '{}')
            FROM inbox_mailaction a
            JOIN inbox_mailfolder f ON f.company_id = a.company_id AND f.id = %s
                                   AND f.account_id = a.account_id
            CROSS JOIN LATERAL unnest(a.message_ids) AS m(message_id)
            WHERE a.company_id = %s AND a.state = 'pending' AND a.kind IN ('read', 'unread')
            """,
            [folder_id, company_id],
        )
        waiting: list[int] = cursor.fetchone()[0]
        cursor.execute(
            """
            UPDATE inbox_mailmessagelocation l
            SET flags = CASE WHEN r.flags = '' THEN '{}'::varchar[]
                             ELSE string_to_array(r.flags, ' ')::varchar[] END
            FROM unnest(%s::text[], %s::text[]) AS r(provider_id, flags)
            WHERE l.company_id = %s AND l.folder_id = %s AND l.provider_id = r.provider_id
              AND l.flags IS DISTINCT FROM (CASE WHEN r.flags = '' THEN '{}'::varchar[]
                             ELSE string_to_array(r.flags, ' ')::varchar[] END)
              AND l.message_id <> ALL(%s)
            RETURNING l.account_id, l.message_id
            """,
            [
                [pid for pid, _ in items],
                [" ".join(sorted(value)) for _, value in items],
                company_id,
                folder_id,
                waiting,
            ],
        )
        changed = cursor.fetchall()
    return _threads_of(company_id, changed)


def threads_of_messages(
    *, company_id: int, account_id: int, message_ids: Iterable[int]
) -> set[int]:
    """The account's threads holding these messages."""
    return _threads_of(company_id, [(account_id, m) for m in message_ids])


def _threads_of(company_id: int, account_messages: Sequence[tuple[int, int]]) -> set[int]:
    if not account_messages:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT tm.thread_id FROM inbox_mailthreadmessage tm
            JOIN unnest(%s::bigint[], %s::bigint[]) AS r(account_id, message_id)
              ON tm.account_id = r.account_id AND tm.message_id = r.message_id
            WHERE tm.company_id = %s
            """,
            [[a for a, _ in account_messages], [m for _, m in account_messages], company_id],
        )
        return {row[0] for row in cursor.fetchall()}


def locations_remove(
    *, company_id: int, account_id: int, folder_id: int, provider_ids: Iterable[str] | None
) -> int:
    """Remove locations deleted on the server (`provider_ids`, or every location of the folder
    when None). A message leaves the account's thread when the account holds it nowhere else,
    and is deleted (raw bytes too) when no location in the company holds it. Returns the
    number of locations removed."""
    with connection.cursor() as cursor:
        if provider_ids is None:
            cursor.execute(
                "DELETE FROM inbox_mailmessagelocation WHERE company_id = %s AND folder_id = %s "
                "RETURNING message_id",
                [company_id, folder_id],
            )
        else:
            cursor.execute(
                "DELETE FROM inbox_mailmessagelocation WHERE company_id = %s AND folder_id = %s "
                "AND provider_id = ANY(%s) RETURNING message_id",
                [company_id, folder_id, list(provider_ids)],
            )
        message_ids = sorted({row[0] for row in cursor.fetchall()})
    if not message_ids:
        return 0
    messages_release(company_id=company_id, account_id=account_id, message_ids=message_ids)
    return len(message_ids)


def messages_release(
    *, company_id: int, account_id: int, message_ids: Sequence[int], in_transit_kept: bool = True
) -> None:
    """After locations went: a message leaves the account's thread when the account holds it
    nowhere else, and is deleted (raw bytes too) when no location in the company holds it.

    Messages on their way (`in_transit_kept`): a move the user asked for is pending
    (`inbox_mailaction`), so the server may have carried it out while our record of it did
    not commit (a connection cut after the command): they keep their thread until the sync
    of the target folder finds them there again (same key: same message, same thread) or the
    executor, done, releases what it did not find."""
    with connection.cursor() as cursor:
        released, orphanable = list(message_ids), list(message_ids)
        if in_transit_kept:
            transit = _in_transit(cursor, company_id, message_ids)
            released = [m for m in message_ids if (account_id, m) not in transit]
            # Another account's copy on its way counts as held too.
            moving = {message_id for _, message_id in transit}
            orphanable = [m for m in message_ids if m not in moving]
        # Leave the account's thread where the account no longer holds the message.
        cursor.execute(
            """
            DELETE FROM inbox_mailthreadmessage tm
            WHERE tm.company_id = %s AND tm.account_id = %s AND tm.message_id = ANY(%s)
              AND NOT EXISTS (
                  SELECT 1 FROM inbox_mailmessagelocation l
                  WHERE l.company_id = tm.company_id AND l.account_id = tm.account_id
                    AND l.message_id = tm.message_id)
            RETURNING tm.thread_id
            """,
            [company_id, account_id, released],
        )
        touched = {row[0] for row in cursor.fetchall()}
        touched |= _threads_of(company_id, [(account_id, m) for m in message_ids])
        # Messages no location in the company holds any more go, with their rows and bytes.
        cursor.execute(
            """
            SELECT m.id, m.raw_path FROM inbox_mailmessage m
            WHERE m.company_id = %s AND m.id = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM inbox_mailmessagelocation l
                              WHERE l.company_id = m.company_id AND l.message_id = m.id)
            FOR UPDATE
            """,
            [company_id, orphanable],
        )
        orphans = cursor.fetchall()
        raw_paths = [path for _, path in orphans if path]
        orphan_ids = [message_id for message_id, _ in orphans]
        if orphan_ids:
            # A message we sent goes with its outbox row; a reply's link to it is dropped.
            cursor.execute(
                "UPDATE inbox_mailoutbound SET reply_to_message_id = NULL "
                "WHERE company_id = %s AND reply_to_message_id = ANY(%s)",
                [company_id, orphan_ids],
            )
            # Drafts keep going without it: the message they answer, forward or continue
            # (another client's draft, replaced by ours), and an outbox row that goes too.
            cursor.execute(
                """
                UPDATE inbox_maildraft d SET
                    reply_to_message_id = CASE WHEN d.reply_to_message_id = ANY(%(ids)s)
                        THEN NULL ELSE d.reply_to_message_id END,
                    forward_of_message_id = CASE WHEN d.forward_of_message_id = ANY(%(ids)s)
                        THEN NULL ELSE d.forward_of_message_id END,
                    source_message_id = CASE WHEN d.source_message_id = ANY(%(ids)s)
                        THEN NULL ELSE d.source_message_id END,
                    outbound_id = CASE WHEN d.outbound_id IN (
                            SELECT o.id FROM inbox_mailoutbound o
                            WHERE o.company_id = %(company)s AND o.message_id = ANY(%(ids)s))
                        THEN NULL ELSE d.outbound_id END
                WHERE d.company_id = %(company)s AND (
                    d.reply_to_message_id = ANY(%(ids)s) OR d.forward_of_message_id = ANY(%(ids)s)
                    OR d.source_message_id = ANY(%(ids)s) OR d.outbound_id IN (
                        SELECT o.id FROM inbox_mailoutbound o
                        WHERE o.company_id = %(company)s AND o.message_id = ANY(%(ids)s)))
                """,
                {"company": company_id, "ids": orphan_ids},
            )
            for table in (
                "inbox_mailparticipant",
                "inbox_mailattachment",
                "inbox_mailthreadmessage",
                "inbox_mailoutbound",
                "inbox_remoteimagesallowed",
            ):
                cursor.execute(
                    f"DELETE FROM {table} "  # noqa: S608 - our own table names
                    "WHERE company_id = %s AND message_id = ANY(%s)",
                    [company_id, orphan_ids],
                )
            cursor.execute(
                "DELETE FROM inbox_mailmessage WHERE company_id = %s AND id = ANY(%s)",
                [company_id, orphan_ids],
            )
    threads_refresh(company_id=company_id, thread_ids=touched)
    # Messages left threads: their persons (and so their deal) may have changed.
    linking.threads_relink(company_id=company_id, thread_ids=touched)

    transaction.on_commit(lambda: _raw_delete_all(raw_paths))


def _in_transit(
    cursor: CursorWrapper, company_id: int, message_ids: Sequence[int]
) -> set[tuple[int, int]]:
    """(account id, message id) of these messages that a pending move of the user's
    (archive, unarchive, delete, restore) concerns."""
    cursor.execute(
        """
        SELECT DISTINCT a.account_id, m.message_id
        FROM inbox_mailaction a CROSS JOIN LATERAL unnest(a.message_ids) AS m(message_id)
        WHERE a.company_id = %s AND a.state = 'pending'
          AND a.kind IN ('archive', 'unarchive', 'delete', 'restore')
          AND m.message_id = ANY(%s)
        """,
        [company_id, list(message_ids)],
    )
    return {(int(account), int(message)) for account, message in cursor.fetchall()}
