"""Linking decisions (C1): which CRM person each participant address belongs to. Pure: the
caller reads the company's persons by address once per batch and hands them in.

This is the stage the linking and visibility issue extends (open deal or lead of the person,
manual mode, bulk mail that is never auto-linked, the blocklist): its inputs and outputs are
plain data so those rules stay testable without a database."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def link_addresses(
    addresses: Iterable[str], persons_by_address: Mapping[str, Sequence[int]]
) -> dict[str, int]:
    """Address → person id, for the addresses a person has. When several persons share an
    address (duplicates not yet merged) the oldest (lowest id) is chosen, so the choice is
    stable from batch to batch."""
    links: dict[str, int] = {}
    for address in addresses:
        persons = persons_by_address.get(address)
        if persons:
            links[address] = min(persons)
    return links
