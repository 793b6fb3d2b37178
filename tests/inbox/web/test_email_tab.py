"""The Email tab of person, organization, deal, lead and project pages (C4), a conversation
opened in place, its links (C3) and its sharing (D3), through the web fragments."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import pytest
from django.test import Client

from contacts import services as contact_services
from contacts.models import Organization, Person
from contacts.services import ContactPoint
from crm import tenancy
from crm.models import Company, User
from crm.sales import services as sales_services
from crm.sales.models import Deal, Lead, Project
from inbox import linking
from inbox.models import AccountKind, MailAccount, MailMessage, MailThread, Sharing
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
PAT = "Pat Customer <pat@customer.test>"
THREAD_ID = re.compile(r'data-thread-id="(\d+)"')


# --- Making things as the pages would ----------------------------------------------------------


def person(cast: Cast, name: str = "Pat Customer", **fields: Any) -> Person:
    fields.setdefault("emails", [ContactPoint("pat@customer.test")])
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        return contact_services.person_create(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            fields=contact_services.PersonFields(name=name, **fields),  # type: ignore[typeddict-item]
        )


def organization(cast: Cast, name: str = "Initech") -> Organization:
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        return contact_services.organization_create(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            fields={"name": name},
        )


def deal(cast: Cast, title: str, owner: User | None = None, **fields: Any) -> Deal:
    owner = owner or cast.alice
    with tenancy.bound(cast.company_a.pk, user_id=owner.pk):
        return sales_services.deal_create(
            company=cast.company_a,
            membership=cast.membership(owner, cast.company_a),
            fields={"title": title, **fields},
        )


def lead(cast: Cast, title: str, **fields: Any) -> Lead:
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        return sales_services.lead_create(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            fields={"title": title, **fields},
        )


def project(cast: Cast, title: str) -> Project:
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        return sales_services.project_create(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            fields={"title": title},
        )


def threads(company: Company, **filters: Any) -> list[MailThread]:
    with tenancy.bound(company.pk):
        return list(MailThread.objects.for_company(company).filter(**filters).order_by("id"))


def thread_of(account: MailAccount, subject: str) -> MailThread:
    with tenancy.bound(account.company_id):
        return MailThread.objects.for_company(account.company_id).get(
            account=account, subject=subject
        )


def reload(thread: MailThread) -> MailThread:
    with tenancy.bound(thread.company_id):
        return MailThread.objects.for_company(thread.company_id).get(pk=thread.pk)


def relink(thread: MailThread) -> None:
    """What ingest and the item hooks run: the automatic rules (C2) over the thread again."""
    with tenancy.bound(thread.company_id):
        linking.threads_relink(company_id=thread.company_id, thread_ids=[thread.pk])


def shown_ids(html: str) -> list[int]:
    return [int(found) for found in THREAD_ID.findall(html)]


def html_message(*, subject: str, html: str, message_id: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = PAT
    mail["To"] = "alice@acme.test"
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = message_id
    mail.set_content("Plain part.")
    mail.add_alternative(html, subtype="html")
    return bytes(mail)


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


def tab(client: Client, kind: str, item_id: object, **params: Any) -> tuple[int, str]:
    response = client.get(f"/items/{kind}/{item_id}/emails", params, headers=HTMX)
    return response.status_code, response.content.decode()


# --- The tab's list ---------------------------------------------------------------------------


def test_person_tab_lists_linked_conversations_newest_first_20_a_page(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    pat = person(cast)
    account = mailbox.account(cast.alice)
    for n in range(1, 26):
        mailbox.deliver(account, "INBOX", message(n, subject=f"Question {n}", sender=PAT))
    mailbox.deliver(account, "INBOX", message(99, subject="Not Pat", sender="x@other.test"))

    status, html = tab(alice, "person", pat.pk)

    assert status == 200
    assert "25 conversations" in html
    newest_first = [thread_of(account, f"Question {n}").pk for n in range(25, 0, -1)]
    assert shown_ids(html) == newest_first[:20]
    assert "Not Pat" not in html
    assert "Question 25" in html
    assert "Pat Customer" in html
    assert "1 message" in html
    assert f'hx-get="/items/person/{pat.pk}/emails?page=2"' in html
    assert "Show older" in html

    status, older = tab(alice, "person", pat.pk, page=2)
    assert status == 200
    assert shown_ids(older) == newest_first[20:]
    assert "Show older" not in older
    assert shown_ids(tab(alice, "person", pat.pk, page="9" * 20)[1]) == newest_first[:20]
    assert "conversations" not in older  # the rows only, appended under the first page


def test_a_row_shows_its_subject_escaped_its_attachment_and_its_private_badge(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    pat = person(cast)
    account = mailbox.account(cast.alice)
    mailbox.deliver(
        account,
        "INBOX",
        message(1, subject="<b>Offer</b> & terms", sender=PAT, attachment=b"%PDF-1.4"),
    )
    thread = threads(cast.company_a)[0]
    alice.post(f"/mail/threads/{thread.pk}/sharing", {"sharing": "private"}, headers=HTMX)

    _, html = tab(alice, "person", pat.pk)

    assert "&lt;b&gt;Offer&lt;/b&gt; &amp; terms" in html
    assert "<b>Offer</b>" not in html
    assert "Has attachments" in html
    assert '<span class="badge email-sharing">Private</span>' in html


def test_the_tab_says_so_when_there_is_no_mail(cast: Cast, alice: Client) -> None:
    pat = person(cast)

    status, html = tab(alice, "person", pat.pk)

    assert status == 200
    assert "No email conversations yet." in html
    assert "data-thread-id" not in html


def test_organization_tab_shows_its_peoples_mail(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    initech = organization(cast)
    person(cast, org_id=initech.pk)
    person(cast, "Sam Stranger", emails=[ContactPoint("sam@elsewhere.test")])
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, subject="From Pat", sender=PAT))
    mailbox.deliver(account, "INBOX", message(2, subject="From Sam", sender="sam@elsewhere.test"))

    status, html = tab(alice, "organization", initech.pk)

    assert status == 200
    assert shown_ids(html) == [thread_of(account, "From Pat").pk]


def test_deal_lead_and_project_tabs_show_the_conversations_linked_to_them(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    pat = person(cast)
    rocket = deal(cast, "Rocket", person_id=pat.pk)
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, subject="About the rocket", sender=PAT))
    thread = thread_of(account, "About the rocket")
    assert thread.deal_id == rocket.pk  # linked by the automatic rules (C2)

    status, html = tab(alice, "deal", rocket.pk)
    assert status == 200
    assert shown_ids(html) == [thread.pk]
    assert f'href="/deals/{rocket.pk}">Deal: Rocket</a>' in html

    printers = lead(cast, "Printers", person_id=pat.pk)
    alice.post(f"/mail/threads/{thread.pk}/link", {"target": f"lead:{printers.pk}"})
    assert shown_ids(tab(alice, "lead", printers.pk)[1]) == [thread.pk]
    assert shown_ids(tab(alice, "deal", rocket.pk)[1]) == []

    rollout = project(cast, "Roll-out")
    page = alice.get(f"/projects/{rollout.pk}").content.decode()
    assert f'hx-get="/items/project/{rollout.pk}/emails"' in page  # its Email tab loads
    alice.post(f"/mail/threads/{thread.pk}/link", {"target": f"project:{rollout.pk}"})
    assert shown_ids(tab(alice, "project", rollout.pk)[1]) == [thread.pk]
    assert shown_ids(tab(alice, "lead", printers.pk)[1]) == []


def test_a_linked_item_hidden_from_the_reader_is_named_without_its_title(
    cast: Cast, mailbox: Mailbox, alice: Client, bob: Client
) -> None:
    pat = person(cast)
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, subject="Merger talk", sender=PAT))
    thread = thread_of(account, "Merger talk")
    secret = deal(cast, "Secret merger", visible_to=1)  # Alice's only
    alice.post(f"/mail/threads/{thread.pk}/link", {"target": f"deal:{secret.pk}"})

    assert "Deal: Secret merger" in tab(alice, "person", pat.pk)[1]
    _, html = tab(bob, "person", pat.pk)  # shared, on a person Bob sees
    assert shown_ids(html) == [thread.pk]
    assert "Deal hidden from you" in html
    assert "Secret merger" not in html
    assert f"/deals/{secret.pk}" not in html
    assert "Secret merger" not in bob.get(f"/mail/threads/{thread.pk}").content.decode()
    assert tab(bob, "deal", secret.pk)[0] == 403


def test_a_conversation_received_by_two_accounts_shows_once(
    cast: Cast, mailbox: Mailbox, alice: Client, bob: Client
) -> None:
    pat = person(cast)
    alices = mailbox.account(cast.alice)
    bobs = mailbox.account(cast.bob)
    raw = message(1, subject="To both of you", sender=PAT, message_id="<both@customer.test>")
    mailbox.deliver(alices, "INBOX", raw)
    mailbox.deliver(bobs, "INBOX", raw)
    assert len(threads(cast.company_a, subject="To both of you")) == 2

    # Each sees the conversation once, in their own mailbox's copy.
    _, html = tab(alice, "person", pat.pk)
    assert "1 conversation" in html
    assert shown_ids(html) == [thread_of(alices, "To both of you").pk]
    _, html = tab(bob, "person", pat.pk)
    assert shown_ids(html) == [thread_of(bobs, "To both of you").pk]


def test_a_private_conversation_shows_on_the_person_to_its_owner_only(
    cast: Cast, mailbox: Mailbox, alice: Client, bob: Client
) -> None:
    pat = person(cast)
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, subject="Shared one", sender=PAT))
    mailbox.deliver(account, "INBOX", message(2, subject="Private one", sender=PAT))
    private = thread_of(account, "Private one")
    response = alice.post(
        f"/mail/threads/{private.pk}/sharing", {"sharing": "private"}, headers=HTMX
    )
    assert response.status_code == 200

    assert set(shown_ids(tab(alice, "person", pat.pk)[1])) == {
        private.pk,
        thread_of(account, "Shared one").pk,
    }
    _, html = tab(bob, "person", pat.pk)
    assert shown_ids(html) == [thread_of(account, "Shared one").pk]
    assert "Private one" not in html
    # Nor by its id.
    assert bob.get(f"/mail/threads/{private.pk}", headers=HTMX).status_code == 404


def test_who_may_not_see_the_item_gets_403_and_another_company_404(
    cast: Cast, mailbox: Mailbox, bob: Client, carol: Client
) -> None:
    secret = person(
        cast, "Secret Sam", emails=[ContactPoint("sam@secret.test")], visible_to=1
    )  # Alice's only
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, subject="Secret", sender="sam@secret.test"))

    status, html = tab(bob, "person", secret.pk)
    assert status == 403
    assert "Secret" not in html
    assert tab(carol, "person", secret.pk)[0] == 404
    assert tab(bob, "person", 987654321)[0] == 404
    assert tab(bob, "lead", "not-a-uuid")[0] == 404
    assert tab(bob, "lead", "00000000-0000-0000-0000-000000000000")[0] == 404
    assert tab(bob, "pipeline", 1)[0] == 404
    thread = threads(cast.company_a)[0]
    assert carol.get(f"/mail/threads/{thread.pk}", headers=HTMX).status_code == 404
    assert carol.get(f"/mail/threads/{thread.pk}/link-options?q=a").status_code == 404
    assert carol.post(f"/mail/threads/{thread.pk}/link", {"target": "none"}).status_code == 404


# --- A conversation opened in place -------------------------------------------------------------


def test_a_conversation_opens_in_place_oldest_message_first(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    person(cast)
    account = mailbox.account(cast.alice)
    sent = datetime.now(UTC) - timedelta(hours=3)
    mailbox.deliver(
        account,
        "INBOX",
        message(1, subject="Quote", message_id="<q1@customer.test>", sender=PAT,
                to="Alice Adams <alice@acme.test>", date=sent, attachment=b"x" * 2048),
    )  # fmt: skip
    mailbox.deliver(
        account,
        "Sent",
        message(2, subject="Re: Quote", message_id="<r1@acme.test>", sender="alice@acme.test",
                to=PAT, references=["<q1@customer.test>"], date=sent + timedelta(hours=1)),
    )  # fmt: skip
    thread = thread_of(account, "Quote")
    with tenancy.bound(cast.company_a.pk):
        first, second = (
            MailMessage.objects.for_company(cast.company_a)
            .filter(message_id__in=["q1@customer.test", "r1@acme.test"])
            .order_by("sent_at")
        )

    response = alice.get(f"/mail/threads/{thread.pk}", headers=HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="thread-{thread.pk}"' in html
    assert html.index(f"/mail/messages/{first.pk}/body") < html.index(
        f"/mail/messages/{second.pk}/body"
    )
    assert "Pat Customer &lt;pat@customer.test&gt;" in html
    assert "Alice Adams &lt;alice@acme.test&gt;" in html
    assert "file.bin" in html
    assert "2.0\xa0KB" in html
    assert "application/octet-stream" in html
    frames = re.findall(r"<iframe[^>]*>", html)
    assert len(frames) == 2
    for frame in frames:
        # Sandboxed: no scripts, no same origin, no forms; links may open a new tab only.
        assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
        assert 'referrerpolicy="no-referrer"' in frame
        assert "allow-scripts" not in frame
    # Alice manages her own conversation: the picker and the sharing switch are there.
    assert f'hx-get="/mail/threads/{thread.pk}/link-options"' in html
    assert 'name="sharing" value="private"' in html
    assert 'name="sharing" value="team"' not in html  # a personal account: Shared or Private


def test_the_body_url_sends_the_sanitized_body_with_the_apis_headers(
    cast: Cast, mailbox: Mailbox, alice: Client, bob: Client, api: Client
) -> None:
    person(cast)
    account = mailbox.account(cast.alice)
    mailbox.deliver(
        account,
        "INBOX",
        html_message(
            subject="Hello",
            message_id="<h1@customer.test>",
            html='<p onclick="steal()">Hi there</p><script>alert(1)</script>'
            '<img src="https://tracker.test/p.gif">',
        ),
    )
    with tenancy.bound(cast.company_a.pk):
        body = MailMessage.objects.for_company(cast.company_a).get(message_id="h1@customer.test")

    response = alice.get(f"/mail/messages/{body.pk}/body")

    assert response.status_code == 200
    content = response.content.decode()
    assert "Hi there" in content
    assert "<script" not in content
    assert "onclick" not in content
    assert ' src="https://tracker.test' not in content  # remote images wait for the reader
    from_api = api.get(
        f"/api/v1/mailbox/mailMessages/{body.pk}/body", headers={"x-api-token": cast.alice_token}
    )
    for header in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"):
        assert response[header] == from_api[header]
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"  # framed by our own pages only
    assert response["Content-Type"] == "text/html; charset=utf-8"

    # Shared and linked to a person Bob sees: he reads it; private, it is not there for him.
    assert bob.get(f"/mail/messages/{body.pk}/body").status_code == 200
    thread = thread_of(account, "Hello")
    alice.post(f"/mail/threads/{thread.pk}/sharing", {"sharing": "private"})
    assert bob.get(f"/mail/messages/{body.pk}/body").status_code == 404


# --- Linking (C3) -------------------------------------------------------------------------------


def test_link_move_and_unlink_are_kept_against_the_automatic_rules(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    pat = person(cast)
    automatic = deal(cast, "Automatic", person_id=pat.pk)
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, subject="Order", sender=PAT))
    thread = thread_of(account, "Order")
    assert thread.deal_id == automatic.pk
    chosen = deal(cast, "Chosen by hand")
    printers = lead(cast, "Printers", person_id=pat.pk)
    rollout = project(cast, "Roll-out")

    response = alice.post(
        f"/mail/threads/{thread.pk}/link", {"target": f"deal:{chosen.pk}"}, headers=HTMX
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="/deals/{chosen.pk}">Deal: Chosen by hand</a>' in html
    assert f'id="thread-tags-{thread.pk}" hx-swap-oob="true"' in html  # the row follows
    thread = reload(thread)
    assert (thread.deal_id, thread.link_manual) == (chosen.pk, True)
    relink(thread)
    assert reload(thread).deal_id == chosen.pk

    alice.post(f"/mail/threads/{thread.pk}/link", {"target": f"lead:{printers.pk}"})
    thread = reload(thread)
    assert (thread.deal_id, thread.lead_id, thread.project_id) == (None, printers.pk, None)

    alice.post(f"/mail/threads/{thread.pk}/link", {"target": f"project:{rollout.pk}"})
    thread = reload(thread)
    assert (thread.deal_id, thread.lead_id, thread.project_id) == (None, None, rollout.pk)

    response = alice.post(f"/mail/threads/{thread.pk}/link", {"target": "none"}, headers=HTMX)
    assert "Not linked to a deal, lead or project." in response.content.decode()
    thread = reload(thread)
    assert (thread.deal_id, thread.lead_id, thread.project_id) == (None, None, None)
    # Unlinked by hand: the person's open deal does not take it back.
    relink(thread)
    assert reload(thread).deal_id is None


def test_several_open_deals_the_newest_is_chosen_and_the_others_offered(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    pat = person(cast)
    older = deal(cast, "Older deal", person_id=pat.pk)
    newer = deal(cast, "Newer deal", person_id=pat.pk)
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, subject="Which one?", sender=PAT))
    thread = thread_of(account, "Which one?")
    assert thread.deal_id == newer.pk

    html = alice.get(f"/mail/threads/{thread.pk}", headers=HTMX).content.decode()
    assert f'name="target" value="deal:{older.pk}"' in html
    assert f'value="deal:{newer.pk}"' not in html  # the linked one is not an alternative

    alice.post(f"/mail/threads/{thread.pk}/link", {"target": f"deal:{older.pk}"})
    assert reload(thread).deal_id == older.pk


def test_link_options_list_what_the_user_may_see(
    cast: Cast, mailbox: Mailbox, alice: Client, bob: Client
) -> None:
    pat = person(cast)
    account = mailbox.account(cast.bob)
    mailbox.deliver(account, "INBOX", message(1, subject="Bob's", sender=PAT))
    thread = thread_of(account, "Bob's")
    deal(cast, "Initech open deal")
    deal(cast, "Initech secret deal", visible_to=1)  # Alice's only
    lead(cast, "Initech lead", person_id=pat.pk)
    project(cast, "Initech project")
    deal(cast, "Umbrella deal")
    for n in range(12):
        deal(cast, f"Initech extra {n:02}")

    response = bob.get(f"/mail/threads/{thread.pk}/link-options", {"q": "initech"})

    assert response.status_code == 200
    html = response.content.decode()
    values = re.findall(r'name="target" value="([^"]+)"', html)
    assert len([v for v in values if v.startswith("deal:")]) == 10
    assert "Initech lead" in html
    assert "Initech project" in html
    assert "Initech secret deal" not in html
    assert "Umbrella" not in html
    empty = bob.get(f"/mail/threads/{thread.pk}/link-options", {"q": "nothing like it"})
    assert "No deals, leads or projects match." in empty.content.decode()


def test_a_link_the_service_refuses_comes_back_in_the_panel(
    cast: Cast, mailbox: Mailbox, bob: Client
) -> None:
    person(cast)
    account = mailbox.account(cast.bob)
    mailbox.deliver(account, "INBOX", message(1, subject="Bob's", sender=PAT))
    thread = thread_of(account, "Bob's")
    secret = deal(cast, "Secret deal", visible_to=1)  # Alice's only

    for target in (f"deal:{secret.pk}", "deal:abc", "lead:nope", "pipeline:1", ""):
        response = bob.post(f"/mail/threads/{thread.pk}/link", {"target": target}, headers=HTMX)
        assert response.status_code == 400, target
        assert response["HX-Retarget"] == f"#thread-{thread.pk}-links"
        assert 'role="alert"' in response.content.decode()
    assert (
        "No deal with this id that you can see."
        in bob.post(
            f"/mail/threads/{thread.pk}/link", {"target": f"deal:{secret.pk}"}
        ).content.decode()
    )
    assert reload(thread).deal_id is None
    assert not reload(thread).link_manual


# --- Sharing (D3) -------------------------------------------------------------------------------


def test_sharing_is_changed_by_the_owner_and_refused_to_who_sees_it_on_an_item(
    cast: Cast, mailbox: Mailbox, alice: Client, bob: Client
) -> None:
    pat = person(cast)
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, subject="Shared", sender=PAT))
    thread = thread_of(account, "Shared")

    # Bob reads it on the person, read-only: no controls, and a change is refused.
    assert shown_ids(tab(bob, "person", pat.pk)[1]) == [thread.pk]
    html = bob.get(f"/mail/threads/{thread.pk}", headers=HTMX).content.decode()
    assert "link-options" not in html
    assert 'name="sharing"' not in html
    assert "Only the users of this conversation" in html
    deal_of_bob = deal(cast, "Bob's deal", owner=cast.bob)
    for url, data in (
        (f"/mail/threads/{thread.pk}/sharing", {"sharing": "private"}),
        (f"/mail/threads/{thread.pk}/link", {"target": f"deal:{deal_of_bob.pk}"}),
        (f"/mail/threads/{thread.pk}/link", {"target": "none"}),
    ):
        assert bob.post(url, data, headers=HTMX).status_code == 403
    assert bob.get(f"/mail/threads/{thread.pk}/link-options", {"q": "b"}).status_code == 200
    assert (reload(thread).sharing, reload(thread).link_manual) == (Sharing.SHARED, False)

    # Alice, its owner: Private, not Team only (a personal account).
    response = alice.post(f"/mail/threads/{thread.pk}/sharing", {"sharing": "team"})
    assert response.status_code == 400
    assert reload(thread).sharing == Sharing.SHARED
    response = alice.post(f"/mail/threads/{thread.pk}/sharing", {"sharing": "private"})
    assert response.status_code == 200
    assert 'name="sharing" value="private" aria-pressed="true"' in response.content.decode()
    assert reload(thread).sharing == Sharing.PRIVATE


def test_a_team_accounts_member_switches_between_shared_and_team_only(
    cast: Cast, mailbox: Mailbox, bob: Client
) -> None:
    person(cast)
    team = mailbox.account(
        cast.alice, kind=AccountKind.TEAM, members=[cast.bob], email="sales@acme.test"
    )
    mailbox.deliver(team, "INBOX", message(1, subject="Team question", sender=PAT))
    thread = thread_of(team, "Team question")

    html = bob.get(f"/mail/threads/{thread.pk}", headers=HTMX).content.decode()
    assert 'name="sharing" value="team"' in html
    assert 'name="sharing" value="private"' not in html
    assert bob.post(f"/mail/threads/{thread.pk}/sharing", {"sharing": "team"}).status_code == 200
    assert reload(thread).sharing == Sharing.TEAM
    assert bob.post(f"/mail/threads/{thread.pk}/sharing", {"sharing": "private"}).status_code == 400


def test_the_web_refuses_gets_on_posts_and_sign_in_comes_first(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    pat = person(cast)
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, subject="Hi", sender=PAT))
    thread = thread_of(account, "Hi")
    assert alice.get(f"/mail/threads/{thread.pk}/link").status_code == 405
    assert alice.post(f"/items/person/{pat.pk}/emails").status_code == 405
    anonymous = Client()
    response = anonymous.get(f"/items/person/{pat.pk}/emails")
    assert response.status_code == 302
    assert "/login" in response["Location"]
    assert anonymous.get("/mail/messages/1/body").status_code == 302


def test_the_csrf_token_is_required_on_changes(cast: Cast, mailbox: Mailbox) -> None:
    person(cast)
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", message(1, subject="Hi", sender=PAT))
    thread = thread_of(account, "Hi")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(cast.alice)
    response = strict.post(f"/mail/threads/{thread.pk}/sharing", {"sharing": "private"})
    assert response.status_code == 403
    assert reload(thread).sharing == Sharing.SHARED


# --- Queries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("conversations", [20, 40])
def test_a_page_of_the_tab_costs_the_same_queries_whatever_its_size(
    cast: Cast,
    mailbox: Mailbox,
    alice: Client,
    conversations: int,
    django_assert_max_num_queries: Any,
) -> None:
    pat = person(cast)
    deal(cast, "Rocket", person_id=pat.pk)  # every row shows a deal chip
    account = mailbox.account(cast.alice)
    for n in range(conversations):
        mailbox.deliver(account, "INBOX", message(n, subject=f"Question {n}", sender=PAT))

    with django_assert_max_num_queries(22):
        status, html = tab(alice, "person", pat.pk)

    assert status == 200
    assert len(shown_ids(html)) == 20
    assert f"{conversations} conversations" in html
    assert html.count("Deal: Rocket") == 20
