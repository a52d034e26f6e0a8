"""Tests of the pure routing and answer functions of the world's HTTPS server."""

from __future__ import annotations

import re
import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.world.http_exchange import RequestHead
from conformance.world.https_routing import (
    HttpsStagingError,
    Route,
    StagedHost,
    check_headers,
    decide,
    host_header_name,
    pad_policy,
    target_matches,
)
from conformance.world.observe import Observation
from conformance.world.spec import CertSpec, HttpFault, PolicyHost

POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx1.a.test\r\nmax_age: 86400\r\n"
WELL_KNOWN = "/.well-known/mta-sts.txt"


def ignore(_: Observation) -> None:
    pass


def policy_route(method: str = "GET", **fields: object) -> tuple[Route, RequestHead]:
    spec = PolicyHost.model_validate({"name": "mta-sts.a.test", "body": POLICY, **fields})
    host = StagedHost(
        name=spec.name,
        cert=CertSpec(),
        context=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER),
        sink=ignore,
        policy=spec,
        policy_sink=ignore,
        policy_body=POLICY.encode(),
    )
    route = Route(name=spec.name, sink=ignore, host=host, policy=spec)
    return route, RequestHead(method=method, target=WELL_KNOWN, headers=())


def test_decide_serves_the_scripted_policy() -> None:
    route, head = policy_route(status=404, extra_headers=[["X-A", "1"]])
    reply = decide(route, head)
    assert reply.status == 404
    assert reply.headers == (("content-type", "text/plain"), ("X-A", "1"))
    assert reply.body == POLICY.encode()
    assert reply.fault is None


@pytest.mark.parametrize(
    ("method", "fields", "status", "fault"),
    [
        ("GET", {"fault": "redirect", "redirect_to": "https://x.test/"}, 301, HttpFault.REDIRECT),
        ("GET", {"fault": "reset"}, None, HttpFault.RESET),
        ("GET", {"fault": "slow-body", "slow_interval_s": 2}, 200, HttpFault.SLOW_BODY),
        ("HEAD", {}, 200, None),
        ("POST", {}, 405, None),
        ("DELETE", {"fault": "reset"}, 405, None),
    ],
)
def test_decide_table(method: str, fields: dict[str, object], status: int | None, fault: HttpFault | None) -> None:
    route, head = policy_route(method, **fields)
    reply = decide(route, head)
    assert (reply.status, reply.fault) == (status, fault)
    assert reply.head_only is (method == "HEAD")


def test_decide_misdirected_and_unknown_path() -> None:
    route, head = policy_route()
    assert decide(Route(name="x.test", sink=None, host=None), head).status == 421
    assert decide(Route(name="a", sink=None, host=route.host), head).status == 404


@pytest.mark.parametrize(
    ("registered", "target", "expected"),
    [
        (WELL_KNOWN, WELL_KNOWN, True),
        (WELL_KNOWN, WELL_KNOWN + "?id=1", True),
        (WELL_KNOWN, "https://mta-sts.a.test" + WELL_KNOWN, True),
        (WELL_KNOWN, WELL_KNOWN + "x", False),
        ("/r?k=1", "/r?k=1", True),
        ("/r?k=1", "/r?k=2", False),
        ("/r?k=1", "/r", False),
    ],
)
def test_target_matches(registered: str, target: str, expected: bool) -> None:
    assert target_matches(registered, target) is expected


def test_check_headers() -> None:
    check_headers("h", (("cache-control", "no-store"),))
    with pytest.raises(HttpsStagingError):
        check_headers("h", (("Transfer-Encoding", "chunked"),))
    with pytest.raises(HttpsStagingError):
        check_headers("h", (("bad name", "x"),))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mta-Sts.A.Test", "mta-sts.a.test"),
        ("a.test.:8443", "a.test"),
        ("[::1]:443", "[::1]"),
        ("", None),
        (None, None),
    ],
)
def test_host_header_name(value: str | None, expected: str | None) -> None:
    assert host_header_name(value) == expected


def test_pad_policy_keeps_larger_bodies() -> None:
    assert pad_policy(b"version: STSv1\n", 3) == b"version: STSv1\n"


def test_pad_policy_uses_the_bodys_line_ending() -> None:
    padded = pad_policy(b"version: STSv1\nmode: none", 100)
    assert len(padded) == 100
    assert b"\r" not in padded
    assert padded.startswith(b"version: STSv1\nmode: none\npad0001: x")


@given(
    body=st.sampled_from([b"", POLICY.encode(), b"version: STSv1", b"a\nb\n"]),
    extra=st.integers(min_value=0, max_value=5000),
)
def test_pad_policy_sizes(body: bytes, extra: int) -> None:
    size = len(body) + extra
    padded = pad_policy(body, size)
    assert padded.startswith(body)
    assert len(padded) >= size
    if extra >= 16:  # room for the separator and one whole padding line
        assert len(padded) == size
    tail = padded[len(body) :].lstrip(b"\r\n") if extra else b""
    assert all(re.fullmatch(rb"pad\d{4,}: x+\r?", line) for line in tail.split(b"\n")[:-1])
