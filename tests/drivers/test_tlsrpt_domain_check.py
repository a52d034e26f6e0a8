"""The TLSRPT domain check (RFC 8460 section 3) against records staged in the world's DNS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conformance.drivers.tlsrpt_domain_check import (
    TlsRptCheckConfig,
    TlsRptDomainReport,
    check_tlsrpt_domain,
    presentation,
)
from conformance.world.spec import DnsFault, DnsRecord, DnsRule, DnsSpec, WorldSpec
from conformance.world.world import World
from reference_impl.tlsrpt.record import ReportUri, TlsRptRecord


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with World() as running:
        yield running


async def check(world: World, scenario: str, dns: DnsSpec) -> TlsRptDomainReport:
    stage = await world.stage(scenario, WorldSpec(dns=dns))
    return await check_tlsrpt_domain(stage.domain, TlsRptCheckConfig(resolver=world.info.resolver, timeout_s=3.0))


def txt(name: str, *strings: str) -> DnsRecord:
    return DnsRecord(name=name, type="TXT", value=strings)


async def test_good_record_split_over_two_strings(world: World) -> None:
    dns = DnsSpec(
        records=(
            txt("_smtp._tls.{domain}", "v=TLSRPTv1;", "rua=mailto:tlsrpt@{domain}"),
            txt("_smtp._tls.{domain}", "v=spf1 -all"),
        )
    )
    report = await check(world, "tlsrpt/good", dns)
    domain = report.domain
    assert report.ok and report.errors == [] and report.warnings == []
    assert report.name == f"_smtp._tls.{domain}" and report.lookup_status == "ok"
    assert sorted(report.records) == ["v=TLSRPTv1;rua=mailto:tlsrpt@" + domain, "v=spf1 -all"]
    assert report.record == TlsRptRecord((ReportUri(f"mailto:tlsrpt@{domain}", "mailto"),))
    assert f'  "v=TLSRPTv1;" "rua=mailto:tlsrpt@{domain}"' in report.evidence
    assert report.facts()["rua"] == [f"mailto:tlsrpt@{domain}"]


async def test_two_records_mean_no_tlsrpt(world: World) -> None:
    dns = DnsSpec(
        records=(
            txt("_smtp._tls.{domain}", "v=TLSRPTv1; rua=mailto:a@{domain}"),
            txt("_smtp._tls.{domain}", "v=TLSRPTv1; rua=https://r.{domain}/v1"),
        )
    )
    report = await check(world, "tlsrpt/two", dns)
    assert not report.ok and report.errors == ["record-multiple-records"] and report.record is None
    assert len(report.records) == 2


async def test_no_record_and_the_wrong_owner(world: World) -> None:
    dns = DnsSpec(records=(txt("_smtp._tcp.{domain}", "v=TLSRPTv1; rua=mailto:a@{domain}"),))
    report = await check(world, "tlsrpt/none", dns)
    assert report.errors == ["record-none"] and report.warnings == ["record-wrong-owner"]
    assert report.lookup_status == "nxdomain" and report.records == [] and report.record is None
    assert any(line.startswith(f"TXT _smtp._tcp.{report.domain}: ok") for line in report.evidence)


async def test_servfail_is_a_failed_lookup_not_a_missing_record(world: World) -> None:
    dns = DnsSpec(faults=(DnsRule(name="_smtp._tls.{domain}", type="TXT", fault=DnsFault.SERVFAIL),))
    report = await check(world, "tlsrpt/servfail", dns)
    assert report.errors == ["record-lookup-failed"] and report.warnings == []
    assert report.lookup_status == "servfail" and not report.ok


async def test_an_invalid_domain_is_a_finding_not_an_exception() -> None:
    report = await check_tlsrpt_domain("a..example", TlsRptCheckConfig(resolver=("127.0.0.1", 9)))
    assert report.errors == ["record-domain-invalid"] and report.evidence == []


def test_presentation_quotes_each_string() -> None:
    assert presentation((b'v=TLSRPTv1; a"b\\', b"\xff\x00")) == '"v=TLSRPTv1; a\\"b\\\\" "\\255\\000"'
    assert presentation(()) == '""'
