"""The recorder (`tracking.flush`) with real Redis and PostgreSQL: hits written to the stream and
the spool by hand, in the contract's format, for messages sent with tracking through
`inbox.sending` (the main one delivered for real through the outbox to aiosmtpd and Dovecot).

Recorded once each with who they are from; the message's counts and first times, the
conversation's icons' columns and the sender's notification (once) follow what was new; the
sender's own click (their session mark), a Gmail proxy's open and a scanner's click count
for nobody; unknown tokens and malformed entries are dropped; company B's hits land in company
B only; the spool is recorded once; a recorder killed between its commit and its
acknowledgement loses and doubles nothing; reads follow the conversation's visibility."""

from __future__ import annotations

import email
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from redis import Redis

from crm import tenancy
from inbox import rawstore, sending, tracking, trackmarks
from inbox.models import MailMessage, MailOutbound, TrackingKind, TrackingSource
from tests.conftest import Cast, _build_cast
from tests.inbox.test_architecture import selector_facts
from tests.tracking.conftest import (
    BODY,
    CHROME_WINDOWS,
    GMAIL_PROXY,
    OFFER,
    OUTLOOK_DESKTOP,
    Buffer,
    Rig,
    events,
    notifications,
    outbound_row,
    queued_account,
    send,
    spool_add,
    spool_tokens,
    thread_of,
)
from tracking import flush, sessions, tasks

pytestmark = pytest.mark.services

PRICES = "https://acme.test/pricing?plan=team&seats=5"


def raw_of(company_id: int, outbound: MailOutbound) -> bytes:
    """The bytes the server is handed: a tracked message's marked bytes are kept apart
    (`delivery_raw_path`; the kept copy has no marks), an untracked one's are the kept ones."""
    with tenancy.bound(company_id):
        row = MailOutbound.objects.for_company(company_id).select_related("message")
        found = row.get(pk=outbound.pk)
    if found.track_opens or found.track_links:
        assert found.delivery_raw_path, "a tracked message keeps its marked bytes apart"
        return rawstore.raw_read(found.delivery_raw_path)
    assert found.delivery_raw_path == ""
    return rawstore.raw_read(found.message.raw_path)


def stored_html(company_id: int, outbound: MailOutbound) -> str:
    with tenancy.bound(company_id):
        return MailMessage.objects.for_company(company_id).get(pk=outbound.message_id).body_html


def parts(raw: bytes) -> tuple[str, str]:
    """(HTML part, plain-text part) of a message's bytes."""
    parsed = email.message_from_bytes(raw, policy=policy.default)
    html_part = parsed.get_body(("html",))
    text_part = parsed.get_body(("plain",))
    assert html_part is not None
    assert text_part is not None
    return str(html_part.get_content()), str(text_part.get_content())


def signed_in_mark(user: Any) -> str:
    """Sign the user in, make one request through the middleware, and return the session's
    mark, as the tracking endpoints would compute it from the cookie."""
    client = Client()
    client.force_login(user)
    client.get("/inbox")
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    return trackmarks.session_mark(trackmarks.tracking_key(django_settings.SECRET_KEY), cookie)


# --- The main flow -------------------------------------------------------------------------------


def test_a_tracked_message_is_sent_marked_and_its_hits_are_recorded_once(
    rig: Rig, buffer: Buffer, cast: Cast
) -> None:
    outbound = rig.send()
    company_id = rig.company_id

    # What is sent carries the marks; what we keep and show does not.
    row = outbound_row(company_id, outbound.pk)
    assert (row.track_opens, row.track_links) == (True, True)
    assert row.tracked_links == [OFFER, PRICES]  # the mailto: link is not tracked
    html, text = parts(raw_of(company_id, outbound))
    pixel = trackmarks.pixel_url(django_settings.CRM_TRACKING_URL, row.token)
    assert html.index(pixel) < html.index("Dear Pat")
    assert html.index("<body>") < html.index(pixel) < html.index("<body>") + 20
    key = trackmarks.tracking_key(django_settings.SECRET_KEY)
    base = django_settings.CRM_TRACKING_URL
    assert trackmarks.link_url(base, key, row.token, 0) in html
    assert trackmarks.link_url(base, key, row.token, 1) in html
    assert OFFER not in html
    assert "mailto:alice@acme.test" in html
    assert f"({OFFER})" in text
    assert "/t/c/" not in text
    assert "/t/o/" not in text
    stored = stored_html(company_id, outbound)
    assert "/t/o/" not in stored
    assert "/t/c/" not in stored
    assert OFFER in stored

    rig.deliver()
    sent = outbound_row(company_id, outbound.pk)
    assert sent.sent_at is not None
    thread = thread_of(company_id, outbound)
    assert (thread.tracked_opened_at, thread.tracked_clicked_at) == (None, None)

    at = sent.sent_at + timedelta(minutes=30)
    buffer.add(
        row.token, ua=GMAIL_PROXY, ip="66.249.84.10", at=sent.sent_at + timedelta(seconds=40)
    )
    buffer.add(row.token, ua=OUTLOOK_DESKTOP, at=at)
    buffer.add(row.token, ua=OUTLOOK_DESKTOP, at=at + timedelta(minutes=5))
    buffer.add(row.token, kind="c", link="1", ua=CHROME_WINDOWS, at=at + timedelta(minutes=6))
    buffer.add(
        row.token, kind="c", link="0", ua=CHROME_WINDOWS, at=sent.sent_at + timedelta(seconds=2)
    )

    outcome = buffer.flush()

    assert (outcome.busy, outcome.read, outcome.recorded, outcome.dropped) == (False, 5, 5, 0)
    assert (buffer.length(), buffer.pending()) == (0, 0)  # acknowledged and deleted
    recorded = events(company_id)
    assert [(e.kind, e.source, e.link_number, e.url) for e in recorded] == [
        (TrackingKind.CLICK, TrackingSource.SCANNER, 0, OFFER),
        (TrackingKind.OPEN, TrackingSource.MACHINE, None, ""),
        (TrackingKind.OPEN, TrackingSource.PERSON, None, ""),
        (TrackingKind.OPEN, TrackingSource.PERSON, None, ""),
        (TrackingKind.CLICK, TrackingSource.PERSON, 1, PRICES),
    ]
    person_open = recorded[2]
    assert (person_open.client, person_open.device, str(person_open.ip)) == (
        "Outlook",
        "desktop",
        "198.51.100.7",
    )
    assert person_open.user_agent == OUTLOOK_DESKTOP
    assert person_open.recipient == ""  # one copy to all recipients: tracked per message
    assert recorded[0].source_detail == "Clicked seconds after delivery"
    assert "Gmail" in recorded[1].source_detail
    assert all(e.event_key.startswith("h:") for e in recorded)

    counted = outbound_row(company_id, outbound.pk)
    assert (counted.open_count, counted.machine_open_count, counted.click_count) == (2, 1, 1)
    assert counted.opened_at == at
    assert counted.clicked_at == at + timedelta(minutes=6)
    thread = thread_of(company_id, outbound)
    assert thread.tracked_opened_at == at + timedelta(minutes=5)  # the latest, for the icons
    assert thread.tracked_clicked_at == at + timedelta(minutes=6)

    sent_notes = notifications(company_id)
    assert [(n.user_id, n.kind, n.title, n.subject_key) for n in sent_notes] == [
        (
            cast.alice.pk,
            tracking.NOTIFY_OPENED,
            "Pat Customer opened “Quote”",
            f"open:{outbound.message_id}",
        ),
        (
            cast.alice.pk,
            tracking.NOTIFY_CLICKED,
            "Pat Customer clicked a link in “Quote”",
            f"click:{outbound.message_id}",
        ),
    ]
    assert sent_notes[0].url == f"/inbox?folder=sent&thread={thread.pk}"
    assert sent_notes[0].body == "Outlook, desktop"
    assert sent_notes[1].body == PRICES

    # More opens later: counted, the latest moves on, nobody is notified again.
    buffer.add(row.token, ua=OUTLOOK_DESKTOP, at=at + timedelta(days=1))
    assert buffer.flush().recorded == 1
    again = outbound_row(company_id, outbound.pk)
    assert (again.open_count, again.opened_at) == (3, at)
    assert thread_of(company_id, outbound).tracked_opened_at == at + timedelta(days=1)
    assert len(notifications(company_id)) == 2

    # Who may see the conversation sees its tracking: Alice; not Bob (not her mailbox, not
    # shared on an item), not Carol.
    alice = cast.membership(cast.alice, cast.company_a)
    with tenancy.bound(company_id, user_id=cast.alice.pk):
        summary = tracking.message_tracking(membership=alice, message_ids=[outbound.message_id])
        timeline = tracking.message_events(membership=alice, message_id=outbound.message_id)
    seen = summary[outbound.message_id]
    assert (seen.track_opens, seen.open_count, seen.machine_open_count, seen.click_count) == (
        True,
        3,
        1,
        1,
    )
    assert [e.occurred_at for e in seen.events] == sorted(
        (e.occurred_at for e in seen.events), reverse=True
    )
    assert len(seen.events) == len(timeline) == 6
    bob = cast.membership(cast.bob, cast.company_a)
    with tenancy.bound(company_id, user_id=cast.bob.pk):
        assert tracking.message_tracking(membership=bob, message_ids=[outbound.message_id]) == {}
        assert tracking.message_events(membership=bob, message_id=outbound.message_id) == []
    carol = cast.membership(cast.carol, cast.company_b)
    with tenancy.bound(cast.company_b.pk, user_id=cast.carol.pk):
        assert tracking.message_tracking(membership=carol, message_ids=[outbound.message_id]) == {}
        assert tracking.message_events(membership=carol, message_id=outbound.message_id) == []


def test_the_reads_ask_visibility_as_the_architecture_test_asks_of_selectors() -> None:
    source = (Path(tracking.__file__)).read_text(encoding="utf-8")
    facts = selector_facts(source)
    for read in ("message_tracking", "message_events"):
        assert facts[read].touches_mail, read
        assert facts[read].asks_visibility, read


# --- Who it was ----------------------------------------------------------------------------------


def test_the_senders_own_click_is_theirs_and_notifies_nobody(cast: Cast, buffer: Buffer) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    account = queued_account(cast.company_a, cast.alice)
    outbound = send(alice, account)
    alice_mark = signed_in_mark(cast.alice)
    bob_mark = signed_in_mark(cast.bob)  # Bob is signed in too, but it is not his mailbox
    try:
        later = datetime.now(UTC) + timedelta(hours=1)
        buffer.add(
            outbound.token, kind="c", link="0", ua=CHROME_WINDOWS, at=later, session=alice_mark
        )
        buffer.add(outbound.token, ua=CHROME_WINDOWS, at=later, session=alice_mark)
        assert buffer.flush().recorded == 2
        assert {e.source for e in events(cast.company_a.pk)} == {TrackingSource.SENDER}
        row = outbound_row(cast.company_a.pk, outbound.pk)
        assert (row.open_count, row.click_count, row.opened_at, row.clicked_at) == (
            0,
            0,
            None,
            None,
        )
        assert notifications(cast.company_a.pk) == []

        buffer.add(
            outbound.token, kind="c", link="0", ua=CHROME_WINDOWS, at=later, session=bob_mark
        )
        assert buffer.flush().recorded == 1
        assert events(cast.company_a.pk)[-1].source == TrackingSource.PERSON
        assert [n.kind for n in notifications(cast.company_a.pk)] == [tracking.NOTIFY_CLICKED]
    finally:
        buffer.client.delete(sessions.session_key(alice_mark), sessions.session_key(bob_mark))


def test_a_gmail_proxy_open_is_a_machine_open_and_notifies_nobody(
    cast: Cast, buffer: Buffer
) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    outbound = send(alice, queued_account(cast.company_a, cast.alice))
    buffer.add(outbound.token, ua=GMAIL_PROXY, ip="66.249.84.10")
    assert tasks.hits_flush()["recorded"] == 1  # beat's task, as it runs
    [event] = events(cast.company_a.pk)
    assert (event.source, event.client) == (TrackingSource.MACHINE, "Gmail")
    row = outbound_row(cast.company_a.pk, outbound.pk)
    assert (row.open_count, row.machine_open_count, row.opened_at) == (0, 1, None)
    assert notifications(cast.company_a.pk) == []


def test_with_several_recipients_the_notification_does_not_pretend_to_know_who(
    cast: Cast, buffer: Buffer
) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    outbound = send(
        alice,
        queued_account(cast.company_a, cast.alice),
        cc=["Quinn Buyer <quinn@customer.test>"],
        bcc=["boss@acme.test"],
    )
    buffer.add(outbound.token, ua=OUTLOOK_DESKTOP)
    assert buffer.flush().recorded == 1
    [note] = notifications(cast.company_a.pk)
    assert note.title == "A recipient opened “Quote” (to Pat Customer and 2 more)"
    assert note.url == "/inbox?folder=sent"  # not in a conversation yet (never delivered here)


def test_the_session_is_recorded_at_most_once_an_hour(cast: Cast, buffer: Buffer) -> None:
    client = Client()
    client.force_login(cast.alice)
    client.get("/inbox")
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    mark = trackmarks.session_mark(trackmarks.tracking_key(django_settings.SECRET_KEY), cookie)
    key = sessions.session_key(mark)
    try:
        assert buffer.client.get(key) == str(cast.alice.pk).encode()
        assert 0 < buffer.client.ttl(key) <= django_settings.SESSION_COOKIE_AGE
        buffer.client.delete(key)
        client.get("/inbox")  # within the hour: not written again
        assert buffer.client.get(key) is None
        assert sessions.session_users(buffer.client, [mark, "0" * 32]) == {}
        Client().get("/inbox")  # signed out: no cookie, nothing recorded
    finally:
        buffer.client.delete(key)


# --- What is dropped, and whose it is ------------------------------------------------------------


def test_unknown_tokens_and_malformed_entries_are_dropped_and_let_go(
    cast: Cast, buffer: Buffer
) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    outbound = send(alice, queued_account(cast.company_a, cast.alice))
    untracked = send(
        alice, queued_account(cast.company_a, cast.alice), track_opens=False, track_links=False
    )
    buffer.add("f" * 32)  # no such message
    buffer.add(untracked.token)  # a message sent untracked: the door does not know it
    buffer.add(outbound.token, kind="x")
    buffer.add(outbound.token.upper()[:31])
    buffer.add(outbound.token, kind="c", link="one")
    buffer.add(outbound.token, kind="c", link="7")  # the message has two links
    buffer.client.xadd(buffer.stream, {"t": outbound.token, "k": "o"})  # no time
    buffer.client.xadd(buffer.stream, {"t": outbound.token, "k": "o", "at": "soon"})

    outcome = buffer.flush()

    assert (outcome.read, outcome.recorded, outcome.failed) == (8, 0, 0)
    assert (buffer.length(), buffer.pending()) == (0, 0)
    assert events(cast.company_a.pk) == []


def test_company_bs_hits_land_in_company_b_only(cast: Cast, buffer: Buffer) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    carol = cast.membership(cast.carol, cast.company_b)
    ours = send(alice, queued_account(cast.company_a, cast.alice))
    theirs = send(carol, queued_account(cast.company_b, cast.carol), subject="Globex offer")
    buffer.add(theirs.token)
    buffer.add(ours.token)
    buffer.add(theirs.token, kind="c", link="0", at=datetime.now(UTC) + timedelta(hours=1))

    assert buffer.flush().recorded == 3

    in_a, in_b = events(cast.company_a.pk), events(cast.company_b.pk)
    assert [(e.outbound_id, e.company_id) for e in in_a] == [(ours.pk, cast.company_a.pk)]
    assert {(e.outbound_id, e.company_id) for e in in_b} == {(theirs.pk, cast.company_b.pk)}
    assert [n.user_id for n in notifications(cast.company_a.pk)] == [cast.alice.pk]
    assert {n.user_id for n in notifications(cast.company_b.pk)} == {cast.carol.pk}
    assert all("Globex offer" in n.title for n in notifications(cast.company_b.pk))
    # The service itself refuses a hit naming another company's message.
    with tenancy.bound(cast.company_a.pk):
        assert (
            tracking.events_record(
                company_id=cast.company_a.pk,
                hits=[
                    tracking.Hit(
                        event_key="forged",
                        outbound_id=theirs.pk,
                        kind=TrackingKind.OPEN,
                        occurred_at=datetime.now(UTC),
                        source=TrackingSource.PERSON,
                    )
                ],
            )
            == 0
        )


# --- The spool -----------------------------------------------------------------------------------


def test_spooled_hits_are_recorded_once_and_deleted(cast: Cast, buffer: Buffer) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    outbound = send(alice, queued_account(cast.company_a, cast.alice))
    later = datetime.now(UTC) + timedelta(hours=1)
    spool_add(outbound.token, ua=OUTLOOK_DESKTOP, at=later)
    spool_add(outbound.token, kind="c", link=1, ua=CHROME_WINDOWS, at=later)
    spool_add("e" * 32)
    spool_add(outbound.token, kind="?")

    outcome = buffer.flush()

    assert outcome.recorded == 2
    recorded = events(cast.company_a.pk)
    assert [(e.kind, e.source, e.url) for e in recorded] == [
        (TrackingKind.OPEN, TrackingSource.PERSON, ""),
        (TrackingKind.CLICK, TrackingSource.PERSON, PRICES),
    ]
    assert all(e.event_key.startswith("h:") for e in recorded)
    assert outbound.token not in spool_tokens()
    assert "e" * 32 not in spool_tokens()
    assert buffer.flush().recorded == 0
    row = outbound_row(cast.company_a.pk, outbound.pk)
    assert (row.open_count, row.click_count) == (1, 1)


def test_a_hit_in_the_stream_and_in_the_spool_is_one_event(cast: Cast, buffer: Buffer) -> None:
    """The endpoint's connection broke after Redis wrote an XADD but before its answer: the
    hit was spooled too. Both copies say the same to the microsecond: one event."""
    alice = cast.membership(cast.alice, cast.company_a)
    outbound = send(alice, queued_account(cast.company_a, cast.alice))
    at = datetime.now(UTC).replace(microsecond=123456) + timedelta(hours=1)
    buffer.add(outbound.token, at=at)
    spool_add(outbound.token, at=at)
    spool_add(outbound.token, at=at + timedelta(microseconds=1))  # another hit, a µs later

    outcome = buffer.flush()

    assert outcome.recorded == 2
    recorded = events(cast.company_a.pk)
    assert [e.occurred_at for e in recorded] == [at, at + timedelta(microseconds=1)]
    assert outbound_row(cast.company_a.pk, outbound.pk).open_count == 2
    assert outbound.token not in spool_tokens()
    assert buffer.length() == 0


def test_with_redis_down_the_spool_is_recorded_all_but_hits_whose_session_is_unknown(
    cast: Cast, buffer: Buffer
) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    outbound = send(alice, queued_account(cast.company_a, cast.alice))
    later = datetime.now(UTC) + timedelta(hours=1)
    spool_add(outbound.token, ua=OUTLOOK_DESKTOP, at=later)
    spool_add(outbound.token, kind="c", link=0, ua=CHROME_WINDOWS, at=later, session="ab" * 16)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    dead = Redis.from_url(f"redis://127.0.0.1:{closed}/0", socket_connect_timeout=1)

    down = flush.hits_flush(client=dead)

    assert (down.redis_down, down.recorded, down.failed) == (True, 1, 1)
    assert spool_tokens().count(outbound.token) == 1  # the click waits for Redis
    assert [e.kind for e in events(cast.company_a.pk)] == [TrackingKind.OPEN]
    back = buffer.flush()
    assert (back.redis_down, back.recorded) == (False, 1)
    assert outbound.token not in spool_tokens()
    assert events(cast.company_a.pk)[-1].source == TrackingSource.PERSON  # no such session


def test_one_recorder_at_a_time(cast: Cast, buffer: Buffer) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    outbound = send(alice, queued_account(cast.company_a, cast.alice))
    buffer.add(outbound.token)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [flush._LOCK_NAMESPACE, flush._LOCK_KEY])
        assert buffer.flush().busy
        assert buffer.length() == 1
        other.execute("SELECT pg_advisory_unlock(%s, %s)", [flush._LOCK_NAMESPACE, flush._LOCK_KEY])
    assert buffer.flush().recorded == 1


# --- Edit and retry, text only -------------------------------------------------------------------


def test_edit_and_retry_marks_the_new_text_with_the_same_token(cast: Cast) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    account = queued_account(cast.company_a, cast.alice)
    outbound = send(alice, account)
    company_id = cast.company_a.pk
    with tenancy.bound(company_id, user_id=cast.alice.pk):
        sending.outbound_cancel(membership=alice, message_id=outbound.message_id)
        sending.outbound_retry(
            membership=alice,
            message_id=outbound.message_id,
            draft=sending.Draft(
                account_id=account.pk,
                to=["Pat Customer <pat@customer.test>"],
                subject="Quote, corrected",
                body_html="<p>The right <a href='https://acme.test/offer-v2'>offer</a>.</p>",
                track_opens=True,
                track_links=True,
            ),
        )
    row = outbound_row(company_id, outbound.pk)
    assert row.token == outbound.token
    assert row.tracked_links == ["https://acme.test/offer-v2"]
    html, text = parts(raw_of(company_id, outbound))
    key = trackmarks.tracking_key(django_settings.SECRET_KEY)
    base = django_settings.CRM_TRACKING_URL
    assert trackmarks.link_url(base, key, outbound.token, 0) in html
    assert trackmarks.pixel_url(base, outbound.token) in html
    assert "https://acme.test/offer-v2" in text
    assert "/t/" not in stored_html(company_id, outbound)


def test_a_text_only_message_tracks_nothing_and_says_so(cast: Cast) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    outbound = send(
        alice,
        queued_account(cast.company_a, cast.alice),
        body_html="",
        body_text="See https://acme.test/offer",
    )
    row = outbound_row(cast.company_a.pk, outbound.pk)
    assert (row.track_opens, row.track_links, row.tracked_links) == (False, False, [])
    raw = raw_of(cast.company_a.pk, outbound)
    assert b"/t/o/" not in raw
    assert b"/t/c/" not in raw
    # Links tracked only when there are some: the pixel alone otherwise.
    plain = send(alice, queued_account(cast.company_a, cast.alice), body_html="<p>No links</p>")
    assert (outbound_row(cast.company_a.pk, plain.pk).track_opens, plain.track_links) == (
        True,
        False,
    )


def test_an_untracked_message_is_stored_as_before(cast: Cast) -> None:
    alice = cast.membership(cast.alice, cast.company_a)
    outbound = send(
        alice, queued_account(cast.company_a, cast.alice), track_opens=False, track_links=False
    )
    html, _ = parts(raw_of(cast.company_a.pk, outbound))
    assert "/t/" not in html
    assert stored_html(cast.company_a.pk, outbound).replace("\r\n", "\n") == html.replace(
        "\r\n", "\n"
    )
    assert BODY.replace("'", '"').split("<a")[0] in html


# --- Killed mid-batch ----------------------------------------------------------------------------

_RECORDER = """
import time
from pathlib import Path
from tracking import flush

def stop_here(keys):
    # The batch's events are committed; its entries are not acknowledged yet.
    Path({marker!r}).write_text(",".join(keys))
    time.sleep(300)

flush.after_commit = stop_here
flush.hits_flush(consumer="doomed", seconds=60, spool=False)
"""


def _database_url() -> str:
    params = connection.settings_dict
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return (
        f"postgresql://{params['USER']}{password}@{params['HOST'] or '127.0.0.1'}:"
        f"{params['PORT'] or 5432}/{params['NAME']}"
    )


def test_a_recorder_killed_after_its_commit_loses_and_doubles_nothing(
    transactional_db: None, buffer: Buffer, settings: Any, tmp_path: Path
) -> None:
    cast = _build_cast()
    alice = cast.membership(cast.alice, cast.company_a)
    outbound = send(alice, queued_account(cast.company_a, cast.alice))
    later = datetime.now(UTC) + timedelta(hours=1)
    first = [buffer.add(outbound.token, at=later + timedelta(seconds=n)) for n in range(3)]
    marker = tmp_path / "committed"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CRM_TRACKING_STREAM": buffer.stream,
    }
    recorder = subprocess.Popen(  # noqa: S603 - our own command
        [
            sys.executable,
            str(settings.BASE_DIR / "manage.py"),
            "shell",
            "-c",
            _RECORDER.format(marker=str(marker)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert recorder.poll() is None, recorder.communicate()
            assert time.monotonic() < deadline, "the recorder never committed"
            time.sleep(0.05)
        # Committed, not acknowledged: the events are in, the entries still pending.
        assert sorted(marker.read_text().split(",")) == sorted(first)
        assert len(events(cast.company_a.pk)) == 3
        assert buffer.pending() == 3
        os.kill(recorder.pid, signal.SIGKILL)
        recorder.wait(timeout=10)
    finally:
        if recorder.poll() is None:
            recorder.kill()
    # Hits keep coming while no recorder runs.
    buffer.add(outbound.token, at=later + timedelta(minutes=1))
    buffer.add(outbound.token, kind="c", link="0", at=later + timedelta(minutes=2))

    # The next recorder claims what the dead one left (idle: at once here, a minute in life)
    # once PostgreSQL has ended the dead one's session and its lock.
    deadline = time.monotonic() + 10
    while (outcome := buffer.flush(consumer="survivor", claim_idle_ms=0)).busy:
        assert time.monotonic() < deadline, "the dead recorder's lock was kept"
        time.sleep(0.1)

    assert (outcome.read, outcome.recorded) == (5, 2)  # three again, dropped by their keys
    assert (buffer.length(), buffer.pending()) == (0, 0)
    recorded = events(cast.company_a.pk)
    assert len(recorded) == 5
    assert len({e.event_key for e in recorded}) == 5
    row = outbound_row(cast.company_a.pk, outbound.pk)
    assert (row.open_count, row.click_count) == (4, 1)
    assert len(notifications(cast.company_a.pk)) == 2  # one open, one click: once each
    consumers = {
        info["name"].decode() for info in buffer.client.xinfo_consumers(buffer.stream, flush.GROUP)
    }
    assert "doomed" in consumers  # forgotten only after an hour of idleness
