"""Who an open or a click is from (`tracking.classify`), pure: no database. Real user agents
and addresses of image proxies, privacy prefetchers, security scanners, mail clients and
browsers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inbox.models import TrackingSource
from tracking import classify
from tracking.classify import CLICK, MACHINE, OPEN, PERSON, SCANNER, SENDER

SENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = SENT + timedelta(hours=2)
HOME = "198.51.100.23"  # a recipient's own network

GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
APPLE_MAIL_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)
IOS_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
IPAD_MAIL = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148"
)
OUTLOOK_DESKTOP = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
OUTLOOK_2016_IMAGES = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.9.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
EDGE_WINDOWS = CHROME_WINDOWS + " Edg/124.0.2478.51"
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
CHROME_ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SAMSUNG_EMAIL_WEBVIEW = (
    "Mozilla/5.0 (Linux; Android 13; SM-S911B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.118 Mobile Safari/537.36"
)
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.6099.71 Safari/537.36"
)


def run(
    user_agent: str,
    *,
    kind: str = OPEN,
    ip: str = HOME,
    at: datetime = LATER,
    delivered: datetime | None = SENT,
    sender: bool = False,
) -> classify.Classified:
    return classify.classify(
        kind=kind,
        user_agent=user_agent,
        ip=ip,
        occurred_at=at,
        delivered_at=delivered,
        sender_seen=sender,
    )


def test_the_sources_are_the_models() -> None:
    assert {PERSON, MACHINE, SCANNER, SENDER} == set(TrackingSource.values)


@pytest.mark.parametrize(
    ("agent", "client", "device"),
    [
        (APPLE_MAIL_MAC, "Apple Mail", "desktop"),
        (IOS_MAIL, "iOS Mail", "mobile"),
        (IPAD_MAIL, "iOS Mail", "tablet"),
        (OUTLOOK_DESKTOP, "Outlook", "desktop"),
        (OUTLOOK_2016_IMAGES, "Outlook", "desktop"),
        (THUNDERBIRD, "Thunderbird", "desktop"),
        (CHROME_WINDOWS, "Chrome", "desktop"),
        (EDGE_WINDOWS, "Edge", "desktop"),
        (FIREFOX_WINDOWS, "Firefox", "desktop"),
        (SAFARI_MAC, "Safari", "desktop"),
        (SAFARI_IPHONE, "Safari", "mobile"),
        (CHROME_ANDROID, "Chrome", "mobile"),
        (CHROME_ANDROID_TABLET, "Chrome", "tablet"),
        (SAMSUNG_EMAIL_WEBVIEW, "Android", "mobile"),
        (CUBOT_PHONE, "Chrome", "mobile"),  # "bot" inside a phone's name is no robot
    ],
)
def test_a_person_reading_is_the_recipient_with_client_and_device(
    agent: str, client: str, device: str
) -> None:
    found = run(agent)
    assert found == classify.Classified(PERSON, "", client, device)
    assert run(agent, kind=CLICK).source == PERSON


def test_gmails_image_proxy_is_a_machine_open() -> None:
    found = run(GMAIL_PROXY, ip="66.249.84.1")
    assert (found.source, found.client, found.device) == (MACHINE, "Gmail", "")
    assert "Gmail" in found.detail


def test_yahoos_image_proxy_is_a_machine_open() -> None:
    found = run(YAHOO_PROXY, ip="74.6.0.1")
    assert (found.source, found.client) == (MACHINE, "Yahoo Mail")


def test_apple_mail_privacy_protection_by_its_bare_agent_or_apples_network() -> None:
    bare = run("Mozilla/5.0", ip="172.225.12.4")  # a Private Relay egress, not Apple's 17/8
    assert (bare.source, bare.client) == (MACHINE, "Apple Mail")
    assert "Privacy Protection" in bare.detail
    from_apple = run(APPLE_MAIL_MAC, ip="17.58.63.2")
    assert (from_apple.source, from_apple.client) == (MACHINE, "Apple Mail")
    mapped = run(APPLE_MAIL_MAC, ip="::ffff:17.58.63.2")  # IPv4 in IPv6 clothing
    assert mapped.source == MACHINE
    # The same reader's click is theirs (a browser opened the link); the prefetch's is not.
    assert run(SAFARI_IPHONE, kind=CLICK, ip="17.58.63.2").source == PERSON
    assert run("Mozilla/5.0", kind=CLICK, ip="17.58.63.2").source == SCANNER


def test_outlook_is_a_person_unless_it_comes_from_microsofts_service() -> None:
    assert run(OUTLOOK_DESKTOP, ip="203.0.113.50").source == PERSON
    for service_ip in ("40.92.18.7", "40.107.22.101", "52.101.4.3", "104.47.58.20"):
        found = run(OUTLOOK_DESKTOP, ip=service_ip)
        assert (found.source, found.client) == (MACHINE, "Outlook"), service_ip
        assert "Exchange Online Protection" in found.detail
        assert run(CHROME_WINDOWS, kind=CLICK, ip=service_ip).source == SCANNER
    assert run(OUTLOOK_DESKTOP, ip="2a01:111:f400:7e1b::1").source == MACHINE
    assert run(OUTLOOK_DESKTOP, ip="40.94.0.1").source == PERSON  # beside the ranges: not them


@pytest.mark.parametrize(
    ("agent", "named"),
    [
        ("Barracuda Sentinel (EE)", "Barracuda"),
        ("Mozilla/5.0 (compatible; Mimecast URL Protect)", "Mimecast"),
        ("Proofpoint URL Defense/1.0", "Proofpoint"),
        ("Symantec Email Security.cloud Link Following", "Symantec"),
        ("TrendMicro Email Security", "Trend Micro"),
        ("Mozilla/5.0 (compatible; Forcepoint Email Security)", "Forcepoint"),
        ("Cisco IronPort Web Reputation", "Cisco IronPort"),
        ("Sophos Email Time-of-Click", "Sophos"),
        ("Mozilla/5.0 (Windows NT 10.0) Zscaler/6.2", "Zscaler"),
    ],
)
def test_named_security_scanners_are_scanners_for_clicks_and_machines_for_opens(
    agent: str, named: str
) -> None:
    click = run(agent, kind=CLICK)
    assert click.source == SCANNER
    assert named in click.detail
    assert run(agent, kind=OPEN).source == MACHINE


@pytest.mark.parametrize(
    "agent",
    [
        "curl/8.5.0",
        "python-requests/2.31.0",
        "Python-urllib/3.11",
        "Go-http-client/1.1",
        "Java/17.0.9",
        "Apache-HttpClient/4.5.14 (Java/17.0.9)",
        "Wget/1.21.4",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        HEADLESS,
        "Microsoft Office Existence Discovery",
        "",
        "   ",
    ],
)
def test_automated_clients_are_scanners_for_clicks_and_machines_for_opens(agent: str) -> None:
    assert run(agent, kind=CLICK).source == SCANNER
    assert run(agent, kind=OPEN).source == MACHINE
    assert run(agent).detail


def test_a_click_seconds_after_delivery_is_flagged_as_a_scanner() -> None:
    quick = run(CHROME_WINDOWS, kind=CLICK, at=SENT + timedelta(seconds=3))
    assert (quick.source, quick.detail) == (SCANNER, "Clicked seconds after delivery")
    assert quick.client == "Chrome"  # what the scanner pretended to be, kept
    edge = SENT + timedelta(seconds=classify.SCANNER_CLICK_SECONDS)
    assert run(CHROME_WINDOWS, kind=CLICK, at=edge).source == PERSON
    before = run(CHROME_WINDOWS, kind=CLICK, at=SENT - timedelta(seconds=1))
    assert before.source == SCANNER  # clocks apart: earlier than delivery is no reader
    # Opens are not timed (a reader with the message open sees it at once), nor an unsent one.
    assert run(OUTLOOK_DESKTOP, kind=OPEN, at=SENT + timedelta(seconds=2)).source == PERSON
    assert run(CHROME_WINDOWS, kind=CLICK, delivered=None).source == PERSON


def test_the_senders_own_session_wins_over_everything() -> None:
    for agent in (CHROME_WINDOWS, GMAIL_PROXY, "curl/8.5.0"):
        found = run(agent, kind=CLICK, at=SENT + timedelta(seconds=1), sender=True)
        assert found.source == SENDER
    assert run(SAFARI_MAC, sender=True) == classify.Classified(
        SENDER, "You, signed in to the CRM in this browser", "Safari", "desktop"
    )


def test_an_address_that_is_none_is_no_trouble() -> None:
    assert run(CHROME_WINDOWS, ip="").source == PERSON
    assert run(CHROME_WINDOWS, ip="not an address").source == PERSON
