"""Reads of the platform: memberships, users of a company, teams, tokens, invitations.
Every function takes the company explicitly (keyword-only) or reads the user's own rows."""

from __future__ import annotations

from django.db.models import QuerySet

from crm.models import (
    ApiToken,
    Company,
    Invitation,
    ItemChange,
    Label,
    Membership,
    Team,
    User,
    VisibilityDefault,
)


def memberships_of_user(*, user: User) -> QuerySet[Membership]:
    """The user's active memberships in every company: the membership policy's
    `tenant_read_across` lets the bound user read their own rows, and only those."""
    return (
        Membership.objects.across_companies()
        .filter(user_id=user.pk, is_active=True)
        .select_related("company")
        .order_by("company__name", "company_id")
    )


def membership_for_session(*, user: User, company_id: int | None) -> Membership | None:
    """The membership a session acts through: the chosen company if the user is active there,
    else their first active membership."""
    memberships = list(memberships_of_user(user=user))
    for membership in memberships:
        if membership.company_id == company_id:
            return membership
    return memberships[0] if memberships else None


def membership_get(*, company: Company, user_id: int) -> Membership | None:
    return (
        Membership.objects.for_company(company)
        .select_related("user")
        .filter(user_id=user_id)
        .first()
    )


def membership_list(*, company: Company) -> QuerySet[Membership]:
    return (
        Membership.objects.for_company(company)
        .select_related("user")
        .order_by("-is_active", "user__name", "user__email")
    )


def company_users(*, company: Company) -> QuerySet[User]:
    """Users with a membership in the company, active or not."""
    return User.objects.filter(memberships__company_id=company.pk).order_by("name", "email")


def team_list(*, company: Company) -> QuerySet[Team]:
    return Team.objects.for_company(company).prefetch_related("members").order_by("name")


def team_get(*, company: Company, team_id: int) -> Team | None:
    return Team.objects.for_company(company).filter(pk=team_id).first()


def teams_of_user(*, company: Company, user: User) -> QuerySet[Team]:
    return Team.objects.for_company(company).filter(teammember__user_id=user.pk).order_by("name")


def api_token_live(*, company: Company, user: User) -> ApiToken | None:
    return (
        ApiToken.objects.for_company(company)
        .filter(user_id=user.pk, revoked_at__isnull=True)
        .first()
    )


def invitation_list_pending(*, company: Company) -> QuerySet[Invitation]:
    return (
        Invitation.objects.for_company(company)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True)
        .order_by("-created_at")
    )


def membership_get_by_id(*, company: Company, membership_id: int) -> Membership | None:
    return (
        Membership.objects.for_company(company)
        .select_related("user")
        .filter(pk=membership_id)
        .first()
    )


def invitation_get_pending(*, company: Company | int, invitation_id: int) -> Invitation | None:
    """A pending invitation of the company (`company` may be its id, for tasks)."""
    return (
        Invitation.objects.for_company(company)
        .select_related("company", "invited_by")
        .filter(pk=invitation_id, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )


def user_with_email_exists(*, email: str) -> bool:
    return User.objects.filter(email=email.strip().lower()).exists()


def company_get(*, company_id: int) -> Company | None:
    """The company the transaction is bound to (RLS hides the others)."""
    return Company.objects.filter(pk=company_id).first()


def label_list(*, company: Company, kind: str) -> QuerySet[Label]:
    return Label.objects.for_company(company).filter(kind=kind).order_by("name", "id")


def item_changes(*, company: Company, kind: str, item_key: object) -> QuerySet[ItemChange]:
    """An item's change log, newest first, with who made each change."""
    return (
        ItemChange.objects.for_company(company)
        .filter(item_kind=kind, item_key=str(item_key))
        .select_related("actor")
        .order_by("-created_at", "-id")
    )


def visibility_defaults(*, company: Company) -> dict[str, int]:
    """The company's default `visible_to` per item kind (entire company where none is set)."""
    stored = dict(VisibilityDefault.objects.for_company(company).values_list("kind", "visible_to"))
    return {
        kind: int(stored.get(kind, 7))
        for kind in ("person", "organization", "deal", "lead", "project")
    }
