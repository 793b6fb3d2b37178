"""Writes of mail accounts: connect (after a live connection test), change what syncs and what
new conversations get (their sharing, D3; their linking mode, C2), reconnect, ask for a sync,
disconnect. Views, the API and tasks call these; nothing else writes accounts or their sync
state."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import F

from crm import encryption
from crm.models import Company, Membership, User
from inbox.models import (
    SHARING_BY_KIND,
    AccountKind,
    LinkMode,
    MailAccount,
    MailAccountMember,
    MailFolder,
    SentCopyMode,
    Sharing,
)
from mailsync.models import FolderCursor, Health, SyncState
from mailsync.providers import imap, smtp
from mailsync.providers.base import ConnectionSettings, ProviderError, RemoteFolder

MIN_SINCE_DAYS, MAX_SINCE_DAYS = 3, 730
CONNECTION_TEST_TIMEOUT = 20.0


class AccountError(ValueError):
    """Input the account can't take: `errors` maps field names to plain messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class ImapAccountInput:
    email_address: str
    imap_host: str
    imap_port: int
    imap_security: str
    username: str
    password: str = field(repr=False)
    smtp_host: str = ""
    smtp_port: int | None = None
    smtp_security: str = ""
    kind: str = AccountKind.PERSONAL
    display_name: str = ""
    member_ids: tuple[int, ...] = ()
    sync_all_folders: bool = True
    selected_folders: tuple[str, ...] = ()
    sync_since_days: int = 90
    default_sharing: str = Sharing.SHARED
    link_mode: str = LinkMode.AUTOMATIC
    two_way_sync: bool = False


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _conversation_errors(
    *, kind: str, default_sharing: str | None, link_mode: str | None
) -> dict[str, str]:
    """D3 and C2: the sharing must be one the account's kind offers (a personal account has no
    team; a team account's mail is never one user's private mail)."""
    errors: dict[str, str] = {}
    allowed = SHARING_BY_KIND.get(kind)
    if default_sharing is not None and allowed is not None and default_sharing not in allowed:
        kind_name = str(AccountKind(kind).label).lower()
        choices = " or ".join(str(Sharing(choice).label) for choice in allowed)
        errors["default_sharing"] = f"A {kind_name} account's conversations are {choices}."
    if link_mode is not None and link_mode not in LinkMode.values:
        errors["link_mode"] = "Choose automatic or manual."
    return errors


def _validate(data: ImapAccountInput) -> None:
    errors: dict[str, str] = _conversation_errors(
        kind=data.kind, default_sharing=data.default_sharing, link_mode=data.link_mode
    )
    if "@" not in data.email_address:
        errors["email"] = "Enter an email address."
    if not data.imap_host:
        errors["imap_host"] = "Enter the IMAP server's name."
    if not 1 <= data.imap_port <= 65535:
        errors["imap_port"] = "Enter a port between 1 and 65535."
    for prefix, host, security in (
        ("imap", data.imap_host, data.imap_security),
        ("smtp", data.smtp_host, data.smtp_security),
    ):
        if security and security not in ("ssl", "starttls", "none"):
            errors[f"{prefix}_security"] = "Choose ssl, starttls or none."
        elif security == "none" and host and not _is_loopback(host):
            errors[f"{prefix}_security"] = (
                "A connection without encryption is only allowed to this machine (loopback); "
                "choose SSL/TLS or STARTTLS."
            )
    if data.smtp_port is not None and not 1 <= data.smtp_port <= 65535:
        errors["smtp_port"] = "Enter a port between 1 and 65535."
    if not data.password:
        errors["password"] = "Enter the password (or app password)."  # noqa: S105 - a message
    if data.kind not in (AccountKind.PERSONAL, AccountKind.TEAM):
        errors["kind"] = "Choose personal or team."
    if not MIN_SINCE_DAYS <= data.sync_since_days <= MAX_SINCE_DAYS:
        errors["sync_since_days"] = (
            f"Choose between {MIN_SINCE_DAYS} days and {MAX_SINCE_DAYS} days (2 years)."
        )
    if errors:
        raise AccountError(errors)


def _members_check(company: Company | int, member_ids: Iterable[int]) -> list[int]:
    wanted = sorted(set(member_ids))
    found = set(
        Membership.objects.for_company(company)
        .filter(user_id__in=wanted, is_active=True)
        .values_list("user_id", flat=True)
    )
    missing = [uid for uid in wanted if uid not in found]
    if missing:
        raise AccountError({"member_ids": f"Not users of this company: {missing}."})
    return wanted


def connection_check(data: ImapAccountInput) -> list[RemoteFolder]:
    """Connect and sign in as the account would, to IMAP and (when set) to SMTP for sending;
    return its folders. Raises AccountError with the reasons in plain words, on the
    `connection` (IMAP) and `smtp_connection` fields."""
    errors: dict[str, str] = {}
    folders: list[RemoteFolder] = []
    try:
        folders = imap.connection_test(
            ConnectionSettings(
                email_address=data.email_address,
                host=data.imap_host,
                port=data.imap_port,
                security=data.imap_security,
                username=data.username or data.email_address,
                password=data.password,
                timeout=CONNECTION_TEST_TIMEOUT,
            )
        )
    except ProviderError as error:
        errors["connection"] = error.message
    if data.smtp_host:
        try:
            smtp.smtp_connection_test(
                ConnectionSettings(
                    email_address=data.email_address,
                    host=data.smtp_host,
                    port=data.smtp_port or 465,
                    security=data.smtp_security or "ssl",
                    username=data.username or data.email_address,
                    password=data.password,
                    timeout=CONNECTION_TEST_TIMEOUT,
                )
            )
        except ProviderError as error:
            errors["smtp_connection"] = error.message
    if errors:
        raise AccountError(errors)
    return folders


def account_connect(*, company: Company, owner: User, data: ImapAccountInput) -> MailAccount:
    """Test the connection, then save the account (password encrypted), its members and folders,
    and queue its first sync. Raises AccountError."""
    _validate(data)
    member_ids = _members_check(company, data.member_ids) if data.kind == AccountKind.TEAM else []
    address = data.email_address.strip().lower()
    if (
        MailAccount.objects.for_company(company)
        .filter(email_address=address, removed_at__isnull=True)
        .exists()
    ):
        raise AccountError({"email": "This address is already connected."})
    folders = connection_check(data)
    selected = set(data.selected_folders)
    unknown = selected - {folder.name for folder in folders}
    if unknown:
        raise AccountError({"sync_scope": f"No such folders: {sorted(unknown)}."})
    account = MailAccount.objects.create(
        company=company,
        owner=owner,
        kind=data.kind,
        provider="imap",
        email_address=address,
        display_name=data.display_name,
        imap_host=data.imap_host,
        imap_port=data.imap_port,
        imap_security=data.imap_security,
        smtp_host=data.smtp_host,
        smtp_port=data.smtp_port,
        smtp_security=data.smtp_security,
        username=data.username or address,
        secret_encrypted=encryption.encrypt(data.password),
        sync_all_folders=data.sync_all_folders,
        sync_since_days=data.sync_since_days,
        default_sharing=data.default_sharing,
        link_mode=data.link_mode,
        two_way_sync=data.two_way_sync,
    )
    for user_id in {*member_ids, owner.pk} if data.kind == AccountKind.TEAM else ():
        MailAccountMember.objects.create(company=company, account=account, user_id=user_id)
    for folder in folders:
        MailFolder.objects.create(
            company=company,
            account=account,
            name=folder.name,
            role=folder.role,
            selected=folder.name in selected,
        )
    SyncState.objects.create(company=company, account=account, next_sync_at=datetime.now(UTC))
    sync_request(company=company, account=account)
    return account


def account_update(
    *,
    company: Company,
    account: MailAccount,
    display_name: str | None = None,
    sync_all_folders: bool | None = None,
    selected_folders: Iterable[str] | None = None,
    sync_since_days: int | None = None,
    member_ids: Iterable[int] | None = None,
    default_sharing: str | None = None,
    link_mode: str | None = None,
    two_way_sync: bool | None = None,
    sent_copy: str | None = None,
) -> MailAccount:
    """Change what syncs (A4), who shares a team account, and what new conversations get: their
    sharing (D3) and whether they link to deals and leads (C2). A wider window or more folders
    import on the next pass; folders left out are dropped by it. A new default sharing or link
    mode applies to conversations made from now on: the old ones keep theirs unless the user
    asks (`inbox.services.account_sharing_apply`).

    `sent_copy`: who files a sent message in Sent (the outbox APPENDs it, or the server does:
    Gmail, Microsoft 365; "auto" decides by the SMTP host).

    Two-way sync (A5) on: archiving, deleting and read / unread in the CRM are carried out in
    the mailbox too (`mailsync.actions`), and its archive and bin sync. Off: changes still
    waiting are made in the CRM only (the executor cancels them)."""
    changed: list[str] = []
    resync = False
    if errors := _conversation_errors(
        kind=account.kind, default_sharing=default_sharing, link_mode=link_mode
    ):
        raise AccountError(errors)
    if default_sharing is not None:
        account.default_sharing = default_sharing
        changed.append("default_sharing")
    if link_mode is not None:
        account.link_mode = link_mode
        changed.append("link_mode")
    if display_name is not None:
        account.display_name = display_name
        changed.append("display_name")
    if sent_copy is not None:
        if sent_copy not in SentCopyMode.values:
            raise AccountError({"sent_copy": "Choose auto, append or server."})
        account.sent_copy = sent_copy
        changed.append("sent_copy")
    if two_way_sync is not None and two_way_sync != account.two_way_sync:
        account.two_way_sync = two_way_sync
        changed.append("two_way_sync")
        resync = True  # the archive and the bin start (or stop) syncing
    if sync_since_days is not None:
        if not MIN_SINCE_DAYS <= sync_since_days <= MAX_SINCE_DAYS:
            raise AccountError(
                {"sync_since_days": f"Choose between {MIN_SINCE_DAYS} and {MAX_SINCE_DAYS} days."}
            )
        if sync_since_days > account.sync_since_days:
            # Reach further back: the backfill searches each folder's new window again (mail
            # already held is skipped before download).
            FolderCursor.objects.for_company(company).filter(account=account).exclude(
                validity=""
            ).update(backfill_before_uid=F("next_uid"), backfill_total=0)
            resync = True
        account.sync_since_days = sync_since_days
        changed.append("sync_since_days")
    if sync_all_folders is not None and sync_all_folders != account.sync_all_folders:
        account.sync_all_folders = sync_all_folders
        changed.append("sync_all_folders")
        resync = True
    if selected_folders is not None:
        selected = set(selected_folders)
        folders = MailFolder.objects.for_company(company).filter(
            account=account, removed_at__isnull=True
        )
        unknown = selected - {f.name for f in folders}
        if unknown:
            raise AccountError({"sync_scope": f"No such folders: {sorted(unknown)}."})
        folders.filter(name__in=selected).update(selected=True)
        folders.exclude(name__in=selected).update(selected=False)
        resync = True
    if member_ids is not None:
        if account.kind != AccountKind.TEAM:
            raise AccountError({"member_ids": "Only a team account has members."})
        wanted = set(_members_check(company, member_ids)) | {account.owner_id}
        current = MailAccountMember.objects.for_company(company).filter(account=account)
        current.exclude(user_id__in=wanted).delete()
        have = set(current.values_list("user_id", flat=True))
        for user_id in wanted - have:
            MailAccountMember.objects.create(company=company, account=account, user_id=user_id)
    if changed:
        account.save(update_fields=[*changed, "updated_at"])
    if resync:
        sync_request(company=company, account=account)
    return account


def account_reconnect(*, company: Company, account: MailAccount, password: str) -> MailAccount:
    """Check the new password against the server, store it, and sync again."""
    data = ImapAccountInput(
        email_address=account.email_address,
        imap_host=account.imap_host,
        imap_port=account.imap_port or 993,
        imap_security=account.imap_security,
        username=account.username,
        password=password,
        smtp_host=account.smtp_host,
        smtp_port=account.smtp_port,
        smtp_security=account.smtp_security,
    )
    if not password:
        raise AccountError({"password": "Enter the password (or app password)."})
    connection_check(data)
    account.secret_encrypted = encryption.encrypt(password)
    account.save(update_fields=["secret_encrypted", "updated_at"])
    SyncState.objects.for_company(company).filter(account=account).update(
        health=Health.OK,
        last_error_kind="",
        last_error_message="",
        consecutive_failures=0,
    )
    sync_request(company=company, account=account)
    return account


def sync_request(*, company: Company | int, account: MailAccount) -> None:
    """Sync the account now (after this transaction commits)."""
    from mailsync import tasks  # tasks sit above services: imported where used

    SyncState.objects.for_company(company).filter(account=account).update(
        next_sync_at=datetime.now(UTC)
    )
    company_id = company if isinstance(company, int) else company.pk
    transaction.on_commit(
        lambda: tasks.account_sync_enqueue(company_id=company_id, account_id=account.pk)
    )


def account_remove(*, company: Company, account: MailAccount) -> None:
    """Disconnect: nothing syncs from now on; the account's mail is purged in the background."""
    from mailsync import tasks

    account.removed_at = datetime.now(UTC)
    account.save(update_fields=["removed_at", "updated_at"])
    company_id, account_id = company.pk, account.pk
    transaction.on_commit(
        lambda: tasks.account_purge.apply_async(
            kwargs={"company_id": company_id, "account_id": account_id}
        )
    )
