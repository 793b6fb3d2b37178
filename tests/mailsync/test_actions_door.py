"""The provider action outbox without a mail server: the sweeper's cross-tenant door, a
company's run touching its own actions only, the hook and the sweep queueing runs, actions of
an account whose two-way sync is off, and mail in transit kept by sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import connection

from crm import hooks, tenancy
from crm.models import Company
from inbox.models import (
    ActionKind,
    ActionState,
    MailAccount,
    MailAction,
    MailFolder,
    MailMessage,
    MailThread,
)
from mailsync import actions, ingest, tasks
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(cast: Cast) -> Mailbox:
    return Mailbox(cast)


def _action(
    company: Company,
    account: MailAccount,
    *,
    run_after: datetime,
    state: str = ActionState.PENDING,
    kind: str = ActionKind.ARCHIVE,
) -> MailAction:
    with tenancy.bound(company.pk):
        return MailAction.objects.create(
            company=company,
            account=account,
            kind=kind,
            message_ids=[1, 2],
            state=state,
            run_after=run_after,
        )


def _state(company: Company, action: MailAction) -> MailAction:
    with tenancy.bound(company.pk):
        return MailAction.objects.for_company(company).get(pk=action.pk)


def test_the_sweeper_door_finds_the_companies_with_due_pending_actions(
    cast: Cast, mailbox: Mailbox
) -> None:
    now = datetime.now(UTC)
    acme = mailbox.account(cast.alice)
    globex = mailbox.account(cast.carol, company=cast.company_b)
    _action(cast.company_a, acme, run_after=now - timedelta(seconds=1))
    _action(cast.company_b, globex, run_after=now + timedelta(seconds=10))  # undo window
    _action(cast.company_b, globex, run_after=now - timedelta(minutes=1), state="cancelled")
    _action(cast.company_b, globex, run_after=now - timedelta(minutes=1), state="done")

    assert actions.due_companies(now) == [cast.company_a.pk]
    assert sorted(actions.due_companies(now + timedelta(seconds=11))) == sorted(
        [cast.company_a.pk, cast.company_b.pk]
    )


def test_a_company_run_sees_and_carries_out_its_own_actions_only(
    cast: Cast, mailbox: Mailbox
) -> None:
    now = datetime.now(UTC)
    acme = mailbox.account(cast.alice)
    globex = mailbox.account(cast.carol, company=cast.company_b)
    ours = _action(cast.company_a, acme, run_after=now - timedelta(seconds=1))
    theirs = _action(cast.company_b, globex, run_after=now - timedelta(seconds=1))

    # Bound to Acme, Globex's account's actions do not exist: nothing to claim.
    wrong = actions.account_actions_run(company_id=cast.company_a.pk, account_id=globex.pk)
    assert (wrong.done, wrong.failed, wrong.retrying) == (0, 0, 0)
    with tenancy.bound(cast.company_a.pk), connection.cursor() as cursor:
        cursor.execute("SELECT company_id FROM inbox_mailaction")
        assert {row[0] for row in cursor.fetchall()} == {cast.company_a.pk}

    outcome = actions.company_actions_run(company_id=cast.company_a.pk)

    assert outcome.failed == 1  # Acme's (two-way sync is off on that account: see below)
    assert _state(cast.company_a, ours).state == ActionState.CANCELLED
    assert _state(cast.company_b, theirs).state == ActionState.PENDING


def test_actions_of_an_account_without_two_way_sync_stay_in_the_crm(
    cast: Cast, mailbox: Mailbox
) -> None:
    account = mailbox.account(cast.alice)
    action = _action(cast.company_a, account, run_after=datetime.now(UTC))

    actions.company_actions_run(company_id=cast.company_a.pk)

    closed = _state(cast.company_a, action)
    assert closed.state == ActionState.CANCELLED
    assert closed.last_error == (
        "Two-way sync is off for this mailbox, so the change was made in the CRM only."
    )
    assert closed.attempts == 0


def test_the_inbox_hook_queues_one_run_for_the_end_of_the_undo_window(
    cast: Cast, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    sent: list[dict[str, object]] = []
    # Stop at the broker's door: record what would be sent.
    monkeypatch.setattr(tasks.company_actions_run, "apply_async", lambda **kw: sent.append(kw))
    due = datetime.now(UTC) + timedelta(seconds=10)
    event = SimpleNamespace(company_id=cast.company_a.pk, run_after=due)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        # Two archives in one request: one run.
        hooks.publish(tasks.ACTIONS_QUEUED, event)
        hooks.publish(tasks.ACTIONS_QUEUED, event)
    assert sent == []  # nothing before the inbox's transaction commits
    for callback in callbacks:
        callback()

    assert len(sent) == 1
    assert sent[0]["kwargs"] == {"company_id": cast.company_a.pk}
    assert sent[0]["queue"] == tasks.SYNC_QUEUE
    assert 8 < float(sent[0]["countdown"]) <= 10  # type: ignore[arg-type]


def test_the_sweep_queues_each_company_with_due_actions_once_until_its_run_starts(
    cast: Cast, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict[str, object]] = []
    monkeypatch.setattr(tasks.company_actions_run, "apply_async", lambda **kw: sent.append(kw))
    acme = mailbox.account(cast.alice)
    _action(cast.company_a, acme, run_after=datetime.now(UTC) - timedelta(seconds=1))

    assert tasks.actions_due() == 1
    assert tasks.actions_due() == 0  # queued, not started yet
    tasks.company_actions_run(company_id=cast.company_a.pk)  # the run starts (and runs)
    assert tasks.actions_due() == 0  # nothing due any more

    assert [call["kwargs"] for call in sent] == [{"company_id": cast.company_a.pk}]


def test_mail_of_a_pending_move_keeps_its_thread_while_no_folder_holds_it(
    cast: Cast, mailbox: Mailbox
) -> None:
    """The server moved it (our command went through, the answer was cut) and a sync saw it
    leave the inbox: while the action is pending the message is in transit, kept with its
    thread for the sync of the target folder to find; once the action is done, what no
    folder holds is let go."""
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, message_id="<moving@customer.test>"))
    company = cast.company_a
    with tenancy.bound(company.pk):
        [message_id] = MailMessage.objects.for_company(company).values_list("pk", flat=True)
        thread = MailThread.objects.for_company(company).get(account=account)
        inbox = MailFolder.objects.for_company(company).get(account=account, name="INBOX")
    action = _action(company, account, run_after=datetime.now(UTC))
    with tenancy.bound(company.pk):
        MailAction.objects.for_company(company).filter(pk=action.pk).update(
            message_ids=[message_id], thread=thread
        )

        ingest.locations_remove(
            company_id=company.pk, account_id=account.pk, folder_id=inbox.pk, provider_ids=None
        )

        assert MailMessage.objects.for_company(company).filter(pk=message_id).exists()
        kept = MailThread.objects.for_company(company).get(pk=thread.pk)
        assert (kept.message_count, kept.folder_roles) == (1, [])

        MailAction.objects.for_company(company).filter(pk=action.pk).update(state="done")
        ingest.messages_release(
            company_id=company.pk, account_id=account.pk, message_ids=[message_id]
        )

        assert not MailMessage.objects.for_company(company).filter(pk=message_id).exists()
        assert not MailThread.objects.for_company(company).filter(pk=thread.pk).exists()
        # The action stays, as the record of what was asked; its thread is gone.
        assert MailAction.objects.for_company(company).get(pk=action.pk).thread_id is None
