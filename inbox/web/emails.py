"""The Email tab of the person, organization, deal, lead and project pages (C4), a conversation
opened in place there, and its links (C3) and sharing (D3).

- `GET items/<kind>/<id>/emails[?page=N]`: the item's conversations, each once, newest first,
  20 a page; a later page answers with its rows only, for "Show older".
- `GET mail/threads/<id>`: one conversation, its messages oldest first (each body in a
  sandboxed frame), and its linking panel.
- `GET mail/threads/<id>/link-options?q=`: the deals, leads and projects to link it to.
- `POST mail/threads/<id>/link` (`target=deal:<id>|lead:<uuid>|project:<id>|none`) and
  `POST mail/threads/<id>/sharing` (`sharing=shared|private|team`).

Reads go through `inbox.selectors` (which start from `inbox.visibility`), changes through
`inbox.services.thread_update`. A conversation the user may not see is a 404, the same answer
as one that does not exist; one they read on an item without reading its mailbox is theirs to
read, not to change (403). An item they may not see is a 403 when it exists, as in the API."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from contacts.models import Organization, Person
from crm import access
from crm.access import ItemKind
from crm.sales import selectors as sales_selectors
from crm.sales.models import Deal, Lead, Project
from crm.services import ServiceError
from crm.web.permissions import MemberRequest, member_required
from inbox import selectors, services, visibility
from inbox.models import SHARING_BY_KIND, Sharing
from inbox.web.tracking_view import MessageTracking, messages_tracking

if TYPE_CHECKING:  # names of types only: every read goes through inbox.selectors
    from datetime import datetime

    from inbox.models import MailAttachment, MailMessage, MailThread

PAGE_SIZE = 20
OPTIONS_LIMIT = 10  # per kind of item, in the link picker
SENDERS_SHOWN = 3

_ITEM_MODELS: dict[str, type[Any]] = {
    ItemKind.PERSON: Person,
    ItemKind.ORGANIZATION: Organization,
    ItemKind.DEAL: Deal,
    ItemKind.LEAD: Lead,
    ItemKind.PROJECT: Project,
}
_NUMBER = re.compile(r"[0-9]{1,18}")

# The items a conversation links to: the detail page of each, and its name in the panel.
_LINK_KINDS: dict[str, tuple[str, Any]] = {
    "deal": ("deal_detail", gettext_lazy("Deal")),
    "lead": ("lead_detail", gettext_lazy("Lead")),
    "project": ("project_detail", gettext_lazy("Project")),
}
_SHARING_HELP = {
    Sharing.SHARED: gettext_lazy(
        "Shows on the linked deal, lead, project and contacts to everyone who may see them."
    ),
    Sharing.PRIVATE: gettext_lazy("Only you see it, in your mailbox and on the linked items."),
    Sharing.TEAM: gettext_lazy("Only the members of this team mailbox see it."),
}


def notice(request: MemberRequest, message: str, *, status: int) -> HttpResponse:
    """A refusal as a fragment: htmx swaps error answers in too, so a full error page would land
    inside the tab."""
    return render(request, "inbox/_notice.html", {"message": message}, status=status)


def not_found(request: MemberRequest) -> HttpResponse:
    return notice(request, _("This conversation is not there, or not yours to see."), status=404)


def _sharing_badge(thread: MailThread) -> str:
    """Said only when the conversation is not shared: Private or Team only."""
    if thread.sharing == Sharing.SHARED:
        return ""
    return str(Sharing(thread.sharing).label)


# --- Linked items as this user may see them ----------------------------------------------------


@dataclass(frozen=True)
class LinkedItem:
    """The deal, lead or project a conversation is linked to. `title` and `url` are empty when
    the user may not see the item: that it exists is all they learn."""

    kind: str
    noun: str
    title: str
    url: str


def linked_items(request: MemberRequest, threads: list[MailThread]) -> dict[int, LinkedItem]:
    """Thread id → its linked item: one query per kind of item linked, whatever the count."""
    wanted: dict[str, set[Any]] = {kind: set() for kind in _LINK_KINDS}
    for thread in threads:
        for kind in _LINK_KINDS:
            item_id = getattr(thread, f"{kind}_id")
            if item_id is not None:
                wanted[kind].add(item_id)
    seen: dict[str, set[Any]] = {}
    for kind, ids in wanted.items():
        if not ids:
            seen[kind] = set()
            continue
        live: QuerySet[Any] = (
            _ITEM_MODELS[kind]
            .objects.for_company(request.company)
            .filter(pk__in=ids, deleted_at__isnull=True)
        )
        visible = access.visible_items(live, membership=request.membership)
        seen[kind] = set(visible.values_list("pk", flat=True))
    result: dict[int, LinkedItem] = {}
    for thread in threads:
        for kind, (url_name, noun) in _LINK_KINDS.items():
            item_id = getattr(thread, f"{kind}_id")
            if item_id is None:
                continue
            if item_id in seen[kind]:
                item = getattr(thread, kind)
                result[thread.pk] = LinkedItem(
                    kind, str(noun), item.title, reverse(url_name, args=[item_id])
                )
            else:
                result[thread.pk] = LinkedItem(kind, str(noun), "", "")
            break
    return result


# --- The Email tab -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationRow:
    thread: MailThread
    senders: str
    link: LinkedItem | None

    @property
    def sharing_badge(self) -> str:
        return _sharing_badge(self.thread)


def _party_name(party: selectors.Party) -> str:
    return party.person_name or party.name or party.address


def senders_text(parties: list[tuple[selectors.Party, int]]) -> str:
    """Who wrote in the conversation, first sender first: "Pat, Alice +2"."""
    names: list[str] = []
    for party, _when in sorted(parties, key=lambda item: item[1]):
        if party.role == "from" and _party_name(party) not in names:
            names.append(_party_name(party))
    if not names:
        return ""
    shown = ", ".join(names[:SENDERS_SHOWN])
    if len(names) > SENDERS_SHOWN:
        shown += f" +{len(names) - SENDERS_SHOWN}"
    return shown


def _item_key(kind: str, raw: str) -> int | str | None:
    """The item's id as its table keys it (a UUID for leads, a number for the others); None
    when `raw` cannot be one."""
    if kind == ItemKind.LEAD:
        try:
            return str(uuid.UUID(raw))
        except ValueError:
            return None
    return int(raw) if _NUMBER.fullmatch(raw) else None


def _page_number(raw: str | None) -> int:
    """`?page=`, 1 when absent or absurd (the offset must stay a number PostgreSQL takes)."""
    return int(raw) if raw and re.fullmatch(r"[0-9]{1,6}", raw) and int(raw) > 0 else 1


@require_GET
@member_required
def item_emails(request: MemberRequest, kind: str, item_id: str) -> HttpResponse:
    key = _item_key(kind, item_id) if kind in _ITEM_MODELS else None
    if key is None:
        return notice(request, _("This item is not there."), status=404)
    live: QuerySet[Any] = (
        _ITEM_MODELS[kind].objects.for_company(request.company).filter(deleted_at__isnull=True)
    )
    try:
        access.access_item(live, membership=request.membership, item_id=key)
    except access.ItemNotFound:
        return notice(request, _("This item is not there."), status=404)
    except access.ItemForbidden:
        return notice(request, _("You may not see this item's conversations."), status=403)

    page = _page_number(request.GET.get("page"))
    start = (page - 1) * PAGE_SIZE
    conversations = selectors.item_conversations(
        membership=request.membership, kind=kind, item_id=key, offset=start, limit=PAGE_SIZE
    )
    threads = conversations.threads
    more = conversations.total > start + PAGE_SIZE
    parties = selectors.thread_parties(
        company=request.company, thread_ids=[thread.pk for thread in threads]
    )
    links = linked_items(request, threads)
    rows = [
        ConversationRow(thread, senders_text(parties.get(thread.pk, [])), links.get(thread.pk))
        for thread in threads
    ]
    url = reverse("inbox_item_emails", kwargs={"kind": kind, "item_id": item_id})
    context: dict[str, Any] = {
        "rows": rows,
        "older_url": f"{url}?page={page + 1}" if more else "",
    }
    if page > 1:
        return render(request, "inbox/_item_emails_rows.html", context)
    context["total"] = conversations.total
    context["compose_url"] = _compose_url(request, kind, key)
    return render(request, "inbox/_item_emails.html", context)


def _compose_url(request: MemberRequest, kind: str, key: object) -> str:
    """ "+ New email" from the item's page: to its person, linked to it; back to the page.
    Shown to everyone: the composer tells a user without a mailbox how to connect one."""
    back = request.headers.get("HX-Current-URL") or request.META.get("HTTP_REFERER") or ""
    query = {kind: str(key)}
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        query["next"] = urlsplit(back).path
    return f"{reverse('inbox_compose')}?{urlencode(query)}"


# --- One conversation, opened in place --------------------------------------------------------


@dataclass(frozen=True)
class MessageView:
    message: MailMessage
    sender: str
    to: str
    cc: str
    attachments: list[MailAttachment]
    tracking: MessageTracking | None = None  # a tracked message of ours (E2)

    @property
    def time(self) -> datetime:
        return self.message.sent_at or self.message.received_at


def _addresses(parties: list[selectors.Party], role: str) -> str:
    shown = []
    for party in parties:
        if party.role != role:
            continue
        name = party.person_name or party.name
        shown.append(f"{name} <{party.address}>" if name else party.address)
    return ", ".join(shown)


def thread_context(request: MemberRequest, thread: MailThread) -> dict[str, Any]:
    messages = selectors.thread_messages(company=request.company, thread=thread)
    facts = selectors.message_facts(
        company=request.company,
        account_id=thread.account_id,
        message_ids=[message.pk for message in messages],
    )
    files = selectors.thread_attachments(membership=request.membership, thread_id=thread.pk)
    tracked = messages_tracking(
        membership=request.membership, message_ids=[message.pk for message in messages]
    )
    views = []
    for message in messages:
        parties = facts.parties.get(message.pk, [])
        views.append(
            MessageView(
                message=message,
                sender=_addresses(parties, "from")
                or (
                    f"{message.from_name} <{message.from_address}>"
                    if message.from_name
                    else message.from_address
                ),
                to=_addresses(parties, "to"),
                cc=_addresses(parties, "cc"),
                attachments=files.get(message.pk, []),
                tracking=tracked.get(message.pk),
            )
        )
    return {"messages": views, **panel_context(request, thread)}


def panel_context(request: MemberRequest, thread: MailThread, error: str = "") -> dict[str, Any]:
    manage = visibility.can_manage(membership=request.membership, thread=thread)
    alternatives: list[Deal] = []
    sharing_choices: list[tuple[str, str, str]] = []
    if manage:  # the controls are for the mailbox's users; others read the links only
        alternatives = selectors.deal_alternatives(membership=request.membership, thread=thread)
        sharing_choices = [
            (choice.value, str(choice.label), str(_SHARING_HELP[choice]))
            for choice in SHARING_BY_KIND[thread.account.kind]
        ]
    return {
        "thread": thread,
        "link": linked_items(request, [thread]).get(thread.pk),
        "manage": manage,
        "alternatives": alternatives,
        "sharing_choices": sharing_choices,
        "sharing_badge": _sharing_badge(thread),
        "sharing_help": _SHARING_HELP[Sharing(thread.sharing)],
        "error": error,
    }


@require_GET
@member_required
def thread_detail(request: MemberRequest, thread_id: int) -> HttpResponse:
    thread = selectors.access_thread(membership=request.membership, thread_id=thread_id)
    if thread is None:
        return not_found(request)
    return render(request, "inbox/_thread.html", thread_context(request, thread))


@require_GET
@member_required
def link_options(request: MemberRequest, thread_id: int) -> HttpResponse:
    """The picker's options: deals, leads and projects the user may see whose title holds `q`."""
    thread = selectors.access_thread(membership=request.membership, thread_id=thread_id)
    if thread is None:
        return not_found(request)
    term = (request.GET.get("q") or "").strip()
    groups: list[tuple[str, str, list[tuple[str, str]]]] = []
    if term:
        membership = request.membership
        deals = sales_selectors.deal_list(
            membership=membership, filters=sales_selectors.DealFilters(term=term)
        ).order_by("title", "id")
        leads = sales_selectors.lead_list(
            membership=membership, filters=sales_selectors.LeadFilters(term=term)
        ).order_by("title", "id")
        projects = sales_selectors.project_list(
            membership=membership, filters=sales_selectors.ProjectFilters(term=term)
        ).order_by("title", "id")
        for noun, kind, items in (
            (_("Deals"), "deal", deals),
            (_("Leads"), "lead", leads),
            (_("Projects"), "project", projects),
        ):
            kind_noun = str(_LINK_KINDS[kind][1])
            # values_list: the title is all the picker shows, so no labels or links are loaded.
            found = [
                (f"{kind}:{pk}", title)
                for pk, title in items.values_list("pk", "title")[:OPTIONS_LIMIT]
            ]
            if found:
                groups.append((noun, kind_noun, found))
    return render(
        request,
        "inbox/_link_options.html",
        {"thread": thread, "groups": groups, "term": term},
    )


def _target_changes(target: str) -> services.ThreadChanges | None:
    """`deal:12`, `lead:<uuid>`, `project:3` or `none` → the link change; None when malformed."""
    if target == "none":
        return services.ThreadChanges(deal_id=None, lead_id=None, project_id=None)
    kind, _sep, raw = target.partition(":")
    if kind == "lead":
        try:
            return services.ThreadChanges(lead_id=str(uuid.UUID(raw)))
        except ValueError:
            return None
    if kind in ("deal", "project") and _NUMBER.fullmatch(raw):
        if kind == "deal":
            return services.ThreadChanges(deal_id=int(raw))
        return services.ThreadChanges(project_id=int(raw))
    return None


def _thread_change(
    request: MemberRequest, thread_id: int, changes: services.ThreadChanges | None, error: str
) -> HttpResponse:
    """Apply a change from the linking panel; answer with the conversation re-read (and its row
    in the list refreshed), or with the panel and the reason (400)."""
    thread = selectors.access_thread(membership=request.membership, thread_id=thread_id)
    if thread is None:
        return not_found(request)
    if not visibility.can_manage(membership=request.membership, thread=thread):
        return notice(
            request, _("Only the users of this conversation's mailbox can change it."), status=403
        )
    if changes is not None:
        try:
            services.thread_update(membership=request.membership, thread=thread, changes=changes)
        except ServiceError as exc:
            error = exc.message
        else:
            thread = selectors.access_thread(membership=request.membership, thread_id=thread_id)
            if thread is None:  # it cannot hide itself from its own mailbox's user
                return not_found(request)
            context = thread_context(request, thread)
            context["refresh_row"] = True
            return render(request, "inbox/_thread.html", context)
    response = render(
        request, "inbox/_link_panel.html", panel_context(request, thread, error), status=400
    )
    response["HX-Retarget"] = f"#thread-{thread.pk}-links"
    response["HX-Reswap"] = "outerHTML"
    return response


@require_POST
@member_required
def thread_link(request: MemberRequest, thread_id: int) -> HttpResponse:
    changes = _target_changes(request.POST.get("target", ""))
    return _thread_change(
        request, thread_id, changes, _("Choose a deal, lead or project to link to.")
    )


@require_POST
@member_required
def thread_sharing(request: MemberRequest, thread_id: int) -> HttpResponse:
    sharing = request.POST.get("sharing", "")
    changes = services.ThreadChanges(sharing=sharing) if sharing in Sharing.values else None
    return _thread_change(request, thread_id, changes, _("Choose who may see the conversation."))


urlpatterns: list[URLPattern | URLResolver] = [
    path("items/<str:kind>/<str:item_id>/emails", item_emails, name="inbox_item_emails"),
    path("mail/threads/<int:thread_id>", thread_detail, name="inbox_thread"),
    path("mail/threads/<int:thread_id>/link-options", link_options, name="inbox_link_options"),
    path("mail/threads/<int:thread_id>/link", thread_link, name="inbox_thread_link"),
    path("mail/threads/<int:thread_id>/sharing", thread_sharing, name="inbox_thread_sharing"),
]
