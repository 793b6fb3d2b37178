"""The linking rules (C1, C2): which person an address belongs to, and which deal or lead a
conversation is linked to automatically. Pure, no Django, so the rules test without a
database: the ingest pipeline's link stage and `inbox.linking` read the facts and apply them.

In an account's automatic mode, a conversation is linked to the open deal of a person taking
part in it; with several, to the most recently active one (the others are offered as one-click
alternatives). With no open deal, to the person's open lead. A choice made by hand
(`manual`) is never changed here, nor is a link to a deal that has since closed (won or lost:
the conversation stays in that deal's history) or to a lead that was archived or converted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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


class ItemState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # a won or lost deal; an archived or converted lead
    GONE = "gone"  # deleted, or not there


@dataclass(frozen=True, slots=True)
class Candidate:
    """An open deal or lead of a person taking part."""

    id: int | str  # a deal's id; a lead's UUID as text
    active_at: datetime  # its latest change: "most recently active"


@dataclass(frozen=True, slots=True)
class Link:
    deal_id: int | None = None
    lead_id: str | None = None
    project_id: int | None = None


def most_recent(candidates: Sequence[Candidate]) -> Candidate:
    """The most recently active; on a tie the newest (highest id), so the choice is stable."""
    return max(candidates, key=lambda c: (c.active_at, str(c.id).rjust(40)))


def link_choose(
    current: Link,
    *,
    manual: bool,
    deal_state: ItemState,
    lead_state: ItemState,
    deals: Sequence[Candidate],
    leads: Sequence[Candidate],
) -> Link:
    """The link a conversation should have now.

    `deal_state` / `lead_state`: the state of the currently linked deal / lead (GONE when none);
    `deals` / `leads`: the open deals and leads of the persons taking part."""
    if manual or current.project_id is not None:
        return current
    if current.deal_id is not None:
        if deal_state is ItemState.CLOSED:
            return current
        if deal_state is ItemState.OPEN and any(d.id == current.deal_id for d in deals):
            return current
    if deals:
        return Link(deal_id=int(most_recent(deals).id))
    if current.lead_id is not None:
        if lead_state is ItemState.CLOSED:
            return Link(lead_id=current.lead_id)
        if lead_state is ItemState.OPEN and any(lead.id == current.lead_id for lead in leads):
            return Link(lead_id=current.lead_id)
    if leads:
        return Link(lead_id=str(most_recent(leads).id))
    return Link()
