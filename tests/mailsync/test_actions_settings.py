"""The account's two-way sync option (A5): on the account object of
/api/v1/mailbox/mailAccounts (read and write, documented) and on Settings → Email sync (a
checkbox for the owner, words for the others). With it on, the archive and the bin sync."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from crm import tenancy
from inbox.models import AccountKind, FolderRole, MailAccount, MailFolder
from mailsync.sync import folder_syncs
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox

pytestmark = pytest.mark.django_db

CHECKBOX = (
    '<input type="checkbox" name="two_way_sync" aria-describedby="id_two_way_sync_helptext" '
    'id="id_two_way_sync"'
)


@pytest.fixture
def mailbox(cast: Cast) -> Mailbox:
    return Mailbox(cast)


def call(client: Client, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    response = getattr(client, method)(
        path, body, content_type="application/json", headers={"x-api-token": token}
    )
    return response.status_code, response.json()


def stored(cast: Cast, account: MailAccount) -> MailAccount:
    with tenancy.bound(cast.company_a.pk):
        return MailAccount.objects.for_company(cast.company_a).get(pk=account.pk)


def test_two_way_sync_is_read_and_set_over_the_api(cast: Cast, mailbox: Mailbox) -> None:
    account = mailbox.account(cast.alice, kind=AccountKind.TEAM, members=[cast.alice, cast.bob])
    api = Client()
    path = f"/api/v1/mailbox/mailAccounts/{account.pk}"

    status, body = call(api, "get", path, cast.alice_token)
    assert (status, body["data"]["two_way_sync"]) == (200, False)

    status, body = call(api, "patch", path, cast.alice_token, {"two_way_sync": True})
    assert (status, body["data"]["two_way_sync"]) == (200, True), body
    assert stored(cast, account).two_way_sync
    _, body = call(api, "get", "/api/v1/mailbox/mailAccounts", cast.bob_token)
    assert body["data"][0]["two_way_sync"] is True  # a member reads it
    # ... but only the owner changes it, and another company never finds it.
    assert call(api, "patch", path, cast.bob_token, {"two_way_sync": False})[0] == 403
    assert call(api, "patch", path, cast.carol_token, {"two_way_sync": False})[0] == 404
    assert stored(cast, account).two_way_sync

    status, body = call(api, "patch", path, cast.alice_token, {"two_way_sync": "sometimes"})
    assert status == 400
    assert set(body["errors"]) == {"two_way_sync"}


def test_the_schema_says_what_two_way_sync_does(cast: Cast) -> None:
    schema = Client().get("/api/schema", {"format": "json"}).json()["components"]["schemas"]

    for name in ("AccountCreateRequest", "PatchedAccountUpdateRequest"):
        field = schema[name]["properties"]["two_way_sync"]
        assert field["type"] == "boolean", name
        assert "archiving, deleting and marking read or unread" in field["description"]


def test_the_owner_ticks_two_way_sync_on_the_account_page(
    cast: Cast, mailbox: Mailbox, client_for
) -> None:
    account = mailbox.account(cast.alice)
    page = f"/settings/email-sync/{account.pk}"
    client: Client = client_for(cast.alice)
    html = client.get(page).content.decode()
    assert f"{CHECKBOX}>" in html  # not ticked
    assert "Archiving, deleting and marking read or unread in the CRM is done in your" in html

    response = client.post(
        page, {"sync_scope": "all", "sync_since_days": 90, "two_way_sync": "on"}, follow=True
    )
    assert "Saved." in response.content.decode()
    assert stored(cast, account).two_way_sync
    assert f"{CHECKBOX} checked>" in client.get(page).content.decode()

    client.post(page, {"sync_scope": "all", "sync_since_days": 90})  # unticked
    assert not stored(cast, account).two_way_sync


def test_others_read_whether_two_way_sync_is_on(cast: Cast, mailbox: Mailbox, client_for) -> None:
    account = mailbox.account(cast.alice, kind=AccountKind.TEAM, members=[cast.alice, cast.bob])
    bob: Client = client_for(cast.bob)
    page = f"/settings/email-sync/{account.pk}"

    html = bob.get(page).content.decode()
    assert 'name="two_way_sync"' not in html
    assert "Two-way sync is off: archiving, deleting and read / unread stay in the CRM." in html
    ticked = {"sync_scope": "all", "sync_since_days": 90, "two_way_sync": "on"}
    assert bob.post(page, ticked).status_code == 403
    assert not stored(cast, account).two_way_sync
    assert client_for(cast.carol).get(page).status_code == 404


def test_with_two_way_sync_the_archive_and_the_bin_sync(cast: Cast, mailbox: Mailbox) -> None:
    account = mailbox.account(cast.alice)
    with tenancy.bound(cast.company_a.pk):
        trash = MailFolder.objects.create(
            company=cast.company_a, account=account, name="Trash", role=FolderRole.TRASH
        )
        archive = MailFolder.objects.for_company(cast.company_a).get(
            account=account, role=FolderRole.ARCHIVE
        )
    account.sync_all_folders = False  # the user chose folders, and neither of these
    assert not folder_syncs(account, trash)
    assert not folder_syncs(account, archive)

    account.two_way_sync = True

    assert folder_syncs(account, trash)
    assert folder_syncs(account, archive)


def test_who_files_sent_mail_is_read_and_set_over_the_api_and_the_page(
    cast: Cast, mailbox: Mailbox, client_for
) -> None:
    account = mailbox.account(cast.alice)
    api = Client()
    path = f"/api/v1/mailbox/mailAccounts/{account.pk}"
    status, body = call(api, "get", path, cast.alice_token)
    assert (status, body["data"]["sent_copy"]) == (200, "auto")

    status, body = call(api, "patch", path, cast.alice_token, {"sent_copy": "server"})
    assert (status, body["data"]["sent_copy"]) == (200, "server"), body
    assert stored(cast, account).sent_copy == "server"
    status, body = call(api, "patch", path, cast.alice_token, {"sent_copy": "twice"})
    assert status == 400
    assert set(body["errors"]) == {"sent_copy"}

    page = f"/settings/email-sync/{account.pk}"
    client: Client = client_for(cast.alice)
    assert "Copies of sent mail" in client.get(page).content.decode()
    client.post(page, {"sync_scope": "all", "sync_since_days": 90, "sent_copy": "append"})
    assert stored(cast, account).sent_copy == "append"
    client.post(page, {"sync_scope": "all", "sync_since_days": 90})  # not sent: unchanged
    assert stored(cast, account).sent_copy == "append"
