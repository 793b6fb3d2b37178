"""Tenancy (K1): the one module that decides how a row belongs to a company and how a database
session is bound to one.

Two walls keep companies apart:

1. In Python, tenant-owned models (`TenantModel`) carry `company` and their default queryset
   refuses to run until it is scoped: `Model.objects.for_company(company)`, a filter on
   `company` / `company_id`, or a related manager of an already-scoped object. A query that
   forgot the company is an error, never "all companies".
2. In PostgreSQL, every tenant table has a row-level security policy comparing `company_id` with
   the session setting `crm.company_id`. The app runs as a role without BYPASSRLS that owns no
   table (see `crm.db.backends.postgresql`), and `bind()` sets the setting with
   `set_config(..., is_local => true)`, so the binding ends with the transaction and a pooled
   connection never carries it into the next request. Unbound, the setting is '' and the policy
   matches nothing.

A handful of paths are legitimately cross-tenant (API-token and invitation lookups by secret,
beat's scans for due mail accounts, actions and outbound mail); each is one SQL function defined
with SECURITY DEFINER in a migration and called through one named Python function. Jobs that
visit every company list companies and bind each in turn. A few doors work *within* the bound
company (they read `crm.company_id` themselves, never a parameter) only because row-level
security keeps PostgreSQL from using an index for an operator that is not leakproof:
`mailsync_analyze()` (statistics need the owner) and `inbox_thread_search()` (`@@` on the
full-text index; docs/decisions/0010-mail-search.md).

See docs/decisions/0002-row-level-security.md.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Self, TypeVar

from django.conf import settings
from django.db import connections, models, transaction
from django.db.migrations.operations.base import Operation

from crm.db import roles

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.state import ProjectState

COMPANY_SETTING = "crm.company_id"
USER_SETTING = "crm.user_id"
_CURRENT_COMPANY = f"NULLIF(current_setting('{COMPANY_SETTING}', true), '')::bigint"
_CURRENT_USER = f"NULLIF(current_setting('{USER_SETTING}', true), '')::bigint"

_bound_company: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "crm_bound_company", default=None
)


class TenancyError(RuntimeError):
    """A tenant query or binding was attempted without (or against) the right company."""


# --- Binding a database session to a company ----------------------------------------------


def bind(*, company_id: int | None, user_id: int | None = None, using: str = "default") -> None:
    """Bind the current transaction to a company (and user) for row-level security.

    Precondition: the caller is inside `transaction.atomic()`; the binding lasts until that
    outermost transaction ends."""
    connection = connections[using]
    if not connection.in_atomic_block:
        raise TenancyError("bind() needs a transaction: wrap the work in transaction.atomic().")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
            [
                COMPANY_SETTING,
                "" if company_id is None else str(int(company_id)),
                USER_SETTING,
                "" if user_id is None else str(int(user_id)),
            ],
        )
    _bound_company.set(company_id)


def bound_company_id() -> int | None:
    """The company the current context was bound to, if any (Python's view of the binding)."""
    return _bound_company.get()


@contextmanager
def bound(company_id: int | None, *, user_id: int | None = None) -> Iterator[None]:
    """A transaction bound to `company_id`: for commands, scripts and tests."""
    token = _bound_company.set(_bound_company.get())
    try:
        with transaction.atomic():
            bind(company_id=company_id, user_id=user_id)
            yield
    finally:
        _bound_company.reset(token)


@contextmanager
def request_scope() -> Iterator[None]:
    """Forget the Python-side binding when a request or task ends (the SQL one ends with its
    transaction)."""
    token = _bound_company.set(None)
    try:
        yield
    finally:
        _bound_company.reset(token)


# --- Roles: the runtime role RLS applies to, and the owner role for schema changes ---------


@contextmanager
def owner_mode(using: str = "default") -> Iterator[None]:
    """Run schema work (migrate, flush, set-up) as the owner role, creating both roles first.

    The login of DATABASE_URL must be a superuser, or a member of both roles (the README says
    how to create them by hand where the login may not)."""
    connection = connections[using]
    previous = roles.mode()
    roles.set_mode("login")
    try:
        with connection.cursor() as cursor:
            cursor.execute(roles.role_statement())
            _ensure_roles(cursor)
            roles.set_mode("owner")
            cursor.execute(roles.role_statement())
        yield
    finally:
        roles.set_mode(previous)
        if connection.connection is not None and not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute(roles.role_statement())


def _ensure_roles(cursor: Any) -> None:
    owner, app = settings.CRM_DB_OWNER_ROLE, settings.CRM_DB_APP_ROLE
    for role, attributes in ((owner, "NOLOGIN"), (app, "NOLOGIN NOBYPASSRLS")):
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            # Two test runs may race to create the cluster-wide roles: the loser carries on.
            cursor.execute(
                f"""DO $$ BEGIN CREATE ROLE "{role}" {attributes};
                EXCEPTION WHEN duplicate_object THEN NULL; END $$"""
            )
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if not cursor.fetchone()[0]:
        for role in (owner, app):
            cursor.execute(
                "SELECT current_user = %s OR pg_has_role(current_user, %s, 'MEMBER')",
                [role, role],
            )
            if not cursor.fetchone()[0]:
                cursor.execute(f'GRANT "{role}" TO current_user')
    # Per database: the owner creates in `public`, the runtime role reads and writes rows.
    cursor.execute(f'GRANT USAGE, CREATE ON SCHEMA public TO "{owner}"')
    cursor.execute(f'GRANT USAGE ON SCHEMA public TO "{app}"')


def grant_runtime_privileges(using: str = "default") -> None:
    """Give the runtime role row access to every table and sequence (run after migrations)."""
    owner, app = settings.CRM_DB_OWNER_ROLE, settings.CRM_DB_APP_ROLE
    with connections[using].cursor() as cursor:
        cursor.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{app}"'
        )
        cursor.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{app}"')
        cursor.execute(
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA public '
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{app}"'
        )
        cursor.execute(
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA public '
            f'GRANT USAGE, SELECT ON SEQUENCES TO "{app}"'
        )


# --- Tenant-owned models --------------------------------------------------------------------

_COMPANY_LOOKUPS = frozenset({"company", "company_id", "company__id", "company__pk"})
_M = TypeVar("_M", bound=models.Model)


class TenantQuerySet(models.QuerySet[_M]):
    """A queryset that refuses to reach the database until a company scopes it."""

    _tenant_scoped = False

    def for_company(self, company: Any) -> Self:
        company_id = company if isinstance(company, int) else company.pk
        if company_id is None:
            raise TenancyError(f"{self.model.__name__}: for_company() needs a saved company.")
        bound_id = bound_company_id()
        if bound_id is not None and bound_id != company_id:
            raise TenancyError(
                f"{self.model.__name__}: scoped to company {company_id} while the session "
                f"is bound to company {bound_id}."
            )
        return self.filter(company_id=company_id)

    # _filter_or_exclude, _clone and _hints are Django internals the stubs do not declare.
    def _filter_or_exclude(self, negate: bool, args: Any, kwargs: Any) -> Self:
        clone: Self = super()._filter_or_exclude(negate, args, kwargs)  # type: ignore[misc]
        if not negate and _COMPANY_LOOKUPS.intersection(kwargs):
            clone._tenant_scoped = True
        return clone

    def _clone(self) -> Self:
        clone: Self = super()._clone()  # type: ignore[misc]
        clone._tenant_scoped = self._tenant_scoped
        return clone

    def _require_scope(self) -> None:
        # A related manager ("company.teams.all()", "team.members.all()") is scoped by the
        # instance it hangs from, which was itself loaded under a scope.
        if self._tenant_scoped or "instance" in self._hints:  # type: ignore[attr-defined]
            return
        raise TenancyError(
            f"{self.model.__name__} query without a company: use "
            f"{self.model.__name__}.objects.for_company(company)."
        )

    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._require_scope()
        super()._fetch_all()

    def count(self) -> int:
        self._require_scope()
        return super().count()

    def exists(self) -> bool:
        self._require_scope()
        return super().exists()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._require_scope()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        self._require_scope()
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._require_scope()
        return super().delete()

    def iterator(self, chunk_size: int | None = None) -> Iterator[_M]:
        self._require_scope()
        return super().iterator(chunk_size=chunk_size)


class TenantManager(models.Manager[_M]):
    def get_queryset(self) -> TenantQuerySet[_M]:
        return TenantQuerySet(
            self.model,
            using=self._db,
            hints=self._hints,  # type: ignore[attr-defined]
        )

    def for_company(self, company: Any) -> TenantQuerySet[_M]:
        return self.get_queryset().for_company(company)

    def across_companies(self) -> TenantQuerySet[_M]:
        """See `TenantQuerySet.across_companies`."""
        queryset = self.get_queryset()
        queryset._tenant_scoped = True
        return queryset


class TenantModel(models.Model):
    """Base of every tenant-owned model: `company_id` on the row, RLS on the table (add
    `RowLevelSecurity` to the model's first migration; tests/crm/test_tenancy.py fails when a
    tenant table lacks it), and `company` leading every index and unique constraint."""

    company = models.ForeignKey(
        "crm.Company", on_delete=models.CASCADE, related_name="+", editable=False
    )

    objects = TenantManager()

    class Meta:
        abstract = True


# --- The migration operation that puts the policy on a tenant table ------------------------


class RowLevelSecurity(Operation):
    """Enable row-level security on a tenant table with the company policy.

    `also_using` adds an OR-ed read condition (SQL) for rows a user may see across companies,
    e.g. their own memberships for the company switcher. Writes are always company-bound."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, also_using: str = "") -> None:
        self.model_name = model_name
        self.also_using = also_using

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {"model_name": self.model_name}
        if self.also_using:
            kwargs["also_using"] = self.also_using
        return (f"{__name__}.{self.__class__.__name__}", [], kwargs)

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        table = to_state.apps.get_model(app_label, self.model_name)._meta.db_table
        for statement in policy_sql(table, also_using=self.also_using):
            schema_editor.execute(statement)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        table = from_state.apps.get_model(app_label, self.model_name)._meta.db_table
        schema_editor.execute(f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"')
        schema_editor.execute(f'DROP POLICY IF EXISTS tenant_read_across ON "{table}"')
        schema_editor.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')

    def describe(self) -> str:
        return f"Row-level security on {self.model_name}"


def policy_sql(table: str, *, also_using: str = "") -> list[str]:
    statements = [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'CREATE POLICY tenant_isolation ON "{table}" '
        f"USING (company_id = {_CURRENT_COMPANY}) WITH CHECK (company_id = {_CURRENT_COMPANY})",
    ]
    if also_using:
        condition = also_using.replace("{current_user}", _CURRENT_USER).replace(
            "{current_company}", _CURRENT_COMPANY
        )
        statements.append(
            f'CREATE POLICY tenant_read_across ON "{table}" FOR SELECT USING ({condition})'
        )
    return statements


def current_company_sql() -> str:
    return _CURRENT_COMPANY


def current_user_sql() -> str:
    return _CURRENT_USER


# --- The named cross-tenant doors ------------------------------------------------------------


def api_token_lookup(digest: str) -> tuple[int, int, int] | None:
    """(token id, user id, company id) of the live API token with this digest, in any company.

    The only way to find a token without knowing its company; SQL function
    `crm_api_token_lookup`, SECURITY DEFINER, defined in crm/migrations."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT * FROM crm_api_token_lookup(%s)", [digest])
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


def invitation_lookup(digest: str) -> tuple[int, int] | None:
    """(invitation id, company id) of the pending invitation with this digest, in any company."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT * FROM crm_invitation_lookup(%s)", [digest])
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def company_ids() -> list[int]:
    """Every company's id, for jobs that visit each company in turn (and bind each)."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT * FROM crm_company_ids()")
        return [int(row[0]) for row in cursor.fetchall()]
