"""How a plan is shown: its features by name, in the fixed order of crm.plans.FEATURE_NAMES."""

from __future__ import annotations

from django.utils.functional import Promise

from crm.plans import FEATURE_NAMES, Plan


def plan_feature_names(plan: Plan | None) -> list[Promise]:
    if plan is None:
        return []
    return [label for feature, label in FEATURE_NAMES.items() if feature in plan.features]
