"""`IsCompanyMember`: the default permission of every API view."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from crm.api.authentication import ApiCredentials

if TYPE_CHECKING:
    # Only a type: DRF's settings import this module while rest_framework.views loads.
    from rest_framework.views import APIView


class IsCompanyMember(BasePermission):
    """The request acts through an active membership of its user (authentication put it in
    `request.auth`); object access inside the company is each resource's own check."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        credentials = request.auth
        if not isinstance(credentials, ApiCredentials):
            return False
        membership = credentials.membership
        return (
            request.user.is_authenticated
            and membership.is_active
            and membership.user_id == request.user.pk
        )
