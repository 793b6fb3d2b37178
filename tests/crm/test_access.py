"""Item access (Pipedrive's visible_to), as a hand-written matrix: visibility by who asks.

Bob owns every item. Alice is an admin (sees all), Erin is a regular user on Bob's team
"Sales", Dave is a regular user on no team. Written out cell by cell on purpose: the table is
the specification, not a re-derivation of crm/access.py."""

from __future__ import annotations

import pytest

from contacts.models import Person
from crm import services, tenancy
from crm.access import ItemForbidden, ItemNotFound, access_item, can_see, visible_items
from crm.models import Membership, Role
from tests.conftest import PASSWORD, Cast

pytestmark = pytest.mark.django_db

# (visible_to, viewer) -> sees
MATRIX = {
    (1, "alice"): True,  # admin
    (1, "bob"): True,  # owner
    (1, "erin"): False,  # team mate
    (1, "dave"): False,  # other user
    (3, "alice"): True,
    (3, "bob"): True,
    (3, "erin"): True,
    (3, "dave"): False,
    (7, "alice"): True,
    (7, "bob"): True,
    (7, "erin"): True,
    (7, "dave"): True,
}


@pytest.fixture
def members(cast: Cast) -> dict[str, Membership]:
    company = cast.company_a
    with tenancy.bound(company.pk):
        for email, name in (("erin@acme.test", "Erin"), ("dave@acme.test", "Dave")):
            user = services.user_get_or_create(email=email, password=PASSWORD, name=name)
            services.membership_add(company=company, user=user, role=Role.REGULAR)
        erin = services.user_get_or_create(email="erin@acme.test", password=None)
        team = services.team_save(company=company, name="Sales", team=cast.team)
        services.team_set_members(
            company=company, team=team, user_ids={cast.alice.pk, cast.bob.pk, erin.pk}
        )
        # Bob's team mate Alice is an admin anyway; Bob and Erin share "Sales".
        by_email = {
            m.user.email.split("@")[0]: m
            for m in Membership.objects.for_company(company).select_related("user")
        }
    return by_email


@pytest.fixture
def persons(cast: Cast) -> dict[int, Person]:
    with tenancy.bound(cast.company_a.pk):
        return {
            visible_to: Person.objects.create(
                company=cast.company_a,
                owner=cast.bob,
                name=f"Seen by {visible_to}",
                visible_to=visible_to,
            )
            for visible_to in (1, 3, 7)
        }


@pytest.mark.parametrize(("visible_to", "viewer"), sorted(MATRIX))
def test_access_matrix(
    cast: Cast,
    members: dict[str, Membership],
    persons: dict[int, Person],
    visible_to: int,
    viewer: str,
) -> None:
    expected = MATRIX[(visible_to, viewer)]
    membership = members[viewer]
    person = persons[visible_to]
    with tenancy.bound(cast.company_a.pk, user_id=membership.user_id):
        listed = (
            visible_items(Person.objects.for_company(cast.company_a), membership=membership)
            .filter(pk=person.pk)
            .exists()
        )
        assert listed is expected
        assert can_see(person, membership=membership) is expected
        if expected:
            found = access_item(
                Person.objects.for_company(cast.company_a), membership=membership, item_id=person.pk
            )
            assert found == person
        else:
            with pytest.raises(ItemForbidden):
                access_item(
                    Person.objects.for_company(cast.company_a),
                    membership=membership,
                    item_id=person.pk,
                )


def test_an_item_of_another_company_is_not_found_not_forbidden(cast: Cast) -> None:
    with tenancy.bound(cast.company_a.pk):
        person = Person.objects.create(company=cast.company_a, owner=cast.alice, name="Acme's")
    carol = cast.membership(cast.carol, cast.company_b)
    with tenancy.bound(cast.company_b.pk, user_id=cast.carol.pk):
        assert not can_see(person, membership=carol)
        with pytest.raises(ItemNotFound):
            access_item(
                Person.objects.for_company(cast.company_b), membership=carol, item_id=person.pk
            )


def test_a_team_mate_loses_sight_of_a_team_item_when_leaving_the_team(
    cast: Cast, members: dict[str, Membership], persons: dict[int, Person]
) -> None:
    erin = members["erin"]
    with tenancy.bound(cast.company_a.pk):
        services.team_set_members(
            company=cast.company_a, team=cast.team, user_ids={cast.alice.pk, cast.bob.pk}
        )
        assert not can_see(persons[3], membership=erin)
        assert can_see(persons[7], membership=erin)


def test_visible_items_is_one_query_whatever_the_number_of_items(
    cast: Cast,
    members: dict[str, Membership],
    persons: dict[int, Person],
    django_assert_num_queries,
) -> None:
    with tenancy.bound(cast.company_a.pk), django_assert_num_queries(1):
        seen = list(
            visible_items(Person.objects.for_company(cast.company_a), membership=members["dave"])
        )
    assert [p.visible_to for p in seen] == [7]
