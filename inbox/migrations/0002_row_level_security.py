"""Row-level security on this app's tenant tables (crm.tenancy.RowLevelSecurity); lz4
compression of the large text columns (faster than the default pglz at the first sync's rates,
where the server supports it)."""

from django.db import migrations

from crm.tenancy import RowLevelSecurity

LZ4 = """
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression'
               AND 'lz4' = ANY(enumvals)) THEN
        ALTER TABLE inbox_mailmessage ALTER COLUMN body_text SET COMPRESSION lz4;
        ALTER TABLE inbox_mailmessage ALTER COLUMN body_html SET COMPRESSION lz4;
    END IF;
END $$;
"""
LZ4_REVERSE = """
ALTER TABLE inbox_mailmessage ALTER COLUMN body_text SET COMPRESSION DEFAULT;
ALTER TABLE inbox_mailmessage ALTER COLUMN body_html SET COMPRESSION DEFAULT;
"""


class Migration(migrations.Migration):
    dependencies = [("inbox", "0001_initial")]

    operations = [
        RowLevelSecurity("mailaccount"),
        RowLevelSecurity("mailaccountmember"),
        RowLevelSecurity("mailfolder"),
        RowLevelSecurity("mailmessage"),
        RowLevelSecurity("mailparticipant"),
        RowLevelSecurity("mailattachment"),
        RowLevelSecurity("mailthread"),
        RowLevelSecurity("mailthreadmessage"),
        RowLevelSecurity("mailthreadkey"),
        RowLevelSecurity("mailmessagelocation"),
        migrations.RunSQL(LZ4, LZ4_REVERSE),
    ]
