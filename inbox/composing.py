"""What the composer opens with (B4): recipients, subject, quoted history and links for a new
message, a reply, a reply to all, a forward, or a message written from a deal, lead, project,
person or organization page.

Reads only: every message comes through `inbox.selectors.access_message` (so through
`inbox.visibility`), every item through `crm.access`; what the user may not see is left out
rather than refused, since the composer opens anyway and the send checks again. The draft and
the send are `inbox.drafts`'s.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.utils import formats
from django.utils import timezone as django_timezone
from django.utils.translation import gettext as _

from contacts.addresses import InvalidEmailAddress, normalize_email
from contacts.models import Organization, Person, PersonEmail
from crm import access
from crm.models import Membership
from crm.sales.models import Deal, Lead, Project
from inbox import drafts, mime, sanitize, selectors
from inbox.models import AccountKind, Provider

# A reply quotes the message it answers: this many characters of it at most.
QUOTE_LIMIT = 200_000


@dataclass(frozen=True)
class Prefill:
    """The composer's opening state. `body_html` is what goes under the cursor and the
    signature: the quoted message of a reply or forward, or the text a mailto link carried."""

    account_id: int | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject: str = ""
    body_html: str = ""
    reply_to_message_id: int | None = None
    forward_of_message_id: int | None = None
    deal_id: int | None = None
    lead_id: str | None = None
    project_id: int | None = None
    person_id: int | None = None


@dataclass(frozen=True)
class Sender:
    """An account the user may choose to send from."""

    account_id: int
    address: str
    label: str
    can_send: bool  # IMAP with an SMTP server: the outbox delivers it today
    attachment_limit: int


def senders(*, membership: Membership) -> list[Sender]:
    """The accounts whose mailbox the user reads, personal ones first."""
    chosen: list[Sender] = []
    for account in selectors.mailbox_accounts(membership=membership):
        label = account.email_address
        if account.display_name:
            label = f"{account.display_name} <{account.email_address}>"
        if account.kind == AccountKind.TEAM:
            label = _("%(account)s (team)") % {"account": label}
        chosen.append(
            Sender(
                account_id=account.pk,
                address=account.email_address,
                label=label,
                can_send=account.provider == Provider.IMAP and bool(account.smtp_host),
                attachment_limit=drafts.attachment_limit(account),
            )
        )
    return chosen


def _person_address(person: Person) -> str:
    emails: Sequence[PersonEmail] = list(person.emails.all())
    primary = next((email for email in emails if email.primary), None) or (
        emails[0] if emails else None
    )
    return mime.party_text(person.name, primary.value) if primary else ""


def _visible(queryset: Any, membership: Membership, item_id: object) -> Any:
    try:
        return access.access_item(
            queryset.filter(deleted_at__isnull=True), membership=membership, item_id=item_id
        )
    except (access.ItemNotFound, access.ItemForbidden):
        return None


def _person(membership: Membership, person_id: int | None) -> Person | None:
    if person_id is None:
        return None
    live = Person.objects.for_company(membership.company_id).prefetch_related("emails")
    found: Person | None = _visible(live, membership, person_id)
    return found


def for_item(*, membership: Membership, kind: str, item_id: str) -> Prefill:
    """A new message written from an item's page: to its person (a deal's, a lead's, an
    organization's first person with an address), linked to the item."""
    company = membership.company_id
    person: Person | None = None
    fields: dict[str, Any] = {}
    if kind == "deal":
        deal = _visible(Deal.objects.for_company(company), membership, item_id)
        if deal is not None:
            fields["deal_id"] = deal.pk
            person = _person(membership, deal.person_id)
    elif kind == "lead":
        lead = _visible(Lead.objects.for_company(company), membership, item_id)
        if lead is not None:
            fields["lead_id"] = str(lead.pk)
            person = _person(membership, lead.person_id)
    elif kind == "project":
        project = _visible(Project.objects.for_company(company), membership, item_id)
        if project is not None:
            fields["project_id"] = project.pk
    elif kind == "person":
        person = _person(membership, int(item_id)) if item_id.isdigit() else None
    elif kind == "organization":
        organization = _visible(Organization.objects.for_company(company), membership, item_id)
        if organization is not None:
            persons = access.visible_items(
                Person.objects.for_company(company)
                .filter(organization=organization, deleted_at__isnull=True, emails__isnull=False)
                .prefetch_related("emails")
                .order_by("name", "pk")
                .distinct(),
                membership=membership,
            )
            person = persons.first()
    if person is not None:
        fields["person_id"] = person.pk
        address = _person_address(person)
        if address:
            fields["to"] = (address,)
    return Prefill(**fields)


def _own_addresses(membership: Membership) -> set[str]:
    own: set[str] = set()
    for account in selectors.mailbox_accounts(membership=membership):
        try:
            own.add(normalize_email(account.email_address))
        except InvalidEmailAddress:
            continue
    return own


def _quote(message: Any, sender_text: str) -> str:
    when = django_timezone.localtime(message.sent_at or message.received_at)
    said = _("On %(date)s, %(sender)s wrote:") % {
        "date": formats.date_format(when, "DATETIME_FORMAT"),
        "sender": sender_text,
    }
    if message.body_html.strip():
        inner = editor_html(message.body_html[:QUOTE_LIMIT])
    else:
        inner = "<br>".join(
            html.escape(line) for line in message.body_text[:QUOTE_LIMIT].split("\n")
        )
    return (
        '<p><br></p><div class="crm-quote">'
        f"<p>{html.escape(said)}</p>"
        f'<blockquote type="cite">{inner}</blockquote></div>'
    )


def editor_html(body_html: str, *, cid_url: Callable[[str], str | None] | None = None) -> str:
    """HTML the composer may put into our page: sanitized as any email (no script, no
    handler, no form). Remote images keep their address: it is the user's own message (or
    the one they quote), and the sent copy must carry the address, not our proxy's."""
    return sanitize.sanitize_html(body_html, remote_image_url=_same, cid_url=cid_url)


def _same(url: str) -> str:
    return url


def _forward_header(message: Any, parties: Sequence[selectors.Party]) -> str:
    when = django_timezone.localtime(message.sent_at or message.received_at)
    lines = [
        ("From", mime.party_text(message.from_name, message.from_address)),
        ("Date", formats.date_format(when, "DATETIME_FORMAT")),
        ("Subject", message.subject),
        ("To", ", ".join(mime.party_text(p.name, p.address) for p in parties if p.role == "to")),
    ]
    cc = ", ".join(mime.party_text(p.name, p.address) for p in parties if p.role == "cc")
    if cc:
        lines.append(("Cc", cc))
    rows = "<br>".join(f"{html.escape(_(label))}: {html.escape(value)}" for label, value in lines)
    return f"<p>---------- {html.escape(_('Forwarded message'))} ---------<br>{rows}</p>"


def for_message(*, membership: Membership, message_id: int, mode: str) -> Prefill | None:
    """A reply (`mode` "reply"), reply to all ("reply_all") or forward ("forward") of a
    message the user may read: None when they may not."""
    found = selectors.access_message(membership=membership, message_id=message_id)
    if found is None:
        return None
    message, thread = found
    parties = selectors.message_facts(
        company=membership.company_id, account_id=thread.account_id, message_ids=[message.pk]
    ).parties.get(message.pk, [])
    own = _own_addresses(membership)
    readable_accounts = {sender.account_id for sender in senders(membership=membership)}
    account_id = thread.account_id if thread.account_id in readable_accounts else None
    links: dict[str, Any] = {
        "deal_id": thread.deal_id,
        "lead_id": str(thread.lead_id) if thread.lead_id else None,
        "project_id": thread.project_id,
    }
    sender_text = mime.party_text(message.from_name, message.from_address)
    if mode == "forward":
        body = (
            '<p><br></p><div class="crm-quote">'
            + _forward_header(message, parties)
            + _quote(message, sender_text).split('<div class="crm-quote">', 1)[1]
        )
        return Prefill(
            account_id=account_id,
            subject=mime.forward_subject(message.subject),
            body_html=body,
            forward_of_message_id=message.pk,
            **links,
        )

    def mine(address: str) -> bool:
        try:
            return normalize_email(address) in own
        except InvalidEmailAddress:
            return False

    to: list[str] = []
    cc: list[str] = []
    from_mine = mine(message.from_address)
    if from_mine:  # a reply to our own message goes to whom it went to
        to = [mime.party_text(p.name, p.address) for p in parties if p.role == "to"]
    elif message.from_address:
        to = [sender_text]
    if mode == "reply_all":
        seen = {normalize_email(a.rsplit("<", 1)[-1].rstrip(">")) for a in to if "@" in a}
        for party in parties:
            if party.role not in ("to", "cc") or mine(party.address):
                continue
            key = normalize_email(party.address)
            if key in seen:
                continue
            seen.add(key)
            (to if party.role == "to" and not from_mine else cc).append(
                mime.party_text(party.name, party.address)
            )
    person_id = next((p.person_id for p in parties if p.person_id and not mine(p.address)), None)
    return Prefill(
        account_id=account_id,
        to=tuple(to),
        cc=tuple(cc),
        subject=mime.reply_subject(message.subject),
        body_html=_quote(message, sender_text),
        reply_to_message_id=message.pk,
        person_id=person_id,
        **links,
    )


def with_fields(prefill: Prefill, **fields: Any) -> Prefill:
    """The prefill with what the link asked for besides (a mailto's subject, an account)."""
    chosen = {name: value for name, value in fields.items() if value not in (None, "", ())}
    return replace(prefill, **chosen)


def default_account(senders_: Sequence[Sender], wanted: int | None) -> int | None:
    """The account asked for when the user reads it, else the first that can send."""
    ids = {sender.account_id for sender in senders_}
    if wanted in ids:
        return wanted
    for sender in senders_:
        if sender.can_send:
            return sender.account_id
    return senders_[0].account_id if senders_ else None


def account_of(senders_: Sequence[Sender], account_id: int | None) -> Sender | None:
    return next((s for s in senders_ if s.account_id == account_id), None)
