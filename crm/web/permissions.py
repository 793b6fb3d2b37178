"""Who may open a page: `member_required` (signed in, acting in a company) and
`admin_required` (that, and an admin there).

The tenancy middleware has already chosen the company and bound the transaction to it; these
decorators only read `request.membership`. A view behind them receives a `MemberRequest`, so it
can use `request.company` and `request.membership` without checking for None again."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec, TypeAlias, cast

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crm.models import Company, Membership, User

P = ParamSpec("P")


class MemberRequest(HttpRequest):
    """A request that passed `member_required`. Only a type: the object is Django's request."""

    user: User
    company: Company
    membership: Membership


MemberView: TypeAlias = Callable[Concatenate[MemberRequest, P], HttpResponse]
PlainView: TypeAlias = Callable[Concatenate[HttpRequest, P], HttpResponse]


def member_required(view: MemberView[P]) -> PlainView[P]:
    """Sign-in first; then a clear page (not a crash) for a user with no active company."""

    @wraps(view)
    def checked(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if getattr(request, "membership", None) is None:
            return render(request, "web/no_company.html", status=403)
        return view(cast(MemberRequest, request), *args, **kwargs)

    return checked


def admin_required(view: MemberView[P]) -> PlainView[P]:
    """Company settings: admins only; a regular user gets 403."""

    @wraps(view)
    def checked(request: MemberRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.membership.is_admin:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return member_required(checked)
