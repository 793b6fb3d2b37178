"""Reads for what an opened message loads besides its text: its files and inline images, and
the reader's choices about remote images. Every function starts from a message the reader may
see (`inbox.selectors.access_message`, which asks `inbox.visibility`), or takes messages its
caller read that way and says so."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Q

from crm.models import Company, Membership
from inbox import imageproxy, sanitize, selectors
from inbox.models import MailAttachment, MailMessage, RemoteImagesAllowed


def access_attachment(
    *, membership: Membership, attachment_id: int
) -> tuple[MailAttachment, MailMessage] | None:
    """The file and its message if the member may see a conversation holding the message;
    None when the file is missing or hidden (the same answer)."""
    attachment = (
        MailAttachment.objects.for_company(membership.company_id).filter(pk=attachment_id).first()
    )
    if attachment is None:
        return None
    found = selectors.access_message(membership=membership, message_id=attachment.message_id)
    if found is None:
        return None
    message, _thread = found
    return attachment, message


def active_membership(*, company_id: int, user_id: int) -> Membership | None:
    """The membership a signed inline-image URL was made for, if the user is still active in
    the company. The caller bound the transaction to that company after checking the URL's
    signature."""
    return (
        Membership.objects.for_company(company_id)
        .select_related("user")
        .filter(user_id=user_id, is_active=True, user__is_active=True)
        .first()
    )


def inline_images(*, company: Company | int, message: MailMessage) -> dict[str, int]:
    """Content-ID (lower-cased, without <>) → attachment id of the message's parts a body may
    show inline: images other than SVG (which can carry script); the bytes are checked when
    served. The caller read the
    message through `access_message`."""
    found: dict[str, int] = {}
    for attachment_id, content_id, content_type in (
        MailAttachment.objects.for_company(company)
        .filter(message=message)
        .exclude(content_id="")
        .order_by("id")
        .values_list("id", "content_id", "content_type")
    ):
        if imageproxy.declared_image(content_type):
            found.setdefault(content_id.strip("<> ").lower(), attachment_id)
    return found


@dataclass(frozen=True)
class MessageMedia:
    """What the message view shows about a message's remote images."""

    remote_images: bool  # its HTML body has some
    images_allowed: bool  # the reader chose to show them (this message, or its sender)
    sender: str  # the normalized address "Always show images from" names ("" when none)

    @property
    def images_hidden(self) -> bool:
        return self.remote_images and not self.images_allowed


def messages_media(
    *, membership: Membership, messages: Sequence[MailMessage]
) -> dict[int, MessageMedia]:
    """Message id → its `MessageMedia`, for messages the caller read through visibility (a
    conversation's messages): one query whatever their number."""
    allowed = images_allowed(membership=membership, messages=messages)
    return {
        message.pk: MessageMedia(
            remote_images=bool(message.body_html) and sanitize.has_remote_images(message.body_html),
            images_allowed=message.pk in allowed,
            sender=message.from_address,
        )
        for message in messages
    }


def images_allowed(*, membership: Membership, messages: Sequence[MailMessage]) -> set[int]:
    """The ids of those messages whose remote images the member chose to show, for the message
    or for its sender. The caller read the messages through visibility."""
    if not messages:
        return set()
    senders = {message.from_address for message in messages if message.from_address}
    choices = (
        RemoteImagesAllowed.objects.for_company(membership.company_id)
        .filter(user_id=membership.user_id)
        .filter(
            Q(message_id__in=[message.pk for message in messages])
            | Q(message__isnull=True, sender__in=senders)
        )
        .values_list("message_id", "sender")
    )
    by_message: set[int] = set()
    by_sender: set[str] = set()
    for message_id, sender in choices:
        # A choice is for a sender (no message) or for a message (sender "").
        if sender:
            by_sender.add(sender)
        else:
            by_message.add(message_id)
    return {
        message.pk
        for message in messages
        if message.pk in by_message or (message.from_address and message.from_address in by_sender)
    }
