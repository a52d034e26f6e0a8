"""TLSRPT end to end (RFC 8460 sections 3-5): the reference MTA in the conformance world.

The world serves DNS (the ``_smtp._tls`` records, MTA-STS), MX hosts with good or bad
certificates and HTTPS report collectors; the MTA delivers a message, records what TLS did,
then ``send_reports()`` reports it. Clocks are manual: retries are reached by moving the clock.
"""

from __future__ import annotations

import gzip
import importlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conformance.world.observe import DeliveredMessage, ReportPost
from conformance.world.spec import (
    CertProfile,
    CertSpec,
    DnsRecord,
    DnsSpec,
    MxHost,
    PolicyHost,
    ReportEndpoint,
    SmtpBehaviour,
    WorldSpec,
)
from conformance.world.world import Stage, World
from reference_impl.mta import tlsrpt_mutants as mut
from reference_impl.mta.clock import ManualClock
from reference_impl.mta.config import MtaVariant
from reference_impl.mta.mta import MtaConfig, ReferenceMta
from reference_impl.mta.queue import RecipientState, RetryPolicy
from reference_impl.mta.records import TlsResultType
from reference_impl.mta.reporting import RecordStatus, ReportOutcome, TlsRptConfig, UriStatus
from reference_impl.tlsrpt.compose import dkim_key_record
from reference_impl.tlsrpt.outbox import PostState

dkim: Any = importlib.import_module("dkim")

REPORTING_DOMAIN = "reporter.test"
EXPIRED = SmtpBehaviour(cert=CertSpec(profile=CertProfile.EXPIRED))
MESSAGE = b"From: a@sender.test\r\nTo: user@d\r\nSubject: hi\r\n\r\nhello\r\n"


def txt(name: str, value: str) -> DnsRecord:
    return DnsRecord(name=name, type="TXT", value=value)


def tlsrpt_record(rua: str) -> DnsRecord:
    return txt("_smtp._tls.{domain}", f"v=TLSRPTv1; rua={rua}")


def sts_enforce() -> tuple[tuple[DnsRecord, ...], tuple[PolicyHost, ...]]:
    policy = "version: STSv1\r\nmode: enforce\r\nmx: mx1.{domain}\r\nmax_age: 86400\r\n"
    return (txt("_mta-sts.{domain}", "v=STSv1; id=1"),), (PolicyHost(name="mta-sts.{domain}", body=policy),)


@dataclass
class Harness:
    world: World
    tmp: Path
    key_pem: bytes
    clock: ManualClock
    mtas: list[ReferenceMta]

    async def stage(self, spec: WorldSpec, name: str = "tlsrpt/run") -> Stage:
        return await self.world.stage(name, spec)

    async def mta(self, variant: MtaVariant | None = None, **tlsrpt: Any) -> ReferenceMta:
        info = self.world.info
        key_file = self.tmp / "dkim.pem"
        key_file.write_bytes(self.key_pem)
        settings: dict[str, Any] = {
            "organization_name": "Reference Reporter",
            "contact_info": f"tlsrpt@{REPORTING_DOMAIN}",
            "reporting_domain": REPORTING_DOMAIN,
            "dkim_key_file": key_file,
            "https_port": info.https[1],
            "post_timeout_s": 5.0,
        }
        settings.update(tlsrpt)
        config = MtaConfig(
            hostname="mta.reference.test",
            state_dir=self.tmp / f"state-{len(self.mtas)}",
            resolver=info.resolver,
            mx_port=info.smtp_port,
            ca_file=info.trust_bundle,
            submission_listen=None,
            inbound_listen=None,
            dns_timeout_s=2.0,
            smtp_timeout_s=5.0,
            session_timeout_s=10.0,
            retry=RetryPolicy(schedule=(600.0,), max_lifetime_s=86400.0),
            poll_interval_s=0.1,
            sts_port=info.https[1],
            sts_fetch_timeout_s=5.0,
            tlsrpt=TlsRptConfig(**settings),
        )
        mta = ReferenceMta(config, variant=variant, clock=self.clock)
        await mta.start()
        self.mtas.append(mta)
        return mta

    def verify_dkim(self, message: bytes) -> bool:
        record = dkim_key_record(self.key_pem).encode()

        def lookup(name: bytes, timeout: int = 5) -> bytes | None:
            return record if name == f"tlsrpt._domainkey.{REPORTING_DOMAIN}.".encode() else None

        return bool(dkim.verify(message, dnsfunc=lookup, tlsrpt="strict"))


@pytest.fixture(scope="module")
def key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
async def harness(tmp_path: Path, key_pem: bytes) -> AsyncIterator[Harness]:
    async with World() as world:
        h = Harness(world, tmp_path, key_pem, ManualClock(time.time()), [])
        try:
            yield h
        finally:
            for mta in h.mtas:
                await mta.stop()
                assert mta.errors == []


async def deliver(mta: ReferenceMta, stage: Stage) -> None:
    mta.submit("a@sender.test", [f"user@{stage.domain}"], MESSAGE)
    assert await mta.wait_idle(15)


def posted_report(post: ReportPost) -> dict[str, Any]:
    body = gzip.decompress(post.body) if post.body[:2] == b"\x1f\x8b" else post.body
    document: dict[str, Any] = json.loads(body)
    return document


def one(outcomes: list[ReportOutcome]) -> ReportOutcome:
    [outcome] = outcomes
    return outcome


# -- HTTPS (sections 3, 5.4, 5.5) ----------------------------------------------------------------


async def test_a_failure_is_reported_by_https_post(harness: Harness) -> None:
    spec = WorldSpec(
        mx=(MxHost(name="mx1.{domain}", smtp=EXPIRED),),
        dns=DnsSpec(records=(tlsrpt_record("https://tlsrpt.{domain}/tlsrpt"),)),
        report_endpoints=(ReportEndpoint(),),
    )
    stage = await harness.stage(spec)
    mta = await harness.mta()
    await deliver(mta, stage)
    [record] = [r for r in mta.tls_records() if r.policy_domain == stage.domain]
    assert record.result_type is TlsResultType.CERTIFICATE_EXPIRED
    assert record.sending_ip.startswith("127.")  # the outbound socket's local address

    outcome = one(await mta.send_reports())
    assert outcome.record is RecordStatus.FOUND and outcome.policy_domain == stage.domain
    uri = f"https://tlsrpt.{stage.domain}/tlsrpt"
    assert str(outcome) == f"{stage.domain}: found, report <{outcome.report_id}>: {uri} delivered (status 200)"
    assert [(d.uri, d.status) for d in outcome.deliveries] == [
        (f"https://tlsrpt.{stage.domain}/tlsrpt", UriStatus.DELIVERED)
    ]
    [post] = stage.log.of(ReportPost)
    assert post.content_type == "application/tlsrpt+gzip" and post.body[:2] == b"\x1f\x8b"
    assert post.sni == f"tlsrpt.{stage.domain}"
    report = posted_report(post)
    assert report["report-id"] == outcome.report_id and report["contact-info"] == f"tlsrpt@{REPORTING_DOMAIN}"
    assert report["date-range"]["start-datetime"].endswith("T00:00:00Z")
    [policy] = report["policies"]
    assert policy["policy"] == {"policy-type": "no-policy-found", "policy-domain": stage.domain}
    assert policy["summary"] == {"total-successful-session-count": 0, "total-failure-session-count": 1}
    [detail] = policy["failure-details"]
    assert detail["result-type"] == "certificate-expired"
    assert detail["receiving-mx-hostname"] == f"mx1.{stage.domain}"
    assert detail["receiving-ip"] == stage.hosts[f"mx1.{stage.domain}"]
    assert detail["sending-mta-ip"] == record.sending_ip and detail["failed-session-count"] == 1

    # Calling it again regenerates the day's report under a new id.
    again = one(await mta.send_reports(domains=[stage.domain]))
    assert again.report_id != outcome.report_id and len(stage.log.of(ReportPost)) == 2


async def test_a_refused_post_is_retried_with_backoff(harness: Harness) -> None:
    spec = WorldSpec(
        mx=(MxHost(name="mx1.{domain}"),),
        dns=DnsSpec(records=(tlsrpt_record("https://tlsrpt.{domain}/tlsrpt"),)),
        report_endpoints=(ReportEndpoint(fail_first=1, fail_status=500),),
    )
    stage = await harness.stage(spec)
    mta = await harness.mta()
    await deliver(mta, stage)
    outcome = one(await mta.send_reports())
    assert [d.status for d in outcome.deliveries] == [UriStatus.FAILED_WILL_RETRY]
    [entry] = mta.report_submissions(stage.domain)  # still to be made
    assert (entry.state, entry.attempts, entry.last_error) == (PostState.PENDING, 1, "status 500")
    assert entry.next_attempt_at == pytest.approx(harness.clock.now() + 60)
    assert await mta.wait_idle(5)  # nothing is due before the backoff delay
    assert len(stage.log.of(ReportPost)) == 1
    harness.clock.advance(60)
    mta.kick()
    assert await mta.wait_idle(10)
    first, second = stage.log.of(ReportPost)
    assert first.body == second.body  # the same report, posted again
    assert mta.report_submissions(stage.domain) == []
    [entry] = mta.report_submissions(stage.domain, settled=True)
    assert (entry.state, entry.attempts) == (PostState.DELIVERED, 2)


async def test_a_regenerated_report_replaces_the_pending_retry(harness: Harness) -> None:
    spec = WorldSpec(
        mx=(MxHost(name="mx1.{domain}"),),
        dns=DnsSpec(records=(tlsrpt_record("https://tlsrpt.{domain}/tlsrpt"),)),
        report_endpoints=(ReportEndpoint(fail_first=1, fail_status=500),),
    )
    stage = await harness.stage(spec)
    mta = await harness.mta()
    await deliver(mta, stage)
    first = one(await mta.send_reports())
    second = one(await mta.send_reports())
    assert [d.status for d in second.deliveries] == [UriStatus.DELIVERED]
    states = {e.report_id: e.state for e in mta.report_submissions(settled=True)}
    assert states == {first.report_id: PostState.SUPERSEDED, second.report_id: PostState.DELIVERED}
    harness.clock.advance(3600)
    mta.kick()
    assert await mta.wait_idle(5)
    assert len(stage.log.of(ReportPost)) == 2  # the stale report is not posted again


async def test_a_refused_post_survives_a_restart(harness: Harness) -> None:
    spec = WorldSpec(
        mx=(MxHost(name="mx1.{domain}"),),
        dns=DnsSpec(records=(tlsrpt_record("https://tlsrpt.{domain}/tlsrpt"),)),
        report_endpoints=(ReportEndpoint(fail_first=1, fail_status=503),),
    )
    stage = await harness.stage(spec)
    mta = await harness.mta()
    await deliver(mta, stage)
    await mta.send_reports()
    await mta.stop()
    harness.clock.advance(120)
    await mta.start()  # same state dir: the outbox still holds the submission
    assert await mta.wait_idle(10)
    assert len(stage.log.of(ReportPost)) == 2
    assert [e.state for e in mta.report_submissions(settled=True)] == [PostState.DELIVERED]


async def test_with_two_rua_uris_one_acceptance_is_enough(harness: Harness) -> None:
    rua = "https://tlsrpt-down.{domain}/tlsrpt,https://tlsrpt.{domain}/tlsrpt"
    spec = WorldSpec(
        mx=(MxHost(name="mx1.{domain}"),),
        dns=DnsSpec(records=(tlsrpt_record(rua),)),
        report_endpoints=(ReportEndpoint(name="tlsrpt-down.{domain}", status=500), ReportEndpoint()),
    )
    stage = await harness.stage(spec)
    mta = await harness.mta()
    await deliver(mta, stage)
    outcome = one(await mta.send_reports())
    assert [d.status for d in outcome.deliveries] == [UriStatus.SUPERSEDED, UriStatus.DELIVERED]
    harness.clock.advance(3600)
    mta.kick()
    assert await mta.wait_idle(5)
    assert len(stage.log.of(ReportPost)) == 2  # section 3: delivered once one endpoint accepted, no retry
    assert mta.report_submissions() == []
    assert sorted(e.state for e in mta.report_submissions(settled=True)) == [PostState.DELIVERED, PostState.SUPERSEDED]

    # tlsrpt-first-rua-only tries the failing one alone, and keeps retrying it.
    mutant = await harness.mta(variant=_variant("tlsrpt-first-rua-only"))
    await deliver(mutant, stage)
    [status] = [d.status for d in one(await mutant.send_reports()).deliveries]
    assert status is UriStatus.FAILED_WILL_RETRY
    assert [p.sni for p in stage.log.of(ReportPost)][2:] == [f"tlsrpt-down.{stage.domain}"]


async def test_no_retry_mutant_gives_up_after_one_failure(harness: Harness) -> None:
    spec = WorldSpec(
        mx=(MxHost(name="mx1.{domain}"),),
        dns=DnsSpec(records=(tlsrpt_record("https://tlsrpt.{domain}/tlsrpt"),)),
        report_endpoints=(ReportEndpoint(fail_first=1, fail_status=500),),
    )
    stage = await harness.stage(spec)
    mta = await harness.mta(variant=_variant("tlsrpt-no-retry"))
    await deliver(mta, stage)
    assert [d.status for d in one(await mta.send_reports()).deliveries] == [UriStatus.FAILED]
    harness.clock.advance(3600)
    mta.kick()
    assert await mta.wait_idle(5)
    assert len(stage.log.of(ReportPost)) == 1


async def test_records_that_are_missing_doubled_or_broken_mean_no_report(harness: Harness) -> None:
    doubled = (tlsrpt_record("https://tlsrpt.{domain}/a"), tlsrpt_record("https://tlsrpt.{domain}/tlsrpt"))
    cases = {
        "none": (),
        "two": doubled,
        "broken": (txt("_smtp._tls.{domain}", "v=TLSRPTv1; rua=ftp://x"),),
    }
    stages = {}
    for name, records in cases.items():
        spec = WorldSpec(
            mx=(MxHost(name="mx1.{domain}"),), dns=DnsSpec(records=records), report_endpoints=(ReportEndpoint(),)
        )
        stages[name] = await harness.stage(spec, f"tlsrpt/{name}")
    mta = await harness.mta()
    for stage in stages.values():
        await deliver(mta, stage)
    outcomes = {o.policy_domain: o for o in await mta.send_reports()}
    assert outcomes[stages["none"].domain].record is RecordStatus.NO_RECORD
    assert outcomes[stages["two"].domain].record is RecordStatus.NO_RECORD
    assert outcomes[stages["broken"].domain].record is RecordStatus.INVALID_RECORD
    assert str(outcomes[stages["none"].domain]).startswith(f"{stages['none'].domain}: no-record (_smtp._tls.")
    assert all(o.deliveries == () and o.report is None for o in outcomes.values())
    assert all(stage.log.of(ReportPost) == [] for stage in stages.values())

    # tlsrpt-accepts-two-records reports to the first of the two.
    mutant = await harness.mta(variant=_variant("tlsrpt-accepts-two-records"))
    await deliver(mutant, stages["two"])
    found = one(await mutant.send_reports(domains=[stages["two"].domain]))
    assert found.record is RecordStatus.FOUND
    assert [p.path for p in stages["two"].log.of(ReportPost)] == []  # /a is not staged: 404
    assert found.deliveries[0].uri.endswith("/a")


async def test_no_reports_mutant_sends_nothing(harness: Harness) -> None:
    spec = WorldSpec(
        mx=(MxHost(name="mx1.{domain}"),),
        dns=DnsSpec(records=(tlsrpt_record("https://tlsrpt.{domain}/tlsrpt"),)),
        report_endpoints=(ReportEndpoint(),),
    )
    stage = await harness.stage(spec)
    mta = await harness.mta(variant=_variant("tlsrpt-no-reports"))
    await deliver(mta, stage)
    assert await mta.send_reports() == []
    assert stage.log.of(ReportPost) == []


async def test_strict_https_mutant_refuses_a_bad_collector_certificate(harness: Harness) -> None:
    bad = ReportEndpoint(cert=CertSpec(profile=CertProfile.EXPIRED))
    spec = WorldSpec(
        mx=(MxHost(name="mx1.{domain}"),),
        dns=DnsSpec(records=(tlsrpt_record("https://tlsrpt.{domain}/tlsrpt"),)),
        report_endpoints=(bad,),
    )
    stage = await harness.stage(spec)
    reference = await harness.mta()
    strict = await harness.mta(variant=_variant("tlsrpt-strict-https"))
    await deliver(reference, stage)
    await deliver(strict, stage)
    # Section 3: "Report submitters MAY ignore certificate validation errors" - the reference does.
    assert [d.status for d in one(await reference.send_reports()).deliveries] == [UriStatus.DELIVERED]
    assert [d.status for d in one(await strict.send_reports()).deliveries] == [UriStatus.FAILED_WILL_RETRY]
    assert len(stage.log.of(ReportPost)) == 1


async def test_a_refused_connection_is_not_reported_unless_mutated(harness: Harness) -> None:
    spec = WorldSpec(mx=(MxHost(name="mx1.{domain}", listen=False),))
    stage = await harness.stage(spec)
    reference = await harness.mta()
    mutant = await harness.mta(variant=_variant("tlsrpt-transient-as-failure"))
    await deliver(reference, stage)
    await deliver(mutant, stage)
    assert reference.tls_records() == []  # section 4.3.4: transient, not a TLS session
    [record] = mutant.tls_records()
    assert record.result_type is TlsResultType.STARTTLS_NOT_SUPPORTED


# -- mail (sections 3, 5.3) ----------------------------------------------------------------------


async def test_report_mail_reaches_a_bad_mx_despite_mta_sts_and_is_dkim_signed(harness: Harness) -> None:
    records, hosts = sts_enforce()
    spec = WorldSpec(
        mx=(MxHost(name="mx1.{domain}", smtp=EXPIRED),),
        dns=DnsSpec(records=(*records, tlsrpt_record("mailto:tlsrpt@{domain}"))),
        policy_hosts=hosts,
    )
    stage = await harness.stage(spec)
    mta = await harness.mta()
    await deliver(mta, stage)
    # RFC 8461 enforce: the message waits; the failure is recorded against the sts policy.
    assert [s.state for s in mta.message_states()] == [RecipientState.DEFERRED]
    recorded = len(mta.tls_records())
    assert {r.result_type for r in mta.tls_records()} == {TlsResultType.CERTIFICATE_EXPIRED}

    outcome = one(await mta.send_reports())
    assert [d.status for d in outcome.deliveries] == [UriStatus.QUEUED_AS_MAIL]
    assert await mta.wait_idle(15)
    [report_mail] = [m for m in stage.log.of(DeliveredMessage) if m.rcpt_tos == (f"tlsrpt@{stage.domain}",)]
    assert report_mail.host == f"mx1.{stage.domain}" and report_mail.tls  # unverified TLS, still encrypted
    assert report_mail.mail_from == f"tlsrpt-noreply@{REPORTING_DOMAIN}"
    assert harness.verify_dkim(report_mail.data)
    assert b"TLS-Report-Domain: " + stage.domain.encode() in report_mail.data
    # Section 3: the report's own session is not recorded for the next report.
    assert len(mta.tls_records()) == recorded
    report_states = [s for s in mta.message_states() if s.address == f"tlsrpt@{stage.domain}"]
    assert [s.state for s in report_states] == [RecipientState.DELIVERED]


async def test_report_mail_goes_in_plaintext_when_starttls_is_missing(harness: Harness) -> None:
    spec = WorldSpec(
        mx=(MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(starttls=False)),),
        dns=DnsSpec(records=(tlsrpt_record("mailto:tlsrpt@{domain}"),)),
    )
    stage = await harness.stage(spec)
    mta = await harness.mta()
    await deliver(mta, stage)
    await mta.send_reports()
    assert await mta.wait_idle(15)
    report_mail = [m for m in stage.log.of(DeliveredMessage) if m.rcpt_tos == (f"tlsrpt@{stage.domain}",)]
    assert [m.tls for m in report_mail] == [False]
    assert harness.verify_dkim(report_mail[0].data)


async def test_report_mail_mutants_enforce_sts_or_count_their_session(harness: Harness) -> None:
    records, hosts = sts_enforce()
    spec = WorldSpec(
        mx=(MxHost(name="mx1.{domain}", smtp=EXPIRED),),
        dns=DnsSpec(records=(*records, tlsrpt_record("mailto:tlsrpt@{domain}"))),
        policy_hosts=hosts,
    )
    stage = await harness.stage(spec)
    enforcing = await harness.mta(variant=_variant("tlsrpt-mail-enforces-sts"))
    await deliver(enforcing, stage)
    await enforcing.send_reports()
    assert await enforcing.wait_idle(15)
    assert {s.state for s in enforcing.message_states()} == {RecipientState.DEFERRED}  # the report waits too

    counting = await harness.mta(variant=_variant("tlsrpt-counts-own-session"))
    await deliver(counting, stage)
    before = len(counting.tls_records())
    await counting.send_reports()
    assert await counting.wait_idle(15)
    assert len(counting.tls_records()) == before + 1  # the report mail's session joined the records


async def test_without_a_dkim_key_no_report_mail_is_sent(harness: Harness) -> None:
    spec = WorldSpec(mx=(MxHost(name="mx1.{domain}"),), dns=DnsSpec(records=(tlsrpt_record("mailto:r@{domain}"),)))
    stage = await harness.stage(spec)
    mta = await harness.mta(dkim_key_file=None)
    await deliver(mta, stage)
    [delivery] = one(await mta.send_reports()).deliveries
    assert delivery.status is UriStatus.FAILED and "DKIM" in delivery.detail
    assert len(mta.messages()) == 1  # only the original message


def _variant(name: str) -> MtaVariant:
    [variant] = [v for v in mut.TLSRPT_MUTANTS if v.name == name]
    return variant
