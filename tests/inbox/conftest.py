"""Mail stored through the real ingest pipeline (parse → dedupe → thread → link → store), without
an IMAP server: `mailbox.deliver(account, folder, raw)` files one message as sync would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from django.test import Client

from crm import encryption, tenancy
from crm.models import Company, User
from inbox.models import AccountKind, MailAccount, MailAccountMember, MailFolder
from mailsync import ingest
from mailsync.models import SyncState
from mailsync.providers.base import FetchedMessage
from tests.conftest import Cast


@dataclass
class Mailbox:
    cast: Cast
    uid: int = 0

    def account(
        self,
        owner: User,
        *,
        company: Company | None = None,
        kind: str = AccountKind.PERSONAL,
        members: Sequence[User] = (),
        email: str | None = None,
    ) -> MailAccount:
        company = company or self.cast.company_a
        with tenancy.bound(company.pk):
            account = MailAccount.objects.create(
                company=company,
                owner=owner,
                kind=kind,
                email_address=email or f"{owner.email}",
                imap_host="127.0.0.1",
                imap_port=143,
                imap_security="none",
                username=owner.email,
                secret_encrypted=encryption.encrypt("imap-password"),
            )
            for user in members:
                MailAccountMember.objects.create(company=company, account=account, user=user)
            for name, role in (("INBOX", "inbox"), ("Sent", "sent"), ("Archive", "archive")):
                MailFolder.objects.create(company=company, account=account, name=name, role=role)
            SyncState.objects.create(company=company, account=account)
        return account

    def deliver(
        self, account: MailAccount, folder: str, raw: bytes, *, flags: Sequence[str] = ()
    ) -> None:
        self.uid += 1
        fetched = [
            FetchedMessage(
                provider_id=f"1:{self.uid}",
                uid=self.uid,
                raw=raw,
                flags=frozenset(flags),
                received_at=datetime.now(UTC),
            )
        ]
        with tenancy.bound(account.company_id):
            folder_row = MailFolder.objects.for_company(account.company_id).get(
                account=account, name=folder
            )
            ingest.ingest_batch(
                company_id=account.company_id,
                account_id=account.pk,
                folder_id=folder_row.pk,
                fetched=fetched,
                parsed=ingest.parse_batch(fetched),
                announce=False,
            )


@pytest.fixture
def mailbox(cast: Cast) -> Mailbox:
    return Mailbox(cast)


@pytest.fixture
def api(cast: Cast) -> Client:
    """A client with no session: every request states its own credentials."""
    return Client()
