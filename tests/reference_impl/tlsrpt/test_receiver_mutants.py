"""Every receiver mutant differs observably from the reference (RFC 8460 sections 3, 5.2, 5.4, 5.6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from reference_impl.smtp.aio_server import SessionInfo
from reference_impl.smtp.server_events import Envelope, Recipient
from reference_impl.tlsrpt.receiver_http import HttpRequest, ReportEndpoint
from reference_impl.tlsrpt.receiver_mail import MailIntake
from reference_impl.tlsrpt.receiver_mutants import RECEIVER_MUTANTS
from reference_impl.tlsrpt.receiver_smtp import ReportMailHandler
from reference_impl.tlsrpt.receiver_store import ReportStore
from reference_impl.tlsrpt.receiver_variant import ReceiverVariant

from .receiver_support import (
    POLICY_DOMAIN,
    best_judge,
    dict_lookup,
    key_records,
    report_gzip,
    report_json,
    report_message,
    sample_report,
    signed,
)

PATH = "/tlsrpt"
LIMIT = 2048


def post(body: bytes, content_type: str = "application/tlsrpt+gzip", method: str = "POST") -> Callable[..., object]:
    """A scenario: the status the endpoint answers to this request."""

    def run(variant: ReceiverVariant, tmp_path: Path) -> object:
        core = ReportEndpoint(PATH, judge=best_judge(), variant=variant, max_body_bytes=LIMIT)
        headers = (("content-type", content_type), ("content-length", str(len(body))))
        return core.decide(HttpRequest(method, PATH, headers, body)).reply.status

    return run


def mail(message: bytes) -> Callable[..., object]:
    """A scenario: the policy domains under which the intake stored this message's report."""

    def run(variant: ReceiverVariant, tmp_path: Path) -> object:
        store = ReportStore(tmp_path / "store")
        intake = MailIntake(
            payload_judge=best_judge(), txt_lookup=dict_lookup(key_records()), variant=variant, store=store
        )
        intake.accept_mail(message)
        return [stored.policy_domain for stored in store.received()]

    return run


@dataclass(frozen=True)
class Control:
    scenario: Callable[..., object]
    reference: object
    mutant: object


BIG_PLAIN = report_json(sample_report(organization="Company-X " * 400))

CONTROLS = {
    "recv-accepts-bad-json": Control(post(b"{not json", "application/tlsrpt+json"), 400, 201),
    "recv-accepts-any-media-type": Control(post(report_json(), "text/plain"), 415, 201),
    "recv-rejects-gzip": Control(post(report_gzip()), 201, 415),
    "recv-rejects-json": Control(post(report_json(), "application/tlsrpt+json"), 201, 415),
    "recv-no-size-limit": Control(post(BIG_PLAIN, "application/tlsrpt+json"), 413, 201),
    "recv-error-on-valid": Control(post(report_gzip()), 201, 500),
    "recv-redirects": Control(post(report_gzip()), 201, 302),
    "recv-accepts-unsigned-mail": Control(mail(report_message()), [], [POLICY_DOMAIN]),
    "recv-subject-wins": Control(
        mail(signed(report_message(subject_domain="subject.example"))), [POLICY_DOMAIN], ["subject.example"]
    ),
    "recv-get-accepted": Control(post(b"", "text/plain", method="GET"), 405, 200),
}


def test_every_mutant_has_a_control_and_a_description() -> None:
    assert set(CONTROLS) == set(RECEIVER_MUTANTS)
    for name, mutant in RECEIVER_MUTANTS.items():
        assert mutant.name == name
        assert mutant.description and mutant.section
        assert mutant.variant != ReceiverVariant()


@pytest.mark.parametrize("name", sorted(CONTROLS))
def test_mutant_differs_from_the_reference(name: str, tmp_path: Path) -> None:
    control = CONTROLS[name]
    assert len(BIG_PLAIN) > LIMIT
    assert control.scenario(ReceiverVariant(), tmp_path / "reference") == control.reference
    assert control.scenario(RECEIVER_MUTANTS[name].variant, tmp_path / "mutant") == control.mutant


def test_redirect_names_the_other_path() -> None:
    core = ReportEndpoint(PATH, judge=best_judge(), variant=RECEIVER_MUTANTS["recv-redirects"].variant)
    reply = core.decide(HttpRequest("POST", PATH, (("content-type", "application/tlsrpt+gzip"),), report_gzip())).reply
    assert ("location", "/tlsrpt-moved") in reply.headers


def test_accepts_bad_json_stores_what_it_got(tmp_path: Path) -> None:
    core = ReportEndpoint(PATH, judge=best_judge(), variant=RECEIVER_MUTANTS["recv-accepts-bad-json"].variant)
    decision = core.decide(HttpRequest("POST", PATH, (("content-type", "application/tlsrpt+json"),), b"[1, 2]"))
    assert decision.accepted is not None and decision.accepted.report == {}


async def test_error_on_valid_also_fails_mailed_reports(tmp_path: Path) -> None:
    variant = RECEIVER_MUTANTS["recv-error-on-valid"].variant
    scenario = mail(signed(report_message()))
    assert scenario(ReceiverVariant(), tmp_path / "reference") == [POLICY_DOMAIN]
    assert scenario(variant, tmp_path / "mutant") == []
    intake = MailIntake(payload_judge=best_judge(), txt_lookup=dict_lookup(key_records()), variant=variant)
    handler = ReportMailHandler(intake, report_domain=POLICY_DOMAIN)
    session = SessionInfo(("127.0.0.1", 1), "sender.example", None, None, False)
    envelope = Envelope("a@company-x.example", {}, (Recipient(f"tlsrpt@{POLICY_DOMAIN}"),), signed(report_message()))
    assert (await handler.on_message(session, envelope)).code == 554
