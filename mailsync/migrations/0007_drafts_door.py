"""`mailsync_due_draft_companies(at)`: the drafts sweeper's named cross-tenant door (B5). It
answers which companies have drafts whose server copy is due by `at` (to write, or to remove
once sent or discarded), ids only, the longest waiting first. The run then reads each
company's drafts bound to it."""

from django.db import migrations

DOOR = """
CREATE FUNCTION mailsync_due_draft_companies(at timestamptz)
RETURNS TABLE (company_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.company_id FROM inbox_maildraft d
    WHERE d.remote_due <= at
    GROUP BY d.company_id
    ORDER BY min(d.remote_due)
$$;
"""
DOOR_REVERSE = "DROP FUNCTION mailsync_due_draft_companies(timestamptz);"


class Migration(migrations.Migration):
    dependencies = [("mailsync", "0006_analyze_search"), ("inbox", "0007_compose")]

    operations = [migrations.RunSQL(DOOR, DOOR_REVERSE)]
