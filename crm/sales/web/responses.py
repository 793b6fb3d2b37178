"""Answers shared by the deal, lead and project pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse


def htmx_redirect(request: HttpRequest, url: str) -> HttpResponse:
    """After a write: a full navigation, also when the form was posted by htmx into a dialog."""
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


def email_slot_url(*, kind: str, item_id: object) -> str | None:
    """Where the Email tab loads its content from. The Sales Inbox owns that URL; until it
    exists the tab shows its empty state and no request is made."""
    try:
        return reverse("inbox_item_emails", kwargs={"kind": kind, "item_id": item_id})
    except NoReverseMatch:
        return None
