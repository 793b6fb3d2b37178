"""The forms of the contacts pages. They parse and check the shape of input and turn it into
the services' field dicts; the rules (a name is required, an owner is an active member, an
address is valid) live in contacts.services, whose ServiceError lands on the form through
`crm.web.forms.add_service_error`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from contacts.models import ContactLabel
from contacts.services import ContactPoint, OrganizationFields, PersonFields
from crm.access import Visibility
from crm.models import LabelColor
from crm.web.forms import PlainLabels

PAGE_SIZE = 50
SORTS = ("name", "organization", "owner", "updated", "people")


class ListQueryForm(forms.Form):
    """A list page's query string: search, filters, sort and page. Bad values fall back to
    the defaults rather than failing the page (a stale bookmark still opens)."""

    q = forms.CharField(required=False, max_length=200)
    owner = forms.IntegerField(required=False, min_value=1)
    label = forms.IntegerField(required=False, min_value=1)
    organization = forms.IntegerField(required=False, min_value=1)
    sort = forms.ChoiceField(required=False, choices=[(sort, sort) for sort in SORTS])
    dir = forms.ChoiceField(required=False, choices=[("asc", "asc"), ("desc", "desc")])
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def cleaned(self) -> dict[str, Any]:
        self.is_valid()
        data = {name: self.cleaned_data.get(name) for name in self.fields}
        data["q"] = (data["q"] or "").strip()
        data["sort"] = data["sort"] or "updated"
        data["dir"] = data["dir"] or ("desc" if data["sort"] == "updated" else "asc")
        data["page"] = data["page"] or 1
        return data


def owner_choices(users: Iterable[Any]) -> list[tuple[int, str]]:
    return [(user.pk, user.display_name) for user in users]


class PersonCreateForm(PlainLabels, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=255)
    email = forms.CharField(label=_("Email"), max_length=320, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=64, required=False)
    job_title = forms.CharField(label=_("Job title"), max_length=255, required=False)
    org_id = forms.IntegerField(label=_("Organization"), required=False, widget=forms.HiddenInput)

    def fields_for_service(self) -> PersonFields:
        data = self.cleaned_data
        fields = PersonFields(name=data["name"], job_title=data["job_title"])
        if data["email"]:
            fields["emails"] = [ContactPoint(value=data["email"], primary=True)]
        if data["phone"]:
            fields["phones"] = [ContactPoint(value=data["phone"], primary=True)]
        if data["org_id"]:
            fields["org_id"] = data["org_id"]
        return fields


class OrganizationCreateForm(PlainLabels, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=255)
    address = forms.CharField(label=_("Address"), max_length=500, required=False)
    website = forms.CharField(label=_("Website"), max_length=500, required=False)

    def fields_for_service(self) -> OrganizationFields:
        data = self.cleaned_data
        fields = OrganizationFields(name=data["name"], website=data["website"])
        if data["address"]:
            fields["address"] = {"value": data["address"]}
        return fields


# --- Editing one field in place ------------------------------------------------------------------

PERSON_INLINE = {
    "name": _("Name"),
    "job_title": _("Job title"),
    "organization": _("Organization"),
    "owner": _("Owner"),
    "visible_to": _("Visible to"),
    "notes": _("Notes"),
    "postal_address": _("Postal address"),
}
ORGANIZATION_INLINE = {
    "name": _("Name"),
    "owner": _("Owner"),
    "visible_to": _("Visible to"),
    "address": _("Address"),
    "website": _("Website"),
    "industry": _("Industry"),
}


class InlineFieldForm(PlainLabels, forms.Form):
    """One field of a person or an organization, named `value` whatever the field is."""

    def __init__(self, *args: Any, field: str, label: Any, owners: Any = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.field_name = field
        value: forms.Field
        if field == "owner":
            value = forms.TypedChoiceField(label=label, coerce=int, choices=owner_choices(owners))
        elif field == "visible_to":
            value = forms.TypedChoiceField(label=label, coerce=int, choices=Visibility.choices)
        elif field == "organization":
            # Filled by the organization search; the service checks the member may see it.
            value = forms.IntegerField(label=label, required=False, min_value=1)
        elif field == "notes":
            value = forms.CharField(label=label, required=False, widget=forms.Textarea)
        else:
            value = forms.CharField(label=label, required=field == "name", max_length=500)
        self.fields["value"] = value

    def person_fields(self) -> PersonFields:
        value = self.cleaned_data["value"]
        if self.field_name == "organization":
            return PersonFields(org_id=value or None)
        if self.field_name == "owner":
            return PersonFields(owner_id=value)
        if self.field_name == "postal_address":
            return PersonFields(postal_address={"value": value})
        if self.field_name == "visible_to":
            return PersonFields(visible_to=value)
        if self.field_name == "job_title":
            return PersonFields(job_title=value)
        if self.field_name == "notes":
            return PersonFields(notes=value)
        return PersonFields(name=value)

    def organization_fields(self) -> OrganizationFields:
        value = self.cleaned_data["value"]
        if self.field_name == "owner":
            return OrganizationFields(owner_id=value)
        if self.field_name == "address":
            return OrganizationFields(address={"value": value})
        if self.field_name == "visible_to":
            return OrganizationFields(visible_to=value)
        if self.field_name == "website":
            return OrganizationFields(website=value)
        if self.field_name == "industry":
            return OrganizationFields(industry=value)
        return OrganizationFields(name=value)


# --- Emails and phones ---------------------------------------------------------------------------


def contact_points(data: QueryDict) -> list[ContactPoint]:
    """The rows of an emails or phones editor: parallel `value` / `label` lists, the index of
    the primary row in `primary` and the indexes to drop in `remove`. The last row is the
    empty "add" row; an empty value is dropped by the service."""
    values = data.getlist("value")
    labels = data.getlist("label")
    primary = data.get("primary", "")
    removed = set(data.getlist("remove"))
    points = []
    for index, value in enumerate(values):
        if str(index) in removed or not value.strip():
            continue
        label = labels[index] if index < len(labels) else ContactLabel.WORK
        points.append(ContactPoint(value=value, label=label, primary=str(index) == primary))
    if points and not any(point.primary for point in points):
        first = points[0]
        points[0] = ContactPoint(value=first.value, label=first.label, primary=True)
    return points


# --- Labels --------------------------------------------------------------------------------------


class LabelsForm(PlainLabels, forms.Form):
    label_ids = forms.TypedMultipleChoiceField(
        label=_("Labels"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    new_label = forms.CharField(label=_("New label"), max_length=100, required=False)
    new_color = forms.ChoiceField(
        label=_("Colour"), choices=LabelColor.choices, initial=LabelColor.BLUE, required=False
    )

    def __init__(self, *args: Any, labels: Iterable[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["label_ids"].choices = [  # type: ignore[attr-defined]
            (label.pk, label.name) for label in labels
        ]


# --- Bulk actions, merge, relations --------------------------------------------------------------


class BulkForm(forms.Form):
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=())
    action = forms.ChoiceField(
        choices=[("owner", _("Assign owner")), ("label", _("Add label")), ("delete", _("Delete"))]
    )
    owner = forms.IntegerField(required=False, min_value=1)
    label = forms.IntegerField(required=False, min_value=1)

    def clean_ids(self) -> list[int]:
        return list(self.cleaned_data["ids"])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any ids: which exist and may be seen is for the selector to say, not for choices.
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        self.fields["ids"].choices = [(value, value) for value in raw]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if cleaned is None:
            return cleaned
        action = cleaned.get("action")
        if action == "owner" and not cleaned.get("owner"):
            self.add_error("owner", _("Pick an owner."))
        if action == "label" and not cleaned.get("label"):
            self.add_error("label", _("Pick a label."))
        return cleaned


class MergeForm(forms.Form):
    merged_id = forms.IntegerField(min_value=1)


class RelationForm(PlainLabels, forms.Form):
    kind = forms.ChoiceField(
        label=_("The other organization is"),
        choices=[
            ("parent", _("Parent")),
            ("subsidiary", _("Subsidiary")),
            ("related", _("Related")),
        ],
    )
    other_id = forms.IntegerField(label=_("Organization"), min_value=1)


class RemoveRelationForm(forms.Form):
    relation_id = forms.IntegerField(min_value=1)
