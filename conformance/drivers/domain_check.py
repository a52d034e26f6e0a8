"""Linting a policy domain's MTA-STS deployment (RFC 8461), as an operator or a scenario sees it.

One pass over everything a sender would look at: the ``_mta-sts`` TXT record (3.1), the
policy host and its certificate and response (3.3), the policy file (3.2), and each MX host
the domain publishes, against the policy (4.1, 4.2, 5, 7.2). Every problem is a ``Finding``
naming its rule and RFC section, from the same parsers the reference sender uses, so the
linter and the reference cannot disagree. Used by ``mailtls mta-sts check-domain`` against
real DNS and HTTPS, and by the policy-domain scenarios against the world.
"""

from __future__ import annotations

import contextlib
import ssl
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from conformance.drivers.smtpwire import WireClient, WireError, unverified_context
from reference_impl.mtasts.discovery import TxtAnswer
from reference_impl.mtasts.errors import Finding, MtaStsError
from reference_impl.mtasts.fetch import address_resolver, fetch_policy, txt_lookup
from reference_impl.mtasts.lint import lint_policy, lint_record
from reference_impl.mtasts.matching import policy_allows_mx
from reference_impl.mtasts.policy import Mode, Policy, parse_policy
from reference_impl.mtasts.record import select_record

_OLD_TLS = {"TLSv1", "TLSv1.1", "SSLv3"}


@dataclass(frozen=True, slots=True)
class DomainCheckConfig:
    resolver: tuple[str, int] | None = None  # None: the system's resolver
    https_port: int = 443
    smtp_port: int = 25
    ca_file: Path | None = None  # None: the system's trust store
    timeout_s: float = 15.0
    check_mx: bool = True


@dataclass
class DomainReport:
    domain: str
    findings: list[Finding] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    policy: Policy | None = None

    def add(self, rule: str, section: str, message: str, *, error: bool = True) -> None:
        self.findings.append(Finding(rule, section, "error" if error else "warning", message))

    @property
    def errors(self) -> list[str]:
        return sorted({f.rule for f in self.findings if f.severity == "error"})

    @property
    def warnings(self) -> list[str]:
        return sorted({f.rule for f in self.findings if f.severity == "warning"})

    def facts(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "warnings": self.warnings,
            "policy_mode": self.policy.mode.value if self.policy else None,
            "ok": not self.errors,
        }


def make_resolver(config: DomainCheckConfig) -> dns.asyncresolver.Resolver:
    if config.resolver is None:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [config.resolver[0]]
        resolver.port = config.resolver[1]
    resolver.lifetime = min(config.timeout_s, 10.0)
    return resolver


async def check_domain(domain: str, config: DomainCheckConfig) -> DomainReport:
    domain = domain.rstrip(".").lower()
    report = DomainReport(domain)
    resolver = make_resolver(config)
    record_ok = await _check_record(domain, resolver, report)
    policy = await _check_policy(domain, resolver, config, report)
    report.policy = policy
    if policy is not None and not record_ok:
        report.evidence.append("a policy is published, but senders will not look for it without a valid TXT record")
    if config.check_mx and policy is not None and policy.mode is not Mode.NONE:
        await _check_mx_hosts(domain, resolver, config, policy, report)
    return report


async def _check_record(domain: str, resolver: dns.asyncresolver.Resolver, report: DomainReport) -> bool:
    name = f"_mta-sts.{domain}"
    answer: TxtAnswer = await txt_lookup(resolver)(name)
    report.evidence.append(f"TXT {name}: {answer.status}, {len(answer.rrs)} record(s)")
    if answer.status in ("servfail", "timeout"):
        report.add("txt-lookup-failed", "3.1", f"the lookup of {name} failed ({answer.status})")
        return False
    texts = [b"".join(rr).decode("utf-8", "replace") for rr in answer.rrs]
    for text in texts:
        report.evidence.append(f"  {text!r}")
    sts = [t for t in texts if t.startswith("v=STSv1")]
    for text in sts:
        report.findings.extend(lint_record(text))
    try:
        record = select_record(answer.rrs)
    except MtaStsError as exc:
        if not any(f.rule == exc.rule for f in report.findings):
            report.add(exc.rule, exc.section, exc.detail)
        return False
    if record is None:
        report.add("txt-missing", "3.1", f"no TXT record starting with v=STSv1; at {name}: senders see no policy")
        return False
    return True


async def _check_policy(
    domain: str, resolver: dns.asyncresolver.Resolver, config: DomainCheckConfig, report: DomainReport
) -> Policy | None:
    result = await fetch_policy(
        domain,
        port=config.https_port,
        ca_file=config.ca_file,
        timeout_s=config.timeout_s,
        resolve=address_resolver(resolver),
    )
    if not result.ok or result.body is None:
        error = result.error
        kind = error.kind.value if error is not None else "unknown"
        detail = error.detail if error is not None else "no body"
        report.add(f"policy-fetch-{kind}", "3.3", f"https://mta-sts.{domain}/.well-known/mta-sts.txt: {detail}")
        return None
    report.evidence.append(f"policy fetched: {len(result.body)} bytes")
    report.findings.extend(lint_policy(result.body))
    try:
        return parse_policy(result.body)
    except MtaStsError:
        return None  # the lint findings already name the rule


async def _check_mx_hosts(
    domain: str, resolver: dns.asyncresolver.Resolver, config: DomainCheckConfig, policy: Policy, report: DomainReport
) -> None:
    enforce = policy.mode is Mode.ENFORCE
    try:
        answer = await resolver.resolve(dns.name.from_text(domain), "MX", search=False)
        hosts = sorted((r.preference, str(r.exchange).rstrip(".").lower()) for r in answer)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        hosts = [(0, domain)]  # the implicit MX (RFC 5321 5.1)
    except dns.exception.DNSException as exc:
        report.add("mx-lookup-failed", "4", f"MX lookup for {domain} failed: {exc}", error=False)
        return
    resolve = address_resolver(resolver)
    for _, host in hosts:
        if not policy_allows_mx(policy, host):
            report.add(
                "mx-not-in-policy",
                "4.1",
                f"MX {host} matches no mx pattern ({', '.join(policy.mx)}): senders will not deliver to it",
                error=enforce,
            )
            continue
        try:
            addresses = await resolve(host)
        except dns.exception.DNSException as exc:
            report.add("mx-unresolvable", "4", f"{host}: {exc}", error=False)
            continue
        if not addresses:
            report.add("mx-unresolvable", "4", f"{host} has no address", error=False)
            continue
        await _check_mx_tls(host, addresses[0], config, report, enforce)


async def _check_mx_tls(
    host: str, address: str, config: DomainCheckConfig, report: DomainReport, enforce: bool
) -> None:
    """RFC 8461 4.2 and 7.2: STARTTLS, a certificate valid for the MX name, TLS 1.2 or higher."""
    verify = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    verify.hostname_checks_common_name = False  # 4.2: DNS-ID only
    # Accept old versions here so a TLS 1.1 MX is reported as such (7.2), not as a certificate fault.
    verify.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        verify.minimum_version = ssl.TLSVersion.TLSv1
    lenient = unverified_context(ssl.TLSVersion.TLSv1)
    for attempt, context in (("verified", verify), ("lenient", lenient)):
        try:
            client = await WireClient.connect(address, config.smtp_port, timeout=config.timeout_s)
        except WireError as exc:
            report.add("mx-unreachable", "4", f"{host} ({address}:{config.smtp_port}): {exc}", error=False)
            return
        try:
            await client.reply()
            ehlo = await client.command("EHLO mta-sts-check.mailtls.test")
            if "STARTTLS" not in ehlo.keywords():
                report.add("mx-no-starttls", "4.2", f"{host} does not offer STARTTLS", error=enforce)
                return
            if (await client.command("STARTTLS")).code != 220:
                report.add("mx-starttls-refused", "4.2", f"{host} refused STARTTLS", error=enforce)
                return
            try:
                await client.starttls(context, host)
            except WireError as exc:
                if attempt == "verified":
                    report.add("mx-certificate-invalid", "4.2", f"{host}: {exc}", error=enforce)
                    continue
                report.add("mx-tls-failed", "7.2", f"{host}: {exc}", error=enforce)
                return
            version, _, _ = client.tls_facts()
            report.evidence.append(f"MX {host}: STARTTLS, {version} ({attempt})")
            if version in _OLD_TLS:
                report.add(
                    "mx-tls-version",
                    "7.2",
                    f"{host} negotiated {version}; TLS 1.2 or higher is required",
                    error=enforce,
                )
            with contextlib.suppress(WireError):
                await client.command("QUIT")
            return
        except WireError as exc:
            report.add("mx-smtp-failed", "4", f"{host}: {exc}", error=False)
            return
        finally:
            await client.close()
