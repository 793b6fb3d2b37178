"""API-only reads, built on `crm.selectors`."""

from __future__ import annotations

from django.db.models import BooleanField, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery

from crm import selectors
from crm.models import Company, Membership


def user_memberships(*, company: Company) -> QuerySet[Membership]:
    """The company's memberships with their users, each annotated `has_created_company`.

    We keep no "created by" on companies; the company's first membership is its creator's
    (`services.bootstrap_company` adds the first admin with the company). One query for the
    whole list: the flag is a subquery, not a query per user."""
    first_member = (
        Membership.objects.for_company(company)
        .filter(company_id=OuterRef("company_id"))
        .order_by("pk")
        .values("pk")[:1]
    )
    return selectors.membership_list(company=company).annotate(
        has_created_company=ExpressionWrapper(
            Q(pk=Subquery(first_member)), output_field=BooleanField()
        )
    )


def user_membership(*, company: Company, user_id: int) -> Membership | None:
    """One user of the company (active or not) with its company, or None if not a member."""
    return (
        user_memberships(company=company).select_related("company").filter(user_id=user_id).first()
    )
