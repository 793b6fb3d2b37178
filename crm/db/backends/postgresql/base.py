"""PostgreSQL backend that runs every connection as the runtime role row-level security
applies to.

`DATABASE_URL` names a login that owns the schema (or a superuser in development). Right after
connecting, each session switches with `SET ROLE` to the runtime role, which has no BYPASSRLS
and owns no table, so every tenant policy applies to it. Schema changes (`migrate`, `flush`)
run under `crm.tenancy.owner_mode()` (state in `crm.db.roles`), which switches to the owner role
instead. See docs/decisions/0002-row-level-security.md.
"""

from __future__ import annotations

import psycopg
from django.db import OperationalError
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base

from crm.db import roles


class DatabaseWrapper(base.DatabaseWrapper):
    def init_connection_state(self) -> None:
        super().init_connection_state()
        # The maintenance connection (CREATE / DROP DATABASE for tests) keeps the login role.
        if self.alias == NO_DB_ALIAS:
            return
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(roles.role_statement())
        except psycopg.errors.InvalidParameterValue as exc:
            raise OperationalError(
                f"{exc}: run `manage.py migrate`, which creates the database roles "
                "(see the README, Configuration)."
            ) from exc
