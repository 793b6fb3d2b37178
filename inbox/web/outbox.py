"""The outbox in the Sales Inbox (B4; decision 0012): the Scheduled folder and the Outbox, where
a message that was not sent, or may have been, waits for the user's word.

- `GET inbox/scheduled`: messages queued for a chosen time, next to leave first.
- `GET inbox/outbox`: what needs the user (not sent: failed; maybe sent: uncertain), what is
  being tried again after passing trouble, and what was cancelled in the last week.
- `POST inbox/outbox/<id>/cancel` (take a waiting message off; with `edit=1`, then open it in
  the composer), `.../retry` (send a failed or cancelled message again as it was),
  `.../send-again` and `.../mark-sent` (the user's answer for a maybe-sent one). "Edit" of a
  message that was not sent opens the composer with `?retry=<id>`: the draft it was sent from
  opens again, or a new draft takes it over (`drafts.draft_from_outbound`); sending that
  draft queues a new message.

`<id>` is the message's id, as everywhere in `inbox.sending`. Both pages take the mailbox's
`account` choice ("" all, an id, `team`). Times are shown in the user's time zone
(Preferences). Reads go through `inbox.outbox_selectors` (built on `sending.outbound_list`),
changes through `inbox.sending`: a message of a mailbox the user does not read is a 404."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import NoReverseMatch, URLPattern, URLResolver, path, reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from crm import timezones
from crm.services import ServiceError
from crm.web.permissions import MemberRequest, member_required
from inbox import outbox_selectors, selectors, sending
from inbox.models import AccountKind, OutboundState
from inbox.outbox_selectors import OutboxEntry, Section

if TYPE_CHECKING:
    from inbox.models import MailAccount

_ID = re.compile(r"[0-9]{1,18}")
PAGES = ("scheduled", "outbox")
COMPOSE_PATH = "/inbox/compose"

_SECTION_TITLES = {
    Section.SCHEDULED: gettext_lazy("Scheduled"),
    Section.NEEDS_YOU: gettext_lazy("Needs you"),
    Section.RETRYING: gettext_lazy("Trying again"),
    Section.CANCELLED: gettext_lazy("Cancelled in the last week"),
}
_SECTION_EMPTY = {
    Section.SCHEDULED: gettext_lazy(
        "Nothing is scheduled. Choose “Send later” in the composer to send a message at a "
        "time of your choice."
    ),
    Section.NEEDS_YOU: gettext_lazy("Every message went out. Nothing needs you."),
    Section.RETRYING: None,
    Section.CANCELLED: None,
}
_ROLE_NAMES = {"to": gettext_lazy("To"), "cc": gettext_lazy("Cc"), "bcc": gettext_lazy("Bcc")}


def compose_url(**params: str) -> str:
    """The composer's address with its query (inbox/web/compose.py reads it)."""
    try:
        base = reverse("inbox_compose")
    except NoReverseMatch:
        base = COMPOSE_PATH
    return f"{base}?{urlencode(params)}"


# --- The mailboxes chosen ------------------------------------------------------------------------


def _account_choice(data: QueryDict) -> str:
    account = data.get("account", "")
    return account if account == "team" or _ID.fullmatch(account) else ""


def _chosen(accounts: list[MailAccount], choice: str) -> list[MailAccount]:
    if choice == "team":
        return [account for account in accounts if account.kind == AccountKind.TEAM]
    if choice:
        return [account for account in accounts if str(account.pk) == choice]
    return accounts


def page_url(page: str, account: str = "") -> str:
    url = reverse(f"inbox_{page}")
    return f"{url}?{urlencode({'account': account})}" if account else url


# --- Rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """A button of a row: a POST to `url_name`, or a link when `href` is set."""

    name: str
    label: str
    url_name: str = ""
    href: str = ""
    primary: bool = False
    confirm: str = ""
    edit: bool = False  # cancel, then open the composer


@dataclass(frozen=True)
class Row:
    message_id: int
    subject: str
    snippet: str
    recipients: list[tuple[str, list[outbox_selectors.Recipient]]]  # ("To", [...]), ("Cc", ...)
    account: str
    team_account: bool
    state: str
    state_label: str
    reason: str
    failed_recipients: list[str]
    when_label: str
    when: datetime | None
    scheduled_for: datetime | None  # the chosen time, when a retry moved the next try past it
    actions: list[Action]


def _reason(entry: OutboxEntry, section: Section) -> str:
    """The state in plain words. mailsync writes `last_error` for the user; these are the
    words for a state it has nothing to add to."""
    outbound = entry.outbound
    if section == Section.SCHEDULED:
        if outbound.last_error:
            return _("Put off by passing trouble; it is tried again by itself. %(error)s") % {
                "error": outbound.last_error
            }
        return ""
    if section == Section.CANCELLED:
        return _("Cancelled before it left: nobody got it.")
    if outbound.last_error:
        return outbound.last_error
    if outbound.state == OutboundState.UNCERTAIN:
        return _(
            "We can't tell whether this message went out. Ask a recipient whether it arrived, "
            "then send it again or mark it as sent."
        )
    if outbound.state == OutboundState.FAILED:
        return _("The mail server did not take it. Edit it and send it again.")
    return ""


def _actions(entry: OutboxEntry, section: Section, back: str) -> list[Action]:
    message_id = str(entry.outbound.message_id)
    edit = Action("edit", _("Edit"), href=compose_url(retry=message_id, next=back))
    if section == Section.SCHEDULED:
        return [
            Action("edit", _("Edit"), "inbox_outbox_cancel", edit=True),
            Action(
                "cancel",
                _("Cancel"),
                "inbox_outbox_cancel",
                confirm=_("Cancel this message? It will not be sent."),
            ),
        ]
    if section == Section.RETRYING:
        return [
            Action(
                "cancel",
                _("Cancel"),
                "inbox_outbox_cancel",
                confirm=_("Cancel this message? It will not be sent."),
            )
        ]
    if entry.outbound.state == OutboundState.UNCERTAIN:
        return [
            Action(
                "send_again",
                _("Send it again"),
                "inbox_outbox_send_again",
                primary=True,
                confirm=_(
                    "Send it again? If the first one did arrive, recipients get it twice "
                    "(many mail apps show it once)."
                ),
            ),
            Action("mark_sent", _("It arrived: mark as sent"), "inbox_outbox_mark_sent"),
        ]
    if section == Section.CANCELLED:
        return [Action("retry", _("Send now"), "inbox_outbox_retry"), edit]
    return [Action("retry", _("Try again"), "inbox_outbox_retry", primary=True), edit]


def _when(entry: OutboxEntry, section: Section) -> tuple[str, datetime | None]:
    outbound = entry.outbound
    if section == Section.SCHEDULED:
        return _("Goes"), outbound.not_before or outbound.send_at
    if section == Section.RETRYING:
        return _("Next try"), outbound.not_before
    if section == Section.CANCELLED:
        return _("Cancelled"), outbound.updated_at
    return _("Last tried"), outbound.last_attempt_at or outbound.updated_at


def _row(entry: OutboxEntry, section: Section, back: str) -> Row:
    outbound, message = entry.outbound, entry.outbound.message
    when_label, when = _when(entry, section)
    scheduled_for = None
    if section == Section.SCHEDULED and outbound.send_at and when and when > outbound.send_at:
        scheduled_for = outbound.send_at
    recipients = [
        (str(_ROLE_NAMES[role]), [r for r in entry.recipients if r.role == role])
        for role in ("to", "cc", "bcc")
    ]
    state_label = (
        _("Scheduled")
        if section == Section.SCHEDULED
        else _("Trying again")
        if section == Section.RETRYING
        else str(OutboundState(outbound.state).label)
    )
    return Row(
        message_id=outbound.message_id,
        subject=message.subject,
        snippet=message.snippet,
        recipients=[(name, found) for name, found in recipients if found],
        account=outbound.account.email_address,
        team_account=outbound.account.kind == AccountKind.TEAM,
        state=outbound.state,
        state_label=state_label,
        reason=_reason(entry, section),
        failed_recipients=list(outbound.failed_recipients),
        when_label=when_label,
        when=when,
        scheduled_for=scheduled_for,
        actions=_actions(entry, section, back),
    )


# --- Pages ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShownSection:
    key: str
    title: str
    rows: list[Row]
    total: int
    empty: str | None


def _page(request: MemberRequest, page: str) -> HttpResponse:
    choice = _account_choice(request.GET)
    accounts = selectors.mailbox_accounts(membership=request.membership)
    account_ids = [account.pk for account in _chosen(accounts, choice)]
    back = page_url(page, choice)
    keys = (
        [Section.SCHEDULED]
        if page == "scheduled"
        else [Section.NEEDS_YOU, Section.RETRYING, Section.CANCELLED]
    )
    sections = []
    for key in keys:
        found = outbox_selectors.outbox_entries(
            membership=request.membership, section=key, account_ids=account_ids
        )
        empty = _SECTION_EMPTY[key]
        if not found.entries and empty is None:
            continue  # a section with nothing to say is left out
        sections.append(
            ShownSection(
                key=key.value,
                title=str(_SECTION_TITLES[key]),
                rows=[_row(entry, key, back) for entry in found.entries],
                total=found.total,
                empty=str(empty) if empty is not None else None,
            )
        )
    context: dict[str, Any] = {
        "page": page,
        "account": choice,
        "accounts": accounts,
        "chosen_account": next((a for a in accounts if str(a.pk) == choice), None),
        "counts": outbox_selectors.outbox_counts(
            membership=request.membership, account_ids=account_ids
        ),
        "sections": sections,
        "back": back,
        "zone_name": str(timezones.zone_of(request.user)),
        "scheduled_url": page_url("scheduled", choice),
        "outbox_url": page_url("outbox", choice),
        "inbox_url": reverse("inbox") + (f"?{urlencode({'account': choice})}" if choice else ""),
    }
    # Times in the user's zone, whatever the request's: `date` filters convert to the current one.
    with timezone.override(timezones.zone_of(request.user)):
        return render(request, "inbox/outbox.html", context)


@require_GET
@member_required
def scheduled(request: MemberRequest) -> HttpResponse:
    return _page(request, "scheduled")


@require_GET
@member_required
def outbox(request: MemberRequest) -> HttpResponse:
    return _page(request, "outbox")


# --- Acting on a message -------------------------------------------------------------------------

_DONE: dict[str, tuple[Callable[..., Any], str | Promise]] = {
    "cancel": (
        sending.outbound_cancel,
        gettext_lazy(
            "Cancelled: it will not be sent. It stays in the Outbox under “Cancelled” for a "
            "week, to edit and send after all."
        ),
    ),
    "retry": (sending.outbound_retry, gettext_lazy("It goes again in a moment.")),
    "send_again": (sending.outbound_send_again, gettext_lazy("It is sent again in a moment.")),
    "mark_sent": (
        sending.outbound_mark_sent,
        gettext_lazy("Marked as sent. It joins its conversation and your Sent folder shortly."),
    ),
}


def _back(data: QueryDict) -> str:
    page = data.get("page", "")
    return page_url(page if page in PAGES else "outbox", _account_choice(data))


@require_POST
@member_required
def outbox_act(request: MemberRequest, message_id: int, action: str) -> HttpResponse:
    """One of the outbox's services on one message; back to the page it was pressed on (or,
    for "Edit" of a scheduled message, on to the composer once it is off the schedule)."""
    if sending.access_outbound(membership=request.membership, message_id=message_id) is None:
        raise Http404(_("No message with this id in your outbox."))
    service, done = _DONE[action]
    back = _back(request.POST)
    try:
        service(membership=request.membership, message_id=message_id)
    except ServiceError as error:
        messages.error(request, error.message)
        return HttpResponseRedirect(back)
    if action == "cancel" and request.POST.get("edit") == "1":
        return HttpResponseRedirect(compose_url(retry=str(message_id), next=back))
    messages.success(request, str(done))
    return HttpResponseRedirect(back)


urlpatterns: list[URLPattern | URLResolver] = [
    path("inbox/scheduled", scheduled, name="inbox_scheduled"),
    path("inbox/outbox", outbox, name="inbox_outbox"),
    path(
        "inbox/outbox/<int:message_id>/cancel",
        outbox_act,
        {"action": "cancel"},
        name="inbox_outbox_cancel",
    ),
    path(
        "inbox/outbox/<int:message_id>/retry",
        outbox_act,
        {"action": "retry"},
        name="inbox_outbox_retry",
    ),
    path(
        "inbox/outbox/<int:message_id>/send-again",
        outbox_act,
        {"action": "send_again"},
        name="inbox_outbox_send_again",
    ),
    path(
        "inbox/outbox/<int:message_id>/mark-sent",
        outbox_act,
        {"action": "mark_sent"},
        name="inbox_outbox_mark_sent",
    ),
]
