"""Persons and organizations (I1, I2): the contacts mail is linked to.

Every foreign key inside a tenant table is indexed together with `company_id` (leading), never
alone, so the schema stays distributable by company."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.access import OwnedItem
from crm.models import Label
from crm.tenancy import TenantModel


class ContactLabel(models.TextChoices):
    WORK = "work", _("Work")
    HOME = "home", _("Home")
    MOBILE = "mobile", _("Mobile")
    OTHER = "other", _("Other")


class Address(models.Model):
    """A structured postal address, in Google's geocoding parts as Pipedrive's API has it."""

    address_value = models.CharField(_("address"), max_length=500, blank=True)
    address_country = models.CharField(max_length=100, blank=True)
    address_admin_area_level_1 = models.CharField(max_length=100, blank=True)
    address_admin_area_level_2 = models.CharField(max_length=100, blank=True)
    address_locality = models.CharField(max_length=100, blank=True)
    address_sublocality = models.CharField(max_length=100, blank=True)
    address_route = models.CharField(max_length=200, blank=True)
    address_street_number = models.CharField(max_length=32, blank=True)
    address_subpremise = models.CharField(max_length=64, blank=True)
    address_postal_code = models.CharField(max_length=32, blank=True)

    class Meta:
        abstract = True


class Organization(OwnedItem, Address):
    name = models.CharField(_("name"), max_length=255)
    industry = models.CharField(_("industry"), max_length=100, blank=True)
    website = models.CharField(_("website"), max_length=500, blank=True)
    linkedin = models.CharField(max_length=500, blank=True)
    annual_revenue = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    employee_count = models.PositiveIntegerField(null=True, blank=True)
    # Set when this organization was merged into another (and soft-deleted): it cannot be
    # restored, its links having moved to the one kept.
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    labels: models.ManyToManyField[Label, OrganizationLabel] = models.ManyToManyField(
        Label, through="OrganizationLabel", related_name="+"
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["company", "owner"], name="organization_owner"),
            models.Index(
                fields=["company", "id"],
                name="organization_live",
                condition=Q(deleted_at__isnull=True),
            ),
            models.Index(fields=["company", "updated_at"], name="organization_updated"),
            models.Index(fields=["company", "name"], name="organization_name"),
        ]

    def __str__(self) -> str:
        return self.name


class OrganizationLabel(TenantModel):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)
    label = models.ForeignKey(Label, on_delete=models.CASCADE, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "organization", "label"], name="organization_label_unique"
            ),
        ]
        indexes = [models.Index(fields=["company", "label"], name="organization_label_label")]


class RelationKind(models.TextChoices):
    # "organization is the parent of related_organization"; the other side sees "subsidiary".
    PARENT = "parent", _("Parent")
    RELATED = "related", _("Related")


class OrganizationRelation(TenantModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, db_index=False, related_name="relations_out"
    )
    related_organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, db_index=False, related_name="relations_in"
    )
    kind = models.CharField(max_length=16, choices=RelationKind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "organization", "related_organization"],
                name="organization_relation_unique",
            ),
            models.CheckConstraint(
                condition=~Q(organization=models.F("related_organization")),
                name="organization_relation_not_self",
            ),
        ]
        indexes = [
            models.Index(
                fields=["company", "related_organization"], name="organization_relation_in"
            ),
        ]


class Person(OwnedItem):
    name = models.CharField(_("name"), max_length=255)
    first_name = models.CharField(_("first name"), max_length=255, blank=True)
    last_name = models.CharField(_("last name"), max_length=255, blank=True)
    organization = models.ForeignKey(
        Organization,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="persons",
        db_index=False,
    )
    job_title = models.CharField(_("job title"), max_length=255, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    birthday = models.DateField(null=True, blank=True)
    # Set when this person was merged into another (and soft-deleted): it cannot be
    # restored, its links having moved to the one kept.
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    postal_address = models.CharField(_("postal address"), max_length=500, blank=True)
    postal_address_country = models.CharField(max_length=100, blank=True)
    postal_address_locality = models.CharField(max_length=100, blank=True)
    postal_address_route = models.CharField(max_length=200, blank=True)
    postal_address_street_number = models.CharField(max_length=32, blank=True)
    postal_address_postal_code = models.CharField(max_length=32, blank=True)
    postal_address_admin_area_level_1 = models.CharField(max_length=100, blank=True)
    labels: models.ManyToManyField[Label, PersonLabel] = models.ManyToManyField(
        Label, through="PersonLabel", related_name="+"
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["company", "owner"], name="person_owner"),
            models.Index(fields=["company", "organization"], name="person_organization"),
            models.Index(
                fields=["company", "id"], name="person_live", condition=Q(deleted_at__isnull=True)
            ),
            models.Index(fields=["company", "updated_at"], name="person_updated"),
            models.Index(fields=["company", "name"], name="person_name"),
        ]

    def __str__(self) -> str:
        return self.name


class PersonEmail(TenantModel):
    person = models.ForeignKey(
        Person, on_delete=models.CASCADE, related_name="emails", db_index=False
    )
    value = models.CharField(max_length=320)  # as the user typed it
    normalized = models.CharField(max_length=320)  # contacts.addresses.normalize_email
    label = models.CharField(max_length=16, choices=ContactLabel.choices, default=ContactLabel.WORK)
    primary = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "person", "normalized"], name="person_email_unique"
            ),
        ]
        # The linking lookup: which persons have these addresses.
        indexes = [
            # Covering person_id: the lookup is answered from the index alone.
            models.Index(
                fields=["company", "normalized"], name="person_email_lookup", include=["person"]
            )
        ]


class PersonPhone(TenantModel):
    person = models.ForeignKey(
        Person, on_delete=models.CASCADE, related_name="phones", db_index=False
    )
    value = models.CharField(max_length=64)
    label = models.CharField(max_length=16, choices=ContactLabel.choices, default=ContactLabel.WORK)
    primary = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["company", "person"], name="person_phone_person")]


class PersonLabel(TenantModel):
    person = models.ForeignKey(Person, on_delete=models.CASCADE, db_index=False)
    label = models.ForeignKey(Label, on_delete=models.CASCADE, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "person", "label"], name="person_label_unique"
            ),
        ]
        indexes = [models.Index(fields=["company", "label"], name="person_label_label")]


# --- Spreadsheet import (I4) ------------------------------------------------------------------


class ImportStatus(models.TextChoices):
    MAPPING = "mapping", _("Waiting for the column mapping")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    ROLLED_BACK = "rolled_back", _("Rolled back")


class DuplicatePolicy(models.TextChoices):
    SKIP = "skip", _("Skip the row")
    UPDATE = "update", _("Update the existing item")
    CREATE = "create", _("Create a new item anyway")


class ImportJob(TenantModel):
    """One uploaded spreadsheet and its run. `processed_rows` is the checkpoint: rows are
    handled in order, and each chunk commits together with the counters, so a crashed run
    resumes from here and never handles a row twice."""

    created_by = models.ForeignKey(
        "crm.User", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # An item kind of contacts.imports.registry: person, organization, deal, lead.
    kind = models.CharField(max_length=16)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.MAPPING
    )
    file_name = models.CharField(max_length=255)
    headers = models.JSONField(default=list)
    # {column index (as a string, JSON keys are strings): field name}
    mapping = models.JSONField(default=dict)
    duplicate_policy = models.CharField(
        max_length=8, choices=DuplicatePolicy.choices, default=DuplicatePolicy.SKIP
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["company", "created_by"], name="import_job_creator"),
            # The sweeper's scan for stalled runs.
            models.Index(fields=["company", "status", "updated_at"], name="import_job_status"),
        ]

    def __str__(self) -> str:
        return self.file_name


class ImportRowOutcome(models.TextChoices):
    PENDING = "", _("Pending")
    CREATED = "created", _("Created")
    UPDATED = "updated", _("Updated")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")


class ImportRow(TenantModel):
    """A data row of the file as read (cells as text, never evaluated), and what the run did
    with it: enough to report it and to undo it (`previous` holds the values an update
    replaced; `also_created` the items made on the way, such as a new organization)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="+", db_index=False)
    number = models.PositiveIntegerField()  # 1-based, the header row not counted
    values = models.JSONField(default=list)
    outcome = models.CharField(
        max_length=8, choices=ImportRowOutcome.choices, default=ImportRowOutcome.PENDING, blank=True
    )
    error = models.TextField(blank=True)
    # Lead ids are UUIDs, the others integers: kept as text.
    object_id = models.CharField(max_length=64, blank=True)
    previous = models.JSONField(null=True, blank=True)
    also_created = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["company", "job", "number"], name="import_row_unique"),
        ]
