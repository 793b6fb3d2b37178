"""`mailsync_analyze()` also refreshes the statistics of the search table (inbox 0005), which a
first sync fills through the search queue: the door's plans need to know its size."""

from django.db import migrations

DOOR = """
CREATE OR REPLACE FUNCTION mailsync_analyze() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    ANALYZE inbox_mailmessage;
    ANALYZE inbox_mailmessagelocation;
    ANALYZE inbox_mailthreadmessage;
    ANALYZE inbox_mailthreadkey;
    ANALYZE inbox_mailthread;
    ANALYZE inbox_mailparticipant;
    ANALYZE inbox_mailthreadsearch;
END $$;
"""
DOOR_REVERSE = """
CREATE OR REPLACE FUNCTION mailsync_analyze() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    ANALYZE inbox_mailmessage;
    ANALYZE inbox_mailmessagelocation;
    ANALYZE inbox_mailthreadmessage;
    ANALYZE inbox_mailthreadkey;
    ANALYZE inbox_mailthread;
    ANALYZE inbox_mailparticipant;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("mailsync", "0005_outbox_door"), ("inbox", "0005_search")]

    operations = [migrations.RunSQL(DOOR, DOOR_REVERSE)]
