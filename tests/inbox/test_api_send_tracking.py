"""The send state's `tracking` on `GET /api/v1/mailbox/mailMessages/{id}` (E2): what was asked
for and what the recipients did (first open and click by a person, counts, machine opens
apart), for the users who may see the message; Carol gets 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from crm import tenancy
from inbox.models import MailAccount, MailOutbound
from tests.conftest import Cast
from tests.inbox.test_api_send import PATH, get, post
from tests.inbox.test_api_send import account as account  # the fixture
from tests.inbox.test_api_send import urlpatterns as urlpatterns  # routed as the send API's

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def test_the_tracking_state_carries_what_the_recipients_did(
    api: Client, cast: Cast, account: MailAccount
) -> None:
    status, body = post(
        api,
        cast.alice_token,
        {
            "account_id": account.pk,
            "to": ["pat@customer.test"],
            "subject": "Quote",
            "body_html": '<p>Our <a href="https://acme.test/pricing">prices</a></p>',
            "tracking": {"opens": True, "links": True},
        },
    )
    assert status == 201, body
    message_id = body["data"]["id"]
    fresh = body["data"]["send_state"]["tracking"]
    assert fresh == {
        "opens": True,
        "links": True,
        "opened_at": None,
        "open_count": 0,
        "machine_open_count": 0,
        "clicked_at": None,
        "click_count": 0,
    }
    opened = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)
    with tenancy.bound(cast.company_a.pk):
        MailOutbound.objects.for_company(cast.company_a).filter(message_id=message_id).update(
            state="sent",
            opened_at=opened,
            open_count=3,
            machine_open_count=2,
            clicked_at=opened + timedelta(minutes=5),
            click_count=1,
        )

    status, body = get(api, f"{PATH}/{message_id}", cast.alice_token)

    assert status == 200
    assert body["data"]["send_state"]["tracking"] == {
        "opens": True,
        "links": True,
        "opened_at": "2026-12-01T09:30:15.123Z",
        "open_count": 3,
        "machine_open_count": 2,
        "clicked_at": "2026-12-01T09:35:15.123Z",
        "click_count": 1,
    }
    assert get(api, f"{PATH}/{message_id}", cast.carol_token)[0] == 404
    assert get(api, f"{PATH}/{message_id}", cast.bob_token)[0] == 404  # Alice's own mailbox
