"""The reference MTA: listeners, the durable queue and the queue runner, wired together.

RFC 5321 sections 4.5.4.1 (retry strategy) and 6.1 (reliable delivery), through the queue;
RFC 5321 section 5.1 and RFC 3207 through the sender; RFC 3464 through the DSNs the queue
writes. The parts a conformance test swaps to build a deliberately broken "mutant" MTA are
collected in :class:`MtaVariant`: each mutant replaces one field and nothing in the code
branches on a flag that says "be broken" (see :mod:`reference_impl.mta.mutants`).

MTA-STS (RFC 8461): each job first runs policy discovery for its recipient domain
(:mod:`reference_impl.mta.stsdiscover`, with the policy cache in ``state_dir``), then walks the
MX hosts under the policy in force (:mod:`reference_impl.mta.stspolicy`, obeyed by the sender).

The runner claims due jobs (one message, one recipient domain), runs up to
``max_concurrency`` of them at once, and sleeps until the next one is due or it is kicked
(a new message, a finished job, a test that moved its manual clock). Stopping cancels jobs in
flight; their recipients stay "inflight" on disk and are queued again on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from reference_impl.mta import delivery
from reference_impl.mta.clock import Clock, SystemClock
from reference_impl.mta.delivery import TlsDecision
from reference_impl.mta.errors import MtaConfigError
from reference_impl.mta.mxplan import MxOrdering, order_by_preference
from reference_impl.mta.queue import (
    DeliveryJob,
    MessageQueue,
    OutcomeKind,
    Recipient,
    RecipientOutcome,
    RecipientStatus,
    RetryPolicy,
    StoredMessage,
)
from reference_impl.mta.receiver import QueueingHandler
from reference_impl.mta.records import TlsRecordStore, TlsSessionRecord
from reference_impl.mta.resolve import DnsLookup, DnsResolver, resolve_route
from reference_impl.mta.sender import (
    HostWalk,
    MxContextFactory,
    RecordHook,
    SenderSettings,
    SmtpClient,
    SmtpConnector,
    SniChoice,
    deliver_job,
    unverified_mx_context,
    verified_mx_context,
    walk_all_hosts,
)
from reference_impl.mta.stsdiscover import (
    DiscoverPolicy,
    FetcherFactory,
    StsAgent,
    StsParts,
    dns_resolver,
    https_fetcher,
)
from reference_impl.mta.stspolicy import (
    NO_POLICY,
    ModeOf,
    MxDecision,
    MxMatcher,
    NoDeliveryDecision,
    PolicyParser,
    RecordSelector,
    StsApplied,
    enforce_tls,
    mode_in_force,
    mx_decision,
    no_delivery_outcome,
)
from reference_impl.mtasts.cache import PolicyCache
from reference_impl.mtasts.discovery import DiscoveryConfig
from reference_impl.mtasts.fetch import discover_policy
from reference_impl.mtasts.matching import policy_allows_mx
from reference_impl.mtasts.policy import parse_policy
from reference_impl.mtasts.record import select_record
from reference_impl.smtp.aio_client import AsyncSmtpClient
from reference_impl.smtp.client import SmtpClientConnection

log = logging.getLogger(__name__)


class ServerHandle(Protocol):
    address: tuple[str, int]

    async def close(self) -> None: ...


ServerStarter = Callable[..., Awaitable[Any]]  # start_smtp_server's shape


def keep_record(record: TlsSessionRecord) -> TlsSessionRecord:
    return record


def mx_name_as_sni(mx_name: str) -> str | None:
    """RFC 8461 section 7.1: SNI names the MX host."""
    return mx_name


def _default_server_starter() -> ServerStarter:
    from reference_impl.smtp.aio_server import start_smtp_server

    return start_smtp_server


@dataclass(frozen=True, slots=True)
class MtaVariant:
    """The replaceable parts of the MTA. The default is the reference behaviour."""

    name: str = "reference"
    client_connection_factory: Callable[[], SmtpClientConnection] = SmtpClientConnection
    server_connection_factory: Callable[..., Any] | None = None  # None: the server's default
    server_starter: Callable[[], ServerStarter] = _default_server_starter
    mx_ordering: MxOrdering = order_by_preference
    host_walk: HostWalk = walk_all_hosts
    tls_decision: TlsDecision = delivery.opportunistic_tls
    attempt_starttls: bool = True
    record_hook: RecordHook = keep_record
    sni_for: SniChoice = mx_name_as_sni
    # MTA-STS, RFC 8461. Discovery (sections 3, 5.1):
    sts_discover: DiscoverPolicy = discover_policy
    sts_fetcher: FetcherFactory = https_fetcher
    sts_record_selector: RecordSelector = select_record
    sts_policy_parser: PolicyParser = parse_policy
    sts_discovery_config: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    # What the policy means for the MX walk (sections 4, 5, 7.2, 8.4):
    sts_mode_of: ModeOf = mode_in_force
    sts_mx_matcher: MxMatcher = policy_allows_mx
    sts_mx_decision: MxDecision = mx_decision
    sts_enforcement: TlsDecision = enforce_tls
    sts_no_delivery: NoDeliveryDecision = no_delivery_outcome
    mx_tls_context: MxContextFactory = verified_mx_context
    tls_floor: str = "TLSv1.2"  # section 7.2: TLS 1.2 or higher

    def sts_parts(self) -> StsParts:
        return StsParts(
            discover=self.sts_discover,
            fetcher=self.sts_fetcher,
            record_selector=self.sts_record_selector,
            policy_parser=self.sts_policy_parser,
            discovery_config=self.sts_discovery_config,
            mode_of=self.sts_mode_of,
        )


@dataclass(frozen=True, slots=True)
class MtaConfig:
    hostname: str  # EHLO name, Reporting-MTA, Received "by"
    state_dir: Path
    resolver: tuple[str, int]  # the only DNS server asked
    mx_port: int = 25
    ca_file: Path | None = None  # trust anchors for MX certificates (None: system store)
    submission_listen: tuple[str, int] | None = ("127.0.0.1", 0)
    inbound_listen: tuple[str, int] | None = ("127.0.0.1", 0)
    inbound_cert_file: Path | None = None  # enables STARTTLS on both listeners
    inbound_key_file: Path | None = None
    dns_timeout_s: float = 5.0
    smtp_timeout_s: float = 30.0  # every SMTP step (connect, reply, handshake)
    session_timeout_s: float = 300.0  # one whole SMTP session
    server_idle_timeout_s: float = 60.0
    max_message_size: int = 10 * 1024 * 1024
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_concurrency: int = 8
    poll_interval_s: float = 1.0  # the longest the runner sleeps without a kick
    mta_sts: bool = True  # RFC 8461: discover and apply MTA-STS policies
    sts_port: int = 443  # the port policy hosts are fetched on (section 3.3: HTTPS)
    sts_fetch_timeout_s: float = 60.0  # section 3.3: "Senders MAY impose a timeout"
    sts_max_policy_bytes: int = 64 * 1024  # section 3.3: "a limit on the maximum size"

    def __post_init__(self) -> None:
        if (self.inbound_cert_file is None) != (self.inbound_key_file is None):
            raise MtaConfigError("inbound TLS needs both a certificate and a key file")
        if self.max_concurrency < 1:
            raise MtaConfigError("max_concurrency must be at least 1")
        if self.sts_fetch_timeout_s <= 0 or self.sts_max_policy_bytes < 0:
            raise MtaConfigError("the policy fetch needs a positive timeout and a non-negative size limit")


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
        )
        self._records = TlsRecordStore(config.state_dir / "tls-records.sqlite3")
        try:
            if config.mta_sts:
                self._start_sts()
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

    def kick(self) -> None:
        """Make the runner look at the queue now (e.g. after a manual clock moved)."""
        self._wake.set()
        self._changed.set()

    def is_idle(self) -> bool:
        """No job running and nothing due now (deferred recipients may wait for later)."""
        if self._jobs:
            return False
        due = self.queue.next_due_at()
        return due is None or due > self.clock.now()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until :meth:`is_idle`; False when ``timeout`` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.is_idle():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))
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
        )

    async def _run(self) -> None:
        settings = self._sender_settings()
        while True:
            self._wake.clear()
            try:
                free = self.config.max_concurrency - len(self._jobs)
                jobs = self.queue.claim_due(limit=free) if free > 0 else []
            except Exception as exc:  # the runner must outlive a bad cycle
                log.exception("claiming jobs failed")
                self.errors.append(exc)
                jobs = []
            for job in jobs:
                task = asyncio.create_task(self._deliver(job, settings))
                self._jobs.add(task)
                task.add_done_callback(self._job_done)
            self._changed.set()
            await self._sleep(claimed=bool(jobs))

    async def _sleep(self, *, claimed: bool) -> None:
        wait = self.config.poll_interval_s
        due = self.queue.next_due_at() if self._queue is not None else None
        if due is not None:
            wait = min(wait, max(due - self.clock.now(), 0.0))
        if wait <= 0 and not claimed:
            # Due work that could not be claimed (no free slot, or claiming failed): wait
            # for a kick (a job finishing) instead of spinning.
            wait = self.config.poll_interval_s
        if wait <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        self.kick()

    async def _deliver(self, job: DeliveryJob, settings: SenderSettings) -> None:
        records: tuple[TlsSessionRecord, ...] = ()
        try:
            # RFC 8461 section 5.1: discover the policy before the MX walk (every attempt,
            # so a deferred message is never bounced without the TXT record checked again).
            sts, records = await self._discover(job.domain)
            route = await resolve_route(job.domain, self._dns, self.variant.mx_ordering)
            result = await deliver_job(job, route, settings, sts)
            outcomes = result.outcomes
            records = (*records, *result.tls_records)
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

    async def _discover(self, domain: str) -> tuple[StsApplied, tuple[TlsSessionRecord, ...]]:
        if self._sts is None:
            return NO_POLICY, ()
        applied, records = await self._sts.apply(domain)
        return applied, tuple(self.variant.record_hook(r) for r in records)


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
