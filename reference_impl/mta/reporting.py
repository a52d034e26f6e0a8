"""TLSRPT for the reference MTA: the daily report run and its deliveries (RFC 8460 sections 3-5).

:meth:`ReportAgent.send_reports` is one run for one UTC day (section 4.1):

1. The TLS session records of the day (:class:`~reference_impl.mta.records.TlsRecordStore`)
   give the Policy Domains to report on (A-labels, section 4.4).
2. For each, ``_smtp._tls.<domain>`` TXT is looked up through the MTA's own DNS server
   (section 3). No record, several records, a malformed record or a failed lookup: no report,
   logged ("senders MUST assume the recipient domain does not implement TLSRPT").
3. The report is built from every record of the day present now
   (:mod:`reference_impl.tlsrpt.aggregate`), with a fresh report-id: running twice for a day
   regenerates the day's report under a new id.
4. It goes to every ``rua`` URI (section 3: "MAY attempt to deliver to each"):

   * ``https:`` (section 5.4): stored in the durable :class:`~reference_impl.tlsrpt.outbox.Outbox`
     and posted at once; a failure is retried with exponential backoff for 24 hours after the
     first attempt (section 5.5) by the MTA's runner (:meth:`ReportAgent.claim_due`,
     :meth:`ReportAgent.attempt`). Once one URI of a report took it, the others stop
     (section 3: delivered "until one of the endpoints accepts delivery of the report"), and a
     regenerated report of the same day and domain stops the retries of the older one.
   * ``mailto:`` (sections 3, 5.3): a DKIM-signed ``multipart/report`` message is put into the
     MTA's own durable queue, flagged as a report: its sessions are delivered despite any TLS
     failure and are not recorded for the next report (the MTA obeys the flag). Without a
     DKIM key no report mail is sent: section 3 says reports sent via SMTP "MUST contain a
     valid DKIM signature" and receivers MUST ignore them otherwise. The envelope sender is
     ``tlsrpt-noreply@<reporting domain>`` and the recipient asks for no DSN (``NOTIFY=NEVER``):
     a bounce about a report would only be a report about a report.

Every decision a mutant may change is a field of
:class:`~reference_impl.mta.tlsrpt_parts.TlsRptParts`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from reference_impl.mta.clock import Clock
from reference_impl.mta.errors import MtaConfigError, MtaError
from reference_impl.mta.records import TlsRecordStore, TlsSessionRecord
from reference_impl.mta.tlsrpt_parts import TlsRptParts
from reference_impl.mtasts.fetch import Resolve, TxtLookup
from reference_impl.tlsrpt.aggregate import (
    Reporter,
    a_label,
    build_report,
    new_report_id,
    policy_domains,
    report_id_prefix,
    report_token,
)
from reference_impl.tlsrpt.compose import DkimSigner, document_bytes, gzip_bytes, report_mail, submitter_of
from reference_impl.tlsrpt.errors import TlsRptError
from reference_impl.tlsrpt.model import Report
from reference_impl.tlsrpt.outbox import Outbox, OutboxEntry, PostState
from reference_impl.tlsrpt.post import post_report
from reference_impl.tlsrpt.record import ReportUri, mailto_address, record_name

__all__ = [
    "RecordStatus",
    "ReportAgent",
    "ReportOutcome",
    "TlsRptConfig",
    "UriOutcome",
    "UriStatus",
    "next_daily_run",
]

log = logging.getLogger(__name__)

# (envelope sender, recipient, message, MAIL parameters) -> queue message id
MailSubmit = Callable[[str, str, bytes, tuple[str, ...]], int]


@dataclass(frozen=True, slots=True)
class TlsRptConfig:
    """Reporting settings (None in ``MtaConfig.tlsrpt``: reporting is off)."""

    organization_name: str  # section 4.4 "organization-name"
    contact_info: str  # section 4.4 "contact-info": an addr-spec; its domain is the submitter (5.3)
    reporting_domain: str  # report-ids, DKIM d=, the envelope sender of report mail
    dkim_selector: str = "tlsrpt"
    dkim_key_file: Path | None = None  # PEM private key; None: no report mail (section 3 MUST sign)
    https_port: int | None = None  # port for https: URIs without one (None: 443)
    post_timeout_s: float = 60.0  # one POST attempt, resolution to response

    def __post_init__(self) -> None:
        try:
            submitter_of(self.contact_info)
        except TlsRptError as exc:
            raise MtaConfigError(f"TLSRPT contact-info must be an address: {exc.detail}") from None
        if not self.reporting_domain or not self.organization_name:
            raise MtaConfigError("TLSRPT needs an organization name and a reporting domain")
        if self.post_timeout_s <= 0:
            raise MtaConfigError("the TLSRPT POST timeout must be positive")

    @property
    def submitter(self) -> str:
        """Section 5.3 ``TLS-Report-Submitter`` and 5.1 ``sender``: the contact-info's domain."""
        return submitter_of(self.contact_info)

    @property
    def mail_sender(self) -> str:
        return f"tlsrpt-noreply@{self.reporting_domain}"


class RecordStatus(StrEnum):
    FOUND = "found"
    NO_RECORD = "no-record"  # none, or not exactly one v=TLSRPTv1 record (section 3)
    INVALID_RECORD = "invalid-record"
    LOOKUP_FAILED = "lookup-failed"  # SERVFAIL or timeout: nothing known, no report


class UriStatus(StrEnum):
    DELIVERED = "delivered"  # a 2xx (section 5.4)
    FAILED_WILL_RETRY = "failed-will-retry"  # section 5.5
    FAILED = "failed"  # unusable URI, or the 24 hours are over
    SUPERSEDED = "superseded"  # failed, not retried: another URI took the report (section 3)
    QUEUED_AS_MAIL = "queued-as-mail"


@dataclass(frozen=True, slots=True)
class UriOutcome:
    uri: str
    status: UriStatus
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """What one run did for one Policy Domain."""

    policy_domain: str
    record: RecordStatus
    report: Report | None = None
    document: bytes | None = None  # the JSON text sent (before compression)
    deliveries: tuple[UriOutcome, ...] = ()
    detail: str = ""

    @property
    def report_id(self) -> str | None:
        return self.report.report_id if self.report is not None else None

    def __str__(self) -> str:
        """One line of evidence: ``d.test: found, report <id>: uri delivered; uri queued-as-mail``."""
        head = f"{self.policy_domain}: {self.record.value}"
        if self.report is None:
            return f"{head} ({self.detail})" if self.detail else head
        deliveries = "; ".join(
            f"{d.uri} {d.status.value}" + (f" ({d.detail})" if d.detail else "") for d in self.deliveries
        )
        return f"{head}, report <{self.report.report_id}>: {deliveries or 'no usable rua URI'}"


def next_daily_run(now: float, delay_s: float) -> tuple[float, date]:
    """The next daily run after ``now``: ``delay_s`` after a UTC midnight, and the day it
    reports, the one that just ended (section 4.1: "the reports should be delivered after
    some delay")."""
    midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    run = midnight + timedelta(seconds=delay_s)
    while run.timestamp() <= now:
        run += timedelta(days=1)
    return run.timestamp(), (run - timedelta(seconds=delay_s)).date() - timedelta(days=1)


_STATUS_OF = {
    PostState.DELIVERED: UriStatus.DELIVERED,
    PostState.PENDING: UriStatus.FAILED_WILL_RETRY,
    PostState.INFLIGHT: UriStatus.FAILED_WILL_RETRY,
    PostState.FAILED: UriStatus.FAILED,
    PostState.SUPERSEDED: UriStatus.SUPERSEDED,
}


class ReportAgent:
    """Report runs and HTTPS (re)deliveries of one MTA (see the module docstring)."""

    def __init__(
        self,
        config: TlsRptConfig,
        *,
        parts: TlsRptParts,
        outbox: Outbox,
        records: TlsRecordStore,
        clock: Clock,
        lookup_txt: TxtLookup,
        resolve: Resolve,
        ca_file: Path | None,
        submit_mail: MailSubmit,
    ) -> None:
        self.config = config
        self.parts = parts
        self.outbox = outbox
        self._records = records
        self._clock = clock
        self._lookup_txt = lookup_txt
        self._resolve = resolve
        self._ca_file = ca_file
        self._submit_mail = submit_mail
        self._dkim_key: bytes | None = None
        if config.dkim_key_file is not None:
            try:
                self._dkim_key = config.dkim_key_file.read_bytes()
            except OSError as exc:
                raise MtaConfigError(f"cannot read the DKIM key {config.dkim_key_file}: {exc}") from exc

    # -- the run ---------------------------------------------------------------------------

    async def send_reports(
        self, *, day: date | None = None, domains: Collection[str] | None = None
    ) -> list[ReportOutcome]:
        """Report ``day`` (default: today, UTC, by the MTA's clock) for every Policy Domain
        with records on it, only ``domains`` when given."""
        if not self.parts.sends_reports:
            return []
        now = self._clock.now()
        day = day or datetime.fromtimestamp(now, UTC).date()
        window = self.parts.window(day, now)
        records = self._records.between(window[0].timestamp(), window[1].timestamp())
        found = policy_domains(records, window)
        if domains is not None:
            wanted = {a_label(d) for d in domains}
            found = [d for d in found if d in wanted]
        runs = (self._report_domain(domain, day, window, records) for domain in found)
        return list(await asyncio.gather(*runs))

    async def _report_domain(
        self, domain: str, day: date, window: tuple[datetime, datetime], records: Sequence[TlsSessionRecord]
    ) -> ReportOutcome:
        status, rua, detail = await self._lookup(domain)
        if not rua:
            log.info("TLSRPT: no report for %s: %s (%s)", domain, status.value, detail)
            return ReportOutcome(domain, status, detail=detail)
        config = self.config
        token = report_token()
        reporter = Reporter(config.organization_name, config.contact_info, config.reporting_domain)
        report_id = new_report_id(day, domain, config.reporting_domain, token)
        built = build_report(records, policy_domain=domain, window=window, reporter=reporter, report_id=report_id)
        if built is None:  # cannot happen: the domain was found in these records
            return ReportOutcome(domain, status, detail="no records")
        # The regenerated report of a day replaces what is still waiting of an earlier one.
        self.outbox.supersede(domain, report_id_prefix(day, domain), self._clock.now())
        report = self.parts.report_hook(built)
        document = document_bytes(self.parts.json_hook(report.to_json()))
        uris = self.parts.rua_choice(rua)
        deliveries = await asyncio.gather(*(self._deliver(uri, report, document, token) for uri in uris))
        # Settle the outcomes once every URI had its try: a failure that finished before a
        # sibling's success is superseded by now (section 3).
        settled = tuple(self._settled(report_id, outcome) for outcome in deliveries)
        log.info("TLSRPT: report %s for %s: %s", report_id, domain, ", ".join(o.status.value for o in settled))
        return ReportOutcome(domain, status, report, document, settled)

    async def _lookup(self, domain: str) -> tuple[RecordStatus, tuple[ReportUri, ...], str]:
        """Section 3: the one ``v=TLSRPTv1`` record at ``_smtp._tls.<domain>``, or why not."""
        try:
            name = record_name(domain)
        except TlsRptError as exc:
            return RecordStatus.INVALID_RECORD, (), exc.detail
        answer = await self._lookup_txt(name)
        if answer.status in ("nxdomain", "nodata"):
            return RecordStatus.NO_RECORD, (), f"{name}: {answer.status}"
        if answer.status != "ok":
            return RecordStatus.LOOKUP_FAILED, (), f"{name}: {answer.status}"
        # Section 3: a record of several strings is read "as if those strings are concatenated".
        texts = [b"".join(rr).decode("utf-8", "replace") for rr in answer.rrs]
        try:
            record = self.parts.record_selector(texts)
        except TlsRptError as exc:
            return RecordStatus.INVALID_RECORD, (), str(exc)
        if record is None:
            return RecordStatus.NO_RECORD, (), f"{name}: not exactly one v=TLSRPTv1 record among {len(texts)}"
        return RecordStatus.FOUND, record.rua, ""

    async def _deliver(self, uri: ReportUri, report: Report, document: bytes, token: str) -> UriOutcome:
        if uri.scheme == "https":
            body = gzip_bytes(document) if self.parts.gzip else document
            entry = self.outbox.add(
                report_id=report.report_id,
                policy_domain=report.policies[0].policy_domain,
                uri=uri.uri,
                body=body,
                media_type=self.parts.media_type(self.parts.gzip),
                now=self._clock.now(),
                claimed=True,
            )
            return await self.attempt(entry)
        return self._queue_mail(uri, report, document, token)

    def _settled(self, report_id: str, outcome: UriOutcome) -> UriOutcome:
        if outcome.status is not UriStatus.FAILED_WILL_RETRY:
            return outcome
        entries = self.outbox.entries(report_id)
        superseded = any(e.uri == outcome.uri and e.state is PostState.SUPERSEDED for e in entries)
        return UriOutcome(outcome.uri, UriStatus.SUPERSEDED, outcome.detail) if superseded else outcome

    # -- report mail (sections 3, 5.3) -------------------------------------------------------

    def _queue_mail(self, uri: ReportUri, report: Report, document: bytes, token: str) -> UriOutcome:
        config, parts = self.config, self.parts
        if self._dkim_key is None:
            return UriOutcome(
                uri.uri, UriStatus.FAILED, "no DKIM key configured (section 3: report mail MUST be signed)"
            )
        try:
            address = mailto_address(uri.uri)
        except TlsRptError as exc:
            return UriOutcome(uri.uri, UriStatus.FAILED, exc.detail)
        domain = report.policies[0].policy_domain
        signer = parts.dkim(DkimSigner(config.reporting_domain, config.dkim_selector, self._dkim_key))
        now = self._clock.now()
        try:
            data = report_mail(
                report,
                from_addr=config.mail_sender,
                to_addr=address,
                submitter=config.submitter,
                date=datetime.fromtimestamp(now, UTC),
                message_id=f"tlsrpt.{token}.{secrets.token_hex(4)}@{config.reporting_domain}",
                dkim=signer,
                gzip=parts.gzip,
                document=document,
                part_type=parts.media_type(parts.gzip),
                filename=parts.filename(config.submitter, domain, report.start, report.end, token, parts.gzip),
                shape=parts.mail_shape,
            )
            params = () if address.isascii() else ("SMTPUTF8",)
            message_id = self._submit_mail(config.mail_sender, address, data, params)
        except (TlsRptError, MtaError) as exc:
            log.warning("TLSRPT: report mail to %s not queued: %s", address, exc)
            return UriOutcome(uri.uri, UriStatus.FAILED, str(exc))
        return UriOutcome(uri.uri, UriStatus.QUEUED_AS_MAIL, f"queued as message {message_id}")

    # -- HTTPS deliveries, now and from the runner (sections 5.4, 5.5) -----------------------

    def claim_due(self, limit: int) -> list[OutboxEntry]:
        return self.outbox.claim_due(self._clock.now(), limit)

    def next_due_at(self) -> float | None:
        return self.outbox.next_due_at()

    async def attempt(self, entry: OutboxEntry) -> UriOutcome:
        """POST one claimed outbox entry and record the result."""
        if self.outbox.report_delivered(entry.report_id):
            self.outbox.failed(entry.post_id, self._clock.now(), "another URI took the report", None)
            return UriOutcome(entry.uri, UriStatus.SUPERSEDED, "another URI took the report")
        result = await post_report(
            entry.uri,
            entry.body,
            entry.media_type,
            resolve=self._resolve,
            ca_file=self._ca_file,
            port_override=self.config.https_port,
            timeout_s=self.config.post_timeout_s,
            verify_strict=self.parts.strict_https,
        )
        now = self._clock.now()
        if result.delivered:
            self.outbox.delivered(entry.post_id, now)
            return UriOutcome(entry.uri, UriStatus.DELIVERED, result.detail)
        first = entry.first_attempt_at if entry.first_attempt_at is not None else now
        next_at = self.parts.backoff.next_attempt_at(first, entry.attempts + 1, now)
        state = self.outbox.failed(entry.post_id, now, result.detail, next_at)
        log.warning("TLSRPT: POST of %s to %s failed (%s): %s", entry.report_id, entry.uri, state.value, result.detail)
        return UriOutcome(entry.uri, _STATUS_OF[state], result.detail)
