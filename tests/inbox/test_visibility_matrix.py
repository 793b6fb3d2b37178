"""The visibility matrix (D1 to D4): who sees one customer conversation, and where.

Each cell is one row of the hand-written table below: (account kind, sharing, viewer, linked
item visible to the viewer or not, viewer took part or not) → what the viewer sees on every
surface. The expectations are written out by hand from the rules of DESIGN.md
("Visibility"), not computed from `inbox.visibility`, so a change of the code's rules fails
here instead of being mirrored.

The world of a cell: Bob (regular) owns the account, either his personal `bob@acme.test` or the
team account `sales@acme.test` whose member is Dana (regular). Pat, a customer, writes to the
account; the conversation links to the person Pat (owned by Alice: shared with the entire
company when the item is "visible", owner only when "hidden"). The account's copy of the
conversation is called `acct` in the table.

Viewers: `owner` Bob, `member` Dana (team accounts only), `admin` Alice, `other` Erin (a regular
user of Acme), `outsider` Carol (the admin of Globex). A viewer who "took part" was copied on
Pat's message and has their own personal account that received it: their copy is `own` (for
Carol it is a copy in Globex).

Valid cells only:
- a personal account offers Private and Shared, a team account Shared and Team only;
- the member role exists for team accounts only;
- the owner received the message through the account itself: "took part" is no separate cell;
- an admin sees every item (`crm.access`): the "item hidden" cell does not exist for admins;
- Acme's person is never an item Carol may see: her cells are "item hidden" only.

Columns (surfaces), each asserted in every cell:
- `mailbox`: the copies in `GET /api/v1/mailbox/mailThreads?folder=inbox`;
- `item`: the item's detail view, i.e. the copy shown (once) on the person's Email tab (web
  fragment rows, `GET /api/v1/persons/{id}/mailMessages`, and its count: the number the tab
  shows and `selectors.item_conversations(...).total`), or `403` (the item exists but the
  viewer may not see it), `404` (another company's item), `-` (no conversation shown);
  `acct|own`: one row, either of the viewer's own mailbox copies;
- `by_id`: the copies readable by id (`GET mailThreads/{id}`, `GET mailThreads/{id}/mailMessages`);
  the others are a 404;
- `message`: the copy `GET mailMessages/{id}` of Pat's message answers with, `-` for a 404;
- the Sales Inbox (not a column: it is the `mailbox` column again, as the rule says): the rows
  of its page over all folders, the unread count beside Inbox (each copy is unread), and the
  reader by id (a 404 for any other copy);
- `search`: the copies a search of the Sales Inbox finds for a word of the conversation
  (`inbox.search.mailbox_page` over all folders and all the viewer's accounts, for its subject
  word and for its sender with `from:`): search covers the viewer's own mailbox, nothing else.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import services as crm_services
from crm import tenancy
from crm.models import Company, Role, User
from inbox import mailquery, search, selectors, services
from inbox.models import AccountKind, MailAccount, MailThread, MailThreadMessage
from tests.conftest import PASSWORD, Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db

# account  sharing  viewer    item     took_part | mailbox   item      by_id     message   search
TABLE = """
personal private  owner     visible  no        | acct      acct      acct      acct      acct
personal private  owner     hidden   no        | acct      403       acct      acct      acct
personal private  admin     visible  no        | -         -         -         -         -
personal private  admin     visible  yes       | own       own       own       own       own
personal private  other     visible  no        | -         -         -         -         -
personal private  other     visible  yes       | own       own       own       own       own
personal private  other     hidden   no        | -         403       -         -         -
personal private  other     hidden   yes       | own       403       own       own       own
personal private  outsider  hidden   no        | -         404       -         -         -
personal private  outsider  hidden   yes       | own       404       own       -         own

personal shared   owner     visible  no        | acct      acct      acct      acct      acct
personal shared   owner     hidden   no        | acct      403       acct      acct      acct
personal shared   admin     visible  no        | -         acct      acct      acct      -
personal shared   admin     visible  yes       | own       own       acct+own  own       own
personal shared   other     visible  no        | -         acct      acct      acct      -
personal shared   other     visible  yes       | own       own       acct+own  own       own
personal shared   other     hidden   no        | -         403       -         -         -
personal shared   other     hidden   yes       | own       403       own       own       own
personal shared   outsider  hidden   no        | -         404       -         -         -
personal shared   outsider  hidden   yes       | own       404       own       -         own

team     shared   owner     visible  no        | acct      acct      acct      acct      acct
team     shared   owner     hidden   no        | acct      403       acct      acct      acct
team     shared   member    visible  no        | acct      acct      acct      acct      acct
team     shared   member    visible  yes       | acct+own  acct|own  acct+own  acct|own  acct+own
team     shared   member    hidden   no        | acct      403       acct      acct      acct
team     shared   member    hidden   yes       | acct+own  403       acct+own  acct|own  acct+own
team     shared   admin     visible  no        | -         acct      acct      acct      -
team     shared   admin     visible  yes       | own       own       acct+own  own       own
team     shared   other     visible  no        | -         acct      acct      acct      -
team     shared   other     visible  yes       | own       own       acct+own  own       own
team     shared   other     hidden   no        | -         403       -         -         -
team     shared   other     hidden   yes       | own       403       own       own       own
team     shared   outsider  hidden   no        | -         404       -         -         -
team     shared   outsider  hidden   yes       | own       404       own       -         own

team     team     owner     visible  no        | acct      acct      acct      acct      acct
team     team     owner     hidden   no        | acct      403       acct      acct      acct
team     team     member    visible  no        | acct      acct      acct      acct      acct
team     team     member    visible  yes       | acct+own  acct|own  acct+own  acct|own  acct+own
team     team     member    hidden   no        | acct      403       acct      acct      acct
team     team     member    hidden   yes       | acct+own  403       acct+own  acct|own  acct+own
team     team     admin     visible  no        | -         -         -         -         -
team     team     admin     visible  yes       | own       own       own       own       own
team     team     other     visible  no        | -         -         -         -         -
team     team     other     visible  yes       | own       own       own       own       own
team     team     other     hidden   no        | -         403       -         -         -
team     team     other     hidden   yes       | own       403       own       own       own
team     team     outsider  hidden   no        | -         404       -         -         -
team     team     outsider  hidden   yes       | own       404       own       -         own
"""


def _copies(text: str, separator: str) -> frozenset[str]:
    return frozenset() if text == "-" else frozenset(text.split(separator))


@dataclass(frozen=True)
class Cell:
    account: str  # personal | team
    sharing: str  # private | shared | team
    viewer: str  # owner | member | admin | other | outsider
    item_visible: bool
    took_part: bool
    mailbox: frozenset[str]  # copies in the viewer's mailbox
    item_status: int  # 200, 403 or 404
    item: frozenset[str]  # the copies the item's one row may be (empty: no row)
    by_id: frozenset[str]  # copies readable by id
    message: frozenset[str]  # copies the message may be read through (empty: 404)
    search: frozenset[str]  # copies a search for a word of the conversation finds

    @property
    def item_rows(self) -> int:
        """The conversation shows once on the item, or not at all."""
        return 1 if self.item else 0

    @property
    def id(self) -> str:
        return "-".join(
            (
                self.account,
                self.sharing,
                self.viewer,
                "item_visible" if self.item_visible else "item_hidden",
                "participant" if self.took_part else "not_participant",
            )
        )

    @classmethod
    def parse(cls, line: str) -> Cell:
        given, seen = line.split("|", 1)
        account, sharing, viewer, item, took_part = given.split()
        mailbox, shown, by_id, read, found = seen.split()
        status = int(shown) if shown in ("403", "404") else 200
        return cls(
            account=account,
            sharing=sharing,
            viewer=viewer,
            item_visible={"visible": True, "hidden": False}[item],
            took_part={"yes": True, "no": False}[took_part],
            mailbox=_copies(mailbox, "+"),
            item_status=status,
            item=_copies(shown, "|") if status == 200 else frozenset(),
            by_id=_copies(by_id, "+"),
            message=_copies(read, "|"),
            search=_copies(found, "+"),
        )


CELLS = [Cell.parse(line) for line in TABLE.strip().splitlines() if line.strip()]


def _valid(account: str, sharing: str, viewer: str, item_visible: bool, took_part: bool) -> bool:
    return (
        sharing in {"personal": ("private", "shared"), "team": ("shared", "team")}[account]
        and not (viewer == "member" and account == "personal")
        and not (viewer == "owner" and took_part)  # the account itself received it
        and not (viewer == "admin" and not item_visible)  # admins see every item
        and not (viewer == "outsider" and item_visible)  # Acme's items are never Carol's
    )


def test_the_table_holds_the_valid_cells_each_once() -> None:
    keys = [(c.account, c.sharing, c.viewer, c.item_visible, c.took_part) for c in CELLS]
    every = itertools.product(
        ("personal", "team"),
        ("private", "shared", "team"),
        ("owner", "member", "admin", "other", "outsider"),
        (True, False),
        (False, True),
    )
    assert len(keys) == len(set(keys)) == 48
    assert set(keys) == {key for key in every if _valid(*key)}


# --- The world of one cell ----------------------------------------------------------------------


@dataclass
class Viewer:
    user: User
    company: Company
    token: str


@dataclass
class World:
    viewer: Viewer
    person_id: int
    threads: dict[str, int]  # copy name → thread id
    messages: dict[str, int]  # copy name → the id of Pat's message in that copy's company


def _user(cast: Cast, name: str) -> Viewer:
    with tenancy.bound(cast.company_a.pk):
        user = crm_services.user_get_or_create(
            email=f"{name.lower()}@acme.test", password=PASSWORD, name=name
        )
        crm_services.membership_add(company=cast.company_a, user=user, role=Role.REGULAR)
        token = crm_services.api_token_issue(company=cast.company_a, user=user)
    return Viewer(user, cast.company_a, token)


def _copy(account: MailAccount) -> tuple[int, int]:
    """The account's one thread and Pat's message in it."""
    with tenancy.bound(account.company_id):
        thread = MailThread.objects.for_company(account.company_id).get(account=account)
        held = MailThreadMessage.objects.for_company(account.company_id).get(thread=thread)
    return thread.pk, held.message_id


def build(cell: Cell, cast: Cast, mailbox: Mailbox) -> World:
    dana = _user(cast, "Dana") if cell.account == "team" else None
    if cell.viewer == "member":
        assert dana is not None
        viewer = dana
    elif cell.viewer == "other":
        viewer = _user(cast, "Erin")
    else:
        user, company, token = {
            "owner": (cast.bob, cast.company_a, cast.bob_token),
            "admin": (cast.alice, cast.company_a, cast.alice_token),
            "outsider": (cast.carol, cast.company_b, cast.carol_token),
        }[cell.viewer]
        viewer = Viewer(user, company, token)
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        person = contact_services.person_create(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            fields={
                "name": "Pat Customer",
                "emails": [ContactPoint("pat@customer.test")],
                "visible_to": 7 if cell.item_visible else 1,
            },
        )
    if cell.account == "team":
        assert dana is not None
        account = mailbox.account(
            cast.bob, kind=AccountKind.TEAM, members=[dana.user], email="sales@acme.test"
        )
    else:
        account = mailbox.account(cast.bob)
    recipients = [account.email_address]
    if cell.took_part:
        recipients.append(viewer.user.email)
    raw = message(1, subject="Quote", to=", ".join(recipients), message_id="<q1@customer.test>")
    mailbox.deliver(account, "INBOX", raw)
    threads, messages = {}, {}
    threads["acct"], messages["acct"] = _copy(account)
    if cell.took_part:
        own = mailbox.account(viewer.user, company=viewer.company)
        mailbox.deliver(own, "INBOX", raw)
        threads["own"], messages["own"] = _copy(own)
    if cell.sharing != "shared":
        # The owner's choice, through the service the API and the Email tab call.
        with tenancy.bound(cast.company_a.pk, user_id=cast.bob.pk):
            thread = MailThread.objects.for_company(cast.company_a).get(pk=threads["acct"])
            services.thread_update(
                membership=cast.membership(cast.bob, cast.company_a),
                thread=thread,
                changes=services.ThreadChanges(sharing=cell.sharing),
            )
    return World(viewer, person.pk, threads, messages)


# --- The surfaces -------------------------------------------------------------------------------


def _get(api: Client, path: str, token: str) -> tuple[int, Any]:
    response = api.get(path, headers={"x-api-token": token})
    return response.status_code, response.json()


def _ids(world: World, copies: frozenset[str]) -> set[int]:
    return {world.threads[copy] for copy in copies}


def _named(world: World, thread_ids: set[int] | list[int]) -> list[str]:
    """Thread ids as copy names, for readable failures."""
    names = {thread_id: copy for copy, thread_id in world.threads.items()}
    return sorted(names.get(thread_id, f"unknown thread {thread_id}") for thread_id in thread_ids)


@pytest.mark.parametrize("cell", CELLS, ids=[cell.id for cell in CELLS])
def test_visibility_matrix(
    cell: Cell, cast: Cast, mailbox: Mailbox, api: Client, client_for: Any
) -> None:
    world = build(cell, cast, mailbox)
    token = world.viewer.token

    # Mailbox.
    status, body = _get(api, "/api/v1/mailbox/mailThreads?folder=inbox", token)
    assert status == 200
    assert _named(world, [t["id"] for t in body["data"]]) == sorted(cell.mailbox), "mailbox"

    # By id: the conversation, its messages.
    for copy, thread_id in world.threads.items():
        expected = 200 if copy in cell.by_id else 404
        status, _ = _get(api, f"/api/v1/mailbox/mailThreads/{thread_id}", token)
        assert status == expected, f"mailThreads/{{{copy}}}"
        status, body = _get(api, f"/api/v1/mailbox/mailThreads/{thread_id}/mailMessages", token)
        assert status == expected, f"mailThreads/{{{copy}}}/mailMessages"
        if expected == 200:
            assert [m["id"] for m in body["data"]] == [world.messages[copy]]

    # By id: Pat's message (one row in Acme for every copy there).
    status, body = _get(api, f"/api/v1/mailbox/mailMessages/{world.messages['acct']}", token)
    if cell.message:
        assert status == 200, "mailMessages/{id}"
        assert _named(world, [body["data"]["mail_thread_id"]])[0] in cell.message
    else:
        assert status == 404, "mailMessages/{id}"
    if cell.viewer == "outsider" and cell.took_part:
        # Carol's own copy is another message row, of Globex.
        status, body = _get(api, f"/api/v1/mailbox/mailMessages/{world.messages['own']}", token)
        assert status == 200
        assert body["data"]["mail_thread_id"] == world.threads["own"]

    # The item: API.
    status, body = _get(api, f"/api/v1/persons/{world.person_id}/mailMessages", token)
    assert status == cell.item_status, "persons/{id}/mailMessages"
    if status == 200:
        rows = [item["data"]["mail_thread_id"] for item in body["data"]]
        assert len(rows) == cell.item_rows, "persons/{id}/mailMessages rows"
        assert set(_named(world, rows)) <= cell.item, "persons/{id}/mailMessages"

    # The item: the count of conversations (the Email tab's number).
    with tenancy.bound(world.viewer.company.pk, user_id=world.viewer.user.pk):
        membership = cast.membership(world.viewer.user, world.viewer.company)
        page = selectors.item_conversations(
            membership=membership, kind="person", item_id=world.person_id
        )
        shown, count = [thread.pk for thread in page.threads], page.total
    assert count == cell.item_rows, "count"
    assert set(_named(world, shown)) <= cell.item, "item_conversations"

    # Search: a word of the conversation, and its sender.
    with tenancy.bound(world.viewer.company.pk, user_id=world.viewer.user.pk):
        for text in ("quote", "from:pat@customer.test"):
            found = search.mailbox_page(
                membership=membership,
                folder="all",
                account_ids=None,
                query=mailquery.parse(text),
                after=None,
            )
            assert _named(world, found.thread_ids) == sorted(cell.search), f"search {text}"

    # The item: the web Email tab.
    browser = client_for(world.viewer.user)
    url = reverse("inbox_item_emails", kwargs={"kind": "person", "item_id": world.person_id})
    response = browser.get(url)
    assert response.status_code == cell.item_status, "Email tab"
    if response.status_code == 200:
        html = response.content.decode()
        rows = [int(found) for found in re.findall(r'data-thread-id="(\d+)"', html)]
        assert len(rows) == cell.item_rows, "Email tab rows"
        assert set(_named(world, rows)) <= cell.item, "Email tab"
        assert _tab_count(html) == cell.item_rows, "Email tab count"

    # The Sales Inbox shows the mailbox column again, and counts it: its rows (all folders),
    # the Inbox's unread count (Pat's message is unread), and the reader by id.
    page_html = browser.get(reverse("inbox") + "?folder=all").content.decode()
    rows = [int(found) for found in re.findall(r'id="mailbox-row-(\d+)"', page_html)]
    assert _named(world, rows) == sorted(cell.mailbox), "Sales Inbox rows"
    assert _inbox_unread(page_html) == len(cell.mailbox), "Sales Inbox count"
    for copy, thread_id in world.threads.items():
        reader = browser.get(
            reverse("inbox_mailbox_thread", args=[thread_id]), headers={"HX-Request": "true"}
        )
        expected = 200 if copy in cell.mailbox else 404
        assert reader.status_code == expected, f"Sales Inbox reader {{{copy}}}"


def _inbox_unread(html: str) -> int:
    """The unread count the Sales Inbox shows beside Inbox (none shown: 0)."""
    found = re.search(
        r'data-folder="inbox">\s*<span>Inbox</span>\s*(?:<span class="mailbox-count"[^>]*>(\d+))?',
        html,
    )
    assert found, "the Inbox folder is listed"
    return int(found.group(1) or 0)


def _tab_count(html: str) -> int:
    """The number of conversations the Email tab states ("2 conversations"); an empty tab says
    there are none instead of a number."""
    stated = re.search(r'class="email-count">\s*(\d+)', html)
    return int(stated.group(1)) if stated else 0
