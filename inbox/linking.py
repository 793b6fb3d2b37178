"""Linking applied to stored conversations (C1, C2, C5): the database side of
`inbox.linkrules`.

- `threads_relink`: a set of threads' persons (the CRM persons among the participants of their
  messages that are not bulk mail; in `MailThread.person_ids` and as `MailThreadPerson` rows),
  whether they are blocked (every sender matches a block that applies to the account), and, in
  an account's automatic mode, their deal or lead. The ingest pipeline calls it for every
  batch; the hooks below for mail already stored.
- `participants_relink`: a person gained or lost addresses (C1).
- `person_threads_relink`: a deal of the person opened, closed or was deleted (C2).
- `blocks_applied`: a block was added or removed (C5).

Set-based: one statement per step for the whole set of threads, whatever its size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db import connection
from django.db.models import Q

from contacts import selectors as contacts_selectors
from crm import hooks
from crm.sales.models import Deal, DealParticipant, DealStatus, Lead
from inbox.linkrules import Candidate, ItemState, Link, link_addresses, link_choose
from inbox.models import BlockedAddress, LinkMode, MailThread, MailThreadPerson

# A thread's persons and blocked state, recomputed from its messages. The blocked part only
# runs when the company has blocks at all (`%(blocks)s`).
_PERSONS_AND_BLOCKED = """
UPDATE inbox_mailthread t SET
    person_ids = CASE WHEN b.blocked THEN '{}'::bigint[] ELSE p.person_ids END,
    blocked = b.blocked
FROM unnest(%(ids)s::bigint[]) AS listed(thread_id)
JOIN inbox_mailthread th ON th.company_id = %(company)s AND th.id = listed.thread_id
JOIN inbox_mailaccount acc ON acc.company_id = %(company)s AND acc.id = th.account_id
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(DISTINCT mp.person_id ORDER BY mp.person_id), '{}') AS person_ids
    FROM inbox_mailthreadmessage tm
    JOIN inbox_mailmessage m
        ON m.company_id = %(company)s AND m.id = tm.message_id AND NOT m.is_bulk
    JOIN inbox_mailparticipant mp
        ON mp.company_id = %(company)s AND mp.message_id = tm.message_id
       AND mp.person_id IS NOT NULL
    WHERE tm.company_id = %(company)s AND tm.thread_id = listed.thread_id
) p
CROSS JOIN LATERAL (
    SELECT %(blocks)s AND coalesce(bool_and(EXISTS (
        SELECT 1 FROM inbox_blockedaddress ba
        WHERE ba.company_id = %(company)s
          AND (ba.user_id IS NULL OR ba.user_id = acc.owner_id)
          AND ba.value IN (m.from_address, '@' || split_part(m.from_address, '@', 2))
    )), false) AS blocked
    FROM inbox_mailthreadmessage tm
    JOIN inbox_mailmessage m ON m.company_id = %(company)s AND m.id = tm.message_id
    WHERE %(blocks)s AND tm.company_id = %(company)s AND tm.thread_id = listed.thread_id
) b
WHERE t.company_id = %(company)s AND t.id = listed.thread_id
  AND (t.person_ids IS DISTINCT FROM
           CASE WHEN b.blocked THEN '{}'::bigint[] ELSE p.person_ids END
       OR t.blocked IS DISTINCT FROM b.blocked)
RETURNING t.id
"""

# The changed threads' persons as rows (`MailThreadPerson`), from their arrays.
_PERSON_ROWS_DELETE = """
DELETE FROM inbox_mailthreadperson tp
USING inbox_mailthread t
WHERE tp.company_id = %(company)s AND tp.thread_id = ANY(%(ids)s)
  AND t.company_id = %(company)s AND t.id = tp.thread_id
  AND NOT (tp.person_id = ANY(t.person_ids))
"""
_PERSON_ROWS_INSERT = """
INSERT INTO inbox_mailthreadperson (company_id, thread_id, person_id)
SELECT %(company)s, t.id, p.person_id
FROM inbox_mailthread t CROSS JOIN LATERAL unnest(t.person_ids) AS p(person_id)
WHERE t.company_id = %(company)s AND t.id = ANY(%(ids)s)
ON CONFLICT (company_id, thread_id, person_id) DO NOTHING
"""


def threads_relink(*, company_id: int, thread_ids: Iterable[int]) -> None:
    """Recompute the threads' persons and blocked state, then their automatic deal or lead."""
    ids = sorted(set(thread_ids))
    if not ids:
        return
    blocks = BlockedAddress.objects.for_company(company_id).exists()
    with connection.cursor() as cursor:
        cursor.execute(_PERSONS_AND_BLOCKED, {"ids": ids, "company": company_id, "blocks": blocks})
        changed = sorted(row[0] for row in cursor.fetchall())
        if changed:
            rows_args: dict[str, int | list[int]] = {"ids": changed, "company": company_id}
            cursor.execute(_PERSON_ROWS_DELETE, rows_args)
            cursor.execute(_PERSON_ROWS_INSERT, rows_args)
        cursor.execute(
            """
            SELECT t.id, t.deal_id, t.lead_id::text, t.project_id, t.person_ids, t.blocked
            FROM inbox_mailthread t
            JOIN inbox_mailaccount acc ON acc.company_id = t.company_id AND acc.id = t.account_id
            WHERE t.company_id = %s AND t.id = ANY(%s) AND NOT t.link_manual
              AND acc.link_mode = %s
            """,
            [company_id, ids, LinkMode.AUTOMATIC],
        )
        rows = cursor.fetchall()
    if rows:
        _deals_and_leads_link(company_id, rows)


def _deals_and_leads_link(
    company_id: int,
    rows: list[tuple[int, int | None, str | None, int | None, list[int], bool]],
) -> None:
    persons = {person for *_, person_ids, blocked in rows if not blocked for person in person_ids}
    deals_of: dict[int, list[Candidate]] = defaultdict(list)
    leads_of: dict[int, list[Candidate]] = defaultdict(list)
    if persons:
        open_deals = Deal.objects.for_company(company_id).filter(
            status=DealStatus.OPEN, deleted_at__isnull=True, is_archived=False
        )
        for open_id, person_id, active_at in open_deals.filter(person_id__in=persons).values_list(
            "id", "person_id", "updated_at"
        ):
            deals_of[person_id].append(Candidate(open_id, active_at))
        for open_id, person_id, active_at in (
            DealParticipant.objects.for_company(company_id)
            .filter(person_id__in=persons, deal__in=open_deals)
            .values_list("deal_id", "person_id", "deal__updated_at")
        ):
            deals_of[person_id].append(Candidate(open_id, active_at))
        for lead_uuid, person_id, active_at in (
            Lead.objects.for_company(company_id)
            .filter(
                person_id__in=persons,
                deleted_at__isnull=True,
                is_archived=False,
                converted_deal__isnull=True,
            )
            .values_list("id", "person_id", "updated_at")
        ):
            leads_of[person_id].append(Candidate(str(lead_uuid), active_at))

    deal_states = _deal_states(company_id, {deal for _, deal, *_ in rows if deal is not None})
    lead_states = _lead_states(company_id, {lead for _, _, lead, *_ in rows if lead is not None})
    changed: list[tuple[int, Link]] = []
    for thread_id, deal_id, lead_id, project_id, person_ids, blocked in rows:
        deal_state = deal_states.get(deal_id, ItemState.GONE) if deal_id else ItemState.GONE
        lead_state = lead_states.get(lead_id, ItemState.GONE) if lead_id else ItemState.GONE
        current = Link(deal_id=deal_id, lead_id=lead_id, project_id=project_id)
        if blocked:
            chosen = Link(project_id=project_id)
        else:
            deals = list({c.id: c for p in person_ids for c in deals_of.get(p, [])}.values())
            leads = list({c.id: c for p in person_ids for c in leads_of.get(p, [])}.values())
            chosen = link_choose(
                current,
                manual=False,
                deal_state=deal_state,
                lead_state=lead_state,
                deals=deals,
                leads=leads,
            )
        if chosen != current:
            changed.append((thread_id, chosen))
    if not changed:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE inbox_mailthread t
            SET deal_id = r.deal_id, lead_id = r.lead_id::uuid, project_id = r.project_id,
                updated_at = now()
            FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::bigint[])
                AS r(thread_id, deal_id, lead_id, project_id)
            WHERE t.company_id = %s AND t.id = r.thread_id AND NOT t.link_manual
            """,
            [
                [thread_id for thread_id, _ in changed],
                [link.deal_id for _, link in changed],
                [link.lead_id for _, link in changed],
                [link.project_id for _, link in changed],
                company_id,
            ],
        )


def _deal_states(company_id: int, deal_ids: set[int]) -> dict[int, ItemState]:
    states: dict[int, ItemState] = {}
    for deal_id, status, deleted_at in (
        Deal.objects.for_company(company_id)
        .filter(pk__in=deal_ids)
        .values_list("id", "status", "deleted_at")
    ):
        if deleted_at is not None:
            states[deal_id] = ItemState.GONE
        else:
            states[deal_id] = ItemState.OPEN if status == DealStatus.OPEN else ItemState.CLOSED
    return states


def _lead_states(company_id: int, lead_ids: set[str]) -> dict[str, ItemState]:
    states: dict[str, ItemState] = {}
    for lead_id, deleted_at, archived, converted in (
        Lead.objects.for_company(company_id)
        .filter(pk__in=lead_ids)
        .values_list("id", "deleted_at", "is_archived", "converted_deal_id")
    ):
        if deleted_at is not None:
            states[str(lead_id)] = ItemState.GONE
        elif archived or converted:  # converted into a deal
            states[str(lead_id)] = ItemState.CLOSED
        else:
            states[str(lead_id)] = ItemState.OPEN
    return states


# --- Re-linking stored mail ---------------------------------------------------------------------


def participants_relink(*, company_id: int, addresses: frozenset[str]) -> int:
    """Link the company's participants with these (normalized) addresses to their person now,
    by the pipeline's own rule, and re-link their threads; return how many participants
    changed. One indexed read of persons, one UPDATE of participants."""
    if not addresses:
        return 0
    persons = link_addresses(
        addresses,
        contacts_selectors.persons_by_addresses(company=company_id, addresses=addresses),
    )
    ordered = sorted(addresses)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE inbox_mailparticipant p SET person_id = r.person_id
            FROM unnest(%s::text[], %s::bigint[]) AS r(address, person_id)
            WHERE p.company_id = %s AND p.address = r.address
              AND p.person_id IS DISTINCT FROM r.person_id
            RETURNING p.message_id
            """,
            [ordered, [persons.get(address) for address in ordered], company_id],
        )
        message_ids = sorted({row[0] for row in cursor.fetchall()})
        if message_ids:
            cursor.execute(
                "SELECT DISTINCT thread_id FROM inbox_mailthreadmessage "
                "WHERE company_id = %s AND message_id = ANY(%s)",
                [company_id, message_ids],
            )
            threads_relink(company_id=company_id, thread_ids=[row[0] for row in cursor.fetchall()])
    return len(message_ids)


def person_threads_relink(
    *, company_id: int, person_id: int | None, deal_id: int | None = None
) -> None:
    """Re-decide the deal or lead of the conversations a person takes part in (and of those
    linked to `deal_id`): a deal of theirs opened, closed or went."""
    wanted = Q(pk__in=[])
    if person_id is not None:
        taking_part = MailThreadPerson.objects.for_company(company_id).filter(person_id=person_id)
        wanted |= Q(pk__in=taking_part.values("thread_id"))
    if deal_id is not None:
        wanted |= Q(deal_id=deal_id)
    ids = list(
        MailThread.objects.for_company(company_id).filter(wanted).values_list("pk", flat=True)
    )
    threads_relink(company_id=company_id, thread_ids=ids)


def blocks_applied(*, company_id: int, values: Iterable[str]) -> None:
    """A block on these addresses or `@domains` was added or removed: re-decide the threads
    with a sender that matches (in every account; `threads_relink` applies each block only
    where it belongs)."""
    addresses = sorted(v for v in values if not v.startswith("@"))
    domains = sorted(v[1:] for v in values if v.startswith("@"))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT tm.thread_id
            FROM inbox_mailparticipant p
            JOIN inbox_mailthreadmessage tm
                ON tm.company_id = p.company_id AND tm.message_id = p.message_id
            WHERE p.company_id = %s AND p.role = 'from'
              AND (p.address = ANY(%s) OR split_part(p.address, '@', 2) = ANY(%s))
            """,
            [company_id, addresses, domains],
        )
        ids = [row[0] for row in cursor.fetchall()]
    threads_relink(company_id=company_id, thread_ids=ids)


# --- Hooks --------------------------------------------------------------------------------------


def on_person_addresses_changed(event: hooks.PersonAddressesChanged) -> None:
    participants_relink(company_id=event.company_id, addresses=event.added | event.removed)


def on_deal_status_changed(event: hooks.DealStatusChanged) -> None:
    person_threads_relink(
        company_id=event.company_id, person_id=event.person_id, deal_id=event.deal_id
    )


def _person_of(shape: object) -> int | None:
    person_id = shape.get("person_id") if isinstance(shape, dict) else None
    return person_id if isinstance(person_id, int) else None


def on_item_event(event: hooks.ItemEvent) -> None:
    """A deal changed person, or a lead was added, changed (archived, converted, another
    person) or deleted: re-decide the mail of the persons concerned."""
    if event.kind == "deal" and not (
        event.action == "updated" and "person_id" in event.changed_fields
    ):
        return  # a deal's status changes come through DEAL_STATUS_CHANGED
    if event.kind not in ("deal", "lead"):
        return
    shapes = [event.current.get("2.0"), (event.previous or {}).get("2.0")]
    persons = {person for shape in shapes if (person := _person_of(shape)) is not None}
    deal_id = int(event.item_id) if event.kind == "deal" else None
    for person_id in sorted(persons):
        person_threads_relink(company_id=event.company_id, person_id=person_id, deal_id=deal_id)
