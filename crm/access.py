"""Access to items (Pipedrive's `visible_to`): the one module that answers "can this user see
this item" and "which items can this user see", for persons, organizations, deals, leads and
projects alike. List views, detail views, search, the API, webhooks and (later) mail visibility
all ask here.

It works over the abstract `OwnedItem` (owner, `visible_to`), so it needs no import of the
concrete models. The rules, one per line in `visible_items`:

- an admin of the company sees every item;
- everyone in the company sees an item shared with the entire company (7);
- the owner sees their own item, whatever its setting;
- a user who shares a team with the owner sees an item shared with the owner's teams (3);
- nobody else sees an owner-only item (1).

Pipedrive's 5 ("owner's visibility group, and sub-groups") is accepted as 3.
"""

from __future__ import annotations

from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from crm.models import Membership, TeamMember, User
from crm.tenancy import TenantModel


class Visibility(models.IntegerChoices):
    OWNER = 1, _("Owner only")
    TEAMS = 3, _("Owner's teams")
    COMPANY = 7, _("Entire company")


ACCEPTED_VISIBLE_TO = {
    1: Visibility.OWNER,
    3: Visibility.TEAMS,
    5: Visibility.TEAMS,
    7: Visibility.COMPANY,
}


class ItemKind(models.TextChoices):
    PERSON = "person", _("Person")
    ORGANIZATION = "organization", _("Organization")
    DEAL = "deal", _("Deal")
    LEAD = "lead", _("Lead")
    PROJECT = "project", _("Project")


class OwnedItem(TenantModel):
    """Base of the items access applies to."""

    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", db_index=False)
    visible_to = models.PositiveSmallIntegerField(
        choices=Visibility.choices, default=Visibility.COMPANY
    )

    class Meta:
        abstract = True


_I = TypeVar("_I", bound=OwnedItem)


def teammate_ids(*, membership: Membership) -> QuerySet[TeamMember, int]:
    """Users who share at least one team with the member (themselves included), as a subquery."""
    my_teams = (
        TeamMember.objects.for_company(membership.company_id)
        .filter(user_id=membership.user_id)
        .values("team_id")
    )
    return (
        TeamMember.objects.for_company(membership.company_id)
        .filter(team_id__in=my_teams)
        .values_list("user_id", flat=True)
    )


def visible_items(queryset: QuerySet[_I], *, membership: Membership) -> QuerySet[_I]:
    """The items of `queryset` the member may see (one SQL query; no rows loaded here)."""
    queryset = queryset.filter(company_id=membership.company_id)
    if membership.is_admin:
        return queryset
    return queryset.filter(
        Q(visible_to=Visibility.COMPANY)
        | Q(owner_id=membership.user_id)
        | Q(visible_to=Visibility.TEAMS, owner_id__in=teammate_ids(membership=membership))
    )


def can_see(item: OwnedItem, *, membership: Membership) -> bool:
    if item.company_id != membership.company_id:
        return False
    model = type(item)
    return visible_items(
        model.objects.for_company(membership.company_id).filter(pk=item.pk),
        membership=membership,
    ).exists()


def can_edit(item: OwnedItem, *, membership: Membership) -> bool:
    """Who may see an item may edit it (Pipedrive's default permission set)."""
    return can_see(item, membership=membership)


def normalize_visible_to(value: object) -> int:
    """1, 3, 5 or 7 (as int or numeric string) to the stored value; ValueError otherwise."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise ValueError(value) from None
    if number not in ACCEPTED_VISIBLE_TO:
        raise ValueError(value)
    return int(ACCEPTED_VISIBLE_TO[number])


class ItemNotFound(Exception):
    """The item does not exist in this company (404)."""


class ItemForbidden(Exception):
    """The item exists in this company but the user may not see it (403, as Pipedrive)."""


def access_item(queryset: QuerySet[_I], *, membership: Membership, item_id: object) -> _I:
    """The item with this id if the member may see it: ItemNotFound when it is not in the
    company (or deleted, when the queryset excludes those), ItemForbidden when it is there but
    hidden from them."""
    try:
        item = queryset.filter(company_id=membership.company_id).get(pk=item_id)
    except (queryset.model.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise ItemNotFound from exc
    if not can_see(item, membership=membership):
        raise ItemForbidden
    return item
