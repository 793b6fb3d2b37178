"""How the change history reads: field names as people say them, values as they look on the
page (the log stores the API's field names and JSON values)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

register = template.Library()

FIELD_LABELS = {
    "name": gettext_lazy("Name"),
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
    "job_title": gettext_lazy("Job title"),
    "org_id": gettext_lazy("Organization"),
    "organization_id": gettext_lazy("Organization"),
    "person_id": gettext_lazy("Person"),
    "owner_id": gettext_lazy("Owner"),
    "visible_to": gettext_lazy("Visible to"),
    "emails": gettext_lazy("Emails"),
    "phones": gettext_lazy("Phones"),
    "label_ids": gettext_lazy("Labels"),
    "notes": gettext_lazy("Notes"),
    "postal_address": gettext_lazy("Postal address"),
    "address": gettext_lazy("Address"),
    "title": gettext_lazy("Title"),
    "value": gettext_lazy("Value"),
    "currency": gettext_lazy("Currency"),
    "status": gettext_lazy("Status"),
    "stage_id": gettext_lazy("Stage"),
    "pipeline_id": gettext_lazy("Pipeline"),
    "lost_reason": gettext_lazy("Lost reason"),
    "expected_close_date": gettext_lazy("Expected close date"),
    "is_archived": gettext_lazy("Archived"),
    "was_seen": gettext_lazy("Seen"),
    "is_deleted": gettext_lazy("Deleted"),
}
VISIBILITY = {
    1: gettext_lazy("Owner only"),
    3: gettext_lazy("Owner's teams"),
    5: gettext_lazy("Owner's teams"),
    7: gettext_lazy("Entire company"),
}


@register.filter
def change_field(field: str) -> str:
    label = FIELD_LABELS.get(field)
    return str(label) if label is not None else field.replace("_", " ").capitalize()


@register.simple_tag
def change_value(field: str, value: Any) -> str:
    """A logged value as text: "—" for nothing, Yes / No, the addresses of a list of emails,
    the line of an address, the amount and currency of a lead's value."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if field == "visible_to" and str(value).isdigit():
        return str(VISIBILITY.get(int(value), value))
    if isinstance(value, dict):
        if "amount" in value:
            return f"{value.get('amount')} {value.get('currency') or ''}".strip()
        return str(value.get("value") or "—")
    if isinstance(value, list):
        return ", ".join(
            str(item.get("value", "")) if isinstance(item, dict) else str(item) for item in value
        )
    return str(value)
