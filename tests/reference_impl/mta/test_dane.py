"""DANE end to end (RFC 7672, RFC 8460 4.3.2.1): the reference MTA in the conformance world.

The world's DNS sets the AD bit for zones staged with ``dnssec: true`` and serves TLSA records;
its MX hosts present certificates the world's CA mints (the same one for the same host and
profile, cached), so a test computes the DANE-EE record of an MX from
``world.ca.issue(name, spec).chain_pem`` once the stage has named the host, and publishes it
with ``restage``. Reports go to the world's HTTPS collector.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conformance.world.observe import DeliveredMessage, DnsQuery, ReportPost, SmtpSession
from conformance.world.spec import (
    CertProfile,
    CertSpec,
    DnsFault,
    DnsPatch,
    DnsRecord,
    DnsRule,
    DnsSpec,
    MxHost,
    PolicyHost,
    ReportEndpoint,
    SmtpBehaviour,
    WorldPatch,
    WorldSpec,
)
from conformance.world.world import Stage, World
from reference_impl.mta import dane_mutants
from reference_impl.mta.clock import ManualClock
from reference_impl.mta.config import MtaVariant
from reference_impl.mta.mta import MtaConfig, ReferenceMta
from reference_impl.mta.queue import RecipientState
from reference_impl.mta.records import TlsResultType, TlsSessionRecord
from reference_impl.mta.reporting import TlsRptConfig
from tests.reference_impl.mta.helpers import world_mta_settings

MESSAGE = b"From: a@sender.test\r\nTo: user@d\r\nSubject: hi\r\n\r\nhello\r\n"
RPT = DnsRecord(name="_smtp._tls.{domain}", type="TXT", value="v=TLSRPTv1; rua=https://tlsrpt.{domain}/tlsrpt")
# For DANE the Policy Domain is the TLSA base domain, the MX host (RFC 8460 section 3).
RPT_MX = DnsRecord(name="_smtp._tls.mx1.{domain}", type="TXT", value="v=TLSRPTv1; rua=https://tlsrpt.{domain}/tlsrpt")
WRONG = "3 1 1 " + "00" * 32
EXPIRED = CertSpec(profile=CertProfile.EXPIRED)


def spki_sha256(chain_pem: bytes) -> str:
    """RFC 6698 2.1.2 / 2.1.3: SHA-256 of the leaf's SubjectPublicKeyInfo, hex."""
    leaf = x509.load_pem_x509_certificate(chain_pem)
    return hashlib.sha256(leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


@dataclass
class Harness:
    world: World
    tmp: Path
    clock: ManualClock
    mtas: list[ReferenceMta]

    async def stage(self, spec: WorldSpec) -> Stage:
        return await self.world.stage("dane/run", spec)

    def tlsa_for(self, stage: Stage, host: str = "mx1", cert: CertSpec | None = None) -> str:
        """The DANE-EE record (3 1 1) of ``host``'s certificate, in presentation form."""
        issued = self.world.ca.issue(f"{host}.{stage.domain}", cert or CertSpec())
        return "3 1 1 " + spki_sha256(issued.chain_pem)

    def publish_tlsa(self, stage: Stage, value: str, host: str = "mx1") -> None:
        record = DnsRecord(name=f"_25._tcp.{host}.{{domain}}", type="TLSA", value=value)
        self.world.restage(stage, WorldPatch(dns=DnsPatch(set=(record,))))

    async def mta(self, variant: MtaVariant | None = None, **config: Any) -> ReferenceMta:
        info = self.world.info
        settings: dict[str, Any] = world_mta_settings(self.world, self.tmp / f"state-{len(self.mtas)}")
        settings.update(
            {
                "tlsrpt": TlsRptConfig(
                    organization_name="Reference Reporter",
                    contact_info="tlsrpt@reporter.test",
                    reporting_domain="reporter.test",
                    https_port=info.https[1],
                    post_timeout_s=5.0,
                ),
            }
        )
        settings.update(config)
        mta = ReferenceMta(MtaConfig(**settings), variant=variant, clock=self.clock)
        await mta.start()
        self.mtas.append(mta)
        return mta


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with World() as world:
        h = Harness(world, tmp_path, ManualClock(time.time()), [])
        try:
            yield h
        finally:
            for mta in h.mtas:
                await mta.stop()
                assert mta.errors == []


def signed(*records: DnsRecord, faults: tuple[DnsRule, ...] = (), dnssec: bool = True) -> DnsSpec:
    return DnsSpec(records=(RPT, RPT_MX, *records), faults=faults, dnssec=dnssec)


def world(dns: DnsSpec, *mx: MxHost, policy_hosts: tuple[PolicyHost, ...] = ()) -> WorldSpec:
    return WorldSpec(
        mx=mx or (MxHost(name="mx1.{domain}"),),
        dns=dns,
        report_endpoints=(ReportEndpoint(),),
        policy_hosts=policy_hosts,
    )


async def deliver(mta: ReferenceMta, stage: Stage) -> list[TlsSessionRecord]:
    mta.submit("a@sender.test", [f"user@{stage.domain}"], MESSAGE)
    assert await mta.wait_idle(20)
    return [
        r for r in mta.tls_records() if r.policy_domain in (stage.domain, f"mx1.{stage.domain}", f"mx2.{stage.domain}")
    ]


def state(mta: ReferenceMta) -> RecipientState:
    [status] = mta.message_states()
    return status.state


async def report(mta: ReferenceMta, stage: Stage) -> dict[str, Any]:
    await mta.send_reports(domains=[stage.domain, f"mx1.{stage.domain}"])
    [post] = stage.log.of(ReportPost)
    body = gzip.decompress(post.body) if post.body[:2] == b"\x1f\x8b" else post.body
    document: dict[str, Any] = json.loads(body)
    return document


def tlsa_queries(stage: Stage) -> list[DnsQuery]:
    return [q for q in stage.log.of(DnsQuery) if q.qtype == "TLSA"]


# -- DANE applies (RFC 7672 2.2.3, 3.1.1) ----------------------------------------------------------


async def test_a_matching_dane_ee_record_authenticates_the_mx(harness: Harness) -> None:
    stage = await harness.stage(world(signed()))
    tlsa = harness.tlsa_for(stage)
    harness.publish_tlsa(stage, tlsa)
    mta = await harness.mta()
    [record] = await deliver(mta, stage)
    [delivered] = stage.log.of(DeliveredMessage)
    assert delivered.tls and state(mta) is RecipientState.DELIVERED
    assert (record.result_type, record.policy_type, record.policy_strings, record.mx_patterns) == (
        TlsResultType.SUCCESS,
        "tlsa",
        (tlsa,),
        (),
    )
    # The TLSA query was asked at _25._tcp.<mx> and answered with the AD bit.
    [query] = tlsa_queries(stage)
    assert query.qname == f"_25._tcp.mx1.{stage.domain}" and query.ad and query.answers == 1
    [session] = stage.log.of(SmtpSession)
    assert session.sni == f"mx1.{stage.domain}"  # RFC 7672 8.1: SNI is sent under DANE

    # RFC 8460 4.4, 4.5: policy-type tlsa, the TLSA records as policy strings, no mx-host.
    [policy] = (await report(mta, stage))["policies"]
    assert policy["policy"] == {"policy-type": "tlsa", "policy-string": [tlsa], "policy-domain": f"mx1.{stage.domain}"}
    assert policy["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}


async def test_dane_ee_ignores_expiry_and_takes_precedence_over_sts(harness: Harness) -> None:
    # An expired certificate and an MTA-STS enforce policy whose mx pattern excludes the host:
    # under MTA-STS alone nothing would be delivered; the matching DANE-EE record decides
    # (RFC 7672 3.1.1: no expiry check; RFC 8461 2: DANE is not overridden by MTA-STS).
    policy = "version: STSv1\r\nmode: enforce\r\nmx: other.{domain}\r\nmax_age: 86400\r\n"
    sts_txt = DnsRecord(name="_mta-sts.{domain}", type="TXT", value="v=STSv1; id=1")
    spec = world(
        signed(sts_txt),
        MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(cert=EXPIRED)),
        policy_hosts=(PolicyHost(name="mta-sts.{domain}", body=policy),),
    )
    stage = await harness.stage(spec)
    harness.publish_tlsa(stage, harness.tlsa_for(stage, cert=EXPIRED))
    mta = await harness.mta()
    [record] = await deliver(mta, stage)
    assert state(mta) is RecipientState.DELIVERED
    assert (record.result_type, record.policy_type) == (TlsResultType.SUCCESS, "tlsa")


async def test_a_mismatching_record_is_tlsa_invalid_and_the_mx_is_not_used(harness: Harness) -> None:
    stage = await harness.stage(world(signed()))
    harness.publish_tlsa(stage, WRONG)
    mta = await harness.mta()
    [record] = await deliver(mta, stage)
    assert stage.log.of(DeliveredMessage) == [] and state(mta) is RecipientState.DEFERRED
    assert (record.result_type, record.policy_type, record.policy_strings) == (
        TlsResultType.TLSA_INVALID,
        "tlsa",
        (WRONG,),
    )
    assert record.tls_version is not None and record.ip == stage.hosts[f"mx1.{stage.domain}"]
    [status] = mta.message_states()
    assert status.status == "4.7.5"  # deferred as a policy failure, like MTA-STS enforce

    [policy] = (await report(mta, stage))["policies"]
    assert policy["policy"]["policy-type"] == "tlsa" and "mx-host" not in policy["policy"]
    [detail] = policy["failure-details"]
    assert detail["result-type"] == "tlsa-invalid" and detail["receiving-mx-hostname"] == f"mx1.{stage.domain}"


async def test_a_mismatching_mx_falls_back_to_the_next(harness: Harness) -> None:
    spec = world(signed(), MxHost(name="mx1.{domain}"), MxHost(name="mx2.{domain}", preference=20))
    stage = await harness.stage(spec)
    harness.publish_tlsa(stage, WRONG, host="mx1")
    mta = await harness.mta()
    first, second = await deliver(mta, stage)
    assert (first.mx_host, first.result_type) == (f"mx1.{stage.domain}", TlsResultType.TLSA_INVALID)
    # mx2 has no TLSA (validated NXDOMAIN): no DANE, opportunistic TLS as ever.
    assert (second.mx_host, second.result_type, second.policy_type) == (
        f"mx2.{stage.domain}",
        TlsResultType.SUCCESS,
        "no-policy-found",
    )
    [delivered] = stage.log.of(DeliveredMessage)
    assert delivered.host == f"mx2.{stage.domain}"


async def test_no_starttls_under_dane(harness: Harness) -> None:
    # RFC 7672 2.2: STARTTLS is mandatory where DANE applies.
    spec = world(signed(), MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(starttls=False)))
    stage = await harness.stage(spec)
    harness.publish_tlsa(stage, harness.tlsa_for(stage))
    mta = await harness.mta()
    [record] = await deliver(mta, stage)
    assert stage.log.of(DeliveredMessage) == []
    assert (record.result_type, record.policy_type) == (TlsResultType.STARTTLS_NOT_SUPPORTED, "tlsa")


async def test_only_unusable_records_mean_tls_without_authentication(harness: Harness) -> None:
    # RFC 7672 2.2, 3.1.3: a PKIX-EE(1) record is unusable for SMTP; TLS stays mandatory but the
    # (expired) certificate is not authenticated. A REQUIRETLS message (RFC 8689 4.2.1) needs an
    # authenticated peer, so it falls back on the Web PKI, which the expired certificate fails.
    requiretls = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "REQUIRETLS")
    mx = MxHost(name="mx1.{domain}", smtp=SmtpBehaviour(cert=EXPIRED, ehlo_keywords=requiretls))
    stage = await harness.stage(world(signed(), mx))
    unusable = "1" + harness.tlsa_for(stage, cert=EXPIRED)[1:]
    harness.publish_tlsa(stage, unusable)
    mta = await harness.mta()
    [record] = await deliver(mta, stage)
    assert state(mta) is RecipientState.DELIVERED and stage.log.of(DeliveredMessage)[0].tls
    assert (record.result_type, record.policy_type, record.policy_strings) == (
        TlsResultType.SUCCESS,
        "tlsa",
        (unusable,),
    )
    mta.submit("a@sender.test", [f"user@{stage.domain}"], MESSAGE, mail_params=("REQUIRETLS",))
    assert await mta.wait_idle(20)
    assert len(stage.log.of(DeliveredMessage)) == 1
    last = mta.tls_records()[-1]
    assert (last.result_type, last.policy_type) == (TlsResultType.CERTIFICATE_EXPIRED, "tlsa")


# -- DANE does not apply (RFC 7672 2.2.1-2.2.3) ------------------------------------------------------


async def test_an_unsigned_zone_with_tlsa_gets_no_dane(harness: Harness) -> None:
    stage = await harness.stage(world(signed(dnssec=False)))
    harness.publish_tlsa(stage, WRONG)
    mta = await harness.mta()
    [record] = await deliver(mta, stage)
    assert state(mta) is RecipientState.DELIVERED
    assert (record.result_type, record.policy_type, record.policy_strings) == (
        TlsResultType.SUCCESS,
        "no-policy-found",
        (),
    )
    assert tlsa_queries(stage) == []  # the MX itself was not found securely: no TLSA lookup


async def test_a_signed_zone_without_tlsa_gets_no_dane(harness: Harness) -> None:
    stage = await harness.stage(world(signed()))
    mta = await harness.mta()
    [record] = await deliver(mta, stage)
    assert state(mta) is RecipientState.DELIVERED and record.policy_type == "no-policy-found"
    [query] = tlsa_queries(stage)
    assert query.rcode == "NXDOMAIN" and query.ad


# -- DANE failures without a session (RFC 8460 4.3.2.1) ----------------------------------------------


async def test_a_servfail_tlsa_lookup_in_a_signed_zone_is_dnssec_invalid(harness: Harness) -> None:
    fault = DnsRule(name="_25._tcp.mx1.{domain}", type="TLSA", fault=DnsFault.SERVFAIL)
    stage = await harness.stage(world(signed(faults=(fault,))))
    mta = await harness.mta()
    [record] = await deliver(mta, stage)
    assert stage.log.of(SmtpSession) == [] and state(mta) is RecipientState.DEFERRED  # never connected to
    assert (record.result_type, record.mx_host, record.ip, record.policy_type, record.policy_strings) == (
        TlsResultType.DNSSEC_INVALID,
        f"mx1.{stage.domain}",
        "",
        "tlsa",
        (),
    )
    [policy] = (await report(mta, stage))["policies"]
    assert policy["policy"] == {"policy-type": "tlsa", "policy-domain": f"mx1.{stage.domain}"}
    [detail] = policy["failure-details"]
    assert detail["result-type"] == "dnssec-invalid" and "receiving-ip" not in detail


async def test_dane_required_without_tlsa(harness: Harness) -> None:
    stage = await harness.stage(world(signed()))
    mta = await harness.mta(dane_required_domains=frozenset({stage.domain.upper()}))
    [record] = await deliver(mta, stage)
    assert stage.log.of(SmtpSession) == [] and state(mta) is RecipientState.DEFERRED
    assert (record.result_type, record.policy_type, record.policy_strings, record.ip) == (
        TlsResultType.DANE_REQUIRED,
        "tlsa",
        (),
        "",
    )


async def test_dane_required_is_met_by_a_matching_record(harness: Harness) -> None:
    stage = await harness.stage(world(signed()))
    harness.publish_tlsa(stage, harness.tlsa_for(stage))
    mta = await harness.mta(dane_required_domains=frozenset({stage.domain}))
    [record] = await deliver(mta, stage)
    assert state(mta) is RecipientState.DELIVERED and record.result_type is TlsResultType.SUCCESS


async def test_dane_off_looks_nothing_up(harness: Harness) -> None:
    stage = await harness.stage(world(signed()))
    harness.publish_tlsa(stage, WRONG)
    mta = await harness.mta(dane=False)
    await deliver(mta, stage)
    assert state(mta) is RecipientState.DELIVERED and tlsa_queries(stage) == []


# -- report mail (RFC 8460 5.3.1) ------------------------------------------------------------------


async def test_report_mail_does_not_honour_a_dane_failure(harness: Harness) -> None:
    # 5.3.1: "when sending failure reports via SMTP, Sending MTAs MUST NOT honor MTA-STS or DANE
    # TLSA failures": the report goes to the MX whose certificate fails its TLSA record.
    # The DANE report is about the TLSA base domain, mx1 (RFC 8460 section 3), and goes to its rua.
    mailto = DnsRecord(name="_smtp._tls.mx1.{domain}", type="TXT", value="v=TLSRPTv1; rua=mailto:tlsrpt@{domain}")
    stage = await harness.stage(world(DnsSpec(records=(mailto,), dnssec=True)))
    harness.publish_tlsa(stage, WRONG)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = harness.tmp / "dkim.pem"
    key_file.write_bytes(
        key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    info = harness.world.info
    tlsrpt = TlsRptConfig(
        organization_name="Reference Reporter",
        contact_info="tlsrpt@reporter.test",
        reporting_domain="reporter.test",
        dkim_key_file=key_file,
        https_port=info.https[1],
    )
    mta = await harness.mta(tlsrpt=tlsrpt)
    [record] = await deliver(mta, stage)
    assert record.result_type is TlsResultType.TLSA_INVALID and state(mta) is RecipientState.DEFERRED
    await mta.send_reports(domains=[stage.domain, f"mx1.{stage.domain}"])
    assert await mta.wait_idle(20)
    [report_mail] = [m for m in stage.log.of(DeliveredMessage) if m.rcpt_tos == (f"tlsrpt@{stage.domain}",)]
    assert report_mail.host == f"mx1.{stage.domain}" and report_mail.tls
    assert len(mta.tls_records()) == 1  # RFC 8460 3: the report's own session is not recorded


# -- mutants (the negative controls, reference_impl.mta.dane_mutants) --------------------------------


def mutant(name: str) -> MtaVariant:
    [found] = [v for v in dane_mutants.DANE_MUTANTS if v.name == name]
    return found


async def test_mutant_dane_not_enforced_delivers_on_a_mismatch(harness: Harness) -> None:
    stage = await harness.stage(world(signed()))
    harness.publish_tlsa(stage, WRONG)
    mta = await harness.mta(mutant("dane-not-enforced"))
    [record] = await deliver(mta, stage)
    assert state(mta) is RecipientState.DELIVERED and record.result_type is TlsResultType.TLSA_INVALID


async def test_mutant_dnssec_invalid_ignored_delivers_without_a_record(harness: Harness) -> None:
    fault = DnsRule(name="_25._tcp.mx1.{domain}", type="TLSA", fault=DnsFault.SERVFAIL)
    stage = await harness.stage(world(signed(faults=(fault,))))
    mta = await harness.mta(mutant("tlsrpt-dnssec-invalid-ignored"))
    [record] = await deliver(mta, stage)
    assert state(mta) is RecipientState.DELIVERED
    assert (record.result_type, record.policy_type) == (TlsResultType.SUCCESS, "no-policy-found")


async def test_mutant_dane_ignored_never_asks_for_tlsa(harness: Harness) -> None:
    stage = await harness.stage(world(signed()))
    harness.publish_tlsa(stage, WRONG)
    mta = await harness.mta(mutant("dane-ignored"))
    await deliver(mta, stage)
    assert state(mta) is RecipientState.DELIVERED and tlsa_queries(stage) == []


async def test_mutant_dane_as_sts_reports_policy_type_sts(harness: Harness) -> None:
    stage = await harness.stage(world(signed()))
    harness.publish_tlsa(stage, harness.tlsa_for(stage))
    mta = await harness.mta(mutant("tlsrpt-dane-as-sts"))
    await deliver(mta, stage)
    [policy] = (await report(mta, stage))["policies"]
    assert policy["policy"] == {"policy-type": "sts", "policy-domain": f"mx1.{stage.domain}"}
