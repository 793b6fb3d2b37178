"""Settings → Blocked addresses (C5): the company-wide list (admins change it, everyone sees it)
and the user's own list, which hides mail in their own mailboxes only. Mail from a blocked
address or domain shows nowhere; removing the block shows it again from the mail already stored.

The rules (who may block for the whole company, what a valid value is) live in
`inbox.services`; its `ServiceError` lands on the form beside the field it names."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from crm.services import ServiceError
from crm.web.forms import PlainLabels, add_service_error
from crm.web.permissions import MemberRequest, member_required
from inbox import selectors, services

SCOPE_MINE, SCOPE_COMPANY = "mine", "company"


class BlockForm(PlainLabels, forms.Form):
    """An address or a domain, and whom the block is for. The scope field takes both values
    for everyone: a regular user's "company" reaches the service, which says why not."""

    value = forms.CharField(
        label=gettext_lazy("Address or domain"),
        max_length=320,
        help_text=gettext_lazy("name@example.com, or @example.com for the whole domain."),
    )
    scope = forms.ChoiceField(
        label=gettext_lazy("Block for"),
        choices=[
            (SCOPE_MINE, gettext_lazy("Only my mailboxes")),
            (SCOPE_COMPANY, gettext_lazy("The whole company")),
        ],
        initial=SCOPE_MINE,
        required=False,
        widget=forms.RadioSelect,
    )


def _page(request: MemberRequest, *, form: BlockForm | None = None) -> HttpResponse:
    company_wide, mine = selectors.blocked_addresses(membership=request.membership)
    return render(
        request,
        "inbox/blocklist.html",
        {
            "form": form or BlockForm(),
            "company_wide": company_wide,
            "mine": mine,
            "is_admin": request.membership.is_admin,
        },
    )


@require_GET
@member_required
def blocklist(request: MemberRequest) -> HttpResponse:
    return _page(request)


@require_POST
@member_required
def block_add(request: MemberRequest) -> HttpResponse:
    form = BlockForm(request.POST)
    if form.is_valid():
        try:
            block = services.block_add(
                membership=request.membership,
                value=form.cleaned_data["value"],
                company_wide=form.cleaned_data["scope"] == SCOPE_COMPANY,
            )
        except ServiceError as error:
            add_service_error(form, error)
        else:
            if block.user_id is None:
                text = _("%(value)s is blocked for the whole company.")
            else:
                text = _("%(value)s is blocked in your mailboxes.")
            messages.success(request, text % {"value": block.value})
            return redirect("inbox_blocklist")
    return _page(request, form=form)


@require_POST
@member_required
def block_remove(request: MemberRequest, block_id: int) -> HttpResponse:
    """Another company's block, a colleague's own, and (for a regular user) a company-wide one
    are all simply not found."""
    try:
        services.block_remove(membership=request.membership, block_id=block_id)
    except ServiceError:
        raise Http404 from None
    messages.success(request, _("Unblocked: its mail shows again."))
    return redirect("inbox_blocklist")


urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/blocked-addresses", blocklist, name="inbox_blocklist"),
    path("settings/blocked-addresses/add", block_add, name="inbox_block_add"),
    path(
        "settings/blocked-addresses/<int:block_id>/remove",
        block_remove,
        name="inbox_block_remove",
    ),
]
