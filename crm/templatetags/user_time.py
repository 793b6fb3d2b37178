"""Times as the signed-in user reads them: `{% timezone request.user|user_zone %}` around a
block shows its `date` filters in the user's zone (Preferences), whatever the request's; and
`|ago`: "2 hours ago", "just now"."""

from __future__ import annotations

import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from crm import timezones
from crm.models import User

register = template.Library()


@register.filter
def user_zone(user: object) -> datetime.tzinfo:
    """The user's zone; UTC for anyone else (an anonymous user has none)."""
    return timezones.zone_of(user) if isinstance(user, User) else datetime.UTC


def ago_text(when: datetime.datetime, now: datetime.datetime | None = None) -> str:
    """How long ago, in its largest unit only ("2 hours ago"); "just now" within a minute."""
    now = now or timezone.now()
    if (now - when).total_seconds() < 60:
        return _("just now")
    return _("%(time)s ago") % {"time": timesince(when, now, depth=1)}


@register.filter
def ago(when: object) -> str:
    return ago_text(when) if isinstance(when, datetime.datetime) else ""
