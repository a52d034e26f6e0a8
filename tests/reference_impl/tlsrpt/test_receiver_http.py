"""The sans-IO decisions of the HTTPS report endpoint (RFC 8460 sections 5.2, 5.4)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.tlsrpt.errors import ReportError
from reference_impl.tlsrpt.receiver_http import (
    HttpRequest,
    ReportEndpoint,
    best_effort_report,
    media_type_of,
)
from reference_impl.tlsrpt.receiver_judges import ValidationResult
from reference_impl.tlsrpt.receiver_variant import ReceiverVariant

from .receiver_support import best_judge, report_gzip, report_json, sample_report, stub_judge

PATH = "/v1/tlsrpt"
GZIP = "application/tlsrpt+gzip"
JSON = "application/tlsrpt+json"
LIMIT = 4096


def endpoint(variant: ReceiverVariant | None = None) -> ReportEndpoint:
    return ReportEndpoint(PATH, judge=stub_judge, variant=variant, max_body_bytes=LIMIT)


def post(body: bytes, content_type: str | None = GZIP, *, target: str = PATH, method: str = "POST") -> HttpRequest:
    headers: tuple[tuple[str, str], ...] = (("Host", "reports.example"),)
    if content_type is not None:
        headers += (("Content-Type", content_type),)
    headers += (("Content-Length", str(len(body))),)
    return HttpRequest(method, target, headers, body)


def with_length(request: HttpRequest, length: int) -> HttpRequest:
    """The request with a Content-Length that is not its body's (a sender announcing more)."""
    headers = tuple((k, v) for k, v in request.headers if k.lower() != "content-length")
    return HttpRequest(request.method, request.target, (*headers, ("Content-Length", str(length))), request.body)


@dataclass(frozen=True)
class Case:
    name: str
    request: HttpRequest
    status: int
    accepted: bool = False
    text: str = ""


CASES = [
    Case("gzip report", post(report_gzip()), 201, accepted=True),
    Case("json report", post(report_json(), JSON), 201, accepted=True),
    Case("charset parameter tolerated", post(report_json(), JSON + "; charset=utf-8"), 201, accepted=True),
    Case("media type case-insensitive", post(report_gzip(), "Application/TLSRPT+GZIP"), 201, accepted=True),
    Case("query copied from the rua", post(report_gzip(), target=PATH + "?src=x"), 201, accepted=True),
    Case("absolute-form target", post(report_gzip(), target="https://reports.example" + PATH), 201, accepted=True),
    Case("GET", post(b"", None, method="GET"), 405, text="use POST"),
    Case("PUT", post(report_gzip(), method="PUT"), 405),
    Case("other path", post(report_gzip(), target="/other"), 404),
    Case("path prefix only", post(report_gzip(), target=PATH + "/x"), 404),
    Case("no content type", post(report_json(), None), 415),
    Case("text/plain", post(report_json(), "text/plain"), 415, text="refused"),
    Case("application/json", post(report_json(), "application/json"), 415),
    Case("bad json", post(b"{not json", JSON), 400, text="json-syntax"),
    Case("gzip media type, json body", post(report_json(), GZIP), 400, text="gzip-invalid"),
    Case("schema error", post(report_json({"report-id": "x"}), JSON), 400, text="report-schema"),
    Case("declared too large", with_length(post(b"x" * 10, GZIP), LIMIT + 1), 413),
    Case("body too large", post(b"x" * (LIMIT + 1), GZIP), 413),
    Case("bad content-length", HttpRequest("POST", PATH, (("content-type", GZIP), ("content-length", "x"))), 400),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_decision_table(case: Case) -> None:
    decision = endpoint().decide(case.request)
    assert decision.reply.status == case.status
    assert (decision.accepted is not None) is case.accepted
    assert case.text in decision.reply.body.decode()
    assert decision.reply.body.endswith(b"\n")


def test_405_names_the_allowed_method() -> None:
    reply = endpoint().decide(post(b"", None, method="GET")).reply
    assert ("allow", "POST") in reply.headers


def test_413_is_decided_from_the_head_alone() -> None:
    decision = endpoint().check_head("POST", PATH, (("content-type", GZIP), ("content-length", str(LIMIT + 1))))
    assert decision is not None and decision.reply.status == 413


def test_head_that_needs_the_body_gives_no_decision() -> None:
    assert endpoint().check_head("POST", PATH, (("content-type", GZIP), ("transfer-encoding", "chunked"))) is None


def test_accepted_report_carries_what_the_store_needs() -> None:
    decision = endpoint().decide(post(report_gzip(), GZIP + "; x=y"))
    assert decision.accepted is not None
    assert decision.accepted.report == sample_report()
    assert decision.accepted.content_type == GZIP + "; x=y"
    assert decision.accepted.body == report_gzip()


def test_400_lists_every_error_rule_once() -> None:
    reply = endpoint().decide(post(report_json({"policies": []}), JSON)).reply
    assert reply.status == 400
    assert reply.body.decode().count("report-schema") == 1


def test_stored_replies() -> None:
    core = endpoint()
    assert core.stored_reply(duplicate=False).status == 201
    assert core.stored_reply(duplicate=True).status == 200
    assert core.store_failed_reply().status == 500
    assert (
        ReportEndpoint(PATH, judge=stub_judge, variant=ReceiverVariant(success_status=200))
        .stored_reply(duplicate=False)
        .status
        == 200
    )


def test_judge_raising_its_own_error_is_a_400() -> None:
    def raising(data: bytes, *, content_type: str | None = None, filename: str | None = None) -> ValidationResult:
        raise ReportError("gzip-bomb", "5.2", "too much")

    reply = ReportEndpoint(PATH, judge=raising).decide(post(report_gzip())).reply
    assert reply.status == 400 and b"gzip-bomb" in reply.body


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="must start"):
        ReportEndpoint("tlsrpt", judge=stub_judge)
    with pytest.raises(ValueError, match="2xx"):
        ReceiverVariant(success_status=302)
    with pytest.raises(ValueError, match="origin-form"):
        ReceiverVariant(redirect_to="elsewhere")


@pytest.mark.parametrize(
    ("value", "media"),
    [("application/tlsrpt+json", JSON), (" Application/Tlsrpt+Gzip ; charset=x", GZIP), ("", "")],
)
def test_media_type_of(value: str, media: str) -> None:
    assert media_type_of(value) == media


def test_best_effort_report_reads_what_it_can() -> None:
    assert best_effort_report(report_gzip()) == sample_report()
    assert best_effort_report(b"[1]") == {}
    assert best_effort_report(b"\x1f\x8bbroken") == {}


# -- property: the core is total ----------------------------------------------------------

_header_text = st.text(st.characters(codec="latin-1"), max_size=40)
_headers = st.lists(
    st.tuples(
        st.sampled_from(["content-type", "Content-Length", "host", "transfer-encoding", "x"]) | _header_text,
        st.sampled_from([GZIP, JSON, "text/plain", "12", "-1", "1" * 30, ""]) | _header_text,
    ),
    max_size=6,
)
_bodies = st.binary(max_size=300) | st.sampled_from([report_gzip(), report_json(), b"\x1f\x8b", b"{}"])


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["POST", "GET", "HEAD", "PUT"]) | st.text(max_size=10),
    target=st.sampled_from([PATH, PATH + "?a", "/", "http://x" + PATH, "*"]) | st.text(max_size=30),
    headers=_headers,
    body=_bodies,
    variant=st.sampled_from([ReceiverVariant(), ReceiverVariant(validate=False, accept_any_media_type=True)]),
)
def test_core_never_raises(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, variant: ReceiverVariant
) -> None:
    core = ReportEndpoint(PATH, judge=best_judge(), variant=variant, max_body_bytes=LIMIT)
    decision = core.decide(HttpRequest(method, target, tuple(headers), body))
    assert 200 <= decision.reply.status <= 599
    if decision.accepted is not None:
        assert decision.reply.status == 201
        assert isinstance(decision.accepted.report, dict)
