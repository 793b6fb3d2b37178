"""The Sales Inbox (B1, B2, B3, B7, B9): the user's mailbox in the browser.

Where the user is lives in the URL, so every state can be linked, reloaded and saved as a view:
`folder` (inbox, drafts, sent, archive, trash, all, or `folder:<id>` of a synced folder),
`account` (empty: all the user's accounts; an id; `team`: the team accounts) and `q` (the search
language of `inbox.mailquery`: words, `from:`, `to:`, `label:`, `has:attachment`, `is:unread`,
`is:linked`, `before:` / `after:`).

- `GET inbox`: the page: folders with unread counts, accounts, labels, saved views, the first
  rows, and the conversation named by `?thread=` opened in the reader.
- `GET inbox/rows?...&after=<cursor>`: the next rows (the list loads them as it scrolls).
- `GET inbox/threads/<id>`: a conversation in the reader (a full page without htmx); opening it
  marks it read.
- `POST inbox/act` (`op`, `thread` ids): archive, unarchive, delete, restore, read, unread;
  answers with the rows to drop or redraw and an "Undo" notice. `POST inbox/undo` undoes it.
- `POST inbox/threads/<id>/labels` (`label`, `on`): a label on or off.
- `GET|POST inbox/labels`, `POST inbox/labels/<id>`, `POST inbox/labels/<id>/delete`.
- `POST inbox/views`, `POST inbox/views/<id>/delete`: saved views.

Reads go through `inbox.selectors` and `inbox.search` (which start from `inbox.visibility`),
changes through `inbox.services`: a conversation outside the user's mailbox is a 404 here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.core import signing
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.models import Label, LabelColor
from crm.services import ServiceError
from crm.web.permissions import MemberRequest, member_required
from inbox import mailquery, outbox_selectors, search, selectors, services
from inbox.models import AccountKind
from inbox.web.emails import (
    LinkedItem,
    linked_items,
    not_found,
    notice,
    senders_text,
    thread_context,
)

if TYPE_CHECKING:
    from contacts.models import Person
    from inbox.models import MailAccount, MailThread, MailView

PAGE_SIZE = 50
PERSON_CHIPS = 2
UNDO_SALT = "inbox.mailbox.undo"
UNDO_MAX_AGE = 15 * 60  # seconds an "Undo" notice stays usable
_ID = re.compile(r"[0-9]{1,18}")
# What each action is called in the notice that offers to undo it.
_DONE = {
    services.MailboxOp.ARCHIVE: "Conversation archived.",
    services.MailboxOp.UNARCHIVE: "Conversation moved to the inbox.",
    services.MailboxOp.DELETE: "Conversation deleted.",
    services.MailboxOp.RESTORE: "Conversation restored.",
    services.MailboxOp.READ: "Marked as read.",
    services.MailboxOp.UNREAD: "Marked as unread.",
}
# Actions after which a conversation leaves the folder it was listed in.
_LEAVES = {
    services.MailboxOp.ARCHIVE: {"inbox"},
    services.MailboxOp.UNARCHIVE: {"archive"},
    services.MailboxOp.DELETE: {"inbox", "archive", "sent", "drafts", "all", "folder"},
    services.MailboxOp.RESTORE: {"trash"},
}


# --- Where the user is ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """A folder, an account choice and a query: what the list shows."""

    folder: str
    account: str  # "" all accounts, "<id>", "team"
    q: str

    @property
    def folder_kind(self) -> str:
        return "folder" if self.folder.startswith("folder:") else self.folder

    def params(self, **extra: str) -> str:
        values = {"folder": self.folder, "account": self.account, "q": self.q, **extra}
        return urlencode({key: value for key, value in values.items() if value})

    def url(self, **extra: str) -> str:
        query = self.params(**extra)
        return reverse("inbox") + (f"?{query}" if query else "")

    def with_query(self, q: str) -> Place:
        return Place(self.folder, self.account, q)


def _place(data: QueryDict) -> Place:
    folder = data.get("folder", "inbox")
    if folder not in search.FOLDERS and not re.fullmatch(r"folder:[0-9]{1,18}", folder):
        folder = "inbox"
    account = data.get("account", "")
    if account != "team" and not _ID.fullmatch(account):
        account = ""
    return Place(folder, account, data.get("q", "").strip()[:1000])


def _chosen_accounts(accounts: list[MailAccount], place: Place) -> list[MailAccount]:
    if place.account == "team":
        return [account for account in accounts if account.kind == AccountKind.TEAM]
    if place.account:
        return [account for account in accounts if str(account.pk) == place.account]
    return accounts


# --- Rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    thread: MailThread
    senders: str
    link: LinkedItem | None
    persons: list[Person]
    labels: list[Label]
    account: str  # shown when the list spans several accounts


def _rows(request: MemberRequest, threads: list[MailThread], *, several: bool) -> list[Row]:
    ids = [thread.pk for thread in threads]
    parties = selectors.thread_parties(company=request.company, thread_ids=ids)
    links = linked_items(request, threads)
    labels = selectors.thread_labels(membership=request.membership, thread_ids=ids)
    persons = selectors.persons_named(
        membership=request.membership,
        person_ids={pk for thread in threads for pk in thread.person_ids[:PERSON_CHIPS]},
    )
    return [
        Row(
            thread=thread,
            senders=senders_text(parties.get(thread.pk, [])),
            link=links.get(thread.pk),
            persons=[persons[pk] for pk in thread.person_ids[:PERSON_CHIPS] if pk in persons],
            labels=labels.get(thread.pk, []),
            account=thread.account.email_address if several else "",
        )
        for thread in threads
    ]


@dataclass(frozen=True)
class Listing:
    rows: list[Row]
    more_url: str
    errors: tuple[str, ...]


def _listing(
    request: MemberRequest, place: Place, accounts: list[MailAccount], after: str = ""
) -> Listing:
    query = mailquery.parse(place.q)
    cursor = search.Cursor.decode(after) if after else None
    chosen = _chosen_accounts(accounts, place)
    page = search.mailbox_page(
        membership=request.membership,
        folder=place.folder,
        account_ids=[account.pk for account in chosen],
        query=query,
        after=cursor,
        limit=PAGE_SIZE,
    )
    threads = selectors.mailbox_threads_by_id(
        membership=request.membership, thread_ids=page.thread_ids
    )
    more = ""
    if page.next_cursor is not None:
        more = reverse("inbox_rows") + "?" + place.params(after=page.next_cursor.encode())
    errors = query.errors + page.errors
    return Listing(_rows(request, threads, several=len(chosen) > 1), more, errors)


# --- Pages ---------------------------------------------------------------------------------------


def _page_context(request: MemberRequest, place: Place) -> dict[str, Any]:
    accounts = selectors.mailbox_accounts(membership=request.membership)
    chosen = _chosen_accounts(accounts, place)
    standard, synced = selectors.mailbox_folders(membership=request.membership, accounts=chosen)
    views: list[MailView] = selectors.mail_views(membership=request.membership)
    return {
        "place": place,
        "accounts": accounts,
        "has_team": any(account.kind == AccountKind.TEAM for account in accounts),
        "standard_folders": [(entry, place.with_query("")) for entry in standard],
        "synced_folders": synced,
        "outbox": outbox_selectors.outbox_counts(
            membership=request.membership, account_ids=[account.pk for account in chosen]
        ),
        "labels": selectors.mail_labels(membership=request.membership),
        "views": views,
        "listing": _listing(request, place, accounts) if accounts else None,
        "filters": _filters(place),
    }


@dataclass(frozen=True)
class Filter:
    label: str
    term: str
    url: str
    active: bool


def _filters(place: Place) -> list[Filter]:
    """One-click filters: each adds its operator to the query, or takes it out again."""
    words = place.q.split()
    result = []
    for label, term in (
        (_("Unread"), "is:unread"),
        (_("Linked"), "is:linked"),
        (_("Not linked"), "is:unlinked"),
        (_("With attachments"), "has:attachment"),
    ):
        active = term in words
        q = " ".join(word for word in words if word != term) if active else f"{place.q} {term}"
        result.append(Filter(label, term, place.with_query(q.strip()).url(), active))
    return result


@require_GET
@member_required
def mailbox(request: MemberRequest) -> HttpResponse:
    place = _place(request.GET)
    context = _page_context(request, place)
    thread_id = request.GET.get("thread", "")
    if _ID.fullmatch(thread_id):
        thread = selectors.access_mailbox_thread(
            membership=request.membership, thread_id=int(thread_id)
        )
        if thread is not None:
            context.update(_reader_context(request, thread, place))
    return render(request, "inbox/mailbox.html", context)


@require_GET
@member_required
def mailbox_rows(request: MemberRequest) -> HttpResponse:
    place = _place(request.GET)
    accounts = selectors.mailbox_accounts(membership=request.membership)
    listing = _listing(request, place, accounts, after=request.GET.get("after", ""))
    return render(request, "inbox/_mailbox_rows.html", {"listing": listing, "place": place})


def _label_choices(request: MemberRequest, thread_id: int) -> list[tuple[Label, bool]]:
    """Every conversation label of the company, and whether this conversation has it."""
    labels = selectors.thread_labels(membership=request.membership, thread_ids=[thread_id])
    on = {label.pk for label in labels.get(thread_id, [])}
    return [
        (label, label.pk in on) for label in selectors.mail_labels(membership=request.membership)
    ]


def _reader_context(request: MemberRequest, thread: MailThread, place: Place) -> dict[str, Any]:
    if thread.is_unread:
        services.threads_apply(
            membership=request.membership,
            thread_ids=[thread.pk],
            op=services.MailboxOp.READ,
            undoable=False,
        )
        thread.is_unread = False
    return {
        "reader": {
            "thread": thread,
            "label_choices": _label_choices(request, thread.pk),
            **thread_context(request, thread),
        },
        "place": place,
    }


@require_GET
@member_required
def mailbox_thread(request: MemberRequest, thread_id: int) -> HttpResponse:
    place = _place(request.GET)
    if not request.headers.get("HX-Request") or request.headers.get("HX-Boosted"):
        return redirect(place.url(thread=str(thread_id)))
    thread = selectors.access_mailbox_thread(membership=request.membership, thread_id=thread_id)
    if thread is None:
        return not_found(request)
    was_unread = thread.is_unread
    context = _reader_context(request, thread, place)
    response = render(request, "inbox/_mailbox_reader.html", context)
    if was_unread:
        response["HX-Trigger"] = "mailbox-counts"
    return response


# --- Acting on conversations ---------------------------------------------------------------------


def _thread_ids(data: QueryDict) -> list[int]:
    return [int(value) for value in data.getlist("thread") if _ID.fullmatch(value)][:PAGE_SIZE]


@require_POST
@member_required
def mailbox_act(request: MemberRequest) -> HttpResponse:
    place = _place(request.POST)
    try:
        op = services.MailboxOp(request.POST.get("op", ""))
    except ValueError:
        return notice(request, _("Unknown action."), status=400)
    try:
        applied = services.threads_apply(
            membership=request.membership, thread_ids=_thread_ids(request.POST), op=op
        )
    except ServiceError as error:
        return notice(request, error.message, status=404)
    token = signing.dumps(
        {
            "u": request.user.pk,
            "op": applied.op.value,
            "t": applied.thread_ids,
            "a": applied.action_ids,
        },
        salt=UNDO_SALT,
        compress=True,
    )
    return _after_action(request, place, applied, undo_token=token)


def _after_action(
    request: MemberRequest, place: Place, applied: services.Applied, *, undo_token: str
) -> HttpResponse:
    leaves = place.folder_kind in _LEAVES.get(applied.op, set())
    redraw: list[Row] = []
    if not leaves:
        threads = selectors.mailbox_threads_by_id(
            membership=request.membership, thread_ids=applied.thread_ids
        )
        redraw = _rows(request, threads, several=place.account == "" or place.account == "team")
    response = render(
        request,
        "inbox/_mailbox_acted.html",
        {
            "message": _(_DONE[applied.op]),
            "undo_token": undo_token,
            "removed": applied.thread_ids if leaves else [],
            "redraw": redraw,
            "place": place,
        },
    )
    response["HX-Trigger"] = "mailbox-counts"
    return response


@require_POST
@member_required
def mailbox_undo(request: MemberRequest) -> HttpResponse:
    place = _place(request.POST)
    try:
        data = signing.loads(request.POST.get("token", ""), salt=UNDO_SALT, max_age=UNDO_MAX_AGE)
    except signing.BadSignature:
        return notice(request, _("This can no longer be undone."), status=400)
    if data.get("u") != request.user.pk:
        return notice(request, _("This can no longer be undone."), status=400)
    applied = services.Applied(services.MailboxOp(data["op"]), list(data["t"]), list(data["a"]))
    try:
        services.threads_undo(membership=request.membership, applied=applied)
    except ServiceError as error:
        return notice(request, error.message, status=404)
    response = render(
        request, "inbox/_mailbox_acted.html", {"message": _("Undone."), "place": place}
    )
    response["HX-Trigger"] = "mailbox-changed, mailbox-counts"
    return response


@require_POST
@member_required
def mailbox_thread_labels(request: MemberRequest, thread_id: int) -> HttpResponse:
    place = _place(request.POST)
    label = request.POST.get("label", "")
    if not _ID.fullmatch(label):
        return notice(request, _("Choose a label."), status=400)
    try:
        services.labels_set(
            membership=request.membership,
            thread_ids=[thread_id],
            label_id=int(label),
            on=request.POST.get("on") == "1",
        )
    except ServiceError as error:
        return notice(request, error.message, status=404 if error.field == "thread_ids" else 400)
    threads = selectors.mailbox_threads_by_id(membership=request.membership, thread_ids=[thread_id])
    return render(
        request,
        "inbox/_mailbox_labels.html",
        {
            "reader": {"thread": threads[0], "label_choices": _label_choices(request, thread_id)},
            "place": place,
            "redraw": _rows(request, threads, several=False),
        },
    )


# --- Labels and saved views ----------------------------------------------------------------------


def _labels_page(
    request: MemberRequest, *, label_id: int | None = None, allow_get: bool = True
) -> HttpResponse:
    """Settings of the conversation labels; a POST creates one (or renames / recolours
    `label_id`) and comes back, or shows the page again with the error."""
    error: ServiceError | None = None
    if request.method == "POST":
        try:
            services.label_save(
                membership=request.membership,
                label_id=label_id,
                name=request.POST.get("name", ""),
                color=request.POST.get("color", LabelColor.GRAY),
            )
            return redirect("inbox_labels")
        except ServiceError as problem:
            error = problem
    return render(
        request,
        "inbox/mailbox_labels.html",
        {
            "labels": selectors.mail_labels(membership=request.membership),
            "colors": LabelColor.choices,
            "error": error,
            # A failed "New label" keeps what was typed; a failed rename shows the names kept.
            "values": request.POST if error and label_id is None else {},
        },
        status=400 if error else 200,
    )


@require_http_methods(["GET", "POST"])
@member_required
def mailbox_labels(request: MemberRequest) -> HttpResponse:
    return _labels_page(request)


@require_POST
@member_required
def mailbox_label_edit(request: MemberRequest, label_id: int) -> HttpResponse:
    return _labels_page(request, label_id=label_id)


@require_POST
@member_required
def mailbox_label_delete(request: MemberRequest, label_id: int) -> HttpResponse:
    try:
        services.label_remove(membership=request.membership, label_id=label_id)
    except ServiceError as error:
        return notice(request, error.message, status=404)
    return redirect("inbox_labels")


@require_POST
@member_required
def mailbox_view_save(request: MemberRequest) -> HttpResponse:
    place = _place(request.POST)
    try:
        services.view_save(
            membership=request.membership,
            name=request.POST.get("name", ""),
            folder=place.folder,
            query=place.q,
        )
    except ServiceError as error:
        return notice(request, error.message, status=400)
    return redirect(place.url())


@require_POST
@member_required
def mailbox_view_delete(request: MemberRequest, view_id: int) -> HttpResponse:
    try:
        services.view_delete(membership=request.membership, view_id=view_id)
    except ServiceError as error:
        return notice(request, error.message, status=404)
    return redirect(_place(request.POST).url())


urlpatterns: list[URLPattern | URLResolver] = [
    path("inbox", mailbox, name="inbox"),
    path("inbox/rows", mailbox_rows, name="inbox_rows"),
    path("inbox/threads/<int:thread_id>", mailbox_thread, name="inbox_mailbox_thread"),
    path(
        "inbox/threads/<int:thread_id>/labels",
        mailbox_thread_labels,
        name="inbox_mailbox_thread_labels",
    ),
    path("inbox/act", mailbox_act, name="inbox_act"),
    path("inbox/undo", mailbox_undo, name="inbox_undo"),
    path("inbox/labels", mailbox_labels, name="inbox_labels"),
    path("inbox/labels/<int:label_id>", mailbox_label_edit, name="inbox_label_edit"),
    path("inbox/labels/<int:label_id>/delete", mailbox_label_delete, name="inbox_label_delete"),
    path("inbox/views", mailbox_view_save, name="inbox_view_save"),
    path("inbox/views/<int:view_id>/delete", mailbox_view_delete, name="inbox_view_delete"),
]
