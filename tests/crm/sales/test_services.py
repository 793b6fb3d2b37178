"""The sales services: status transitions and their times, stage and pipeline rules, the
default pipeline, soft delete / restore / purge, lead conversion, change log and events."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test.utils import override_settings
from django.utils import timezone

from crm import hooks, tenancy
from crm.models import ItemChange, Label, LabelKind
from crm.sales import selectors, services, tasks
from crm.sales.models import Deal, Lead, LeadConversion, Pipeline, ProjectBoard, Stage
from crm.services import ServiceError, label_create
from tests.conftest import Cast
from tests.crm.sales.conftest import Dave, make_organization, make_person, membership_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(cast: Cast) -> Any:
    return membership_of(cast.alice, cast.company_a)


@pytest.fixture
def bob(cast: Cast) -> Any:
    return membership_of(cast.bob, cast.company_a)


def _deal(cast: Cast, membership: Any, **fields: Any) -> Deal:
    with tenancy.bound(cast.company_a.pk):
        return services.deal_create(
            company=cast.company_a, membership=membership, fields={"title": "Big deal", **fields}
        )


def test_deal_without_pipeline_goes_to_the_first_stage_of_a_new_default_pipeline(
    cast: Cast, alice: Any
) -> None:
    deal = _deal(cast, alice)

    with tenancy.bound(cast.company_a.pk):
        pipeline = Pipeline.objects.for_company(cast.company_a).get()
        stages = list(Stage.objects.for_company(cast.company_a).values_list("name", "probability"))
    assert pipeline.name == "Sales pipeline"
    assert stages == [
        ("Qualified", 10),
        ("Contact made", 20),
        ("Demo scheduled", 40),
        ("Proposal made", 60),
        ("Negotiations started", 80),
    ]
    assert deal.pipeline_id == pipeline.pk
    assert deal.stage.name == "Qualified"
    assert deal.status == "open"
    assert deal.owner_id == cast.alice.pk
    assert deal.stage_change_time is None


def test_default_pipeline_is_made_once(cast: Cast, alice: Any) -> None:
    with tenancy.bound(cast.company_a.pk):
        first = services.pipeline_default_ensure(company=cast.company_a)
        second = services.pipeline_default_ensure(company=cast.company_a)
        assert first.pk == second.pk
        assert Pipeline.objects.for_company(cast.company_a).count() == 1


def _times(deal: Deal) -> tuple[Any, Any, Any]:
    # Read through a function: the type checker would otherwise keep its narrowing of the
    # attributes across the updates.
    return deal.won_time, deal.lost_time, deal.close_time


def test_winning_losing_and_reopening_set_and_clear_the_times(cast: Cast, alice: Any) -> None:
    deal = _deal(cast, alice)
    with tenancy.bound(cast.company_a.pk):
        services.deal_update(
            company=cast.company_a, membership=alice, deal=deal, fields={"status": "won"}
        )
        won, lost, closed = _times(deal)
        assert won is not None
        assert closed == won
        assert lost is None

        services.deal_update(
            company=cast.company_a,
            membership=alice,
            deal=deal,
            fields={"status": "lost", "lost_reason": "Too expensive"},
        )
        won, lost, closed = _times(deal)
        assert lost is not None
        assert won is None
        assert deal.lost_reason == "Too expensive"

        services.deal_update(
            company=cast.company_a, membership=alice, deal=deal, fields={"status": "open"}
        )
        deal.refresh_from_db()
        assert _times(deal) == (None, None, None)
        assert deal.lost_reason == ""


def test_lost_reason_is_refused_on_a_deal_that_is_not_lost(cast: Cast, alice: Any) -> None:
    deal = _deal(cast, alice)
    with tenancy.bound(cast.company_a.pk), pytest.raises(ServiceError) as refused:
        services.deal_update(
            company=cast.company_a, membership=alice, deal=deal, fields={"lost_reason": "x"}
        )
    assert refused.value.field == "lost_reason"


def test_unknown_status_and_bad_currency_are_refused(cast: Cast, alice: Any) -> None:
    with pytest.raises(ServiceError) as status:
        _deal(cast, alice, status="maybe")
    assert status.value.field == "status"
    with pytest.raises(ServiceError) as currency:
        _deal(cast, alice, currency="EURO")
    assert currency.value.field == "currency"


def test_moving_to_another_stage_records_the_stage_change_time(cast: Cast, alice: Any) -> None:
    deal = _deal(cast, alice)
    with tenancy.bound(cast.company_a.pk):
        other = Stage.objects.for_company(cast.company_a).get(name="Demo scheduled")
        services.deal_update(
            company=cast.company_a, membership=alice, deal=deal, fields={"stage_id": other.pk}
        )
    assert deal.stage_id == other.pk
    assert deal.stage_change_time is not None


def test_a_stage_of_another_pipeline_is_refused(cast: Cast, alice: Any) -> None:
    with tenancy.bound(cast.company_a.pk):
        default = services.pipeline_default_ensure(company=cast.company_a)
        other = services.pipeline_create(company=cast.company_a, membership=alice, name="Other")
        stage = Stage.objects.for_company(cast.company_a).filter(pipeline=default).first()
        assert stage is not None
    with pytest.raises(ServiceError) as refused:
        _deal(cast, alice, pipeline_id=other.pk, stage_id=stage.pk)
    assert refused.value.field == "stage_id"


def test_a_pipeline_alone_puts_the_deal_in_its_first_stage(cast: Cast, alice: Any) -> None:
    with tenancy.bound(cast.company_a.pk):
        other = services.pipeline_create(company=cast.company_a, membership=alice, name="Other")
        first = services.stage_create(
            company=cast.company_a, membership=alice, pipeline_id=other.pk, name="One"
        )
        services.stage_create(
            company=cast.company_a, membership=alice, pipeline_id=other.pk, name="Two"
        )
    deal = _deal(cast, alice, pipeline_id=other.pk)
    assert (deal.pipeline_id, deal.stage_id) == (other.pk, first.pk)


def test_a_stage_with_deals_cannot_be_deleted_until_they_move(cast: Cast, alice: Any) -> None:
    deal = _deal(cast, alice)
    with tenancy.bound(cast.company_a.pk):
        with pytest.raises(ServiceError):
            services.stage_delete(company=cast.company_a, membership=alice, stage=deal.stage)
        with pytest.raises(ServiceError):
            services.pipeline_delete(
                company=cast.company_a, membership=alice, pipeline=deal.pipeline
            )
        other = Stage.objects.for_company(cast.company_a).exclude(pk=deal.stage_id).first()
        assert other is not None
        old_stage = deal.stage
        services.deal_update(
            company=cast.company_a, membership=alice, deal=deal, fields={"stage_id": other.pk}
        )
        services.stage_delete(company=cast.company_a, membership=alice, stage=old_stage)
        assert not Stage.objects.for_company(cast.company_a).filter(pk=old_stage.pk).exists()


def test_only_admins_change_pipelines(cast: Cast, bob: Any) -> None:
    with tenancy.bound(cast.company_a.pk), pytest.raises(PermissionDenied):
        services.pipeline_create(company=cast.company_a, membership=bob, name="Mine")


def test_stages_reorder(cast: Cast, alice: Any) -> None:
    with tenancy.bound(cast.company_a.pk):
        pipeline = services.pipeline_default_ensure(company=cast.company_a)
        ids = list(
            Stage.objects.for_company(cast.company_a)
            .filter(pipeline=pipeline)
            .values_list("pk", flat=True)
        )
        services.stage_reorder(
            company=cast.company_a, membership=alice, pipeline=pipeline, stage_ids=ids[::-1]
        )
        assert (
            list(selectors.stage_list(company=cast.company_a).values_list("pk", flat=True))
            == (ids[::-1])
        )


def test_a_person_the_user_cannot_see_cannot_be_linked(cast: Cast, bob: Any) -> None:
    hidden = make_person(cast.company_a, cast.alice, "Hidden Person", visible_to=1)
    with pytest.raises(ServiceError) as refused:
        _deal(cast, bob, person_id=hidden.pk)
    assert refused.value.field == "person_id"


def test_the_deals_person_becomes_a_participant(cast: Cast, alice: Any) -> None:
    person = make_person(cast.company_a, cast.alice)
    deal = _deal(cast, alice, person_id=person.pk)
    with tenancy.bound(cast.company_a.pk):
        assert list(deal.participants.values_list("pk", flat=True)) == [person.pk]
        with pytest.raises(ServiceError):
            services.deal_participant_remove(company=cast.company_a, deal=deal, person_id=person.pk)


def test_owner_must_be_an_active_member(cast: Cast, alice: Any) -> None:
    with pytest.raises(ServiceError) as refused:
        _deal(cast, alice, owner_id=cast.carol.pk)
    assert refused.value.field == "owner_id"


def test_visibility_defaults_to_the_company_setting(cast: Cast, alice: Any) -> None:
    from crm.services import visibility_default_set

    with tenancy.bound(cast.company_a.pk):
        visibility_default_set(company=cast.company_a, kind="deal", visible_to=3)
    assert _deal(cast, alice).visible_to == 3


def test_every_write_records_the_change_log_and_publishes_events(
    cast: Cast, alice: Any, events: dict[str, list[Any]]
) -> None:
    deal = _deal(cast, alice, value="100.5", currency="eur")
    with tenancy.bound(cast.company_a.pk):
        services.deal_update(
            company=cast.company_a, membership=alice, deal=deal, fields={"status": "won"}
        )
        services.deal_delete(company=cast.company_a, membership=alice, deal=deal)
        changes = list(
            ItemChange.objects.for_company(cast.company_a)
            .filter(item_kind="deal", item_key=str(deal.pk))
            .values_list("field", "old_value", "new_value")
        )

    assert ("title", None, "Big deal") in changes
    assert ("currency", None, "EUR") in changes
    assert ("status", "open", "won") in changes
    assert ("is_deleted", False, True) in changes
    added, updated, deleted = events[hooks.ITEM_EVENT]
    assert (added.action, updated.action, deleted.action) == ("added", "updated", "deleted")
    assert added.current["2.0"]["value"] == 100.5
    assert added.current["1.0"]["user_id"]["id"] == cast.alice.pk
    assert updated.previous["2.0"]["status"] == "open"
    assert updated.current["2.0"]["status"] == "won"
    assert "status" in updated.changed_fields
    assert set(added.permitted_user_ids) == {cast.alice.pk, cast.bob.pk}
    statuses = [(e.old_status, e.new_status) for e in events[hooks.DEAL_STATUS_CHANGED]]
    assert statuses == [(None, "open"), ("open", "won"), ("won", "deleted")]


def test_permitted_users_follow_visibility(cast: Cast, alice: Any, dave: Dave) -> None:
    with tenancy.bound(cast.company_a.pk):
        everyone = selectors.permitted_user_ids(
            company=cast.company_a, owner_id=cast.bob.pk, visible_to=7
        )
        team = selectors.permitted_user_ids(
            company=cast.company_a, owner_id=cast.bob.pk, visible_to=3
        )
        owner = selectors.permitted_user_ids(
            company=cast.company_a, owner_id=cast.bob.pk, visible_to=1
        )
    assert set(everyone) == {cast.alice.pk, cast.bob.pk, dave.user.pk}
    assert set(team) == {cast.alice.pk, cast.bob.pk}
    assert set(owner) == {cast.alice.pk, cast.bob.pk}  # Alice is an admin


def test_soft_deleted_deal_is_hidden_then_restored(cast: Cast, alice: Any) -> None:
    deal = _deal(cast, alice)
    with tenancy.bound(cast.company_a.pk):
        services.deal_delete(company=cast.company_a, membership=alice, deal=deal)
        assert not selectors.deal_list(membership=alice).filter(pk=deal.pk).exists()
        services.deal_restore(company=cast.company_a, membership=alice, deal=deal)
        assert selectors.deal_list(membership=alice).filter(pk=deal.pk).exists()


@override_settings(CRM_SOFT_DELETE_DAYS=30)
def test_purge_hard_deletes_items_deleted_long_enough_ago(cast: Cast, alice: Any) -> None:
    old, recent = _deal(cast, alice, title="Old"), _deal(cast, alice, title="Recent")
    person = make_person(cast.company_a, cast.alice)
    with tenancy.bound(cast.company_a.pk):
        lead = services.lead_create(
            company=cast.company_a,
            membership=alice,
            fields={"title": "Old lead", "person_id": person.pk},
        )
        long_ago = timezone.now() - timedelta(days=31)
        Deal.objects.for_company(cast.company_a).filter(pk=old.pk).update(deleted_at=long_ago)
        Deal.objects.for_company(cast.company_a).filter(pk=recent.pk).update(
            deleted_at=timezone.now()
        )
        Lead.objects.for_company(cast.company_a).filter(pk=lead.pk).update(deleted_at=long_ago)

    purged = tasks.purge_deleted()

    assert purged == 2
    with tenancy.bound(cast.company_a.pk):
        remaining = set(Deal.objects.for_company(cast.company_a).values_list("title", flat=True))
        assert remaining == {"Recent"}
        assert not Lead.objects.for_company(cast.company_a).exists()


def test_lead_needs_a_person_or_an_organization(cast: Cast, alice: Any) -> None:
    with tenancy.bound(cast.company_a.pk), pytest.raises(ServiceError):
        services.lead_create(company=cast.company_a, membership=alice, fields={"title": "x"})


def test_lead_source_name_says_how_it_was_made(cast: Cast, alice: Any) -> None:
    organization = make_organization(cast.company_a, cast.alice)
    with tenancy.bound(cast.company_a.pk):
        by_api = services.lead_create(
            company=cast.company_a,
            membership=alice,
            fields={"title": "a", "organization_id": organization.pk},
            source="api",
        )
        by_hand = services.lead_create(
            company=cast.company_a,
            membership=alice,
            fields={"title": "b", "organization_id": organization.pk},
        )
    assert (by_api.source_name, by_hand.source_name) == ("API", "Manually created")


def test_lead_conversion_keeps_links_value_and_labels(
    cast: Cast,
    alice: Any,
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
    events: dict[str, list[Any]],
) -> None:
    person = make_person(cast.company_a, cast.alice)
    organization = make_organization(cast.company_a, cast.alice)
    with tenancy.bound(cast.company_a.pk):
        hot = label_create(company=cast.company_a, kind=LabelKind.LEAD, name="Hot", color="red")
        lead = services.lead_create(
            company=cast.company_a,
            membership=alice,
            fields={
                "title": "Widgets",
                "person_id": person.pk,
                "organization_id": organization.pk,
                "value": {"amount": "250", "currency": "EUR"},
                "label_ids": [str(hot.uuid)],
                "visible_to": 3,
                "owner_id": cast.bob.pk,
            },
        )
        with django_capture_on_commit_callbacks(execute=True):
            conversion = services.lead_convert_start(
                company=cast.company_a, membership=alice, lead=lead
            )
        conversion = LeadConversion.objects.for_company(cast.company_a).get(pk=conversion.pk)
        assert conversion.status == "completed", conversion.error
        assert conversion.deal_id is not None
        deal = selectors.deal_queryset(company=cast.company_a).get(pk=conversion.deal_id)
        lead.refresh_from_db()
        deal_label_names = [label.name for label in deal.labels.all()]
        deal_label_kinds = {label.kind for label in deal.labels.all()}
        assert Label.objects.for_company(cast.company_a).filter(kind="deal").count() == 1

    assert deal.title == "Widgets"
    assert (deal.value, deal.currency) == (Decimal(250), "EUR")
    assert (deal.person_id, deal.organization_id) == (person.pk, organization.pk)
    assert (deal.owner_id, deal.visible_to) == (cast.bob.pk, 3)
    assert deal.source_lead_id == lead.pk
    assert deal_label_names == ["Hot"]
    assert deal_label_kinds == {"deal"}
    assert lead.converted_deal_id == deal.pk
    assert lead.is_archived is True
    assert {e.kind for e in events[hooks.ITEM_EVENT]} == {"lead", "deal"}


def test_a_converted_lead_cannot_be_converted_again(
    cast: Cast, alice: Any, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    person = make_person(cast.company_a, cast.alice)
    with tenancy.bound(cast.company_a.pk):
        lead = services.lead_create(
            company=cast.company_a,
            membership=alice,
            fields={"title": "Once", "person_id": person.pk},
        )
        with django_capture_on_commit_callbacks(execute=True):
            services.lead_convert_start(company=cast.company_a, membership=alice, lead=lead)
        lead.refresh_from_db()
        with pytest.raises(ServiceError):
            services.lead_convert_start(company=cast.company_a, membership=alice, lead=lead)


def test_open_deals_and_leads_for_persons_are_most_recently_active_first(
    cast: Cast, alice: Any
) -> None:
    person = make_person(cast.company_a, cast.alice)
    first = _deal(cast, alice, title="First", person_id=person.pk)
    second = _deal(cast, alice, title="Second", person_id=person.pk)
    won = _deal(cast, alice, title="Won", person_id=person.pk, status="won")
    with tenancy.bound(cast.company_a.pk):
        services.deal_update(
            company=cast.company_a, membership=alice, deal=first, fields={"value": 5}
        )
        deals = list(
            selectors.open_deals_for_persons(company=cast.company_a, person_ids=[person.pk])
        )
        lead = services.lead_create(
            company=cast.company_a, membership=alice, fields={"title": "L", "person_id": person.pk}
        )
        leads = list(
            selectors.open_leads_for_persons(company=cast.company_a, person_ids=[person.pk])
        )
    assert [d.pk for d in deals] == [first.pk, second.pk]
    assert won.pk not in [d.pk for d in deals]
    assert [item.pk for item in leads] == [lead.pk]


def test_projects_go_to_the_default_board_and_link_items(cast: Cast, alice: Any) -> None:
    person = make_person(cast.company_a, cast.alice)
    deal = _deal(cast, alice)
    with tenancy.bound(cast.company_a.pk):
        project = services.project_create(
            company=cast.company_a,
            membership=alice,
            fields={"title": "Rollout", "deal_ids": [deal.pk], "person_ids": [person.pk]},
        )
        board = ProjectBoard.objects.for_company(cast.company_a).get()
        phases = [phase.name for phase in board.phases.all()]
        shown = selectors.project_queryset(company=cast.company_a).get(pk=project.pk)
        assert [link.deal_id for link in shown.projectdeal_set.all()] == [deal.pk]
    assert board.name == "Projects"
    assert phases == ["Planning", "In progress", "Done"]
    assert project.phase.name == "Planning"
