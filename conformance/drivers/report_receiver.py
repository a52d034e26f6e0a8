"""Driver for the report-receiver role: the SUT takes TLSRPT reports (RFC 8460 sections 5.3, 5.4).

The suite plays a report generator. Over HTTPS it POSTs a valid report for the scenario's
domain, or one broken in a single way (bad JSON, schema errors, corrupt gzip, an oversized
body, the wrong media type or method), and records the status the SUT answered. By mail it
delivers a report DKIM-signed by the scenario's sender domain (whose key the world publishes,
``conformance.world.dkim``), signed correctly, not at all, with ``l=``, or tampered after
signing. The facts: ``status``, ``status_class`` ("2xx", "4xx", ..., "none" when the SUT
closed without answering), ``accepted`` (mail: the final reply was 250), and, when the target
can show what it kept, ``stored`` and ``stored_domain``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import secrets
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import dkim

from conformance.catalog.model import MailReport, PostReport
from conformance.drivers.smtpwire import WireClient, WireError
from conformance.targets.base import ReportReceiverEndpoint, Target
from conformance.world.dkim import DKIM_SELECTOR, WorldDkimKey
from conformance.world.world import Stage
from reference_impl.tlsrpt.model import PolicyReport, PolicyType, Report, day_window

_CHUNK = 64 * 1024


class ReceiverDriverError(Exception):
    """The SUT's receiver could not be reached at all (the verdict is ERROR)."""


@dataclass
class ReceiverOutcome:
    facts: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)


def sample_report(domain: str, reporter: str) -> Report:
    """A valid report about ``domain``: yesterday's UTC day, one STS policy, one failure kind."""
    day = datetime.now(UTC).date()
    start, end = day_window(day)
    from reference_impl.tlsrpt.model import FailureDetail, ResultType

    policy = PolicyReport(
        policy_type=PolicyType.STS,
        policy_domain=domain,
        policy_strings=("version: STSv1", "mode: testing", f"mx: mx1.{domain}", "max_age: 86400"),
        mx_hosts=(f"mx1.{domain}",),
        successful=5,
        failed=1,
        failures=(
            FailureDetail(
                result_type=ResultType.CERTIFICATE_EXPIRED,
                failed_session_count=1,
                sending_mta_ip="192.0.2.1",
                receiving_mx_hostname=f"mx1.{domain}",
                receiving_ip="192.0.2.25",
                failure_reason_code="X509_V_ERR_CERT_HAS_EXPIRED",
            ),
        ),
    )
    report_id = f"{day.isoformat()}.{secrets.token_hex(6)}@{reporter}"
    return Report(
        organization_name="MailTLS conformance world",
        start=start,
        end=end,
        contact_info=f"tlsrpt@{reporter}",
        report_id=report_id,
        policies=(policy,),
    )


def _payload(stimulus: PostReport, report: Report) -> tuple[bytes, str]:
    """The body and Content-Type the stimulus asks for."""
    body = report.to_bytes()
    if stimulus.payload == "unknown-keys":
        data = report.to_json()
        data["x-mailtls-extension"] = {"note": "unknown keys must be ignored"}
        body = json.dumps(data).encode()
    elif stimulus.payload == "bad-json":
        body = body[: len(body) // 2]
    elif stimulus.payload == "schema-invalid":
        body = json.dumps({"report-id": 42, "policies": "none"}).encode()
    elif stimulus.payload == "empty":
        body = b""
    compressed = stimulus.gzip or stimulus.payload == "gzip-corrupt"
    if stimulus.payload == "gzip-corrupt":
        body = gzip.compress(body)[:-12] + b"\x00" * 4  # magic right, stream cut and trailer wrong
    elif compressed:
        body = gzip.compress(body, mtime=0)
    media = "application/tlsrpt+gzip" if compressed else "application/tlsrpt+json"
    return body, stimulus.content_type or media


@dataclass(frozen=True, slots=True)
class _Padded:
    """A valid report of ``length`` bytes, made on the fly: its organization-name is padded, so
    a receiver without a size limit would read it all and accept it (a zero-filled body would
    be refused for not being JSON, hiding the missing limit)."""

    head: bytes
    tail: bytes
    length: int

    @classmethod
    def of(cls, report: Report, length: int) -> _Padded:
        data = report.to_json()
        data["organization-name"] = "\0"
        text = json.dumps(data).encode()
        head, _, tail = text.partition(b"\\u0000")
        return cls(head, tail, max(length, len(head) + len(tail)))

    def chunk(self, offset: int, size: int) -> bytes:
        end = min(offset + size, self.length)
        pad_end = self.length - len(self.tail)
        out = bytearray()
        for position in range(offset, end):
            if position < len(self.head):
                out.append(self.head[position])
            elif position < pad_end:
                out.extend(b"a" * (min(end, pad_end) - position))
                break
            else:
                out.append(self.tail[position - pad_end])
        if len(out) < end - offset:  # the padding ended inside this chunk: the tail follows
            out.extend(self.tail[max(0, offset + len(out) - pad_end) : end - pad_end])
        return bytes(out)


def _status_class(status: int | None) -> str:
    return "none" if status is None else f"{status // 100}xx"


async def _post(
    endpoint: ReportReceiverEndpoint,
    method: str,
    content_type: str,
    body: bytes | _Padded,
    length: int,
    timeout: float,
) -> tuple[int | None, list[str]]:
    """One HTTP/1.1 request written by hand, so that an oversized body can be streamed and cut
    off as soon as the SUT answers (a receiver should refuse it from Content-Length alone)."""
    assert endpoint.https_url is not None
    url = urlsplit(endpoint.https_url)
    host = url.hostname or ""
    port = url.port or 443
    sni = endpoint.https_host or host
    context = ssl.create_default_context(cafile=str(endpoint.trust_file)) if endpoint.trust_file else None
    if context is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    evidence = [f"> {method} {endpoint.https_url} ({content_type}, {length} bytes)"]
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=sni), timeout
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise ReceiverDriverError(f"cannot connect to {endpoint.https_url}: {exc}") from exc
    path = url.path or "/"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {sni}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\nUser-Agent: mailtls-conformance\r\n\r\n"
    )
    status: int | None = None
    try:
        writer.write(head.encode())
        response = asyncio.ensure_future(reader.readline())
        sent = 0
        while sent < length and not response.done():
            chunk = body[sent : sent + _CHUNK] if isinstance(body, bytes) else body.chunk(sent, _CHUNK)
            writer.write(chunk)
            sent += len(chunk)
            try:
                await asyncio.wait_for(writer.drain(), timeout)
            except (OSError, TimeoutError):
                break
        if sent < length:
            evidence.append(f"  the SUT answered or closed after {sent} of {length} body bytes")
        line = await asyncio.wait_for(response, timeout)
        text = line.decode("latin-1").rstrip("\r\n")
        evidence.append(f"< {text}" if text else "< (connection closed without a status line)")
        parts = text.split(" ", 2)
        if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
            status = int(parts[1])
    except (OSError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
        evidence.append(f"  connection ended: {exc!r}")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    return status, evidence


def _stored(target: Target, report_id: str, body_domain: str, outcome: ReceiverOutcome) -> None:
    stored = target.stored_reports()
    if stored is None:
        return
    mine = [s for s in stored if s.get("report-id") == report_id]
    outcome.facts["stored"] = bool(mine)
    outcome.facts["stored_domain"] = mine[0].get("domain") if mine else None
    outcome.facts["stored_under_body_domain"] = bool(mine) and mine[0].get("domain") == body_domain
    outcome.evidence.append(f"the SUT kept {len(mine)} report(s) with report-id {report_id}")


async def post_report(stimulus: PostReport, stage: Stage, target: Target, deadline: float) -> ReceiverOutcome:
    endpoint = target.report_receiver()
    if endpoint is None or endpoint.https_url is None:
        raise ReceiverDriverError("the target has no HTTPS report endpoint")
    report = sample_report(stage.domain, stage.names["sender_domain"])
    body, content_type = _payload(stimulus, report)
    length = len(body)
    stream: bytes | _Padded = body
    if stimulus.payload == "oversized":
        stream = _Padded.of(report, stimulus.oversize_bytes)
        length, content_type = stream.length, stimulus.content_type or "application/tlsrpt+json"
    timeout = max(0.5, deadline - time.monotonic())
    status, evidence = await _post(endpoint, stimulus.method, content_type, stream, length, timeout)
    outcome = ReceiverOutcome(facts={"status": status, "status_class": _status_class(status)}, evidence=evidence)
    # A receiver may store asynchronously (5.4: "MAY store them for processing at a later time").
    await asyncio.sleep(0.05)
    _stored(target, report.report_id, stage.domain, outcome)
    return outcome


def report_mail(stimulus: MailReport, stage: Stage, key: WorldDkimKey, to: str) -> tuple[bytes, Report]:
    """A report mail as section 5.3 describes it, signed as the stimulus says."""
    reporter = stage.names["sender_domain"]
    report = sample_report(stage.domain, reporter)
    msg = EmailMessage()
    msg["From"] = f"tlsrpt@{reporter}"
    msg["To"] = to
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=reporter)
    subject_domain = stimulus.subject_domain.replace("{domain}", stage.domain) if stimulus.subject_domain else None
    msg["Subject"] = (
        f"Report Domain: {subject_domain or stage.domain} Submitter: {reporter} Report-ID: <{report.report_id}>"
    )
    msg["TLS-Report-Domain"] = subject_domain or stage.domain
    msg["TLS-Report-Submitter"] = reporter
    msg.set_content("This is an aggregate TLS report from the MailTLS conformance world.\n")
    start, end = int(report.start.timestamp()), int(report.end.timestamp())
    msg.add_attachment(
        gzip.compress(report.to_bytes(), mtime=0),
        maintype="application",
        subtype="tlsrpt+gzip",
        filename=f"{reporter}!{stage.domain}!{start}!{end}!{secrets.token_hex(4)}.json.gz",
    )
    msg.set_type("multipart/report")
    msg.set_param("report-type", "tlsrpt")
    data = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if stimulus.dkim != "none":
        headers = [b"from", b"to", b"subject", b"date", b"message-id", b"tls-report-domain", b"tls-report-submitter"]
        signature = dkim.sign(
            data,
            DKIM_SELECTOR.encode(),
            reporter.encode(),
            key.private_pem,
            include_headers=headers,
            length=stimulus.dkim == "l-tag",
        )
        data = signature + data
        if stimulus.dkim == "tampered":
            data = data.replace(b"This is an aggregate", b"This is an altered aggregate", 1)
    return data, report


async def mail_report(
    stimulus: MailReport, stage: Stage, target: Target, key: WorldDkimKey, deadline: float
) -> ReceiverOutcome:
    endpoint = target.report_receiver()
    if endpoint is None or endpoint.mail_host is None or endpoint.mail_address is None:
        raise ReceiverDriverError("the target has no mail intake for reports")
    data, report = report_mail(stimulus, stage, key, endpoint.mail_address)
    timeout = max(0.5, deadline - time.monotonic())
    outcome = ReceiverOutcome()
    try:
        client = await WireClient.connect(endpoint.mail_host, endpoint.mail_port, timeout=timeout)
    except WireError as exc:
        raise ReceiverDriverError(f"cannot reach the report intake: {exc}") from exc
    final: int | None = None
    try:
        steps = [
            None,
            "EHLO world.mailtls.test",
            f"MAIL FROM:<tlsrpt@{stage.names['sender_domain']}>",
            f"RCPT TO:<{endpoint.mail_address}>",
            "DATA",
        ]
        for step in steps:
            reply = await (client.reply() if step is None else client.command(step))
            if reply.code >= 400:
                break
        else:
            body = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in data.split(b"\r\n"))
            await client.send_raw(body.rstrip(b"\r\n") + b"\r\n.\r\n")
            reply = await client.reply()
        final = reply.code
        with contextlib.suppress(WireError):
            await client.command("QUIT")
    except WireError as exc:
        outcome.evidence.append(f"session ended: {exc}")
    finally:
        outcome.evidence += client.transcript
        await client.close()
    outcome.facts["accepted"] = final == 250
    outcome.facts["reply"] = final
    await asyncio.sleep(0.05)
    _stored(target, report.report_id, stage.domain, outcome)
    return outcome
