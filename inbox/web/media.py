"""What an opened message loads besides the page: its body in the sandboxed frame.

- `GET mail/messages/<id>/body`: a message's body, sanitized, for the sandboxed frame.

Every read goes through `inbox.selectors.access_message`, so only who may see the conversation
gets anything; anyone else gets the same 404 as for a message that does not exist."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.urls import URLPattern, URLResolver, path
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

from crm.web.permissions import MemberRequest, member_required
from inbox import bodies, selectors


@xframe_options_sameorigin
@require_GET
@member_required
def message_body(request: MemberRequest, message_id: int) -> HttpResponse:
    """The body in its sandboxed frame on our own pages (hence SAMEORIGIN, not DENY)."""
    found = selectors.access_message(membership=request.membership, message_id=message_id)
    if found is None:
        raise Http404
    message, _thread = found
    return bodies.body_response(message)


urlpatterns: list[URLPattern | URLResolver] = [
    path("mail/messages/<int:message_id>/body", message_body, name="inbox_message_body"),
]
