"""Beat only enqueues: the due-accounts door, the queued marker, the watchdog, the push
listener's targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from crm import tenancy
from mailsync import push, tasks
from mailsync.models import Health, Stage, SyncState
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(cast: Cast) -> Mailbox:
    return Mailbox(cast)


def _state(cast: Cast, account_id: int, **fields) -> None:
    company = cast.company_a if fields.pop("company", "a") == "a" else cast.company_b
    with tenancy.bound(company.pk):
        SyncState.objects.for_company(company).filter(account_id=account_id).update(**fields)


def test_due_accounts_are_found_across_companies_but_not_those_needing_a_reconnect(
    cast: Cast, mailbox: Mailbox
) -> None:
    now = datetime.now(UTC)
    due = mailbox.account(cast.alice)
    later = mailbox.account(cast.bob)
    broken = mailbox.account(cast.alice, email="old@acme.test")
    elsewhere = mailbox.account(cast.carol, company=cast.company_b)
    _state(cast, due.pk, next_sync_at=now - timedelta(seconds=1))
    _state(cast, later.pk, next_sync_at=now + timedelta(minutes=5), initial_done=True)
    _state(cast, broken.pk, next_sync_at=now, health=Health.NEEDS_RECONNECT)
    _state(cast, elsewhere.pk, next_sync_at=now, company="b")

    found = tasks.due_accounts(now)

    assert sorted(found) == sorted(
        [(cast.company_a.pk, due.pk, True), (cast.company_b.pk, elsewhere.pk, True)]
    )


def test_an_account_is_queued_once_until_its_pass_starts(
    cast: Cast, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = mailbox.account(cast.alice)
    cache.delete(tasks._queued_key(cast.company_a.pk, account.pk))
    sent: list[dict[str, object]] = []
    # Stop at the broker's door: record what would be sent.
    monkeypatch.setattr(tasks.account_sync, "apply_async", lambda **kw: sent.append(kw))
    company_id = cast.company_a.pk

    first = tasks.account_sync_enqueue(company_id=company_id, account_id=account.pk, initial=True)
    again = tasks.account_sync_enqueue(company_id=company_id, account_id=account.pk)
    cache.delete(
        tasks._queued_key(cast.company_a.pk, account.pk)
    )  # what the pass does when it starts
    after_start = tasks.account_sync_enqueue(company_id=company_id, account_id=account.pk)
    cache.delete(tasks._queued_key(cast.company_a.pk, account.pk))

    assert (first, again, after_start) == (True, False, True)
    assert [call["queue"] for call in sent] == [tasks.INITIAL_QUEUE, tasks.SYNC_QUEUE]


def test_the_watchdog_resets_stuck_passes_only(cast: Cast, mailbox: Mailbox) -> None:
    stuck, busy = mailbox.account(cast.alice), mailbox.account(cast.bob)
    now = datetime.now(UTC)
    _state(cast, stuck.pk, stage=Stage.FETCHING, heartbeat_at=now - timedelta(hours=1))
    _state(cast, busy.pk, stage=Stage.FETCHING, heartbeat_at=now - timedelta(seconds=5))

    assert tasks.sync_watchdog() == 1

    with tenancy.bound(cast.company_a.pk):
        states = {s.account_id: s for s in SyncState.objects.for_company(cast.company_a)}
    assert states[stuck.pk].stage == Stage.IDLE
    assert states[stuck.pk].next_sync_at is not None
    assert states[busy.pk].stage == Stage.FETCHING


def test_push_watches_inbox_and_sent_of_every_imap_account(cast: Cast, mailbox: Mailbox) -> None:
    account = mailbox.account(cast.alice)
    other = mailbox.account(cast.carol, company=cast.company_b)

    targets = {t.key: t for t in push.push_targets()}

    mine = targets[f"{cast.company_a.pk}:{account.pk}"]
    assert mine.folders == ("INBOX", "Sent")
    assert mine.password == "imap-password"  # decrypted in memory, for the IDLE login
    assert "imap-password" not in repr(mine)
    assert f"{cast.company_b.pk}:{other.pk}" in targets
