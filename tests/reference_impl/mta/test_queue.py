"""The durable queue: transitions, retry timing on a manual clock, lifetime, restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_impl.mta.clock import ManualClock
from reference_impl.mta.errors import QueueError
from reference_impl.mta.queue import (
    MessageQueue,
    OutcomeKind,
    Recipient,
    RecipientOutcome,
    RecipientState,
    RetryPolicy,
    recipient_domain,
)

from .helpers import parse_mail

DATA = b"Subject: hi\r\n\r\nbody\r\n"
RETRY = RetryPolicy(schedule=(60.0, 300.0), max_lifetime_s=1000.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def queue(tmp_path: Path, clock: ManualClock) -> Iterator[MessageQueue]:
    with MessageQueue(tmp_path / "q.db", clock=clock, retry=RETRY, reporting_mta="mta.test") as q:
        yield q


def _states(queue: MessageQueue) -> dict[str, RecipientState]:
    return {s.address: s.state for s in queue.recipient_states()}


def _ok(address: str) -> RecipientOutcome:
    return RecipientOutcome(address, OutcomeKind.DELIVERED, "2.0.0", "250 ok", "mx")


def _temp(address: str) -> RecipientOutcome:
    return RecipientOutcome(address, OutcomeKind.TEMPORARY, "4.2.0", "451 4.2.0 busy", "mx")


def _perm(address: str) -> RecipientOutcome:
    return RecipientOutcome(address, OutcomeKind.PERMANENT, "5.1.1", "550 5.1.1 unknown", "mx")


def test_enqueue_groups_recipients_by_domain(queue: MessageQueue) -> None:
    queue.enqueue(
        "a@s.test",
        [Recipient("x@d1.test"), Recipient("y@D1.test."), Recipient("z@d2.test"), Recipient("x@d1.test")],
        DATA,
    )
    jobs = queue.claim_due()
    assert sorted((j.domain, [r.address for r in j.recipients]) for j in jobs) == [
        ("d1.test", ["x@d1.test", "y@D1.test."]),
        ("d2.test", ["z@d2.test"]),
    ]
    assert set(_states(queue).values()) == {RecipientState.INFLIGHT}
    assert queue.claim_due() == []  # claimed work is not handed out twice


def test_delivered_is_final(queue: MessageQueue) -> None:
    queue.enqueue("a@s.test", [Recipient("x@d.test")], DATA)
    (job,) = queue.claim_due()
    assert queue.complete(job, [_ok("x@d.test")]) == []
    assert _states(queue) == {"x@d.test": RecipientState.DELIVERED}
    assert queue.next_due_at() is None


def test_temporary_failure_defers_on_the_schedule(queue: MessageQueue, clock: ManualClock) -> None:
    queue.enqueue("a@s.test", [Recipient("x@d.test")], DATA)
    (job,) = queue.claim_due()
    queue.complete(job, [_temp("x@d.test")])
    (status,) = queue.recipient_states()
    assert status.state is RecipientState.DEFERRED
    assert status.attempts == 1
    assert status.last_error == "451 4.2.0 busy"
    assert status.next_attempt_at == clock.now() + 60
    clock.advance(59)
    assert queue.claim_due() == []
    clock.advance(1)
    (job,) = queue.claim_due()
    queue.complete(job, [_temp("x@d.test")])
    (status,) = queue.recipient_states()
    assert status.next_attempt_at == clock.now() + 300  # second step of the schedule
    clock.advance(300)
    (job,) = queue.claim_due()
    queue.complete(job, [_temp("x@d.test")])
    assert queue.recipient_states()[0].next_attempt_at == clock.now() + 300  # last step repeats


def test_permanent_failure_bounces_with_a_dsn(queue: MessageQueue) -> None:
    first = queue.enqueue("alice@s.test", [Recipient("x@d.test"), Recipient("y@d.test")], DATA)
    (job,) = queue.claim_due()
    dsn_ids = queue.complete(job, [_perm("x@d.test"), _ok("y@d.test")])
    assert len(dsn_ids) == 1
    dsn_msg = queue.message(dsn_ids[0])
    assert dsn_msg.sender == ""  # RFC 3461 6.1: from the null reverse path
    assert dsn_msg.dsn_of == first
    assert [s.address for s in queue.recipient_states(dsn_ids[0])] == ["alice@s.test"]
    parsed = parse_mail(dsn_msg.data)
    block = parsed.get_payload()[1].get_payload()[1]
    assert block["Final-Recipient"] == "rfc822;x@d.test"
    assert block["Status"] == "5.1.1"
    states = {(s.message_id, s.address): s.state for s in queue.recipient_states()}
    assert states[(first, "x@d.test")] is RecipientState.BOUNCED
    assert states[(first, "y@d.test")] is RecipientState.DELIVERED
    assert states[(dsn_ids[0], "alice@s.test")] is RecipientState.QUEUED


def test_bounce_of_a_dsn_makes_no_new_dsn(queue: MessageQueue) -> None:
    queue.enqueue("", [Recipient("x@d.test")], DATA)
    (job,) = queue.claim_due()
    assert queue.complete(job, [_perm("x@d.test")]) == []
    assert _states(queue) == {"x@d.test": RecipientState.BOUNCED}
    assert len(queue.messages()) == 1


def test_notify_never_suppresses_the_dsn(queue: MessageQueue) -> None:
    queue.enqueue("a@s.test", [Recipient("x@d.test", ("NOTIFY=NEVER",))], DATA)
    (job,) = queue.claim_due()
    assert queue.complete(job, [_perm("x@d.test")]) == []


def test_lifetime_expiry_bounces_with_dsn(queue: MessageQueue, clock: ManualClock) -> None:
    queue.enqueue("a@s.test", [Recipient("x@d.test")], DATA)
    attempts = 0
    while True:
        jobs = queue.claim_due()
        if not jobs:
            due = queue.next_due_at()
            assert due is not None
            clock.advance(due - clock.now())
            continue
        attempts += 1
        dsn_ids = queue.complete(jobs[0], [_temp("x@d.test")])
        if dsn_ids:
            break
    status = queue.recipient_states(1)[0]
    assert status.state is RecipientState.BOUNCED
    assert "delivery time expired" in (status.last_error or "")
    assert clock.now() == 1_700_000_000.0 + 1000  # the last try is at the deadline itself
    assert attempts == 6  # at 0, 60, 360, 660, 960 and the deadline 1000
    dsn_block = parse_mail(queue.message(dsn_ids[0]).data).get_payload()[1]
    assert dsn_block.get_payload()[1]["Status"] == "4.2.0"


def test_missing_outcome_defers_instead_of_sticking(queue: MessageQueue) -> None:
    queue.enqueue("a@s.test", [Recipient("x@d.test"), Recipient("y@d.test")], DATA)
    (job,) = queue.claim_due()
    queue.complete(job, [_ok("x@d.test")])
    assert _states(queue)["y@d.test"] is RecipientState.DEFERRED


def test_outcome_for_foreign_recipient_is_an_error(queue: MessageQueue) -> None:
    queue.enqueue("a@s.test", [Recipient("x@d.test")], DATA)
    (job,) = queue.claim_due()
    with pytest.raises(QueueError):
        queue.complete(job, [_ok("other@d.test")])
    assert _states(queue) == {"x@d.test": RecipientState.INFLIGHT}  # rolled back


def test_completing_twice_is_an_error(queue: MessageQueue) -> None:
    queue.enqueue("a@s.test", [Recipient("x@d.test")], DATA)
    (job,) = queue.claim_due()
    queue.complete(job, [_ok("x@d.test")])
    with pytest.raises(QueueError):
        queue.complete(job, [_ok("x@d.test")])


def test_enqueue_needs_recipients_with_domains(queue: MessageQueue) -> None:
    with pytest.raises(QueueError):
        queue.enqueue("a@s.test", [], DATA)
    with pytest.raises(QueueError):
        queue.enqueue("a@s.test", [Recipient("postmaster")], DATA)
    assert queue.messages() == []  # nothing half-written


def test_durable_across_reopen_and_inflight_recovered(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "q.db"
    with MessageQueue(path, clock=clock, retry=RETRY, reporting_mta="m") as q:
        mid = q.enqueue("a@s.test", [Recipient("x@d1.test"), Recipient("y@d2.test")], DATA, ("BODY=8BITMIME",))
        jobs = q.claim_due()
        done = next(j for j in jobs if j.domain == "d1.test")
        q.complete(done, [_temp("x@d1.test")])
        # the d2 job stays inflight: the process "dies" here
    with MessageQueue(path, clock=clock, retry=RETRY, reporting_mta="m") as q:
        states = _states(q)
        assert states == {"x@d1.test": RecipientState.DEFERRED, "y@d2.test": RecipientState.QUEUED}
        (job,) = q.claim_due()
        assert job.recipients[0].address == "y@d2.test"
        assert job.data == DATA
        assert job.mail_params == ("BODY=8BITMIME",)
        assert q.message(mid).data == DATA
        clock.advance(60)
        (job,) = q.claim_due()
        assert job.domain == "d1.test"


def test_closed_queue_raises(tmp_path: Path, clock: ManualClock) -> None:
    q = MessageQueue(tmp_path / "q.db", clock=clock, retry=RETRY, reporting_mta="m")
    q.close()
    with pytest.raises(QueueError):
        q.claim_due()


def test_retry_policy_validation() -> None:
    with pytest.raises(ValueError, match="positive"):
        RetryPolicy(schedule=())
    with pytest.raises(ValueError, match="lifetime"):
        RetryPolicy(max_lifetime_s=0)
    assert RetryPolicy(schedule=(1.0, 2.0)).delay_after(0) == 1.0


@given(st.text(max_size=30))
def test_recipient_domain_is_total(address: str) -> None:
    try:
        domain = recipient_domain(address)
    except QueueError:
        return
    assert domain and domain == domain.lower() and not domain.endswith(".")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["ok", "temp", "perm"]), min_size=1, max_size=8))
def test_every_message_ends_final_or_deferred(tmp_path: Path, kinds: list[str]) -> None:
    clock = ManualClock()
    path = tmp_path / f"q{abs(hash(tuple(kinds)))}.db"
    path.unlink(missing_ok=True)
    make = {"ok": _ok, "temp": _temp, "perm": _perm}
    with MessageQueue(path, clock=clock, retry=RETRY, reporting_mta="m") as q:
        q.enqueue("a@s.test", [Recipient("x@d.test")], DATA)
        for kind in kinds:
            jobs = [j for j in q.claim_due() if j.message_id == 1]
            if not jobs:
                break
            q.complete(jobs[0], [make[kind]("x@d.test")])
            clock.advance(300)
        status = q.recipient_states(1)[0]
        assert status.state is not RecipientState.INFLIGHT
        if status.state is RecipientState.BOUNCED:
            assert len(q.messages()) == 2  # its DSN
        if status.state is RecipientState.DEFERRED:
            assert status.next_attempt_at > 0
