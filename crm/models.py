"""The platform's models: companies (the tenants), users, memberships with roles, teams,
API tokens and invitations. Users are global (one person may belong to several companies);
everything else is tenant-owned and walled by row-level security (crm.tenancy)."""

from __future__ import annotations

import uuid
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
    # B8: what a mailto link in the app opens.
    email_links = models.CharField(
        _("email links"),
        max_length=16,
        choices=[
            ("composer", _("Open the CRM's composer")),
            ("mail_app", _("Open my computer's mail app")),
        ],
        default="composer",
    )
    # E3: the composer's tracking switches start from these; E2: a daily email of what was
    # opened and clicked, besides the notifications in the app.
    track_opens_default = models.BooleanField(_("track opens"), default=True)
    track_links_default = models.BooleanField(_("track link clicks"), default=True)
    tracking_digest = models.BooleanField(_("daily email of opens and clicks"), default=False)
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


class LabelKind(models.TextChoices):
    PERSON = "person", _("Person")
    ORGANIZATION = "organization", _("Organization")
    DEAL = "deal", _("Deal")
    LEAD = "lead", _("Lead")
    PROJECT = "project", _("Project")
    MAIL_THREAD = "mail_thread", _("Email conversation")


class LabelColor(models.TextChoices):
    GREEN = "green", _("Green")
    BLUE = "blue", _("Blue")
    RED = "red", _("Red")
    YELLOW = "yellow", _("Yellow")
    PURPLE = "purple", _("Purple")
    GRAY = "gray", _("Gray")
    ORANGE = "orange", _("Orange")
    PINK = "pink", _("Pink")


class Label(TenantModel):
    """A label of one item kind (I6). Integer ids for persons, organizations and deals; the UUID
    is the id Pipedrive's API gives lead labels."""

    uuid = models.UUIDField(default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=LabelKind.choices)
    name = models.CharField(_("name"), max_length=100)
    color = models.CharField(max_length=16, choices=LabelColor.choices, default=LabelColor.GRAY)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("company", "kind", Lower("name"), name="label_name_unique_ci"),
            models.UniqueConstraint(fields=["company", "uuid"], name="label_uuid_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class VisibilityDefault(TenantModel):
    """The company's default `visible_to` for new items of a kind (absent: entire company)."""

    kind = models.CharField(max_length=16)
    visible_to = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "kind"], name="visibility_default_kind"),
        ]


class ChangeSource(models.TextChoices):
    APP = "app", _("App")
    API = "api", _("API")
    SYSTEM = "system", _("System")


class ItemChange(TenantModel):
    """One field of one item changed: who, when, from what to what. Detail views show it;
    webhooks send the previous values from it."""

    item_kind = models.CharField(max_length=16)
    item_key = models.CharField(max_length=40)  # an integer id, or a lead's UUID
    field = models.CharField(max_length=64)
    old_value = models.JSONField(null=True)
    new_value = models.JSONField(null=True)
    actor = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False
    )
    source = models.CharField(max_length=8, choices=ChangeSource.choices, default=ChangeSource.APP)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["company", "item_kind", "item_key", "-created_at"], name="item_change_item"
            ),
        ]


class Webhook(TenantModel):
    """A subscription: POST every matching item event to a URL (K2)."""

    name = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Whose item access filters the events (Pipedrive's user_id); the owner when absent.
    acting_user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    subscription_url = models.URLField(max_length=2000)
    event_action = models.CharField(max_length=16)  # added|updated|deleted|merged|create|...|*
    event_object = models.CharField(max_length=32)  # person|organization|deal|lead|project|*
    version = models.CharField(max_length=4, default="2.0")
    http_auth_user = models.CharField(max_length=200, blank=True)
    http_auth_password_encrypted = models.TextField(blank=True)
    secret_encrypted = models.TextField()  # HMAC key of the signature header, encrypted
    is_active = models.BooleanField(default=True)
    last_delivery_time = models.DateTimeField(null=True, blank=True)
    last_http_status = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["company", "is_active"], name="webhook_active")]


class WebhookDelivery(TenantModel):
    """One event to one webhook: the payload as sent, and how its delivery went."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, db_index=False)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_http_status = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["company", "webhook", "-created_at"], name="webhook_delivery_log"),
            models.Index(fields=["company", "status"], name="webhook_delivery_status"),
        ]


class Notification(TenantModel):
    """Something for one user to know (the bell): a recipient first opened or clicked their
    email, … `url` is where it leads, in the app. Read once `read_at` is set."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=32)
    title = models.CharField(max_length=300)
    body = models.CharField(max_length=1000, blank=True)
    url = models.CharField(max_length=500, blank=True)
    # What it is about, so the same event never notifies twice (e.g. "open:<message id>").
    subject_key = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)  # in a digest

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "user", "subject_key"], name="notification_once"
            ),
        ]
        indexes = [
            models.Index(fields=["company", "user", "-created_at"], name="notification_user"),
            models.Index(
                fields=["company", "user"],
                condition=models.Q(read_at__isnull=True),
                name="notification_unread",
            ),
        ]

    def __str__(self) -> str:
        return self.title
