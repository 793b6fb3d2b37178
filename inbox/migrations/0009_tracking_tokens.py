from django.db import migrations

# The flush worker's door (decision 0014): the tracked messages of a batch of hits' tokens in
# one call, as `inbox_tracking_token` answers for one (a hit names a token only, so the lookup
# crosses tenants; it answers ids and what tracking needs, never content).
DOOR = """
CREATE FUNCTION inbox_tracking_tokens(p_tokens text[])
RETURNS TABLE (token varchar, company_id bigint, outbound_id bigint, message_id bigint,
               account_id bigint, track_opens boolean, track_links boolean,
               created_by_id bigint, sent_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT DISTINCT ON (o.token) o.token, o.company_id, o.id, o.message_id, o.account_id,
           o.track_opens, o.track_links, o.created_by_id, o.sent_at
    FROM inbox_mailoutbound o
    WHERE o.token = ANY(p_tokens) AND (o.track_opens OR o.track_links)
    ORDER BY o.token, o.id
$$;
"""
DOOR_REVERSE = "DROP FUNCTION inbox_tracking_tokens(text[]);"


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0008_tracking"),
    ]

    operations = [migrations.RunSQL(DOOR, DOOR_REVERSE)]
