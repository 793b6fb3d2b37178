"""What a message's markup needs about its media: whether its body has remote images, and
whether the reader chose to show them (`{% message_media view.message as media %}`); a file's
name as it may be shown (`{{ file.filename|filename_shown }}`).

A conversation's messages are looked up together, once per request: the first message asks
for all of `messages` in the template's context (the conversation being shown), so a thread
of any length costs one query."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from django import template

from inbox import media_selectors

if TYPE_CHECKING:
    from inbox.models import MailMessage

register = template.Library()

_CACHE = "_inbox_messages_media"


def _shown_messages(context: template.Context, message: MailMessage) -> list[MailMessage]:
    """The message, with the other messages of the conversation in the context (views with a
    `.message`), read through visibility by the view that rendered them."""
    shown = [message]
    for view in context.get("messages") or ():
        other = getattr(view, "message", None)
        if other is not None and other.pk != message.pk:
            shown.append(other)
    return shown


@register.simple_tag(takes_context=True)
def message_media(context: template.Context, message: MailMessage) -> media_selectors.MessageMedia:
    """The message's `media_selectors.MessageMedia` for the signed-in reader."""
    request = context.get("request")
    membership = getattr(request, "membership", None)
    if membership is None:
        return media_selectors.MessageMedia(remote_images=False, images_allowed=False, sender="")
    known: dict[int, media_selectors.MessageMedia] = getattr(request, _CACHE, {})
    if message.pk not in known:
        known.update(
            media_selectors.messages_media(
                membership=membership, messages=_shown_messages(context, message)
            )
        )
        setattr(request, _CACHE, known)
    return known[message.pk]


@register.filter
def filename_shown(name: str) -> str:
    """A sender-chosen file name without the characters that make it read as another one:
    bidirectional overrides ("report<U+202E>fdp.exe" shows as "reportexe.pdf"), zero-width and
    control characters."""
    kept = "".join(char for char in name if unicodedata.category(char)[0] != "C")
    return " ".join(kept.split())
