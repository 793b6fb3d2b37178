"""Item access as the pages answer it: a missing item, or another company's, is 404; an item
of the same company that the user may not see is 403 (as Pipedrive answers)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import PermissionDenied
from django.http import Http404

from crm.access import ItemForbidden, ItemNotFound


@contextmanager
def page_access() -> Iterator[None]:
    """Wrap an `access_<entity>` call: its refusals become the page's 404 or 403."""
    try:
        yield
    except ItemNotFound:
        raise Http404 from None
    except ItemForbidden:
        raise PermissionDenied from None
