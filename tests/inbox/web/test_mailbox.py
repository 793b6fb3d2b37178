"""The Sales Inbox pages (B1, B2, B3, B7, B9): folders and counts, the list and its paging, the
reader (opening marks read), archive / delete with undo, labels, filters and saved views."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse

from crm import tenancy
from inbox.models import MailThread, MailThreadLabel, MailView
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.mailsync.mail import message

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
ROW = re.compile(r'id="mailbox-row-(\d+)" data-thread-id')
INBOX_COUNT = re.compile(
    r'data-folder="inbox">\s*<span>Inbox</span>\s*(?:<span class="mailbox-count"[^>]*>(\d+))?'
)


def _rows(html: str) -> list[int]:
    return [int(pk) for pk in ROW.findall(html)]


def _inbox_count(html: str) -> int:
    found = INBOX_COUNT.search(html)
    assert found, "the Inbox folder is listed"
    return int(found.group(1) or 0)


def _fresh(thread: MailThread) -> MailThread:
    with tenancy.bound(thread.company_id):
        return MailThread.objects.for_company(thread.company_id).get(pk=thread.pk)


def _threads(cast: Cast) -> list[MailThread]:
    """Alice's conversations, newest first (the list's order)."""
    with tenancy.bound(cast.company_a.pk):
        return list(
            MailThread.objects.for_company(cast.company_a)
            .filter(account__owner=cast.alice)
            .order_by("-last_message_at", "-id")
        )


@pytest.fixture
def alice_mail(cast: Cast, mailbox: Mailbox) -> list[MailThread]:
    account = mailbox.account(cast.alice)
    for n in range(1, 4):
        mailbox.deliver(account, "INBOX", message(n, subject=f"Offer {n}"))
    bobs = mailbox.account(cast.bob)
    mailbox.deliver(bobs, "INBOX", message(9, subject="Bob's secret"))
    return _threads(cast)


def test_the_inbox_lists_the_users_own_mail_with_its_unread_count(
    cast: Cast, client_for, alice_mail: list[MailThread]
) -> None:
    html = client_for(cast.alice).get(reverse("inbox")).content.decode()
    assert _rows(html) == [thread.pk for thread in alice_mail]
    assert "secret" not in html
    assert _inbox_count(html) == 3
    assert html.count("is-unread") == 3

    bobs_page = client_for(cast.bob).get(reverse("inbox")).content.decode()
    assert len(_rows(bobs_page)) == 1
    assert "Offer 1" not in bobs_page


def test_opening_a_conversation_marks_it_read(
    cast: Cast, client_for, alice_mail: list[MailThread]
) -> None:
    client: Client = client_for(cast.alice)
    thread = alice_mail[0]
    url = reverse("inbox_mailbox_thread", args=[thread.pk])

    # Without htmx the link leads to the page with the conversation open.
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].endswith(f"thread={thread.pk}")
    page = client.get(response["Location"]).content.decode()
    assert 'class="mailbox-reader-inner email-tab"' in page
    assert f'data-thread-id="{thread.pk}"' in page
    thread.refresh_from_db()
    assert not thread.is_unread
    assert _inbox_count(client.get(reverse("inbox")).content.decode()) == 2

    other = alice_mail[1]
    fragment = client.get(reverse("inbox_mailbox_thread", args=[other.pk]), headers=HTMX)
    assert fragment.status_code == 200
    assert fragment["HX-Trigger"] == "mailbox-counts"
    assert "Offer" in fragment.content.decode()
    other.refresh_from_db()
    assert not other.is_unread


def test_another_users_conversation_is_not_there(
    cast: Cast, client_for, alice_mail: list[MailThread]
) -> None:
    with tenancy.bound(cast.company_a.pk):
        bobs = MailThread.objects.for_company(cast.company_a).get(account__owner=cast.bob)
    client = client_for(cast.alice)
    response = client.get(reverse("inbox_mailbox_thread", args=[bobs.pk]), headers=HTMX)
    assert response.status_code == 404
    page = client.get(reverse("inbox") + f"?thread={bobs.pk}").content.decode()
    assert "mailbox-reader-inner" not in page
    act = client.post(reverse("inbox_act"), {"op": "archive", "thread": bobs.pk}, headers=HTMX)
    assert act.status_code == 404
    bobs.refresh_from_db()
    assert not bobs.archived


def test_archive_then_undo(cast: Cast, client_for, alice_mail: list[MailThread]) -> None:
    client = client_for(cast.alice)
    thread = alice_mail[1]
    response = client.post(
        reverse("inbox_act"),
        {"op": "archive", "thread": thread.pk, "folder": "inbox"},
        headers=HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Conversation archived." in html
    assert f'<li id="mailbox-row-{thread.pk}" hx-swap-oob="delete">' in html
    thread.refresh_from_db()
    assert thread.archived
    inbox = client.get(reverse("inbox")).content.decode()
    assert thread.pk not in _rows(inbox)
    archive = client.get(reverse("inbox") + "?folder=archive").content.decode()
    assert _rows(archive) == [thread.pk]

    token = re.search(r'name="token" value="([^"]+)"', html)
    assert token
    undone = client.post(reverse("inbox_undo"), {"token": token.group(1)}, headers=HTMX)
    assert "Undone." in undone.content.decode()
    assert "mailbox-changed" in undone["HX-Trigger"]
    assert not _fresh(thread).archived
    assert thread.pk in _rows(client.get(reverse("inbox")).content.decode())

    # Another user cannot replay Alice's undo.
    replay = client_for(cast.bob).post(reverse("inbox_undo"), {"token": token.group(1)})
    assert replay.status_code == 400
    forged = client.post(reverse("inbox_undo"), {"token": token.group(1) + "x"})
    assert forged.status_code == 400


def test_delete_goes_to_the_trash_and_back(
    cast: Cast, client_for, alice_mail: list[MailThread]
) -> None:
    client = client_for(cast.alice)
    thread = alice_mail[0]
    client.post(reverse("inbox_act"), {"op": "delete", "thread": thread.pk}, headers=HTMX)
    assert _rows(client.get(reverse("inbox") + "?folder=trash").content.decode()) == [thread.pk]
    assert thread.pk not in _rows(client.get(reverse("inbox") + "?folder=all").content.decode())
    response = client.post(
        reverse("inbox_act"), {"op": "restore", "thread": thread.pk, "folder": "trash"}
    )
    assert response.status_code == 200
    assert thread.pk in _rows(client.get(reverse("inbox")).content.decode())


def test_unread_redraws_the_row(cast: Cast, client_for, alice_mail: list[MailThread]) -> None:
    client = client_for(cast.alice)
    thread = alice_mail[2]
    client.post(reverse("inbox_act"), {"op": "read", "thread": thread.pk}, headers=HTMX)
    response = client.post(
        reverse("inbox_act"), {"op": "unread", "thread": thread.pk}, headers=HTMX
    )
    html = response.content.decode()
    assert "Marked as unread." in html
    assert re.search(
        rf'<li class="mailbox-row is-unread" id="mailbox-row-{thread.pk}"[^>]*hx-swap-oob="true"',
        html,
    )


def test_labels_filter_and_saved_views(
    cast: Cast, client_for, alice_mail: list[MailThread]
) -> None:
    client = client_for(cast.alice)
    created = client.post(reverse("inbox_labels"), {"name": "Hot lead", "color": "red"})
    assert created.status_code == 302
    duplicate = client.post(reverse("inbox_labels"), {"name": "hot LEAD", "color": "red"})
    assert duplicate.status_code == 400
    assert "A label with this name exists." in duplicate.content.decode()
    labels_page = client.get(reverse("inbox_labels")).content.decode()
    label_id = int(re.search(r'action="/inbox/labels/(\d+)"', labels_page).group(1))  # type: ignore[union-attr]

    thread = alice_mail[1]
    toggled = client.post(
        reverse("inbox_mailbox_thread_labels", args=[thread.pk]),
        {"label": label_id, "on": "1"},
        headers=HTMX,
    )
    assert toggled.status_code == 200
    assert 'aria-pressed="true"' in toggled.content.decode()
    with tenancy.bound(cast.company_a.pk):
        assert MailThreadLabel.objects.for_company(cast.company_a).filter(thread=thread).exists()

    query = urlencode({"folder": "all", "q": 'label:"Hot lead"'})
    filtered = client.get(f"{reverse('inbox')}?{query}").content.decode()
    assert _rows(filtered) == [thread.pk]
    assert "Hot lead" in filtered

    saved = client.post(
        reverse("inbox_view_save"), {"name": "Hot ones", "folder": "all", "q": 'label:"Hot lead"'}
    )
    assert saved.status_code == 302
    page = client.get(reverse("inbox")).content.decode()
    assert "Hot ones" in page
    with tenancy.bound(cast.company_a.pk):
        view = MailView.objects.for_company(cast.company_a).get()
    assert (view.folder, view.query, view.user_id) == ("all", 'label:"Hot lead"', cast.alice.pk)
    assert "Hot ones" not in client_for(cast.bob).get(reverse("inbox")).content.decode()
    client.post(reverse("inbox_view_delete", args=[view.pk]))
    assert "Hot ones" not in client.get(reverse("inbox")).content.decode()


def test_filters_add_and_remove_their_operator(
    cast: Cast, client_for, alice_mail: list[MailThread]
) -> None:
    client = client_for(cast.alice)
    client.post(reverse("inbox_act"), {"op": "read", "thread": alice_mail[0].pk}, headers=HTMX)
    unread = client.get(reverse("inbox") + "?q=is%3Aunread").content.decode()
    assert _rows(unread) == [thread.pk for thread in alice_mail[1:]]
    assert 'aria-pressed="true"' in unread
    assert 'href="/inbox?folder=inbox"' in unread  # the active filter's link takes it out


def test_paging_and_bad_parameters(cast: Cast, client_for, mailbox: Mailbox) -> None:
    account = mailbox.account(cast.alice)
    for n in range(1, 61):
        mailbox.deliver(account, "INBOX", message(n, subject=f"Bulk {n}"))
    client = client_for(cast.alice)
    first = client.get(reverse("inbox")).content.decode()
    assert len(_rows(first)) == 50
    more = re.search(r'class="mailbox-more"><a [^>]*hx-get="(/inbox/rows\?[^"]+)"', first)
    assert more
    rest = client.get(more.group(1).replace("&amp;", "&")).content.decode()
    rows = _rows(first) + _rows(rest)
    assert len(rows) == 60
    assert len(set(rows)) == 60
    assert "mailbox-more" not in rest

    for query in ("folder=nonsense", "account=abc", "after=%00%ff", "thread=12abc", "q=before%3Ax"):
        response = client.get(f"{reverse('inbox')}?{query}")
        assert response.status_code == 200, query
    assert client.get(reverse("inbox_rows") + "?after=garbage").status_code == 200
    assert client.post(reverse("inbox_act"), {"op": "explode", "thread": 1}).status_code == 400


def test_the_page_costs_a_bounded_number_of_queries(
    cast: Cast, client_for, mailbox: Mailbox, django_assert_max_num_queries
) -> None:
    account = mailbox.account(cast.alice)
    for n in range(1, 31):
        mailbox.deliver(account, "INBOX", message(n, subject=f"Many {n}"))
    client = client_for(cast.alice)
    client.get(reverse("inbox"))
    with django_assert_max_num_queries(30):
        response = client.get(reverse("inbox"))
    assert len(_rows(response.content.decode())) == 30


def test_a_user_without_a_mailbox_is_told_to_connect_one(cast: Cast, client_for) -> None:
    html = client_for(cast.alice).get(reverse("inbox")).content.decode()
    assert "No mailbox is connected yet." in html
    assert reverse("mail_accounts") in html
