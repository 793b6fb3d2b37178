"""Writes of the platform: companies, users and memberships, teams, API tokens, invitations.

Each function takes the company keyword-only and expects to run inside a transaction bound to
it (a request, a TenantTask, or `tenancy.bound`). `company_create` is the one exception: it
allocates the new company's id first, then binds to it, because the row-level policy lets a
session write only the company it is bound to."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import tenancy, timezones
from crm.models import (
    ApiToken,
    ChangeSource,
    Company,
    Invitation,
    ItemChange,
    Label,
    LabelColor,
    LabelKind,
    Membership,
    Role,
    Team,
    TeamMember,
    User,
    VisibilityDefault,
)
from crm.plans import DEFAULT_PLAN, PLANS


class ServiceError(Exception):
    """A request the service refuses, with a message for the user (and the field, if one)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- Companies and users ----------------------------------------------------------------------


def company_create(*, name: str, plan: str = DEFAULT_PLAN) -> Company:
    """Create a company and bind the current transaction to it.

    Precondition: inside `transaction.atomic()`."""
    name = name.strip()
    if not name:
        raise ServiceError(_("A company needs a name."), field="name")
    if plan not in PLANS:
        raise ServiceError(_("Unknown plan %(plan)s.") % {"plan": plan}, field="plan")
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('crm_company', 'id'))")
        company_id = int(cursor.fetchone()[0])
    tenancy.bind(company_id=company_id)
    return Company.objects.create(id=company_id, name=name, plan=plan)


def company_update(*, company: Company, name: str, plan: str) -> Company:
    name = name.strip()
    if not name:
        raise ServiceError(_("A company needs a name."), field="name")
    if plan not in PLANS:
        raise ServiceError(_("Unknown plan %(plan)s.") % {"plan": plan}, field="plan")
    company.name, company.plan = name, plan
    company.save(update_fields=["name", "plan", "updated_at"])
    return company


def user_get_or_create(*, email: str, password: str | None, name: str = "") -> User:
    """The user with this address (any company), or a new one with this password."""
    email = email.strip().lower()
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user
    if password is not None:
        try:
            validate_password(password, User(email=email, name=name))
        except ValidationError as exc:
            raise ServiceError(" ".join(exc.messages), field="password") from exc
    return User.objects.create_user(email=email, password=password, name=name)


def user_preferences_update(
    *,
    user: User,
    timezone: str,
    email_links: str,
    track_opens_default: bool | None = None,
    track_links_default: bool | None = None,
    tracking_digest: bool | None = None,
) -> User:
    """A user's own preferences, the same in every company they belong to: the time zone
    their times are shown in and "send later" reads (an IANA name this machine knows), what
    a mailto link in the app opens (B8: the CRM's composer or their mail app), and tracking:
    where a new email's switches start (E3) and the daily email of opens and clicks (E2).
    A tracking preference left None stays as it is."""
    timezone = timezone.strip()
    if not timezones.is_known(timezone):
        raise ServiceError(_("Choose a time zone from the list."), field="timezone")
    allowed = {value for value, _label in User._meta.get_field("email_links").flatchoices}
    if email_links not in allowed:
        raise ServiceError(
            _("Choose what email links open: the composer or your mail app."),
            field="email_links",
        )
    user.timezone, user.email_links = timezone, email_links
    fields = ["timezone", "email_links", "updated_at"]
    for name, value in (
        ("track_opens_default", track_opens_default),
        ("track_links_default", track_links_default),
        ("tracking_digest", tracking_digest),
    ):
        if value is not None:
            setattr(user, name, bool(value))
            fields.append(name)
    user.save(update_fields=fields)
    return user


def membership_add(*, company: Company, user: User, role: str) -> Membership:
    """Add a user to the company with a role, or reactivate them with that role."""
    if role not in Role.values:
        raise ServiceError(_("Role must be admin or regular."), field="role")
    membership, created = Membership.objects.for_company(company).get_or_create(
        company=company, user=user, defaults={"role": role}
    )
    if not created and (membership.role != role or not membership.is_active):
        membership.role, membership.is_active = role, True
        membership.save(update_fields=["role", "is_active", "updated_at"])
    return membership


def _ensure_another_admin(*, company: Company, membership: Membership) -> None:
    others = (
        Membership.objects.for_company(company)
        .filter(role=Role.ADMIN, is_active=True)
        .exclude(pk=membership.pk)
    )
    if membership.is_admin and membership.is_active and not others.exists():
        raise ServiceError(_("A company needs at least one active admin."))


def membership_set_role(*, company: Company, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise ServiceError(_("Role must be admin or regular."), field="role")
    if role != Role.ADMIN:
        _ensure_another_admin(company=company, membership=membership)
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    return membership


def membership_set_active(*, company: Company, membership: Membership, active: bool) -> Membership:
    """Deactivate (the user can no longer sign in to this company and their API token stops
    working) or reactivate a member."""
    if not active:
        _ensure_another_admin(company=company, membership=membership)
    membership.is_active = active
    membership.save(update_fields=["is_active", "updated_at"])
    return membership


# --- Teams --------------------------------------------------------------------------------------


def team_save(*, company: Company, name: str, team: Team | None = None) -> Team:
    name = name.strip()
    if not name:
        raise ServiceError(_("A team needs a name."), field="name")
    clash = Team.objects.for_company(company).filter(name__iexact=name)
    if team is not None:
        clash = clash.exclude(pk=team.pk)
    if clash.exists():
        raise ServiceError(_("A team with this name exists already."), field="name")
    if team is None:
        return Team.objects.create(company=company, name=name)
    team.name = name
    team.save(update_fields=["name", "updated_at"])
    return team


def team_delete(*, company: Company, team: Team) -> None:
    Team.objects.for_company(company).filter(pk=team.pk).delete()


def team_set_members(*, company: Company, team: Team, user_ids: set[int]) -> None:
    """Make the team's members exactly these users (who must be members of the company)."""
    allowed = set(
        Membership.objects.for_company(company)
        .filter(user_id__in=user_ids)
        .values_list("user_id", flat=True)
    )
    if allowed != user_ids:
        raise ServiceError(_("Only users of this company can join its teams."), field="members")
    current = TeamMember.objects.for_company(company).filter(team=team)
    current.exclude(user_id__in=user_ids).delete()
    present = set(current.values_list("user_id", flat=True))
    TeamMember.objects.bulk_create(
        TeamMember(company=company, team=team, user_id=user_id)
        for user_id in sorted(user_ids - present)
    )


# --- API tokens ---------------------------------------------------------------------------------


def api_token_issue(*, company: Company, user: User) -> str:
    """Revoke the user's live token in this company and issue a new one. Returns the token,
    which is never stored: only its digest is."""
    api_token_revoke(company=company, user=user)
    token = secrets.token_hex(20)  # 40 hex characters, like Pipedrive's
    ApiToken.objects.create(
        company=company, user=user, digest=token_digest(token), prefix=token[:6]
    )
    return token


def api_token_revoke(*, company: Company, user: User) -> None:
    ApiToken.objects.for_company(company).filter(user_id=user.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


@dataclass(frozen=True)
class TokenIdentity:
    token_id: int
    user: User
    membership: Membership


def api_token_authenticate(token: str) -> TokenIdentity | None:
    """The user and membership a token acts as, with the transaction bound to its company.

    Precondition: inside `transaction.atomic()` (the request's)."""
    found = tenancy.api_token_lookup(token_digest(token))
    if found is None:
        return None
    token_id, user_id, company_id = found
    tenancy.bind(company_id=company_id, user_id=user_id)
    membership = (
        Membership.objects.for_company(company_id)
        .select_related("user", "company")
        .filter(user_id=user_id, is_active=True, user__is_active=True)
        .first()
    )
    if membership is None:
        return None
    # "Last used" to the nearest five minutes: one cheap UPDATE, not a write per request.
    now = timezone.now()
    ApiToken.objects.for_company(company_id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - timedelta(minutes=5)),
        pk=token_id,
    ).update(last_used_at=now)
    return TokenIdentity(token_id=token_id, user=membership.user, membership=membership)


# --- Invitations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str


def invitation_create(
    *, company: Company, email: str, role: str, invited_by: User
) -> IssuedInvitation:
    """A one-time invitation link for this address. Sending the email is the caller's step
    (crm.tasks.invitation_send, after commit)."""
    email = email.strip().lower()
    if role not in Role.values:
        raise ServiceError(_("Role must be admin or regular."), field="role")
    if Membership.objects.for_company(company).filter(user__email=email, is_active=True).exists():
        raise ServiceError(_("%(email)s is already a user here.") % {"email": email}, field="email")
    # A new invitation replaces any pending one for the same address.
    Invitation.objects.for_company(company).filter(
        email=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        company=company,
        email=email,
        role=role,
        digest=token_digest(token),
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=settings.CRM_INVITATION_DAYS),
    )
    return IssuedInvitation(invitation=invitation, token=token)


def invitation_for_token(token: str) -> Invitation | None:
    """The pending, unexpired invitation of this link, with the transaction bound to its
    company. Precondition: inside `transaction.atomic()`."""
    found = tenancy.invitation_lookup(token_digest(token))
    if found is None:
        return None
    invitation_id, company_id = found
    tenancy.bind(company_id=company_id)
    invitation = (
        Invitation.objects.for_company(company_id)
        .select_related("company")
        .filter(pk=invitation_id, expires_at__gt=timezone.now())
        .first()
    )
    return invitation if invitation is not None and invitation.is_pending else None


def invitation_accept(
    *, invitation: Invitation, user: User | None, name: str = "", password: str | None = None
) -> Membership:
    """Accept an invitation: as the signed-in user, or as a new user with this password.
    The link works once."""
    if not invitation.is_pending or invitation.expires_at <= timezone.now():
        raise ServiceError(_("This invitation link has expired or was used already."))
    if user is None:
        if User.objects.filter(email=invitation.email).exists():
            raise ServiceError(
                _("%(email)s has an account already: sign in, then open the link again.")
                % {"email": invitation.email}
            )
        if not password:
            raise ServiceError(_("Choose a password."), field="password")
        user = user_get_or_create(email=invitation.email, password=password, name=name)
    company = invitation.company
    membership = membership_add(company=company, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def invitation_revoke(*, company: Company, invitation: Invitation) -> None:
    Invitation.objects.for_company(company).filter(pk=invitation.pk).update(
        revoked_at=timezone.now()
    )


def invitations_expire(*, company: Company) -> int:
    """Revoke this company's invitations past their expiry (beat runs it for each company)."""
    return (
        Invitation.objects.for_company(company)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__lte=timezone.now())
        .update(revoked_at=timezone.now())
    )


def bootstrap_company(
    *, name: str, admin_email: str, password: str, admin_name: str = ""
) -> tuple[Company, User, str]:
    """A new company with its first admin and that admin's API token (create_company, demo)."""
    with transaction.atomic():
        company = company_create(name=name)
        user = user_get_or_create(email=admin_email, password=password, name=admin_name)
        membership_add(company=company, user=user, role=Role.ADMIN)
        token = api_token_issue(company=company, user=user)
    return company, user, token


def invitation_accept_signed_in(*, invitation: Invitation, user: User) -> Membership:
    """Accept as the signed-in user, who must own the invited address: a forwarded link must
    not let someone else join with the invited role."""
    if user.email != invitation.email:
        raise ServiceError(
            _("This invitation is for %(email)s: sign in with that address to accept it.")
            % {"email": invitation.email}
        )
    return invitation_accept(invitation=invitation, user=user)


# --- Labels, visibility defaults and the change log (shared by every item kind) -----------


def label_create(*, company: Company, kind: str, name: str, color: str = "gray") -> Label:
    """A new label of this kind, or the existing one with the same name (case-insensitive)."""
    name = name.strip()
    if not name:
        raise ServiceError(_("A label needs a name."), field="name")
    if kind not in LabelKind.values:
        raise ServiceError(_("Unknown label kind %(kind)s.") % {"kind": kind}, field="kind")
    if color not in LabelColor.values:
        raise ServiceError(
            _("Colour must be one of %(colors)s.") % {"colors": ", ".join(LabelColor.values)},
            field="color",
        )
    existing = Label.objects.for_company(company).filter(kind=kind, name__iexact=name).first()
    if existing is not None:
        return existing
    return Label.objects.create(company=company, kind=kind, name=name, color=color)


def label_update(*, company: Company, label: Label, name: str, color: str) -> Label:
    name = name.strip()
    if not name:
        raise ServiceError(_("A label needs a name."), field="name")
    if color not in LabelColor.values:
        raise ServiceError(_("Unknown colour."), field="color")
    clash = Label.objects.for_company(company).filter(kind=label.kind, name__iexact=name)
    if clash.exclude(pk=label.pk).exists():
        raise ServiceError(_("A label with this name exists already."), field="name")
    label.name, label.color = name, color
    label.save(update_fields=["name", "color", "updated_at"])
    return label


def label_delete(*, company: Company, label: Label) -> None:
    Label.objects.for_company(company).filter(pk=label.pk).delete()


def labels_resolve(
    *, company: Company, kind: str, ids: list[int] | None = None, uuids: list[str] | None = None
) -> list[Label]:
    """The labels of this kind with these ids (or UUIDs, for leads); a ServiceError on
    `label_ids` naming any that do not exist."""
    wanted_ids, wanted_uuids = list(ids or []), list(uuids or [])
    queryset = Label.objects.for_company(company).filter(kind=kind)
    try:
        if wanted_uuids:
            found = list(queryset.filter(uuid__in=wanted_uuids))
            missing = set(wanted_uuids) - {str(label.uuid) for label in found}
        else:
            found = list(queryset.filter(pk__in=wanted_ids))
            missing = {str(i) for i in set(wanted_ids) - {label.pk for label in found}}
    except (ValueError, ValidationError) as exc:
        raise ServiceError(_("Label ids are not valid."), field="label_ids") from exc
    if missing:
        raise ServiceError(
            _("No %(kind)s label with id %(ids)s.")
            % {"kind": kind, "ids": ", ".join(sorted(missing))},
            field="label_ids",
        )
    return found


def visibility_default(*, company: Company, kind: str) -> int:
    """The company's default `visible_to` for new items of a kind (entire company unless set)."""
    stored = (
        VisibilityDefault.objects.for_company(company)
        .filter(kind=kind)
        .values_list("visible_to", flat=True)
        .first()
    )
    return int(stored) if stored is not None else 7


def visibility_default_set(*, company: Company, kind: str, visible_to: int) -> None:
    if visible_to not in (1, 3, 7):
        raise ServiceError(_("Visibility must be 1, 3 or 7."), field="visible_to")
    VisibilityDefault.objects.for_company(company).update_or_create(
        company=company, kind=kind, defaults={"visible_to": visible_to}
    )


def item_changes_record(
    *,
    company: Company | int,
    kind: str,
    item_key: object,
    changes: dict[str, tuple[object, object]],
    actor_id: int | None,
    source: str = ChangeSource.APP,
) -> None:
    """Write one change-log row per changed field ({field: (old, new)}, JSON-able values)."""
    company_id = company if isinstance(company, int) else company.pk
    ItemChange.objects.bulk_create(
        ItemChange(
            company_id=company_id,
            item_kind=kind,
            item_key=str(item_key),
            field=name,
            old_value=old,
            new_value=new,
            actor_id=actor_id,
            source=source,
        )
        for name, (old, new) in changes.items()
        if old != new
    )
