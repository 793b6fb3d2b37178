"""The bootstrap commands operators and scripts use: one JSON line each, exact shape."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from crm import services, tenancy
from crm.models import Membership, Role
from tests.conftest import PASSWORD, Cast

pytestmark = pytest.mark.django_db


def _run(*args: str) -> dict[str, object]:
    out = StringIO()
    call_command(*args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    result: dict[str, object] = json.loads(lines[0])
    return result


def test_create_company_prints_ids_and_a_working_token() -> None:
    result = _run(
        "create_company", "Initech", "--admin-email", "Peter@Initech.test", "--password", PASSWORD
    )
    assert set(result) == {"company_id", "user_id", "api_token"}
    with tenancy.bound(None):
        identity = services.api_token_authenticate(str(result["api_token"]))
        assert identity is not None
        assert identity.membership.company_id == result["company_id"]
        assert identity.user.pk == result["user_id"]
        assert identity.user.email == "peter@initech.test"
        assert identity.membership.role == Role.ADMIN


def test_create_company_refuses_a_weak_password_with_a_clear_message() -> None:
    with pytest.raises(CommandError, match=r"too common|too short"):
        call_command("create_company", "Initech", "--admin-email", "p@i.test", "--password", "123")


def test_create_user_adds_a_user_of_another_company_to_this_one(cast: Cast) -> None:
    result = _run(
        "create_user",
        "--company",
        str(cast.company_a.pk),
        "--email",
        "carol@globex.test",
        "--password",
        "ignored-for-existing-users",
        "--role",
        "admin",
    )
    assert set(result) == {"user_id", "api_token"}
    assert result["user_id"] == cast.carol.pk
    with tenancy.bound(cast.company_a.pk):
        membership = Membership.objects.for_company(cast.company_a).get(user=cast.carol)
        assert membership.role == Role.ADMIN
        identity = services.api_token_authenticate(str(result["api_token"]))
    assert identity is not None
    assert identity.membership.company_id == cast.company_a.pk
    # Carol's own token still acts in her own company.
    with tenancy.bound(None):
        own = services.api_token_authenticate(cast.carol_token)
    assert own is not None
    assert own.membership.company_id == cast.company_b.pk


def test_create_user_for_an_unknown_company_is_an_error(cast: Cast) -> None:
    with pytest.raises(CommandError, match="No company with id 999999"):
        call_command(
            "create_user", "--company", "999999", "--email", "x@y.test", "--password", PASSWORD
        )
