"""The forms of the deal, lead and project pages. They parse and check the shape of input; the
rules (a stage belongs to its pipeline, a lead names a contact) live in crm.sales.services,
whose ServiceError lands on the form through `crm.web.forms.add_service_error`."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.access import Visibility
from crm.models import LabelColor
from crm.sales.models import DealStatus, ProjectStatus
from crm.services import ServiceError
from crm.web.forms import PlainLabels

Choices = list[tuple[Any, Any]]

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ContactFields(forms.Form):
    """A person and an organization picked by the autocomplete (the hidden id) or typed as a new
    name (no id: the contact is made together with the item)."""

    person_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    person_name = forms.CharField(label=_("Person"), max_length=255, required=False)
    organization_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    organization_name = forms.CharField(label=_("Organization"), max_length=255, required=False)

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if cleaned is None:
            return None
        # A name cleared in the field unlinks the contact, whatever id was left behind.
        for kind in ("person", "organization"):
            if not (cleaned.get(f"{kind}_name") or "").strip():
                cleaned[f"{kind}_id"] = None
        return cleaned


class DealForm(PlainLabels, ContactFields):
    title = forms.CharField(label=_("Title"), max_length=255)
    value = forms.DecimalField(
        label=_("Value"), max_digits=18, decimal_places=2, required=False, initial=0
    )
    currency = forms.CharField(label=_("Currency"), max_length=3, initial="USD")
    stage_id = forms.TypedChoiceField(label=_("Stage"), coerce=int)
    owner_id = forms.TypedChoiceField(label=_("Owner"), coerce=int)
    expected_close_date = forms.DateField(
        label=_("Expected close date"), required=False, widget=DATE_INPUT
    )
    visible_to = forms.TypedChoiceField(
        label=_("Visible to"), choices=Visibility.choices, coerce=int
    )
    label_ids = forms.TypedMultipleChoiceField(
        label=_("Labels"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(
        self, *args: Any, stages: Choices, owners: Choices, labels: Choices, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["stage_id"].choices = stages  # type: ignore[attr-defined]
        self.fields["owner_id"].choices = owners  # type: ignore[attr-defined]
        self.fields["label_ids"].choices = labels  # type: ignore[attr-defined]


class LeadForm(PlainLabels, ContactFields):
    title = forms.CharField(label=_("Title"), max_length=255)
    value_amount = forms.DecimalField(
        label=_("Value"), max_digits=18, decimal_places=2, required=False
    )
    value_currency = forms.CharField(label=_("Currency"), max_length=3, required=False)
    owner_id = forms.TypedChoiceField(label=_("Owner"), coerce=int)
    expected_close_date = forms.DateField(
        label=_("Expected close date"), required=False, widget=DATE_INPUT
    )
    visible_to = forms.TypedChoiceField(
        label=_("Visible to"), choices=Visibility.choices, coerce=int
    )

    def __init__(self, *args: Any, owners: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner_id"].choices = owners  # type: ignore[attr-defined]


class ProjectForm(PlainLabels, forms.Form):
    title = forms.CharField(label=_("Title"), max_length=255)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea)
    status = forms.ChoiceField(label=_("Status"), choices=ProjectStatus.choices)
    phase_id = forms.TypedChoiceField(label=_("Phase"), coerce=int)
    owner_id = forms.TypedChoiceField(label=_("Owner"), coerce=int)
    start_date = forms.DateField(label=_("Start date"), required=False, widget=DATE_INPUT)
    end_date = forms.DateField(label=_("End date"), required=False, widget=DATE_INPUT)
    visible_to = forms.TypedChoiceField(
        label=_("Visible to"), choices=Visibility.choices, coerce=int
    )

    def __init__(self, *args: Any, phases: Choices, owners: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["phase_id"].choices = phases  # type: ignore[attr-defined]
        self.fields["owner_id"].choices = owners  # type: ignore[attr-defined]


class StatusForm(forms.Form):
    """Won, lost (with its reason) or reopened."""

    status = forms.ChoiceField(choices=DealStatus.choices)
    lost_reason = forms.CharField(label=_("Lost reason"), max_length=255, required=False)


class MoveForm(forms.Form):
    stage_id = forms.IntegerField()


class PhaseMoveForm(forms.Form):
    phase_id = forms.IntegerField()


class NewLabelForm(PlainLabels, forms.Form):
    name = forms.CharField(label=_("New label"), max_length=100)
    color = forms.ChoiceField(label=_("Colour"), choices=LabelColor.choices, initial="gray")


class LinkForm(forms.Form):
    """Add or remove one linked deal, person or organization of a project."""

    kind = forms.ChoiceField(
        choices=[("deal", "deal"), ("person", "person"), ("organization", "organization")]
    )
    target_id = forms.IntegerField()
    remove = forms.BooleanField(required=False)


class DealListFilters(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("All")), *DealStatus.choices],
    )
    owner = forms.TypedChoiceField(label=_("Owner"), required=False, coerce=int, empty_value=None)
    pipeline = forms.TypedChoiceField(
        label=_("Pipeline"), required=False, coerce=int, empty_value=None
    )
    sort = forms.ChoiceField(
        label=_("Sort by"),
        required=False,
        choices=[
            ("-updated", _("Recently updated")),
            ("title", _("Title")),
            ("-value", _("Value")),
            ("expected_close", _("Expected close date")),
            ("-created", _("Newest")),
        ],
    )

    def __init__(self, *args: Any, owners: Choices, pipelines: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("", _("Everyone")), *owners]  # type: ignore[attr-defined]
        self.fields["pipeline"].choices = [  # type: ignore[attr-defined]
            ("", _("All pipelines")),
            *pipelines,
        ]


class LeadListFilters(forms.Form):
    view = forms.ChoiceField(
        required=False,
        choices=[("inbox", _("Inbox")), ("archived", _("Archived"))],
    )
    owner = forms.TypedChoiceField(label=_("Owner"), required=False, coerce=int, empty_value=None)
    q = forms.CharField(label=_("Search"), required=False, max_length=100)

    def __init__(self, *args: Any, owners: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("", _("Everyone")), *owners]  # type: ignore[attr-defined]


# The services name the id fields; the pages show the typed names, which carry the errors.
_SHOWN_FIELD = {
    "person_id": "person_name",
    "org_id": "organization_name",
    "organization_id": "organization_name",
    "value": "value_amount",
    "value.amount": "value_amount",
    "value.currency": "value_currency",
}


def add_item_error(form: forms.Form, error: ServiceError) -> None:
    """Show a service's refusal beside the field the user typed in, or above the form."""
    field = error.field
    if field not in form.fields or isinstance(form.fields[field].widget, forms.HiddenInput):
        field = _SHOWN_FIELD.get(field or "")
    form.add_error(field if field in form.fields else None, error.message)
