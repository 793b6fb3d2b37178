"""Threading (DESIGN.md, Mail data model): which conversation of an account each message of a
batch belongs to. Pure: it sees the batch and the account's existing thread keys, nothing else.

Layers, strongest first:
1. Message-IDs: a message joins the thread that holds or references its own Message-ID or any
   Message-ID it references (References, In-Reply-To). Our own outgoing Message-IDs carry our
   thread token, so replies to them land here too. A reply that arrives before its parent
   registers the parent's id as a key of its thread, so the parent joins it when it comes.
   Two threads that turn out to be one (a message references both) are merged.
2. The provider's thread id (Gmail threadId), when the adapter gives one.
3. For a message that references nothing: the same normalized subject among the same
   participants within `SUBJECT_WINDOW` of the thread's latest message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SUBJECT_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class ThreadInput:
    """What threading needs of a message."""

    message_id: str
    references: tuple[str, ...]
    thread_subject: str
    addresses: frozenset[str]  # every participant address
    when: datetime  # the Date header, else the arrival time
    provider_thread_id: str = ""


@dataclass(frozen=True, slots=True)
class KnownKey:
    thread_id: int
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class NewThread:
    """A thread the store creates; equal numbers are the same new thread."""

    number: int


ThreadRef = int | NewThread


@dataclass(frozen=True, slots=True)
class ThreadPlan:
    assignments: tuple[ThreadRef, ...]  # one per input message, in order
    merges: Mapping[int, int]  # existing thread id → the existing thread it merges into
    new_thread_count: int
    # key → thread it now points to, with the time of the latest message carrying it
    keys: Mapping[str, tuple[ThreadRef, datetime]]


def id_key(message_id: str) -> str:
    return f"id:{message_id}"


def subject_key(thread_subject: str, addresses: frozenset[str]) -> str:
    return "subject:" + thread_subject + "|" + ",".join(sorted(a for a in addresses if a))


def message_keys(message: ThreadInput) -> list[str]:
    """The keys a message registers for its thread (and looks up)."""
    keys = [id_key(ref) for ref in message.references if ref]
    if message.message_id:
        keys.append(id_key(message.message_id))
    if message.provider_thread_id:
        keys.append(f"provider:{message.provider_thread_id}")
    if message.thread_subject and any(message.addresses):
        keys.append(subject_key(message.thread_subject, message.addresses))
    return keys


_Node = tuple[str, int]  # ("message", index in the batch) or ("thread", stored thread id)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[_Node, _Node] = {}

    def find(self, node: _Node) -> _Node:
        self.parent.setdefault(node, node)
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:  # path compression
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: _Node, b: _Node) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[root_b] = root_a


def plan_threads(messages: Sequence[ThreadInput], known: Mapping[str, KnownKey]) -> ThreadPlan:
    """Assign each message of one account's batch to an existing or a new thread.

    `known` holds the account's stored keys among those the batch's messages carry (one
    indexed read by the caller: `message_keys` of every message)."""
    union = _UnionFind()
    # key → first message of the batch carrying it, and the latest time it was seen: the
    # same view of a key the store keeps between batches (`KnownKey`), so a batch's size
    # never changes the outcome.
    first_in_batch: dict[str, int] = {}
    latest_in_batch: dict[str, datetime] = {}
    for index, message in enumerate(messages):
        node: _Node = ("message", index)
        union.find(node)
        strong = False
        for key in message_keys(message):  # Message-ID keys first, the subject key last
            is_subject = key.startswith("subject:")
            # The subject layer is for messages that reference nothing.
            if not (is_subject and (strong or message.references)):
                stored = known.get(key)
                if stored is not None and not (
                    is_subject and abs(message.when - stored.last_seen_at) > SUBJECT_WINDOW
                ):
                    union.union(node, ("thread", stored.thread_id))
                    strong = strong or not is_subject
                other = first_in_batch.get(key)
                if other is not None and not (
                    is_subject and abs(message.when - latest_in_batch[key]) > SUBJECT_WINDOW
                ):
                    union.union(node, ("message", other))
            first_in_batch.setdefault(key, index)
            if key not in latest_in_batch or latest_in_batch[key] < message.when:
                latest_in_batch[key] = message.when

    # Each component: the oldest (lowest id) existing thread wins, the others merge into it.
    members: dict[_Node, list[_Node]] = {}
    for node in list(union.parent):
        members.setdefault(union.find(node), []).append(node)
    target_of_root: dict[_Node, ThreadRef] = {}
    merges: dict[int, int] = {}
    new_count = 0
    for index in range(len(messages)):
        root = union.find(("message", index))
        if root in target_of_root:
            continue
        existing = sorted(node[1] for node in members[root] if node[0] == "thread")
        if existing:
            target: ThreadRef = existing[0]
            for other_id in existing[1:]:
                merges[other_id] = existing[0]
        else:
            target = NewThread(new_count)
            new_count += 1
        target_of_root[root] = target

    assignments = tuple(target_of_root[union.find(("message", i))] for i in range(len(messages)))
    keys: dict[str, tuple[ThreadRef, datetime]] = {}
    for message, target in zip(messages, assignments, strict=True):
        for key in message_keys(message):
            previous = keys.get(key)
            if previous is None or previous[1] < message.when:
                keys[key] = (target, message.when)
    # Keys of merged threads that this batch did not touch are moved by the store.
    return ThreadPlan(assignments=assignments, merges=merges, new_thread_count=new_count, keys=keys)
