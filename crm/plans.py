"""Company plans and the features each unlocks (K3).

A plan is data, not code paths: services and pages ask `plan_has_feature(company.plan, …)`.
Email sync is a feature of some plans, as in the mission; self-hosted companies start on
Enterprise, where everything is on.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


class Feature:
    EMAIL_SYNC = "email_sync"
    EMAIL_TRACKING = "email_tracking"
    GROUP_EMAIL = "group_email"
    EMAIL_AUTOMATIONS = "email_automations"
    EMAIL_AI = "email_ai"
    INSIGHTS = "insights"
    API = "api"


@dataclass(frozen=True)
class Plan:
    code: str
    name: str
    features: frozenset[str]


_BASE = frozenset({Feature.API})
_SYNC = _BASE | {Feature.EMAIL_SYNC, Feature.EMAIL_TRACKING}
_PRO = _SYNC | {Feature.GROUP_EMAIL, Feature.EMAIL_AUTOMATIONS, Feature.INSIGHTS}

PLANS: dict[str, Plan] = {
    plan.code: plan
    for plan in (
        Plan("essential", str(_("Essential")), _BASE),
        Plan("advanced", str(_("Advanced")), _SYNC),
        Plan("professional", str(_("Professional")), _PRO),
        Plan("enterprise", str(_("Enterprise")), _PRO | {Feature.EMAIL_AI}),
    )
}
DEFAULT_PLAN = "enterprise"
PLAN_CHOICES = [(plan.code, plan.name) for plan in PLANS.values()]
FEATURE_NAMES = {
    Feature.API: _("REST API and webhooks"),
    Feature.EMAIL_SYNC: _("Email sync and Sales Inbox"),
    Feature.EMAIL_TRACKING: _("Open and click tracking"),
    Feature.GROUP_EMAIL: _("Group email"),
    Feature.EMAIL_AUTOMATIONS: _("Email automations"),
    Feature.INSIGHTS: _("Insights reports"),
    Feature.EMAIL_AI: _("Email AI"),
}


def plan_has_feature(plan_code: str, feature: str) -> bool:
    plan = PLANS.get(plan_code)
    return plan is not None and feature in plan.features
