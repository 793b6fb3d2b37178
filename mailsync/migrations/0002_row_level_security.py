"""Row-level security on sync state, and the named cross-tenant doors of mail sync:

- `mailsync_due_accounts(at)`: beat's scan for accounts due a sync pass (ids only);
- `mailsync_push_accounts()`: the IMAP IDLE listener's list of accounts to watch (ids only;
  it then reads each account bound to its company).
"""

from django.db import migrations

from crm.tenancy import RowLevelSecurity

DOORS = """
CREATE FUNCTION mailsync_due_accounts(at timestamptz)
RETURNS TABLE (company_id bigint, account_id bigint, initial boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT s.company_id, s.account_id, NOT s.initial_done
    FROM mailsync_syncstate s
    JOIN inbox_mailaccount a ON a.company_id = s.company_id AND a.id = s.account_id
    WHERE a.removed_at IS NULL AND s.health <> 'needs_reconnect'
      AND s.next_sync_at IS NOT NULL AND s.next_sync_at <= at
    ORDER BY s.next_sync_at
$$;
CREATE FUNCTION mailsync_push_accounts()
RETURNS TABLE (company_id bigint, account_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.company_id, a.id FROM inbox_mailaccount a
    JOIN mailsync_syncstate s ON s.company_id = a.company_id AND s.account_id = a.id
    WHERE a.removed_at IS NULL AND a.provider = 'imap' AND s.health <> 'needs_reconnect'
    ORDER BY a.id
$$;
"""
DOORS_REVERSE = """
DROP FUNCTION mailsync_due_accounts(timestamptz);
DROP FUNCTION mailsync_push_accounts();
"""


class Migration(migrations.Migration):
    dependencies = [("mailsync", "0001_initial")]

    operations = [
        RowLevelSecurity("syncstate"),
        RowLevelSecurity("foldercursor"),
        migrations.RunSQL(DOORS, DOORS_REVERSE),
    ]
