"""The contacts services: normalization, one primary, names, owners, merges, soft delete,
restore and purge, relations seen from both sides, the change log and the hooks."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from contacts import selectors, services
from contacts.models import Organization, Person, PersonEmail
from contacts.services import ContactPoint
from crm import hooks, tenancy
from crm.access import Visibility
from crm.models import ItemChange
from crm.services import ServiceError
from tests.conftest import Cast
from tests.contacts.conftest import Recorder, make_organization, make_person, member

pytestmark = pytest.mark.django_db


def _emails(cast: Cast, person: Person) -> list[tuple[str, str, bool, str]]:
    with tenancy.bound(cast.company_a.pk):
        return [
            (row.value, row.normalized, row.primary, row.label)
            for row in PersonEmail.objects.for_company(cast.company_a).filter(person=person)
        ]


def test_addresses_are_normalized_by_case_and_idna_and_the_first_is_primary(cast: Cast) -> None:
    person = make_person(
        cast,
        emails=[ContactPoint(" Ann@Bücher.Example "), ContactPoint("ann@other.test", label="home")],
    )

    assert _emails(cast, person) == [
        ("Ann@Bücher.Example", "ann@xn--bcher-kva.example", True, "work"),
        ("ann@other.test", "ann@other.test", False, "home"),
    ]


def test_only_the_first_address_marked_primary_stays_primary_and_duplicates_go(
    cast: Cast,
) -> None:
    person = make_person(
        cast,
        emails=[
            ContactPoint("a@x.test"),
            ContactPoint("b@x.test", primary=True),
            ContactPoint("c@x.test", primary=True),
            ContactPoint("B@X.TEST"),
        ],
    )

    assert [(value, primary) for value, _n, primary, _l in _emails(cast, person)] == [
        ("a@x.test", False),
        ("b@x.test", True),
        ("c@x.test", False),
    ]


@pytest.mark.parametrize("bad", ["not-an-address", "a@b", "a b@c.test", "x@y..test"])
def test_an_invalid_address_is_refused_on_the_emails_field(cast: Cast, bad: str) -> None:
    with pytest.raises(ServiceError) as refused:
        make_person(cast, emails=[ContactPoint(bad)])
    assert refused.value.field == "emails"


def test_a_full_name_splits_and_parts_join(cast: Cast) -> None:
    split = make_person(cast, name="Ada King Lovelace")
    joined = make_person(cast, name=None, first_name="Grace", last_name="Hopper")

    assert (split.first_name, split.last_name) == ("Ada", "King Lovelace")
    assert joined.name == "Grace Hopper"


def test_updating_the_last_name_rewrites_the_full_name(cast: Cast) -> None:
    person = make_person(cast, name="Ada Byron")
    with tenancy.bound(cast.company_a.pk):
        person = services.person_update(
            company=cast.company_a,
            membership=member(cast, cast.alice),
            person=person,
            fields={"last_name": "Lovelace"},
        )
    assert (person.name, person.first_name, person.last_name) == ("Ada Lovelace", "Ada", "Lovelace")


def test_owner_defaults_to_the_acting_user_and_visibility_to_the_company_default(
    cast: Cast,
) -> None:
    person = make_person(cast, cast.bob)

    assert person.owner_id == cast.bob.pk
    assert person.visible_to == Visibility.COMPANY


def test_the_owner_must_be_an_active_member_of_the_company(cast: Cast) -> None:
    with pytest.raises(ServiceError) as refused:
        make_person(cast, owner_id=cast.carol.pk)
    assert refused.value.field == "owner_id"


def test_visible_to_must_be_1_3_5_or_7(cast: Cast) -> None:
    with pytest.raises(ServiceError) as refused:
        make_person(cast, visible_to=4)
    assert refused.value.field == "visible_to"
    assert make_person(cast, visible_to="5").visible_to == Visibility.TEAMS


def test_the_organization_must_be_one_the_user_can_see(cast: Cast) -> None:
    hidden = make_organization(cast, cast.alice, visible_to=1)
    with pytest.raises(ServiceError) as refused:
        make_person(cast, cast.bob, org_id=hidden.pk)
    assert refused.value.field == "org_id"


def test_every_write_records_the_change_log(cast: Cast) -> None:
    person = make_person(cast, name="Ada Byron", emails=[ContactPoint("ada@x.test")])
    with tenancy.bound(cast.company_a.pk):
        services.person_update(
            company=cast.company_a,
            membership=member(cast, cast.alice),
            person=person,
            fields={"name": "Ada Lovelace"},
            source="api",
        )
        rows = list(
            ItemChange.objects.for_company(cast.company_a)
            .filter(item_kind="person", item_key=str(person.pk))
            .order_by("id")
        )
    fields = {(row.field, row.source) for row in rows}
    assert ("emails", "app") in fields
    renamed = [row for row in rows if row.field == "name" and row.source == "api"]
    assert [(row.old_value, row.new_value) for row in renamed] == [("Ada Byron", "Ada Lovelace")]
    assert renamed[0].actor_id == cast.alice.pk


def test_a_create_publishes_the_item_in_both_versions_and_its_addresses(
    cast: Cast, published: Recorder
) -> None:
    person = make_person(cast, visible_to=1, emails=[ContactPoint("Ada@X.test")])

    (event,) = published.of(hooks.ITEM_EVENT)
    assert (event.kind, event.action, event.item_id) == ("person", "added", str(person.pk))
    assert event.current["2.0"]["emails"][0]["value"] == "Ada@X.test"
    assert event.current["1.0"]["visible_to"] == "1"
    # Owner-only: Alice (owner and admin) may see it, Bob may not.
    assert event.permitted_user_ids == (cast.alice.pk,)
    (addresses,) = published.of(hooks.PERSON_ADDRESSES_CHANGED)
    assert addresses.added == {"ada@x.test"}


def test_an_update_publishes_the_previous_values_of_changed_fields_only(
    cast: Cast, published: Recorder
) -> None:
    person = make_person(cast, name="Ada Byron", job_title="Analyst")
    with tenancy.bound(cast.company_a.pk):
        services.person_update(
            company=cast.company_a,
            membership=member(cast, cast.alice),
            person=person,
            fields={"job_title": "Countess"},
        )
    event = published.of(hooks.ITEM_EVENT)[-1]
    assert event.action == "updated"
    assert event.changed_fields == ("job_title",)
    assert event.previous["2.0"]["job_title"] == "Analyst"
    assert "name" not in event.previous["2.0"]
    assert published.of(hooks.PERSON_ADDRESSES_CHANGED) == []


def test_team_visibility_permits_the_owners_team_mates_and_admins(
    cast: Cast, published: Recorder
) -> None:
    make_person(cast, cast.bob, visible_to=3)
    assert published.of(hooks.ITEM_EVENT)[-1].permitted_user_ids == tuple(
        sorted((cast.alice.pk, cast.bob.pk))
    )


def test_merge_moves_new_addresses_phones_and_labels_and_dedupes_addresses(
    cast: Cast, published: Recorder
) -> None:
    from crm.services import label_create

    with tenancy.bound(cast.company_a.pk):
        vip = label_create(company=cast.company_a, kind="person", name="VIP")
    organization = make_organization(cast)
    keep = make_person(cast, name="Ada", emails=[ContactPoint("ada@x.test")])
    merged = make_person(
        cast,
        name="Ada L.",
        emails=[ContactPoint("ADA@x.test"), ContactPoint("ada@home.test")],
        phones=[ContactPoint("+372 555")],
        label_ids=[vip.pk],
        org_id=organization.pk,
        job_title="Countess",
    )
    with tenancy.bound(cast.company_a.pk):
        kept = services.person_merge(
            company=cast.company_a, membership=member(cast, cast.alice), keep=keep, merged=merged
        )
        gone = Person.objects.for_company(cast.company_a).get(pk=merged.pk)
        left = PersonEmail.objects.for_company(cast.company_a).filter(person=merged).count()

    assert [(v, p) for v, _n, p, _l in _emails(cast, kept)] == [
        ("ada@x.test", True),
        ("ada@home.test", False),
    ]
    assert [phone.value for phone in kept.phones.all()] == ["+372 555"]
    assert [label.pk for label in kept.labels.all()] == [vip.pk]
    assert kept.organization_id == organization.pk
    assert kept.job_title == "Countess"
    assert gone.deleted_at is not None
    assert left == 0
    (merge,) = published.of(hooks.PERSONS_MERGED)
    assert (merge.merged_id, merge.into_id) == (merged.pk, keep.pk)
    merged_event = [e for e in published.of(hooks.ITEM_EVENT) if e.action == "merged"]
    assert merged_event[0].merged_into_id == str(keep.pk)
    changes = {
        (e.person_id, frozenset(e.added), frozenset(e.removed))
        for e in published.of(hooks.PERSON_ADDRESSES_CHANGED)
    }
    assert (keep.pk, frozenset({"ada@home.test"}), frozenset()) in changes
    assert (merged.pk, frozenset(), frozenset({"ada@x.test", "ada@home.test"})) in changes


def test_a_merged_person_is_marked_and_cannot_be_restored_as_an_empty_shell(
    cast: Cast,
) -> None:
    keep = make_person(cast, name="Kept")
    merged = make_person(cast, name="Merged", emails=[ContactPoint("merged@x.test")])
    alice = member(cast, cast.alice)
    with tenancy.bound(cast.company_a.pk):
        services.person_merge(company=cast.company_a, membership=alice, keep=keep, merged=merged)
        gone = Person.objects.for_company(cast.company_a).get(pk=merged.pk)
        assert gone.merged_into_id == keep.pk
        with pytest.raises(ServiceError, match=f"merged into item {keep.pk}"):
            services.person_restore(company=cast.company_a, membership=alice, person=gone)


def test_a_merged_organization_cannot_be_restored(cast: Cast) -> None:
    keep = make_organization(cast)
    merged = make_organization(cast)
    alice = member(cast, cast.alice)
    with tenancy.bound(cast.company_a.pk):
        services.organization_merge(
            company=cast.company_a, membership=alice, keep=keep, merged=merged
        )
        gone = Organization.objects.for_company(cast.company_a).get(pk=merged.pk)
        with pytest.raises(ServiceError, match="cannot be restored"):
            services.organization_restore(
                company=cast.company_a, membership=alice, organization=gone
            )


def test_a_person_cannot_be_merged_with_itself(cast: Cast) -> None:
    person = make_person(cast)
    with tenancy.bound(cast.company_a.pk), pytest.raises(ServiceError):
        services.person_merge(
            company=cast.company_a, membership=member(cast, cast.alice), keep=person, merged=person
        )


def test_soft_delete_hides_restore_brings_back_and_addresses_follow(
    cast: Cast, published: Recorder
) -> None:
    person = make_person(cast, emails=[ContactPoint("pat@x.test")])
    alice = member(cast, cast.alice)
    with tenancy.bound(cast.company_a.pk):
        services.person_delete(company=cast.company_a, membership=alice, person=person)
        assert (
            selectors.persons_by_addresses(company=cast.company_a, addresses=["pat@x.test"]) == {}
        )
        person = Person.objects.for_company(cast.company_a).get(pk=person.pk)
        services.person_restore(company=cast.company_a, membership=alice, person=person)
        found = selectors.persons_by_addresses(company=cast.company_a, addresses=["PAT@x.test"])
    assert found == {"pat@x.test": [person.pk]}
    removed, added = published.of(hooks.PERSON_ADDRESSES_CHANGED)[1:]
    assert removed.removed == {"pat@x.test"}
    assert added.added == {"pat@x.test"}


def test_restore_is_refused_after_the_soft_delete_window(cast: Cast) -> None:
    person = make_person(cast)
    with tenancy.bound(cast.company_a.pk):
        Person.objects.for_company(cast.company_a).filter(pk=person.pk).update(
            deleted_at=timezone.now() - datetime.timedelta(days=31)
        )
        person = Person.objects.for_company(cast.company_a).get(pk=person.pk)
        with pytest.raises(ServiceError):
            services.person_restore(
                company=cast.company_a, membership=member(cast, cast.alice), person=person
            )


def test_purge_removes_only_items_deleted_longer_ago_than_the_window(cast: Cast) -> None:
    old = make_person(cast, name="Old")
    recent = make_person(cast, name="Recent")
    old_org = make_organization(cast, name="Old Org")
    with tenancy.bound(cast.company_a.pk):
        long_ago = timezone.now() - datetime.timedelta(days=31)
        Person.objects.for_company(cast.company_a).filter(pk=old.pk).update(deleted_at=long_ago)
        Person.objects.for_company(cast.company_a).filter(pk=recent.pk).update(
            deleted_at=timezone.now()
        )
        Organization.objects.for_company(cast.company_a).filter(pk=old_org.pk).update(
            deleted_at=long_ago
        )
        purged = services.contacts_purge_deleted(company=cast.company_a)
        left = set(Person.objects.for_company(cast.company_a).values_list("name", flat=True))
        orgs = Organization.objects.for_company(cast.company_a).count()
    assert purged == 2
    assert left == {"Recent"}
    assert orgs == 0


def test_organization_merge_moves_persons_and_relations(cast: Cast, published: Recorder) -> None:
    keep = make_organization(cast, name="Keep")
    merged = make_organization(cast, name="Merged", address={"value": "Tallinn"})
    parent = make_organization(cast, name="Parent")
    person = make_person(cast, org_id=merged.pk)
    alice = member(cast, cast.alice)
    with tenancy.bound(cast.company_a.pk):
        services.organization_relation_add(
            company=cast.company_a,
            membership=alice,
            kind="parent",
            organization=parent,
            related_organization=merged,
        )
        kept = services.organization_merge(
            company=cast.company_a, membership=alice, keep=keep, merged=merged
        )
        moved = Person.objects.for_company(cast.company_a).get(pk=person.pk)
        relations = selectors.organization_relations(
            company=cast.company_a, membership=alice, organization=kept
        )
    assert moved.organization_id == keep.pk
    assert kept.address_value == "Tallinn"
    assert [(r.other.pk, r.kind) for r in relations] == [(parent.pk, "parent")]
    (merge,) = published.of(hooks.ORGANIZATIONS_MERGED)
    assert (merge.merged_id, merge.into_id) == (merged.pk, keep.pk)


def test_a_relation_is_seen_from_both_sides(cast: Cast) -> None:
    parent = make_organization(cast, name="Holding")
    child = make_organization(cast, name="Daughter")
    peer = make_organization(cast, name="Peer")
    alice = member(cast, cast.alice)
    with tenancy.bound(cast.company_a.pk):
        services.organization_relation_add(
            company=cast.company_a,
            membership=alice,
            kind="parent",
            organization=parent,
            related_organization=child,
        )
        services.organization_relation_add(
            company=cast.company_a,
            membership=alice,
            kind="related",
            organization=child,
            related_organization=peer,
        )
        from_parent = selectors.organization_relations(
            company=cast.company_a, membership=alice, organization=parent
        )
        from_child = selectors.organization_relations(
            company=cast.company_a, membership=alice, organization=child
        )
        with pytest.raises(ServiceError):
            services.organization_relation_add(
                company=cast.company_a,
                membership=alice,
                kind="related",
                organization=child,
                related_organization=parent,
            )
    assert [(r.other.name, r.kind) for r in from_parent] == [("Daughter", "subsidiary")]
    assert [(r.other.name, r.kind) for r in from_child] == [
        ("Holding", "parent"),
        ("Peer", "related"),
    ]
