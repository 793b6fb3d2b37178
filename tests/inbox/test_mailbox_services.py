"""The Sales Inbox's changes (B2, B7, B9, A5): archive, delete, read / unread with undo and the
provider actions they queue, labels, saved views, and the folder counts kept by triggers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crm import tenancy
from crm.models import Label, LabelKind, Membership
from crm.services import ServiceError
from inbox import services
from inbox.models import (
    ActionState,
    MailAccount,
    MailAction,
    MailCounter,
    MailThread,
    MailThreadLabel,
    MailView,
)
from inbox.services import MailboxOp
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db


def _threads(account: MailAccount) -> list[MailThread]:
    with tenancy.bound(account.company_id):
        return list(
            MailThread.objects.for_company(account.company_id)
            .filter(account=account)
            .order_by("pk")
        )


def _counts(account: MailAccount) -> dict[str, tuple[int, int]]:
    with tenancy.bound(account.company_id):
        rows = MailCounter.objects.for_company(account.company_id).filter(account_id=account.pk)
        return {row.key: (row.unread, row.total) for row in rows if row.total or row.unread}


def _counted(account: MailAccount) -> dict[str, tuple[int, int]]:
    """The same figures counted from the threads: what the triggers must agree with."""
    with tenancy.bound(account.company_id), connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT 'inbox', count(*) FILTER (WHERE is_unread), count(*)
            FROM inbox_mailthread
            WHERE account_id = %(a)s AND NOT deleted AND NOT blocked AND NOT archived
              AND 'inbox' = ANY(folder_roles)
            UNION ALL
            SELECT 'folder:' || f, count(*) FILTER (WHERE is_unread), count(*)
            FROM inbox_mailthread, unnest(folder_ids) AS f
            WHERE account_id = %(a)s AND NOT deleted AND NOT blocked
            GROUP BY f
            """,
            {"a": account.pk},
        )
        return {key: (unread, total) for key, unread, total in cursor.fetchall() if total}


@pytest.fixture
def alice(cast: Cast) -> Membership:
    return cast.membership(cast.alice, cast.company_a)


def _deliver(mailbox: Mailbox, account: MailAccount, count: int) -> list[MailThread]:
    for n in range(count):
        mailbox.deliver(account, "INBOX", message(n + 1, subject=f"Offer {n + 1}"))
    return _threads(account)


def test_counts_follow_ingest_and_every_action(
    cast: Cast, mailbox: Mailbox, alice: Membership
) -> None:
    account = mailbox.account(cast.alice)
    threads = _deliver(mailbox, account, 4)
    mailbox.deliver(account, "Sent", message(9, subject="Our reply", sender=account.email_address))
    assert _counts(account)["inbox"] == (4, 4)
    assert _counts(account) == _counted(account)

    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        services.threads_apply(membership=alice, thread_ids=[threads[0].pk], op=MailboxOp.READ)
        assert _counts(account)["inbox"] == (3, 4)
        services.threads_apply(membership=alice, thread_ids=[threads[1].pk], op=MailboxOp.ARCHIVE)
        assert _counts(account)["inbox"] == (2, 3)
        services.threads_apply(membership=alice, thread_ids=[threads[2].pk], op=MailboxOp.DELETE)
        assert _counts(account)["inbox"] == (1, 2)
        services.threads_apply(membership=alice, thread_ids=[threads[2].pk], op=MailboxOp.RESTORE)
        assert _counts(account)["inbox"] == (2, 3)
        assert _counts(account) == _counted(account)
        services.block_add(membership=alice, value="customer.test", company_wide=False)
    assert "inbox" not in _counts(account)  # every inbox thread is from the blocked domain
    assert _counts(account) == _counted(account)


def test_counts_stay_right_when_threads_merge_and_go(
    cast: Cast, mailbox: Mailbox, alice: Membership
) -> None:
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(2, message_id="<b@x>", references=["<a@x>"]))
    mailbox.deliver(account, "INBOX", message(3, message_id="<c@x>", references=["<z@x>"]))
    assert _counts(account)["inbox"] == (2, 2)
    # The root arrives and joins the first thread; still two conversations.
    mailbox.deliver(account, "INBOX", message(1, message_id="<a@x>"))
    assert _counts(account) == _counted(account)
    with tenancy.bound(cast.company_a.pk):
        MailThread.objects.for_company(cast.company_a).filter(account=account).delete()
    assert _counts(account) == {}


def test_archive_on_a_two_way_account_waits_for_the_undo_window(
    cast: Cast, mailbox: Mailbox, alice: Membership
) -> None:
    plain = mailbox.account(cast.alice)
    two_way = mailbox.account(cast.alice, email="alice.two@example.test")
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=two_way.pk).update(
            two_way_sync=True
        )
    [local] = _deliver(mailbox, plain, 1)
    mailbox.deliver(two_way, "INBOX", message(7, message_id="<two@x>"))
    mailbox.deliver(two_way, "INBOX", message(8, message_id="<two-b@x>", references=["<two@x>"]))
    [remote] = _threads(two_way)

    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        before = timezone.now()
        applied = services.threads_apply(
            membership=alice, thread_ids=[local.pk, remote.pk], op=MailboxOp.ARCHIVE
        )
        assert sorted(applied.thread_ids) == sorted([local.pk, remote.pk])
        [action] = MailAction.objects.for_company(cast.company_a).all()
        assert applied.action_ids == [action.pk]
        assert (action.account_id, action.thread_id, action.kind) == (
            two_way.pk,
            remote.pk,
            "archive",
        )
        assert len(action.message_ids) == 2
        assert action.state == ActionState.PENDING
        assert before + services.UNDO_WINDOW <= action.run_after
        assert action.created_by_id == cast.alice.pk
        assert all(
            thread.archived
            for thread in MailThread.objects.for_company(cast.company_a).filter(
                pk__in=[local.pk, remote.pk]
            )
        )

        # Undone in the window: the server never hears of it.
        services.threads_undo(membership=alice, applied=applied)
        action.refresh_from_db()
        assert action.state == ActionState.CANCELLED
        assert MailAction.objects.for_company(cast.company_a).count() == 1
        assert not any(
            thread.archived
            for thread in MailThread.objects.for_company(cast.company_a).filter(
                pk__in=[local.pk, remote.pk]
            )
        )


def test_undo_after_the_mailbox_acted_sends_the_inverse(
    cast: Cast, mailbox: Mailbox, alice: Membership
) -> None:
    account = mailbox.account(cast.alice)
    with tenancy.bound(cast.company_a.pk):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            two_way_sync=True
        )
    [thread] = _deliver(mailbox, account, 1)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        applied = services.threads_apply(
            membership=alice, thread_ids=[thread.pk], op=MailboxOp.DELETE
        )
        # mailsync carried it out meanwhile.
        MailAction.objects.for_company(cast.company_a).filter(pk__in=applied.action_ids).update(
            state=ActionState.DONE, done_at=timezone.now()
        )
        undone = services.threads_undo(membership=alice, applied=applied)
        assert undone.op == MailboxOp.RESTORE
        [inverse] = MailAction.objects.for_company(cast.company_a).filter(pk__in=undone.action_ids)
        assert inverse.kind == "restore"
        assert inverse.run_after <= timezone.now() + timedelta(seconds=1)
        thread.refresh_from_db()
        assert not thread.deleted


def test_reading_sets_the_flags_the_next_refresh_reads(
    cast: Cast, mailbox: Mailbox, alice: Membership
) -> None:
    account = mailbox.account(cast.alice)
    [thread] = _deliver(mailbox, account, 1)
    assert thread.is_unread
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        services.threads_apply(membership=alice, thread_ids=[thread.pk], op=MailboxOp.READ)
    # Another message of the same conversation arrives read: the thread stays read.
    mailbox.deliver(
        account,
        "INBOX",
        message(5, message_id="<reply@x>", references=[_first_message_id(thread)]),
        flags=["\\Seen"],
    )
    thread.refresh_from_db()
    assert thread.message_count == 2
    assert not thread.is_unread


def _first_message_id(thread: MailThread) -> str:
    with tenancy.bound(thread.company_id), connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.message_id FROM inbox_mailmessage m JOIN inbox_mailthreadmessage tm "
            "ON tm.message_id = m.id WHERE tm.thread_id = %s",
            [thread.pk],
        )
        return str(cursor.fetchone()[0])


def test_only_the_users_own_mailbox_can_be_changed(
    cast: Cast, mailbox: Mailbox, alice: Membership
) -> None:
    mine = mailbox.account(cast.alice)
    bobs = mailbox.account(cast.bob)
    [own] = _deliver(mailbox, mine, 1)
    [other] = _deliver(mailbox, bobs, 1)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        with pytest.raises(ServiceError):
            services.threads_apply(membership=alice, thread_ids=[other.pk], op=MailboxOp.DELETE)
        applied = services.threads_apply(
            membership=alice, thread_ids=[own.pk, other.pk], op=MailboxOp.DELETE
        )
        assert applied.thread_ids == [own.pk]
        other.refresh_from_db()
        assert not other.deleted


def test_labels_on_and_off(cast: Cast, mailbox: Mailbox, alice: Membership) -> None:
    account = mailbox.account(cast.alice)
    threads = _deliver(mailbox, account, 2)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        hot = services.label_save(membership=alice, name="Hot", color="red")
        with pytest.raises(ServiceError) as clash:
            services.label_save(membership=alice, name="hot", color="blue")
        assert clash.value.field == "name"
        person_label = Label.objects.create(
            company=cast.company_a, kind=LabelKind.PERSON, name="VIP"
        )
        with pytest.raises(ServiceError):
            services.labels_set(
                membership=alice,
                thread_ids=[threads[0].pk],
                label_id=person_label.pk,
                on=True,
            )
        ids = [thread.pk for thread in threads]
        services.labels_set(membership=alice, thread_ids=ids, label_id=hot.pk, on=True)
        services.labels_set(membership=alice, thread_ids=ids, label_id=hot.pk, on=True)
        rows = MailThreadLabel.objects.for_company(cast.company_a)
        assert sorted(rows.values_list("thread_id", flat=True)) == sorted(ids)
        services.labels_set(membership=alice, thread_ids=ids[:1], label_id=hot.pk, on=False)
        assert list(rows.values_list("thread_id", flat=True)) == ids[1:]
        renamed = services.label_save(
            membership=alice, name="Warm", color="orange", label_id=hot.pk
        )
        assert (renamed.name, renamed.color) == ("Warm", "orange")
        services.label_remove(membership=alice, label_id=hot.pk)
        assert not rows.exists()


def test_saved_views_are_the_users_own(cast: Cast, alice: Membership) -> None:
    bob = cast.membership(cast.bob, cast.company_a)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        view = services.view_save(
            membership=alice, name="Hot unread", folder="inbox", query="is:unread label:Hot"
        )
        again = services.view_save(
            membership=alice, name="hot UNREAD", folder="all", query="label:Hot"
        )
        assert again.pk == view.pk
        assert (again.folder, again.query) == ("all", "label:Hot")
        with pytest.raises(ServiceError):
            services.view_save(membership=alice, name=" ", folder="inbox", query="")
        with pytest.raises(ServiceError):
            services.view_delete(membership=bob, view_id=view.pk)
        services.view_delete(membership=alice, view_id=view.pk)
        assert not MailView.objects.for_company(cast.company_a).exists()
