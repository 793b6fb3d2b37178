"""Linking re-runs for mail already stored (C1) when a person gains or loses an address: on
create, edit, merge, delete and restore, contacts publish `crm.hooks.PERSON_ADDRESSES_CHANGED`.

The participants with those addresses are linked again by the pipeline's own rule
(`mailsync.pipeline.link.link_addresses`): the person who has the address now (the oldest when
several do), or nobody. Runs inside the publisher's transaction: one indexed read of persons,
one UPDATE of participants."""

from __future__ import annotations

from django.db import connection

from contacts import selectors as contacts_selectors
from crm import hooks
from mailsync.pipeline.link import link_addresses


def participants_relink(*, company_id: int, addresses: frozenset[str]) -> int:
    """Link the company's participants with these (normalized) addresses to their person
    now; return how many changed."""
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
            """,
            [ordered, [persons.get(address) for address in ordered], company_id],
        )
        return int(cursor.rowcount)


def person_addresses_changed(event: hooks.PersonAddressesChanged) -> None:
    participants_relink(company_id=event.company_id, addresses=event.added | event.removed)
