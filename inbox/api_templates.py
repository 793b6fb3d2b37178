"""Email templates over the API (B6; v1, our own: Pipedrive's public API has none):

- `GET /mailbox/mailTemplates?folder_id&start&limit`: your templates and the shared ones, by
  folder, then name
- `POST /mailbox/mailTemplates`: a new template of yours
- `GET|PATCH|DELETE /mailbox/mailTemplates/{id}`
- `GET /mailbox/mailTemplateFolders`: the company's folders and yours

A template object:

    {"id": 5, "name": "Follow-up", "subject": "Next steps for {{deal.title}}",
     "body_html": "<p>Hi {{person.first_name}},</p>", "folder_id": 2, "folder_name": "Sales",
     "user_id": 1, "shared_flag": 1, "editable_flag": 1,
     "fields": ["deal.title", "person.first_name"],
     "add_time": "2026-11-30T10:00:00.000Z", "update_time": "..."}

`fields` lists the smart fields it uses; `POST /mailbox/mailMessages` with its `template_id`
fills them. `body_html` is cleaned when saved (no script, no event handler). Permissions are
`inbox.mailtemplates`': a template private to someone else is a 404 (the same answer as one
that does not exist), a shared one you may not change a 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.urls import re_path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.authentication import request_membership
from crm.api.fields import iso_milliseconds as iso_ms
from crm.api.pagination import OffsetPagination, int_query_param
from crm.api.schema import envelope, error_responses
from crm.api.views import ApiView
from crm.models import Membership
from inbox import mailtemplates, smartfields

if TYPE_CHECKING:
    from inbox.models import MailTemplate, TemplateFolder

_ID = OpenApiParameter("id", int, OpenApiParameter.PATH)


def _flag(value: bool) -> int:
    return 1 if value else 0


def template_data(template: MailTemplate, *, membership: Membership) -> dict[str, Any]:
    """A template object. A colleague's own folder is not the reader's: a shared template
    in one shows in no folder to them, as on the Templates page."""
    folder = template.folder
    if folder is not None and folder.owner_id not in (None, membership.user_id):
        folder = None
    return {
        "id": template.pk,
        "name": template.name,
        "subject": template.subject,
        "body_html": template.body_html,
        "folder_id": folder.pk if folder is not None else None,
        "folder_name": folder.name if folder is not None else None,
        "user_id": template.owner_id,
        "shared_flag": _flag(template.shared),
        "editable_flag": _flag(
            mailtemplates.can_edit_template(membership=membership, template=template)
        ),
        "fields": list(smartfields.fields_used(f"{template.subject}\n{template.body_html}")),
        "add_time": iso_ms(template.created_at),
        "update_time": iso_ms(template.updated_at),
    }


def folder_data(folder: TemplateFolder, *, membership: Membership) -> dict[str, Any]:
    return {
        "id": folder.pk,
        "name": folder.name,
        "user_id": folder.owner_id,  # null: the company's
        "editable_flag": _flag(mailtemplates.can_edit_folder(membership=membership, folder=folder)),
        "add_time": iso_ms(folder.created_at),
    }


_SHARED_HELP = "1: everyone in the company sees and uses it; 0: only you. Only its owner sets it."


class TemplateCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=mailtemplates.NAME_LENGTH)
    subject = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=mailtemplates.SUBJECT_LENGTH
    )
    body_html = serializers.CharField(
        required=False, default="", allow_blank=True, trim_whitespace=False
    )
    folder_id = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    shared_flag = serializers.BooleanField(required=False, default=False, help_text=_SHARED_HELP)


class TemplateUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(required=False, max_length=mailtemplates.NAME_LENGTH)
    subject = serializers.CharField(
        required=False, allow_blank=True, max_length=mailtemplates.SUBJECT_LENGTH
    )
    body_html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    folder_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    shared_flag = serializers.BooleanField(required=False, help_text=_SHARED_HELP)


class _AnyObject(serializers.Serializer[Any]):
    """A template object (see the module docstring)."""


TEMPLATES_RESPONSE = envelope(
    name="MailTemplatesResponse", data=_AnyObject(many=True), paging="offset"
)
TEMPLATE_RESPONSE = envelope(name="MailTemplateResponse", data=_AnyObject())
FOLDERS_RESPONSE = envelope(name="MailTemplateFoldersResponse", data=_AnyObject(many=True))
DELETED_RESPONSE = envelope(name="MailTemplateDeleteResponse", data=_AnyObject())


def _template_or_404(membership: Membership, template_id: int) -> MailTemplate:
    template = mailtemplates.access_template(membership=membership, template_id=template_id)
    if template is None:
        raise exceptions.NotFound(_("Mail template not found."))
    return template


def _editable_or_403(membership: Membership, template_id: int) -> MailTemplate:
    template = _template_or_404(membership, template_id)
    if not mailtemplates.can_edit_template(membership=membership, template=template):
        raise exceptions.PermissionDenied(
            _("Only its owner or an admin can change a shared template.")
        )
    return template


class MailTemplateListView(ApiView):
    @extend_schema(
        operation_id="getMailTemplates",
        summary="Get mail templates",
        description=(
            "Your templates and the ones shared with the company, by folder, then name. "
            "`folder_id` narrows the list to one folder."
        ),
        tags=["Mailbox"],
        parameters=[
            OpenApiParameter("folder_id", int),
            OpenApiParameter("start", int),
            OpenApiParameter("limit", int),
        ],
        responses={200: TEMPLATES_RESPONSE, **error_responses(400, 401, 429)},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        templates = mailtemplates.templates_visible(membership=membership)
        folder_id = int_query_param(
            params=request.query_params, name="folder_id", default=0, min_value=0
        )
        if folder_id:
            templates = templates.filter(folder_id=folder_id)
        paginator = OffsetPagination()
        page = paginator.paginate_queryset(templates, request, view=self)
        return paginator.get_paginated_response(
            [template_data(template, membership=membership) for template in page]
        )

    @extend_schema(
        operation_id="addMailTemplate",
        summary="Add a mail template",
        description=(
            "A template of yours; `shared_flag` 1 shares it with the company. `body_html` may "
            "hold smart fields such as `{{person.first_name}}`; it is cleaned when saved."
        ),
        tags=["Mailbox"],
        request=TemplateCreateSerializer,
        responses={201: TEMPLATE_RESPONSE, **error_responses(400, 401, 429)},
    )
    def post(self, request: Request) -> Response:
        membership = request_membership(request=request)
        incoming = TemplateCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        template = mailtemplates.template_save(
            membership=membership,
            name=values["name"],
            subject=values["subject"],
            body_html=values["body_html"],
            folder_id=values["folder_id"],
            shared=values["shared_flag"],
        )
        template = _template_or_404(membership, template.pk)
        return Response(
            template_data(template, membership=membership), status=status.HTTP_201_CREATED
        )


class MailTemplateDetailView(ApiView):
    @extend_schema(
        operation_id="getMailTemplate",
        summary="Get one mail template",
        tags=["Mailbox"],
        parameters=[_ID],
        responses={200: TEMPLATE_RESPONSE, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        template = _template_or_404(membership, int(id))
        return Response(template_data(template, membership=membership))

    @extend_schema(
        operation_id="updateMailTemplate",
        summary="Change a mail template",
        description=(
            "The fields given change, the others stay. Its owner may change it; an admin may "
            "also change a shared one, but not whether it is shared."
        ),
        tags=["Mailbox"],
        parameters=[_ID],
        request=TemplateUpdateSerializer,
        responses={200: TEMPLATE_RESPONSE, **error_responses(400, 401, 403, 404, 429)},
    )
    def patch(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        template = _editable_or_403(membership, int(id))
        incoming = TemplateUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        mailtemplates.template_save(
            membership=membership,
            template_id=template.pk,
            name=values.get("name", template.name),
            subject=values.get("subject", template.subject),
            body_html=values.get("body_html", template.body_html),
            folder_id=values.get("folder_id", template.folder_id),
            shared=values.get("shared_flag", template.shared),
        )
        template = _template_or_404(membership, template.pk)
        return Response(template_data(template, membership=membership))

    @extend_schema(
        operation_id="deleteMailTemplate",
        summary="Delete a mail template",
        description="Its owner may delete it; an admin may also delete a shared one.",
        tags=["Mailbox"],
        parameters=[_ID],
        responses={200: DELETED_RESPONSE, **error_responses(401, 403, 404, 429)},
    )
    def delete(self, request: Request, id: str) -> Response:
        membership = request_membership(request=request)
        template = _editable_or_403(membership, int(id))
        mailtemplates.template_delete(membership=membership, template_id=template.pk)
        return Response({"id": template.pk})


class MailTemplateFolderListView(ApiView):
    @extend_schema(
        operation_id="getMailTemplateFolders",
        summary="Get mail template folders",
        description="The company's folders (`user_id` null), then yours, each by name.",
        tags=["Mailbox"],
        responses={200: FOLDERS_RESPONSE, **error_responses(401, 429)},
    )
    def get(self, request: Request) -> Response:
        membership = request_membership(request=request)
        folders = mailtemplates.folders_visible(membership=membership)
        return Response([folder_data(folder, membership=membership) for folder in folders])


v1_patterns = [
    re_path(r"^mailbox/mailTemplates/?$", MailTemplateListView.as_view(), name="mail-templates"),
    re_path(
        r"^mailbox/mailTemplates/(?P<id>[0-9]{1,18})/?$",
        MailTemplateDetailView.as_view(),
        name="mail-template",
    ),
    re_path(
        r"^mailbox/mailTemplateFolders/?$",
        MailTemplateFolderListView.as_view(),
        name="mail-template-folders",
    ),
]
