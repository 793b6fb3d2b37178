"""The home page: where a signed-in user lands, with the company's plan and first steps."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from crm import selectors
from crm.plans import PLANS
from crm.web.permissions import MemberRequest, member_required
from crm.web.plan_display import plan_feature_names


@member_required
def home(request: MemberRequest) -> HttpResponse:
    plan = PLANS.get(request.company.plan)
    api_token = selectors.api_token_live(company=request.company, user=request.user)
    return render(
        request,
        "web/home.html",
        {
            "plan": plan,
            "plan_features": plan_feature_names(plan),
            "has_api_token": api_token is not None,
        },
    )
