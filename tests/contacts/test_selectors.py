"""The reads: the linking lookup by address, lists and search through item access."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts import selectors
from contacts.services import ContactPoint
from crm import tenancy
from tests.conftest import Cast
from tests.contacts.conftest import make_person, member

pytestmark = pytest.mark.django_db


def test_persons_by_addresses_normalizes_input_in_one_query_and_ignores_access(
    cast: Cast,
) -> None:
    hidden = make_person(
        cast, cast.alice, visible_to=1, emails=[ContactPoint("Ann@Bücher.example")]
    )
    other = make_person(cast, cast.bob, emails=[ContactPoint("ann@bücher.example")])
    with tenancy.bound(cast.company_a.pk), CaptureQueriesContext(connection) as queries:
        found = selectors.persons_by_addresses(
            company=cast.company_a,
            addresses=["<ANN@xn--bcher-kva.example>", "nobody@x.test", "not an address"],
        )
    assert found == {"ann@xn--bcher-kva.example": sorted([hidden.pk, other.pk])}
    assert len(queries) == 1


def test_persons_by_addresses_stays_inside_the_company(cast: Cast) -> None:
    make_person(cast, emails=[ContactPoint("shared@x.test")])
    with tenancy.bound(cast.company_b.pk):
        assert (
            selectors.persons_by_addresses(company=cast.company_b, addresses=["shared@x.test"])
            == {}
        )


def test_search_finds_by_name_email_phone_and_notes_within_access(cast: Cast) -> None:
    visible = make_person(
        cast,
        cast.bob,
        name="Zed Zimmer",
        emails=[ContactPoint("zed@zimmer.test")],
        phones=[ContactPoint("+1 555 0100")],
        notes="met at the fair",
    )
    make_person(cast, cast.alice, name="Zed Hidden", visible_to=1)
    bob = member(cast, cast.bob)
    with tenancy.bound(cast.company_a.pk):

        def ids(term: str, **kwargs: object) -> list[int]:
            rows = selectors.person_search(
                company=cast.company_a,
                membership=bob,
                term=term,
                **kwargs,  # type: ignore[arg-type]
            )
            return [row.pk for row in rows]

        assert ids("Zed") == [visible.pk]
        assert ids("zimmer.test") == [visible.pk]
        assert ids("ZED@zimmer.test", exact_match=True, fields={"email"}) == [visible.pk]
        assert ids("555 01") == [visible.pk]
        assert ids("fair") == [visible.pk]
        assert ids("fair", fields={"name"}) == []
