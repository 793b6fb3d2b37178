"""Who may see which conversations (D1 to D4): the one module that decides it. Every reader of
threads and messages (inbox pages, detail views, the API, search, exports, notifications, AI)
goes through these querysets; filtering happens in SQL. An architecture test
(`tests/inbox/test_architecture.py`) fails when a view, serializer or task reads the mail tables
without coming here.

The rules, each in one place below:

- **Mailbox** (`mailbox_threads`): an account's conversations show, all of them, to its owner
  (personal account) or its members (team account), and to nobody else: not to admins, and a
  shared conversation never appears in another user's mailbox. A user who took part in a
  conversation sees it through their own account's copy, which is in their own mailbox.
- **Items** (`item_threads`): a conversation linked to an item (deal, lead, project; a person
  taking part; an organization, through its people) shows on that item's detail view to a user
  who may see the item (`crm.access`) when it is *Shared*, or when the user reads its mailbox
  (a *Team only* conversation: the team account's members; a *Private* one: its owner).
- **Anywhere** (`visible_threads`, `visible_messages`): the union of the two, for a direct read
  by id (API get, a message's body, an attachment).
- A conversation whose every sender is blocked (C5), or of a removed account, shows nowhere.
- **Acting** (`can_manage`): changing a conversation's links, sharing, read or archive state is
  for its mailbox's users only; who sees it on an item may read it, not change it.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from contacts.models import Organization, Person
from crm import access
from crm.access import ItemKind
from crm.models import Company, Membership, User
from crm.sales.models import Deal, Lead, Project
from inbox.models import (
    MailAccount,
    MailAccountMember,
    MailMessage,
    MailThread,
    MailThreadMessage,
    MailThreadPerson,
    Sharing,
)


def mailbox_accounts(*, company: Company | int, user: User | int) -> QuerySet[MailAccount]:
    """The connected accounts whose mailbox the user reads: owned, or a member of."""
    user_id = user if isinstance(user, int) else user.pk
    member = MailAccountMember.objects.for_company(company).filter(
        account_id=OuterRef("pk"), user_id=user_id
    )
    return MailAccount.objects.for_company(company).filter(
        Q(owner_id=user_id) | Exists(member), removed_at__isnull=True
    )


def _shown(company: Company | int) -> QuerySet[MailThread]:
    """Threads that may show at all: not blocked, of a connected account."""
    return MailThread.objects.for_company(company).filter(
        blocked=False, account__removed_at__isnull=True
    )


def _in_mailbox(membership: Membership) -> Q:
    accounts = mailbox_accounts(company=membership.company_id, user=membership.user_id)
    return Q(account_id__in=accounts.values("pk"))


def mailbox_threads(*, membership: Membership) -> QuerySet[MailThread]:
    """The user's mailbox: every conversation of the accounts they own or are a member of."""
    return _shown(membership.company_id).filter(_in_mailbox(membership))


def _item_link(kind: str, item_id: int | str, company_id: int) -> Q:
    """Threads linked to one item."""
    if kind == ItemKind.DEAL:
        return Q(deal_id=item_id)
    if kind == ItemKind.LEAD:
        return Q(lead_id=item_id)
    if kind == ItemKind.PROJECT:
        return Q(project_id=item_id)
    taking_part = MailThreadPerson.objects.for_company(company_id)
    if kind == ItemKind.PERSON:
        return Q(pk__in=taking_part.filter(person_id=item_id).values("thread_id"))
    if kind == ItemKind.ORGANIZATION:
        people = Person.objects.for_company(company_id).filter(
            organization_id=item_id, deleted_at__isnull=True
        )
        return Q(pk__in=taking_part.filter(person__in=people.values("pk")).values("thread_id"))
    raise ValueError(kind)


_ITEM_MODELS = {
    ItemKind.DEAL: Deal,
    ItemKind.LEAD: Lead,
    ItemKind.PROJECT: Project,
    ItemKind.PERSON: Person,
    ItemKind.ORGANIZATION: Organization,
}


def item_threads(*, membership: Membership, kind: str, item_id: int | str) -> QuerySet[MailThread]:
    """The conversations shown on an item's detail view to this member; none when the member
    may not see the item. Copies of one conversation in several accounts are all included:
    `selectors.item_conversations` shows each conversation once."""
    model = _ITEM_MODELS[ItemKind(kind)]
    item = model.objects.for_company(membership.company_id).filter(pk=item_id)
    if not access.visible_items(item, membership=membership).exists():
        return MailThread.objects.for_company(membership.company_id).none()
    return (
        _shown(membership.company_id)
        .filter(_item_link(kind, item_id, membership.company_id), deleted=False)
        .filter(Q(sharing=Sharing.SHARED) | _in_mailbox(membership))
    )


# The Email tab's page (`item_thread_page`): the rule of `item_threads` in SQL the planner cannot
# get wrong. Each candidate thread is read by its key behind an `OFFSET 0` fence: given the
# choice, PostgreSQL hashes every thread of the company against the candidates (random_page_cost
# 4, row-level security in every row), ten times slower at 200,000 threads (bench/email_tab.py).
_ITEM_PAGE = """
WITH candidate AS (
    SELECT t.id, t.root_message_id, t.last_message_at,
           CASE WHEN t.account_id = ANY(%(mine)s) THEN 0 ELSE 1 END AS rank
    FROM ({source}) AS linked
    CROSS JOIN LATERAL (
        SELECT t.id, t.root_message_id, t.last_message_at, t.account_id, t.sharing,
               t.blocked, t.deleted
        FROM inbox_mailthread t
        WHERE t.company_id = %(company)s AND t.id = linked.thread_id
        OFFSET 0
    ) AS t
    WHERE NOT t.blocked AND NOT t.deleted AND t.account_id = ANY(%(live)s)
      AND (t.sharing = %(shared)s OR t.account_id = ANY(%(mine)s))
), one_copy AS (
    SELECT DISTINCT ON (coalesce(root_message_id, -id)) id, last_message_at
    FROM candidate
    ORDER BY coalesce(root_message_id, -id), rank, id
)
SELECT id, count(*) OVER () FROM one_copy
ORDER BY last_message_at DESC NULLS LAST, id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""
_PERSONS_SOURCE = (
    "SELECT DISTINCT tp.thread_id FROM inbox_mailthreadperson tp "
    "WHERE tp.company_id = %(company)s AND tp.person_id = ANY(%(persons)s)"
)
_COLUMN_SOURCE = (
    "SELECT t.id AS thread_id FROM inbox_mailthread t "
    "WHERE t.company_id = %(company)s AND t.{column} = %(item)s"
)
_ITEM_COLUMNS = {ItemKind.DEAL: "deal_id", ItemKind.LEAD: "lead_id", ItemKind.PROJECT: "project_id"}


def item_thread_page(
    *, membership: Membership, kind: str, item_id: int | str, offset: int, limit: int
) -> tuple[list[int], int]:
    """A page of the conversations on an item's Email tab, as `item_threads` decides them, each
    once (the member's own mailbox copy first, else the oldest copy), newest activity first:
    (thread ids, how many in all). Nothing when the member may not see the item."""
    company_id = membership.company_id
    model = _ITEM_MODELS[ItemKind(kind)]
    item = model.objects.for_company(company_id).filter(pk=item_id)
    if not access.visible_items(item, membership=membership).exists():
        return [], 0
    accounts = MailAccount.objects.for_company(company_id).filter(removed_at__isnull=True)
    mine = mailbox_accounts(company=company_id, user=membership.user_id)
    params: dict[str, int | str | list[int]] = {
        "company": company_id,
        "mine": list(mine.values_list("pk", flat=True)),
        "live": list(accounts.values_list("pk", flat=True)),
        "shared": Sharing.SHARED,
        "limit": limit,
        "offset": offset,
    }
    if kind in _ITEM_COLUMNS:
        source = _COLUMN_SOURCE.format(column=_ITEM_COLUMNS[ItemKind(kind)])
        params["item"] = str(item_id) if kind == ItemKind.LEAD else int(item_id)
    else:
        persons = [int(item_id)]
        if kind == ItemKind.ORGANIZATION:
            persons = list(
                Person.objects.for_company(company_id)
                .filter(organization_id=item_id, deleted_at__isnull=True)
                .values_list("pk", flat=True)
            )
        source, params["persons"] = _PERSONS_SOURCE, persons
    with connection.cursor() as cursor:
        cursor.execute(_ITEM_PAGE.format(source=source), params)
        rows = cursor.fetchall()
    if not rows and offset:
        # Past the end: the total still counts.
        _, total = item_thread_page(
            membership=membership, kind=kind, item_id=item_id, offset=0, limit=1
        )
        return [], total
    return [row[0] for row in rows], (rows[0][1] if rows else 0)


def _on_a_visible_item(membership: Membership) -> Q:
    """Linked to at least one item the member may see."""
    company_id = membership.company_id

    def visible(model: type[Deal] | type[Lead] | type[Project]) -> QuerySet[Any, Any]:
        live: QuerySet[Any] = model.objects.for_company(company_id).filter(deleted_at__isnull=True)
        return access.visible_items(live, membership=membership).values("pk")

    persons = access.visible_items(
        Person.objects.for_company(company_id).filter(deleted_at__isnull=True),
        membership=membership,
    )
    organizations = access.visible_items(
        Organization.objects.for_company(company_id), membership=membership
    )
    people = persons.values("pk")
    through_organization = Person.objects.for_company(company_id).filter(
        deleted_at__isnull=True, organization_id__in=organizations.values("pk")
    )
    visible_person = MailThreadPerson.objects.for_company(company_id).filter(
        Q(person_id__in=people) | Q(person_id__in=through_organization.values("pk")),
        thread_id=OuterRef("pk"),
    )
    return (
        Q(deal_id__in=visible(Deal))
        | Q(lead_id__in=visible(Lead))
        | Q(project_id__in=visible(Project))
        | Q(Exists(visible_person))
    )


def visible_threads(*, membership: Membership) -> QuerySet[MailThread]:
    """The conversations the member may read by id: in their mailbox, or shared and linked to an
    item they may see. For lists use `mailbox_threads` or `item_threads`."""
    return _shown(membership.company_id).filter(
        _in_mailbox(membership) | (Q(sharing=Sharing.SHARED) & _on_a_visible_item(membership))
    )


def visible_messages(*, membership: Membership) -> QuerySet[MailMessage]:
    """The stored messages the member may read: those in a conversation they may read."""
    memberships = MailThreadMessage.objects.for_company(membership.company_id).filter(
        message_id=OuterRef("pk"),
        thread__in=visible_threads(membership=membership).values("pk"),
    )
    return MailMessage.objects.for_company(membership.company_id).filter(Exists(memberships))


def can_manage(*, membership: Membership, thread: MailThread) -> bool:
    """May the member change this conversation (links, sharing, read, archive)?"""
    return (
        thread.company_id == membership.company_id
        and mailbox_threads(membership=membership).filter(pk=thread.pk).exists()
    )
