"""Pipelines, stages, deals, leads and projects. Every foreign key inside a tenant table is
indexed together with `company_id` (leading), never alone."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from contacts.models import Organization, Person
from crm.access import OwnedItem
from crm.models import Label, User
from crm.tenancy import TenantModel


class Pipeline(TenantModel):
    name = models.CharField(_("name"), max_length=255)
    position = models.PositiveIntegerField(default=0)  # Pipedrive's order_nr
    is_active = models.BooleanField(default=True)
    deal_probability = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class Stage(TenantModel):
    pipeline = models.ForeignKey(
        Pipeline, on_delete=models.CASCADE, related_name="stages", db_index=False
    )
    name = models.CharField(_("name"), max_length=255)
    position = models.PositiveIntegerField(default=0)
    probability = models.PositiveSmallIntegerField(default=100)  # win probability, percent
    rotten_days = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["company", "pipeline", "position"], name="stage_order")]
        constraints = [
            models.CheckConstraint(condition=Q(probability__lte=100), name="stage_probability"),
        ]

    def __str__(self) -> str:
        return self.name


class DealStatus(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Deal(OwnedItem):
    title = models.CharField(_("title"), max_length=255)
    value = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(max_length=8, choices=DealStatus.choices, default=DealStatus.OPEN)
    lost_reason = models.CharField(max_length=255, blank=True)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, db_index=False)
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, db_index=False)
    probability = models.PositiveSmallIntegerField(null=True, blank=True)
    expected_close_date = models.DateField(null=True, blank=True)
    person = models.ForeignKey(
        Person,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deals",
        db_index=False,
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deals",
        db_index=False,
    )
    creator = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False
    )
    participants: models.ManyToManyField[Person, DealParticipant] = models.ManyToManyField(
        Person, through="DealParticipant", related_name="+"
    )
    labels: models.ManyToManyField[Label, DealLabel] = models.ManyToManyField(
        Label, through="DealLabel", related_name="+"
    )
    source_lead_id = models.UUIDField(null=True, blank=True)
    origin = models.CharField(max_length=64, blank=True)
    channel = models.CharField(max_length=64, blank=True)
    stage_change_time = models.DateTimeField(null=True, blank=True)
    won_time = models.DateTimeField(null=True, blank=True)
    lost_time = models.DateTimeField(null=True, blank=True)
    close_time = models.DateTimeField(null=True, blank=True)
    is_archived = models.BooleanField(default=False)
    archive_time = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["company", "owner"], name="deal_owner"),
            models.Index(fields=["company", "person", "status"], name="deal_person"),
            models.Index(fields=["company", "organization", "status"], name="deal_organization"),
            models.Index(fields=["company", "stage"], name="deal_stage"),
            models.Index(fields=["company", "pipeline", "status"], name="deal_pipeline"),
            models.Index(fields=["company", "creator"], name="deal_creator"),
            models.Index(
                fields=["company", "id"], name="deal_live", condition=Q(deleted_at__isnull=True)
            ),
            models.Index(fields=["company", "updated_at"], name="deal_updated"),
        ]

    def __str__(self) -> str:
        return self.title


class DealLabel(TenantModel):
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, db_index=False)
    label = models.ForeignKey(Label, on_delete=models.CASCADE, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "deal", "label"], name="deal_label_unique"),
        ]
        indexes = [models.Index(fields=["company", "label"], name="deal_label_label")]


class DealParticipant(TenantModel):
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, db_index=False)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "deal", "person"], name="deal_participant_unique"
            ),
        ]
        indexes = [models.Index(fields=["company", "person"], name="deal_participant_person")]


class Lead(OwnedItem):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(_("title"), max_length=255)
    value_amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    value_currency = models.CharField(max_length=3, blank=True)
    person = models.ForeignKey(
        Person,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        db_index=False,
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leads",
        db_index=False,
    )
    creator = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False
    )
    labels: models.ManyToManyField[Label, LeadLabel] = models.ManyToManyField(
        Label, through="LeadLabel", related_name="+"
    )
    source_name = models.CharField(max_length=64, default="Manually created")
    origin = models.CharField(max_length=64, blank=True)
    channel = models.CharField(max_length=64, blank=True)
    expected_close_date = models.DateField(null=True, blank=True)
    is_archived = models.BooleanField(default=False)
    was_seen = models.BooleanField(default=False)
    converted_deal = models.ForeignKey(
        Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["company", "owner"], name="lead_owner"),
            models.Index(fields=["company", "person"], name="lead_person"),
            models.Index(fields=["company", "organization"], name="lead_organization"),
            models.Index(fields=["company", "creator"], name="lead_creator"),
            models.Index(fields=["company", "converted_deal"], name="lead_converted_deal"),
            models.Index(
                fields=["company", "is_archived", "created_at"],
                name="lead_inbox",
                condition=Q(deleted_at__isnull=True),
            ),
        ]
        # "A person or an organization" is checked when a lead is made or changed
        # (crm.sales.services), not here: purging a deleted person must not be blocked by, or
        # delete, a lead that named only them; the lead stays, without a contact.

    def __str__(self) -> str:
        return self.title


class LeadLabel(TenantModel):
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, db_index=False)
    label = models.ForeignKey(Label, on_delete=models.CASCADE, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "lead", "label"], name="lead_label_unique"),
        ]
        indexes = [models.Index(fields=["company", "label"], name="lead_label_label")]


class LeadConversion(TenantModel):
    """`POST /api/v2/leads/{id}/convert/deal` is a job with a status, as in Pipedrive."""

    class Status(models.TextChoices):
        NOT_STARTED = "not_started"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        REJECTED = "rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, db_index=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NOT_STARTED)
    deal = models.ForeignKey(
        Deal, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    stage = models.ForeignKey(
        Stage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    pipeline = models.ForeignKey(
        Pipeline, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["company", "lead"], name="lead_conversion_lead"),
            models.Index(fields=["company", "deal"], name="lead_conversion_deal"),
            models.Index(fields=["company", "stage"], name="lead_conversion_stage"),
            models.Index(fields=["company", "pipeline"], name="lead_conversion_pipeline"),
        ]


class ProjectBoard(TenantModel):
    name = models.CharField(_("name"), max_length=255)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]


class ProjectPhase(TenantModel):
    board = models.ForeignKey(
        ProjectBoard, on_delete=models.CASCADE, related_name="phases", db_index=False
    )
    name = models.CharField(_("name"), max_length=255)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["company", "board", "position"], name="phase_order")]


class ProjectStatus(models.TextChoices):
    OPEN = "open", _("Open")
    COMPLETED = "completed", _("Completed")
    CANCELED = "canceled", _("Canceled")


class Project(OwnedItem):
    title = models.CharField(_("title"), max_length=255)
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(
        max_length=16, choices=ProjectStatus.choices, default=ProjectStatus.OPEN
    )
    board = models.ForeignKey(ProjectBoard, on_delete=models.PROTECT, db_index=False)
    phase = models.ForeignKey(ProjectPhase, on_delete=models.PROTECT, db_index=False)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    health_status = models.CharField(max_length=16, blank=True)  # on_track|at_risk|off_track
    labels: models.ManyToManyField[Label, ProjectLabel] = models.ManyToManyField(
        Label, through="ProjectLabel", related_name="+"
    )
    deals: models.ManyToManyField[Deal, ProjectDeal] = models.ManyToManyField(
        Deal, through="ProjectDeal", related_name="projects"
    )
    persons: models.ManyToManyField[Person, ProjectPerson] = models.ManyToManyField(
        Person, through="ProjectPerson", related_name="projects"
    )
    organizations: models.ManyToManyField[Organization, ProjectOrganization] = (
        models.ManyToManyField(Organization, through="ProjectOrganization", related_name="projects")
    )
    status_change_time = models.DateTimeField(null=True, blank=True)
    is_archived = models.BooleanField(default=False)
    archive_time = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["company", "owner"], name="project_owner"),
            models.Index(fields=["company", "board", "phase"], name="project_board"),
            models.Index(fields=["company", "phase"], name="project_phase"),
        ]

    def __str__(self) -> str:
        return self.title


class ProjectLabel(TenantModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    label = models.ForeignKey(Label, on_delete=models.CASCADE, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "project", "label"], name="project_label_unique"
            ),
        ]
        indexes = [models.Index(fields=["company", "label"], name="project_label_label")]


class ProjectDeal(TenantModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "project", "deal"], name="project_deal_unique"
            ),
        ]
        indexes = [models.Index(fields=["company", "deal"], name="project_deal_deal")]


class ProjectPerson(TenantModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "project", "person"], name="project_person_unique"
            ),
        ]
        indexes = [models.Index(fields=["company", "person"], name="project_person_person")]


class ProjectOrganization(TenantModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "project", "organization"], name="project_organization_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["company", "organization"], name="project_organization_org"),
        ]
