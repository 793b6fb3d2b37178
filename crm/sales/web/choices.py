"""The option lists of the forms (owners, stages, phases, labels), each one query."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from crm import selectors as crm_selectors
from crm.models import Company, LabelKind
from crm.sales import selectors
from crm.sales.models import Pipeline, Stage

Choices = list[tuple[Any, Any]]


def owner_choices(*, company: Company) -> Choices:
    members = crm_selectors.membership_list(company=company).filter(is_active=True)
    return [(m.user_id, m.user.display_name) for m in members]


def stage_choices(*, stages: QuerySet[Stage] | list[Stage]) -> Choices:
    """Stages grouped by pipeline, as a <select> with <optgroup>s shows them."""
    groups: dict[Pipeline, list[tuple[int, str]]] = {}
    for stage in stages:
        groups.setdefault(stage.pipeline, []).append((stage.pk, stage.name))
    return [(pipeline.name, options) for pipeline, options in groups.items()]


def label_choices(*, company: Company, kind: str) -> Choices:
    return [
        (label.pk, label.name) for label in crm_selectors.label_list(company=company, kind=kind)
    ]


def deal_label_choices(*, company: Company) -> Choices:
    return label_choices(company=company, kind=LabelKind.DEAL)


def phase_choices(*, company: Company, board_id: int) -> Choices:
    return [
        (phase.pk, phase.name)
        for phase in selectors.project_phase_list(company=company, board_id=board_id)
    ]
