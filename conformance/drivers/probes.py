"""Probes: what the suite does to a SUT acting as an SMTP server, and the facts it learns.

Each probe connects to the SUT's SMTP endpoint, performs one experiment, and returns facts
(plain JSON values) plus the transcript as evidence. Scenarios compare facts with ``fact``
checks, so one probe serves many scenarios. Probes never raise for SUT behaviour: a SUT that
closes, stalls or sends garbage becomes a fact (``error``) or a ProbeError (ERROR verdict).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from conformance.drivers.smtpwire import WireClient, WireError, unverified_context
from conformance.targets.base import SmtpEndpoint

PROBE_EHLO_NAME = "probe.mailtls.test"

_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


class ProbeError(Exception):
    """The probe could not run its experiment (setup problem): the verdict is ERROR."""


class ProbePrecondition(ProbeError):
    """The experiment does not apply to this SUT (e.g. no STARTTLS to inject around): N/A."""


@dataclass
class ProbeResult:
    facts: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ProbeContext:
    endpoint: SmtpEndpoint
    trust_file: str  # the CA bundle that should verify the SUT's certificate
    timeout: float
    options: dict[str, Any]


ProbeFn = Callable[[ProbeContext], Awaitable[ProbeResult]]
PROBES: dict[str, ProbeFn] = {}


def probe(name: str) -> Callable[[ProbeFn], ProbeFn]:
    def register(fn: ProbeFn) -> ProbeFn:
        PROBES[name] = fn
        return fn

    return register


async def _open(ctx: ProbeContext, result: ProbeResult) -> tuple[WireClient, list[str]]:
    """Connect, read the greeting, EHLO; returns the client and the EHLO keywords."""
    try:
        client = await WireClient.connect(ctx.endpoint.host, ctx.endpoint.port, timeout=ctx.timeout)
    except WireError as exc:
        raise ProbeError(str(exc)) from exc
    try:
        greeting = await client.reply()
        result.facts["greeting_code"] = greeting.code
        ehlo = await client.command(f"EHLO {PROBE_EHLO_NAME}")
    except WireError as exc:
        result.evidence += client.transcript
        await client.close()
        raise ProbeError(f"SUT failed before STARTTLS: {exc}") from exc
    result.facts["ehlo_code"] = ehlo.code
    keywords = ehlo.keywords() if ehlo.code == 250 else []
    result.facts["ehlo_keywords"] = keywords
    result.facts["starttls_offered"] = "STARTTLS" in keywords
    return client, keywords


@probe("ehlo")
async def probe_ehlo(ctx: ProbeContext) -> ProbeResult:
    """Greeting and EHLO keywords before TLS."""
    result = ProbeResult()
    client, _ = await _open(ctx, result)
    try:
        await client.command("QUIT")
    except WireError:
        pass
    finally:
        result.evidence += client.transcript
        await client.close()
    return result


@probe("starttls")
async def probe_starttls(ctx: ProbeContext) -> ProbeResult:
    """STARTTLS, the TLS facts, the certificate judged against the MX name (RFC 8461 4.2:
    DNS-ID, trusted chain), and the EHLO after TLS."""
    result = ProbeResult()
    verify = ssl.create_default_context(cafile=ctx.trust_file)
    verify.minimum_version = ssl.TLSVersion.TLSv1_2
    # The unverified attempt accepts any version too, so a server stuck on an old version
    # shows which one it negotiates instead of just failing.
    lenient = unverified_context(ssl.TLSVersion.TLSv1)
    for attempt, context in (("verified", verify), ("unverified", lenient)):
        client, _keywords = await _open(ctx, result)
        try:
            reply = await client.command("STARTTLS")
            result.facts["starttls_code"] = reply.code
            if reply.code != 220:
                result.facts["tls_established"] = False
                return result
            try:
                await client.starttls(context, ctx.endpoint.mx_name)
            except WireError as exc:
                if attempt == "verified":
                    result.facts["cert_valid_for_mx"] = False
                    result.facts["cert_error"] = str(exc)
                    continue
                result.facts["tls_established"] = False
                result.facts["tls_error"] = str(exc)
                return result
            if attempt == "verified":
                result.facts["cert_valid_for_mx"] = True
            version, cipher, _ = client.tls_facts()
            result.facts.update(tls_established=True, tls_version=version, cipher=cipher)
            after = await client.command(f"EHLO {PROBE_EHLO_NAME}")
            result.facts["ehlo_after_tls_keywords"] = after.keywords()
            result.facts["starttls_offered_after_tls"] = "STARTTLS" in after.keywords()
            await client.command("QUIT")
            return result
        except WireError as exc:
            result.facts["error"] = str(exc)
            return result
        finally:
            result.evidence.append(f"-- {attempt} handshake against {ctx.endpoint.mx_name}")
            result.evidence += client.transcript
            await client.close()
    return result


@probe("tls-version")
async def probe_tls_version(ctx: ProbeContext) -> ProbeResult:
    """Offer exactly one TLS version (option ``version``); fact ``accepted``."""
    name = str(ctx.options.get("version", ""))
    if name not in _VERSIONS:
        raise ProbeError(f"tls-version probe: unknown version {name!r}")
    version = _VERSIONS[name]
    result = ProbeResult()
    client, _ = await _open(ctx, result)
    try:
        reply = await client.command("STARTTLS")
        if reply.code != 220:
            raise ProbeError(f"STARTTLS refused with {reply.code}; cannot test {name}")
        try:
            await client.starttls(unverified_context(version, version), ctx.endpoint.mx_name)
        except WireError as exc:
            result.facts.update(accepted=False, detail=str(exc))
            return result
        negotiated, _, _ = client.tls_facts()
        result.facts.update(accepted=negotiated == name, negotiated=negotiated)
        return result
    finally:
        result.evidence.append(f"-- client offered only {name}")
        result.evidence += client.transcript
        await client.close()


@probe("starttls-injection")
async def probe_starttls_injection(ctx: ProbeContext) -> ProbeResult:
    """RFC 3207 4.2 / RFC 8314 Appendix A (CVE-2011-0411): send ``STARTTLS`` and a plaintext
    ``NOOP`` in one segment; after the handshake send ``EHLO`` and ``QUIT`` and count the
    replies. A server that discards the pipelined plaintext answers twice (EHLO, QUIT); one
    that executes it answers three times, the first being the injected NOOP's."""
    result = ProbeResult()
    client, keywords = await _open(ctx, result)
    try:
        if "STARTTLS" not in keywords:
            raise ProbePrecondition("the SUT does not offer STARTTLS, so nothing can be injected around it")
        await client.send_raw(b"STARTTLS\r\nNOOP injected-before-tls\r\n")
        reply = await client.reply()
        if reply.code != 220:
            raise ProbeError(f"STARTTLS answered {reply.code}")
        await client.starttls(unverified_context(ssl.TLSVersion.TLSv1), ctx.endpoint.mx_name)
        await client.send_raw(f"EHLO {PROBE_EHLO_NAME}\r\nQUIT\r\n".encode())
        replies = []
        while True:
            try:
                replies.append(await client.reply())
            except WireError:
                break  # the SUT closed after QUIT (or gave up): count what we got
            if replies[-1].code == 221 or len(replies) >= 5:
                break
        codes = [r.code for r in replies]
        result.facts["replies_after_tls"] = codes
        # Replies arrive in order: a first reply that is not the multi-purpose EHLO reply
        # sequence of [EHLO, QUIT] means the injected command was executed under TLS.
        result.facts["injected_command_executed"] = len(replies) > 2 or (len(replies) == 2 and codes[-1] != 221)
        return result
    except WireError as exc:
        raise ProbeError(f"injection probe could not finish: {exc}") from exc
    finally:
        result.evidence += client.transcript
        await client.close()


def _dns_names(der: bytes | None) -> list[str]:
    """The DNS-IDs (subjectAltName dNSName) of a certificate, lower case."""
    if not der:
        return []
    try:
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return []
    return [name.lower() for name in san.get_values_for_type(x509.DNSName)]


def _dns_id_matches(reference: str, presented: str) -> bool:
    """RFC 6125 6.4 as RFC 8461 4.2 narrows it: exact, or a wildcard as the whole left-most label."""
    reference, presented = reference.lower().rstrip("."), presented.lower().rstrip(".")
    if presented.startswith("*."):
        head, _, rest = reference.partition(".")
        return bool(head) and rest == presented[2:]
    return reference == presented


@probe("sni-fallback")
async def probe_sni_fallback(ctx: ProbeContext) -> ProbeResult:
    """RFC 8461 7.1: with no SNI, or a name the server does not know (option ``sni``; null
    means none), the server still completes the handshake with a fallback certificate."""
    sni = ctx.options.get("sni")
    result = ProbeResult()
    client, keywords = await _open(ctx, result)
    try:
        if "STARTTLS" not in keywords:
            raise ProbePrecondition("the SUT does not offer STARTTLS")
        reply = await client.command("STARTTLS")
        if reply.code != 220:
            raise ProbePrecondition(f"STARTTLS answered {reply.code}")
        try:
            await client.starttls(unverified_context(), str(sni) if sni else None)
        except WireError as exc:
            result.facts.update(tls_established=False, tls_error=str(exc))
            return result
        version, _, der = client.tls_facts()
        names = _dns_names(der)
        result.facts.update(
            tls_established=True,
            tls_version=version,
            cert_dns_names=names,
            cert_names_mx=any(_dns_id_matches(ctx.endpoint.mx_name, n) for n in names),
        )
        with contextlib.suppress(WireError):
            await client.command("QUIT")
        return result
    finally:
        result.evidence.append(f"-- handshake with SNI {sni!r}")
        result.evidence += client.transcript
        await client.close()
