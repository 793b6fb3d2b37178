"""Who an open or a click is from, as far as the request tells (E2): the recipient, a machine
(an image proxy or a privacy prefetcher loading the pixel without anyone reading), a link
scanner (a security service following the links on delivery), or the sender themself. Also
the mail client and the kind of device, from the user agent. Pure: no Django, no database;
`tracking.flush` calls it with what the hit and its message tell.

The rules, first match wins (docs/decisions/0014-tracking.md says why each is there):

1. **Sender**: the hit carried the session mark of a user of the sending mailbox (the flush
   worker looks it up; `sender_seen`).
2. **Automated clients** by user agent: none at all, command-line and library clients (curl,
   python-requests, Go-http-client, ...), headless browsers, crawlers and chat apps' link
   previews, and the security gateways that name themselves (Barracuda, Mimecast, Proofpoint,
   Symantec / Broadcom, Trend Micro, Forcepoint, Cisco IronPort, Sophos, Zscaler, ...), and
   Microsoft Office's check of a link before it opens it: a *scanner* for a click, a
   *machine* for an open.
3. **Image proxies** by user agent: Gmail's (`GoogleImageProxy`, "via ggpht.com"; Google:
   support.google.com/mail/answer/145919) and Yahoo's (`YahooMailProxy`; Yahoo help article
   SLN28749). They load the pixel for the reader, and cache it: a proxy's hit tells neither
   whether a person read it nor how often.
4. **Apple Mail Privacy Protection**: Apple's servers load every remote image of a message
   on delivery, read or not, through the iCloud Private Relay egress (Apple publishes that
   list, mask-api.icloud.com/egress-ip-ranges.csv, but it is hundreds of thousands of
   ranges across other carriers' networks). Used here, as ESPs do (SocketLabs, "Identifying
   Apple MPP opens"; Word to the Wise, "Apple MPP reporting and geolocation", 2021): the
   bare user agent `Mozilla/5.0` the prefetch sends (no browser or mail client sends only
   that), or an address in 17.0.0.0/8 (Apple's own network, registered to Apple at ARIN).
5. **Microsoft's service**: requests from Exchange Online Protection's ranges (40.92.0.0/15,
   40.107.0.0/16, 52.100.0.0/14, 104.47.0.0/17: Microsoft's published SPF record
   spf.protection.outlook.com) are Microsoft 365 scanning the message (Safe Links, Safe
   Attachments): a machine open, a scanner click. Outlook on a person's computer says
   "Microsoft Outlook" too; the user agent alone never makes a hit a machine's.
6. **Too fast to be a person**: a click within `SCANNER_CLICK_SECONDS` of delivery.
7. Otherwise: the **recipient**.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

PERSON: Final = "person"
MACHINE: Final = "machine"
SCANNER: Final = "scanner"
SENDER: Final = "sender"
OPEN: Final = "open"
CLICK: Final = "click"

# A person needs the message to arrive, be noticed, opened and read before a link is worth a
# click: seconds at the very least. Gateways that rewrite or check links (Safe Links,
# Mimecast, Proofpoint URL Defense) follow them as the message passes through, within a
# second or two of our server handing it over; 10 s leaves room for a slow gateway and a
# receiving server's queue, and is still shorter than any reader. A clock is not a proof:
# such a click is flagged as a scanner's, and shown as one, not dropped.
SCANNER_CLICK_SECONDS: Final = 10


def gettext_noop(text: str) -> str:
    """Marks a detail for translation (Django's makemessages finds this name): the detail is
    stored as written here and translated where it is shown (`{% translate %}`)."""
    return text


@dataclass(frozen=True)
class Classified:
    source: str  # PERSON, MACHINE, SCANNER or SENDER (inbox.models.TrackingSource)
    detail: str  # why, in words, when not the recipient ("" for the recipient)
    client: str  # "Gmail", "Apple Mail", "Outlook", "Chrome", ... or ""
    device: str  # "desktop", "mobile", "tablet" or ""


# --- Addresses -----------------------------------------------------------------------------------


def _networks(*ranges: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item) for item in ranges)


APPLE_NETWORKS: Final = _networks("17.0.0.0/8")
MICROSOFT_EOP_NETWORKS: Final = _networks(
    "40.92.0.0/15",
    "40.107.0.0/16",
    "52.100.0.0/14",
    "104.47.0.0/17",
    "2a01:111:f400::/48",
    "2a01:111:f403::/48",
)


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> bool:
    return address is not None and any(address in network for network in networks)


# --- User agents ---------------------------------------------------------------------------------

# Security gateways that name themselves: (substring of the lower-cased user agent, name).
_SCANNERS: Final = (
    ("barracuda", "Barracuda"),
    ("mimecast", "Mimecast"),
    ("proofpoint", "Proofpoint"),
    ("messagelabs", "Symantec"),
    ("symantec", "Symantec"),
    ("broadcom", "Broadcom"),
    ("trend micro", "Trend Micro"),
    ("trendmicro", "Trend Micro"),
    ("forcepoint", "Forcepoint"),
    ("websense", "Forcepoint"),
    ("ironport", "Cisco IronPort"),
    ("cisco", "Cisco"),
    ("sophos", "Sophos"),
    ("zscaler", "Zscaler"),
    ("fortiguard", "Fortinet"),
    ("fortinet", "Fortinet"),
    ("checkpoint", "Check Point"),
    ("check point", "Check Point"),
    ("virustotal", "VirusTotal"),
    ("safelinks", "Microsoft Defender"),
)
# Clients no person reads mail or follows a link with.
_AUTOMATED: Final = re.compile(
    r"^(curl|wget|python-requests|python-urllib|python-httpx|aiohttp|go-http-client|java|"
    r"apache-httpclient|libwww-perl|node-fetch|axios|got|undici|ruby|php|guzzlehttp|"
    r"scrapy|httpie|postmanruntime|powershell|winhttp)\b"
    r"|headlesschrome|phantomjs|puppeteer|playwright|selenium|electron-fetch"
    r"|\b(bot|crawler|spider)\b|googlebot|bingbot|slackbot|twitterbot|linkedinbot|"
    r"telegrambot|discordbot|applebot|yandexbot|duckduckbot|baiduspider|facebookexternalhit|"
    r"whatsapp|skypeuripreview|embedly|linkpreview|link preview|urlpreview",
    re.IGNORECASE,
)
_OFFICE_CHECK: Final = re.compile(r"microsoft office (existence|protocol) discovery", re.I)


def _client(agent: str) -> str:
    """The mail client or browser named by the user agent, "" when none is recognized."""
    lowered = agent.lower()
    if "googleimageproxy" in lowered or "ggpht.com" in lowered:
        return "Gmail"
    if "yahoomailproxy" in lowered:
        return "Yahoo Mail"
    if "thunderbird/" in lowered:
        return "Thunderbird"
    if (
        "microsoft outlook" in lowered
        or "outlook-ios" in lowered
        or "outlook-android" in lowered
        or "ms-office" in lowered
        or "msoffice" in lowered
        or "microsoft office" in lowered
    ):
        return "Outlook"
    if "airmail" in lowered:
        return "Airmail"
    if "edg/" in lowered or "edge/" in lowered or "edga/" in lowered or "edgios/" in lowered:
        return "Edge"
    if "opr/" in lowered or "opera" in lowered:
        return "Opera"
    if "samsungbrowser/" in lowered:
        return "Samsung Internet"
    if "firefox/" in lowered or "fxios/" in lowered:
        return "Firefox"
    if "android" in lowered and "; wv)" in lowered:
        return "Android"  # a mail app's web view (Samsung Email, the Outlook and Gmail apps)
    if "chrome/" in lowered or "crios/" in lowered or "chromium/" in lowered:
        return "Chrome"
    if "applewebkit" in lowered and "safari/" not in lowered:
        # Apple's mail apps render with WebKit and, unlike Safari, add no "Safari/" token.
        if "iphone" in lowered or "ipad" in lowered or "ipod" in lowered:
            return "iOS Mail"
        if "macintosh" in lowered:
            return "Apple Mail"
    if "safari/" in lowered and "version/" in lowered:
        return "Safari"
    if "android" in lowered:
        return "Android"
    if agent.strip() == "Mozilla/5.0":
        return "Apple Mail"  # the Privacy Protection prefetch
    return ""


def _device(agent: str) -> str:
    lowered = agent.lower()
    if "ipad" in lowered or "tablet" in lowered or "kindle" in lowered or "silk/" in lowered:
        return "tablet"
    if "android" in lowered:
        return "mobile" if "mobile" in lowered or "outlook-android" in lowered else "tablet"
    if (
        "iphone" in lowered
        or "ipod" in lowered
        or "outlook-ios" in lowered
        or "windows phone" in lowered
        or "mobile" in lowered
    ):
        return "mobile"
    if (
        "windows nt" in lowered
        or "macintosh" in lowered
        or "mac os x" in lowered
        or "x11" in lowered
        or " cros " in lowered
        or "linux" in lowered
        or "thunderbird" in lowered
        or "microsoft outlook" in lowered
        or "ms-office" in lowered
        or "msoffice" in lowered
    ):
        return "desktop"
    return ""


def _automated(agent: str) -> str:
    """Why the user agent is no person's ("" when it may be): a named gateway, a library
    client, a crawler, or nothing at all."""
    if not agent.strip():
        return gettext_noop("No user agent: an automated client")
    lowered = agent.lower()
    for needle, name in _SCANNERS:
        if needle in lowered:
            return f"{name} security scanner"
    if _OFFICE_CHECK.search(agent):
        return gettext_noop("Microsoft Office checking the link before opening it")
    if _AUTOMATED.search(agent):
        return gettext_noop("An automated client (a script, crawler or link preview)")
    return ""


def classify(
    *,
    kind: str,
    user_agent: str,
    ip: str,
    occurred_at: datetime,
    delivered_at: datetime | None,
    sender_seen: bool,
) -> Classified:
    """Who the hit is from (see the module docstring for the rules, in order)."""
    client, device = _client(user_agent), _device(user_agent)
    address = _address(ip)
    lowered = user_agent.lower()

    if sender_seen:
        return Classified(
            SENDER, gettext_noop("You, signed in to the CRM in this browser"), client, device
        )
    automated = _automated(user_agent)
    if automated:
        return Classified(SCANNER if kind == CLICK else MACHINE, automated, client, "")
    if "googleimageproxy" in lowered or "ggpht.com" in lowered:
        return Classified(
            MACHINE,
            gettext_noop("Gmail's image proxy: Gmail loaded the image, maybe not for a reader"),
            "Gmail",
            "",
        )
    if "yahoomailproxy" in lowered:
        return Classified(
            MACHINE,
            gettext_noop("Yahoo's image proxy: Yahoo loaded the image, maybe not for a reader"),
            "Yahoo Mail",
            "",
        )
    if user_agent.strip() == "Mozilla/5.0" or _within(address, APPLE_NETWORKS):
        if kind == OPEN:
            return Classified(
                MACHINE,
                gettext_noop("Apple Mail Privacy Protection loads every message's images"),
                "Apple Mail",
                "",
            )
        if user_agent.strip() == "Mozilla/5.0":
            return Classified(
                SCANNER, gettext_noop("Apple's servers checking the link"), "Apple Mail", ""
            )
    if _within(address, MICROSOFT_EOP_NETWORKS):
        return Classified(
            SCANNER if kind == CLICK else MACHINE,
            gettext_noop("Microsoft 365 scanning the message (Exchange Online Protection)"),
            client,
            "",
        )
    if kind == CLICK and delivered_at is not None:
        after = occurred_at - delivered_at
        if after < timedelta(seconds=SCANNER_CLICK_SECONDS):
            return Classified(
                SCANNER, gettext_noop("Clicked seconds after delivery"), client, device
            )
    return Classified(PERSON, "", client, device)
