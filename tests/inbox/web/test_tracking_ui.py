"""What the salesperson sees of open and click tracking (E2, E3): the eye and cursor icons in the
Sales Inbox and on an item's Email tab (from the thread's own columns: no query per row), the
line and the timeline of a tracked message in the opened conversation (times in the user's
zone, which link, client and device, who it was from), what an open means, and who may see it:
who may see the conversation (inbox.visibility); Bob not Alice's private one, Carol nothing.
And the composer's switches beside Send, starting from the user's preference.

Sent messages come through the real ingest (the Sent folder, as sync files them); their outbox
row, events and aggregates are written here as the flush worker would leave them."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from contacts.models import Person
from crm import services as crm_services
from crm import tenancy
from crm.models import User
from inbox import rawstore
from inbox.models import (
    MailAccount,
    MailDraft,
    MailMessage,
    MailOutbound,
    MailThread,
    MailTrackingEvent,
    OutboundState,
    Sharing,
)
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.inbox.web.test_email_tab import person, thread_of
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
PAT = "pat@customer.test"
_keys = count()


# --- Tracked mail, as sending and the flush worker leave it ---------------------------------------


def sent(
    mailbox: Mailbox,
    account: MailAccount,
    subject: str,
    *,
    n: int = 1,
    references: list[str] | None = None,
) -> MailMessage:
    """A message Alice sent, filed from the Sent folder."""
    message_id = f"<sent{n}.{secrets.token_hex(4)}@acme.test>"
    raw = message(
        n,
        subject=subject,
        sender=f"Alice Adams <{account.email_address}>",
        to=f"Pat Customer <{PAT}>",
        message_id=message_id,
        references=references,
    )
    mailbox.deliver(account, "Sent", raw)
    with tenancy.bound(account.company_id):
        return MailMessage.objects.for_company(account.company_id).get(
            message_id=message_id.strip("<>")
        )


def outbound(
    message_row: MailMessage,
    account: MailAccount,
    *,
    opens: bool = True,
    links: bool = True,
    urls: tuple[str, ...] = ("https://acme.test/pricing", "https://acme.test/demo"),
    sender: User | None = None,
) -> MailOutbound:
    with tenancy.bound(account.company_id):
        return MailOutbound.objects.create(
            company_id=account.company_id,
            account=account,
            message=message_row,
            state=OutboundState.SENT,
            token=secrets.token_hex(16),
            envelope_to=[PAT],
            sent_at=datetime.now(UTC) - timedelta(days=1),
            track_opens=opens,
            track_links=links,
            tracked_links=list(urls) if links else [],
            created_by=sender,
        )


def event(
    sent_row: MailOutbound,
    kind: str,
    *,
    ago: timedelta,
    source: str = "person",
    link: int | None = None,
    client: str = "",
    device: str = "",
    detail: str = "",
) -> MailTrackingEvent:
    with tenancy.bound(sent_row.company_id):
        return MailTrackingEvent.objects.create(
            company_id=sent_row.company_id,
            outbound=sent_row,
            message_id=sent_row.message_id,
            kind=kind,
            link_number=link,
            url=sent_row.tracked_links[link] if link is not None else "",
            occurred_at=datetime.now(UTC) - ago,
            user_agent="Mozilla/5.0 (test)",
            client=client,
            device=device,
            source=source,
            source_detail=detail,
            event_key=f"test-{next(_keys)}",
        )


def settle(sent_row: MailOutbound) -> None:
    """The aggregates, as `inbox.tracking` keeps them from the events."""
    with tenancy.bound(sent_row.company_id):
        events = list(
            MailTrackingEvent.objects.for_company(sent_row.company_id).filter(outbound=sent_row)
        )
        opens = [e.occurred_at for e in events if e.kind == "open" and e.source == "person"]
        clicks = [e.occurred_at for e in events if e.kind == "click" and e.source == "person"]
        machine = [e for e in events if e.kind == "open" and e.source == "machine"]
        MailOutbound.objects.for_company(sent_row.company_id).filter(pk=sent_row.pk).update(
            opened_at=min(opens, default=None),
            open_count=len(opens),
            machine_open_count=len(machine),
            clicked_at=min(clicks, default=None),
            click_count=len(clicks),
        )
        held = MailThread.objects.for_company(sent_row.company_id).filter(
            memberships__message_id=sent_row.message_id
        )
        held.update(
            tracked_opened_at=max(opens, default=None),
            tracked_clicked_at=max(clicks, default=None),
        )


@pytest.fixture
def account(cast: Cast, mailbox: Mailbox) -> MailAccount:
    return mailbox.account(cast.alice)


@pytest.fixture
def pat(cast: Cast) -> Person:
    return person(cast)


@pytest.fixture
def tracked(mailbox: Mailbox, account: MailAccount, pat: Person) -> MailOutbound:
    """ "Quote" to Pat: opened three times by Pat (last two hours ago), once by Apple's
    prefetch, the pricing link clicked once."""
    row = outbound(sent(mailbox, account, "Quote"), account)
    event(
        row,
        "open",
        ago=timedelta(hours=20),
        source="machine",
        client="Apple Mail",
        detail="Apple Mail Privacy Protection loads every message's images",
    )
    event(row, "open", ago=timedelta(hours=6), client="Gmail", device="desktop")
    event(row, "open", ago=timedelta(hours=4), client="Gmail", device="desktop")
    event(row, "click", ago=timedelta(hours=3), link=0, client="Chrome", device="desktop")
    event(row, "open", ago=timedelta(hours=2), client="Apple Mail", device="mobile")
    settle(row)
    return row


@pytest.fixture
def alice(cast: Cast, client_for: Any) -> Client:
    client: Client = client_for(cast.alice)
    return client


@pytest.fixture
def bob(cast: Cast, client_for: Any) -> Client:
    client: Client = client_for(cast.bob)
    return client


@pytest.fixture
def carol(cast: Cast, client_for: Any) -> Client:
    client: Client = client_for(cast.carol)
    return client


def thread_holding(message_row: MailMessage) -> MailThread:
    with tenancy.bound(message_row.company_id):
        return MailThread.objects.for_company(message_row.company_id).get(
            memberships__message_id=message_row.pk
        )


def row_html(html: str, thread_id: int, element: str = "li") -> str:
    found = re.search(
        rf'<{element} class="[^"]*" (?:id="mailbox-row-{thread_id}" )?'
        rf'data-thread-id="{thread_id}".*?</{element}>',
        html,
        re.S,
    )
    assert found, f"the row of thread {thread_id} is on the page"
    return found.group(0)


def tracking_section(html: str, message_id: int) -> str:
    found = re.search(
        rf'<section class="email-tracking"[^>]*data-tracking-for="{message_id}">.*?</section>',
        html,
        re.S,
    )
    assert found, f"message {message_id} shows its tracking"
    return found.group(0)


def text(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


# --- Icons ----------------------------------------------------------------------------------------


def test_the_sales_inbox_shows_the_eye_and_the_cursor_with_their_times(
    cast: Cast, mailbox: Mailbox, account: MailAccount, tracked: MailOutbound, alice: Client
) -> None:
    crm_services.user_preferences_update(
        user=cast.alice, timezone="Asia/Kolkata", email_links="composer"
    )
    outbound(sent(mailbox, account, "Untouched", n=2), account)
    quote = thread_of(account, "Quote")

    html = alice.get("/inbox?folder=sent").content.decode()

    row = row_html(html, quote.pk)
    assert 'role="img" aria-label="Opened"' in row
    assert 'role="img" aria-label="Link clicked"' in row
    shown = quote_opened_at(quote).astimezone(ZoneInfo("Asia/Kolkata"))
    hour = shown.hour % 12 or 12
    assert f"{shown:%b}. {shown.day}, {shown.year}, {hour}:{shown:%M}" in row
    untouched = row_html(html, thread_of(account, "Untouched").pk)
    assert "tracking-icon" not in untouched


def quote_opened_at(thread: MailThread) -> datetime:
    with tenancy.bound(thread.company_id):
        found = MailThread.objects.for_company(thread.company_id).get(pk=thread.pk)
    assert found.tracked_opened_at is not None
    return found.tracked_opened_at


def test_an_items_email_tab_shows_the_icons(
    cast: Cast, account: MailAccount, tracked: MailOutbound, pat: Person, alice: Client
) -> None:
    html = alice.get(f"/items/person/{pat.pk}/emails", headers=HTMX).content.decode()

    row = row_html(html, thread_of(account, "Quote").pk)
    assert 'aria-label="Opened"' in row
    assert 'aria-label="Link clicked"' in row


def test_icons_cost_no_query_per_row(
    cast: Cast, mailbox: Mailbox, account: MailAccount, pat: Person, alice: Client
) -> None:
    def page() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = alice.get("/inbox?folder=sent")
        assert response.status_code == 200
        return len(queries.captured_queries)

    first = outbound(sent(mailbox, account, "One", n=1), account)
    event(first, "open", ago=timedelta(hours=1))
    settle(first)
    alice.get("/inbox?folder=sent")
    one = page()
    for n in range(2, 8):
        row = outbound(sent(mailbox, account, f"Many {n}", n=n), account)
        event(row, "open", ago=timedelta(hours=1))
        event(row, "click", ago=timedelta(minutes=30), link=1)
        settle(row)
    html = alice.get("/inbox?folder=sent").content.decode()
    assert html.count('aria-label="Opened"') == 7
    assert html.count('aria-label="Link clicked"') == 6
    assert page() == one


# --- The conversation -----------------------------------------------------------------------------


def test_the_conversation_shows_the_line_the_timeline_and_what_an_open_means(
    cast: Cast, account: MailAccount, tracked: MailOutbound, alice: Client
) -> None:
    crm_services.user_preferences_update(
        user=cast.alice, timezone="America/New_York", email_links="composer"
    )
    thread = thread_of(account, "Quote")

    html = alice.get(f"/inbox/threads/{thread.pk}", headers=HTMX).content.decode()

    section = tracking_section(html, tracked.message_id)
    words = text(section)
    assert "Opened 3 times, last 2 hours ago · 1 machine open · 1 link click" in words
    assert "Timeline: 5 events" in words
    entries = re.findall(r'<li class="tracking-event [^"]*" data-tracking-event="(\w+)">', section)
    assert entries == ["open", "click", "open", "open", "open"]  # newest first
    assert "Clicked link 1" in words
    assert "https://acme.test/pricing" in words
    assert "Apple Mail · phone" in words
    assert "Gmail · computer" in words
    assert words.count("Recipient") == 4
    assert "Machine open" in words
    assert "Apple Mail Privacy Protection loads every message" in words
    # Times in Alice's zone.
    first_open = re.search(r'data-tracking-event="open">\s*<time datetime="([^"]+)"', section)
    assert first_open
    assert first_open.group(1).endswith(("-05:00", "-04:00"))
    # What an open means, in plain words.
    assert "It is a hint, not proof" in words
    assert "many people and companies block images" in words
    assert "Apple Mail Privacy Protection, Gmail" in words
    # The reader's header shows the icons too.
    assert 'aria-label="Opened"' in html


def test_a_tracked_message_not_opened_yet_and_one_opened_by_machines_only(
    cast: Cast, mailbox: Mailbox, account: MailAccount, pat: Person, alice: Client
) -> None:
    first = sent(mailbox, account, "Proposal", n=1)
    waiting = outbound(first, account, links=False)
    second = sent(mailbox, account, "Re: Proposal", n=2, references=[f"<{first.message_id}>"])
    machines = outbound(second, account)
    event(
        machines,
        "open",
        ago=timedelta(minutes=5),
        source="machine",
        detail="Gmail's image proxy: Gmail loaded the image, maybe not for a reader",
    )
    event(
        machines,
        "click",
        ago=timedelta(minutes=5),
        source="scanner",
        link=1,
        detail="Clicked seconds after delivery",
    )
    settle(waiting)
    settle(machines)
    thread = thread_holding(first)

    html = alice.get(f"/mail/threads/{thread.pk}", headers=HTMX).content.decode()

    assert text(tracking_section(html, waiting.message_id)).startswith("Not opened yet")
    assert "What an open means" in tracking_section(html, waiting.message_id)
    words = text(tracking_section(html, machines.message_id))
    assert words.startswith("Machine opens only: see below · No link clicks yet")
    assert "Link scanner" in words
    assert "Clicked seconds after delivery" in words
    assert "Gmail's image proxy" in words


def test_received_and_untracked_messages_show_no_tracking(
    cast: Cast, mailbox: Mailbox, account: MailAccount, pat: Person, alice: Client
) -> None:
    mailbox.deliver(account, "INBOX", message(1, subject="From Pat", sender=PAT))
    untracked = sent(mailbox, account, "Plain", n=2)
    outbound(untracked, account, opens=False, links=False)

    for subject in ("From Pat", "Plain"):
        thread = thread_of(account, subject)
        html = alice.get(f"/mail/threads/{thread.pk}", headers=HTMX).content.decode()
        assert "email-tracking" not in html
        assert "tracking-icon" not in html


def test_the_timeline_costs_the_same_queries_for_one_tracked_message_or_five(
    cast: Cast, mailbox: Mailbox, account: MailAccount, pat: Person, alice: Client
) -> None:
    first = sent(mailbox, account, "Series", n=1)
    row = outbound(first, account)
    event(row, "open", ago=timedelta(hours=1))
    settle(row)
    thread = thread_holding(first)
    url = f"/mail/threads/{thread.pk}"
    alice.get(url, headers=HTMX)
    with CaptureQueriesContext(connection) as one:
        alice.get(url, headers=HTMX)
    for n in range(2, 6):
        later = sent(mailbox, account, f"Re: Series {n}", n=n, references=[f"<{first.message_id}>"])
        reply = outbound(later, account)
        event(reply, "open", ago=timedelta(minutes=n))
        event(reply, "click", ago=timedelta(minutes=n), link=0)
        settle(reply)
    with CaptureQueriesContext(connection) as five:
        html = alice.get(url, headers=HTMX).content.decode()
    assert html.count('class="email-tracking"') == 5
    assert len(five.captured_queries) == len(one.captured_queries)


# --- Who sees it ----------------------------------------------------------------------------------


def test_bob_cannot_open_alices_private_conversation_nor_its_timeline(
    cast: Cast, account: MailAccount, tracked: MailOutbound, pat: Person, alice: Client, bob: Client
) -> None:
    thread = thread_of(account, "Quote")
    response = alice.post(
        f"/mail/threads/{thread.pk}/sharing", {"sharing": Sharing.PRIVATE}, headers=HTMX
    )
    assert response.status_code == 200

    assert bob.get(f"/mail/threads/{thread.pk}", headers=HTMX).status_code == 404
    assert bob.get(f"/inbox/threads/{thread.pk}", headers=HTMX).status_code == 404
    tab = bob.get(f"/items/person/{pat.pk}/emails", headers=HTMX).content.decode()
    assert "Quote" not in tab
    assert "tracking-icon" not in tab


def test_a_shared_conversations_tracking_shows_to_who_sees_it_on_an_item(
    cast: Cast, account: MailAccount, tracked: MailOutbound, pat: Person, bob: Client
) -> None:
    thread = thread_of(account, "Quote")

    tab = bob.get(f"/items/person/{pat.pk}/emails", headers=HTMX).content.decode()
    assert 'aria-label="Opened"' in row_html(tab, thread.pk)
    html = bob.get(f"/mail/threads/{thread.pk}", headers=HTMX).content.decode()
    words = text(tracking_section(html, tracked.message_id))
    assert words.startswith("Opened 3 times")
    assert "Timeline: 5 events" in words
    # Not in his own Sales Inbox: the conversation is Alice's mailbox's.
    assert bob.get(f"/inbox/threads/{thread.pk}", headers=HTMX).status_code == 404


def test_a_colleague_who_received_the_message_sees_it_but_not_its_tracking(
    cast: Cast, mailbox: Mailbox, account: MailAccount, tracked: MailOutbound, bob: Client
) -> None:
    """Bob was copied on Alice's tracked "Quote": his mailbox holds the same message, which
    he reads, but whether Pat opened it is the sender's conversation's to show."""
    bobs = mailbox.account(cast.bob)
    with tenancy.bound(cast.company_a.pk):
        raw = rawstore.raw_read(
            MailMessage.objects.for_company(cast.company_a).get(pk=tracked.message_id).raw_path
        )
    mailbox.deliver(bobs, "INBOX", raw)
    with tenancy.bound(cast.company_a.pk):
        his = MailThread.objects.for_company(cast.company_a).get(
            account=bobs, memberships__message_id=tracked.message_id
        )
        alices = thread_of(account, "Quote")
        MailThread.objects.for_company(cast.company_a).filter(pk=alices.pk).update(
            sharing=Sharing.PRIVATE
        )

    html = bob.get(f"/inbox/threads/{his.pk}", headers=HTMX).content.decode()

    assert "Quote" in html
    assert f'data-tracking-for="{tracked.message_id}"' not in html
    assert "Opened 3 times" not in html


def test_carol_gets_404(
    cast: Cast, account: MailAccount, tracked: MailOutbound, carol: Client
) -> None:
    thread = thread_of(account, "Quote")
    assert carol.get(f"/mail/threads/{thread.pk}", headers=HTMX).status_code == 404
    assert carol.get(f"/inbox/threads/{thread.pk}", headers=HTMX).status_code == 404


# --- The composer (E3) ----------------------------------------------------------------------------


def _checkbox(html: str, name: str) -> str:
    found = re.search(rf'<input type="checkbox" name="{name}"[^>]*>', html)
    assert found, f"the {name} switch is on the page"
    return found.group(0)


def test_the_tracking_switches_sit_beside_send_and_start_from_the_preference(
    cast: Cast, account: MailAccount, alice: Client
) -> None:
    html = alice.get("/inbox/compose").content.decode()
    actions = html[html.index('<div class="composer-actions">') :]
    assert "checked" in _checkbox(actions, "track_opens")
    assert "checked" in _checkbox(actions, "track_links")
    start = html.index('<details class="composer-options"')
    details = html[start : html.index("</details>", start)]
    assert "track_opens" not in details
    assert 'name="send_at"' in details

    crm_services.user_preferences_update(
        user=cast.alice,
        timezone="UTC",
        email_links="composer",
        track_opens_default=False,
        track_links_default=True,
    )
    html = alice.get("/inbox/compose").content.decode()
    assert "checked" not in _checkbox(html, "track_opens")
    assert "checked" in _checkbox(html, "track_links")


def test_a_draft_keeps_its_own_tracking_choice(
    cast: Cast, account: MailAccount, alice: Client
) -> None:
    response = alice.post(
        "/inbox/compose/save",
        {"account": account.pk, "to": PAT, "subject": "Draft", "track_opens": "1"},
    )
    assert response.status_code == 200
    draft_id = response.json()["draft"]
    crm_services.user_preferences_update(
        user=cast.alice,
        timezone="UTC",
        email_links="composer",
        track_opens_default=False,
        track_links_default=True,
    )

    html = alice.get(f"/inbox/compose?draft={draft_id}").content.decode()

    assert "checked" in _checkbox(html, "track_opens")  # the draft's choice
    assert "checked" not in _checkbox(html, "track_links")
    with tenancy.bound(cast.company_a.pk):
        draft = MailDraft.objects.for_company(cast.company_a).get(pk=draft_id)
    assert (draft.track_opens, draft.track_links) == (True, False)
