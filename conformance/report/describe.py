"""How a scenario is described in the report: the world it stages and what it expects.

Both come from the catalog entry, not from the run, so they read the same for every target:
``setup`` is a compact rendering of the scenario's ``world`` (and stimulus and later phases),
one line per DNS record, fault, MX host, policy host or report endpoint, showing only what
differs from the well-behaved default; ``expected_behaviour`` is one line per expectation,
``delivered host=mx1.{domain} tls=true``. ``{domain}`` stands for the scenario's own domain,
which the world names when it stages the scenario.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from conformance.catalog.model import AnyOf, CheckDomain, Fact, MailReport, PostReport, Probe, Scenario, SendMessage
from conformance.world.spec import (
    CertSpec,
    DnsPatch,
    DnsSpec,
    MxHost,
    PolicyHost,
    ReportEndpoint,
    WorldPatch,
    WorldSpec,
)

# Expectation fields that are not part of what is expected (shown elsewhere or not at all).
_CHECK_META = {"check", "requirement", "because"}
_MAX_VALUE = 160  # one setup value (a policy body) is cut here; the scenario file has it whole


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = " | ".join(line for line in value.splitlines() if line.strip()) if "\n" in value else value
        return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return ",".join(_value(v) for v in value)
    return str(value)


def _flat(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key=value`` pairs of a model's non-default fields, nested models dotted."""
    pairs: list[str] = []
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            pairs += _flat(value, f"{prefix}{key}.")
        elif value is not None:
            pairs.append(f"{prefix}{key}={_value(value)}")
    return pairs


def _changes(model: BaseModel, *, skip: Iterable[str] = ()) -> str:
    data = model.model_dump(mode="json", exclude_defaults=True, by_alias=True, exclude=set(skip))
    return " ".join(_flat(data))


def _mx(host: MxHost) -> str:
    head = f"MX {host.preference} {host.name}" if host.publish_mx else f"host {host.name} (A record only, no MX)"
    if not host.listen:
        return f"{head}: nothing listens (connection refused)"
    parts = [f"STARTTLS {'offered' if host.smtp.starttls else 'not offered'}", _cert(host.smtp.cert)]
    rest = _changes(host.smtp, skip={"starttls", "cert"})
    if rest:
        parts.append(rest)
    if host.mitm is not None:
        inject = f" injecting {host.mitm.inject!r}" if host.mitm.inject else ""
        parts.append(f"attacker in the middle: {host.mitm.mode}{inject}")
    return f"{head}: " + ", ".join(parts)


def _cert(cert: CertSpec) -> str:
    names = f" for {_value(cert.names)}" if cert.names else ""
    return f"certificate {cert.profile}{names}"


def _policy_host(host: PolicyHost) -> str:
    line = f"policy host https://{host.name}{host.path}: status {host.status}, {_cert(host.cert)}"
    rest = _changes(host, skip={"name", "path", "body", "status", "cert"})
    if rest:
        line += f", {rest}"
    if host.body:
        line += f"; body: {_value(host.body)}"
    return line


def _endpoint(endpoint: ReportEndpoint) -> str:
    rest = _changes(endpoint, skip={"name", "path", "status", "cert"})
    line = f"report endpoint https://{endpoint.name}{endpoint.path}: answers {endpoint.status}, {_cert(endpoint.cert)}"
    return f"{line}, {rest}" if rest else line


def _dns(dns: DnsSpec | DnsPatch) -> list[str]:
    records = dns.records if isinstance(dns, DnsSpec) else dns.set
    lines = [f"DNS {r.name} {r.type} {_value(r.value)!r}" + (f" ttl={r.ttl}" if r.ttl != 300 else "") for r in records]
    if isinstance(dns, DnsPatch):
        lines = [f"DNS set {line[4:]}" for line in lines]
        lines += [f"DNS remove {k.name} {k.type}" for k in dns.remove]
    for fault in dns.faults or ():
        lines.append(f"DNS fault {fault.name} {fault.type or 'any type'}: {fault.fault}")
    if isinstance(dns, DnsSpec) and dns.dnssec:
        lines.append("DNS answers carry the AD bit (DNSSEC-validated)")
    return lines


def world_lines(world: WorldSpec) -> list[str]:
    lines = _dns(world.dns)
    lines += [_mx(h) for h in world.mx]
    lines += [_policy_host(h) for h in world.policy_hosts]
    lines += [_endpoint(e) for e in world.report_endpoints]
    return lines


def _patch_lines(patch: WorldPatch) -> list[str]:
    return _dns(patch.dns) + [_policy_host(h) for h in patch.policy_hosts]


def _stimulus(scenario: Scenario) -> str:
    s = scenario.stimulus
    if isinstance(s, SendMessage):
        return _send(s)
    if isinstance(s, Probe):
        options = " ".join(_flat(s.options))
        return f"probe {s.probe} against the SUT's SMTP server" + (f" ({options})" if options else "")
    if isinstance(s, CheckDomain):
        mx = ", with its MX hosts" if s.check_mx and s.what == "mta-sts" else ""
        return f"check the {s.what} deployment of the policy domain{mx}"
    if isinstance(s, PostReport):
        return f"POST a TLSRPT report to the SUT: {_changes(s, skip={'kind'}) or 'payload=valid'}"
    assert isinstance(s, MailReport)
    return f"mail a TLSRPT report to the SUT: {_changes(s, skip={'kind'}) or 'dkim=valid'}"


def _send(s: SendMessage) -> str:
    line = f"the SUT is given a message from {s.sender} to {_value(s.recipients)}"
    if s.mail_params:
        line += f", MAIL FROM parameters {' '.join(s.mail_params)}"
    if s.headers:
        line += ", header " + "; ".join(f"{name}: {value}" for name, value in s.headers)
    if s.tls:
        line += ", submitted over STARTTLS"
    return line


def setup(scenario: Scenario) -> tuple[str, ...]:
    """What the world does in this scenario, and the stimulus, in reading order."""
    lines = [f"role of the SUT: {scenario.role.value}"]
    if scenario.needs:
        lines.append(f"needs the target to claim: {', '.join(scenario.needs)}")
    lines += world_lines(scenario.world)
    lines.append(f"stimulus: {_stimulus(scenario)}")
    for number, phase in enumerate(scenario.then, start=2):
        wait = f" after {phase.wait_s:g} s" if phase.wait_s else ""
        lines.append(f"phase {number}{wait}: {phase.title or 'next message'}")
        lines += [f"  {line}" for line in _patch_lines(phase.world)]
        lines.append(f"  stimulus: {_send(phase.stimulus)}")
    return tuple(lines)


def _check_line(check: BaseModel) -> str:
    if isinstance(check, AnyOf):
        readings = "; ".join(
            f"{reading.name}: " + ", ".join(_check_line(c) for c in reading.expect) for reading in check.readings
        )
        line = f"any-of (one reading followed completely) {readings}"
    elif isinstance(check, Fact):
        comparisons = check.model_dump(
            mode="json", exclude_defaults=True, by_alias=True, exclude={*_CHECK_META, "fact"}
        )
        line = " ".join([f"fact {check.fact}", *(f"{op} {_value(v)}" for op, v in comparisons.items())])
    else:
        kind = getattr(check, "check", type(check).__name__)
        fields = _changes(check, skip=_CHECK_META)
        line = f"{kind} {fields}".rstrip()
    because = getattr(check, "because", "")
    return f"{line} ({because})" if because else line


def expected_behaviour(scenario: Scenario) -> tuple[str, ...]:
    """One line per expectation; later phases prefixed ``phase N:``."""
    lines = [_check_line(c) for c in scenario.expect]
    for number, phase in enumerate(scenario.then, start=2):
        lines += [f"phase {number}: {_check_line(c)}" for c in phase.expect]
    return tuple(lines)


def covered_requirements(scenario: Scenario) -> tuple[str, ...]:
    """Every requirement the scenario tests: its own, then those its checks cite."""
    checks = [*scenario.expect, *(c for phase in scenario.then for c in phase.expect)]
    cited = [c.requirement for c in checks if c.requirement]
    return tuple(dict.fromkeys([*scenario.requirements, *cited]))
