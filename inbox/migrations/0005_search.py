"""Full-text search of conversations (B3; docs/decisions/0010-mail-search.md).

- The extensions `unaccent` (accents folded, so "gonderdik" finds "gönderdik") and `btree_gin`
  (account ids in the same GIN index as the words).
- Text search configurations `mail_english`, `mail_dutch`, `mail_turkish` (unaccent, then the
  language's stemmer) and `mail_simple` (unaccent, no stemming: Estonian, Polish, anything
  else, and names and addresses).
- `inbox_mailthreadsearch`: one row per conversation, its words as a tsvector
  (`inbox.search.threads_reindex` keeps it after the ingest's `threads_refresh`), with the
  conversation's account and latest message time copied for ordering. Not a Django model:
  nothing but `inbox.search` reads or writes it. Threads deleted (or truncated by a test
  flush) take their row with them through triggers; no foreign key, so `flush` can truncate
  the mail tables without knowing this one.
- `inbox_thread_search(...)`: the door. Under row-level security PostgreSQL does not use an
  index for an operator that is not leakproof, and `@@` is not: as the runtime role every
  search would read every row of the company. The door runs as the owner, for the company the
  session is bound to (never a parameter), and answers one question: which conversations of
  these accounts match this query, newest first, after a position and not older than a time,
  at most so many (ids and times only). Everything else about a page (folders, labels, flags, blocked) is then read
  under row-level security.
- Existing conversations are indexed (as the owner, company by company)."""

from typing import Any

from django.db import migrations

from crm.tenancy import current_company_sql, policy_sql

COMPANY = current_company_sql()
EXTENSIONS = ("unaccent", "btree_gin")

CONFIGURATIONS = """
CREATE TEXT SEARCH CONFIGURATION mail_simple (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION mail_simple
    ALTER MAPPING FOR word, hword, hword_part, numword, numhword WITH unaccent, simple;
CREATE TEXT SEARCH CONFIGURATION mail_english (COPY = english);
ALTER TEXT SEARCH CONFIGURATION mail_english
    ALTER MAPPING FOR word, hword, hword_part WITH unaccent, english_stem;
CREATE TEXT SEARCH CONFIGURATION mail_dutch (COPY = dutch);
ALTER TEXT SEARCH CONFIGURATION mail_dutch
    ALTER MAPPING FOR word, hword, hword_part WITH unaccent, dutch_stem;
CREATE TEXT SEARCH CONFIGURATION mail_turkish (COPY = turkish);
ALTER TEXT SEARCH CONFIGURATION mail_turkish
    ALTER MAPPING FOR word, hword, hword_part WITH unaccent, turkish_stem;
"""
CONFIGURATIONS_REVERSE = """
DROP TEXT SEARCH CONFIGURATION mail_simple;
DROP TEXT SEARCH CONFIGURATION mail_english;
DROP TEXT SEARCH CONFIGURATION mail_dutch;
DROP TEXT SEARCH CONFIGURATION mail_turkish;
"""

# `message_ids`: the messages already considered (indexed, or left out over the size budget),
# so the next ingest of the thread only adds its new messages. `indexed_bytes`: the size of
# the vectors added so far (a tsvector holds at most 1 MB). `last_message_at` is never null
# here ('-infinity' sorts last, as NULLS LAST does on the thread). toast_tuple_target keeps
# the rows narrow: the vector goes out of line, so a search reads small rows for ordering.
TABLE = """
CREATE TABLE inbox_mailthreadsearch (
    company_id bigint NOT NULL,
    thread_id bigint NOT NULL,
    account_id bigint NOT NULL,
    last_message_at timestamptz NOT NULL,
    message_ids bigint[] NOT NULL,
    indexed_bytes integer NOT NULL,
    vector tsvector NOT NULL,
    CONSTRAINT inbox_mailthreadsearch_pkey PRIMARY KEY (company_id, thread_id)
) WITH (toast_tuple_target = 128);
ALTER TABLE inbox_mailthreadsearch ALTER COLUMN message_ids SET STORAGE MAIN;
DO $$ BEGIN  -- lz4 where the server has it, as for the bodies (0002): cheaper on every reindex
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression'
               AND 'lz4' = ANY(enumvals)) THEN
        ALTER TABLE inbox_mailthreadsearch ALTER COLUMN vector SET COMPRESSION lz4;
    END IF;
END $$;
CREATE INDEX mail_thread_search_recent ON inbox_mailthreadsearch
    (company_id, account_id, last_message_at DESC, thread_id DESC);
CREATE INDEX mail_thread_search_words ON inbox_mailthreadsearch USING gin (account_id, vector);
CREATE AGGREGATE inbox_tsvector_agg(tsvector) (SFUNC = tsvector_concat, STYPE = tsvector);

-- Threads waiting to be indexed (`inbox.search.threads_queue` / `queue_drain`), when the
-- ingest leaves indexing to a task instead of doing it in its own transaction.
CREATE TABLE inbox_mailsearchqueue (
    company_id bigint NOT NULL,
    thread_id bigint NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inbox_mailsearchqueue_pkey PRIMARY KEY (company_id, thread_id)
);
CREATE INDEX mail_search_queue_queued ON inbox_mailsearchqueue (company_id, queued_at);

CREATE FUNCTION inbox_thread_search_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM inbox_mailthreadsearch s USING old_rows o
    WHERE s.company_id = o.company_id AND s.thread_id = o.id;
    RETURN NULL;
END $$;
CREATE TRIGGER inbox_thread_search_forget AFTER DELETE ON inbox_mailthread
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inbox_thread_search_forget();
CREATE FUNCTION inbox_thread_search_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE inbox_mailthreadsearch, inbox_mailsearchqueue;
    RETURN NULL;
END $$;
CREATE TRIGGER inbox_thread_search_truncate AFTER TRUNCATE ON inbox_mailthread
    FOR EACH STATEMENT EXECUTE FUNCTION inbox_thread_search_truncate();
"""
TABLE_REVERSE = """
DROP TRIGGER inbox_thread_search_forget ON inbox_mailthread;
DROP TRIGGER inbox_thread_search_truncate ON inbox_mailthread;
DROP FUNCTION inbox_thread_search_forget();
DROP FUNCTION inbox_thread_search_truncate();
DROP AGGREGATE inbox_tsvector_agg(tsvector);
DROP TABLE inbox_mailsearchqueue;
DROP TABLE inbox_mailthreadsearch;
"""

# EXECUTE: planned with the query's own words, so PostgreSQL can choose between the GIN index
# (rare words) and walking the account's conversations newest first (common words).
DOOR = f"""
CREATE FUNCTION inbox_thread_search(
    accounts bigint[], query tsquery, after_at timestamptz, after_id bigint,
    since timestamptz, max_rows integer
) RETURNS TABLE (thread_id bigint, last_message_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $door$
BEGIN
    RETURN QUERY EXECUTE $query$
        SELECT found.thread_id, NULLIF(found.last_message_at, '-infinity'::timestamptz)
        FROM unnest($1) AS account(id)
        CROSS JOIN LATERAL (
            SELECT s.thread_id, s.last_message_at FROM inbox_mailthreadsearch s
            WHERE s.company_id = {COMPANY} AND s.account_id = account.id
              AND s.vector @@ $2 AND (s.last_message_at, s.thread_id) < ($3, $4)
              AND s.last_message_at >= $5
            ORDER BY s.last_message_at DESC, s.thread_id DESC
            LIMIT $6
        ) AS found
        ORDER BY found.last_message_at DESC, found.thread_id DESC
        LIMIT $6
    $query$ USING accounts, query, after_at, after_id, since, max_rows;
END $door$;
"""  # noqa: S608 - SQL from our own constants
DOOR_REVERSE = (
    "DROP FUNCTION inbox_thread_search(bigint[], tsquery, timestamptz, bigint, timestamptz, "
    "integer);"
)


def extensions_create(apps: Any, schema_editor: Any) -> None:
    """Create the extensions. Both are trusted: the owner role may create them when it has
    CREATE on the database; otherwise the login of DATABASE_URL (a superuser or the database's
    owner, which `owner_mode` switched away from with SET ROLE) creates them."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT extname FROM pg_extension WHERE extname = ANY(%s)", [list(EXTENSIONS)]
        )
        present = {row[0] for row in cursor.fetchall()}
        missing = [name for name in EXTENSIONS if name not in present]
        if not missing:
            return
        cursor.execute("SELECT current_user, has_database_privilege(current_database(), 'CREATE')")
        role, may_create = cursor.fetchone()
        if not may_create:
            cursor.execute("RESET ROLE")
        for name in missing:
            cursor.execute(f'CREATE EXTENSION IF NOT EXISTS "{name}" SCHEMA public')
        if not may_create:
            cursor.execute(f'SET ROLE "{role}"')


def threads_index(apps: Any, schema_editor: Any) -> None:
    """Index the conversations stored before this migration (as the owner: no binding)."""
    from inbox import search

    search.threads_reindex_all()


class Migration(migrations.Migration):
    dependencies = [("inbox", "0004_sales_inbox")]

    operations = [
        migrations.RunPython(extensions_create, migrations.RunPython.noop),
        migrations.RunSQL(CONFIGURATIONS, CONFIGURATIONS_REVERSE),
        migrations.RunSQL(TABLE, TABLE_REVERSE),
        migrations.RunSQL(policy_sql("inbox_mailthreadsearch"), migrations.RunSQL.noop),
        migrations.RunSQL(policy_sql("inbox_mailsearchqueue"), migrations.RunSQL.noop),
        migrations.RunSQL(DOOR, DOOR_REVERSE),
        migrations.RunPython(threads_index, migrations.RunPython.noop),
    ]
