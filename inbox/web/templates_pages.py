"""Sales Inbox → Templates and Signatures (B6): the pages where users write the templates and
signatures the composer inserts.

- `GET inbox/templates`: the templates the user sees, by folder, and the folders.
- `GET|POST inbox/templates/new`, `GET|POST inbox/templates/<id>`: the editor (subject, the
  body in a rich-text editor with an "Insert field" menu of smart fields, folder, shared); a
  shared template the user may not change shows read only.
- `POST inbox/templates/<id>/delete`.
- `POST inbox/templates/folders`, `POST inbox/templates/folders/<id>`,
  `POST inbox/templates/folders/<id>/delete`: create, rename, delete a folder.
- `GET|POST inbox/signatures`: the user's signature per mailbox, and a team mailbox's own.

Every read and change goes through `inbox.mailtemplates` (who sees and changes what); a
template private to someone else, or of another company, is a 404 here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.services import ServiceError
from crm.web.permissions import MemberRequest, member_required
from inbox import mailtemplates, sanitize, smartcontext, smartfields

if TYPE_CHECKING:
    from inbox.models import MailTemplate


# A signature goes into every message, linked to a deal or not: the sender's own fields only.
SIGNATURE_FIELDS = ("user", "company")


def _posted_id(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


# --- Templates -----------------------------------------------------------------------------------


@require_GET
@member_required
def templates_list(request: MemberRequest) -> HttpResponse:
    membership = request.membership
    folders = list(mailtemplates.folders_visible(membership=membership))
    return render(
        request,
        "inbox/templates_list.html",
        {
            "groups": mailtemplates.templates_grouped(membership=membership),
            "folders": [
                (folder, mailtemplates.can_edit_folder(membership=membership, folder=folder))
                for folder in folders
            ],
            "user_id": membership.user_id,
            "is_admin": membership.is_admin,
        },
    )


def _editor_page(
    request: MemberRequest,
    *,
    template: MailTemplate | None,
    values: dict[str, Any],
    error: ServiceError | None = None,
    status: int = 400,
) -> HttpResponse:
    membership = request.membership
    editable = template is None or mailtemplates.can_edit_template(
        membership=membership, template=template
    )
    body = values["body_html"]
    folders = list(mailtemplates.folders_visible(membership=membership))
    if template is not None and template.folder is not None and template.folder not in folders:
        folders.append(template.folder)  # a colleague's folder, kept when an admin edits
    return render(
        request,
        "inbox/templates_edit.html",
        {
            "template": template,
            "editable": editable,
            # Only the owner shares or unshares a template.
            "shared_locked": template is not None and template.owner_id != membership.user_id,
            "values": values,
            # Shown in our page: clean whatever was posted, as saving would.
            "body_shown": sanitize.sanitize_authored_html(body) if body.strip() else "",
            "fields_used": smartfields.fields_used(f"{values['subject']}\n{body}"),
            "folders": folders,
            "field_menu": smartcontext.field_menu(),
            "error": error,
        },
        status=status if error else 200,
    )


def _stored(template: MailTemplate) -> dict[str, Any]:
    return {
        "name": template.name,
        "subject": template.subject,
        "body_html": template.body_html,
        "folder_id": template.folder_id,
        "shared": template.shared,
    }


def _posted(request: MemberRequest, template: MailTemplate | None) -> dict[str, Any]:
    shared = request.POST.get("shared") == "on"
    if template is not None and template.owner_id != request.membership.user_id:
        shared = template.shared  # the switch is locked for anyone but the owner
    return {
        "name": request.POST.get("name", ""),
        "subject": request.POST.get("subject", ""),
        "body_html": request.POST.get("body_html", ""),
        "folder_id": _posted_id(request.POST.get("folder_id", "")),
        "shared": shared,
    }


def _save(request: MemberRequest, template: MailTemplate | None) -> HttpResponse:
    values = _posted(request, template)
    try:
        mailtemplates.template_save(
            membership=request.membership,
            template_id=template.pk if template is not None else None,
            **values,
        )
    except ServiceError as error:
        return _editor_page(request, template=template, values=values, error=error)
    messages.success(request, _("Template saved."))
    return redirect("inbox_templates")


@require_http_methods(["GET", "POST"])
@member_required
def template_new(request: MemberRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    folder_id = _posted_id(request.GET.get("folder", ""))
    values = {"name": "", "subject": "", "body_html": "", "folder_id": folder_id, "shared": False}
    return _editor_page(request, template=None, values=values)


def _visible_or_404(request: MemberRequest, template_id: int) -> MailTemplate:
    template = mailtemplates.access_template(membership=request.membership, template_id=template_id)
    if template is None:
        raise Http404(_("This template is not there, or not yours to see."))
    return template


@require_http_methods(["GET", "POST"])
@member_required
def template_edit(request: MemberRequest, template_id: int) -> HttpResponse:
    template = _visible_or_404(request, template_id)
    if request.method == "POST":
        if not mailtemplates.can_edit_template(membership=request.membership, template=template):
            refusal = ServiceError(_("Only its owner or an admin can change a shared template."))
            return _editor_page(
                request, template=template, values=_stored(template), error=refusal, status=403
            )
        return _save(request, template)
    return _editor_page(request, template=template, values=_stored(template))


@require_POST
@member_required
def template_delete(request: MemberRequest, template_id: int) -> HttpResponse:
    template = _visible_or_404(request, template_id)
    try:
        mailtemplates.template_delete(membership=request.membership, template_id=template.pk)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Template %(name)s deleted.") % {"name": template.name})
    return redirect("inbox_templates")


# --- Folders -------------------------------------------------------------------------------------


def _folder_saved(request: MemberRequest, folder_id: int | None) -> HttpResponse:
    try:
        mailtemplates.folder_save(
            membership=request.membership,
            folder_id=folder_id,
            name=request.POST.get("name", ""),
            company_wide=request.POST.get("company_wide") == "on",
        )
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Folder saved."))
    return redirect("inbox_templates")


@require_POST
@member_required
def folder_create(request: MemberRequest) -> HttpResponse:
    return _folder_saved(request, None)


@require_POST
@member_required
def folder_rename(request: MemberRequest, folder_id: int) -> HttpResponse:
    if mailtemplates.access_folder(membership=request.membership, folder_id=folder_id) is None:
        raise Http404(_("This folder is not there, or not yours to see."))
    return _folder_saved(request, folder_id)


@require_POST
@member_required
def folder_delete(request: MemberRequest, folder_id: int) -> HttpResponse:
    if mailtemplates.access_folder(membership=request.membership, folder_id=folder_id) is None:
        raise Http404(_("This folder is not there, or not yours to see."))
    try:
        mailtemplates.folder_delete(membership=request.membership, folder_id=folder_id)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Folder deleted; its templates are in no folder now."))
    return redirect("inbox_templates")


# --- Signatures ----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@member_required
def signatures(request: MemberRequest) -> HttpResponse:
    """Each mailbox the user reads: their own signature, and a team mailbox's (editable by
    its owner or an admin). A POST saves one (`account_id`, `for_team`, `body_html`)."""
    error: ServiceError | None = None
    if request.method == "POST":
        account_id = _posted_id(request.POST.get("account_id", ""))
        try:
            mailtemplates.signature_save(
                membership=request.membership,
                account_id=account_id or 0,
                body_html=request.POST.get("body_html", ""),
                for_team=request.POST.get("for_team") == "1",
            )
        except ServiceError as problem:
            error = problem
        else:
            messages.success(request, _("Signature saved."))
            return redirect("inbox_signatures")
    return render(
        request,
        "inbox/signatures.html",
        {
            "rows": mailtemplates.signatures_for_user(membership=request.membership),
            "field_menu": smartcontext.field_menu(items=SIGNATURE_FIELDS),
            "error": error,
        },
        status=400 if error else 200,
    )


urlpatterns: list[URLPattern | URLResolver] = [
    path("inbox/templates", templates_list, name="inbox_templates"),
    path("inbox/templates/new", template_new, name="inbox_template_new"),
    path("inbox/templates/<int:template_id>", template_edit, name="inbox_template_edit"),
    path(
        "inbox/templates/<int:template_id>/delete",
        template_delete,
        name="inbox_template_delete",
    ),
    path("inbox/templates/folders", folder_create, name="inbox_template_folder_create"),
    path(
        "inbox/templates/folders/<int:folder_id>",
        folder_rename,
        name="inbox_template_folder_rename",
    ),
    path(
        "inbox/templates/folders/<int:folder_id>/delete",
        folder_delete,
        name="inbox_template_folder_delete",
    ),
    path("inbox/signatures", signatures, name="inbox_signatures"),
]
