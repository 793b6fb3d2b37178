"""Mail accounts (v1, our own: Pipedrive's public API has none):

- `GET /mailbox/mailAccounts`: the accounts whose mailbox you read (yours, and the team
  accounts you are a member of)
- `POST /mailbox/mailAccounts`: connect an IMAP account (the connection is tested first)
- `GET|PATCH|DELETE /mailbox/mailAccounts/{id}`
- `POST /mailbox/mailAccounts/{id}/sync`: sync now

The account object carries its sync state, progress and last error (A6), and what new
conversations get: `default_sharing` (D3: `shared` or `private` for a personal account, `shared`
or `team` for a team account) and `link_mode` (C2: `automatic` links persons and their open deal
or lead, `manual` persons only). Changing either leaves existing conversations as they are.
`two_way_sync` (A5): archiving, deleting and read / unread in the CRM are carried out in the
mailbox too. `sent_copy` (`auto`, `append`, `server`): who files sent mail in Sent. The password
is write-only: no answer ever contains it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet
from django.urls import re_path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.authentication import request_membership
from crm.api.fields import iso_milliseconds as iso_ms
from crm.api.schema import envelope, error_responses
from crm.api.views import ApiView
from crm.models import Membership
from inbox import visibility
from inbox.models import (
    AccountKind,
    LinkMode,
    MailAccount,
    MailAccountMember,
    MailFolder,
    SentCopyMode,
    Sharing,
)
from mailsync import services
from mailsync.models import SyncState
from mailsync.sync import folder_syncs

SECURITY_CHOICES = ("ssl", "starttls", "none")


def progress(state: SyncState | None, now: datetime) -> dict[str, Any]:
    """The first sync's progress with an estimate of the time left (from its rate so far)."""
    if state is None:
        return {"done": 0, "total": 0, "percent": 0, "eta_seconds": None}
    done, total = state.progress_done, state.progress_total
    percent = 100 if state.initial_done else (int(done * 100 / total) if total else 0)
    eta = None
    if not state.initial_done and state.initial_started_at and done and total > done:
        rate = done / max((now - state.initial_started_at).total_seconds(), 0.001)
        eta = int((total - done) / rate) if rate else None
    return {"done": done, "total": total, "percent": percent, "eta_seconds": eta}


def account_data(
    account: MailAccount,
    *,
    state: SyncState | None,
    folders: list[MailFolder],
    member_ids: list[int],
    now: datetime,
) -> dict[str, Any]:
    """A mail account object. No secret in it, ever."""
    if account.sync_all_folders:
        scope: str | list[str] = "all"
    else:
        scope = [f.name for f in folders if f.selected and f.removed_at is None]
    error = None
    if state is not None and state.last_error_kind:
        error = {
            "kind": state.last_error_kind,
            "message": state.last_error_message,
            "time": iso_ms(state.last_error_at),
        }
    return {
        "id": account.pk,
        "provider": account.provider,
        "email": account.email_address,
        "name": account.display_name,
        "kind": account.kind,
        "user_id": account.owner_id,
        "member_ids": member_ids,
        "imap_host": account.imap_host,
        "imap_port": account.imap_port,
        "imap_security": account.imap_security,
        "smtp_host": account.smtp_host,
        "smtp_port": account.smtp_port,
        "smtp_security": account.smtp_security,
        "username": account.username,
        "sync_scope": scope,
        "sync_since_days": account.sync_since_days,
        "default_sharing": account.default_sharing,
        "link_mode": account.link_mode,
        "two_way_sync": account.two_way_sync,
        "sent_copy": account.sent_copy,
        "folders": [
            {
                "name": f.name,
                "role": f.role,
                "selected": f.selected,
                "syncing": folder_syncs(account, f),
            }
            for f in folders
            if f.removed_at is None
        ],
        "sync": {
            "health": state.health if state else "new",
            "stage": state.stage if state else "idle",
            "initial_sync_done": bool(state and state.initial_done),
            "progress": progress(state, now),
            "malformed_count": state.malformed_count if state else 0,
            "last_synced_at": iso_ms(state.last_synced_at) if state else None,
            "next_sync_at": iso_ms(state.next_sync_at) if state else None,
            "last_error": error,
        },
        "add_time": iso_ms(account.created_at),
        "update_time": iso_ms(account.updated_at),
    }


def accounts_data(company_id: int, accounts: list[MailAccount]) -> list[dict[str, Any]]:
    """Account objects for a list of accounts: three queries whatever its length."""
    ids = [a.pk for a in accounts]
    states = {
        s.account_id: s
        for s in SyncState.objects.for_company(company_id).filter(account_id__in=ids)
    }
    folders: dict[int, list[MailFolder]] = {}
    for folder in MailFolder.objects.for_company(company_id).filter(account_id__in=ids):
        folders.setdefault(folder.account_id, []).append(folder)
    members: dict[int, list[int]] = {}
    for account_id, user_id in (
        MailAccountMember.objects.for_company(company_id)
        .filter(account_id__in=ids)
        .order_by("user_id")
        .values_list("account_id", "user_id")
    ):
        members.setdefault(account_id, []).append(user_id)
    now = datetime.now(UTC)
    return [
        account_data(
            a,
            state=states.get(a.pk),
            folders=folders.get(a.pk, []),
            member_ids=members.get(a.pk, []),
            now=now,
        )
        for a in accounts
    ]


class ScopeField(serializers.Field[Any, Any, Any, Any]):
    """`"all"`, or a list of folder names."""

    def to_internal_value(self, data: Any) -> str | list[str]:
        if data == "all":
            return "all"
        if isinstance(data, list) and all(isinstance(item, str) and item for item in data):
            return list(data)
        raise serializers.ValidationError(_('Give "all" or a list of folder names.'))

    def to_representation(self, value: Any) -> Any:
        return value


_SHARING_HELP = (
    "The sharing of new conversations: shared or private for a personal account, shared or "
    "team for a team account. Existing conversations keep theirs."
)
_LINK_MODE_HELP = (
    "automatic: new conversations link to their persons and the persons' open deal or lead; "
    "manual: to their persons only."
)
SENT_COPY_HELP = (
    "Who puts a sent message into the mailbox's Sent folder: `append` (we save a copy), "
    "`server` (the provider files what its SMTP server accepts, as Gmail and Microsoft 365 do) "
    "or `auto` (decided by the SMTP host)."
)
TWO_WAY_HELP = (
    "When on, archiving, deleting and marking read or unread in the CRM is done in the mailbox "
    "too (after the few seconds in which it can be undone), and the mailbox's Archive and Trash "
    "folders sync; when off, those changes stay in the CRM."
)


class AccountCreateSerializer(serializers.Serializer[Any]):
    provider = serializers.ChoiceField(choices=["imap"])
    email = serializers.EmailField(max_length=320)
    kind = serializers.ChoiceField(choices=[k.value for k in AccountKind], default="personal")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    member_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list
    )
    imap_host = serializers.CharField(max_length=255)
    imap_port = serializers.IntegerField(min_value=1, max_value=65535)
    imap_security = serializers.ChoiceField(choices=SECURITY_CHOICES)
    username = serializers.CharField(max_length=320, required=False, allow_blank=True, default="")
    password = serializers.CharField(max_length=1000, write_only=True, trim_whitespace=False)
    smtp_host = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    smtp_port = serializers.IntegerField(
        min_value=1, max_value=65535, required=False, allow_null=True, default=None
    )
    smtp_security = serializers.ChoiceField(
        choices=[*SECURITY_CHOICES, ""], required=False, default=""
    )
    sync_scope = ScopeField(required=False, default="all")
    sync_since_days = serializers.IntegerField(
        min_value=services.MIN_SINCE_DAYS, max_value=services.MAX_SINCE_DAYS, default=90
    )
    default_sharing = serializers.ChoiceField(
        choices=Sharing.choices, default=Sharing.SHARED, help_text=_SHARING_HELP
    )
    link_mode = serializers.ChoiceField(
        choices=LinkMode.choices, default=LinkMode.AUTOMATIC, help_text=_LINK_MODE_HELP
    )
    two_way_sync = serializers.BooleanField(default=False, help_text=TWO_WAY_HELP)


class AccountUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    member_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    sync_scope = ScopeField(required=False)
    sync_since_days = serializers.IntegerField(
        min_value=services.MIN_SINCE_DAYS, max_value=services.MAX_SINCE_DAYS, required=False
    )
    password = serializers.CharField(
        max_length=1000, write_only=True, trim_whitespace=False, required=False
    )
    default_sharing = serializers.ChoiceField(
        choices=Sharing.choices, required=False, help_text=_SHARING_HELP
    )
    link_mode = serializers.ChoiceField(
        choices=LinkMode.choices, required=False, help_text=_LINK_MODE_HELP
    )
    two_way_sync = serializers.BooleanField(required=False, help_text=TWO_WAY_HELP)
    sent_copy = serializers.ChoiceField(
        choices=SentCopyMode.choices, required=False, help_text=SENT_COPY_HELP
    )


class _AnyObject(serializers.Serializer[Any]):
    """A mail account object (see the module docstring)."""


ACCOUNTS_RESPONSE = envelope(name="MailAccountsResponse", data=_AnyObject(many=True))
ACCOUNT_RESPONSE = envelope(name="MailAccountResponse", data=_AnyObject())
_ID = OpenApiParameter("id", int, OpenApiParameter.PATH)


def _raise_account_error(error: services.AccountError) -> None:
    raise exceptions.ValidationError({key: [value] for key, value in error.errors.items()})


def _readable_accounts(membership: Membership) -> QuerySet[MailAccount]:
    """The accounts whose mailbox the user reads (`inbox.visibility`), admins included: an
    admin sees another user's account no more than its mail."""
    return visibility.mailbox_accounts(company=membership.company, user=membership.user)


def _account_or_404(request: Request, account_id: int, *, manage: bool = False) -> MailAccount:
    """The account if the user reads it (manage: change it, which only its owner may).
    Missing and hidden look the same."""
    membership = request_membership(request=request)
    account = _readable_accounts(membership).filter(pk=account_id).first()
    if account is None:
        raise exceptions.NotFound(_("Mail account not found."))
    if manage and account.owner_id != membership.user_id:
        raise exceptions.PermissionDenied(_("Only the account's owner may change it."))
    return account


def _answer(account: MailAccount, code: int = status.HTTP_200_OK) -> Response:
    return Response(accounts_data(account.company_id, [account])[0], status=code)


class MailAccountListView(ApiView):
    @extend_schema(
        operation_id="getMailAccounts",
        summary="Get mail accounts",
        description="Your connected mailboxes and your team accounts, with their sync state.",
        tags=["Mailbox"],
        responses={200: ACCOUNTS_RESPONSE, **error_responses(401, 429)},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        accounts = list(_readable_accounts(membership).order_by("pk"))
        return Response(accounts_data(membership.company_id, accounts))

    @extend_schema(
        operation_id="addMailAccount",
        summary="Connect an IMAP mail account",
        description=(
            "Tests the connection and sign-in first; a failure is a 400 whose `connection` "
            'field says why in plain words. `imap_security: "none"` only for loopback hosts.'
        ),
        tags=["Mailbox"],
        request=AccountCreateSerializer,
        responses={201: ACCOUNT_RESPONSE, **error_responses(400, 401, 429)},
    )
    def post(self, request: Request) -> Response:
        membership = request_membership(request=request)
        body = AccountCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = body.validated_data
        scope = fields["sync_scope"]
        data = services.ImapAccountInput(
            email_address=fields["email"],
            imap_host=fields["imap_host"],
            imap_port=fields["imap_port"],
            imap_security=fields["imap_security"],
            username=fields["username"],
            password=fields["password"],
            smtp_host=fields["smtp_host"],
            smtp_port=fields["smtp_port"],
            smtp_security=fields["smtp_security"],
            kind=fields["kind"],
            display_name=fields["name"],
            member_ids=tuple(fields["member_ids"]),
            sync_all_folders=scope == "all",
            selected_folders=() if scope == "all" else tuple(scope),
            sync_since_days=fields["sync_since_days"],
            default_sharing=fields["default_sharing"],
            link_mode=fields["link_mode"],
            two_way_sync=fields["two_way_sync"],
        )
        try:
            account = services.account_connect(
                company=membership.company, owner=membership.user, data=data
            )
        except services.AccountError as error:
            _raise_account_error(error)
            raise
        return _answer(account, status.HTTP_201_CREATED)


class MailAccountDetailView(ApiView):
    @extend_schema(
        operation_id="getMailAccount",
        summary="Get one mail account",
        tags=["Mailbox"],
        parameters=[_ID],
        responses={200: ACCOUNT_RESPONSE, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, id: str) -> Response:
        return _answer(_account_or_404(request, int(id)))

    @extend_schema(
        operation_id="updateMailAccount",
        summary="Change a mail account",
        description=(
            "What syncs (`sync_scope`, `sync_since_days`), its name, a team account's "
            "members, what new conversations get (`default_sharing`, `link_mode`), whether "
            "archive, delete and read / unread reach the mailbox (`two_way_sync`); a new "
            "`password` reconnects it (tested first). Owner only."
        ),
        tags=["Mailbox"],
        parameters=[_ID],
        request=AccountUpdateSerializer,
        responses={200: ACCOUNT_RESPONSE, **error_responses(400, 401, 403, 404, 429)},
    )
    def patch(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        account = _account_or_404(request, int(id), manage=True)
        body = AccountUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = body.validated_data
        scope = fields.get("sync_scope")
        try:
            if "password" in fields:
                services.account_reconnect(
                    company=membership.company, account=account, password=fields["password"]
                )
            services.account_update(
                company=membership.company,
                account=account,
                display_name=fields.get("name"),
                sync_all_folders=None if scope is None else scope == "all",
                selected_folders=None if scope in (None, "all") else scope,
                sync_since_days=fields.get("sync_since_days"),
                member_ids=fields.get("member_ids"),
                default_sharing=fields.get("default_sharing"),
                link_mode=fields.get("link_mode"),
                two_way_sync=fields.get("two_way_sync"),
                sent_copy=fields.get("sent_copy"),
            )
        except services.AccountError as error:
            _raise_account_error(error)
            raise
        return _answer(account)

    @extend_schema(
        operation_id="deleteMailAccount",
        summary="Disconnect a mail account",
        description="Stops syncing; the account's mail is deleted in the background.",
        tags=["Mailbox"],
        parameters=[_ID],
        responses={
            200: envelope(name="MailAccountDeleted", data=_AnyObject()),
            **error_responses(401, 403, 404, 429),
        },
    )
    def delete(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        account = _account_or_404(request, int(id), manage=True)
        services.account_remove(company=membership.company, account=account)
        return Response({"id": account.pk})


class MailAccountSyncView(ApiView):
    @extend_schema(
        operation_id="syncMailAccount",
        summary="Sync a mail account now",
        tags=["Mailbox"],
        parameters=[_ID],
        request=None,
        responses={200: ACCOUNT_RESPONSE, **error_responses(401, 404, 429)},
    )
    def post(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        account = _account_or_404(request, int(id))
        services.sync_request(company=membership.company, account=account)
        return _answer(account)


v1_patterns = [
    re_path(r"^mailbox/mailAccounts/?$", MailAccountListView.as_view(), name="mail-accounts"),
    re_path(
        r"^mailbox/mailAccounts/(?P<id>[0-9]{1,18})/?$",
        MailAccountDetailView.as_view(),
        name="mail-account",
    ),
    re_path(
        r"^mailbox/mailAccounts/(?P<id>[0-9]{1,18})/sync/?$",
        MailAccountSyncView.as_view(),
        name="mail-account-sync",
    ),
]
