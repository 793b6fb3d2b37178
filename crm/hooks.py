"""Events of the CRM items that higher layers react to, without the items importing them.

A lower layer publishes; a higher layer subscribes in its AppConfig.ready(). Handlers run
synchronously inside the publisher's transaction (so they see its rows and roll back with it);
one that has slow work to do enqueues a task with `transaction.on_commit`.

Topics:
- `item_event` (`ItemEvent`): a person, organization, deal, lead or project was added, updated,
  deleted or merged. Webhooks subscribe; the change log is written by the publisher.
- `person_addresses_changed` (`PersonAddressesChanged`): a person gained or lost email addresses
  (also on create, merge and restore). Mail linking re-runs for stored mail.
- `persons_merged`, `organizations_merged` (`ItemsMerged`): links of the merged item move to the
  surviving one.
- `deal_status_changed` (`DealStatusChanged`): a deal opened, was won or lost, or was deleted.
- `mail_received` (`MailReceived`): sync stored mail that is new to the company, after commit.
- `mail_actions_queued` (`MailActionsQueued`): the inbox wrote provider actions (A5) for a
  two-way account, inside its transaction; mailsync runs them once `run_after` has passed.
- `mail_outbox_queued` (`MailOutboxQueued`): the inbox queued a message to send, inside its
  transaction; mailsync delivers it once `not_before` has passed.
- `mail_drafts_changed` (`MailDraftsChanged`): the inbox saved, sent or discarded a draft, after
  commit; mailsync writes or removes its copy in the account's Drafts folder once `due` has
  passed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ITEM_EVENT = "item_event"
PERSON_ADDRESSES_CHANGED = "person_addresses_changed"
PERSONS_MERGED = "persons_merged"
ORGANIZATIONS_MERGED = "organizations_merged"
DEAL_STATUS_CHANGED = "deal_status_changed"
MAIL_RECEIVED = "mail_received"
MAIL_ACTIONS_QUEUED = "mail_actions_queued"
MAIL_OUTBOX_QUEUED = "mail_outbox_queued"
MAIL_DRAFTS_CHANGED = "mail_drafts_changed"


@dataclass(frozen=True)
class ItemEvent:
    company_id: int
    kind: str  # person | organization | deal | lead | project
    action: str  # added | updated | deleted | merged
    item_id: str  # the id as the API shows it (a UUID for leads)
    actor_id: int | None
    source: str  # app | api | system
    # The item as each API version shows it: {"1.0": {...}, "2.0": {...}}.
    current: Mapping[str, Mapping[str, Any]]
    previous: Mapping[str, Mapping[str, Any]] | None = None
    changed_fields: tuple[str, ...] = ()
    merged_into_id: str | None = None
    # Users who may see the item (webhooks send only what their acting user may see).
    permitted_user_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class PersonAddressesChanged:
    company_id: int
    person_id: int
    added: frozenset[str] = field(default_factory=frozenset)  # normalized addresses
    removed: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ItemsMerged:
    company_id: int
    merged_id: int  # gone
    into_id: int  # kept


@dataclass(frozen=True)
class DealStatusChanged:
    company_id: int
    deal_id: int
    person_id: int | None
    old_status: str | None
    new_status: str  # open | won | lost | deleted


@dataclass(frozen=True)
class MailReceived:
    """New mail reached an account by sync (not a first sync or a reconcile: old mail is never
    replayed). Published after commit; notifications and automations subscribe."""

    company_id: int
    account_id: int
    message_ids: tuple[int, ...]


@dataclass(frozen=True)
class MailActionsQueued:
    """The inbox wrote provider actions (archive, delete, read, … in the mailbox) for a two-way
    account. Published inside the inbox's transaction; mailsync queues their run after commit."""

    company_id: int
    run_after: datetime  # when the first of them is due (after the undo window)


@dataclass(frozen=True)
class MailOutboxQueued:
    """The inbox queued a message to send (the outbox, inbox.sending). Published inside the
    inbox's transaction; mailsync queues its delivery after commit."""

    company_id: int
    account_id: int
    not_before: datetime  # when the first of them may leave


@dataclass(frozen=True)
class MailDraftsChanged:
    """The inbox saved, sent or discarded a draft (inbox.drafts), whose copy in the account's
    Drafts folder is to be written or removed. Published after commit; mailsync queues a run
    of the account's drafts for `due`."""

    company_id: int
    account_id: int
    due: datetime  # when the draft's server copy is to be written or removed


Handler = Callable[[Any], None]
_handlers: dict[str, list[Handler]] = defaultdict(list)


def subscribe(topic: str, handler: Handler) -> None:
    if handler not in _handlers[topic]:
        _handlers[topic].append(handler)


def unsubscribe(topic: str, handler: Handler) -> None:
    if handler in _handlers[topic]:
        _handlers[topic].remove(handler)


def publish(topic: str, event: object) -> None:
    for handler in list(_handlers[topic]):
        handler(event)
