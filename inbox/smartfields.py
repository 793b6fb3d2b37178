"""Smart fields of email templates (B6): `{{person.first_name}}`, `{{deal.value}}`, … filled from
the items a message is linked to, at send time and in the composer's preview.

Pure: no Django import. The caller gathers the values (`FieldValues`: each item's fields as
text, only of items the sender may see) and renders; what a field could not be filled with is
reported, so the composer can warn before anything is sent. A value is escaped for the HTML it
lands in; the template's own markup is the caller's (it was sanitized when the template was
saved). An unknown or misspelt field is left visible as written, never silently dropped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

# The fields offered in the composer's menu, by item, with their label there.
FIELDS: Mapping[str, Mapping[str, str]] = {
    "person": {
        "name": "Name",
        "first_name": "First name",
        "last_name": "Last name",
        "email": "Email",
        "phone": "Phone",
        "job_title": "Job title",
    },
    "organization": {"name": "Name", "address": "Address"},
    "deal": {"title": "Title", "value": "Value", "currency": "Currency", "stage": "Stage"},
    "lead": {"title": "Title"},
    "project": {"title": "Title"},
    "user": {"name": "Name", "first_name": "First name", "email": "Email"},
    "company": {"name": "Name"},
}

# `{{ item.field }}`, spaces allowed inside the braces; anything else in braces is text.
_FIELD = re.compile(r"\{\{\s*([a-z_]+)\.([a-z_]+)\s*\}\}")

FieldValues = Mapping[str, Mapping[str, str | None]]


@dataclass(frozen=True)
class Rendered:
    text: str
    # "deal.value" and the like, in the order they first appear, each once.
    missing: tuple[str, ...]  # a known field with no value here (no deal linked, empty field)
    unknown: tuple[str, ...]  # not a field we know: left in the text as written


def fields_used(template: str) -> tuple[str, ...]:
    """The known fields a template uses, in order of first use."""
    seen: dict[str, None] = {}
    for match in _FIELD.finditer(template):
        item, field = match.groups()
        if field in FIELDS.get(item, {}):
            seen.setdefault(f"{item}.{field}")
    return tuple(seen)


def render(template: str, values: FieldValues, *, as_html: bool = True) -> Rendered:
    """Fill the template's fields from `values`; a field without a value becomes empty text
    and is listed in `missing`. `as_html` escapes the values (bodies); plain text (subjects)
    takes them as they are."""
    missing: dict[str, None] = {}
    unknown: dict[str, None] = {}

    def fill(match: re.Match[str]) -> str:
        item, field = match.groups()
        name = f"{item}.{field}"
        if field not in FIELDS.get(item, {}):
            unknown.setdefault(name)
            return match.group(0)
        value = (values.get(item) or {}).get(field)
        if value is None or not str(value).strip():
            missing.setdefault(name)
            return ""
        return html.escape(str(value)) if as_html else str(value)

    text = _FIELD.sub(fill, template)
    return Rendered(text, tuple(missing), tuple(unknown))


def first_name(full_name: str) -> str:
    """The first word of a name, as `person.first_name` and `user.first_name` show it."""
    parts = full_name.strip().split()
    return parts[0] if parts else ""
