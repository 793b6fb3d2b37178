"""Users (v1): `GET /users`, `GET /users/me`, `GET /users/{id}`, in Pipedrive's User shape.

A "user" of the API is a membership seen from its company: `active_flag` is whether the user is
active in this company, `access[0].admin` whether they are an admin here. Integrators call
`/users/me` first, to check the token and learn the company.
"""

from __future__ import annotations

import datetime
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone
from django.utils.text import slugify
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.authentication import request_membership
from crm.api.fields import V1DateTimeField
from crm.api.schema import envelope, error_responses
from crm.api.selectors import user_membership, user_memberships
from crm.api.views import ApiView
from crm.models import Membership

# No per-user currency yet; USD, the value of Pipedrive's own examples, stands in.
DEFAULT_CURRENCY = "USD"
# Pipedrive numbers its languages; the ids of those we offer (settings.LANGUAGES), with the
# country a bare language code means.
PIPEDRIVE_LANGUAGES = {"en": (1, "US")}
# No permission roles yet: everyone is in one default role, id 1 as in Pipedrive's examples.
DEFAULT_ROLE_ID = 1


def _language(locale: str) -> tuple[str, str | None]:
    """("en", "US") for "en-us", "en_US" or "en"; the country is None when unknown."""
    parts = [part for part in re.split(r"[-_]", locale.strip()) if part]
    language = parts[0].lower() if parts else "en"
    if len(parts) > 1:
        return language, parts[1].upper()
    known = PIPEDRIVE_LANGUAGES.get(language)
    return language, known[1] if known else None


def _utc_offset(timezone_name: str) -> str:
    try:
        zone: datetime.tzinfo = ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = datetime.UTC
    offset = timezone.now().astimezone(zone).utcoffset() or datetime.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


class UserAccessSerializer(serializers.Serializer[Any]):
    app = serializers.CharField()
    admin = serializers.BooleanField()
    permission_set_id = serializers.CharField(allow_null=True)


class UserLanguageSerializer(serializers.Serializer[Any]):
    language_code = serializers.CharField()
    country_code = serializers.CharField(allow_null=True)


class UserSerializer(serializers.Serializer[Membership]):
    """A user of your company. `active_flag` is whether they are active in this company."""

    # Serializes a membership of `crm.api.selectors.user_memberships`; the context's
    # `viewer_id` is the id of the user asking (for `is_you`).

    id = serializers.IntegerField(source="user_id")
    name = serializers.CharField(source="user.name")
    default_currency = serializers.SerializerMethodField()
    locale = serializers.SerializerMethodField()
    lang = serializers.SerializerMethodField()
    email = serializers.EmailField(source="user.email")
    phone = serializers.SerializerMethodField()
    activated = serializers.BooleanField(source="user.is_active")
    last_login = V1DateTimeField(source="user.last_login", allow_null=True)
    created = V1DateTimeField(source="user.created_at")
    modified = V1DateTimeField(source="user.updated_at")
    has_created_company = serializers.BooleanField()
    access = serializers.SerializerMethodField()
    active_flag = serializers.BooleanField(source="is_active")
    timezone_name = serializers.CharField(source="user.timezone")
    timezone_offset = serializers.SerializerMethodField()
    role_id = serializers.SerializerMethodField()
    icon_url = serializers.SerializerMethodField()
    is_you = serializers.SerializerMethodField()
    is_deleted = serializers.SerializerMethodField()

    def get_default_currency(self, membership: Membership) -> str:
        return DEFAULT_CURRENCY

    def get_locale(self, membership: Membership) -> str:
        language, country = _language(membership.user.locale)
        return f"{language}_{country}" if country else language

    def get_lang(self, membership: Membership) -> int | None:
        known = PIPEDRIVE_LANGUAGES.get(_language(membership.user.locale)[0])
        return known[0] if known else None

    def get_phone(self, membership: Membership) -> str | None:
        return None

    @extend_schema_field(UserAccessSerializer(many=True))
    def get_access(self, membership: Membership) -> list[dict[str, Any]]:
        return [{"app": "sales", "admin": membership.is_admin, "permission_set_id": None}]

    def get_timezone_offset(self, membership: Membership) -> str:
        return _utc_offset(membership.user.timezone)

    def get_role_id(self, membership: Membership) -> int:
        return DEFAULT_ROLE_ID

    def get_icon_url(self, membership: Membership) -> str | None:
        return None

    def get_is_you(self, membership: Membership) -> bool:
        return bool(membership.user_id == self.context.get("viewer_id"))

    def get_is_deleted(self, membership: Membership) -> bool:
        # Members are deactivated, never deleted.
        return False


class UserMeSerializer(UserSerializer):
    """You, and the company your token or session acts in."""

    # Needs the membership's `company` loaded (`crm.api.selectors.user_membership` does).

    company_id = serializers.IntegerField()
    company_name = serializers.CharField(source="company.name")
    company_domain = serializers.SerializerMethodField()
    company_country = serializers.SerializerMethodField()
    company_industry = serializers.SerializerMethodField()
    language = serializers.SerializerMethodField()

    def get_company_domain(self, membership: Membership) -> str:
        # Pipedrive's "<domain>.pipedrive.com"; a self-hosted install has no subdomains, so a
        # stable slug of the name stands in for integrators that key on it.
        return slugify(membership.company.name) or str(membership.company_id)

    def get_company_country(self, membership: Membership) -> str | None:
        return None

    def get_company_industry(self, membership: Membership) -> str | None:
        return None

    @extend_schema_field(UserLanguageSerializer)
    def get_language(self, membership: Membership) -> dict[str, str | None]:
        language, country = _language(membership.user.locale)
        return {"language_code": language, "country_code": country}


USER_RESPONSE = envelope(name="UserResponse", data=UserSerializer())
USER_LIST_RESPONSE = envelope(name="UserListResponse", data=UserSerializer(many=True))
USER_ME_RESPONSE = envelope(name="UserMeResponse", data=UserMeSerializer())


class UserListView(ApiView):
    @extend_schema(
        operation_id="getUsers",
        summary="Get all users",
        description="Every user of your company, active or not (no paging, as in Pipedrive).",
        tags=["Users"],
        responses={200: USER_LIST_RESPONSE, **error_responses(401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        memberships = user_memberships(company=membership.company)
        context = {"viewer_id": membership.user_id}
        users = serializers.ListSerializer(memberships, child=UserSerializer(), context=context)
        return Response(users.data)


class UserMeView(ApiView):
    @extend_schema(
        operation_id="getCurrentUser",
        summary="Get current user data",
        description="The user the token (or session) acts as, with the company it acts in.",
        tags=["Users"],
        responses={200: USER_ME_RESPONSE, **error_responses(401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        me = user_membership(company=membership.company, user_id=membership.user_id)
        if me is None:
            # Authentication found this membership in this transaction; gone means revoked.
            raise exceptions.NotAuthenticated()
        context = {"viewer_id": membership.user_id}
        return Response(UserMeSerializer(me, context=context).data)


class UserDetailView(ApiView):
    @extend_schema(
        operation_id="getUser",
        summary="Get one user",
        tags=["Users"],
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="User id")],
        responses={200: USER_RESPONSE, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        user = user_membership(company=membership.company, user_id=int(id))
        if user is None:
            # Another company's user and no user at all look the same from here.
            raise exceptions.NotFound("User not found.")
        context = {"viewer_id": membership.user_id}
        return Response(UserSerializer(user, context=context).data)
