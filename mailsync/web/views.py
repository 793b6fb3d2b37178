"""Settings → Email sync: the user's connected mailboxes, adding one, what each syncs and whether
CRM changes reach the mailbox (two-way sync, A5), what its new conversations get (sharing, D3;
linking mode, C2), and its sync's health and first-sync progress (A1 to A4, A6).

Every account is fetched through `inbox.visibility.mailbox_accounts`: another company's
account, and one of this company that the user doesn't read, are both simply not found (404).
Reading an account lets a user watch it and ask for a sync; changing, reconnecting and
disconnecting it is for its owner. The page data comes from `mailsync.api.accounts_data`, the
same account objects the API answers with, so the two never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import selectors
from crm.services import ServiceError
from crm.web.permissions import MemberRequest, member_required
from inbox import services as inbox_services
from inbox import visibility
from inbox.models import AccountKind, LinkMode, MailAccount, Sharing
from mailsync import services
from mailsync.api import accounts_data
from mailsync.models import Health
from mailsync.presets import PRESETS, preset_for_address
from mailsync.web.forms import (
    OTHER_PRESET,
    SCOPE_ALL,
    SCOPE_SELECTED,
    TWO_WAY_HELP,
    AccountAddForm,
    AccountConversationsForm,
    AccountStartForm,
    AccountSyncForm,
    ReconnectForm,
    add_account_error,
    folder_label,
    folder_sort_key,
)

# Health in which the sync waits for the user: polling the page would show nothing new.
_STOPPED = (Health.NEEDS_RECONNECT, Health.FAILED)
_TROUBLE = (Health.RETRYING, *_STOPPED)


# --- Fetching an account -------------------------------------------------------------------


def _account_or_404(request: MemberRequest, account_id: int) -> MailAccount:
    """The account if the user reads its mailbox; missing and hidden look the same."""
    account = (
        visibility.mailbox_accounts(company=request.company, user=request.user)
        .select_related("owner")
        .filter(pk=account_id)
        .first()
    )
    if account is None:
        raise Http404
    return account


def _owner_only(request: MemberRequest, account: MailAccount) -> HttpResponse | None:
    """A 403 page naming the owner when the user isn't them; None when they are."""
    if account.owner_id == request.user.pk:
        return None
    return render(request, "mailsync/owner_only.html", {"account": account}, status=403)


# --- What the pages show of a sync -----------------------------------------------------------


@dataclass(frozen=True)
class SyncStatus:
    """An account's sync in the words the page uses (from an `accounts_data` object)."""

    account_id: int
    health: str
    words: str
    first_sync_running: bool
    percent: int
    done: int
    total: int
    count_text: str
    eta_text: str
    last_synced: str  # "5 minutes ago", "" before the first pass
    error: str
    error_seen: str

    @property
    def trouble(self) -> bool:
        return self.health in _TROUBLE

    @property
    def needs_reconnect(self) -> bool:
        return self.health == Health.NEEDS_RECONNECT


def _ago(iso_time: str | None) -> str:
    """`5 minutes ago`, or `just now` (timesince alone would say "0 minutes")."""
    if not iso_time:
        return ""
    then = datetime.fromisoformat(iso_time)
    if datetime.now(UTC) - then < timedelta(minutes=1):
        return _("just now")
    return _("%(time)s ago") % {"time": timesince(then)}


def _eta_text(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return _("less than a minute left")
    if seconds < 90 * 60:
        minutes = round(seconds / 60)
        return ngettext("about %(n)d minute left", "about %(n)d minutes left", minutes) % {
            "n": minutes
        }
    hours = round(seconds / 3600)
    return ngettext("about %(n)d hour left", "about %(n)d hours left", hours) % {"n": hours}


def _health_words(health: str, *, first_sync_running: bool, started: bool) -> str:
    if health == Health.NEEDS_RECONNECT:
        return _("Stopped: the mail server refused the sign-in. Reconnect to sync again.")
    if health == Health.FAILED:
        return _("Stopped: syncing failed and won't retry on its own until the problem is fixed.")
    if health == Health.RETRYING:
        return _("Having trouble reaching the mail server; retrying on its own.")
    if first_sync_running:
        if started:
            return _("Downloading your mail for the first time.")
        return _("Waiting for the first sync to start.")
    return _("Working: new mail arrives within minutes.")


def _sync_status(data: dict[str, Any]) -> SyncStatus:
    sync = data["sync"]
    progress = sync["progress"]
    health = sync["health"]
    first_sync_running = not sync["initial_sync_done"] and health not in _STOPPED
    done, total = progress["done"], progress["total"]
    error = sync["last_error"] or {}
    return SyncStatus(
        account_id=data["id"],
        health=health,
        words=_health_words(
            health, first_sync_running=first_sync_running, started=total > 0 or done > 0
        ),
        first_sync_running=first_sync_running,
        percent=progress["percent"],
        done=done,
        total=total,
        count_text=_("%(done)s of %(total)s messages")
        % {"done": f"{done:,}", "total": f"{total:,}"},
        eta_text=_eta_text(progress["eta_seconds"]),
        last_synced=_ago(sync["last_synced_at"]),
        error=error.get("message", "") if health in _TROUBLE else "",
        error_seen=_ago(error.get("time")) if health in _TROUBLE else "",
    )


def _people(request: MemberRequest, *, owner_id: int) -> list[tuple[int, str]]:
    """The choices of a team account's members: the company's active users but the owner,
    who is always a member."""
    return [
        (membership.user_id, str(membership.user))
        for membership in selectors.membership_list(company=request.company)
        if membership.is_active and membership.user_id != owner_id
    ]


def _folders(data: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(data["folders"], key=lambda f: folder_sort_key(f["name"], f["role"]))


# --- The list --------------------------------------------------------------------------------


@require_GET
@member_required
def account_list(request: MemberRequest) -> HttpResponse:
    accounts = list(
        visibility.mailbox_accounts(company=request.company, user=request.user)
        .select_related("owner")
        .order_by("email_address", "pk")
    )
    rows = [
        {"account": account, "data": data, "status": _sync_status(data)}
        for account, data in zip(accounts, accounts_data(request.company.pk, accounts), strict=True)
    ]
    return render(request, "mailsync/accounts.html", {"rows": rows})


@require_GET
@member_required
def account_status(request: MemberRequest, account_id: int) -> HttpResponse:
    """The fragment the first sync's progress polls (htmx, every 2 s while it runs)."""
    account = _account_or_404(request, account_id)
    data = accounts_data(request.company.pk, [account])[0]
    return render(
        request,
        "mailsync/_status.html",
        {
            "account": account,
            "status": _sync_status(data),
            # Where its Sync now button returns to: the list, or the account's page.
            "back": "list" if request.GET.get("back") == "list" else "",
        },
    )


# --- Adding an account -----------------------------------------------------------------------


def _add_page(
    request: MemberRequest,
    *,
    start_form: AccountStartForm | None = None,
    form: AccountAddForm | None = None,
) -> HttpResponse:
    preset = None
    if form is not None:
        key = form["preset"].value()
        preset = PRESETS.get(key) if isinstance(key, str) else None
    return render(
        request,
        "mailsync/account_add.html",
        {"start_form": start_form, "form": form, "preset": preset},
    )


def _refilled_form(request: MemberRequest, *, people: list[tuple[int, str]]) -> AccountAddForm:
    """Step 2 again, unbound (no errors yet), with the typed values and the chosen preset's
    servers. Never the password."""
    values: dict[str, Any] = {
        name: request.POST.get(name, "")
        for name in AccountAddForm.base_fields
        if name not in ("password", "members")
    }
    values["members"] = request.POST.getlist("members")
    preset = PRESETS.get(values["preset"])
    if preset is not None:
        values.update(preset.filled(values["email"]))
    return AccountAddForm(people=people, initial=values)


@never_cache
@require_http_methods(["GET", "POST"])
@member_required
def account_add(request: MemberRequest) -> HttpResponse:
    """Step 1 asks for the address and guesses the provider; step 2 shows the connection
    settings filled from its preset ("Fill from preset" refills them), then connects: the
    service signs in before it saves anything."""
    if request.method == "GET":
        return _add_page(request, start_form=AccountStartForm())
    people = _people(request, owner_id=request.user.pk)
    action = request.POST.get("action", "connect")
    if action == "start":
        start_form = AccountStartForm(request.POST)
        if not start_form.is_valid():
            return _add_page(request, start_form=start_form)
        email = start_form.cleaned_data["email"]
        guessed = preset_for_address(email)
        initial: dict[str, Any] = {"email": email, "username": email, "preset": OTHER_PRESET}
        if guessed is not None:
            initial |= {"preset": guessed.key, **guessed.filled(email)}
        return _add_page(request, form=AccountAddForm(people=people, initial=initial))
    if action == "fill":
        return _add_page(request, form=_refilled_form(request, people=people))

    form = AccountAddForm(request.POST, people=people)
    if form.is_valid():
        try:
            account = services.account_connect(
                company=request.company, owner=request.user, data=form.account_input()
            )
        except services.AccountError as error:
            preset = PRESETS.get(form.cleaned_data["preset"]) or preset_for_address(
                form.cleaned_data["email"]
            )
            add_account_error(form, error, preset=preset)
        else:
            messages.success(
                request,
                _("%(email)s is connected. Its first sync starts in a moment.")
                % {"email": account.email_address},
            )
            return redirect("mail_account", account_id=account.pk)
    return _add_page(request, form=form)


# --- One account -----------------------------------------------------------------------------


def _sync_form(
    request: MemberRequest, account: MailAccount, data: dict[str, Any], *, bound: bool
) -> AccountSyncForm:
    folders = [(f["name"], folder_label(f["name"], f["role"])) for f in _folders(data)]
    people = (
        _people(request, owner_id=account.owner_id) if account.kind == AccountKind.TEAM else None
    )
    if bound:
        return AccountSyncForm(
            request.POST, folders=folders, since_days=account.sync_since_days, people=people
        )
    return AccountSyncForm(
        folders=folders,
        since_days=account.sync_since_days,
        people=people,
        initial={
            "sync_scope": SCOPE_ALL if data["sync_scope"] == "all" else SCOPE_SELECTED,
            "folders": [f["name"] for f in data["folders"] if f["selected"]],
            "sync_since_days": account.sync_since_days,
            "members": [uid for uid in data["member_ids"] if uid != account.owner_id],
            "two_way_sync": account.two_way_sync,
            "sent_copy": account.sent_copy,
        },
    )


def _conversations_form(
    account: MailAccount, *, posted: dict[str, Any] | None = None
) -> AccountConversationsForm:
    if posted is not None:
        return AccountConversationsForm(posted, kind=account.kind)
    return AccountConversationsForm(
        kind=account.kind,
        initial={"default_sharing": account.default_sharing, "link_mode": account.link_mode},
    )


def _detail_page(
    request: MemberRequest,
    account: MailAccount,
    data: dict[str, Any],
    *,
    form: AccountSyncForm | None = None,
    conversations_form: AccountConversationsForm | None = None,
) -> HttpResponse:
    members = {m.user_id: m.user for m in selectors.membership_list(company=request.company)}
    return render(
        request,
        "mailsync/account.html",
        {
            "account": account,
            "data": data,
            "status": _sync_status(data),
            "form": _sync_form(request, account, data, bound=False) if form is None else form,
            "conversations_form": (
                _conversations_form(account) if conversations_form is None else conversations_form
            ),
            "sharing_label": Sharing(account.default_sharing).label,
            "is_owner": account.owner_id == request.user.pk,
            "member_names": [str(members[uid]) for uid in data["member_ids"] if uid in members],
            "syncing_folders": [
                folder_label(f["name"], f["role"]) for f in _folders(data) if f["syncing"]
            ],
            "two_way_help": TWO_WAY_HELP,
        },
    )


@require_http_methods(["GET", "POST"])
@member_required
def account_detail(request: MemberRequest, account_id: int) -> HttpResponse:
    """The account's settings and sync; its owner saves what syncs and who shares it."""
    account = _account_or_404(request, account_id)
    data = accounts_data(request.company.pk, [account])[0]
    if request.method == "GET":
        return _detail_page(request, account, data)
    if refused := _owner_only(request, account):
        return refused
    form = _sync_form(request, account, data, bound=True)
    if form.is_valid():
        selected = form.cleaned_data["sync_scope"] == SCOPE_SELECTED
        try:
            services.account_update(
                company=request.company,
                account=account,
                sync_all_folders=not selected,
                # With All mail, the ticks are kept for a later switch back.
                selected_folders=form.cleaned_data["folders"] if selected else None,
                sync_since_days=form.cleaned_data["sync_since_days"],
                member_ids=form.cleaned_data["members"] if "members" in form.fields else None,
                two_way_sync=form.cleaned_data["two_way_sync"],
                sent_copy=form.cleaned_data["sent_copy"] or None,
            )
        except services.AccountError as error:
            add_account_error(form, error)
        else:
            messages.success(request, _("Saved. The next sync follows the new settings."))
            return redirect("mail_account", account_id=account.pk)
    return _detail_page(request, account, data, form=form)


@require_POST
@member_required
def account_conversations(request: MemberRequest, account_id: int) -> HttpResponse:
    """The owner sets what new conversations get: their sharing (D3) and linking mode (C2).
    Existing conversations keep theirs (`account_conversations_apply` rewrites them)."""
    account = _account_or_404(request, account_id)
    if refused := _owner_only(request, account):
        return refused
    form = _conversations_form(account, posted=request.POST)
    if form.is_valid():
        try:
            services.account_update(
                company=request.company,
                account=account,
                default_sharing=form.cleaned_data["default_sharing"],
                link_mode=form.cleaned_data["link_mode"],
            )
        except services.AccountError as error:
            add_account_error(form, error)
        else:
            messages.success(
                request,
                _("Saved. New conversations are %(sharing)s; linking is %(mode)s.")
                % {
                    "sharing": str(Sharing(account.default_sharing).label).lower(),
                    "mode": str(LinkMode(account.link_mode).label).lower(),
                },
            )
            return redirect("mail_account", account_id=account.pk)
    data = accounts_data(request.company.pk, [account])[0]
    return _detail_page(request, account, data, conversations_form=form)


@require_POST
@member_required
def account_conversations_apply(request: MemberRequest, account_id: int) -> HttpResponse:
    """Give every existing conversation of the account its default sharing: a bulk rewrite
    the owner asks for (the page confirms first)."""
    account = _account_or_404(request, account_id)
    if refused := _owner_only(request, account):
        return refused
    try:
        changed = inbox_services.account_sharing_apply(
            membership=request.membership, account=account
        )
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        sharing = str(Sharing(account.default_sharing).label).lower()
        if changed:
            messages.success(
                request,
                ngettext(
                    "%(count)d conversation is now %(sharing)s.",
                    "%(count)d conversations are now %(sharing)s.",
                    changed,
                )
                % {"count": changed, "sharing": sharing},
            )
        else:
            messages.success(
                request, _("Every conversation was %(sharing)s already.") % {"sharing": sharing}
            )
    return redirect("mail_account", account_id=account.pk)


@require_POST
@member_required
def account_sync(request: MemberRequest, account_id: int) -> HttpResponse:
    """Sync now: anyone who reads the account may ask."""
    account = _account_or_404(request, account_id)
    services.sync_request(company=request.company, account=account)
    messages.success(
        request,
        _("Syncing %(email)s now; new mail shows up in a minute or so.")
        % {"email": account.email_address},
    )
    if request.POST.get("back") == "list":
        return redirect("mail_accounts")
    return redirect("mail_account", account_id=account.pk)


@never_cache
@require_http_methods(["GET", "POST"])
@member_required
def account_reconnect(request: MemberRequest, account_id: int) -> HttpResponse:
    """A new password for the account, checked against the server before it is stored."""
    account = _account_or_404(request, account_id)
    if refused := _owner_only(request, account):
        return refused
    form = ReconnectForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            services.account_reconnect(
                company=request.company, account=account, password=form.cleaned_data["password"]
            )
        except services.AccountError as error:
            add_account_error(form, error, preset=preset_for_address(account.email_address))
        else:
            messages.success(
                request,
                _("%(email)s is reconnected and syncing again.") % {"email": account.email_address},
            )
            return redirect("mail_account", account_id=account.pk)
    return render(request, "mailsync/reconnect.html", {"account": account, "form": form})


@require_POST
@member_required
def account_disconnect(request: MemberRequest, account_id: int) -> HttpResponse:
    account = _account_or_404(request, account_id)
    if refused := _owner_only(request, account):
        return refused
    services.account_remove(company=request.company, account=account)
    messages.success(
        request,
        _("%(email)s is disconnected. Nothing syncs from it any more; its mail is being removed.")
        % {"email": account.email_address},
    )
    return redirect("mail_accounts")
