"""The contacts pages: persons and organizations, their lists, detail pages and the small htmx
endpoints those pages edit through.

Every item is fetched through `contacts.selectors.access_*` with the request's membership: an
item of another company (or a missing one) is 404, one of this company the user may not see is
403 (crm.access). Every write is one call of `contacts.services` (or `crm.services.label_create`
for a label made on the spot); a refusal (`ServiceError`) lands on the form beside its field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts import selectors, services
from contacts.models import ContactLabel, Organization, Person
from contacts.web import bulk, listing
from contacts.web.forms import (
    ORGANIZATION_INLINE,
    PAGE_SIZE,
    PERSON_INLINE,
    BulkForm,
    InlineFieldForm,
    LabelsForm,
    ListQueryForm,
    MergeForm,
    OrganizationCreateForm,
    PersonCreateForm,
    RelationForm,
    RemoveRelationForm,
    contact_points,
)
from crm import selectors as crm_selectors
from crm.access import ItemForbidden, ItemKind, ItemNotFound
from crm.models import Company, LabelColor, User
from crm.services import ServiceError, label_create
from crm.web.forms import add_service_error
from crm.web.permissions import MemberRequest, member_required

HISTORY_LENGTH = 50
PEOPLE_SHOWN = 100

# --- Shared pieces -------------------------------------------------------------------------------


def _person(request: MemberRequest, person_id: int, *, include_deleted: bool = False) -> Person:
    try:
        return selectors.access_person(
            membership=request.membership, person_id=person_id, include_deleted=include_deleted
        )
    except ItemNotFound:
        raise Http404 from None
    except ItemForbidden:
        raise PermissionDenied from None


def _organization(
    request: MemberRequest, organization_id: int, *, include_deleted: bool = False
) -> Organization:
    try:
        return selectors.access_organization(
            membership=request.membership,
            organization_id=organization_id,
            include_deleted=include_deleted,
        )
    except ItemNotFound:
        raise Http404 from None
    except ItemForbidden:
        raise PermissionDenied from None


def optional_url(name: str, **kwargs: object) -> str | None:
    """The URL of a page another app provides, or None while that app has not built it (the
    deals fragments, the inbox's Email tab): the slot then shows its empty state."""
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        return None


def _is_htmx(request: MemberRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _go(request: MemberRequest, url: str) -> HttpResponse:
    """Navigate after a write: htmx follows HX-Redirect, a plain form the 302."""
    if _is_htmx(request):
        return HttpResponse(headers={"HX-Redirect": url})
    return redirect(url)


def _owners(company: Company) -> list[User]:
    return [m.user for m in crm_selectors.membership_list(company=company) if m.is_active]


def _dialog(
    request: MemberRequest, inner: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """A form shown in a <dialog> when htmx asks, and as a page of its own otherwise."""
    template = "contacts/dialog.html" if _is_htmx(request) else "contacts/dialog_page.html"
    return render(request, template, {**context, "inner": inner}, status=status)


def _query_string(params: QueryDict, **changes: object) -> str:
    query = params.copy()
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = str(value)
    return query.urlencode()


def _with_labels(items: list[Any], labels: Mapping[int, Any]) -> None:
    for item in items:
        item.__dict__["row_labels"] = [
            labels[pk] for pk in item.__dict__.get("attached_label_ids", ()) if pk in labels
        ]


# --- Lists ---------------------------------------------------------------------------------------


def _list_context(
    request: MemberRequest, *, kind: str, page: listing.Page[Any], query: dict[str, Any]
) -> dict[str, Any]:
    labels = list(crm_selectors.label_list(company=request.company, kind=kind))
    _with_labels(list(page.items), {label.pk: label for label in labels})
    columns = [("name", _("Name"))]
    if kind == ItemKind.PERSON:
        columns.append(("organization", _("Organization")))
    columns += [("owner", _("Owner")), ("updated", _("Updated"))]
    sort_links = []
    for column, title in columns:
        current = query["sort"] == column
        direction = "desc" if current and query["dir"] == "asc" else "asc"
        sort_links.append(
            {
                "column": column,
                "title": title,
                "current": current,
                "aria_sort": ("ascending" if query["dir"] == "asc" else "descending")
                if current
                else "none",
                "query": _query_string(request.GET, sort=column, dir=direction, page=None),
            }
        )
    return {
        "page": page,
        "query": query,
        "labels": labels,
        "owners": _owners(request.company),
        "sort_links": sort_links,
        "previous_query": _query_string(request.GET, page=page.number - 1),
        "next_query": _query_string(request.GET, page=page.number + 1),
        "bulk_actions": BulkForm.base_fields["action"].choices,  # type: ignore[attr-defined]
        # The undo banner after a delete: only a well-formed id reaches the restore URL.
        "deleted_id": int(deleted) if (deleted := request.GET.get("deleted", "")).isdigit() else 0,
    }


@require_GET
@member_required
def person_list(request: MemberRequest) -> HttpResponse:
    query = ListQueryForm(request.GET).cleaned()
    page = listing.person_page(
        company=request.company, membership=request.membership, query=query, size=PAGE_SIZE
    )
    context = _list_context(request, kind=ItemKind.PERSON, page=page, query=query)
    if query["organization"]:
        try:
            context["filter_organization"] = selectors.access_organization(
                membership=request.membership, organization_id=query["organization"]
            )
        except (ItemNotFound, ItemForbidden):
            context["filter_organization"] = None
    # Search as you type swaps only the results.
    if request.headers.get("HX-Target") == "results":
        return render(request, "contacts/_person_results.html", context)
    return render(request, "contacts/person_list.html", context)


@require_GET
@member_required
def organization_list(request: MemberRequest) -> HttpResponse:
    query = ListQueryForm(request.GET).cleaned()
    page = listing.organization_page(
        company=request.company, membership=request.membership, query=query, size=PAGE_SIZE
    )
    context = _list_context(request, kind=ItemKind.ORGANIZATION, page=page, query=query)
    if request.headers.get("HX-Target") == "results":
        return render(request, "contacts/_organization_results.html", context)
    return render(request, "contacts/organization_list.html", context)


def _bulk(request: MemberRequest, *, kind: str) -> HttpResponse:
    form = BulkForm(request.POST)
    back = "person_list" if kind == ItemKind.PERSON else "organization_list"
    if not form.is_valid():
        messages.error(request, _("Select some rows and an action."))
        return redirect(back)
    apply = bulk.persons_bulk if kind == ItemKind.PERSON else bulk.organizations_bulk
    try:
        count = apply(
            company=request.company,
            membership=request.membership,
            ids=form.cleaned_data["ids"],
            action=form.cleaned_data["action"],
            owner_id=form.cleaned_data["owner"],
            label_id=form.cleaned_data["label"],
        )
    except (ItemNotFound, ItemForbidden):
        raise Http404 from None
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect(back)
    messages.success(request, _("%(count)s items changed.") % {"count": count})
    return redirect(back)


@require_POST
@member_required
def person_bulk(request: MemberRequest) -> HttpResponse:
    return _bulk(request, kind=ItemKind.PERSON)


@require_POST
@member_required
def organization_bulk(request: MemberRequest) -> HttpResponse:
    return _bulk(request, kind=ItemKind.ORGANIZATION)


@require_GET
@member_required
def person_autocomplete(request: MemberRequest) -> HttpResponse:
    exclude = request.GET.get("exclude", "")
    persons = listing.person_matches(
        company=request.company,
        membership=request.membership,
        term=request.GET.get("q", ""),
        exclude_id=int(exclude) if exclude.isdigit() else None,
    )
    return render(request, "contacts/_options.html", {"items": persons})


@require_GET
@member_required
def organization_autocomplete(request: MemberRequest) -> HttpResponse:
    exclude = request.GET.get("exclude", "")
    organizations = listing.organization_matches(
        company=request.company,
        membership=request.membership,
        term=request.GET.get("q", ""),
        exclude_id=int(exclude) if exclude.isdigit() else None,
    )
    return render(request, "contacts/_options.html", {"items": organizations})


# --- Creating ------------------------------------------------------------------------------------


def _person_create(
    request: MemberRequest, *, organization: Organization | None = None
) -> HttpResponse:
    form = PersonCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        fields = form.fields_for_service()
        if organization is not None:
            fields["org_id"] = organization.pk
        try:
            person = services.person_create(
                company=request.company, membership=request.membership, fields=fields
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Person %(name)s added.") % {"name": person.name})
            if organization is not None:
                return _go(request, reverse("organization_detail", args=[organization.pk]))
            return _go(request, reverse("person_detail", args=[person.pk]))
    action = (
        reverse("organization_person_create", args=[organization.pk])
        if organization is not None
        else reverse("person_create")
    )
    context = {
        "form": form,
        "action": action,
        "organization": organization,
        "title": _("Add a person to %(name)s") % {"name": organization.name}
        if organization is not None
        else _("New person"),
    }
    return _dialog(
        request, "contacts/_person_form.html", context, status=422 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
@member_required
def person_create(request: MemberRequest) -> HttpResponse:
    return _person_create(request)


@require_http_methods(["GET", "POST"])
@member_required
def organization_person_create(request: MemberRequest, organization_id: int) -> HttpResponse:
    return _person_create(request, organization=_organization(request, organization_id))


@require_http_methods(["GET", "POST"])
@member_required
def organization_create(request: MemberRequest) -> HttpResponse:
    form = OrganizationCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = services.organization_create(
                company=request.company,
                membership=request.membership,
                fields=form.fields_for_service(),
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request, _("Organization %(name)s added.") % {"name": organization.name}
            )
            return _go(request, reverse("organization_detail", args=[organization.pk]))
    context = {
        "form": form,
        "action": reverse("organization_create"),
        "title": _("New organization"),
    }
    return _dialog(
        request, "contacts/_organization_form.html", context, status=422 if form.errors else 200
    )


# --- Detail pages --------------------------------------------------------------------------------


def _common_detail(
    request: MemberRequest, *, kind: str, item: Person | Organization
) -> dict[str, Any]:
    labels = list(crm_selectors.label_list(company=request.company, kind=kind))
    _with_labels([item], {label.pk: label for label in labels})
    changes = crm_selectors.item_changes(company=request.company, kind=kind, item_key=item.pk)
    return {
        "kind": kind,
        "item": item,
        "labels_form": LabelsForm(
            labels=labels, initial={"label_ids": item.__dict__["attached_label_ids"]}
        ),
        "changes": list(changes[:HISTORY_LENGTH]),
        "deals_url": optional_url(f"{kind}_deals_fragment", **{f"{kind}_id": item.pk}),
        "emails_url": optional_url("inbox_item_emails", kind=kind, item_id=item.pk),
        "inline_fields": [
            {"field": field, "label": label, "url": _field_url(kind=kind, item=item, field=field)}
            for field, label in (
                PERSON_INLINE if kind == ItemKind.PERSON else ORGANIZATION_INLINE
            ).items()
        ],
    }


@require_GET
@member_required
def person_detail(request: MemberRequest, person_id: int) -> HttpResponse:
    person = _person(request, person_id)
    selectors.persons_attach(company=request.company, persons=[person])
    context = _common_detail(request, kind=ItemKind.PERSON, item=person)
    return render(
        request,
        "contacts/person_detail.html",
        {
            **context,
            "person": person,
            "email_rows": _point_rows(person, points="emails"),
            "phone_rows": _point_rows(person, points="phones"),
        },
    )


def _point_rows(person: Person, *, points: str) -> list[dict[str, Any]]:
    names = dict(ContactLabel.choices)
    return [
        {**row, "label_display": names.get(row["label"], row["label"])}
        for row in person.__dict__[f"attached_{points}"]
    ]


@require_GET
@member_required
def organization_detail(request: MemberRequest, organization_id: int) -> HttpResponse:
    organization = _organization(request, organization_id)
    selectors.organizations_attach(company=request.company, organizations=[organization])
    context = _common_detail(request, kind=ItemKind.ORGANIZATION, item=organization)
    people = list(
        selectors.organization_persons(
            company=request.company, membership=request.membership, organization=organization
        )[:PEOPLE_SHOWN]
    )
    selectors.persons_attach(company=request.company, persons=people)
    relations = selectors.organization_relations(
        company=request.company, membership=request.membership, organization=organization
    )
    return render(
        request,
        "contacts/organization_detail.html",
        {
            **context,
            "organization": organization,
            "people": people,
            "relations": relations,
            "relation_form": RelationForm(),
        },
    )


# --- Editing in place ----------------------------------------------------------------------------


def _field_url(*, kind: str, item: Person | Organization, field: str) -> str:
    return reverse(f"{kind}_field", args=[item.pk, field])


_INITIAL_ATTRIBUTE = {
    "organization": "organization_id",
    "owner": "owner_id",
    "address": "address_value",
}


def _inline(
    request: MemberRequest, *, kind: str, item: Person | Organization, field: str
) -> HttpResponse:
    fields = PERSON_INLINE if kind == ItemKind.PERSON else ORGANIZATION_INLINE
    context: dict[str, Any] = {
        "kind": kind,
        "item": item,
        "field": field,
        "label": fields[field],
        "url": _field_url(kind=kind, item=item, field=field),
    }
    if request.method == "GET" and "edit" not in request.GET:
        return render(request, "contacts/_field.html", context)
    form = InlineFieldForm(
        request.POST if request.method == "POST" else None,
        field=field,
        label=fields[field],
        owners=_owners(request.company) if field == "owner" else (),
        initial={"value": getattr(item, _INITIAL_ATTRIBUTE.get(field, field))},
    )
    if request.method == "POST" and form.is_valid():
        try:
            if isinstance(item, Person):
                item = services.person_update(
                    company=request.company,
                    membership=request.membership,
                    person=item,
                    fields=form.person_fields(),
                )
            else:
                item = services.organization_update(
                    company=request.company,
                    membership=request.membership,
                    organization=item,
                    fields=form.organization_fields(),
                )
        except ServiceError as error:
            form.add_error("value", error.message)
        else:
            return render(request, "contacts/_field.html", {**context, "item": item})
    return render(
        request,
        "contacts/_field_edit.html",
        {**context, "form": form},
        status=422 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@member_required
def person_field(request: MemberRequest, person_id: int, field: str) -> HttpResponse:
    if field not in PERSON_INLINE:
        raise Http404
    return _inline(request, kind=ItemKind.PERSON, item=_person(request, person_id), field=field)


@require_http_methods(["GET", "POST"])
@member_required
def organization_field(request: MemberRequest, organization_id: int, field: str) -> HttpResponse:
    if field not in ORGANIZATION_INLINE:
        raise Http404
    organization = _organization(request, organization_id)
    return _inline(request, kind=ItemKind.ORGANIZATION, item=organization, field=field)


@require_http_methods(["GET", "POST"])
@member_required
def person_points(request: MemberRequest, person_id: int, points: str) -> HttpResponse:
    """The emails or the phones of a person: shown, or edited as one list (add a row, change
    a label, pick the primary one, remove some), saved as the service's whole-list update."""
    if points not in ("emails", "phones"):
        raise Http404
    person = _person(request, person_id)
    error = None
    if request.method == "POST":
        rows = contact_points(request.POST)
        fields = (
            services.PersonFields(emails=rows)
            if points == "emails"
            else services.PersonFields(phones=rows)
        )
        try:
            person = services.person_update(
                company=request.company,
                membership=request.membership,
                person=person,
                fields=fields,
            )
        except ServiceError as refused:
            error = refused.message
    selectors.persons_attach(company=request.company, persons=[person])
    editing = error is not None or (request.method == "GET" and "edit" in request.GET)
    choices = ContactLabel.choices
    if points == "emails":
        choices = [(value, label) for value, label in choices if value in services.EMAIL_LABELS]
    return render(
        request,
        "contacts/_points.html",
        {
            "person": person,
            "points": points,
            "rows": _point_rows(person, points=points),
            "editing": editing,
            "error": error,
            "label_choices": choices,
        },
        status=422 if error else 200,
    )


def _labels(request: MemberRequest, *, kind: str, item: Person | Organization) -> HttpResponse:
    """An item's labels: pick existing ones, or make a new one (with a colour) on the spot."""
    labels = list(crm_selectors.label_list(company=request.company, kind=kind))
    form = LabelsForm(request.POST if request.method == "POST" else None, labels=labels)
    if request.method == "POST" and form.is_valid():
        label_ids = list(form.cleaned_data["label_ids"])
        try:
            if form.cleaned_data["new_label"]:
                label = label_create(
                    company=request.company,
                    kind=kind,
                    name=form.cleaned_data["new_label"],
                    color=form.cleaned_data["new_color"] or LabelColor.GRAY,
                )
                label_ids.append(label.pk)
            if isinstance(item, Person):
                item = services.person_update(
                    company=request.company,
                    membership=request.membership,
                    person=item,
                    fields=services.PersonFields(label_ids=label_ids),
                )
            else:
                item = services.organization_update(
                    company=request.company,
                    membership=request.membership,
                    organization=item,
                    fields=services.OrganizationFields(label_ids=label_ids),
                )
        except ServiceError as error:
            form.add_error("new_label" if error.field == "name" else None, error.message)
        else:
            return _labels_shown(request, kind=kind, item=item)
    if request.method == "GET" and "edit" not in request.GET:
        return _labels_shown(request, kind=kind, item=item)
    attached = _attached_label_ids(request, kind=kind, item=item)
    if request.method == "GET":
        form = LabelsForm(labels=labels, initial={"label_ids": attached})
    return render(
        request,
        "contacts/_labels.html",
        {"kind": kind, "item": item, "labels_form": form, "editing": True},
        status=422 if form.errors else 200,
    )


def _attached_label_ids(
    request: MemberRequest, *, kind: str, item: Person | Organization
) -> list[int]:
    if isinstance(item, Person):
        selectors.persons_attach(company=request.company, persons=[item])
    else:
        selectors.organizations_attach(company=request.company, organizations=[item])
    ids: list[int] = item.__dict__["attached_label_ids"]
    return ids


def _labels_shown(
    request: MemberRequest, *, kind: str, item: Person | Organization
) -> HttpResponse:
    """The labels section as shown (not edited)."""
    _attached_label_ids(request, kind=kind, item=item)
    labels = crm_selectors.label_list(company=request.company, kind=kind)
    _with_labels([item], {label.pk: label for label in labels})
    return render(request, "contacts/_labels.html", {"kind": kind, "item": item, "editing": False})


@require_http_methods(["GET", "POST"])
@member_required
def person_labels(request: MemberRequest, person_id: int) -> HttpResponse:
    return _labels(request, kind=ItemKind.PERSON, item=_person(request, person_id))


@require_http_methods(["GET", "POST"])
@member_required
def organization_labels(request: MemberRequest, organization_id: int) -> HttpResponse:
    organization = _organization(request, organization_id)
    return _labels(request, kind=ItemKind.ORGANIZATION, item=organization)


# --- Delete, restore, merge ----------------------------------------------------------------------


@require_POST
@member_required
def person_delete(request: MemberRequest, person_id: int) -> HttpResponse:
    person = _person(request, person_id)
    services.person_delete(company=request.company, membership=request.membership, person=person)
    return redirect(f"{reverse('person_list')}?deleted={person.pk}")


@require_POST
@member_required
def person_restore(request: MemberRequest, person_id: int) -> HttpResponse:
    person = _person(request, person_id, include_deleted=True)
    try:
        services.person_restore(
            company=request.company, membership=request.membership, person=person
        )
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("person_list")
    messages.success(request, _("%(name)s restored.") % {"name": person.name})
    return redirect("person_detail", person_id=person.pk)


@require_POST
@member_required
def organization_delete(request: MemberRequest, organization_id: int) -> HttpResponse:
    organization = _organization(request, organization_id)
    services.organization_delete(
        company=request.company, membership=request.membership, organization=organization
    )
    return redirect(f"{reverse('organization_list')}?deleted={organization.pk}")


@require_POST
@member_required
def organization_restore(request: MemberRequest, organization_id: int) -> HttpResponse:
    organization = _organization(request, organization_id, include_deleted=True)
    try:
        services.organization_restore(
            company=request.company, membership=request.membership, organization=organization
        )
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("organization_list")
    messages.success(request, _("%(name)s restored.") % {"name": organization.name})
    return redirect("organization_detail", organization_id=organization.pk)


@require_http_methods(["GET", "POST"])
@member_required
def person_merge(request: MemberRequest, person_id: int) -> HttpResponse:
    """Merge another person (picked by search) into this one, which is kept."""
    person = _person(request, person_id)
    form = MergeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        merged = _person(request, form.cleaned_data["merged_id"])
        try:
            services.person_merge(
                company=request.company, membership=request.membership, keep=person, merged=merged
            )
        except ServiceError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("%(name)s merged.") % {"name": merged.name})
            return _go(request, reverse("person_detail", args=[person.pk]))
    context = {
        "form": form,
        "item": person,
        "action": reverse("person_merge", args=[person.pk]),
        "search_url": reverse("person_autocomplete"),
        "title": _("Merge another person into %(name)s") % {"name": person.name},
    }
    status = 422 if form.errors else 200
    return _dialog(request, "contacts/_merge_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@member_required
def organization_merge(request: MemberRequest, organization_id: int) -> HttpResponse:
    organization = _organization(request, organization_id)
    form = MergeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        merged = _organization(request, form.cleaned_data["merged_id"])
        try:
            services.organization_merge(
                company=request.company,
                membership=request.membership,
                keep=organization,
                merged=merged,
            )
        except ServiceError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("%(name)s merged.") % {"name": merged.name})
            return _go(request, reverse("organization_detail", args=[organization.pk]))
    context = {
        "form": form,
        "item": organization,
        "action": reverse("organization_merge", args=[organization.pk]),
        "search_url": reverse("organization_autocomplete"),
        "title": _("Merge another organization into %(name)s") % {"name": organization.name},
    }
    status = 422 if form.errors else 200
    return _dialog(request, "contacts/_merge_form.html", context, status=status)


# --- Related organizations -----------------------------------------------------------------------


@require_POST
@member_required
def organization_relation_add(request: MemberRequest, organization_id: int) -> HttpResponse:
    organization = _organization(request, organization_id)
    form = RelationForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Pick an organization and how it is related."))
        return redirect("organization_detail", organization_id=organization.pk)
    other = _organization(request, form.cleaned_data["other_id"])
    # The stored relation reads "organization is the parent of related_organization".
    kind = form.cleaned_data["kind"]
    parent, child = (other, organization) if kind == "parent" else (organization, other)
    try:
        services.organization_relation_add(
            company=request.company,
            membership=request.membership,
            kind="related" if kind == "related" else "parent",
            organization=parent,
            related_organization=child,
        )
    except ServiceError as error:
        messages.error(request, error.message)
    return redirect("organization_detail", organization_id=organization.pk)


@require_POST
@member_required
def organization_relation_remove(request: MemberRequest, organization_id: int) -> HttpResponse:
    organization = _organization(request, organization_id)
    form = RemoveRelationForm(request.POST)
    if not form.is_valid():
        raise Http404
    try:
        relation = selectors.access_organization_relation(
            membership=request.membership, relation_id=form.cleaned_data["relation_id"]
        )
    except (ItemNotFound, ItemForbidden):
        raise Http404 from None
    if organization.pk not in (relation.organization_id, relation.related_organization_id):
        raise Http404
    services.organization_relation_remove(
        company=request.company, membership=request.membership, relation=relation
    )
    return redirect("organization_detail", organization_id=organization.pk)
