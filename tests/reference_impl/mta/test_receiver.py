"""The queueing SMTP handler: 250 only after the commit, trace fields, loop detection."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference_impl.mta as mta_package
from reference_impl.mta.clock import ManualClock
from reference_impl.mta.queue import MessageQueue, RecipientState, RetryPolicy
from reference_impl.mta.receiver import (
    QueueingHandler,
    count_received,
    params_as_strings,
    received_field,
)
from reference_impl.smtp.aio_server import SessionInfo
from reference_impl.smtp.server_events import Envelope, Recipient

SESSION = SessionInfo(("127.0.0.9", 4000), "client.test", "TLSv1.3", "X", True)
DATA = b"Subject: hi\r\n\r\nbody\r\n"


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[MessageQueue]:
    with MessageQueue(tmp_path / "q.db", clock=ManualClock(), retry=RetryPolicy(), reporting_mta="m") as q:
        yield q


def _envelope(data: bytes = DATA) -> Envelope:
    return Envelope("a@s.test", {"BODY": "8BITMIME"}, (Recipient("x@d.test", {"NOTIFY": "NEVER"}),), data)


async def test_message_is_committed_before_250(queue: MessageQueue) -> None:
    kicked: list[bool] = []
    handler = QueueingHandler(queue, hostname="mta.test", clock=ManualClock(), on_enqueued=lambda: kicked.append(True))
    reply = await handler.on_message(SESSION, _envelope())
    assert reply.code == 250
    (message,) = queue.messages()
    assert message.mail_params == ("BODY=8BITMIME",)
    assert message.data.startswith(b"Received: from client.test ([127.0.0.9])\r\n\tby mta.test with ESMTPS id ")
    assert message.data.endswith(DATA)
    (status,) = queue.recipient_states()
    assert status.state is RecipientState.QUEUED
    assert kicked == [True]


async def test_commit_failure_answers_451(queue: MessageQueue) -> None:
    handler = QueueingHandler(queue, hostname="mta.test", clock=ManualClock())
    queue.close()  # every write now fails
    reply = await handler.on_message(SESSION, _envelope())
    assert reply.code == 451


async def test_loop_is_refused(queue: MessageQueue) -> None:
    handler = QueueingHandler(queue, hostname="mta.test", clock=ManualClock())
    looped = b"Received: x\r\n" * 100 + DATA
    reply = await handler.on_message(SESSION, _envelope(looped))
    assert reply.code == 554 and queue.messages() == []


async def test_recipient_without_domain_is_refused(queue: MessageQueue) -> None:
    handler = QueueingHandler(queue, hostname="mta.test", clock=ManualClock())
    refused = await handler.on_rcpt(SESSION, "postmaster", {})
    assert refused is not None and refused.code == 550
    assert await handler.on_rcpt(SESSION, "x@d.test", {}) is None
    assert await handler.on_mail(SESSION, "", {}) is None


def test_params_as_strings() -> None:
    assert params_as_strings({"REQUIRETLS": None, "SIZE": "10"}) == ("REQUIRETLS", "SIZE=10")


@given(st.text(max_size=40), st.text(max_size=20))
def test_received_field_stays_one_field(ehlo: str, peer: str) -> None:
    field = received_field(ehlo_name=ehlo, peer=peer, hostname="mta.test", tls=False, queue_id="q", at=0.0)
    lines = field.split(b"\r\n")
    assert lines[-1] == b""
    assert all(line.startswith(b"\t") for line in lines[1:-1])
    assert count_received(field + b"\r\nbody") == 1


@given(st.binary(max_size=200))
def test_count_received_is_total(data: bytes) -> None:
    assert count_received(data) >= 0


def test_cores_import_no_io_modules() -> None:
    # STYLE.md: the sans-IO cores import no asyncio, sockets or DNS libraries.
    forbidden = {"asyncio", "socket", "ssl", "dns", "dnslib", "aiosmtpd"}
    root = Path(mta_package.__file__).parent
    for name in ("dsn", "queue", "mxplan", "delivery", "records", "clock"):
        tree = ast.parse((root / f"{name}.py").read_text())
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        } | {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not imported & forbidden, (name, imported & forbidden)
