"""The app shell's navigation: one list of entries, each naming the URL it opens.

Navigation shows only what exists: an entry appears once its URL name resolves, so the apps of
later issues light up their entry by defining that URL name (`inbox`, `deals`, …) — or, for a
name not listed here, by appending a `NavEntry` to `NAVIGATION` from their AppConfig.ready().
Until then nobody sees an empty page behind a link."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class NavEntry:
    url_name: str
    label: str | Promise
    admin_only: bool = False


@dataclass(frozen=True)
class NavLink:
    label: str | Promise
    url: str
    is_current: bool


NAVIGATION: list[NavEntry] = [
    NavEntry("home", _("Home")),
    NavEntry("inbox", _("Sales Inbox")),
    NavEntry("deals", _("Deals")),
    NavEntry("leads", _("Leads")),
    NavEntry("projects", _("Projects")),
    NavEntry("contacts", _("Contacts")),
    NavEntry("insights", _("Insights")),
    NavEntry("settings", _("Settings")),
]


def nav_links(*, current_path: str, is_admin: bool) -> list[NavLink]:
    """The entries this user may open that exist, with the one the page belongs to marked."""
    links = []
    for entry in NAVIGATION:
        if entry.admin_only and not is_admin:
            continue
        try:
            url = reverse(entry.url_name)
        except NoReverseMatch:
            continue
        links.append(NavLink(entry.label, url, _is_under(current_path, url)))
    return links


def _is_under(path: str, url: str) -> bool:
    # Home ("/") is current only on itself; other sections own the pages below them.
    if url == "/":
        return path == "/"
    return path == url or path.startswith(url.rstrip("/") + "/")
