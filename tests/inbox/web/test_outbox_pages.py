"""The outbox in the Sales Inbox: the Scheduled folder (messages queued for a chosen time, shown
in the user's time zone; cancel, edit) and the Outbox (a message the server refused, with the
reason, tried again; a message that may have gone out, settled by the user), their entries in
the folder list, and who sees what: the users of the sending mailbox only (Bob not Alice's
personal mailbox, Carol nothing of Acme's).

Messages are queued as the composer queues them (`sending.message_send`); failures come from a
real SMTP server (aiosmtpd) refusing, through `mailsync.outbox`, as in
tests/mailsync/test_outbox.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm import services as crm_services
from crm import tenancy
from crm.models import User
from inbox import sending
from inbox.models import AccountKind, MailAccount, MailOutbound, OutboundState
from mailsync import outbox
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.conftest import (  # noqa: F401 - fixtures
    MailUser,
    connect,
    dovecot,
    mail_user,
    smtp_server,
    smtp_user,
)
from tests.mailsync.dovecot import Dovecot
from tests.mailsync.smtpd import SmtpServer

pytestmark = pytest.mark.django_db

PAT = "pat@customer.test"
ROW = re.compile(r'id="outbox-row-(\d+)"')


def _rows(html: str) -> list[int]:
    return [int(pk) for pk in ROW.findall(html)]


def _folder_entry(html: str, key: str) -> str | None:
    """The folder list's entry `key` (scheduled, outbox) of the Sales Inbox, or None."""
    found = re.search(rf'<li><a href="[^"]*" data-folder="{key}">.*?</a></li>', html, re.DOTALL)
    return found.group(0) if found else None


def _state(cast: Cast, outbound: MailOutbound) -> MailOutbound:
    with tenancy.bound(cast.company_a.pk):
        return MailOutbound.objects.for_company(cast.company_a).get(pk=outbound.pk)


def _smtp_account(mailbox: Mailbox, owner: User, **kwargs: Any) -> MailAccount:
    account = mailbox.account(owner, **kwargs)
    with tenancy.bound(account.company_id):
        MailAccount.objects.for_company(account.company_id).filter(pk=account.pk).update(
            smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none"
        )
    account.refresh_from_db()
    return account


def _send(
    cast: Cast, account: MailAccount, *, user: User | None = None, **fields: Any
) -> MailOutbound:
    """What pressing Send in the composer does (with its undo window unless `undo` is given)."""
    user = user or cast.alice
    undo = fields.pop("undo", sending.UNDO_SEND_WINDOW)
    membership = cast.membership(user, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=user.pk):
        return sending.message_send(
            membership=membership,
            draft=sending.Draft(account_id=account.pk, **fields),
            undo=undo,
        )


def _in_two_days_at(hour: int, minute: int) -> datetime:
    return (datetime.now(UTC) + timedelta(days=2)).replace(
        hour=hour, minute=minute, second=0, microsecond=0
    )


@pytest.fixture
def account(cast: Cast, mailbox: Mailbox) -> MailAccount:
    """Alice's personal mailbox, with an outgoing server (nothing is delivered here)."""
    return _smtp_account(mailbox, cast.alice)


# --- Scheduled ----------------------------------------------------------------------------------


def test_a_scheduled_message_is_listed_in_the_users_time_zone_and_cancel_takes_it_off(
    cast: Cast, client_for, account: MailAccount
) -> None:
    crm_services.user_preferences_update(
        user=cast.alice, timezone="Asia/Kolkata", email_links="composer"
    )
    when = _in_two_days_at(3, 30)  # 09:00 in Kolkata (UTC+05:30, no daylight saving)
    scheduled = _send(
        cast,
        account,
        to=[f"Pat Customer <{PAT}>"],
        cc=["bob@acme.test"],
        subject="Monday's offer",
        body_text="Dear Pat, here is the offer.",
        send_at=when,
    )
    # Waiting out its undo window is not "scheduled": the composer shows that one.
    _send(cast, account, to=[PAT], subject="Just sent", body_text="Hi")
    client: Client = client_for(cast.alice)

    inbox = client.get("/inbox").content.decode()
    entry = _folder_entry(inbox, "scheduled")
    assert entry is not None
    assert 'href="/inbox/scheduled"' in entry
    assert re.search(r"<span>Scheduled</span><span[^>]*>1</span>", entry)
    assert _folder_entry(inbox, "outbox") is None  # nothing needs Alice

    page = client.get("/inbox/scheduled").content.decode()
    assert _rows(page) == [scheduled.message_id]
    assert "Monday&#x27;s offer" in page
    assert "Dear Pat, here is the offer." in page
    assert '<span title="pat@customer.test">Pat Customer</span>' in page
    assert '<span class="outbox-row-role">Cc:</span> <span title="bob@acme.test">' in page
    assert account.email_address in page
    assert "Just sent" not in page
    local = when.astimezone(ZoneInfo("Asia/Kolkata"))
    assert local.strftime("%H:%M") == "09:00"
    shown = f"{local:%a} {local.day} {local:%b %Y}, 09:00"
    assert f'<time datetime="{local.isoformat()}">{shown}</time>' in page
    assert "Times are in your time zone, Asia/Kolkata." in page

    response = client.post(
        f"/inbox/outbox/{scheduled.message_id}/cancel", {"page": "scheduled"}, follow=True
    )

    assert response.redirect_chain == [("/inbox/scheduled", 302)]
    html = response.content.decode()
    assert "Cancelled: it will not be sent." in html
    assert _rows(html) == []
    assert "Nothing is scheduled." in html
    assert _state(cast, scheduled).state == OutboundState.CANCELLED
    # A week under "Cancelled" in the Outbox, to send after all.
    later = client.get("/inbox/outbox").content.decode()
    assert _rows(later) == [scheduled.message_id]
    assert "Cancelled before it left: nobody got it." in later
    assert f'href="/inbox/compose?retry={scheduled.message_id}&amp;next=%2Finbox%2Foutbox"' in later


def test_edit_of_a_scheduled_message_takes_it_off_the_schedule_and_opens_the_composer(
    cast: Cast, client_for, account: MailAccount
) -> None:
    scheduled = _send(cast, account, to=[PAT], subject="Later", send_at=_in_two_days_at(9, 0))

    response = client_for(cast.alice).post(
        f"/inbox/outbox/{scheduled.message_id}/cancel", {"page": "scheduled", "edit": "1"}
    )

    assert response.status_code == 302
    assert response["Location"] == (
        f"/inbox/compose?retry={scheduled.message_id}&next=%2Finbox%2Fscheduled"
    )
    assert _state(cast, scheduled).state == OutboundState.CANCELLED


def test_a_message_that_left_already_cannot_be_cancelled_and_the_page_says_why(
    cast: Cast, client_for, account: MailAccount
) -> None:
    scheduled = _send(cast, account, to=[PAT], subject="Later", send_at=_in_two_days_at(9, 0))
    with tenancy.bound(cast.company_a.pk):
        # What the worker does when it hands the message to the server.
        MailOutbound.objects.for_company(cast.company_a).filter(pk=scheduled.pk).update(
            state=OutboundState.SENDING
        )

    response = client_for(cast.alice).post(
        f"/inbox/outbox/{scheduled.message_id}/cancel", {"page": "scheduled"}, follow=True
    )

    assert "It is being sent right now and can no longer be stopped." in (response.content.decode())
    assert _state(cast, scheduled).state == OutboundState.SENDING


def test_the_account_choice_narrows_the_list_and_its_count(
    cast: Cast, client_for, mailbox: Mailbox, account: MailAccount
) -> None:
    other = _smtp_account(mailbox, cast.alice, email="alice.sales@acme.test")
    first = _send(cast, account, to=[PAT], subject="From one", send_at=_in_two_days_at(9, 0))
    second = _send(cast, other, to=[PAT], subject="From two", send_at=_in_two_days_at(10, 0))
    client: Client = client_for(cast.alice)

    assert _rows(client.get("/inbox/scheduled").content.decode()) == [
        first.message_id,
        second.message_id,
    ]
    only = client.get(f"/inbox/scheduled?account={other.pk}").content.decode()
    assert _rows(only) == [second.message_id]
    assert "From alice.sales@acme.test only." in only
    inbox = client.get(f"/inbox?account={other.pk}").content.decode()
    entry = _folder_entry(inbox, "scheduled")
    assert entry is not None
    assert f'href="/inbox/scheduled?account={other.pk}"' in entry
    assert re.search(r"<span>Scheduled</span><span[^>]*>1</span>", entry)


def test_the_scheduled_page_costs_the_same_queries_for_2_or_12_messages(
    cast: Cast, client_for, account: MailAccount
) -> None:
    client: Client = client_for(cast.alice)
    for n in range(2):
        _send(
            cast, account, to=[PAT, f"p{n}@x.test"], subject=f"S{n}", send_at=_in_two_days_at(9, 0)
        )
    client.get("/inbox/scheduled")
    with CaptureQueriesContext(connection) as few:
        client.get("/inbox/scheduled")
    for n in range(10):
        _send(
            cast,
            account,
            to=[PAT],
            cc=[f"c{n}@x.test"],
            subject=f"M{n}",
            send_at=_in_two_days_at(9, 0),
        )
    with CaptureQueriesContext(connection) as many:
        html = client.get("/inbox/scheduled").content.decode()
    assert len(_rows(html)) == 12
    assert len(many.captured_queries) == len(few.captured_queries)


# --- Who sees what ------------------------------------------------------------------------------


def test_bob_sees_nothing_of_alices_personal_mailbox_and_cannot_act_on_it(
    cast: Cast, client_for, account: MailAccount
) -> None:
    scheduled = _send(
        cast, account, to=[PAT], subject="Alice's plan", send_at=_in_two_days_at(9, 0)
    )
    bob: Client = client_for(cast.bob)

    page = bob.get("/inbox/scheduled").content.decode()
    assert _rows(page) == []
    assert "Alice&#x27;s plan" not in page
    for action in ("cancel", "retry", "send-again", "mark-sent"):
        assert bob.post(f"/inbox/outbox/{scheduled.message_id}/{action}").status_code == 404
    assert _state(cast, scheduled).state == OutboundState.QUEUED


def test_a_team_mailbox_shows_its_scheduled_mail_to_its_members(
    cast: Cast, client_for, mailbox: Mailbox
) -> None:
    team = _smtp_account(
        mailbox, cast.alice, kind=AccountKind.TEAM, members=[cast.bob], email="sales@acme.test"
    )
    scheduled = _send(cast, team, to=[PAT], subject="Team offer", send_at=_in_two_days_at(9, 0))

    bob: Client = client_for(cast.bob)
    page = bob.get("/inbox/scheduled?account=team").content.decode()
    assert _rows(page) == [scheduled.message_id]
    assert "sales@acme.test (team)" in page
    bob.post(f"/inbox/outbox/{scheduled.message_id}/cancel", {"page": "scheduled"})
    assert _state(cast, scheduled).state == OutboundState.CANCELLED


def test_carol_gets_404_on_acmes_messages_and_sees_none_of_them(
    cast: Cast, client_for, account: MailAccount
) -> None:
    scheduled = _send(cast, account, to=[PAT], subject="Acme only", send_at=_in_two_days_at(9, 0))
    carol: Client = client_for(cast.carol)

    for action in ("cancel", "retry", "send-again", "mark-sent"):
        assert carol.post(f"/inbox/outbox/{scheduled.message_id}/{action}").status_code == 404
    for path in ("/inbox/scheduled", "/inbox/outbox"):
        html = carol.get(path).content.decode()
        assert _rows(html) == []
        assert "Acme only" not in html
    assert _state(cast, scheduled).state == OutboundState.QUEUED


def test_the_pages_want_a_signed_in_member_and_actions_want_a_post(
    cast: Cast, client: Client, client_for, account: MailAccount
) -> None:
    assert client.get("/inbox/scheduled")["Location"].startswith("/login")
    scheduled = _send(cast, account, to=[PAT], subject="Later", send_at=_in_two_days_at(9, 0))
    alice: Client = client_for(cast.alice)
    assert alice.get(f"/inbox/outbox/{scheduled.message_id}/cancel").status_code == 405


# --- Against a real SMTP server -----------------------------------------------------------------


@pytest.fixture
def delivering(
    cast: Cast,
    dovecot: Dovecot,  # noqa: F811 - the imported fixture
    smtp_server: SmtpServer,  # noqa: F811
    smtp_user: MailUser,  # noqa: F811
    settings: Any,
) -> tuple[MailAccount, SmtpServer]:
    """Alice's mailbox on Dovecot, sending through the in-process SMTP server."""
    settings.CRM_MAIL_SEND_INTERVAL = 0
    smtp_server.reset()
    account = connect(
        cast,
        dovecot,
        smtp_user,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_security="none",
    )
    cache.delete(f"mailsync:outbox:last:{account.pk}")
    return account, smtp_server


def _run(cast: Cast, account: MailAccount, at: datetime | None = None) -> outbox.OutboxOutcome:
    return outbox.account_outbox_run(company_id=cast.company_a.pk, account_id=account.pk, now=at)


@pytest.mark.services
def test_a_refused_message_shows_in_the_outbox_with_the_reason_and_try_again_sends_it(
    cast: Cast, client_for, delivering: tuple[MailAccount, SmtpServer]
) -> None:
    account, smtp = delivering
    smtp.refuse(PAT, "550 5.1.1 <pat@customer.test>: Mailbox unavailable")
    failed = _send(
        cast, account, to=[PAT], subject="The contract", body_text="Signed.", undo=timedelta(0)
    )
    assert _run(cast, account).failed == 1
    client: Client = client_for(cast.alice)

    inbox = client.get("/inbox").content.decode()
    entry = _folder_entry(inbox, "outbox")
    assert entry is not None
    assert re.search(r"<span>Outbox</span><span[^>]*>1</span>", entry)
    page = client.get("/inbox/outbox").content.decode()
    assert _rows(page) == [failed.message_id]
    assert "Not sent" in page
    assert "refused the recipient pat@customer.test" in page
    assert "550 5.1.1" in page
    assert "Refused: pat@customer.test" in page
    assert f'href="/inbox/compose?retry={failed.message_id}&amp;next=%2Finbox%2Foutbox"' in page
    assert 'data-outbox-action="retry"' in page

    smtp.reset()  # the recipient's mailbox is back
    response = client.post(
        f"/inbox/outbox/{failed.message_id}/retry", {"page": "outbox"}, follow=True
    )
    assert "It goes again in a moment." in response.content.decode()
    assert _rows(response.content.decode()) == []
    assert _state(cast, failed).state == OutboundState.QUEUED
    assert _run(cast, account).sent == 1
    assert _state(cast, failed).state == OutboundState.SENT
    assert [envelope.rcpt_tos for envelope in smtp.messages] == [[PAT]]
    assert _folder_entry(client.get("/inbox").content.decode(), "outbox") is None


@pytest.mark.services
def test_a_message_put_off_for_now_shows_under_trying_again_and_needs_nobody(
    cast: Cast, client_for, delivering: tuple[MailAccount, SmtpServer]
) -> None:
    account, smtp = delivering
    smtp.refuse(PAT, "451 4.7.1 <pat@customer.test>: Greylisted, try again later")
    waiting = _send(
        cast, account, to=[PAT], subject="Greylisted", body_text="Hi", undo=timedelta(0)
    )
    assert _run(cast, account).retrying == 1
    client: Client = client_for(cast.alice)

    assert _folder_entry(client.get("/inbox").content.decode(), "outbox") is None
    page = client.get("/inbox/outbox").content.decode()
    assert 'data-section="retrying"' in page
    assert _rows(page) == [waiting.message_id]
    assert "Trying again" in page
    assert "Greylisted" in page
    assert "Next try" in page

    client.post(f"/inbox/outbox/{waiting.message_id}/cancel", {"page": "outbox"})
    assert _state(cast, waiting).state == OutboundState.CANCELLED


@pytest.mark.services
def test_a_message_that_may_have_gone_out_waits_for_the_users_word(
    cast: Cast, client_for, delivering: tuple[MailAccount, SmtpServer]
) -> None:
    account, smtp = delivering
    maybe = _send(
        cast, account, to=[PAT], subject="Contract", body_text="Signed.", undo=timedelta(0)
    )
    with tenancy.bound(cast.company_a.pk):
        # What a worker lost in the middle of DATA leaves: in flight, the lock gone.
        MailOutbound.objects.for_company(cast.company_a).filter(pk=maybe.pk).update(
            state=OutboundState.SENDING, attempts=1, last_attempt_at=datetime.now(UTC)
        )
    assert _run(cast, account).uncertain == 1
    client: Client = client_for(cast.alice)

    page = client.get("/inbox/outbox").content.decode()
    assert _rows(page) == [maybe.message_id]
    assert "Maybe sent" in page
    assert "We can&#x27;t tell whether this message went out" in page
    assert 'data-outbox-action="send_again"' in page
    assert 'data-outbox-action="mark_sent"' in page
    assert 'data-outbox-action="retry"' not in page  # never resent without the user's word

    response = client.post(
        f"/inbox/outbox/{maybe.message_id}/mark-sent", {"page": "outbox"}, follow=True
    )
    assert "Marked as sent." in response.content.decode()
    assert _state(cast, maybe).state == OutboundState.SENT
    _run(cast, account)
    assert smtp.messages == []  # nothing was sent again
    assert _folder_entry(client.get("/inbox").content.decode(), "outbox") is None


@pytest.mark.services
def test_send_again_queues_a_maybe_sent_message_once_more(
    cast: Cast, client_for, delivering: tuple[MailAccount, SmtpServer]
) -> None:
    account, smtp = delivering
    maybe = _send(
        cast, account, to=[PAT], subject="Contract", body_text="Signed.", undo=timedelta(0)
    )
    with tenancy.bound(cast.company_a.pk):
        MailOutbound.objects.for_company(cast.company_a).filter(pk=maybe.pk).update(
            state=OutboundState.SENDING, attempts=1, last_attempt_at=datetime.now(UTC)
        )
    _run(cast, account)

    response = client_for(cast.alice).post(
        f"/inbox/outbox/{maybe.message_id}/send-again", {"page": "outbox"}, follow=True
    )

    assert "It is sent again in a moment." in response.content.decode()
    assert _run(cast, account).sent == 1
    assert len(smtp.messages) == 1
