"""The platform's models: companies (the tenants), users, memberships with roles, teams,
API tokens and invitations. Users are global (one person may belong to several companies);
everything else is tenant-owned and walled by row-level security (crm.tenancy)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from crm.plans import DEFAULT_PLAN, PLAN_CHOICES
from crm.tenancy import TenantModel


class Company(models.Model):
    """A tenant. Its row is walled too: a session sees the company it is bound to and the
    companies its user belongs to (for the switcher), nothing else."""

    name = models.CharField(_("name"), max_length=200)
    plan = models.CharField(_("plan"), max_length=32, choices=PLAN_CHOICES, default=DEFAULT_PLAN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    # Stored lower-cased (save() normalizes), so a plain unique index is case-insensitive.
    email = models.EmailField(_("email address"), unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC")
    locale = models.CharField(_("language"), max_length=16, default="en")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return self.name or self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@")[0]


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    REGULAR = "regular", _("Regular user")


class Membership(TenantModel):
    """A user's place in a company: their role there and whether they are active there."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.REGULAR)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "user"], name="membership_unique"),
        ]
        indexes = [models.Index(fields=["user"], name="membership_user")]

    def __str__(self) -> str:
        return f"{self.user} in company {self.company_id}"

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class Team(TenantModel):
    name = models.CharField(_("name"), max_length=120)
    members: models.ManyToManyField[User, TeamMember] = models.ManyToManyField(
        User, through="TeamMember", related_name="teams"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("company", Lower("name"), name="team_name_unique_ci"),
        ]

    def __str__(self) -> str:
        return self.name


class TeamMember(TenantModel):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, db_index=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "team", "user"], name="team_member_unique"),
        ]
        indexes = [models.Index(fields=["company", "user"], name="team_member_user")]


class ApiToken(TenantModel):
    """A user's personal API token in one company. Only a SHA-256 digest is kept: the token is
    shown once, when it is made."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", db_index=False)
    digest = models.CharField(max_length=64)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "digest"], name="api_token_digest"),
            models.UniqueConstraint(
                fields=["company", "user"],
                condition=models.Q(revoked_at__isnull=True),
                name="api_token_one_live_per_user",
            ),
        ]
        # The cross-tenant lookup by digest (crm_api_token_lookup) needs it without company.
        indexes = [models.Index(fields=["digest"], name="api_token_lookup")]


class Invitation(TenantModel):
    """A one-time link that lets someone join the company with a role."""

    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.REGULAR)
    digest = models.CharField(max_length=64)
    invited_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False
    )
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "digest"], name="invitation_digest"),
        ]
        indexes = [
            models.Index(fields=["digest"], name="invitation_lookup"),
            models.Index(fields=["company", "email"], name="invitation_email"),
        ]

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None
