"""`mailsync_due_outbox_companies(at)`: the outbox sweeper's named cross-tenant door (B4; decision
0012). It answers which companies have outbox work by `at`, ids only: messages queued and due
(the undo window over, the time chosen reached, a retry's wait done), messages in flight (to
check whether their worker still lives), uncertain ones due a look in the Sent folder, and
sent ones not yet filed. The run then reads and claims each company's rows bound to it."""

from django.db import migrations

DOOR = """
CREATE FUNCTION mailsync_due_outbox_companies(at timestamptz)
RETURNS TABLE (company_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.company_id FROM inbox_mailoutbound o
    WHERE (o.state IN ('queued', 'uncertain') AND o.not_before <= at)
       OR o.state = 'sending'
       OR (o.state = 'sent' AND o.finished_at IS NULL AND o.not_before <= at)
    GROUP BY o.company_id
    ORDER BY min(o.not_before)
$$;
"""
DOOR_REVERSE = "DROP FUNCTION mailsync_due_outbox_companies(timestamptz);"


class Migration(migrations.Migration):
    dependencies = [("mailsync", "0004_actions_door"), ("inbox", "0006_outbox")]

    operations = [migrations.RunSQL(DOOR, DOOR_REVERSE)]
