"""Settings → Email sync: connecting an account through the add page against a real Dovecot,
the list with the first sync's progress and the sync's trouble, what syncs, sync now,
reconnect, disconnect, and who may open what (Bob reads Alice's team account but may not change
it; Carol gets 404 on everything of Alice's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from crm import encryption, tenancy
from crm.models import User
from inbox.models import AccountKind, FolderRole, MailAccount, MailAccountMember, MailFolder
from mailsync.models import Health, SyncState
from mailsync.providers.base import ErrorKind
from tests.conftest import Cast
from tests.mailsync.conftest import MailUser
from tests.mailsync.dovecot import Dovecot

pytestmark = pytest.mark.django_db

ADD = "/settings/email-sync/add"


# --- Helpers ---------------------------------------------------------------------------------


def add_form(dovecot: Dovecot, user: MailUser, **changes: Any) -> dict[str, Any]:
    """The add page's step 2 as a browser posts it, for an account on the test Dovecot."""
    return {
        "action": "connect",
        "email": user.email,
        "preset": "",
        "imap_host": dovecot.host,
        "imap_port": dovecot.port,
        "imap_security": "none",
        "smtp_host": "",
        "smtp_port": "",
        "smtp_security": "",
        "username": user.username,
        "password": user.password,
        "kind": "personal",
        "sync_since_days": 90,
        **changes,
    }


def accounts_of(cast: Cast) -> list[MailAccount]:
    with tenancy.bound(cast.company_a.pk):
        return list(MailAccount.objects.for_company(cast.company_a).filter(removed_at__isnull=True))


def make_account(
    cast: Cast,
    *,
    owner: User,
    email: str = "sales@acme.test",
    kind: str = AccountKind.PERSONAL,
    members: tuple[User, ...] = (),
    **state: Any,
) -> MailAccount:
    """An account as `account_connect` leaves it, written directly (no server needed), with
    a SyncState of the given fields and three folders."""
    with tenancy.bound(cast.company_a.pk):
        company = cast.company_a
        account = MailAccount.objects.create(
            company=company,
            owner=owner,
            kind=kind,
            email_address=email,
            imap_host="imap.acme.test",
            imap_port=993,
            imap_security="ssl",
            username=email,
            secret_encrypted=encryption.encrypt("server-secret"),
        )
        for user in {owner, *members} if kind == AccountKind.TEAM else ():
            MailAccountMember.objects.create(company=company, account=account, user=user)
        for name, role in (
            ("Clients", FolderRole.OTHER),
            ("INBOX", FolderRole.INBOX),
            ("Sent Items", FolderRole.SENT),
        ):
            MailFolder.objects.create(company=company, account=account, name=name, role=role)
        SyncState.objects.create(company=company, account=account, **state)
        return account


def state_of(cast: Cast, account: MailAccount) -> SyncState:
    with tenancy.bound(cast.company_a.pk):
        return SyncState.objects.for_company(cast.company_a).get(account=account)


def selected_folders(cast: Cast, account: MailAccount) -> set[str]:
    with tenancy.bound(cast.company_a.pk):
        return set(
            MailFolder.objects.for_company(cast.company_a)
            .filter(account=account, selected=True)
            .values_list("name", flat=True)
        )


def urls_of(account: MailAccount) -> dict[str, str]:
    base = f"/settings/email-sync/{account.pk}"
    return {
        "page": base,
        "status": f"{base}/status",
        "sync": f"{base}/sync",
        "reconnect": f"{base}/reconnect",
        "disconnect": f"{base}/disconnect",
    }


def assert_not_found(client: Client, account: MailAccount) -> None:
    """404 on every page and every form of the account (each with the method it takes)."""
    urls = urls_of(account)
    for name in ("page", "status", "reconnect"):
        assert client.get(urls[name]).status_code == 404, name
    for name in ("page", "sync", "reconnect", "disconnect"):
        assert client.post(urls[name], {"password": "x"}).status_code == 404, name


# --- Adding an account -----------------------------------------------------------------------


@pytest.mark.services
def test_an_account_connects_through_the_add_page_with_its_password_encrypted(
    cast: Cast, client_for, dovecot: Dovecot, mail_user: MailUser
) -> None:
    client: Client = client_for(cast.alice)
    bodies = [client.get(ADD).content.decode()]
    step2 = client.post(ADD, {"action": "start", "email": mail_user.email})
    bodies.append(step2.content.decode())
    assert 'name="imap_host"' in bodies[-1]
    assert f'value="{mail_user.email}"' in bodies[-1]  # the username defaults to the address
    assert '<option value="" selected>Other (any IMAP server)</option>' in bodies[-1]

    response = client.post(ADD, add_form(dovecot, mail_user), follow=True)
    bodies.append(response.content.decode())

    [account] = accounts_of(cast)
    assert response.redirect_chain == [(f"/settings/email-sync/{account.pk}", 302)]
    assert f"{mail_user.email} is connected." in bodies[-1]
    assert account.owner_id == cast.alice.pk
    assert account.secret_encrypted
    assert account.secret_encrypted != mail_user.password
    assert mail_user.password not in account.secret_encrypted
    assert encryption.decrypt(account.secret_encrypted) == mail_user.password
    assert account.sync_all_folders
    assert account.sync_since_days == 90
    bodies += [
        client.get("/settings/email-sync").content.decode(),
        client.get(f"/settings/email-sync/{account.pk}").content.decode(),
        client.get(f"/settings/email-sync/{account.pk}/reconnect").content.decode(),
    ]
    assert 'name="folders" value="INBOX"' in bodies[-2]  # the folders found on the server
    for body in bodies:
        assert mail_user.password not in body


@pytest.mark.services
def test_a_team_account_is_shared_with_the_members_ticked(
    cast: Cast, client_for, dovecot: Dovecot, mail_user: MailUser
) -> None:
    client: Client = client_for(cast.alice)
    response = client.post(
        ADD, add_form(dovecot, mail_user, kind="team", members=[cast.bob.pk], sync_since_days=30)
    )
    assert response.status_code == 302
    [account] = accounts_of(cast)
    assert account.kind == AccountKind.TEAM
    assert account.sync_since_days == 30
    with tenancy.bound(cast.company_a.pk):
        members = set(
            MailAccountMember.objects.for_company(cast.company_a).values_list("user_id", flat=True)
        )
    assert members == {cast.alice.pk, cast.bob.pk}
    assert mail_user.email in client_for(cast.bob).get("/settings/email-sync").content.decode()


@pytest.mark.services
def test_a_wrong_password_is_refused_in_plain_words_and_creates_nothing(
    cast: Cast, client_for, dovecot: Dovecot, mail_user: MailUser
) -> None:
    response = client_for(cast.alice).post(
        ADD, add_form(dovecot, mail_user, password="not-the-password")
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "username or password" in html
    assert "not-the-password" not in html  # never rendered back
    assert f'value="{dovecot.host}"' in html  # the rest of the form is kept
    assert accounts_of(cast) == []


def test_an_unknown_server_is_reported_as_not_found(cast: Cast, client_for) -> None:
    form = {
        "action": "connect",
        "email": "alice@acme.test",
        "preset": "",
        "imap_host": "nonexistent.invalid",
        "imap_port": 993,
        "imap_security": "ssl",
        "password": "secret-123",
        "kind": "personal",
        "sync_since_days": 90,
    }
    html = client_for(cast.alice).post(ADD, form).content.decode()
    assert "nonexistent.invalid was not found" in html
    assert "secret-123" not in html
    assert accounts_of(cast) == []


def test_a_plain_connection_to_another_machine_is_refused(cast: Cast, client_for) -> None:
    form = {
        "action": "connect",
        "email": "alice@acme.test",
        "preset": "",
        "imap_host": "imap.acme.test",
        "imap_port": 143,
        "imap_security": "none",
        "password": "secret-123",
        "kind": "personal",
        "sync_since_days": 90,
    }
    html = client_for(cast.alice).post(ADD, form).content.decode()
    assert "only allowed to this machine" in html
    assert "choose SSL/TLS or STARTTLS" in html
    assert accounts_of(cast) == []


def test_the_provider_is_guessed_from_the_address_with_its_advice(cast: Cast, client_for) -> None:
    html = (
        client_for(cast.alice)
        .post(ADD, {"action": "start", "email": "alice@yahoo.com"})
        .content.decode()
    )
    assert '<option value="yahoo" selected>Yahoo</option>' in html
    assert 'value="imap.mail.yahoo.com"' in html
    assert 'value="smtp.mail.yahoo.com"' in html
    assert "Create an app password" in html


def test_choosing_a_preset_fills_the_servers_but_never_the_password(cast: Cast, client_for) -> None:
    form = {
        "action": "fill",
        "email": "alice@acme.test",
        "preset": "fastmail",
        "imap_host": "old.example",
        "password": "typed-already",
        "kind": "personal",
    }
    html = client_for(cast.alice).post(ADD, form).content.decode()
    assert 'value="imap.fastmail.com"' in html
    assert 'value="old.example"' not in html
    assert "typed-already" not in html
    assert "errorlist" not in html  # a refill is not a failed submit


# --- The list, progress and trouble ----------------------------------------------------------


def test_the_list_shows_the_first_sync_progress_and_polls_while_it_runs(
    cast: Cast, client_for
) -> None:
    account = make_account(
        cast,
        owner=cast.alice,
        health=Health.OK,
        progress_done=1234,
        progress_total=5000,
        initial_started_at=datetime.now(UTC) - timedelta(seconds=60),
    )
    client: Client = client_for(cast.alice)
    html = client.get("/settings/email-sync").content.decode()
    assert "sales@acme.test" in html
    assert "Personal" in html
    assert '<progress max="5000" value="1234"' in html
    assert "1,234 of 5,000 messages" in html
    assert "about 3 minutes left" in html  # 3,766 left at about 20 a second
    assert f'hx-get="/settings/email-sync/{account.pk}/status?back=list"' in html
    assert 'hx-trigger="every 2s"' in html
    assert "Email sync" in html
    assert 'aria-current="page"' in html

    fragment = client.get(f"/settings/email-sync/{account.pk}/status").content.decode()
    assert "1,234 of 5,000 messages" in fragment
    assert "<html" not in fragment

    with tenancy.bound(cast.company_a.pk):
        SyncState.objects.for_company(cast.company_a).filter(account=account).update(
            initial_done=True, last_synced_at=datetime.now(UTC) - timedelta(minutes=5)
        )
    fragment = client.get(f"/settings/email-sync/{account.pk}/status").content.decode()
    assert "<progress" not in fragment
    assert "hx-trigger" not in fragment  # the first sync is over: the polling stops
    assert "Working" in fragment
    assert "Last synced 5\xa0minutes ago." in fragment


def test_trouble_shows_the_error_with_reconnect_and_sync_now(cast: Cast, client_for) -> None:
    message = "The server refused the username or password. Check them and reconnect."
    account = make_account(
        cast,
        owner=cast.alice,
        health=Health.NEEDS_RECONNECT,
        progress_done=10,
        progress_total=100,
        last_error_kind=ErrorKind.AUTH,
        last_error_message=message,
        last_error_at=datetime.now(UTC),
    )
    html = client_for(cast.alice).get("/settings/email-sync").content.decode()
    assert "the mail server refused the sign-in" in html
    assert message in html
    assert f'href="/settings/email-sync/{account.pk}/reconnect"' in html
    assert f'action="/settings/email-sync/{account.pk}/sync"' in html
    assert "hx-trigger" not in html  # nothing moves until the user acts


def test_the_list_is_empty_with_an_add_button(cast: Cast, client_for) -> None:
    html = client_for(cast.alice).get("/settings/email-sync").content.decode()
    assert "No mailbox is connected yet." in html
    assert f'href="{ADD}"' in html


# --- One account -----------------------------------------------------------------------------


def test_the_owner_chooses_folders_and_how_far_back(cast: Cast, client_for) -> None:
    account = make_account(cast, owner=cast.alice)
    client: Client = client_for(cast.alice)
    html = client.get(f"/settings/email-sync/{account.pk}").content.decode()
    assert "Sent Items (Sent)" in html  # the role, where the name doesn't say it
    checkboxes = [html.index(f'value="{name}"') for name in ("INBOX", "Sent Items", "Clients")]
    assert checkboxes == sorted(checkboxes)  # Inbox, Sent, … first, then the other folders

    response = client.post(
        f"/settings/email-sync/{account.pk}",
        {"sync_scope": "selected", "folders": ["INBOX", "Clients"], "sync_since_days": 365},
        follow=True,
    )
    assert "Saved." in response.content.decode()
    assert selected_folders(cast, account) == {"INBOX", "Clients"}
    [account] = accounts_of(cast)
    assert not account.sync_all_folders
    assert account.sync_since_days == 365

    client.post(
        f"/settings/email-sync/{account.pk}",
        {"sync_scope": "all", "folders": [], "sync_since_days": 365},
    )
    [account] = accounts_of(cast)
    assert account.sync_all_folders


def test_selected_folders_without_a_tick_is_refused(cast: Cast, client_for) -> None:
    account = make_account(cast, owner=cast.alice)
    html = (
        client_for(cast.alice)
        .post(
            f"/settings/email-sync/{account.pk}",
            {"sync_scope": "selected", "sync_since_days": 90},
        )
        .content.decode()
    )
    assert "Tick at least one folder, or choose All mail." in html
    [account] = accounts_of(cast)
    assert account.sync_all_folders


def test_the_owner_edits_a_team_accounts_members(cast: Cast, client_for) -> None:
    account = make_account(cast, owner=cast.alice, kind=AccountKind.TEAM, members=(cast.bob,))
    client: Client = client_for(cast.alice)
    client.post(
        f"/settings/email-sync/{account.pk}",
        {"sync_scope": "all", "sync_since_days": 90, "members": []},
    )
    with tenancy.bound(cast.company_a.pk):
        members = set(
            MailAccountMember.objects.for_company(cast.company_a).values_list("user_id", flat=True)
        )
    assert members == {cast.alice.pk}


def test_sync_now_asks_for_a_sync(
    cast: Cast, client_for, django_capture_on_commit_callbacks
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    account = make_account(cast, owner=cast.alice, next_sync_at=later)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(cast.alice).post(
            f"/settings/email-sync/{account.pk}/sync", {"back": "list"}, follow=True
        )
    assert response.redirect_chain == [("/settings/email-sync", 302)]
    assert "Syncing sales@acme.test now" in response.content.decode()
    assert len(callbacks) == 1  # the sync is queued once the request commits
    next_sync_at = state_of(cast, account).next_sync_at
    assert next_sync_at is not None
    assert next_sync_at < later


def test_disconnect_removes_the_account(
    cast: Cast, client_for, django_capture_on_commit_callbacks
) -> None:
    account = make_account(cast, owner=cast.alice)
    client: Client = client_for(cast.alice)
    assert "hx-confirm" in client.get(f"/settings/email-sync/{account.pk}").content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/settings/email-sync/{account.pk}/disconnect", follow=True)
    assert response.redirect_chain == [("/settings/email-sync", 302)]
    assert "sales@acme.test is disconnected." in response.content.decode()
    assert len(callbacks) == 1  # the purge of its mail
    assert accounts_of(cast) == []
    assert client.get(f"/settings/email-sync/{account.pk}").status_code == 404


@pytest.mark.services
def test_reconnect_checks_the_new_password_first(
    cast: Cast, client_for, dovecot: Dovecot, mail_user: MailUser
) -> None:
    client: Client = client_for(cast.alice)
    client.post(ADD, add_form(dovecot, mail_user))
    [account] = accounts_of(cast)
    with tenancy.bound(cast.company_a.pk):
        SyncState.objects.for_company(cast.company_a).filter(account=account).update(
            health=Health.NEEDS_RECONNECT, last_error_kind=ErrorKind.AUTH, last_error_message="x"
        )
    url = f"/settings/email-sync/{account.pk}/reconnect"

    html = client.post(url, {"password": "wrong-one"}).content.decode()
    assert "username or password" in html
    assert "wrong-one" not in html
    assert state_of(cast, account).health == Health.NEEDS_RECONNECT

    response = client.post(url, {"password": mail_user.password}, follow=True)
    assert "is reconnected and syncing again" in response.content.decode()
    assert mail_user.password not in response.content.decode()
    assert state_of(cast, account).health == Health.OK


# --- Who may open what -----------------------------------------------------------------------


def test_a_team_member_reads_the_account_but_only_the_owner_changes_it(
    cast: Cast, client_for
) -> None:
    account = make_account(cast, owner=cast.alice, kind=AccountKind.TEAM, members=(cast.bob,))
    bob: Client = client_for(cast.bob)
    urls = urls_of(account)
    assert "sales@acme.test" in bob.get("/settings/email-sync").content.decode()
    page = bob.get(urls["page"])
    assert page.status_code == 200
    assert "Only Alice Adams, the account's owner, can change what syncs." in page.content.decode()
    assert bob.get(urls["status"]).status_code == 200
    assert bob.post(urls["sync"]).status_code == 302  # anyone who reads it may ask for a sync

    refused = bob.post(
        urls["page"], {"sync_scope": "selected", "folders": ["INBOX"], "sync_since_days": 90}
    )
    assert refused.status_code == 403
    assert "Only the owner can change this account" in refused.content.decode()
    assert bob.get(urls["reconnect"]).status_code == 403
    assert bob.post(urls["reconnect"], {"password": "x"}).status_code == 403
    assert bob.post(urls["disconnect"]).status_code == 403
    assert selected_folders(cast, account) == set()
    assert accounts_of(cast) == [account]


def test_an_account_the_user_does_not_read_is_not_found(cast: Cast, client_for) -> None:
    account = make_account(cast, owner=cast.alice)  # personal: Alice's alone
    bob: Client = client_for(cast.bob)
    assert "sales@acme.test" not in bob.get("/settings/email-sync").content.decode()
    assert_not_found(bob, account)


def test_carol_gets_404_on_every_url_of_alices_account(cast: Cast, client_for) -> None:
    account = make_account(cast, owner=cast.alice, kind=AccountKind.TEAM, members=(cast.bob,))
    carol: Client = client_for(cast.carol)
    assert "sales@acme.test" not in carol.get("/settings/email-sync").content.decode()
    assert_not_found(carol, account)
    assert accounts_of(cast) == [account]


def test_the_forms_are_csrf_protected(cast: Cast) -> None:
    account = make_account(cast, owner=cast.alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.alice)
    assert client.post(f"/settings/email-sync/{account.pk}/disconnect").status_code == 403
    assert client.post(ADD, {"action": "start", "email": "a@b.test"}).status_code == 403
    assert accounts_of(cast) == [account]
