"""`mailsync_analyze()`: refresh the planner's statistics of the mail tables during a first sync
(the runtime role owns no table, and ANALYZE needs the owner). It reads and returns no rows.

The body columns get no statistics: nobody filters on them, and sampling them would make each
ANALYZE read megabytes of mail."""

from django.db import migrations

DOOR = """
CREATE FUNCTION mailsync_analyze() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    ANALYZE inbox_mailmessage;
    ANALYZE inbox_mailmessagelocation;
    ANALYZE inbox_mailthreadmessage;
    ANALYZE inbox_mailthreadkey;
    ANALYZE inbox_mailthread;
    ANALYZE inbox_mailparticipant;
END $$;
ALTER TABLE inbox_mailmessage ALTER COLUMN body_text SET STATISTICS 0;
ALTER TABLE inbox_mailmessage ALTER COLUMN body_html SET STATISTICS 0;
ALTER TABLE inbox_mailmessage ALTER COLUMN snippet SET STATISTICS 0;
"""
DOOR_REVERSE = """
DROP FUNCTION mailsync_analyze();
ALTER TABLE inbox_mailmessage ALTER COLUMN body_text SET STATISTICS -1;
ALTER TABLE inbox_mailmessage ALTER COLUMN body_html SET STATISTICS -1;
ALTER TABLE inbox_mailmessage ALTER COLUMN snippet SET STATISTICS -1;
"""


class Migration(migrations.Migration):
    dependencies = [("mailsync", "0002_row_level_security"), ("inbox", "0002_row_level_security")]

    operations = [migrations.RunSQL(DOOR, DOOR_REVERSE)]
