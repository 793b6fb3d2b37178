"""The outbound HTTP client: the SSRF guard, address pinning, and how failures are classified."""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from pytest_django import Settings

from crm import outbound
from tests.crm.webhooks.conftest import Answer, Receiver


@pytest.fixture
def refuse_private(settings: Settings) -> None:
    settings.CRM_OUTBOUND_ALLOW_PRIVATE = False


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1/hook",  # inet_aton's short form of 127.0.0.1
        "http://2130706433/hook",  # and its number form
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://100.64.0.1/hook",  # shared address space (CGNAT)
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://[::1]/hook",
        "http://[::]/hook",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:a9fe:a9fe]/hook",  # ::ffff:169.254.169.254
        "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
        "http://localhost:8000/hook",  # a name resolving to loopback
        "https://LOCALHOST./hook",
    ],
)
@pytest.mark.usefixtures("refuse_private")
def test_the_guard_refuses_private_loopback_link_local_and_reserved_targets(url: str) -> None:
    with pytest.raises(outbound.OutboundError) as raised:
        outbound.check_url(url)
    assert raised.value.permanent is True


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.215.14/hook",
        "file:///etc/passwd",
        "gopher://93.184.215.14/",
        "javascript:alert(1)",
        "//93.184.215.14/hook",
        "http:///hook",
        "http://user:pw@93.184.215.14/hook",
        "http://93.184.215.14:99999/hook",
    ],
)
def test_the_guard_refuses_other_schemes_credentials_and_malformed_urls(url: str) -> None:
    with pytest.raises(outbound.OutboundError) as raised:
        outbound.check_url(url, allow_private=True)
    assert raised.value.permanent is True


@pytest.mark.usefixtures("refuse_private")
def test_the_guard_accepts_a_public_address_and_keeps_host_port_and_query() -> None:
    target = outbound.check_url("https://93.184.215.14:8443/in/hook?token=abc")

    assert target.addresses == (ipaddress.ip_address("93.184.215.14"),)
    assert (target.scheme, target.port, target.path) == ("https", 8443, "/in/hook?token=abc")
    assert target.host_header == "93.184.215.14:8443"


def test_the_setting_allows_private_targets(settings: Settings) -> None:
    settings.CRM_OUTBOUND_ALLOW_PRIVATE = True
    for url in (
        "http://127.0.0.1/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost/hook",
    ):
        assert outbound.check_url(url).addresses


@pytest.mark.usefixtures("refuse_private")
def test_a_name_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(outbound.OutboundError):
        outbound.check_url("https://hooks.example.com/in")


def test_a_name_that_does_not_resolve_is_a_transient_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def resolve(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(outbound.OutboundError) as raised:
        outbound.check_url("https://nowhere.invalid/in")
    assert raised.value.permanent is False


@pytest.mark.usefixtures("refuse_private")
def test_post_json_refuses_a_loopback_receiver_without_connecting(receiver: Receiver) -> None:
    with pytest.raises(outbound.OutboundError) as raised:
        outbound.post_json(url=receiver.url(), body=b"{}")

    assert raised.value.permanent is True
    assert receiver.requests == []


@pytest.mark.usefixtures("allow_private")
def test_post_json_connects_to_the_checked_address_and_keeps_the_host_header(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name resolves once; a second answer (a rebinding attacker) would point elsewhere.
    answers = iter(["127.0.0.1", "192.0.2.1"])
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "hooks.example":  # the numeric address connect() is given
            return real_getaddrinfo(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    response = outbound.post_json(
        url=f"http://hooks.example:{receiver.port}/in?x=1",
        body=b'{"a":1}',
        headers={"X-Extra": "yes"},
        basic_auth=("user", "pa:ss"),
    )

    assert response.status == 200
    assert response.body == b'{"ok": true}'
    [request] = receiver.requests
    assert request.path == "/in?x=1"
    assert request.headers["host"] == f"hooks.example:{receiver.port}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-extra"] == "yes"
    assert request.headers["authorization"] == "Basic dXNlcjpwYTpzcw=="
    assert request.body == b'{"a":1}'


@pytest.mark.usefixtures("allow_private")
@pytest.mark.parametrize(
    ("status", "permanent"),
    [(400, True), (401, True), (404, True), (410, True), (408, False), (500, False),
     (502, False), (503, False), (301, True), (302, True)],
)  # fmt: skip
def test_statuses_are_classified_permanent_or_transient(
    receiver: Receiver, status: int, permanent: bool
) -> None:
    receiver.answer(Answer(status=status, headers={"Location": "http://127.0.0.1:1/"}))

    with pytest.raises(outbound.OutboundError) as raised:
        outbound.post_json(url=receiver.url(), body=b"{}")

    assert raised.value.status == status
    assert raised.value.permanent is permanent
    assert len(receiver.requests) == 1  # no redirect followed


@pytest.mark.usefixtures("allow_private")
def test_429_is_transient_and_carries_retry_after(receiver: Receiver) -> None:
    receiver.answer(Answer(status=429, headers={"Retry-After": "120"}))

    with pytest.raises(outbound.OutboundError) as raised:
        outbound.post_json(url=receiver.url(), body=b"{}")

    assert raised.value.permanent is False
    assert raised.value.retry_after == 120.0


def test_retry_after_may_be_an_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert outbound.parse_retry_after("Wed, 01 Jan 2025 12:01:30 GMT", now=now) == 90.0
    assert outbound.parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert outbound.parse_retry_after("soon", now=now) is None
    assert outbound.parse_retry_after(None) is None


@pytest.mark.usefixtures("allow_private")
def test_the_response_body_is_read_only_up_to_the_cap(receiver: Receiver) -> None:
    receiver.answer(Answer(body=b"x" * (outbound.MAX_RESPONSE_BYTES * 4)))

    response = outbound.post_json(url=receiver.url(), body=b"{}")

    assert len(response.body) == outbound.MAX_RESPONSE_BYTES


@pytest.mark.usefixtures("allow_private")
def test_a_slow_receiver_is_a_transient_timeout(receiver: Receiver, settings: Settings) -> None:
    settings.CRM_OUTBOUND_TIMEOUT = 0.3
    receiver.answer(Answer(delay=1.0))

    with pytest.raises(outbound.OutboundError) as raised:
        outbound.post_json(url=receiver.url(), body=b"{}")

    assert raised.value.permanent is False
    assert raised.value.status is None


@pytest.mark.usefixtures("allow_private")
def test_a_closed_port_is_a_transient_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused

        with pytest.raises(outbound.OutboundError) as raised:
            outbound.post_json(url=f"http://127.0.0.1:{port}/hook", body=b"{}")

    assert raised.value.permanent is False


def test_public_addresses_are_recognized() -> None:
    assert outbound.is_public_address(ipaddress.ip_address("93.184.215.14"))
    assert outbound.is_public_address(ipaddress.ip_address("2606:2800:220:1::1"))
    assert not outbound.is_public_address(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert outbound.is_public_address(ipaddress.ip_address("::ffff:93.184.215.14"))
