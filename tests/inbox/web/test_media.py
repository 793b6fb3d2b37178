"""What an opened message loads (inbox/web/media.py): the body frame with its headers, the
reader's choice to show remote images (per message, per sender) and the image proxy that then
serves them, files as downloads, and inline images by their signed URLs.

The proxy is tested against a real HTTP server on loopback (`ImageServer`), which the tests
allow by host name with `INBOX_IMAGE_PROXY_ALLOWED_PRIVATE_HOSTS`; `localhost`, the same
server by another name, stays refused, as any private address is in production."""

from __future__ import annotations

import contextlib
import http.server
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from contacts import services as contact_services
from contacts.services import ContactPoint
from crm import tenancy
from inbox import bodies, imageproxy
from inbox.models import MailAttachment, MailMessage, MailThread, RemoteImagesAllowed
from inbox.sanitize import REMOTE_IMAGE_PLACEHOLDER
from inbox.web import media
from mailsync.pipeline.parse import attachment_content, parse_message
from tests.conftest import Cast
from tests.inbox.conftest import Mailbox

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HTMX = {"HX-Request": "true"}
PAT = "Pat Customer <pat@customer.test>"
SAM = "Sam Other <sam@other.test>"
MAY_FIRST = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)


def png(width: int = 4, height: int = 4, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real PNG of one colour (no imaging library needed)."""
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# --- A remote image host on loopback -----------------------------------------------------------


@dataclass(frozen=True)
class Route:
    status: int = 200
    content_type: str = "image/png"
    body: bytes = b""
    location: str = ""
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class ImageServer:
    """A real HTTP server on 127.0.0.1 standing in for the hosts that mail images come from:
    answers each path with its `Route` and records every request it gets."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    port: int = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def start(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(
                    Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                route = server.routes.get(self.path.split("?", 1)[0], Route(status=404))
                if route.delay:
                    time.sleep(route.delay)
                self.send_response(route.status)
                if route.content_type:
                    self.send_header("Content-Type", route.content_type)
                if route.location:
                    self.send_header("Location", route.location)
                self.send_header("Content-Length", str(len(route.body)))
                self.send_header("Set-Cookie", "tracker=1")
                self.end_headers()
                with contextlib.suppress(OSError):  # the proxy gave up (too big, too slow)
                    self.wfile.write(route.body)

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.port = self._http.server_port
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture(scope="module")
def image_host() -> Iterator[ImageServer]:
    server = ImageServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def images(image_host: ImageServer, settings: Any) -> ImageServer:
    """The image host, its routes and log fresh, allowed as a "remote" host for this test."""
    image_host.routes.clear()
    image_host.requests.clear()
    settings.INBOX_IMAGE_PROXY_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    return image_host


# --- Mail ----------------------------------------------------------------------------------------


@pytest.fixture
def alice(cast: Cast, client_for: Any) -> Client:
    client: Client = client_for(cast.alice)
    return client


@pytest.fixture
def bob(cast: Cast, client_for: Any) -> Client:
    client: Client = client_for(cast.bob)
    return client


@pytest.fixture
def carol(cast: Cast, client_for: Any) -> Client:
    client: Client = client_for(cast.carol)
    return client


def person(cast: Cast, name: str, address: str) -> None:
    """A person Alice and Bob may see: mail from the address shows on their page."""
    with tenancy.bound(cast.company_a.pk, user_id=cast.alice.pk):
        contact_services.person_create(
            company=cast.company_a,
            membership=cast.membership(cast.alice, cast.company_a),
            fields=contact_services.PersonFields(name=name, emails=[ContactPoint(address)]),
        )


def mail(
    n: int, *, html: str, sender: str = PAT, subject: str | None = None, thread_of: int = 0
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "alice@acme.test"
    message["Subject"] = subject or f"Newsletter {n}"
    message["Date"] = format_datetime(MAY_FIRST.replace(minute=n))
    message["Message-ID"] = f"<media-{n}@customer.test>"
    if thread_of:
        message["In-Reply-To"] = message["References"] = f"<media-{thread_of}@customer.test>"
    message.set_content("The plain part.")
    message.add_alternative(html, subtype="html")
    return bytes(message)


def stored(cast: Cast, n: int) -> MailMessage:
    with tenancy.bound(cast.company_a.pk):
        return MailMessage.objects.for_company(cast.company_a).get(
            message_id=f"media-{n}@customer.test"
        )


def thread_of_message(cast: Cast, message: MailMessage) -> MailThread:
    with tenancy.bound(cast.company_a.pk):
        return MailThread.objects.for_company(cast.company_a).get(memberships__message=message)


def choices(cast: Cast) -> list[tuple[int, str, int | None]]:
    with tenancy.bound(cast.company_a.pk):
        return list(
            RemoteImagesAllowed.objects.for_company(cast.company_a)
            .order_by("id")
            .values_list("user_id", "sender", "message_id")
        )


def image_sources(html: str) -> list[str]:
    return [source.replace("&amp;", "&") for source in re.findall(r'<img[^>]* src="([^"]*)"', html)]


# --- The body frame ------------------------------------------------------------------------------


def test_the_body_keeps_remote_images_behind_the_placeholder_under_a_strict_policy(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    person(cast, "Pat Customer", "pat@customer.test")
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", mail(1, html='<p>Hi</p><img src="https://t.test/p.gif">'))
    message = stored(cast, 1)

    response = alice.get(f"/mail/messages/{message.pk}/body")

    assert response.status_code == 200
    assert image_sources(response.content.decode()) == [REMOTE_IMAGE_PLACEHOLDER]
    policy = response["Content-Security-Policy"]
    assert policy.startswith("sandbox allow-popups allow-popups-to-escape-sandbox;")
    assert "default-src 'none'" in policy
    assert "img-src data: 'self'" in policy
    assert "script-src" not in policy  # default-src 'none' covers it: no script at all
    assert "form-action 'none'" in policy
    assert "base-uri 'none'" in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "private, no-store"
    assert response["X-DNS-Prefetch-Control"] == "off"


def test_show_images_for_one_message_points_its_images_at_the_proxy_for_that_reader_only(
    cast: Cast, mailbox: Mailbox, alice: Client, bob: Client
) -> None:
    person(cast, "Pat Customer", "pat@customer.test")
    account = mailbox.account(cast.alice)
    html = '<p>Offer</p><img src="https://t.test/p.gif?a=1&amp;b=2"><img src="cid:none@x">'
    mailbox.deliver(account, "INBOX", mail(1, html=html))
    mailbox.deliver(account, "INBOX", mail(2, html=html))
    first, second = stored(cast, 1), stored(cast, 2)
    thread = thread_of_message(cast, first)

    response = alice.post(
        f"/mail/messages/{first.pk}/images",
        {"scope": "message", "thread": str(thread.pk)},
        headers=HTMX,
    )

    assert response.status_code == 303
    assert response["Location"] == f"/mail/threads/{thread.pk}"
    assert choices(cast) == [(cast.alice.pk, "", first.pk)]
    sources = image_sources(alice.get(f"/mail/messages/{first.pk}/body").content.decode())
    assert len(sources) == 1
    parts = urlsplit(sources[0])
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert parts.path == "/mail/image-proxy"
    assert query["u"] == "https://t.test/p.gif?a=1&b=2"
    assert query["m"] == str(first.pk)
    assert imageproxy.signature_valid(query["u"], message_id=first.pk, given=query["s"])
    # The other message, and Bob reading the same one, still wait.
    assert image_sources(alice.get(f"/mail/messages/{second.pk}/body").content.decode()) == [
        REMOTE_IMAGE_PLACEHOLDER
    ]
    assert image_sources(bob.get(f"/mail/messages/{first.pk}/body").content.decode()) == [
        REMOTE_IMAGE_PLACEHOLDER
    ]


def test_always_show_images_from_a_sender_covers_their_other_and_later_messages(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    person(cast, "Pat Customer", "pat@customer.test")
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", mail(1, html='<img src="https://t.test/1.gif">'))
    mailbox.deliver(account, "INBOX", mail(2, html='<img src="https://t.test/2.gif">', sender=SAM))
    first = stored(cast, 1)

    response = alice.post(f"/mail/messages/{first.pk}/images", {"scope": "sender"})

    assert response.status_code == 303
    assert choices(cast) == [(cast.alice.pk, "pat@customer.test", None)]
    mailbox.deliver(account, "INBOX", mail(3, html='<img src="https://t.test/3.gif">'))
    for n, proxied in ((1, True), (2, False), (3, True)):
        body = alice.get(f"/mail/messages/{stored(cast, n).pk}/body").content.decode()
        assert image_sources(body)[0].startswith("/mail/image-proxy?") is proxied, n
    # Asking twice changes nothing.
    alice.post(f"/mail/messages/{first.pk}/images", {"scope": "sender"})
    assert len(choices(cast)) == 1


def test_the_conversation_offers_the_choice_only_for_hidden_images_and_answers_re_read(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    person(cast, "Pat Customer", "pat@customer.test")
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", mail(1, html='<img src="https://t.test/1.gif">'))
    mailbox.deliver(account, "INBOX", mail(2, html="<p>No images.</p>", thread_of=1))
    first = stored(cast, 1)
    thread = thread_of_message(cast, first)

    html = alice.get(f"/mail/threads/{thread.pk}", headers=HTMX).content.decode()

    assert html.count("Images are hidden to protect your privacy.") == 1
    assert f'hx-post="/mail/messages/{first.pk}/images"' in html
    assert 'hx-target="closest .email-conversation"' in html
    assert f'name="thread" value="{thread.pk}"' in html
    assert "csrfmiddlewaretoken" in html
    assert 'name="scope" value="message">Show images</button>' in html
    assert "Always show images from pat@customer.test" in html

    # htmx follows the 303: the conversation comes back without the bar.
    again = alice.post(
        f"/mail/messages/{first.pk}/images",
        {"scope": "message", "thread": str(thread.pk)},
        headers=HTMX,
        follow=True,
    )
    assert again.status_code == 200
    assert f'id="thread-{thread.pk}"' in again.content.decode()
    assert "Images are hidden" not in again.content.decode()


def test_the_choice_needs_csrf_a_known_scope_and_a_reader_who_may_see_the_message(
    cast: Cast, mailbox: Mailbox, alice: Client, bob: Client, carol: Client
) -> None:
    person(cast, "Pat Customer", "pat@customer.test")
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", mail(1, html='<img src="https://t.test/1.gif">'))
    message = stored(cast, 1)
    url = f"/mail/messages/{message.pk}/images"
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(cast.alice)

    assert strict.post(url, {"scope": "message"}).status_code == 403
    assert alice.post(url, {"scope": "everything"}).status_code == 400
    assert alice.get(url).status_code == 405
    assert carol.post(url, {"scope": "message"}).status_code == 404
    assert alice.post("/mail/messages/999999/images", {"scope": "message"}).status_code == 404
    private = alice.post(
        f"/mail/threads/{thread_of_message(cast, message).pk}/sharing", {"sharing": "private"}
    )
    assert private.status_code == 200
    refused = bob.post(url, {"scope": "message"})
    assert refused.status_code == 404
    assert refused["HX-Reswap"] == "none"  # htmx leaves the conversation as it was
    assert choices(cast) == []


def test_a_thread_view_asks_for_the_image_choices_once_whatever_its_length(
    cast: Cast, mailbox: Mailbox, alice: Client
) -> None:
    person(cast, "Pat Customer", "pat@customer.test")
    account = mailbox.account(cast.alice)
    html = '<img src="https://t.test/1.gif">'
    mailbox.deliver(account, "INBOX", mail(1, html=html))
    mailbox.deliver(account, "INBOX", mail(2, html=html, thread_of=1))
    thread = thread_of_message(cast, stored(cast, 1))
    alice.get(f"/mail/threads/{thread.pk}", headers=HTMX)  # the session settles its company
    with CaptureQueriesContext(connection) as two:
        alice.get(f"/mail/threads/{thread.pk}", headers=HTMX)
    for n in range(3, 7):
        mailbox.deliver(account, "INBOX", mail(n, html=html, thread_of=1))
    with CaptureQueriesContext(connection) as six:
        page = alice.get(f"/mail/threads/{thread.pk}", headers=HTMX).content.decode()

    assert page.count("Images are hidden") == 6
    assert len(six.captured_queries) == len(two.captured_queries)
    assert sum("inbox_remoteimagesallowed" in q["sql"] for q in six.captured_queries) == 1


# --- Files ---------------------------------------------------------------------------------------


@pytest.fixture
def attachments_mail(cast: Cast, mailbox: Mailbox) -> dict[str, MailAttachment]:
    """tests/fixtures/xss/12-attachments.eml in Alice's mailbox, on Mallory's person page."""
    person(cast, "Mallory Sender", "mallory@evil.test")
    account = mailbox.account(cast.alice)
    mailbox.deliver(account, "INBOX", (FIXTURES / "xss" / "12-attachments.eml").read_bytes())
    with tenancy.bound(cast.company_a.pk):
        files = MailAttachment.objects.for_company(cast.company_a).order_by("part_path")
        return {attachment.part_path: attachment for attachment in files}


def test_a_file_downloads_as_an_attachment_with_a_safe_name_and_inert_headers(
    cast: Cast, alice: Client, attachments_mail: dict[str, MailAttachment]
) -> None:
    invoice = attachments_mail["2"]
    assert invoice.filename == "invoice.html"

    response = alice.get(f"/mail/attachments/{invoice.pk}")

    assert response.status_code == 200
    assert b"<script>alert('attachment')</script>" in response.content  # its bytes, as sent
    assert response["Content-Type"] == "text/html"
    assert response["Content-Disposition"] == (
        "attachment; filename=\"invoice.html\"; filename*=UTF-8''invoice.html"
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response["Cache-Control"] == "private, no-store"


def test_a_hostile_file_name_is_neither_a_path_a_header_nor_a_disguise(
    cast: Cast, alice: Client, attachments_mail: dict[str, MailAttachment]
) -> None:
    hostile = attachments_mail["4"]
    assert "\u202e" in hostile.filename  # right-to-left override: "report‮fdp.exe" reads "exe.pdf"

    response = alice.get(f"/mail/attachments/{hostile.pk}")

    disposition = response["Content-Disposition"]
    assert disposition == (
        'attachment; filename="reportfdp.exe\'_ x__b_"; '
        "filename*=UTF-8''reportfdp.exe%27%3B%20x%3D%3Cb%3E"
    )
    assert response.content == b"MZ not really a program"
    assert response["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        (
            "Teklif Ğüşİ.pdf",
            'attachment; filename="Teklif GusI.pdf"; '
            "filename*=UTF-8''Teklif%20%C4%9E%C3%BC%C5%9F%C4%B0.pdf",
        ),
        ("C:\\Users\\me\\a.txt", "attachment; filename=\"a.txt\"; filename*=UTF-8''a.txt"),
        ("..", "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"),
        (
            "a\r\nSet-Cookie: x=1",
            'attachment; filename="a Set-Cookie_ x_1"; '
            "filename*=UTF-8''a%20Set-Cookie%3A%20x%3D1",
        ),
        ("", "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"),
    ],
)
def test_content_disposition_names(name: str, header: str) -> None:
    assert media.content_disposition(name) == header


def test_files_are_listed_with_size_type_and_a_download_link(
    cast: Cast, alice: Client, attachments_mail: dict[str, MailAttachment]
) -> None:
    invoice = attachments_mail["2"]
    with tenancy.bound(cast.company_a.pk):
        thread = MailThread.objects.for_company(cast.company_a).get()

    html = alice.get(f"/mail/threads/{thread.pk}", headers=HTMX).content.decode()

    assert (
        f'<a class="email-attachment-name" href="/mail/attachments/{invoice.pk}" download '
        'hx-boost="false">invoice.html</a>'
    ) in html
    assert "text/html" in html
    assert "image/svg+xml" in html
    assert "reportfdp.exe" in html  # the override is not shown
    assert "\u202e" not in html
    # The inline PNG shows in the body, not in the list.
    assert "logo.png" not in html


def test_only_who_may_see_the_conversation_gets_its_files(
    cast: Cast,
    mailbox: Mailbox,
    alice: Client,
    bob: Client,
    carol: Client,
    attachments_mail: dict[str, MailAttachment],
) -> None:
    url = f"/mail/attachments/{attachments_mail['2'].pk}"
    assert bob.get(url).status_code == 200  # shared, on a person Bob sees
    assert carol.get(url).status_code == 404
    assert alice.get("/mail/attachments/999999").status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert "/login" in anonymous["Location"]
    with tenancy.bound(cast.company_a.pk):
        thread = MailThread.objects.for_company(cast.company_a).get()
    alice.post(f"/mail/threads/{thread.pk}/sharing", {"sharing": "private"})
    assert bob.get(url).status_code == 404
    assert alice.get(url).status_code == 200


# --- Inline images -------------------------------------------------------------------------------


def test_an_inline_png_loads_by_its_signed_url_without_a_session(
    cast: Cast, alice: Client, attachments_mail: dict[str, MailAttachment]
) -> None:
    logo = attachments_mail["1.2"]
    with tenancy.bound(cast.company_a.pk):
        message = MailMessage.objects.for_company(cast.company_a).get()

    body = alice.get(f"/mail/messages/{message.pk}/body").content.decode()

    # The PNG has its URL; the SVG part and the missing part have none.
    sources = image_sources(body)
    assert len(sources) == 1
    assert sources[0].startswith(f"/mail/attachments/{logo.pk}/inline?")
    assert body.count("<img") == 3
    # The frame's requests carry no cookie: a client without a session gets the image.
    response = Client().get(sources[0])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Cache-Control"] == "private, max-age=3600"
    assert "Set-Cookie" not in response


def signed_inline(cast: Cast, attachment: MailAttachment, *, expires: int | None = None) -> str:
    return media.inline_url(
        company_id=cast.company_a.pk,
        user_id=cast.bob.pk,
        attachment_id=attachment.pk,
        expires=expires or int(time.time()) + 3600,
    )


def test_an_inline_url_is_refused_when_tampered_expired_not_raster_or_no_longer_visible(
    cast: Cast, alice: Client, attachments_mail: dict[str, MailAttachment]
) -> None:
    logo, vector, drawing = attachments_mail["1.2"], attachments_mail["1.3"], attachments_mail["3"]
    anonymous = Client()
    good = signed_inline(cast, logo)
    assert anonymous.get(good).status_code == 200  # Bob may see it (a shared conversation)

    assert anonymous.get(good.replace("s=", "s=0")).status_code == 404
    assert anonymous.get(re.sub(r"u=\d+", f"u={cast.alice.pk}", good)).status_code == 404
    assert anonymous.get(signed_inline(cast, logo, expires=int(time.time()) - 1)).status_code == 404
    other = good.replace(f"/attachments/{logo.pk}/", f"/attachments/{drawing.pk}/")
    assert anonymous.get(other).status_code == 404  # the signature names the file
    # An SVG, even correctly signed, is never served inline: it can carry script.
    assert anonymous.get(signed_inline(cast, vector)).status_code == 404
    assert anonymous.get(signed_inline(cast, drawing)).status_code == 404
    # Bob loses sight of the conversation: his URL stops working.
    with tenancy.bound(cast.company_a.pk):
        thread = MailThread.objects.for_company(cast.company_a).get()
    alice.post(f"/mail/threads/{thread.pk}/sharing", {"sharing": "private"})
    assert anonymous.get(good).status_code == 404


# --- The image proxy -----------------------------------------------------------------------------


def proxied(url: str, message_id: int = 7) -> str:
    return imageproxy.proxy_url(url, message_id=message_id)


@pytest.mark.django_db
def test_the_proxy_serves_a_signed_image_without_telling_who_reads_it(
    images: ImageServer,
) -> None:
    picture = png()
    images.routes["/logo.png"] = Route(body=picture, content_type="image/png; charset=binary")
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux) Chrome/140", HTTP_REFERER="x")
    client.cookies["sessionid"] = "secret-session"

    response = client.get(proxied(images.url("/logo.png?for=alice")))

    assert response.status_code == 200
    assert response.content == picture
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Cache-Control"] == "private, max-age=86400"
    assert "Set-Cookie" not in response  # the remote host's cookie stays with us
    [seen] = images.requests
    assert seen.path == "/logo.png?for=alice"
    assert seen.headers["user-agent"] == imageproxy.USER_AGENT
    assert "cookie" not in seen.headers
    assert "referer" not in seen.headers
    assert "x-forwarded-for" not in seen.headers


@pytest.mark.django_db
def test_the_proxy_is_no_open_proxy(images: ImageServer) -> None:
    images.routes["/logo.png"] = Route(body=png())
    url = images.url("/logo.png")
    signed = proxied(url, message_id=7)
    client = Client()

    assert client.get(signed.replace("&m=7", "&m=8")).status_code == 403
    assert client.get(signed.replace("s=", "s=f")).status_code == 403
    assert client.get("/mail/image-proxy", {"u": url, "m": "7"}).status_code == 403
    assert client.get("/mail/image-proxy", {"u": url, "m": "7", "s": "0" * 64}).status_code == 403
    assert images.requests == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:{port}/logo.png",  # the same server, by a name not allowed
        "http://127.0.0.2:{port}/logo.png",
        "http://[::1]:{port}/logo.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x.png",
        "http://0.0.0.0:{port}/logo.png",
        "ftp://127.0.0.1:{port}/logo.png",
        "file:///etc/passwd",
        "http://user:pw@127.0.0.1:{port}/logo.png",
    ],
)
def test_the_proxy_refuses_private_addresses_and_other_schemes(
    images: ImageServer, url: str
) -> None:
    images.routes["/logo.png"] = Route(body=png())

    response = Client().get(proxied(url.format(port=images.port)))

    assert response.status_code == 403
    assert images.requests == []


@pytest.mark.django_db
def test_the_proxy_follows_a_few_redirects_checking_each_target(images: ImageServer) -> None:
    picture = png()
    images.routes["/logo.png"] = Route(body=picture)
    images.routes["/moved"] = Route(status=302, location="/logo.png")
    images.routes["/away"] = Route(status=301, location=images.url("/logo.png", host="localhost"))
    images.routes["/loop"] = Route(status=307, location="/loop")
    images.routes["/meta"] = Route(status=302, location="http://169.254.169.254/latest/")
    client = Client()

    moved = client.get(proxied(images.url("/moved")))
    assert (moved.status_code, moved.content) == (200, picture)
    assert client.get(proxied(images.url("/away"))).status_code == 403
    assert client.get(proxied(images.url("/meta"))).status_code == 403
    images.requests.clear()
    assert client.get(proxied(images.url("/loop"))).status_code == 502
    assert len(images.requests) == imageproxy.MAX_REDIRECTS + 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("route", "why"),
    [
        (Route(content_type="image/svg+xml", body=b"<svg onload=alert(1)></svg>"), "svg"),
        (Route(content_type="text/html", body=png()), "not declared an image"),
        (Route(content_type="image/png", body=b"<html><script>alert(1)</script>"), "not a PNG"),
        (Route(content_type="image/x-icon", body=b"\x00\x00\x01\x00" + b"\x00" * 40), "icon"),
        (Route(status=404, body=b"gone"), "missing"),
        (Route(status=302), "a redirect without a Location"),
    ],
)
def test_the_proxy_serves_raster_images_only(images: ImageServer, route: Route, why: str) -> None:
    images.routes["/image"] = route
    assert Client().get(proxied(images.url("/image"))).status_code == 502, why


@pytest.mark.django_db
def test_the_proxy_caps_size_and_time(images: ImageServer, settings: Any) -> None:
    big = png() + b"\x00" * imageproxy.MAX_BYTES
    images.routes["/big.png"] = Route(body=big)
    assert Client().get(proxied(images.url("/big.png"))).status_code == 502

    settings.INBOX_IMAGE_PROXY_TIMEOUT = 0.5
    images.routes["/slow.png"] = Route(body=png(), delay=3)
    started = time.monotonic()
    assert Client().get(proxied(images.url("/slow.png"))).status_code == 502
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (png(), "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x1cftypavif", "image/avif"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"BM\x00\x00", None),
        (b"", None),
    ],
)
def test_raster_types_are_known_by_their_bytes(data: bytes, found: str | None) -> None:
    assert imageproxy.raster_type(data) == found


# --- One part of a raw message ----------------------------------------------------------------


def corpus() -> list[Path]:
    return sorted([*(FIXTURES / "emails").glob("*.eml"), *(FIXTURES / "xss").glob("*.eml")])


@pytest.mark.parametrize("path", corpus(), ids=lambda path: path.stem)
def test_the_part_reader_finds_what_the_ingest_parser_numbered(path: Path) -> None:
    """inbox cannot import the ingest parser (mailsync sits above it): the standard library
    must find the same bytes under each part number the parser stored, or say missing."""
    raw = path.read_bytes()
    for attachment in parse_message(raw).attachments:
        content_type, expected = attachment_content(raw, attachment.part_path)
        try:
            found = bodies.part_content(raw, attachment.part_path, content_type=content_type)
        except bodies.PartMissing:
            # Only on a message both parsers read as broken, and then never another part.
            assert path.stem == "truncated-missing-close-boundary", attachment.part_path
            continue
        assert found == expected, (attachment.part_path, attachment.filename)


def test_the_part_reader_refuses_a_part_of_another_type() -> None:
    raw = (FIXTURES / "xss" / "12-attachments.eml").read_bytes()
    assert bodies.part_content(raw, "1.2", content_type="image/png").startswith(b"\x89PNG")
    with pytest.raises(bodies.PartMissing):
        bodies.part_content(raw, "1.2", content_type="text/html")
    with pytest.raises(bodies.PartMissing):
        bodies.part_content(raw, "9", content_type="image/png")
    with pytest.raises(bodies.PartMissing):
        bodies.part_content(raw, "1.x", content_type="image/png")


def test_the_download_type_is_the_files_own_when_well_formed() -> None:
    assert bodies.download_content_type("Application/PDF") == "application/pdf"
    assert bodies.download_content_type('text/html"; x') == "application/octet-stream"
    assert bodies.download_content_type("") == "application/octet-stream"
