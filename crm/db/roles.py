"""Which database role a connection runs as. Kept free of model imports: the database backend
reads it while Django is still loading models.

Modes: "app" (the default: the runtime role RLS applies to), "login" (the role of DATABASE_URL
itself, only while `crm.tenancy.owner_mode()` creates the roles) and "owner" (schema changes)."""

from __future__ import annotations

from typing import Literal

from django.conf import settings

Mode = Literal["app", "login", "owner"]
_mode: Mode = "app"


def mode() -> Mode:
    return _mode


def set_mode(new: Mode) -> None:
    global _mode
    _mode = new


def role_statement() -> str:
    """The statement a connection runs to take the role of the current mode."""
    if _mode == "login":
        return "RESET ROLE"
    role = settings.CRM_DB_OWNER_ROLE if _mode == "owner" else settings.CRM_DB_APP_ROLE
    return f'SET ROLE "{role}"'
