"""Threading decisions, pure (no database): Message-IDs first, then provider thread ids, then
subject and participants within a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailsync.pipeline.threads import (
    KnownKey,
    NewThread,
    ThreadInput,
    id_key,
    plan_threads,
    subject_key,
)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
PEOPLE = frozenset({"pat@customer.test", "alice@acme.test"})


def mail(
    message_id: str,
    *refs: str,
    subject: str = "quote",
    when: datetime = T0,
    addresses: frozenset[str] = PEOPLE,
) -> ThreadInput:
    return ThreadInput(
        message_id=message_id,
        references=refs,
        thread_subject=subject,
        addresses=addresses,
        when=when,
    )


def test_a_reply_joins_the_thread_holding_its_parent() -> None:
    known = {id_key("a@x"): KnownKey(thread_id=7, last_seen_at=T0)}
    plan = plan_threads([mail("b@x", "a@x")], known)
    assert plan.assignments == (7,)
    assert plan.new_thread_count == 0


def test_messages_of_one_batch_that_reference_each_other_share_a_new_thread() -> None:
    plan = plan_threads([mail("a@x"), mail("b@x", "a@x"), mail("c@y", subject="other")], {})
    assert plan.assignments == (NewThread(0), NewThread(0), NewThread(1))
    assert plan.new_thread_count == 2


def test_reply_before_parent_is_reattached() -> None:
    # The reply came first and registered its parent's id as a key of its thread.
    known = {id_key("parent@x"): KnownKey(thread_id=3, last_seen_at=T0)}
    plan = plan_threads([mail("parent@x")], known)
    assert plan.assignments == (3,)


def test_a_message_referencing_two_threads_merges_them_into_the_older() -> None:
    known = {
        id_key("a@x"): KnownKey(thread_id=5, last_seen_at=T0),
        id_key("b@x"): KnownKey(thread_id=9, last_seen_at=T0),
    }
    plan = plan_threads([mail("c@x", "a@x", "b@x")], known)
    assert plan.assignments == (5,)
    assert dict(plan.merges) == {9: 5}


def test_same_subject_and_people_join_within_the_window_only() -> None:
    key = subject_key("quote", PEOPLE)
    known = {key: KnownKey(thread_id=4, last_seen_at=T0)}
    near = plan_threads([mail("n@x", when=T0 + timedelta(days=3))], known)
    far = plan_threads([mail("f@x", when=T0 + timedelta(days=90))], known)
    others = plan_threads([mail("o@x", addresses=frozenset({"someone@else.test"}), when=T0)], known)
    assert near.assignments == (4,)
    assert far.assignments == (NewThread(0),)
    assert others.assignments == (NewThread(0),)


def test_a_reply_with_references_never_joins_by_subject() -> None:
    known = {subject_key("quote", PEOPLE): KnownKey(thread_id=4, last_seen_at=T0)}
    plan = plan_threads([mail("r@x", "unknown-parent@x")], known)
    assert plan.assignments == (NewThread(0),)


def test_keys_point_at_the_target_with_the_latest_time() -> None:
    plan = plan_threads(
        [mail("a@x", when=T0), mail("b@x", "a@x", when=T0 + timedelta(hours=1))], {}
    )
    target, seen = plan.keys[id_key("a@x")]
    assert target == NewThread(0)
    assert seen == T0 + timedelta(hours=1)


def _grouping_in_batches(messages: list[ThreadInput], size: int) -> list[set[int]]:
    """Thread the messages `size` at a time, keeping keys between batches as the store does;
    return the groups of message indexes."""
    known: dict[str, KnownKey] = {}
    thread_of: dict[int, int] = {}
    next_id = 1
    for start in range(0, len(messages), size):
        batch = messages[start : start + size]
        plan = plan_threads(batch, known)
        new_ids = list(range(next_id, next_id + plan.new_thread_count))
        next_id += plan.new_thread_count

        def resolve(ref: int | NewThread, new_ids: list[int] = new_ids) -> int:
            return new_ids[ref.number] if isinstance(ref, NewThread) else ref

        for gone, into in plan.merges.items():
            thread_of = {m: (into if t == gone else t) for m, t in thread_of.items()}
            known = {
                k: KnownKey(into if v.thread_id == gone else v.thread_id, v.last_seen_at)
                for k, v in known.items()
            }
        for offset, ref in enumerate(plan.assignments):
            thread_of[start + offset] = resolve(ref)
        for key, (ref, seen) in plan.keys.items():
            previous = known.get(key)
            latest = max(seen, previous.last_seen_at) if previous else seen
            known[key] = KnownKey(resolve(ref), latest)
    groups: dict[int, set[int]] = {}
    for message, thread in thread_of.items():
        groups.setdefault(thread, set()).add(message)
    return sorted(groups.values(), key=min)


def test_the_batch_size_never_changes_the_threads() -> None:
    day = timedelta(days=1)
    # Newest first, as the first sync stores them.
    messages = [
        mail("r3@x", "a@x", "r1@x", when=T0 + 5 * day),
        mail("n2@x", subject="note", when=T0 + 4 * day),
        mail("r1@x", "a@x", when=T0 + 3 * day),
        mail("n1@x", subject="note", when=T0 + 2 * day),
        mail("q@x", subject="quote", when=T0 + day),  # no references: joins by subject
        mail("a@x", when=T0),
        mail("old@x", subject="note", when=T0 - 60 * day),  # too old to join the notes
    ]
    whole = _grouping_in_batches(messages, len(messages))
    for size in (1, 2, 3):
        assert _grouping_in_batches(messages, size) == whole
    assert {0, 2, 4, 5} in whole  # the quote's replies, and the reference-less "quote"
    assert {1, 3} in whole
    assert {6} in whole
