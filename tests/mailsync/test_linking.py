"""Linking with real synced mail (C1, C2, C5): mail synced from Dovecot finds its persons, their
organization, their open deal or lead; linking follows persons' addresses and deals as they
change; blocked senders and bulk mail are kept out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from contacts import services as contact_services
from contacts.models import Organization, Person
from contacts.services import ContactPoint
from crm import tenancy
from crm.models import Membership
from crm.sales import services as sales_services
from crm.sales.models import Deal
from inbox import selectors, services, visibility
from inbox.linking import threads_relink
from inbox.models import LinkMode, MailAccount, MailThread
from mailsync import sync
from tests.conftest import Cast
from tests.mailsync.conftest import MailUser, connect
from tests.mailsync.dovecot import Dovecot
from tests.mailsync.mail import message

pytestmark = pytest.mark.services


@pytest.fixture
def alice(cast: Cast) -> Membership:
    return cast.membership(cast.alice, cast.company_a)


@contextmanager
def acting(cast: Cast) -> Iterator[None]:
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        yield


def synced(cast: Cast, account: MailAccount) -> None:
    outcome = sync.account_sync(company_id=cast.company_a.pk, account_id=account.pk)
    assert outcome.ran
    assert not outcome.error_kind


def person(
    cast: Cast, alice: Membership, name: str, emails: Sequence[str], org: Organization | None = None
) -> Person:
    with acting(cast):
        return contact_services.person_create(
            company=cast.company_a,
            membership=alice,
            fields={
                "name": name,
                "emails": [ContactPoint(e) for e in emails],
                **({"org_id": org.pk} if org else {}),
            },
        )


def deal(cast: Cast, alice: Membership, title: str, who: Person) -> Deal:
    with acting(cast):
        return sales_services.deal_create(
            company=cast.company_a, membership=alice, fields={"title": title, "person_id": who.pk}
        )


def thread(cast: Cast, subject: str) -> MailThread:
    with acting(cast):
        return MailThread.objects.for_company(cast.company_a).get(subject=subject)


def tab(cast: Cast, alice: Membership, kind: str, item_id: int | str) -> list[str]:
    with acting(cast):
        return [
            t.subject
            for t in selectors.item_conversations(
                membership=alice, kind=kind, item_id=item_id, limit=100
            ).threads
        ]


def test_persons_sharing_an_organization_and_a_person_with_three_addresses(
    cast: Cast, alice: Membership, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    with acting(cast):
        org = contact_services.organization_create(
            company=cast.company_a, membership=alice, fields={"name": "Customer Ltd"}
        )
    pat = person(
        cast, alice, "Pat", ["pat@customer.test", "P.Smith@Customer.test", "pat@home.test"], org
    )
    quinn = person(cast, alice, "Quinn", ["quinn@customer.test"], org)
    for n, (sender, subject) in enumerate(
        [
            ("pat@customer.test", "From work"),
            ("p.smith@customer.test", "From the alias"),
            ("Pat <PAT@home.test>", "From home"),
            ("quinn@customer.test", "From Quinn"),
            ("stranger@elsewhere.test", "From a stranger"),
        ],
        start=1,
    ):
        dovecot.append(
            u.username, u.password, "INBOX", message(n, subject=subject, sender=sender, to=u.email)
        )
    # One conversation with both of them: Alice writes to Pat, copying Quinn.
    dovecot.append(
        u.username,
        u.password,
        "Sent",
        message(
            9,
            subject="To both",
            sender=u.email,
            to="pat@customer.test, Quinn <quinn@customer.test>",
        ),
    )
    account = connect(cast, dovecot, u)
    synced(cast, account)

    assert set(tab(cast, alice, "person", pat.pk)) == {
        "From work",
        "From the alias",
        "From home",
        "To both",
    }
    assert set(tab(cast, alice, "person", quinn.pk)) == {"From Quinn", "To both"}
    assert set(tab(cast, alice, "organization", org.pk)) == {
        "From work",
        "From the alias",
        "From home",
        "From Quinn",
        "To both",
    }
    assert sorted(thread(cast, "To both").person_ids) == sorted([pat.pk, quinn.pk])
    assert thread(cast, "From a stranger").person_ids == []

    # The stranger becomes a person: the stored conversation is linked to them at once.
    stranger = person(cast, alice, "Stranger", ["stranger@elsewhere.test"])
    assert tab(cast, alice, "person", stranger.pk) == ["From a stranger"]
    # Pat loses the home address: that conversation leaves Pat (and the organization).
    with acting(cast):
        contact_services.person_update(
            company=cast.company_a,
            membership=alice,
            person=pat,
            fields={
                "emails": [ContactPoint("pat@customer.test"), ContactPoint("p.smith@customer.test")]
            },
        )
    assert "From home" not in tab(cast, alice, "person", pat.pk)
    assert "From home" not in tab(cast, alice, "organization", org.pk)


def test_a_person_with_two_open_deals_and_deals_that_open_and_close(
    cast: Cast, alice: Membership, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    pat = person(cast, alice, "Pat", ["pat@customer.test"])
    older = deal(cast, alice, "Older deal", pat)
    newer = deal(cast, alice, "Newer deal", pat)
    dovecot.append(u.username, u.password, "INBOX", message(1, subject="Pricing", to=u.email))
    account = connect(cast, dovecot, u)
    synced(cast, account)

    pricing = thread(cast, "Pricing")
    assert pricing.deal_id == newer.pk  # the most recently active
    with acting(cast):
        assert [d.pk for d in selectors.deal_alternatives(membership=alice, thread=pricing)] == [
            older.pk
        ]
        # The older deal becoming the more active one does not move the conversation.
        sales_services.deal_update(
            company=cast.company_a, membership=alice, deal=older, fields={"title": "Older, edited"}
        )
        threads_relink(company_id=cast.company_a.pk, thread_ids=[pricing.pk])
    assert thread(cast, "Pricing").deal_id == newer.pk

    # Won: the conversation stays in the won deal's history.
    with acting(cast):
        sales_services.deal_update(
            company=cast.company_a, membership=alice, deal=newer, fields={"status": "won"}
        )
    assert thread(cast, "Pricing").deal_id == newer.pk
    # Deleted: the conversation moves to the deal that is still open.
    with acting(cast):
        sales_services.deal_delete(company=cast.company_a, membership=alice, deal=newer)
    assert thread(cast, "Pricing").deal_id == older.pk
    assert tab(cast, alice, "deal", older.pk) == ["Pricing"]


def test_a_lead_until_a_deal_opens_then_the_deal(
    cast: Cast, alice: Membership, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    pat = person(cast, alice, "Pat", ["pat@customer.test"])
    quinn = person(cast, alice, "Quinn", ["quinn@customer.test"])
    dovecot.append(u.username, u.password, "INBOX", message(1, subject="Interested", to=u.email))
    account = connect(cast, dovecot, u)
    synced(cast, account)
    assert thread(cast, "Interested").lead_id is None

    # A lead made for Pat afterwards takes Pat's stored mail.
    with acting(cast):
        lead = sales_services.lead_create(
            company=cast.company_a,
            membership=alice,
            fields={"title": "Inbound", "person_id": pat.pk},
        )
    assert str(thread(cast, "Interested").lead_id) == str(lead.pk)
    assert tab(cast, alice, "lead", str(lead.pk)) == ["Interested"]

    # A deal opens, for Quinn: nothing changes for Pat's mail; then it is Pat's deal.
    opened = deal(cast, alice, "Qualified", quinn)
    assert thread(cast, "Interested").deal_id is None
    with acting(cast):
        sales_services.deal_update(
            company=cast.company_a, membership=alice, deal=opened, fields={"person_id": pat.pk}
        )
    interested = thread(cast, "Interested")
    assert (interested.deal_id, interested.lead_id) == (opened.pk, None)


def test_manual_mode_links_persons_only_and_a_choice_by_hand_is_kept(
    cast: Cast, alice: Membership, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    pat = person(cast, alice, "Pat", ["pat@customer.test"])
    first = deal(cast, alice, "First", pat)
    dovecot.append(u.username, u.password, "INBOX", message(1, subject="Hello", to=u.email))
    account = connect(cast, dovecot, u)
    with acting(cast):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            link_mode=LinkMode.MANUAL
        )
    synced(cast, account)
    hello = thread(cast, "Hello")
    assert (hello.person_ids, hello.deal_id) == ([pat.pk], None)

    # By hand: linked to the deal; then unlinked by hand, which the rules respect too.
    with acting(cast):
        MailAccount.objects.for_company(cast.company_a).filter(pk=account.pk).update(
            link_mode=LinkMode.AUTOMATIC
        )
        services.thread_update(
            membership=alice, thread=hello, changes=services.ThreadChanges(deal_id=first.pk)
        )
        services.thread_update(
            membership=alice, thread=hello, changes=services.ThreadChanges(deal_id=None)
        )
    deal(cast, alice, "Second", pat)  # a deal opening re-runs linking for Pat's mail
    hello = thread(cast, "Hello")
    assert (hello.deal_id, hello.link_manual) == (None, True)


def test_a_blocked_domain_added_after_sync_hides_the_mail_and_unblocking_restores_it(
    cast: Cast, alice: Membership, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    pat = person(cast, alice, "Pat", ["pat@spammy.test"])
    dovecot.append(
        u.username,
        u.password,
        "INBOX",
        message(1, subject="Buy now", sender="pat@spammy.test", to=u.email, message_id="<b1@s>"),
    )
    dovecot.append(
        u.username,
        u.password,
        "INBOX",
        message(2, subject="Answered", sender="sales@spammy.test", to=u.email, message_id="<a1@s>"),
    )
    dovecot.append(
        u.username,
        u.password,
        "Sent",
        message(
            0, subject="Re: Answered", sender=u.email, to="sales@spammy.test", references=["<a1@s>"]
        ),
    )
    account = connect(cast, dovecot, u)
    synced(cast, account)
    with acting(cast):
        before = {t.subject: t.pk for t in visibility.mailbox_threads(membership=alice)}
    assert set(before) == {"Buy now", "Answered"}

    with acting(cast):
        block = services.block_add(membership=alice, value="@Spammy.test", company_wide=True)
        shown = {t.subject for t in visibility.mailbox_threads(membership=alice)}
    # Hidden where every sender is blocked; a conversation Alice answered stays.
    assert shown == {"Answered"}
    assert tab(cast, alice, "person", pat.pk) == []
    assert thread(cast, "Buy now").person_ids == []

    # New mail from the domain arrives hidden too.
    dovecot.append(
        u.username,
        u.password,
        "INBOX",
        message(4, subject="Last chance", sender="x@spammy.test", to=u.email),
    )
    synced(cast, account)
    with acting(cast):
        assert {t.subject for t in visibility.mailbox_threads(membership=alice)} == {"Answered"}
        services.block_remove(membership=alice, block_id=block.pk)
        after = {t.subject: t.pk for t in visibility.mailbox_threads(membership=alice)}
    # Shown again from what was stored: the same conversations, nothing fetched again.
    assert after == {**before, "Last chance": after["Last chance"]}
    assert tab(cast, alice, "person", pat.pk) == ["Buy now"]


def test_newsletters_and_machine_senders_stay_in_the_mailbox_unlinked(
    cast: Cast, alice: Membership, dovecot: Dovecot, mail_user: MailUser
) -> None:
    u = mail_user
    shop = person(cast, alice, "Shop", ["news@shop.test", "noreply@shop.test"])
    deal(cast, alice, "Shop deal", shop)
    newsletter = b"List-Id: Shop news <news.shop.test>\r\n" + message(
        1, subject="Our spring sale", sender="news@shop.test", to=u.email
    )
    dovecot.append(u.username, u.password, "INBOX", newsletter)
    dovecot.append(
        u.username,
        u.password,
        "INBOX",
        message(2, subject="Your receipt", sender="noreply@shop.test", to=u.email),
    )
    dovecot.append(
        u.username,
        u.password,
        "INBOX",
        message(3, subject="A real question", sender="news@shop.test", to=u.email),
    )
    account = connect(cast, dovecot, u)
    synced(cast, account)

    with acting(cast):
        mailbox = {t.subject for t in visibility.mailbox_threads(membership=alice)}
    assert mailbox == {"Our spring sale", "Your receipt", "A real question"}
    for subject in ("Our spring sale", "Your receipt"):
        unlinked = thread(cast, subject)
        assert (unlinked.person_ids, unlinked.deal_id) == ([], None)
    assert tab(cast, alice, "person", shop.pk) == ["A real question"]
    assert thread(cast, "A real question").deal_id is not None
