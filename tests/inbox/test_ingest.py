"""The store stage: one message per company, one thread per account, persons linked by address,
nothing left behind when the last copy goes."""

from __future__ import annotations

import pytest

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import tenancy
from inbox.models import MailFolder, MailMessage, MailParticipant, MailThread, MailThreadMessage
from mailsync import ingest
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db


def test_a_message_two_colleagues_received_is_stored_once_with_a_thread_each(
    cast: Cast, mailbox: Mailbox
) -> None:
    alices, bobs = mailbox.account(cast.alice), mailbox.account(cast.bob)
    raw = message(1, message_id="<shared@customer.test>", to="alice@acme.test, bob@acme.test")
    mailbox.deliver(alices, "INBOX", raw, flags=["\\Seen"])
    mailbox.deliver(bobs, "INBOX", raw)

    with tenancy.bound(cast.company_a.pk):
        assert MailMessage.objects.for_company(cast.company_a).count() == 1
        threads = {t.account_id: t for t in MailThread.objects.for_company(cast.company_a)}
    assert set(threads) == {alices.pk, bobs.pk}
    assert threads[alices.pk].is_unread is False  # Alice read her copy
    assert threads[bobs.pk].is_unread is True  # Bob has not

    # Bob's copy goes; Alice's copy, and so the message, stays.
    with tenancy.bound(cast.company_a.pk):
        inbox = MailFolder.objects.for_company(cast.company_a).get(account=bobs, name="INBOX")
        ingest.locations_remove(
            company_id=cast.company_a.pk, account_id=bobs.pk, folder_id=inbox.pk,
            provider_ids=None,
        )  # fmt: skip
        assert MailMessage.objects.for_company(cast.company_a).count() == 1
        assert list(
            MailThread.objects.for_company(cast.company_a).values_list("account_id", flat=True)
        ) == [alices.pk]


def test_participants_are_linked_to_the_person_with_the_address(
    cast: Cast, mailbox: Mailbox
) -> None:
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        person = contact_services.person_create(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            fields={
                "name": "Pat",
                "emails": [ContactPoint("PAT@Customer.test"), ContactPoint("pat@home.test")],
            },
        )
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, sender="Pat <pat@customer.test>"))
    mailbox.deliver(account, "INBOX", message(2, sender="Pat at home <pat@home.test>"))
    mailbox.deliver(account, "INBOX", message(3, sender="Stranger <who@else.test>"))

    with tenancy.bound(cast.company_a.pk):
        linked = dict(
            MailParticipant.objects.for_company(cast.company_a)
            .filter(role="from")
            .values_list("address", "person_id")
        )
    assert linked == {
        "pat@customer.test": person.pk,
        "pat@home.test": person.pk,
        "who@else.test": None,
    }


def test_the_last_copy_going_takes_the_message_its_rows_and_its_thread(
    cast: Cast, mailbox: Mailbox
) -> None:
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, attachment=b"x" * 100))
    with tenancy.bound(cast.company_a.pk):
        inbox = MailFolder.objects.for_company(cast.company_a).get(account=account, name="INBOX")
        removed = ingest.locations_remove(
            company_id=cast.company_a.pk, account_id=account.pk, folder_id=inbox.pk,
            provider_ids=None,
        )  # fmt: skip
        assert removed == 1
        for model in (MailMessage, MailParticipant, MailThread, MailThreadMessage):
            assert not model.objects.for_company(cast.company_a).exists(), model


def test_linking_follows_persons_created_edited_merged_deleted_and_restored_after_the_sync(
    cast: Cast, mailbox: Mailbox
) -> None:
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, sender="Pat <pat@customer.test>"))
    mailbox.deliver(account, "INBOX", message(2, sender="Pat at home <pat@home.test>"))
    company = cast.company_a
    membership = cast.membership(cast.alice, company)

    def linked() -> dict[str, int | None]:
        with tenancy.bound(company.pk):
            return dict(
                MailParticipant.objects.for_company(company)
                .filter(role="from")
                .values_list("address", "person_id")
            )

    assert linked() == {"pat@customer.test": None, "pat@home.test": None}
    with tenancy.bound(company.pk, user_id=cast.alice.pk):
        work = contact_services.person_create(
            company=company, membership=membership,
            fields={"name": "Pat", "emails": [ContactPoint("pat@customer.test")]},
        )  # fmt: skip
        home = contact_services.person_create(
            company=company, membership=membership,
            fields={"name": "Pat (home)", "emails": [ContactPoint("pat@home.test")]},
        )  # fmt: skip
    assert linked() == {"pat@customer.test": work.pk, "pat@home.test": home.pk}

    with tenancy.bound(company.pk, user_id=cast.alice.pk):
        contact_services.person_merge(
            company=company, membership=membership, keep=work, merged=home
        )
    assert linked() == {"pat@customer.test": work.pk, "pat@home.test": work.pk}

    with tenancy.bound(company.pk, user_id=cast.alice.pk):
        work.refresh_from_db()
        contact_services.person_update(
            company=company, membership=membership, person=work,
            fields={"emails": [ContactPoint("pat@home.test")]},
        )  # fmt: skip
    assert linked() == {"pat@customer.test": None, "pat@home.test": work.pk}

    with tenancy.bound(company.pk, user_id=cast.alice.pk):
        contact_services.person_delete(company=company, membership=membership, person=work)
    assert linked() == {"pat@customer.test": None, "pat@home.test": None}
    with tenancy.bound(company.pk, user_id=cast.alice.pk):
        work.refresh_from_db()
        contact_services.person_restore(company=company, membership=membership, person=work)
    assert linked() == {"pat@customer.test": None, "pat@home.test": work.pk}
