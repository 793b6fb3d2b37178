"""The forms of the import pages: the upload, and the mapping built from the file's headers."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from contacts.imports import registry
from contacts.models import DuplicatePolicy, ImportJob


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("What the file holds"))
    file = forms.FileField(label=_("CSV or XLSX file"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [  # type: ignore[attr-defined]
            (kind, handler.label) for kind, handler in registry.handlers().items()
        ]


class MappingForm(forms.Form):
    """One select per column of the file ("column_3": field name or "" to ignore it)."""

    duplicate_policy = forms.ChoiceField(
        label=_("When an item already exists"),
        choices=DuplicatePolicy.choices,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, job: ImportJob, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        handler = registry.handler_for(job.kind)
        choices = [("", _("— Don't import —")), *((f.name, f.label) for f in handler.fields)]
        for index, header in enumerate(job.headers):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=header or _("Column %(number)d") % {"number": index + 1},
                choices=choices,
                required=False,
                initial=job.mapping.get(str(index), ""),
            )
        self.fields["duplicate_policy"].initial = job.duplicate_policy

    def column_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("column_")]

    def mapping(self) -> dict[str, str]:
        return {
            name.removeprefix("column_"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("column_")
        }
