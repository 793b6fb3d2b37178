"""The demo company's pipeline, deals, leads and project (registered with `crm.demo` in
ready(), after contacts' loader).

Contacts' loader cannot hand its persons and organizations over (the platform between the two
knows neither), so this one looks them up by name (contacts.demo's names). Written through the
services, as the demo admin with source "system", so the demo has change logs and item events
like real data."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from django.utils import timezone

from contacts.demo import (
    BRIGHTWATER,
    BRIGHTWATER_RETAIL,
    KOWALSKI,
    TAMM_SAAR,
    VAN_DIJK,
    YILDIZ,
)
from contacts.models import Organization, Person
from crm.demo import DemoContext
from crm.models import Company
from crm.sales import services
from crm.sales.models import Deal, DealStatus, ProjectPhase, Stage

SOURCE = "system"
ELIF = "Elif Yıldız"  # noqa: RUF001 - the Turkish dotless i, on purpose
_Item = TypeVar("_Item", Person, Organization)


@dataclass(frozen=True)
class _Deal:
    title: str
    value: Decimal
    currency: str
    stage: str
    person: str
    org: str
    close_in_days: int  # expected close date, from the day the demo loads
    by_rep: bool = False
    status: str = DealStatus.OPEN
    lost_reason: str = ""


WON_DEAL = "Fleet tracking add-on"

DEALS = (
    _Deal(
        "Warehouse CRM rollout",
        Decimal("48000"),
        "EUR",
        "Negotiations started",
        "Sanne de Vries",
        VAN_DIJK,
        close_in_days=14,
    ),
    _Deal(
        WON_DEAL,
        Decimal("12500"),
        "EUR",
        "Proposal made",
        "Joost Bakker",
        VAN_DIJK,
        close_in_days=-7,
        by_rep=True,
        status=DealStatus.WON,
    ),
    _Deal(
        "25 seats for the product team",
        Decimal("9000"),
        "EUR",
        "Demo scheduled",
        "Kadri Tamm",
        TAMM_SAAR,
        close_in_days=30,
    ),
    _Deal(
        "Showroom integration",
        Decimal("21000"),
        "EUR",
        "Proposal made",
        "Agnieszka Kowalska",
        KOWALSKI,
        close_in_days=21,
    ),
    _Deal(
        "Support contract renewal",
        Decimal("6000"),
        "EUR",
        "Contact made",
        "Tomasz Nowak",
        KOWALSKI,
        close_in_days=-14,
        by_rep=True,
        status=DealStatus.LOST,
        lost_reason="Chose a local provider",
    ),
    _Deal(
        "Export portal",
        Decimal("35000"),
        "USD",
        "Contact made",
        "Mehmet Demir",
        YILDIZ,
        close_in_days=45,
        by_rep=True,
    ),
    _Deal(
        "Enterprise licence",
        Decimal("120000"),
        "USD",
        "Qualified",
        "Olivia Bennett",
        BRIGHTWATER,
        close_in_days=90,
    ),
    _Deal(
        "Point-of-sale integration",
        Decimal("18000"),
        "USD",
        "Demo scheduled",
        "Emily Carter",
        BRIGHTWATER_RETAIL,
        close_in_days=35,
        by_rep=True,
    ),
)


@dataclass(frozen=True)
class _Lead:
    title: str
    person: str
    org: str
    value: Decimal
    currency: str
    by_rep: bool = False
    archived: bool = False


LEADS = (
    _Lead(
        "Data migration from spreadsheets",
        "Mart Saar",
        TAMM_SAAR,
        Decimal("4000"),
        "EUR",
        by_rep=True,
    ),
    _Lead("Second factory in İzmir", ELIF, YILDIZ, Decimal("15000"), "USD"),
    _Lead(
        "Training days for store managers",
        "James Whitaker",
        BRIGHTWATER,
        Decimal("5000"),
        "USD",
        by_rep=True,
        archived=True,  # the demo shows an archived lead too
    ),
)


def _by_name(*, model: type[_Item], company: Company, names: Iterable[str]) -> dict[str, _Item]:
    """The live items with these names; a clear error when contacts' demo no longer has one."""
    wanted = set(names)
    found = {
        item.name: item
        for item in model.objects.for_company(company).filter(
            name__in=wanted, deleted_at__isnull=True
        )
    }
    missing = wanted - set(found)
    if missing:
        raise LookupError(f"the contacts demo has no {model.__name__} {sorted(missing)}")
    return found


def _stages(*, company: Company) -> dict[str, int]:
    pipeline = services.pipeline_default_ensure(company=company)
    return dict(
        Stage.objects.for_company(company).filter(pipeline_id=pipeline.pk).values_list("name", "pk")
    )


def _deals(
    *,
    context: DemoContext,
    persons: dict[str, Person],
    organizations: dict[str, Organization],
) -> dict[str, Deal]:
    today = timezone.localdate()
    stages = _stages(company=context.company)
    created: dict[str, Deal] = {}
    for deal in DEALS:
        fields: dict[str, Any] = {
            "title": deal.title,
            "value": deal.value,
            "currency": deal.currency,
            "stage_id": stages[deal.stage],
            "person_id": persons[deal.person].pk,
            "organization_id": organizations[deal.org].pk,
            "owner_id": (context.rep if deal.by_rep else context.admin).pk,
            "expected_close_date": today + datetime.timedelta(days=deal.close_in_days),
            "status": deal.status,
        }
        if deal.lost_reason:
            fields["lost_reason"] = deal.lost_reason
        created[deal.title] = services.deal_create(
            company=context.company,
            membership=context.admin_membership,
            fields=fields,
            source=SOURCE,
        )
    return created


def load(context: DemoContext) -> None:
    company = context.company
    persons = _by_name(
        model=Person, company=company, names=[d.person for d in DEALS] + [le.person for le in LEADS]
    )
    organizations = _by_name(
        model=Organization, company=company, names=[d.org for d in DEALS] + [le.org for le in LEADS]
    )
    deals = _deals(context=context, persons=persons, organizations=organizations)
    for lead in LEADS:
        services.lead_create(
            company=company,
            membership=context.admin_membership,
            fields={
                "title": lead.title,
                "person_id": persons[lead.person].pk,
                "organization_id": organizations[lead.org].pk,
                "value": {"amount": lead.value, "currency": lead.currency},
                "owner_id": (context.rep if lead.by_rep else context.admin).pk,
                "is_archived": lead.archived,
            },
            source=SOURCE,
        )
    won = deals[WON_DEAL]
    board = services.project_board_default_ensure(company=company)
    # The won deal is being delivered: its project is under way, not in planning.
    phase = ProjectPhase.objects.for_company(company).get(
        board_id=board.pk, name=services.DEFAULT_PHASES[1]
    )
    today = timezone.localdate()
    services.project_create(
        company=company,
        membership=context.admin_membership,
        fields={
            "title": "Fleet tracking rollout at Van Dijk",
            "description": "Install trackers on 40 trucks and train the dispatch team.",
            "board_id": board.pk,
            "phase_id": phase.pk,
            "owner_id": context.rep.pk,
            "start_date": today - datetime.timedelta(days=5),
            "end_date": today + datetime.timedelta(days=40),
            "health_status": "on_track",
            "deal_ids": [won.pk],
            "person_ids": [won.person_id],
            "org_ids": [won.organization_id],
        },
        source=SOURCE,
    )
