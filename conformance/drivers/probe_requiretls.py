"""The REQUIRETLS probe: how a receiving MTA offers and takes REQUIRETLS (RFC 8689 sections 2, 4).

Two sessions. In cleartext: is REQUIRETLS listed in the EHLO reply (not regulated: recorded,
never judged), and what does the server answer to ``MAIL FROM:<..> REQUIRETLS`` (the RFC leaves
the code open: recorded). After STARTTLS: is REQUIRETLS listed (section 2: it MUST be, for a
server that supports it), is ``REQUIRETLS=YES`` refused (the parameter takes no value, section
4), and is ``MAIL FROM:<..> REQUIRETLS`` accepted. No message is sent: every transaction ends
with RSET.
"""

from __future__ import annotations

import contextlib

from conformance.drivers.probes import PROBE_EHLO_NAME, ProbeContext, ProbePrecondition, ProbeResult, _open, probe
from conformance.drivers.smtpwire import WireClient, WireError, unverified_context

_SENDER = "probe@sender.mailtls.test"


async def _mail(client: WireClient, params: str) -> int:
    reply = await client.command(f"MAIL FROM:<{_SENDER}> {params}")
    with contextlib.suppress(WireError):
        await client.command("RSET")
    return reply.code


async def _close(client: WireClient, result: ProbeResult, label: str) -> None:
    with contextlib.suppress(WireError):
        await client.command("QUIT")
    result.evidence.append(f"-- {label}")
    result.evidence += client.transcript
    await client.close()


@probe("requiretls")
async def probe_requiretls(ctx: ProbeContext) -> ProbeResult:
    result = ProbeResult()
    client, keywords = await _open(ctx, result)
    try:
        result.facts["requiretls_before_tls"] = "REQUIRETLS" in keywords
        code = await _mail(client, "REQUIRETLS")
        result.facts["cleartext_param_reply"] = code
        result.facts["cleartext_param_accepted"] = code == 250
    except WireError as exc:
        result.facts["error"] = str(exc)
    finally:
        await _close(client, result, "cleartext session")
    client, keywords = await _open(ctx, result)
    try:
        if "STARTTLS" not in keywords:
            raise ProbePrecondition("the SUT offers no STARTTLS, so REQUIRETLS cannot apply")
        reply = await client.command("STARTTLS")
        if reply.code != 220:
            raise ProbePrecondition(f"STARTTLS answered {reply.code}")
        await client.starttls(unverified_context(), ctx.endpoint.mx_name)
        after = await client.command(f"EHLO {PROBE_EHLO_NAME}")
        result.facts["requiretls_after_tls"] = "REQUIRETLS" in after.keywords()
        code = await _mail(client, "REQUIRETLS=YES")
        result.facts["value_param_reply"] = code
        result.facts["value_param_refused"] = 500 <= code < 600
        code = await _mail(client, "REQUIRETLS")
        result.facts["tls_param_reply"] = code
        result.facts["tls_param_accepted"] = code == 250
    except WireError as exc:
        result.facts["error"] = str(exc)
    finally:
        await _close(client, result, "STARTTLS session")
    return result
