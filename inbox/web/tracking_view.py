"""What the salesperson sees of a tracked message in an opened conversation (E2): one line
("Opened 3 times, last 2 hours ago · 1 link click"), the timeline of opens and clicks behind a
disclosure (time in the user's zone, which link, client and device, who it was from), and what
an open means and does not.

One read for the whole conversation (`inbox.tracking.message_tracking`, which checks
visibility): the page's messages' summaries with their events, not a query per message. A
message that is not ours, or was sent untracked, has no summary and shows nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from crm.templatetags.user_time import ago_text
from inbox import tracking
from inbox.models import TrackingKind, TrackingSource

if TYPE_CHECKING:
    from crm.models import Membership

_DEVICES = {
    "desktop": gettext_lazy("computer"),
    "mobile": gettext_lazy("phone"),
    "tablet": gettext_lazy("tablet"),
}


class _Event(Protocol):
    """An open or click as `inbox.tracking` reads it (the columns of MailTrackingEvent)."""

    @property
    def kind(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def link_number(self) -> int | None: ...
    @property
    def url(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def client(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def source_detail(self) -> str: ...


@dataclass(frozen=True)
class TimelineEntry:
    occurred_at: datetime
    kind: str  # open | click
    action: str  # "Opened", "Clicked link 2"
    url: str  # a click's address
    recipient: str  # per-recipient copies: whose
    client: str  # "Apple Mail · mobile"
    source: str  # person | machine | scanner | sender: the badge's style
    badge: str  # "Recipient", "Machine open", "Link scanner", "You"
    detail: str  # why it is not the recipient's, in words (translated)

    @property
    def url_is_web(self) -> bool:
        """Shown as a link only when it is a web address (the stored links are; say it)."""
        return self.url.lower().startswith(("https://", "http://"))


@dataclass(frozen=True)
class MessageTracking:
    """The tracking of one message of ours, as the conversation shows it."""

    line: str
    opened: bool  # by a person: the eye
    clicked: bool  # by a person: the cursor
    timeline: list[TimelineEntry]  # newest first


def _client(event: _Event) -> str:
    device = str(_DEVICES.get(event.device, event.device))
    return " · ".join(part for part in (event.client, device) if part)


def _entry(event: _Event) -> TimelineEntry:
    if event.kind == TrackingKind.CLICK:
        number = event.link_number
        action = _("Clicked link %(n)s") % {"n": number + 1} if number is not None else ""
        action = action or _("Clicked a link")
    else:
        action = str(TrackingKind.OPEN.label)
    try:
        badge = str(TrackingSource(event.source).label)
    except ValueError:
        badge = event.source
    return TimelineEntry(
        occurred_at=event.occurred_at,
        kind=event.kind,
        action=action,
        url=event.url if event.kind == TrackingKind.CLICK else "",
        recipient=event.recipient,
        client=_client(event),
        source=event.source,
        badge=badge,
        # Stored untranslated by the classifier (tracking.classify), translated here.
        detail=_(event.source_detail) if event.source_detail else "",
    )


def tracking_line(
    *,
    track_opens: bool,
    track_links: bool,
    open_count: int,
    machine_open_count: int,
    last_open: datetime | None,
    click_count: int,
    now: datetime,
) -> str:
    """The summary in words, counting the recipients' opens and clicks only."""
    parts: list[str] = []
    if track_opens:
        if open_count and last_open is not None:
            parts.append(
                ngettext(
                    "Opened once, %(ago)s",
                    "Opened %(count)d times, last %(ago)s",
                    open_count,
                )
                % {"count": open_count, "ago": ago_text(last_open, now)}
            )
        elif open_count:
            parts.append(
                ngettext("Opened once", "Opened %(count)d times", open_count)
                % {"count": open_count}
            )
        elif machine_open_count:
            parts.append(_("Machine opens only: see below"))
        else:
            parts.append(_("Not opened yet"))
        if open_count and machine_open_count:
            parts.append(
                ngettext("%(count)d machine open", "%(count)d machine opens", machine_open_count)
                % {"count": machine_open_count}
            )
    if track_links:
        if click_count:
            parts.append(
                ngettext("%(count)d link click", "%(count)d link clicks", click_count)
                % {"count": click_count}
            )
        else:
            parts.append(_("No link clicks yet"))
    return " · ".join(parts)


def messages_tracking(
    *, membership: Membership, message_ids: Sequence[int]
) -> dict[int, MessageTracking]:
    """Message id → its tracking, for the tracked messages of ours among `message_ids` that the
    member may see: one read whatever their number."""
    if not message_ids:
        return {}
    summaries = tracking.message_tracking(membership=membership, message_ids=list(message_ids))
    now = timezone.now()
    shown: dict[int, MessageTracking] = {}
    for message_id, summary in summaries.items():
        events: list[_Event] = sorted(
            summary.events, key=lambda event: event.occurred_at, reverse=True
        )
        person_opens = [
            event.occurred_at
            for event in events
            if event.kind == TrackingKind.OPEN and event.source == TrackingSource.PERSON
        ]
        last_open = max(person_opens, default=None) or summary.opened_at
        shown[message_id] = MessageTracking(
            line=tracking_line(
                track_opens=summary.track_opens,
                track_links=summary.track_links,
                open_count=summary.open_count,
                machine_open_count=summary.machine_open_count,
                last_open=last_open,
                click_count=summary.click_count,
                now=now,
            ),
            opened=summary.open_count > 0,
            clicked=summary.click_count > 0,
            timeline=[_entry(event) for event in events],
        )
    return shown
