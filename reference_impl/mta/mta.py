"""The reference MTA: listeners, the durable queue and the queue runner, wired together.

RFC 5321 sections 4.5.4.1 (retry strategy) and 6.1 (reliable delivery), through the queue;
RFC 5321 section 5.1 and RFC 3207 through the sender; RFC 3464 through the DSNs the queue
writes. The parts a conformance test swaps to build a deliberately broken "mutant" MTA are
collected in :class:`MtaVariant`: each mutant replaces one field and nothing in the code
branches on a flag that says "be broken" (see :mod:`reference_impl.mta.mutants`).

MTA-STS (RFC 8461): each job first runs policy discovery for its recipient domain
(:mod:`reference_impl.mta.stsdiscover`, with the policy cache in ``state_dir``), then walks the
MX hosts under the policy in force (:mod:`reference_impl.mta.stspolicy`, obeyed by the sender).

DANE (RFC 7672), when ``MtaConfig.dane`` is on: once the MX hosts are known, their TLSA
records are looked up through the MTA's DNS (:mod:`reference_impl.mta.danediscover`); where DANE
applies it takes precedence over MTA-STS for that host (:mod:`reference_impl.mta.danepolicy`).
``MtaConfig.dane_required_domains`` makes DANE mandatory for some recipient domains (section 6).

TLSRPT (RFC 8460), when ``MtaConfig.tlsrpt`` is set: :meth:`ReferenceMta.send_reports` runs
the report generation of one UTC day (:mod:`reference_impl.mta.reporting`); HTTPS submissions
that failed wait in a durable outbox in ``state_dir`` and the runner retries them when due
(section 5.5); report mail goes through the queue flagged as a report, and its jobs are
delivered despite any TLS failure, without MTA-STS or DANE (section 5.3.1), and leave no TLS
record (section 3).

The runner claims due jobs (one message, one recipient domain) and due report submissions,
runs up to ``max_concurrency`` of them at once, and sleeps until the next one is due or it is
kicked (a new message, a finished job, a test that moved its manual clock). Stopping cancels
jobs in flight; their recipients stay "inflight" on disk and are queued again on the next
start (report submissions likewise).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import date
from typing import Any

from reference_impl.mta import delivery
from reference_impl.mta.clock import Clock, SystemClock
from reference_impl.mta.config import MtaConfig as MtaConfig  # re-exported
from reference_impl.mta.config import MtaVariant as MtaVariant  # re-exported
from reference_impl.mta.config import ServerHandle as ServerHandle  # re-exported
from reference_impl.mta.config import ServerStarter as ServerStarter  # re-exported
from reference_impl.mta.danediscover import discover_dane
from reference_impl.mta.danepolicy import NO_DANE, DaneApplied
from reference_impl.mta.errors import MtaConfigError
from reference_impl.mta.mxplan import Route
from reference_impl.mta.mxtls import chain_verified_mx_context
from reference_impl.mta.queue import (
    DeliveryJob,
    MessageQueue,
    OutcomeKind,
    Recipient,
    RecipientOutcome,
    RecipientStatus,
    StoredMessage,
)
from reference_impl.mta.receiver import QueueingHandler
from reference_impl.mta.records import TlsRecordStore, TlsSessionRecord
from reference_impl.mta.reporting import ReportAgent, ReportOutcome, TlsRptConfig
from reference_impl.mta.resolve import DnsLookup, DnsResolver, resolve_route
from reference_impl.mta.sender import (
    SenderSettings,
    SmtpClient,
    SmtpConnector,
    deliver_job,
    unverified_mx_context,
)
from reference_impl.mta.stsdiscover import (
    StsAgent,
    dns_resolver,
)
from reference_impl.mta.stspolicy import (
    NO_POLICY,
    StsApplied,
)
from reference_impl.mtasts.cache import PolicyCache
from reference_impl.mtasts.fetch import address_resolver, txt_lookup
from reference_impl.requiretls.bounce import has_requiretls
from reference_impl.requiretls.nexthop import QualifyOptions
from reference_impl.smtp.aio_client import AsyncSmtpClient
from reference_impl.smtp.client import SmtpClientConnection
from reference_impl.smtp.server import DEFAULT_EXTENSIONS
from reference_impl.tlsrpt.outbox import Outbox, OutboxEntry, PostState

log = logging.getLogger(__name__)


class ReferenceMta:
    """The reference MTA. ``await start()``, use, ``await stop()``; or ``async with``."""

    def __init__(
        self,
        config: MtaConfig,
        *,
        variant: MtaVariant | None = None,
        clock: Clock | None = None,
        dns_lookup: DnsLookup | None = None,
    ) -> None:
        self.config = config
        self.variant = variant or MtaVariant()
        self.clock: Clock = clock or SystemClock()
        self._dns = dns_lookup or DnsResolver(*config.resolver, timeout=config.dns_timeout_s)
        self._queue: MessageQueue | None = None
        self._records: TlsRecordStore | None = None
        self._sts_cache: PolicyCache | None = None
        self._sts: StsAgent | None = None
        self._reports: ReportAgent | None = None
        self._servers: dict[str, Any] = {}
        self._runner: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self.errors: list[BaseException] = []  # unexpected failures, for tests to assert on

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self._queue = MessageQueue(
            config.state_dir / "queue.sqlite3",
            clock=self.clock,
            retry=config.retry,
            reporting_mta=config.hostname,
            bounce_rules=self.variant.requiretls.bounce,
        )
        self._records = TlsRecordStore(config.state_dir / "tls-records.sqlite3")
        try:
            if config.mta_sts:
                self._start_sts()
            if config.tlsrpt is not None:
                self._start_reports(config.tlsrpt, self._records)
            await self._start_listeners()
        except BaseException:
            await self.stop()
            raise
        self._runner = asyncio.create_task(self._run(), name=f"mta-runner-{config.hostname}")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        for task in list(self._jobs):
            task.cancel()
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        for server in self._servers.values():
            await server.close()
        self._servers.clear()
        if self._queue is not None:
            self._queue.close()
            self._queue = None
        if self._records is not None:
            self._records.close()
            self._records = None
        self._sts = None
        if self._sts_cache is not None:
            self._sts_cache.close()
            self._sts_cache = None
        if self._reports is not None:
            self._reports.outbox.close()
            self._reports = None

    def _start_sts(self) -> None:
        """The policy cache (RFC 8461 section 3.3) in state_dir and the discovery agent."""
        config = self.config
        self._sts_cache = PolicyCache(config.state_dir / "mta-sts-cache.sqlite3", clock=self.clock)
        ca_file = config.ca_file
        self._sts = StsAgent.over_dns(
            cache=self._sts_cache,
            resolver=dns_resolver(config.resolver, config.dns_timeout_s),
            fetch_settings=(config.sts_port, ca_file, config.sts_fetch_timeout_s, config.sts_max_policy_bytes),
            clock=self.clock,
            parts=self.variant.sts_parts(),
        )

    def _start_reports(self, tlsrpt: TlsRptConfig, records: TlsRecordStore) -> None:
        """TLSRPT (RFC 8460): the outbox in state_dir, lookups and POSTs through the MTA's DNS."""
        config = self.config
        outbox = Outbox(config.state_dir / "tlsrpt-outbox.sqlite3", now=self.clock.now())
        resolver = dns_resolver(config.resolver, config.dns_timeout_s)
        try:
            self._reports = ReportAgent(
                tlsrpt,
                parts=self.variant.tlsrpt,
                outbox=outbox,
                records=records,
                clock=self.clock,
                lookup_txt=txt_lookup(resolver),
                resolve=address_resolver(resolver),
                ca_file=config.ca_file,
                submit_mail=self._enqueue_report_mail,
            )
        except BaseException:
            outbox.close()
            raise

    async def __aenter__(self) -> ReferenceMta:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _start_listeners(self) -> None:
        config = self.config
        tls_context: ssl.SSLContext | None = None
        if config.inbound_cert_file is not None and config.inbound_key_file is not None:
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(config.inbound_cert_file, config.inbound_key_file)
        listeners = {"submission": config.submission_listen, "inbound": config.inbound_listen}
        wanted = {name: listen for name, listen in listeners.items() if listen is not None}
        if not wanted:
            return  # a queue-and-send-only MTA (drivers that call submit())
        start_server = self.variant.server_starter()
        extra: dict[str, Any] = {}
        if self.variant.server_connection_factory is not None:
            extra["connection_factory"] = self.variant.server_connection_factory
        if config.advertise_dsn:
            extra["extensions"] = (*DEFAULT_EXTENSIONS, "DSN")  # RFC 3461 section 4
        for name, listen in wanted.items():
            handler = QueueingHandler(
                self.queue,
                hostname=config.hostname,
                clock=self.clock,
                on_enqueued=self.kick,
                listener=name,
            )
            self._servers[name] = await start_server(
                handler,
                listen[0],
                listen[1],
                hostname=config.hostname,
                tls_context=tls_context,
                idle_timeout_s=config.server_idle_timeout_s,
                max_message_size=config.max_message_size,
                **extra,
            )

    # -- what tests and drivers see --------------------------------------------------------

    @property
    def queue(self) -> MessageQueue:
        if self._queue is None:
            raise MtaConfigError("the MTA is not started")
        return self._queue

    def _address(self, name: str) -> tuple[str, int]:
        server = self._servers.get(name)
        if server is None:
            raise MtaConfigError(f"the {name} listener is not running")
        host, port = server.address[:2]
        return str(host), int(port)

    @property
    def submission_address(self) -> tuple[str, int]:
        return self._address("submission")

    @property
    def inbound_address(self) -> tuple[str, int]:
        return self._address("inbound")

    def tls_records(self) -> list[TlsSessionRecord]:
        if self._records is None:
            raise MtaConfigError("the MTA is not started")
        return self._records.all()

    def message_states(self) -> list[RecipientStatus]:
        return self.queue.recipient_states()

    def messages(self) -> list[StoredMessage]:
        return self.queue.messages()

    def submit(
        self,
        sender: str,
        recipients: Sequence[str],
        data: bytes,
        mail_params: Sequence[str] = (),
    ) -> int:
        """Enqueue a message directly (drivers that need no SMTP submission)."""
        message_id = self.queue.enqueue(sender, [Recipient(r) for r in recipients], data, mail_params)
        self.kick()
        return message_id

    async def send_reports(
        self, *, day: date | None = None, domains: Collection[str] | None = None
    ) -> list[ReportOutcome]:
        """RFC 8460: report ``day`` (default today, UTC, by the MTA's clock) to every Policy
        Domain with TLS records on it (only ``domains`` when given); one outcome per domain."""
        if self._reports is None:
            raise MtaConfigError("TLSRPT reporting is off (MtaConfig.tlsrpt) or the MTA is not started")
        outcomes = await self._reports.send_reports(day=day, domains=domains)
        self.kick()  # report mail was queued, or a retry became due
        return outcomes

    def report_submissions(self, policy_domain: str | None = None, *, settled: bool = False) -> list[OutboxEntry]:
        """The HTTPS report submissions still to be made (pending a retry, or in flight), of
        every Policy Domain or one (A-labels); with ``settled`` also those that are over
        (delivered, given up, superseded)."""
        if self._reports is None:
            return []
        unsettled = (PostState.PENDING, PostState.INFLIGHT)
        return [
            e
            for e in self._reports.outbox.entries()
            if (policy_domain is None or e.policy_domain == policy_domain) and (settled or e.state in unsettled)
        ]

    def _enqueue_report_mail(self, sender: str, recipient: str, data: bytes, params: tuple[str, ...]) -> int:
        # RFC 8460 section 3: a report about a failed report helps no one, so no DSN is asked for.
        message_id = self.queue.enqueue(
            sender, [Recipient(recipient, ("NOTIFY=NEVER",))], data, params, tlsrpt_report=True
        )
        self.kick()
        return message_id

    def kick(self) -> None:
        """Make the runner look at the queue now (e.g. after a manual clock moved)."""
        self._wake.set()
        self._changed.set()

    def is_idle(self) -> bool:
        """No job running and nothing due now (deferred recipients may wait for later)."""
        if self._jobs:
            return False
        due = self._next_due_at()
        return due is None or due > self.clock.now()

    def _next_due_at(self) -> float | None:
        """The earliest due queue recipient or report submission."""
        due = [self.queue.next_due_at()]
        if self._reports is not None:
            due.append(self._reports.next_due_at())
        known = [t for t in due if t is not None]
        return min(known) if known else None

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until :meth:`is_idle`; False when ``timeout`` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.is_idle():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            await _wait_event(self._changed, min(remaining, 0.25))
        return True

    # -- the runner ------------------------------------------------------------------------

    def _sender_settings(self) -> SenderSettings:
        config, variant = self.config, self.variant
        ca_file = str(config.ca_file) if config.ca_file is not None else None
        verified = variant.mx_tls_context(ca_file, variant.tls_floor)
        unverified = unverified_mx_context(variant.tls_floor)
        return SenderSettings(
            connector=_connector(variant.client_connection_factory),
            local_hostname=config.hostname,
            mx_port=config.mx_port,
            timeout=config.smtp_timeout_s,
            session_timeout=config.session_timeout_s,
            verified_context=verified,
            unverified_context=unverified,
            clock=self.clock,
            attempt_starttls=variant.attempt_starttls,
            tls_decision=variant.tls_decision,
            host_walk=variant.host_walk,
            record_hook=variant.record_hook,
            sni_for=variant.sni_for,
            sts_enforcement=variant.sts_enforcement,
            sts_mx_matcher=variant.sts_mx_matcher,
            sts_mx_decision=variant.sts_mx_decision,
            sts_no_delivery=variant.sts_no_delivery,
            tls_floor=variant.tls_floor,
            transient_result=variant.tlsrpt.transient_result,
            dane_enforcement=variant.dane.enforcement,
            dane_matcher=variant.dane.matcher,
            requiretls=variant.requiretls,
            requiretls_options=QualifyOptions(sts_testing_counts=config.requiretls_sts_testing_counts),
            requiretls_context=chain_verified_mx_context(ca_file, variant.tls_floor),
        )

    async def _run(self) -> None:
        settings = self._sender_settings()
        # RFC 8460 section 3: report mail is delivered despite any TLS failure.
        report_settings = dataclasses.replace(settings, tls_decision=delivery.report_mail_tls)
        while True:
            self._wake.clear()
            started: list[Awaitable[Any]] = []
            try:
                free = self.config.max_concurrency - len(self._jobs)
                jobs = self.queue.claim_due(limit=free) if free > 0 else []
                exempt = self.variant.tlsrpt.mail_exempt_from_tls_policy
                started += [
                    self._deliver(job, report_settings if job.tlsrpt_report and exempt else settings) for job in jobs
                ]
                free -= len(jobs)
                if self._reports is not None and free > 0:
                    started += [self._post(entry) for entry in self._reports.claim_due(free)]
            except Exception as exc:  # the runner must outlive a bad cycle
                log.exception("claiming jobs failed")
                self.errors.append(exc)
            for work in started:
                task = asyncio.ensure_future(work)
                self._jobs.add(task)
                task.add_done_callback(self._job_done)
            self._changed.set()
            await self._sleep(claimed=bool(started))

    async def _post(self, entry: OutboxEntry) -> None:
        """A due TLSRPT submission (RFC 8460 section 5.5), from the outbox."""
        if self._reports is None:
            return
        try:
            await self._reports.attempt(entry)
        except asyncio.CancelledError:
            raise  # stopping: the entry stays inflight and is pending again after a restart
        except Exception as exc:
            log.exception("TLSRPT submission %s failed", entry.post_id)
            self.errors.append(exc)

    async def _sleep(self, *, claimed: bool) -> None:
        wait = self.config.poll_interval_s
        due = self._next_due_at() if self._queue is not None else None
        if due is not None:
            wait = min(wait, max(due - self.clock.now(), 0.0))
        if wait <= 0 and not claimed:
            # Due work that could not be claimed (no free slot, or claiming failed): wait
            # for a kick (a job finishing) instead of spinning.
            wait = self.config.poll_interval_s
        if wait <= 0:
            await asyncio.sleep(0)
            return
        await _wait_event(self._wake, wait)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        self.kick()

    async def _deliver(self, job: DeliveryJob, settings: SenderSettings) -> None:
        records: tuple[TlsSessionRecord, ...] = ()
        parts = self.variant.tlsrpt
        report_mail = job.tlsrpt_report and parts.mail_exempt_from_tls_policy
        rt = self.variant.requiretls
        # RFC 8689 4.2.1: the REQUIRETLS parameter stays with the message (a mutant drops it).
        delivery_job, tls_optional = dataclasses.replace(job, mail_params=rt.relay_params(job.mail_params)), False
        if not report_mail and rt.tls_optional(delivery_job.mail_params, job.data):
            # RFC 8689 4.2.2 "TLS-Required: No": STARTTLS is tried, but no MTA-STS or DANE
            # failure stops the message (the decision of report mail, which is the same).
            tls_optional = True
            keep = [p for p in delivery_job.mail_params if not has_requiretls((p,))]
            delivery_job = dataclasses.replace(delivery_job, mail_params=tuple(keep))
            settings = dataclasses.replace(
                settings,
                tls_decision=delivery.report_mail_tls,
                attempt_starttls=settings.attempt_starttls and rt.optional_attempts_starttls,
            )
        try:
            # RFC 8461 section 5.1: discover the policy before the MX walk (every attempt,
            # so a deferred message is never bounced without the TXT record checked again).
            # RFC 8460 5.3.1: report mail "MUST NOT honor MTA-STS or DANE TLSA failures": no policy.
            no_policy = report_mail or tls_optional
            sts, records = (NO_POLICY, ()) if no_policy else await self._discover(job.domain)
            route = await resolve_route(job.domain, self._dns, self.variant.mx_ordering)
            dane = NO_DANE if no_policy else await self._dane(job.domain, route)
            result = await deliver_job(delivery_job, route, settings, sts, dane)
            outcomes = rt.optional_outcomes(result.outcomes) if tls_optional else result.outcomes
            records = (*records, *result.tls_records)
            if job.tlsrpt_report and not parts.records_report_sessions:
                records = ()  # RFC 8460 section 3: "SHOULD NOT include this SMTP session in the next report"
        except asyncio.CancelledError:
            raise  # stopping: the recipients stay inflight and are retried after a restart
        except Exception as exc:
            # A bug must not lose the message: defer it and keep the evidence.
            log.exception("delivery of message %s to %s failed", job.message_id, job.domain)
            self.errors.append(exc)
            outcomes = tuple(
                RecipientOutcome(
                    r.address,
                    OutcomeKind.TEMPORARY,
                    "4.3.0",
                    f"internal error: {type(exc).__name__}",
                )
                for r in job.recipients
            )
        if self._queue is None:
            return  # stopped meanwhile; the job is recovered on the next start
        if self._records is not None:
            for record in records:
                self._records.add(record)
        self._queue.complete(job, outcomes)

    async def _dane(self, domain: str, route: Route) -> DaneApplied:
        """RFC 7672 section 2.2.3: the TLSA state of each MX host of ``route``."""
        if not self.config.dane:
            return NO_DANE
        required = self.config.dane_required(domain)
        return await discover_dane(route, self._dns, self.variant.dane, required=required)

    async def _discover(self, domain: str) -> tuple[StsApplied, tuple[TlsSessionRecord, ...]]:
        if self._sts is None:
            return NO_POLICY, ()
        applied, records = await self._sts.apply(domain)
        return applied, tuple(self.variant.record_hook(r) for r in records)


async def _wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait for ``event`` at most ``timeout`` seconds. Not ``asyncio.wait_for``: on Python 3.11 it
    swallows a cancellation that arrives as the event fires (a kick just before ``stop()``), and
    the runner would then never stop."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


def _connector(factory: Callable[[], SmtpClientConnection]) -> SmtpConnector:
    async def connect(
        host: str,
        port: int,
        *,
        timeout: float,
        local_hostname: str,
    ) -> SmtpClient:
        return await AsyncSmtpClient.connect(
            host,
            port,
            timeout=timeout,
            local_hostname=local_hostname,
            connection_factory=factory,
        )

    return connect
