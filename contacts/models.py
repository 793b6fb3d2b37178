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
