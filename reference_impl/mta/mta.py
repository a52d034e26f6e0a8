"""The reference MTA: listeners, the durable queue and the queue runner, wired together.

RFC 5321 sections 4.5.4.1 (retry strategy) and 6.1 (reliable delivery), through the queue;
RFC 5321 section 5.1 and RFC 3207 through the sender; RFC 3464 through the DSNs the queue
writes. The parts a conformance test swaps to build a deliberately broken "mutant" MTA are
collected in :class:`MtaVariant`: each mutant replaces one field and nothing in the code
branches on a flag that says "be broken" (see :mod:`reference_impl.mta.mutants`).

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
    RecordHook,
    SenderSettings,
    SmtpClient,
    SmtpConnector,
    SniChoice,
    deliver_job,
    walk_all_hosts,
)
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

    def __post_init__(self) -> None:
        if (self.inbound_cert_file is None) != (self.inbound_key_file is None):
            raise MtaConfigError("inbound TLS needs both a certificate and a key file")
        if self.max_concurrency < 1:
            raise MtaConfigError("max_concurrency must be at least 1")


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
        verified = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file is not None else None)
        unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
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
        try:
            route = await resolve_route(job.domain, self._dns, self.variant.mx_ordering)
            result = await deliver_job(job, route, settings)
            outcomes = result.outcomes
            records = result.tls_records
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
            records = ()
        if self._queue is None:
            return  # stopped meanwhile; the job is recovered on the next start
        if self._records is not None:
            for record in records:
                self._records.add(record)
        self._queue.complete(job, outcomes)


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
