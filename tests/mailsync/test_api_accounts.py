"""/api/v1/mailbox/mailAccounts: connect (tested first), read with sync state, change what
syncs and what new conversations get (sharing, link mode), sync now, disconnect. The password
never comes back."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from crm import tenancy
from inbox.models import MailAccount, MailFolder
from mailsync.models import SyncState
from tests.conftest import Cast
from tests.mailsync.conftest import MailUser
from tests.mailsync.dovecot import Dovecot
from tests.mailsync.smtpd import SmtpServer

pytestmark = pytest.mark.services


def call(client: Client, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    response = getattr(client, method)(
        path, body, content_type="application/json", headers={"x-api-token": token}
    )
    return response.status_code, response.json()


def imap_body(server: Dovecot, user: MailUser, **extra: Any) -> dict[str, Any]:
    smtp = extra.pop("smtp")
    return {
        "provider": "imap",
        "email": user.email,
        "imap_host": server.host,
        "imap_port": server.port,
        "imap_security": "none",
        "username": user.username,
        "password": user.password,
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_security": "none",
        **extra,
    }


@pytest.fixture
def api(cast: Cast) -> Client:
    return Client()


def test_connect_read_and_never_return_the_password(
    api: Client, cast: Cast, dovecot: Dovecot, smtp_user: MailUser, smtp_server: SmtpServer
) -> None:
    status, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server, sync_since_days=30),
    )  # fmt: skip

    assert status == 201, body
    account = body["data"]
    assert account["email"] == smtp_user.email
    assert account["kind"] == "personal"
    assert account["user_id"] == cast.alice.pk
    assert account["sync_scope"] == "all"
    assert account["sync_since_days"] == 30
    assert account["sync"]["health"] == "new"
    assert {f["name"]: f["role"] for f in account["folders"]}["Sent"] == "sent"
    assert "password" not in account
    assert smtp_user.password not in str(body)

    status, listing = call(api, "get", "/api/v1/mailbox/mailAccounts", cast.alice_token)
    assert status == 200
    assert [a["id"] for a in listing["data"]] == [account["id"]]
    assert smtp_user.password not in str(listing)
    with tenancy.bound(cast.company_a.pk):
        stored = MailAccount.objects.for_company(cast.company_a).get(pk=account["id"])
    assert stored.secret_encrypted
    assert smtp_user.password not in stored.secret_encrypted


def test_a_failed_connection_test_says_why_and_saves_nothing(
    api: Client, cast: Cast, dovecot: Dovecot, smtp_user: MailUser, smtp_server: SmtpServer
) -> None:
    status, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server, password="wrong"),
    )  # fmt: skip
    assert status == 400
    assert "username or password" in body["error"]

    status, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server, imap_host="mail.nonexistent.invalid",
                  imap_security="ssl", smtp_security="ssl"),
    )  # fmt: skip
    assert status == 400
    assert "not found" in body["error"]

    status, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server, imap_host="imap.example.com"),
    )  # fmt: skip
    assert status == 400
    assert "imap_security" in str(body)

    status, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.alice_token,
        {"provider": "imap", "email": "not-an-address", "imap_port": 99999},
    )  # fmt: skip
    assert status == 400
    assert {"email", "imap_port", "imap_host", "password"} <= set(str(body).split("'"))
    with tenancy.bound(cast.company_a.pk):
        assert not MailAccount.objects.for_company(cast.company_a).exists()


def test_team_account_members_and_folder_selection(
    api: Client, cast: Cast, dovecot: Dovecot, smtp_user: MailUser, smtp_server: SmtpServer
) -> None:
    status, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server, kind="team", member_ids=[cast.bob.pk],
                  sync_scope=["INBOX"]),
    )  # fmt: skip
    assert status == 201, body
    account = body["data"]
    assert account["member_ids"] == sorted([cast.alice.pk, cast.bob.pk])
    assert account["sync_scope"] == ["INBOX"]

    # Bob, a member, reads it; only Alice, the owner, changes it.
    path = f"/api/v1/mailbox/mailAccounts/{account['id']}"
    assert call(api, "get", path, cast.bob_token)[0] == 200
    assert call(api, "patch", path, cast.bob_token, {"sync_since_days": 10})[0] == 403

    status, body = call(
        api,
        "patch",
        path,
        cast.alice_token,
        {"sync_scope": ["INBOX", "Sent"], "sync_since_days": 365},
    )
    assert status == 200, body
    assert body["data"]["sync_scope"] == ["INBOX", "Sent"]
    assert body["data"]["sync_since_days"] == 365
    with tenancy.bound(cast.company_a.pk):
        selected = MailFolder.objects.for_company(cast.company_a).filter(selected=True)
        assert sorted(selected.values_list("name", flat=True)) == ["INBOX", "Sent"]

    status, body = call(api, "patch", path, cast.alice_token, {"sync_scope": ["Nope"]})
    assert status == 400
    assert "Nope" in str(body)
    status, body = call(api, "patch", path, cast.alice_token, {"sync_since_days": 1})
    assert status == 400


def test_sync_now_disconnect_and_other_companies(
    api: Client, cast: Cast, dovecot: Dovecot, smtp_user: MailUser, smtp_server: SmtpServer
) -> None:
    _, body = call(
        api,
        "post",
        "/api/v1/mailbox/mailAccounts",
        cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server),
    )
    path = f"/api/v1/mailbox/mailAccounts/{body['data']['id']}"

    # Carol (another company) and Bob (not a member) get 404, as for a missing account.
    for token in (cast.carol_token, cast.bob_token):
        assert call(api, "get", path, token)[0] == 404
        assert call(api, "post", path + "/sync", token)[0] == 404
        assert call(api, "delete", path, token)[0] == 404

    status, body = call(api, "post", path + "/sync", cast.alice_token)
    assert status == 200
    assert body["data"]["sync"]["next_sync_at"] is not None

    status, body = call(api, "delete", path, cast.alice_token)
    assert status == 200
    assert call(api, "get", path, cast.alice_token)[0] == 404
    assert call(api, "get", "/api/v1/mailbox/mailAccounts", cast.alice_token)[1]["data"] == []


def test_progress_and_last_error_over_the_api(
    api: Client, cast: Cast, dovecot: Dovecot, smtp_user: MailUser, smtp_server: SmtpServer
) -> None:
    _, body = call(
        api,
        "post",
        "/api/v1/mailbox/mailAccounts",
        cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server),
    )
    account_id = body["data"]["id"]
    with tenancy.bound(cast.company_a.pk):
        SyncState.objects.for_company(cast.company_a).filter(account_id=account_id).update(
            progress_done=250, progress_total=1000, health="needs_reconnect",
            last_error_kind="auth", last_error_message="The server refused the password.",
        )  # fmt: skip

    _, body = call(api, "get", f"/api/v1/mailbox/mailAccounts/{account_id}", cast.alice_token)

    sync = body["data"]["sync"]
    assert sync["progress"]["done"] == 250
    assert sync["progress"]["total"] == 1000
    assert sync["progress"]["percent"] == 25
    assert sync["health"] == "needs_reconnect"
    assert sync["last_error"]["kind"] == "auth"
    assert sync["last_error"]["message"] == "The server refused the password."


def test_the_sending_settings_are_tested_too(
    api: Client, cast: Cast, dovecot: Dovecot, smtp_user: MailUser, smtp_server: SmtpServer
) -> None:
    smtp_server.add_user(smtp_user.username, "another-password")  # SMTP has its own password
    status, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server),
    )  # fmt: skip
    assert status == 400
    assert "SMTP server refused the username or password" in body["error"]
    assert "smtp_connection" in str(body)
    with tenancy.bound(cast.company_a.pk):
        assert not MailAccount.objects.for_company(cast.company_a).exists()


def test_an_admin_sees_another_users_account_no_more_than_its_mail(
    api: Client, cast: Cast, dovecot: Dovecot, smtp_user: MailUser, smtp_server: SmtpServer
) -> None:
    status, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.bob_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server),
    )  # fmt: skip
    assert status == 201
    path = f"/api/v1/mailbox/mailAccounts/{body['data']['id']}"

    assert call(api, "get", "/api/v1/mailbox/mailAccounts", cast.alice_token)[1]["data"] == []
    assert call(api, "get", path, cast.alice_token)[0] == 404
    assert call(api, "delete", path, cast.alice_token)[0] == 404
    assert call(api, "get", path, cast.bob_token)[0] == 200


def test_new_conversations_sharing_and_link_mode_are_read_set_and_changed(
    api: Client, cast: Cast, dovecot: Dovecot, smtp_user: MailUser, smtp_server: SmtpServer
) -> None:
    status, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server, default_sharing="private",
                  link_mode="manual"),
    )  # fmt: skip
    assert status == 201, body
    assert (body["data"]["default_sharing"], body["data"]["link_mode"]) == ("private", "manual")
    path = f"/api/v1/mailbox/mailAccounts/{body['data']['id']}"

    status, body = call(
        api,
        "patch",
        path,
        cast.alice_token,
        {"default_sharing": "shared", "link_mode": "automatic"},
    )
    assert status == 200, body
    assert (body["data"]["default_sharing"], body["data"]["link_mode"]) == ("shared", "automatic")
    _, body = call(api, "get", "/api/v1/mailbox/mailAccounts", cast.alice_token)
    assert (body["data"][0]["default_sharing"], body["data"][0]["link_mode"]) == (
        "shared",
        "automatic",
    )
    with tenancy.bound(cast.company_a.pk):
        stored = MailAccount.objects.for_company(cast.company_a).get(pk=body["data"][0]["id"])
    assert (stored.default_sharing, stored.link_mode) == ("shared", "automatic")


def test_without_them_an_account_shares_and_links_automatically(
    api: Client, cast: Cast, dovecot: Dovecot, smtp_user: MailUser, smtp_server: SmtpServer
) -> None:
    status, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server, kind="team", member_ids=[cast.bob.pk]),
    )  # fmt: skip

    assert status == 201, body
    assert (body["data"]["default_sharing"], body["data"]["link_mode"]) == ("shared", "automatic")
    path = f"/api/v1/mailbox/mailAccounts/{body['data']['id']}"
    # A team account may be "team only"; Bob, a member, reads it but may not change it.
    status, body = call(api, "patch", path, cast.alice_token, {"default_sharing": "team"})
    assert status == 200, body
    assert body["data"]["default_sharing"] == "team"
    status, body = call(api, "get", path, cast.bob_token)
    assert (body["data"]["default_sharing"], body["data"]["link_mode"]) == ("team", "automatic")
    assert call(api, "patch", path, cast.bob_token, {"link_mode": "manual"})[0] == 403


def test_a_sharing_the_accounts_kind_does_not_offer_is_a_field_error(
    api: Client, cast: Cast, dovecot: Dovecot, smtp_user: MailUser, smtp_server: SmtpServer
) -> None:
    status, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server, kind="team", member_ids=[cast.bob.pk],
                  default_sharing="private"),
    )  # fmt: skip
    assert status == 400
    assert body["success"] is False
    assert body["errors"] == {
        "default_sharing": ["A team account's conversations are Shared or Team only."]
    }
    assert (
        body["error"] == "default_sharing: A team account's conversations are Shared or Team only."
    )
    with tenancy.bound(cast.company_a.pk):
        assert not MailAccount.objects.for_company(cast.company_a).exists()

    _, body = call(
        api, "post", "/api/v1/mailbox/mailAccounts", cast.alice_token,
        imap_body(dovecot, smtp_user, smtp=smtp_server),
    )  # fmt: skip
    path = f"/api/v1/mailbox/mailAccounts/{body['data']['id']}"
    status, body = call(
        api, "patch", path, cast.alice_token, {"default_sharing": "team", "link_mode": "manual"}
    )
    assert status == 400
    assert body["errors"] == {
        "default_sharing": ["A personal account's conversations are Shared or Private."]
    }
    status, body = call(
        api, "patch", path, cast.alice_token, {"default_sharing": "everyone", "link_mode": "x"}
    )
    assert status == 400
    assert set(body["errors"]) == {"default_sharing", "link_mode"}
    assert '"everyone" is not a valid choice.' in body["errors"]["default_sharing"]
    _, body = call(api, "get", path, cast.alice_token)
    assert (body["data"]["default_sharing"], body["data"]["link_mode"]) == ("shared", "automatic")


def test_the_schema_documents_both_fields(api: Client) -> None:
    schema = api.get("/api/schema", {"format": "json"}).json()["components"]["schemas"]

    for name in ("AccountCreateRequest", "PatchedAccountUpdateRequest"):
        properties = schema[name]["properties"]
        assert set(properties) >= {"default_sharing", "link_mode"}, name
    assert schema["DefaultSharingEnum"]["enum"] == ["shared", "private", "team"]
    assert schema["LinkModeEnum"]["enum"] == ["automatic", "manual"]
