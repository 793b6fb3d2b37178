"""What an item kind gives the import: its fields (with the headers that name them) and how a
row becomes an item, and how that is undone.

A handler checks a row cheaply for the preview (`check`: problems per field) and applies it
for the run (`apply`); `delete` and `restore` undo a row on rollback. Rows arrive as
{field name: cell text}; the conversions below turn text into values or say what is wrong."""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _

from contacts.addresses import InvalidEmailAddress, normalize_email
from crm.models import Company, Label, Membership

_CURRENCY = re.compile(r"[A-Za-z]{3}")
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%Y/%m/%d")
MAX_MONEY = decimal.Decimal(10) ** 16


class RowError(Exception):
    """The row cannot be imported; the message says why (it goes into the report)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the field at fault, when the preview should point at another


@dataclass(frozen=True)
class ImportField:
    name: str
    label: str | Promise
    # Headers (normalized: lower case, single spaces) that name this field.
    aliases: tuple[str, ...] = ()
    # text | email | phone | owner | number | currency | date | label
    type: str = "text"


@dataclass
class ImportContext:
    """One run's company, acting member, and lookups cached across its rows."""

    company: Company
    membership: Membership
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowResult:
    outcome: str  # an ImportRowOutcome
    object_id: str = ""
    previous: dict[str, Any] | None = None
    # [kind, id] of items made on the way (a new organization for a person's row).
    also_created: list[list[str]] = field(default_factory=list)
    error: str = ""


class ItemHandler:
    """Base of the handlers: subclasses set the class attributes and implement `apply`,
    `delete` and `restore` (the last only for kinds that match duplicates)."""

    kind: str = ""
    label: str | Promise = ""
    fields: tuple[ImportField, ...] = ()
    # Each group needs a value in at least one of its fields.
    required: tuple[tuple[str, ...], ...] = ()
    label_kind: str = ""

    def field_names(self) -> list[str]:
        return [item.name for item in self.fields]

    def check(self, *, context: ImportContext, values: Mapping[str, str]) -> dict[str, str]:
        """Problems of the row by field name; empty when it looks importable."""
        problems: dict[str, str] = {}
        for group in self.required:
            if not any(values.get(name, "").strip() for name in group):
                problems[group[0]] = _("Required.")
        for item in self.fields:
            text = values.get(item.name, "").strip()
            if not text:
                continue
            try:
                convert(item.type, text=text, context=context, label_kind=self.label_kind)
            except RowError as error:
                problems[item.name] = error.message
        return problems

    def checked(self, *, context: ImportContext, values: Mapping[str, str]) -> None:
        """Raise RowError with every problem of the row, for the report."""
        problems = self.check(context=context, values=values)
        if problems:
            labels = {item.name: str(item.label) for item in self.fields}
            raise RowError(
                "; ".join(
                    f"{labels.get(name, name)}: {message}" for name, message in problems.items()
                )
            )

    def apply(self, *, context: ImportContext, values: Mapping[str, str], policy: str) -> RowResult:
        raise NotImplementedError

    def delete(self, *, context: ImportContext, object_id: str) -> None:
        raise NotImplementedError

    def restore(
        self, *, context: ImportContext, object_id: str, previous: Mapping[str, Any]
    ) -> None:
        raise NotImplementedError


# --- Conversions from cell text ---------------------------------------------------------------


def convert(kind: str, *, text: str, context: ImportContext, label_kind: str = "") -> Any:
    """The value of `text` as a field of type `kind`; RowError when it is not one."""
    if kind == "email":
        return emails_split(text)
    if kind == "owner":
        return owner_id(context=context, text=text)
    if kind == "number":
        return money(text)
    if kind == "currency":
        return currency(text)
    if kind == "date":
        return date(text)
    if kind == "label":
        return label_ids(context=context, text=text, kind=label_kind)
    return text


def emails_split(text: str) -> list[str]:
    """A cell may hold several addresses, separated by commas or semicolons."""
    addresses = [part.strip() for part in re.split(r"[,;]", text) if part.strip()]
    for address in addresses:
        try:
            normalize_email(address)
        except InvalidEmailAddress:
            raise RowError(
                _("%(value)s is not a valid email address.") % {"value": address[:100]}
            ) from None
    return addresses


def owner_id(*, context: ImportContext, text: str) -> int:
    """An active member of the company by name or email (as Pipedrive exports "Owner")."""
    owners: dict[str, int] | None = context.cache.get("owners")
    if owners is None:
        owners = {}
        memberships = (
            Membership.objects.for_company(context.company)
            .filter(is_active=True, user__is_active=True)
            .select_related("user")
        )
        for membership in memberships:
            user = membership.user
            owners.setdefault(user.email.lower(), user.pk)
            if user.name:
                owners.setdefault(" ".join(user.name.lower().split()), user.pk)
        context.cache["owners"] = owners
    found = owners.get(" ".join(text.lower().split()))
    if found is None:
        raise RowError(_("No active user named %(owner)s in this company.") % {"owner": text[:100]})
    return found


def money(text: str) -> decimal.Decimal:
    """1234.5, 1,234.50, 1.234,50, 1 234,50 and a currency sign or code around it."""
    cleaned = re.sub(r"[^\d,.\-]", "", text)
    if "," in cleaned and "." in cleaned:
        thousands = "," if cleaned.rfind(",") < cleaned.rfind(".") else "."
        cleaned = cleaned.replace(thousands, "").replace(",", ".")
    elif "," in cleaned:
        whole, _sep, fraction = cleaned.rpartition(",")
        cleaned = (
            f"{whole}.{fraction}"
            if cleaned.count(",") == 1 and len(fraction) != 3
            else cleaned.replace(",", "")
        )
    try:
        amount = decimal.Decimal(cleaned)
    except decimal.InvalidOperation:
        raise RowError(_("%(value)s is not a number.") % {"value": text[:50]}) from None
    if not amount.is_finite() or abs(amount) >= MAX_MONEY or not re.search(r"\d", text):
        raise RowError(_("%(value)s is not a number.") % {"value": text[:50]})
    return amount.quantize(decimal.Decimal("0.01"))


def currency(text: str) -> str:
    if not _CURRENCY.fullmatch(text.strip()):
        raise RowError(
            _("%(value)s is not a three-letter currency code such as EUR.") % {"value": text[:20]}
        )
    return text.strip().upper()


def date(text: str) -> datetime.date:
    for pattern in _DATE_FORMATS:
        try:
            # A date alone: the time zone plays no part.
            return (
                datetime.datetime.strptime(text.strip()[:10], pattern)
                .replace(tzinfo=datetime.UTC)
                .date()
            )
        except ValueError:
            continue
    raise RowError(_("%(value)s is not a date (use 2025-12-31).") % {"value": text[:30]})


def label_ids(*, context: ImportContext, text: str, kind: str) -> list[int]:
    """Existing labels of the kind by name, comma separated (the import makes no labels)."""
    key = f"labels:{kind}"
    labels: dict[str, int] | None = context.cache.get(key)
    if labels is None:
        labels = {
            name.lower(): pk
            for pk, name in Label.objects.for_company(context.company)
            .filter(kind=kind)
            .values_list("pk", "name")
        }
        context.cache[key] = labels
    found: list[int] = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        if name.lower() not in labels:
            raise RowError(_("No label named %(label)s.") % {"label": name[:100]})
        found.append(labels[name.lower()])
    return found


def header_key(header: str) -> str:
    return " ".join(header.lower().replace("_", " ").split()).strip("\"' ")


def mapping_guess(*, handler: ItemHandler, headers: list[str]) -> dict[str, str]:
    """{column index: field name} for the headers that name a field; each field once, the
    first column wins. "Deal - Title" on a deal import also matches "title": Pipedrive's
    exports prefix every column with its item kind."""
    aliases: dict[str, str] = {}
    for item in handler.fields:
        aliases.setdefault(item.name.replace("_", " "), item.name)
        for alias in item.aliases:
            aliases.setdefault(alias, item.name)
    prefix = f"{handler.kind} - "
    guessed: dict[str, str] = {}
    used: set[str] = set()
    for index, header in enumerate(headers):
        key = header_key(header)
        name = aliases.get(key)
        if name is None and key.startswith(prefix):
            name = aliases.get(key[len(prefix) :])
        if name is not None and name not in used:
            guessed[str(index)] = name
            used.add(name)
    return guessed
