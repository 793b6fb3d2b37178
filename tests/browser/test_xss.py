"""The XSS test set in Chromium: the hostile messages of tests/fixtures/xss/, mailed into Dovecot
and synced, are opened one by one on their sender's Email tab. Nothing executes (no dialog
ever opens), nothing is fetched from any host but ours (every request the page and its frames
make is recorded; any other is refused and fails the test), and a screenshot of each shows the
content laid out.

Then remote images: hidden until Alice chooses to show them, they load through our image proxy
from an image server on loopback, which Chromium itself never reaches; a link in the body opens
in a new tab without a window.opener; a file downloads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Dialog, Locator, Page, Request, Route, expect

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import tenancy
from inbox import imageproxy
from inbox.models import MailThread
from mailsync import sync
from tests.browser.conftest import SCREENSHOTS, LiveServer, signed_in
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox
from tests.inbox.test_sanitize import xss_fixtures
from tests.inbox.web.test_media import ImageServer, png
from tests.inbox.web.test_media import Route as ImageRoute
from tests.mailsync.conftest import MailUser, connect, dovecot, mail_user  # noqa: F401 - fixtures
from tests.mailsync.dovecot import Dovecot

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# What the set tries to smuggle into the body; none of it may reach the frame's document.
HOSTILE_ELEMENTS = (
    "script, iframe, object, embed, form, input, button, svg, math, base, link, meta[http-equiv]"
)


@dataclass
class Watch:
    """What the page did that it must not: dialogs (alert, confirm, prompt, print) and requests
    to any origin but the live server's, which are refused before they leave."""

    origin: str
    dialogs: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def on_route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "about:")) or _origin(url) == self.origin:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def watch(page: Page, live_server: LiveServer) -> Watch:
    watching = Watch(origin=_origin(live_server.url))
    page.on("dialog", watching.on_dialog)
    page.on("request", watching.on_request)
    page.context.route("**/*", watching.on_route)
    return watching


def mallory(cast: Cast) -> int:
    """The person the set's sender is: their page's Email tab shows the conversations."""
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        person = contact_services.person_create(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            fields=contact_services.PersonFields(
                name="Mallory Sender", emails=[ContactPoint("mallory@evil.test")]
            ),
        )
    return person.pk


def shot(conversation: Locator, name: str) -> None:
    """A screenshot of the opened conversation only. Not the full page: Chromium lays a frame
    out again for a full-page capture, and a message's 100%-high block then covers the rest."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    conversation.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def open_conversation(page: Page, thread: MailThread) -> Locator:
    row = page.locator(f'[data-thread-id="{thread.pk}"]')
    row.locator("button.email-thread-open").click()
    conversation = page.locator(f"#thread-{thread.pk}")
    expect(conversation).to_be_visible()
    return conversation


def test_the_xss_set_opens_without_running_or_fetching_anything(
    page: Page,
    browser_cast: Cast,
    dovecot: Dovecot,  # noqa: F811 - the imported fixture
    mail_user: MailUser,  # noqa: F811
    watch: Watch,
) -> None:
    cast = browser_cast
    now = datetime.now(UTC)
    for path in xss_fixtures():
        dovecot.append(mail_user.username, mail_user.password, "INBOX", path.read_bytes(), date=now)
    person_id = mallory(cast)
    account = connect(cast, dovecot, mail_user)
    assert sync.account_sync(company_id=cast.company_a.pk, account_id=account.pk).stored == 12
    with tenancy.bound(cast.company_a.pk):
        threads = {
            thread.subject[4:6]: thread
            for thread in MailThread.objects.for_company(cast.company_a).filter(account=account)
        }
    assert sorted(threads) == [f"{n:02d}" for n in range(1, 13)]

    signed_in(page, cast.alice)
    page.goto(f"/contacts/persons/{person_id}")
    page.get_by_role("tab", name="Email").click()
    expect(page.get_by_text("12 conversations")).to_be_visible()

    for path in xss_fixtures():
        number = path.name[:2]
        conversation = open_conversation(page, threads[number])
        frame = conversation.frame_locator("iframe.email-body")
        if number == "11":  # the text-only message: its markup is shown as text
            expect(frame.locator("pre")).to_contain_text("<script>alert('text body')</script>")
        else:
            expect(frame.locator("h1")).to_be_visible()
        expect(frame.locator(HOSTILE_ELEMENTS)).to_have_count(0)
        expect(frame.locator("style")).to_have_count(1)  # our base style, none of the message's
        shot(conversation, f"xss-{path.stem}")
        conversation.get_by_role("button", name="Close").click()
        expect(page.locator(f"#thread-{threads[number].pk}")).to_have_count(0)

    # The CSS message keeps its layout: the fake overlay stays inside the frame's flow.
    conversation = open_conversation(page, threads["05"])
    frame = conversation.frame_locator("iframe.email-body")
    expect(frame.get_by_text("Plain CSS survives.")).to_be_visible()
    expect(frame.get_by_text("Outlook's quoting keeps its font and colour")).to_have_css(
        "font-family", "Georgia, serif"
    )
    conversation.get_by_role("button", name="Close").click()

    # A file of the set downloads; the page stays where it was.
    conversation = open_conversation(page, threads["12"])
    with page.expect_download() as download:
        conversation.get_by_role("link", name="invoice.html").click()
    assert download.value.suggested_filename == "invoice.html"
    expect(conversation).to_be_visible()
    frame = conversation.frame_locator("iframe.email-body")
    inline = frame.get_by_role("img", name="inline logo")
    expect(inline).to_have_js_property("naturalWidth", 48)  # the inline PNG, by its signed URL
    shot(conversation, "xss-12-attachments-inline")

    page.wait_for_load_state("networkidle")
    assert watch.dialogs == []
    assert watch.foreign == []
    assert all(_origin(url) == watch.origin for url in watch.requests if "://" in url)


@pytest.fixture
def image_host(settings: Any) -> Iterator[ImageServer]:
    server = ImageServer()
    server.start()
    settings.INBOX_IMAGE_PROXY_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    yield server
    server.stop()


def test_allowed_images_come_through_the_proxy_and_links_open_a_new_tab(
    page: Page, browser_cast: Cast, live_server: LiveServer, image_host: ImageServer, watch: Watch
) -> None:
    cast = browser_cast
    image_host.routes["/banner.png"] = ImageRoute(body=png(160, 40, (30, 120, 200)))
    image_host.routes["/pixel.gif"] = ImageRoute(
        content_type="image/gif",
        body=bytes.fromhex("47494638396101000100800000000000ffffff21f904010000000"
                           "02c00000000010001000002024401003b"),
    )  # fmt: skip
    mail = EmailMessage()
    mail["From"] = "Mallory Sender <mallory@evil.test>"
    mail["To"] = "alice@acme.test"
    mail["Subject"] = "Our spring catalogue"
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = "<catalogue@evil.test>"
    mail.set_content("The catalogue.")
    mail.add_alternative(
        "<h1>Spring catalogue</h1>"
        f'<p><img src="{image_host.url("/banner.png")}" alt="banner" width="160" height="40"></p>'
        f'<img src="{image_host.url("/pixel.gif")}?u=alice%40acme.test" width="1" height="1">'
        f'<p><a href="{live_server.url}/healthz">Our status page</a></p>',
        subtype="html",
    )
    person_id = mallory(cast)
    mailbox = Mailbox(cast)
    mailbox.deliver(mailbox.account(cast.alice), "INBOX", bytes(mail))
    with tenancy.bound(cast.company_a.pk):
        thread = MailThread.objects.for_company(cast.company_a).get(subject="Our spring catalogue")

    signed_in(page, cast.alice)
    page.goto(f"/contacts/persons/{person_id}")
    page.get_by_role("tab", name="Email").click()
    conversation = open_conversation(page, thread)
    frame = conversation.frame_locator("iframe.email-body")
    expect(frame.locator("h1")).to_have_text("Spring catalogue")
    expect(conversation.get_by_text("Images are hidden to protect your privacy.")).to_be_visible()
    expect(frame.get_by_role("img", name="banner")).to_have_js_property("naturalWidth", 1)
    shot(conversation, "remote-images-hidden")
    assert image_host.requests == []

    conversation.get_by_role("button", name="Show images", exact=True).click()

    conversation = page.locator(f"#thread-{thread.pk}")
    expect(conversation.get_by_text("Images are hidden")).to_have_count(0)
    frame = conversation.frame_locator("iframe.email-body")
    banner = frame.get_by_role("img", name="banner")
    expect(banner).to_have_js_property("naturalWidth", 160)
    expect(banner).to_have_attribute("src", re.compile(r"^/mail/image-proxy\?"))
    shot(conversation, "remote-images-shown")
    # The image server saw our proxy only: its User-Agent, no cookie, no referrer.
    assert {seen.path.split("?")[0] for seen in image_host.requests} == {
        "/banner.png",
        "/pixel.gif",
    }
    for seen in image_host.requests:
        assert seen.headers["user-agent"] == imageproxy.USER_AGENT
        assert "cookie" not in seen.headers
        assert "referer" not in seen.headers

    # A link opens in a new tab, as a page of its own with no way back to ours.
    with page.context.expect_page() as opened:
        frame.get_by_role("link", name="Our status page").click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == f"{live_server.url}/healthz"
    assert tab.evaluate("window.opener") is None

    assert watch.dialogs == []
    assert watch.foreign == []  # Chromium never asked the image server itself
    assert any("/mail/image-proxy?" in url for url in watch.requests)
