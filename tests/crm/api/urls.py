"""The API's routes plus a few test-only endpoints, as the ROOT_URLCONF of these tests.

The test-only views sit under the API prefixes, before the API's catch-all 404, so they get
exactly the treatment of real endpoints: a DRF view raising, a plain Django view raising,
paging over users (by hand and in a routed viewset), and an echo of the parsed body."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path
from rest_framework import mixins, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from crm import selectors
from crm.api.authentication import request_membership
from crm.api.pagination import CursorPagination, OffsetPagination
from crm.api.urls import ApiRouter
from crm.api.views import ApiView, ApiViewSet
from crm.models import User
from crm.services import ServiceError


class UserRowSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ("id", "email")


class EchoView(ApiView):
    def post(self, request: Request) -> Response:
        data = request.data
        items = {key: data.get(key) for key in data} if hasattr(data, "getlist") else data
        return Response({"received": items})


class OffsetUsersView(ApiView):
    def get(self, request: Request) -> Response:
        company = request_membership(request=request).company
        users = selectors.company_users(company=company).order_by("id")
        paginator = OffsetPagination()
        page = paginator.paginate_queryset(users, request, view=self)
        return paginator.get_paginated_response(UserRowSerializer(page, many=True).data)


class CursorUsersView(ApiView):
    def get(self, request: Request) -> Response:
        company = request_membership(request=request).company
        paginator = CursorPagination()
        page = paginator.paginate_queryset(
            selectors.company_users(company=company), request, view=self
        )
        return paginator.get_paginated_response(UserRowSerializer(page, many=True).data)


class UserRowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet[User]):
    """How a later resource looks: a routed viewset with v1 paging."""

    serializer_class = UserRowSerializer
    pagination_class = OffsetPagination

    def get_queryset(self) -> QuerySet[User]:
        company = request_membership(request=self.request).company
        return selectors.company_users(company=company).order_by("id")


router = ApiRouter()
router.register("api/v1/test/rows", UserRowViewSet, basename="test-rows")


class BoomView(ApiView):
    def get(self, request: Request) -> Response:
        raise RuntimeError("a bug")


class ServiceRefusalView(ApiView):
    def post(self, request: Request) -> Response:
        raise ServiceError("A team needs a name.", field="name")


def django_boom(request: HttpRequest, *args: Any) -> HttpResponse:
    raise RuntimeError("a bug outside DRF")


handler404 = "crm.api.errors.page_not_found"
handler500 = "crm.api.errors.server_error"

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/test/echo", EchoView.as_view()),
    path("api/v1/test/users", OffsetUsersView.as_view()),
    path("api/v2/test/users", CursorUsersView.as_view()),
    path("api/v1/test/boom", BoomView.as_view()),
    path("api/v1/test/refusal", ServiceRefusalView.as_view()),
    path("api/v1/test/django-boom", django_boom),
    *router.urls,
    path("", include("crm.api.urls")),
]
