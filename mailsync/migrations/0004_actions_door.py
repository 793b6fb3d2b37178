"""`mailsync_due_action_companies(at)`: the outbox sweeper's named cross-tenant door (A5). It
answers which companies hold provider actions (`inbox_mailaction`) that are pending and due by
`at`, ids only; the executor then reads and claims each company's actions bound to it."""

from django.db import migrations

DOOR = """
CREATE FUNCTION mailsync_due_action_companies(at timestamptz)
RETURNS TABLE (company_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.company_id FROM inbox_mailaction a
    WHERE a.state = 'pending' AND a.run_after <= at
    GROUP BY a.company_id
    ORDER BY min(a.run_after)
$$;
"""
DOOR_REVERSE = "DROP FUNCTION mailsync_due_action_companies(timestamptz);"


class Migration(migrations.Migration):
    dependencies = [("mailsync", "0003_analyze_door"), ("inbox", "0004_sales_inbox")]

    operations = [migrations.RunSQL(DOOR, DOOR_REVERSE)]
