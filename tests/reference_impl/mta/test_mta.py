"""End to end on loopback: the reference MTA, a tiny DNS and scripted MX hosts."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from reference_impl.mta import mutants
from reference_impl.mta.clock import ManualClock
from reference_impl.mta.mta import MtaConfig, MtaVariant, ReferenceMta
from reference_impl.mta.queue import MessageQueue, RecipientState, RetryPolicy
from reference_impl.mta.records import TlsResultType
from reference_impl.smtp.aio_client import AsyncSmtpClient

from .helpers import FakeDns, FakeMx, MxScript, parse_mail, start_mx_group

MX1, MX2, MXS = "127.0.0.2", "127.0.0.3", "127.0.0.4"
MESSAGE = b"From: a@s.test\r\nTo: x@d.test\r\nSubject: test\r\n\r\nhello\r\n"


@dataclass
class World:
    dns: FakeDns
    ca: trustme.CA
    ca_file: Path
    tmp: Path
    clock: ManualClock

    def __post_init__(self) -> None:
        self.dns.add_mx("d.test", 10, "mx1.d.test")
        self.dns.add_mx("d.test", 20, "mx2.d.test")
        self.dns.add_a("mx1.d.test", MX1)
        self.dns.add_a("mx2.d.test", MX2)
        self.dns.add_mx("s.test", 10, "mx.s.test")
        self.dns.add_a("mx.s.test", MXS)

    def config(self, mx_port: int, **changes: object) -> MtaConfig:
        values: dict[str, object] = {
            "hostname": "mta.example.test",
            "state_dir": self.tmp / "state",
            "resolver": self.dns.address,
            "mx_port": mx_port,
            "ca_file": self.ca_file,
            "submission_listen": None,
            "inbound_listen": None,
            "smtp_timeout_s": 3.0,
            "session_timeout_s": 5.0,
            "dns_timeout_s": 1.0,
            "retry": RetryPolicy(schedule=(60.0,), max_lifetime_s=3600.0),
            "poll_interval_s": 0.2,
        }
        values.update(changes)
        return MtaConfig(**values)  # type: ignore[arg-type]

    def server_context(
        self, name: str, *, ca: trustme.CA | None = None, not_after: datetime.datetime | None = None
    ) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert = (ca or self.ca).issue_cert(name, not_after=not_after) if not_after else (ca or self.ca).issue_cert(name)
        cert.configure_cert(context)
        return context


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    dns = await FakeDns.start()
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    try:
        yield World(dns, ca, ca_file, tmp_path, ManualClock())
    finally:
        dns.close()


MxGroup = tuple[int, dict[str, FakeMx]]


@pytest.fixture
async def closers() -> AsyncIterator[list[Callable[[], object]]]:
    pending: list[Callable[[], object]] = []
    yield pending
    for close in reversed(pending):
        result = close()
        if asyncio.iscoroutine(result):
            await result


async def _mxs(closers: list[Callable[[], object]], hosts: list[str], **kwargs: object) -> MxGroup:
    port, started = await start_mx_group(hosts, **kwargs)  # type: ignore[arg-type]
    for mx in started.values():
        closers.append(mx.close)
    return port, started


async def _mta(
    closers: list[Callable[[], object]], world: World, config: MtaConfig, variant: MtaVariant | None = None
) -> ReferenceMta:
    mta = ReferenceMta(config, variant=variant, clock=world.clock)
    await mta.start()
    closers.append(mta.stop)
    return mta


def _states(mta: ReferenceMta) -> list[tuple[str, RecipientState]]:
    return [(s.address, s.state) for s in mta.message_states()]


async def test_preferred_mx_is_used(world: World, closers: list[Callable[[], object]]) -> None:
    port, mxs = await _mxs(closers, [MX1, MX2])
    mta = await _mta(closers, world, world.config(port))
    mta.submit("a@s.test", ["x@d.test"], MESSAGE)
    assert await mta.wait_idle(5)
    assert _states(mta) == [("x@d.test", RecipientState.DELIVERED)]
    assert [d.rcpt_tos for d in mxs[MX1].delivered] == [["x@d.test"]]
    assert mxs[MX2].sessions == 0
    assert mxs[MX1].delivered[0].data.endswith(b"hello\r\n")
    assert mta.errors == []


async def test_reverse_order_mutant_uses_the_wrong_mx(world: World, closers: list[Callable[[], object]]) -> None:
    port, mxs = await _mxs(closers, [MX1, MX2])
    mta = await _mta(closers, world, world.config(port), mutants.REVERSE_MX_ORDER)
    mta.submit("a@s.test", ["x@d.test"], MESSAGE)
    assert await mta.wait_idle(5)
    assert len(mxs[MX2].delivered) == 1 and mxs[MX1].sessions == 0


async def test_refusing_first_mx_falls_back(world: World, closers: list[Callable[[], object]]) -> None:
    port, mxs = await _mxs(closers, [MX1, MX2], skip=frozenset({MX1}))
    mta = await _mta(closers, world, world.config(port))
    mta.submit("a@s.test", ["x@d.test"], MESSAGE)
    assert await mta.wait_idle(5)
    assert _states(mta) == [("x@d.test", RecipientState.DELIVERED)]
    assert len(mxs[MX2].delivered) == 1


async def test_failing_greeting_falls_back(world: World, closers: list[Callable[[], object]]) -> None:
    scripts = {MX1: MxScript(greeting="554 5.3.2 go away")}
    port, mxs = await _mxs(closers, [MX1, MX2], scripts=scripts)
    mta = await _mta(closers, world, world.config(port))
    mta.submit("a@s.test", ["x@d.test"], MESSAGE)
    assert await mta.wait_idle(5)
    assert mxs[MX1].sessions == 1 and len(mxs[MX2].delivered) == 1


async def test_no_fallback_mutant_defers(world: World, closers: list[Callable[[], object]]) -> None:
    port, mxs = await _mxs(closers, [MX1, MX2], skip=frozenset({MX1}))
    mta = await _mta(closers, world, world.config(port), mutants.NO_MX_FALLBACK)
    mta.submit("a@s.test", ["x@d.test"], MESSAGE)
    assert await mta.wait_idle(5)
    assert _states(mta) == [("x@d.test", RecipientState.DEFERRED)]
    assert mxs[MX2].sessions == 0


async def test_4xx_defers_and_is_retried(world: World, closers: list[Callable[[], object]]) -> None:
    script = MxScript(rcpt_replies={"x@d.test": "451 4.7.1 try later"})
    port, mxs = await _mxs(closers, [MX1, MX2], scripts={MX1: script})
    mta = await _mta(closers, world, world.config(port))
    mta.submit("a@s.test", ["x@d.test", "y@d.test"], MESSAGE)
    assert await mta.wait_idle(5)
    assert _states(mta) == [("x@d.test", RecipientState.DEFERRED), ("y@d.test", RecipientState.DELIVERED)]
    deferred = mta.message_states()[0]
    assert deferred.last_error == "451 4.7.1 try later" and deferred.attempts == 1
    script.rcpt_replies.clear()
    world.clock.advance(59)
    mta.kick()
    assert await mta.wait_idle(5)
    assert mta.message_states()[0].state is RecipientState.DEFERRED  # not yet due
    world.clock.advance(1)
    mta.kick()
    assert await mta.wait_idle(5)
    assert _states(mta)[0] == ("x@d.test", RecipientState.DELIVERED)
    assert [d.rcpt_tos for d in mxs[MX1].delivered] == [["y@d.test"], ["x@d.test"]]


async def test_5xx_bounces_with_dsn_to_the_sender(world: World, closers: list[Callable[[], object]]) -> None:
    scripts = {MX1: MxScript(rcpt_replies={"x@d.test": "550 5.1.1 no such user"})}
    port, mxs = await _mxs(closers, [MX1, MX2, MXS], scripts=scripts)
    mta = await _mta(closers, world, world.config(port))
    mta.submit("a@s.test", ["x@d.test"], MESSAGE, ("ENVID=e1",))
    assert await mta.wait_idle(5)
    states = mta.message_states()
    assert [(s.address, s.state) for s in states] == [
        ("x@d.test", RecipientState.BOUNCED),
        ("a@s.test", RecipientState.DELIVERED),
    ]
    (bounce,) = mxs[MXS].delivered
    assert bounce.mail_from == "" and bounce.rcpt_tos == ["a@s.test"]
    report = parse_mail(bounce.data)
    assert report.get_content_type() == "multipart/report"
    per_message, per_recipient = report.get_payload()[1].get_payload()
    assert per_message["Original-Envelope-Id"] == "e1"
    assert per_recipient["Diagnostic-Code"] == "smtp;550 5.1.1 no such user"
    assert per_recipient["Remote-MTA"] == "dns;mx1.d.test"


async def test_unknown_domain_bounces(world: World, closers: list[Callable[[], object]]) -> None:
    port, mxs = await _mxs(closers, [MXS])
    mta = await _mta(closers, world, world.config(port))
    mta.submit("a@s.test", ["x@nowhere.test"], MESSAGE)
    assert await mta.wait_idle(5)
    assert _states(mta)[0] == ("x@nowhere.test", RecipientState.BOUNCED)
    assert len(mxs[MXS].delivered) == 1  # the DSN


async def test_restart_mid_queue_loses_nothing(world: World, closers: list[Callable[[], object]]) -> None:
    script = MxScript(rcpt_replies={"x@d.test": "451 4.3.0 later"})
    port, mxs = await _mxs(closers, [MX1, MX2], scripts={MX1: script, MX2: script})
    config = world.config(port)
    first = ReferenceMta(config, clock=world.clock)
    await first.start()
    try:
        first.submit("a@s.test", ["x@d.test"], MESSAGE)
        assert await first.wait_idle(5)
        assert _states(first) == [("x@d.test", RecipientState.DEFERRED)]
    finally:
        await first.stop()
    script.rcpt_replies.clear()
    second = await _mta(closers, world, config)
    assert _states(second) == [("x@d.test", RecipientState.DEFERRED)]
    world.clock.advance(60)
    second.kick()
    assert await second.wait_idle(5)
    assert _states(second) == [("x@d.test", RecipientState.DELIVERED)]
    assert len(mxs[MX1].delivered) == 1


async def test_stop_during_delivery_requeues(world: World, closers: list[Callable[[], object]]) -> None:
    silent = await asyncio.start_server(lambda r, w: None, MX1, 0)  # accepts, never greets
    port = int(silent.sockets[0].getsockname()[1])
    connected = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read(100)
        writer.close()

    silent.close()
    await silent.wait_closed()
    holder = await asyncio.start_server(hold, MX1, port)
    config = world.config(port)
    first = ReferenceMta(config, clock=world.clock)
    await first.start()
    try:
        first.submit("a@s.test", ["x@d.test"], MESSAGE)
        await asyncio.wait_for(connected.wait(), 5)
        assert _states(first) == [("x@d.test", RecipientState.INFLIGHT)]
    finally:
        await first.stop()
        holder.close()
        await holder.wait_closed()
    with MessageQueue(
        config.state_dir / "queue.sqlite3", clock=world.clock, retry=config.retry, reporting_mta="x"
    ) as queue:
        assert [s.state for s in queue.recipient_states()] == [RecipientState.QUEUED]
    mx = await FakeMx.start(MX1, port)
    closers.append(mx.close)
    second = await _mta(closers, world, config)
    assert await second.wait_idle(5)
    assert _states(second) == [("x@d.test", RecipientState.DELIVERED)]
    assert len(mx.delivered) == 1


async def test_starttls_used_and_recorded(world: World, closers: list[Callable[[], object]]) -> None:
    tls = {MX1: world.server_context("mx1.d.test")}
    port, mxs = await _mxs(closers, [MX1], tls=tls)
    mta = await _mta(closers, world, world.config(port))
    mta.submit("a@s.test", ["x@d.test"], MESSAGE)
    assert await mta.wait_idle(5)
    assert mxs[MX1].delivered[0].tls
    (record,) = mta.tls_records()
    assert record.result_type is TlsResultType.SUCCESS
    assert (record.policy_domain, record.mx_host, record.ip) == ("d.test", "mx1.d.test", MX1)
    assert record.tls_version is not None and record.tls_version.startswith("TLS")
    assert record.cipher


async def test_no_starttls_offered_is_recorded(world: World, closers: list[Callable[[], object]]) -> None:
    port, mxs = await _mxs(closers, [MX1])
    mta = await _mta(closers, world, world.config(port))
    mta.submit("a@s.test", ["x@d.test"], MESSAGE)
    assert await mta.wait_idle(5)
    assert not mxs[MX1].delivered[0].tls
    assert [r.result_type for r in mta.tls_records()] == [TlsResultType.STARTTLS_NOT_SUPPORTED]


@pytest.mark.parametrize(
    ("name", "untrusted", "expired", "result"),
    [
        ("wrong.d.test", False, False, TlsResultType.CERTIFICATE_HOST_MISMATCH),
        ("mx1.d.test", True, False, TlsResultType.CERTIFICATE_NOT_TRUSTED),
        ("mx1.d.test", False, True, TlsResultType.CERTIFICATE_EXPIRED),
    ],
)
async def test_bad_certificate_is_recorded_and_delivery_proceeds_over_tls(
    world: World,
    closers: list[Callable[[], object]],
    name: str,
    untrusted: bool,
    expired: bool,
    result: TlsResultType,
) -> None:
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC) if expired else None
    context = world.server_context(name, ca=trustme.CA() if untrusted else None, not_after=past)
    port, mxs = await _mxs(closers, [MX1], tls={MX1: context})
    mta = await _mta(closers, world, world.config(port))
    mta.submit("a@s.test", ["x@d.test"], MESSAGE)
    assert await mta.wait_idle(5)
    assert _states(mta) == [("x@d.test", RecipientState.DELIVERED)]
    assert mxs[MX1].delivered[0].tls  # opportunistic: unauthenticated TLS, not cleartext
    assert mxs[MX1].sessions == 2  # the verifying handshake, then the unverified retry
    (record,) = mta.tls_records()
    assert record.result_type is result
    assert record.failure_reason
    assert record.tls_version is not None


async def test_record_mutant_and_no_starttls_mutant(world: World, closers: list[Callable[[], object]]) -> None:
    context = world.server_context("wrong.d.test")
    port, mxs = await _mxs(closers, [MX1], tls={MX1: context})
    liar = await _mta(closers, world, world.config(port), mutants.RECORDS_ALL_SUCCESS)
    liar.submit("a@s.test", ["x@d.test"], MESSAGE)
    assert await liar.wait_idle(5)
    assert [r.result_type for r in liar.tls_records()] == [TlsResultType.SUCCESS]
    await liar.stop()
    plain = await _mta(closers, world, world.config(port, state_dir=world.tmp / "s2"), mutants.NO_STARTTLS)
    plain.submit("a@s.test", ["x@d.test"], MESSAGE)
    assert await plain.wait_idle(5)
    assert mxs[MX1].starttls_count == 2  # only the liar's two sessions
    assert not mxs[MX1].delivered[-1].tls


async def test_submission_listener_queues_then_delivers(world: World, closers: list[Callable[[], object]]) -> None:
    port, mxs = await _mxs(closers, [MX1])
    mta = await _mta(
        closers, world, world.config(port, submission_listen=("127.0.0.1", 0), inbound_listen=("127.0.0.1", 0))
    )
    host, sub_port = mta.submission_address
    assert mta.inbound_address != mta.submission_address
    client = await AsyncSmtpClient.connect(host, sub_port, timeout=3, local_hostname="mua.test")
    try:
        assert (await client.ehlo()).code == 250
        assert (await client.mail("a@s.test")).code == 250
        assert (await client.rcpt("x@d.test")).code == 250
        assert (await client.rcpt("postmaster")).code == 550  # no local delivery here
        reply = await client.data(MESSAGE)
        assert reply.code == 250
        await client.quit()
    finally:
        await client.close()
    assert await mta.wait_idle(5)
    (delivered,) = mxs[MX1].delivered
    assert delivered.data.startswith(b"Received: from mua.test ([127.0.0.1])")
    assert b"by mta.example.test with ESMTP id" in delivered.data
