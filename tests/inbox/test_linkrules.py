"""The automatic linking rules (C1, C2), pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inbox.linkrules import Candidate, ItemState, Link, link_addresses, link_choose

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEAD = "5b7a0c2e-0000-4000-8000-000000000001"
OTHER_LEAD = "5b7a0c2e-0000-4000-8000-000000000002"


def choose(
    current: Link = Link(),  # noqa: B008 - frozen
    *,
    manual: bool = False,
    deal_state: ItemState = ItemState.GONE,
    lead_state: ItemState = ItemState.GONE,
    deals: tuple[Candidate, ...] = (),
    leads: tuple[Candidate, ...] = (),
) -> Link:
    return link_choose(
        current,
        manual=manual,
        deal_state=deal_state,
        lead_state=lead_state,
        deals=deals,
        leads=leads,
    )


def test_an_address_links_to_its_person_the_oldest_when_shared() -> None:
    persons = {"pat@x.test": [12, 7], "quinn@x.test": [3]}
    assert link_addresses(["pat@x.test", "quinn@x.test", "nobody@x.test"], persons) == {
        "pat@x.test": 7,
        "quinn@x.test": 3,
    }


def test_the_most_recently_active_open_deal_wins_and_ties_go_to_the_newest() -> None:
    old, recent = Candidate(1, T0), Candidate(2, T0 + timedelta(days=1))
    assert choose(deals=(recent, old)) == Link(deal_id=2)
    assert choose(deals=(Candidate(5, T0), Candidate(9, T0))) == Link(deal_id=9)


def test_a_linked_open_deal_stays_even_when_another_becomes_more_active() -> None:
    linked, busier = Candidate(1, T0), Candidate(2, T0 + timedelta(days=3))
    assert choose(Link(deal_id=1), deal_state=ItemState.OPEN, deals=(linked, busier)) == Link(
        deal_id=1
    )


def test_a_closed_deal_keeps_its_conversations_a_deleted_one_lets_them_go() -> None:
    other = Candidate(2, T0)
    assert choose(Link(deal_id=1), deal_state=ItemState.CLOSED, deals=(other,)) == Link(deal_id=1)
    assert choose(Link(deal_id=1), deal_state=ItemState.GONE, deals=(other,)) == Link(deal_id=2)
    assert choose(Link(deal_id=1), deal_state=ItemState.GONE) == Link()


def test_an_open_deal_that_is_no_longer_a_participants_is_replaced() -> None:
    assert choose(Link(deal_id=1), deal_state=ItemState.OPEN, deals=(Candidate(2, T0),)) == Link(
        deal_id=2
    )


def test_a_lead_when_there_is_no_open_deal_and_the_deal_once_there_is() -> None:
    lead = Candidate(LEAD, T0)
    assert choose(leads=(lead,)) == Link(lead_id=LEAD)
    assert choose(
        Link(lead_id=LEAD), lead_state=ItemState.OPEN, deals=(Candidate(4, T0),), leads=(lead,)
    ) == Link(deal_id=4)
    # An archived or converted lead keeps its conversations; an open one stays put.
    assert choose(Link(lead_id=LEAD), lead_state=ItemState.CLOSED) == Link(lead_id=LEAD)
    assert choose(
        Link(lead_id=LEAD),
        lead_state=ItemState.OPEN,
        leads=(lead, Candidate(OTHER_LEAD, T0 + timedelta(days=1))),
    ) == Link(lead_id=LEAD)


def test_a_choice_by_hand_and_a_project_are_never_changed() -> None:
    deals = (Candidate(2, T0),)
    assert choose(Link(), manual=True, deals=deals) == Link()
    assert choose(Link(deal_id=1), manual=True, deal_state=ItemState.GONE) == Link(deal_id=1)
    assert choose(Link(project_id=8), deals=deals) == Link(project_id=8)
