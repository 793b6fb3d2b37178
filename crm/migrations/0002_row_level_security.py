"""Row-level security for the platform's tables, and the named cross-tenant doors.

Tenant tables get the standard company policy (crm.tenancy.RowLevelSecurity). Two tables need
more: a user reads their own memberships in every company, and a company row is readable by
the session bound to it and by its members (the company switcher), writable only when bound.
The doors are SECURITY DEFINER functions owned by the owner role, each answering one question
by secret digest; the runtime role can call them and nothing else crosses companies."""

from django.db import migrations

from crm.tenancy import RowLevelSecurity, current_company_sql, current_user_sql

COMPANY = current_company_sql()
USER = current_user_sql()

COMPANY_POLICIES = f"""
ALTER TABLE crm_company ENABLE ROW LEVEL SECURITY;
CREATE POLICY company_read ON crm_company FOR SELECT USING (
    id = {COMPANY}
    OR EXISTS (
        SELECT 1 FROM crm_membership m
        WHERE m.company_id = crm_company.id AND m.user_id = {USER} AND m.is_active
    )
);
CREATE POLICY company_insert ON crm_company FOR INSERT WITH CHECK (id = {COMPANY});
CREATE POLICY company_update ON crm_company FOR UPDATE
    USING (id = {COMPANY}) WITH CHECK (id = {COMPANY});
"""
COMPANY_POLICIES_REVERSE = """
DROP POLICY company_read ON crm_company;
DROP POLICY company_insert ON crm_company;
DROP POLICY company_update ON crm_company;
ALTER TABLE crm_company DISABLE ROW LEVEL SECURITY;
"""

DOORS = """
CREATE FUNCTION crm_api_token_lookup(token_digest text)
RETURNS TABLE (token_id bigint, user_id bigint, company_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT t.id, t.user_id, t.company_id FROM crm_apitoken t
    WHERE t.digest = token_digest AND t.revoked_at IS NULL
$$;
CREATE FUNCTION crm_invitation_lookup(invitation_digest text)
RETURNS TABLE (invitation_id bigint, company_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT i.id, i.company_id FROM crm_invitation i
    WHERE i.digest = invitation_digest AND i.accepted_at IS NULL AND i.revoked_at IS NULL
$$;
CREATE FUNCTION crm_company_ids()
RETURNS TABLE (company_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.id FROM crm_company c ORDER BY c.id
$$;
"""
DOORS_REVERSE = """
DROP FUNCTION crm_api_token_lookup(text);
DROP FUNCTION crm_invitation_lookup(text);
DROP FUNCTION crm_company_ids();
"""


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]

    operations = [
        RowLevelSecurity("membership", also_using="user_id = {current_user}"),
        RowLevelSecurity("team"),
        RowLevelSecurity("teammember"),
        RowLevelSecurity("apitoken"),
        RowLevelSecurity("invitation"),
        migrations.RunSQL(COMPANY_POLICIES, COMPANY_POLICIES_REVERSE),
        migrations.RunSQL(DOORS, DOORS_REVERSE),
    ]
