"""How the contacts API answers a refused access or write.

`crm.access` raises `ItemNotFound` (not in your company, or deleted) and `ItemForbidden` (in
your company but hidden from you); the API answers 404 and 403, as Pipedrive does. v1 names
the address fields `email` / `phone` where the services (and v2) say `emails` / `phones`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.utils.translation import gettext as _
from rest_framework import exceptions

from crm.access import ItemForbidden, ItemNotFound
from crm.services import ServiceError

V1_FIELD_NAMES = {"emails": "email", "phones": "phone"}


@contextmanager
def answering(*, noun: str, v1: bool = False) -> Iterator[None]:
    """Turn access refusals into 404 / 403 naming `noun` ("Person"), and, for v1, rename the
    fields of service errors."""
    try:
        yield
    except ItemNotFound:
        raise exceptions.NotFound(_("%(noun)s not found.") % {"noun": noun}) from None
    except ItemForbidden:
        raise exceptions.PermissionDenied(
            _("You do not have permission to access this %(noun)s.") % {"noun": noun.lower()}
        ) from None
    except ServiceError as exc:
        if v1 and exc.field in V1_FIELD_NAMES:
            raise ServiceError(exc.message, field=V1_FIELD_NAMES[exc.field]) from exc
        raise
