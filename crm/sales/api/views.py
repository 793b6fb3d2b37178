"""The base of the sales resources: `crm.api.views.ApiView` that answers the access errors of
`crm.access` as Pipedrive does (another company's item, or a deleted one: 404; an item of this
company hidden from the user: 403)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from crm.access import ItemForbidden, ItemNotFound
from crm.api.authentication import request_membership
from crm.api.views import ApiView
from crm.models import Company, Membership


class SalesView(ApiView):
    item_name = "Item"

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ItemNotFound):
            exc = exceptions.NotFound(_("%(item)s not found.") % {"item": self.item_name})
        elif isinstance(exc, ItemForbidden):
            exc = exceptions.PermissionDenied(
                _("You do not have access to this %(item)s.") % {"item": self.item_name.lower()}
            )
        return super().handle_exception(exc)

    def acting(self) -> tuple[Company, Membership]:
        membership = request_membership(request=self.request)
        return membership.company, membership


class InputSerializer(serializers.Serializer[Any]):
    """An input body: only `required_fields` must be present; every other field is optional
    and, when absent, stays out of `validated_data` (so the service leaves it alone)."""

    required_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if name not in self.required_fields:
                field.required = False


def validated(
    serializer_class: type[serializers.Serializer[Any]], *, request: Request, partial: bool = False
) -> dict[str, Any]:
    """The request body through an input serializer: only the keys the client sent (PATCH
    semantics when `partial`), or a 400 naming each bad field."""
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def not_found(item: str) -> exceptions.NotFound:
    return exceptions.NotFound(_("%(item)s not found.") % {"item": item})
