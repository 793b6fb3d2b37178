"""Users' time zones (User.timezone, an IANA name): which names are valid, the list the
Preferences page offers, and the zone to show a user's times in.

Every name `zoneinfo` knows is valid (a stored legacy name such as "US/Eastern" keeps working);
the list offered leaves out the legacy aliases and groups the rest by region, so a person finds
their city in a short, ordered list."""

from __future__ import annotations

import datetime
import functools
import zoneinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crm.models import User

DEFAULT = "UTC"
# The regions of the current names of the tz database; the others ("US/…", "Etc/…", "EST5EDT")
# are aliases kept for old data.
REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)


@functools.cache
def known_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_known(name: str) -> bool:
    return name in known_names()


def zone_of(user: User) -> datetime.tzinfo:
    """The zone to show this user's times in and to read the times they type in: their
    choice, UTC when unset or unknown to this machine."""
    name = user.timezone or DEFAULT
    if not is_known(name):
        return datetime.UTC
    return zoneinfo.ZoneInfo(name)


def utc_offset(name: str, at: datetime.datetime) -> str:
    """The offset from UTC at that moment (daylight saving changes it): Asia/Kolkata is
    "+05:30"."""
    offset = at.astimezone(zoneinfo.ZoneInfo(name)).utcoffset() or datetime.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _place(name: str) -> str:
    """The place of a zone, for people: America/Argentina/Buenos_Aires is
    "Argentina / Buenos Aires"."""
    return " / ".join(part.replace("_", " ") for part in name.split("/")[1:])


def choices(
    *, at: datetime.datetime, keep: str = ""
) -> list[tuple[str, str] | tuple[str, list[tuple[str, str]]]]:
    """The choices of a select: UTC first, then each region's places in alphabetical order,
    labelled by place first ("Berlin (UTC+01:00)"), so typing a city's first letters in the
    select finds it. `keep`, a valid name outside that list (a legacy alias someone chose
    before), is offered too, so showing the form does not change it."""
    grouped: dict[str, list[tuple[str, str]]] = {region: [] for region in REGIONS}
    for name in known_names():
        region = name.split("/", 1)[0]
        if region in grouped and "/" in name:
            grouped[region].append((name, f"{_place(name)} (UTC{utc_offset(name, at)})"))
    result: list[tuple[str, str] | tuple[str, list[tuple[str, str]]]] = [
        (DEFAULT, f"UTC (UTC{utc_offset(DEFAULT, at)})")
    ]
    listed = {DEFAULT}
    for region in REGIONS:
        entries = sorted(grouped[region], key=lambda entry: entry[1].casefold())
        listed.update(name for name, _ in entries)
        result.append((region, entries))
    if keep and keep not in listed and is_known(keep):
        result.insert(1, (keep, f"{keep} (UTC{utc_offset(keep, at)})"))
    return result
