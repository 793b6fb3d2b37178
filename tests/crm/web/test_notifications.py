"""The bell and the notifications page (E2): the unread count in every page's header (one capped
count on the partial index, none in fragments), the list newest first, following one reads it,
mark one or all read; each user's own, in one company: Bob never sees Alice's, Carol nothing of
Acme's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm import notifications, tenancy
from crm.models import Company, Notification, User
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

BELL = re.compile(r'<a class="bell[^"]*" href="/notifications"[^>]*>.*?</a>', re.S)
ROW = re.compile(r'data-notification-id="(\d+)"')


def notify(
    user: User,
    company: Company,
    title: str,
    *,
    url: str = "/inbox?thread=1",
    key: str | None = None,
    ago: timedelta | None = None,
) -> Notification:
    with tenancy.bound(company.pk):
        assert notifications.notification_add(
            company_id=company.pk,
            user_id=user.pk,
            kind="tracking_open",
            title=title,
            body="Pat opened it.",
            url=url,
            subject_key=key or f"open:{title}",
        )
        found = Notification.objects.for_company(company).get(
            user=user, subject_key=key or f"open:{title}"
        )
        if ago is not None:
            Notification.objects.for_company(company).filter(pk=found.pk).update(
                created_at=timezone.now() - ago
            )
            found.refresh_from_db()
        return found


def fresh(notification: Notification) -> Notification:
    with tenancy.bound(notification.company_id):
        return Notification.objects.for_company(notification.company_id).get(pk=notification.pk)


def bell(html: str) -> str:
    found = BELL.search(html)
    assert found, "the bell is in the header"
    return found.group(0)


def bell_count(html: str) -> str | None:
    found = re.search(r"data-bell-count>([^<]*)<", bell(html))
    return found.group(1) if found else None


# --- The bell ------------------------------------------------------------------------------------


def test_the_bell_counts_the_users_unread_notifications_in_this_company(
    cast: Cast, alice_client: Client, bob_client: Client
) -> None:
    page = alice_client.get("/").content.decode()
    assert bell_count(page) is None
    assert ">Notifications<" in bell(page)

    notify(cast.alice, cast.company_a, "Pat opened “Quote”")
    notify(cast.alice, cast.company_a, "Pat clicked a link in “Quote”")
    read = notify(cast.alice, cast.company_a, "Lee opened “Hello”")
    with tenancy.bound(cast.company_a.pk):
        notifications.notification_read(
            company_id=cast.company_a.pk, user_id=cast.alice.pk, notification_id=read.pk
        )
    notify(cast.bob, cast.company_a, "Sam opened “Bob's offer”")

    alice_page = alice_client.get("/").content.decode()
    assert bell_count(alice_page) == "2"
    assert "Notifications: 2 unread" in bell(alice_page)
    assert bell_count(bob_client.get("/").content.decode()) == "1"


def test_the_bell_says_99_plus_and_costs_one_query(cast: Cast, alice_client: Client) -> None:
    with tenancy.bound(cast.company_a.pk):
        Notification.objects.bulk_create(
            Notification(
                company=cast.company_a,
                user=cast.alice,
                kind="tracking_open",
                title=f"Opened {n}",
                subject_key=f"open:{n}",
            )
            for n in range(130)
        )
    with CaptureQueriesContext(connection) as queries:
        page = alice_client.get("/").content.decode()
    assert bell_count(page) == "99+"
    assert "more than 99 unread" in bell(page)
    asked = [q["sql"] for q in queries.captured_queries if '"crm_notification"' in q["sql"]]
    assert len(asked) == 1
    assert "LIMIT 100" in asked[0]  # counting stops at the cap


def test_a_fragment_does_not_count_notifications(cast: Cast, alice_client: Client) -> None:
    notify(cast.alice, cast.company_a, "Pat opened “Quote”")
    with CaptureQueriesContext(connection) as queries:
        response = alice_client.get("/inbox/rows", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert not [q for q in queries.captured_queries if '"crm_notification"' in q["sql"]]


# --- The page ------------------------------------------------------------------------------------


def test_the_page_lists_the_users_notifications_newest_first(
    cast: Cast, alice_client: Client
) -> None:
    old = notify(cast.alice, cast.company_a, "Pat opened “Quote”", ago=timedelta(hours=3))
    new = notify(cast.alice, cast.company_a, "Lee clicked a link in “Offer”")
    notify(cast.bob, cast.company_a, "Bob's own")

    response = alice_client.get("/notifications")

    assert response.status_code == 200
    html = response.content.decode()
    assert [int(pk) for pk in ROW.findall(html)] == [new.pk, old.pk]
    assert "Bob&#x27;s own" not in html
    assert "Bob's own" not in html
    assert f'href="/notifications/{new.pk}/open"' in html
    assert "3\xa0hours ago" in html
    assert 'aria-current="page"' in bell(html)
    assert "Mark all read" in html


def test_following_a_notification_reads_it_and_goes_to_the_conversation(
    cast: Cast, alice_client: Client
) -> None:
    found = notify(cast.alice, cast.company_a, "Pat opened “Quote”", url="/inbox?thread=42")

    response = alice_client.get(f"/notifications/{found.pk}/open")

    assert response.status_code == 302
    assert response["Location"] == "/inbox?thread=42"
    first_read = fresh(found).read_at
    assert first_read is not None
    alice_client.get(f"/notifications/{found.pk}/open")
    assert fresh(found).read_at == first_read  # read once: the first time stays
    assert bell_count(alice_client.get("/").content.decode()) is None


def test_a_notification_never_leads_off_the_site(cast: Cast, alice_client: Client) -> None:
    for n, url in enumerate(("https://evil.test/x", "//evil.test/x", "javascript:alert(1)")):
        found = notify(cast.alice, cast.company_a, f"Odd {n}", url=url)
        response = alice_client.get(f"/notifications/{found.pk}/open")
        assert response.status_code == 302
        assert response["Location"] == "/notifications"


def test_mark_one_and_mark_all_read(cast: Cast, alice_client: Client, bob_client: Client) -> None:
    first = notify(cast.alice, cast.company_a, "First")
    second = notify(cast.alice, cast.company_a, "Second")
    third = notify(cast.alice, cast.company_a, "Third")
    bobs = notify(cast.bob, cast.company_a, "Bob's")

    response = alice_client.post(f"/notifications/{first.pk}/read")
    assert response.status_code == 302
    assert response["Location"] == "/notifications"
    assert fresh(first).read_at is not None
    assert fresh(second).read_at is None
    html = alice_client.get("/notifications").content.decode()
    assert f'action="/notifications/{first.pk}/read"' not in html
    assert f'action="/notifications/{second.pk}/read"' in html

    response = alice_client.post("/notifications/read-all", {"page": "2"})
    assert response["Location"] == "/notifications?page=2"
    assert fresh(second).read_at is not None
    assert fresh(third).read_at is not None
    assert fresh(bobs).read_at is None  # Alice's "all" is hers
    html = alice_client.get("/notifications").content.decode()
    assert "Mark all read" not in html
    assert bell_count(bob_client.get("/").content.decode()) == "1"


def test_bob_never_sees_or_reads_alices_notifications(
    cast: Cast, alice_client: Client, bob_client: Client
) -> None:
    alices = notify(cast.alice, cast.company_a, "Pat opened “Alice's quote”")

    assert bob_client.get(f"/notifications/{alices.pk}/open").status_code == 404
    assert bob_client.post(f"/notifications/{alices.pk}/read").status_code == 404
    html = bob_client.get("/notifications").content.decode()
    assert ROW.findall(html) == []
    assert "No notifications yet." in html
    assert fresh(alices).read_at is None


def test_carol_gets_404_on_acmes_notification(
    cast: Cast, carol_client: Client, alice_client: Client
) -> None:
    alices = notify(cast.alice, cast.company_a, "Pat opened “Quote”")
    notify(cast.carol, cast.company_b, "Globex's own")

    assert carol_client.get(f"/notifications/{alices.pk}/open").status_code == 404
    assert carol_client.post(f"/notifications/{alices.pk}/read").status_code == 404
    carol_client.post("/notifications/read-all")
    assert fresh(alices).read_at is None
    html = carol_client.get("/notifications").content.decode()
    assert "Globex" in html
    assert "“Quote”" not in html
    assert bell_count(alice_client.get("/").content.decode()) == "1"


def test_a_long_list_pages_by_thirty(cast: Cast, alice_client: Client) -> None:
    with tenancy.bound(cast.company_a.pk):
        Notification.objects.bulk_create(
            Notification(
                company=cast.company_a,
                user=cast.alice,
                kind="tracking_open",
                title=f"Opened {n}",
                subject_key=f"open:{n}",
            )
            for n in range(35)
        )
    first = alice_client.get("/notifications").content.decode()
    assert len(ROW.findall(first)) == notifications.PAGE_SIZE
    assert 'href="/notifications?page=2"' in first
    second = alice_client.get("/notifications?page=2").content.decode()
    assert len(ROW.findall(second)) == 5
    assert 'href="/notifications"' in second  # back to the newest
    assert set(ROW.findall(first)).isdisjoint(ROW.findall(second))
    assert alice_client.get("/notifications?page=abc").status_code == 200


def test_signed_out_visitors_are_sent_to_sign_in(cast: Cast) -> None:
    response = Client().get("/notifications")
    assert response.status_code == 302
    assert response["Location"].startswith("/login")
