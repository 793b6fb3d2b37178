"""The database wall (K1): row-level security and the tenant queryset."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.db.models import Model

from crm import selectors, services, tenancy
from crm.models import ApiToken, Company, Membership, Team, TeamMember
from crm.tenancy import TenancyError, TenantModel
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def _tenant_models() -> list[type[TenantModel]]:
    return [m for m in apps.get_models() if issubclass(m, TenantModel)]


def test_every_tenant_table_has_row_level_security_and_the_company_policy() -> None:
    tables = [model._meta.db_table for model in _tenant_models()]
    assert "crm_membership" in tables
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute("SELECT relrowsecurity FROM pg_class WHERE relname = %s", [table])
            assert cursor.fetchone() == (True,), f"{table} lacks row-level security"
            cursor.execute(
                "SELECT qual FROM pg_policies WHERE tablename = %s "
                "AND policyname = 'tenant_isolation'",
                [table],
            )
            row = cursor.fetchone()
            assert row is not None, f"{table} lacks the tenant_isolation policy"
            assert "crm.company_id" in row[0]


def test_every_index_and_unique_constraint_of_a_tenant_table_leads_with_company_id() -> None:
    """Citus-ready: distribution by company_id needs it first (the primary key excepted, and
    indexes that serve a named cross-tenant door, which are listed here on purpose)."""
    doors = {
        "api_token_lookup",
        "invitation_lookup",
        "membership_user",
        "mail_outbound_tracking_token",  # inbox_tracking_token: a hit names a token only
    }
    with connection.cursor() as cursor:
        for model in _tenant_models():
            table = model._meta.db_table
            cursor.execute(
                """
                SELECT i.relname, a.attname
                FROM pg_index x
                JOIN pg_class i ON i.oid = x.indexrelid
                JOIN pg_class t ON t.oid = x.indrelid
                LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
                WHERE t.relname = %s AND NOT x.indisprimary
                """,
                [table],
            )
            for index, first_column in cursor.fetchall():
                if index in doors:
                    continue
                assert first_column == "company_id", f"{table}.{index} leads with {first_column}"


def test_runtime_role_is_not_superuser_owner_or_rls_bypassing() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        role, superuser, bypass = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = %s",
            [role],
        )
        owned = cursor.fetchone()[0]
    assert role == "crm_app"
    assert (superuser, bypass, owned) == (False, False, 0)


def test_a_session_bound_to_company_a_sees_none_of_company_b_rows(cast: Cast) -> None:
    with tenancy.bound(cast.company_a.pk):
        # Past the Python wall on purpose: plain SQL and the unscoped base manager.
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT company_id FROM crm_membership")
            assert cursor.fetchall() == [(cast.company_a.pk,)]
        assert {m.company_id for m in Membership._base_manager.all()} == {cast.company_a.pk}
        assert {t.company_id for t in ApiToken._base_manager.all()} == {cast.company_a.pk}
        assert list(Company._base_manager.values_list("name", flat=True)) == ["Acme"]


def test_a_session_bound_to_no_company_sees_nothing(cast: Cast) -> None:
    with tenancy.bound(None):
        models: list[type[Model]] = [*_tenant_models(), Company]
        for model in models:
            assert not model._base_manager.exists(), f"{model.__name__} leaked unbound"


@pytest.mark.django_db(transaction=True)
def test_without_any_binding_a_plain_query_sees_nothing(cast: Cast) -> None:
    with transaction.atomic():
        assert not Membership._base_manager.exists()
        assert not Team._base_manager.exists()


def test_a_user_reads_their_own_memberships_across_companies_and_nothing_more(
    cast: Cast,
) -> None:
    with tenancy.bound(cast.company_b.pk):
        services.membership_add(company=cast.company_b, user=cast.bob, role="regular")
    with tenancy.bound(None, user_id=cast.bob.pk):
        mine = {(m.user_id, m.company_id) for m in Membership._base_manager.all()}
        companies = set(Company._base_manager.values_list("name", flat=True))
        listed = {m.company_id for m in selectors.memberships_of_user(user=cast.bob)}
    assert mine == {(cast.bob.pk, cast.company_a.pk), (cast.bob.pk, cast.company_b.pk)}
    assert listed == {cast.company_a.pk, cast.company_b.pk}
    assert companies == {"Acme", "Globex"}


def test_writing_a_row_for_another_company_is_refused_by_the_database(cast: Cast) -> None:
    from django.db.utils import ProgrammingError

    with (
        pytest.raises(ProgrammingError, match="row-level security"),
        tenancy.bound(cast.company_a.pk),
    ):
        Team.objects.create(company=cast.company_b, name="Intruders")


def test_updating_another_company_row_touches_nothing(cast: Cast) -> None:
    with tenancy.bound(cast.company_a.pk), connection.cursor() as cursor:
        cursor.execute("UPDATE crm_company SET name = 'pwned' WHERE id = %s", [cast.company_b.pk])
        assert cursor.rowcount == 0
    with tenancy.bound(cast.company_b.pk):
        assert Company.objects.get(pk=cast.company_b.pk).name == "Globex"


def test_an_unscoped_tenant_query_is_an_error_not_all_companies(cast: Cast) -> None:
    with tenancy.bound(cast.company_a.pk):
        with pytest.raises(TenancyError, match="without a company"):
            list(Team.objects.all())
        with pytest.raises(TenancyError):
            Team.objects.filter(name="Sales").count()
        with pytest.raises(TenancyError):
            Team.objects.all().update(name="x")
        assert [t.name for t in Team.objects.for_company(cast.company_a)] == ["Sales"]
        # A related manager is scoped by the object it hangs from.
        team = Team.objects.for_company(cast.company_a).get()
        assert {u.email for u in team.members.all()} == {"alice@acme.test", "bob@acme.test"}
        assert TeamMember.objects.filter(company=cast.company_a).count() == 2


def test_scoping_to_a_company_other_than_the_bound_one_is_an_error(cast: Cast) -> None:
    with tenancy.bound(cast.company_a.pk), pytest.raises(TenancyError, match="bound"):
        Team.objects.for_company(cast.company_b)


@pytest.mark.django_db(transaction=True)
def test_bind_outside_a_transaction_is_refused() -> None:
    with pytest.raises(TenancyError, match="transaction"):
        tenancy.bind(company_id=1)


def test_cross_tenant_doors_answer_only_their_one_question(cast: Cast) -> None:
    with transaction.atomic():
        found = tenancy.api_token_lookup(services.token_digest(cast.carol_token))
        assert found is not None
        assert found[2] == cast.company_b.pk
        assert tenancy.api_token_lookup(services.token_digest("not-a-token")) is None
        assert set(tenancy.company_ids()) >= {cast.company_a.pk, cast.company_b.pk}
