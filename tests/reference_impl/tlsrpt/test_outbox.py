"""The durable outbox of HTTPS report submissions (RFC 8460 sections 3 and 5.5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_impl.tlsrpt.errors import TlsRptError
from reference_impl.tlsrpt.outbox import Outbox, OutboxClosed, PostState

T0 = 1_700_000_000.0


def add(outbox: Outbox, uri: str, *, report_id: str = "r1@x", claimed: bool = False) -> int:
    entry = outbox.add(
        report_id=report_id,
        policy_domain="d.test",
        uri=uri,
        body=b"\x1f\x8bbody",
        media_type="application/tlsrpt+gzip",
        now=T0,
        claimed=claimed,
    )
    return entry.post_id


def states(outbox: Outbox) -> list[tuple[str, PostState]]:
    return [(e.uri, e.state) for e in outbox.entries()]


def test_claim_fail_retry_deliver(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", now=T0) as outbox:
        post_id = add(outbox, "https://a.test/r")
        assert outbox.next_due_at() == T0
        [claimed] = outbox.claim_due(T0)
        assert claimed.state is PostState.INFLIGHT and claimed.first_attempt_at == T0
        assert outbox.claim_due(T0) == []  # inflight is never claimed twice
        assert outbox.failed(post_id, T0 + 1, "status 500", T0 + 61) is PostState.PENDING
        assert outbox.claim_due(T0 + 60) == []
        [again] = outbox.claim_due(T0 + 61)
        assert (again.attempts, again.first_attempt_at, again.last_error) == (1, T0, "status 500")
        outbox.delivered(post_id, T0 + 62)
        assert states(outbox) == [("https://a.test/r", PostState.DELIVERED)]
        assert outbox.get(post_id).attempts == 2 and outbox.report_delivered("r1@x")
        assert outbox.next_due_at() is None


def test_giving_up_after_the_horizon(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", now=T0) as outbox:
        post_id = add(outbox, "https://a.test/r", claimed=True)
        assert outbox.failed(post_id, T0, "refused", None) is PostState.FAILED
        assert outbox.claim_due(T0 + 10**6) == [] and outbox.next_due_at() is None


def test_one_delivery_supersedes_the_other_uris_of_the_report(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", now=T0) as outbox:
        first = add(outbox, "https://a.test/r", claimed=True)
        second = add(outbox, "https://b.test/r", claimed=True)
        other = add(outbox, "https://a.test/r", report_id="r2@x")
        assert outbox.failed(first, T0, "status 500", T0 + 60) is PostState.PENDING
        outbox.delivered(second, T0 + 1)
        assert states(outbox) == [
            ("https://a.test/r", PostState.SUPERSEDED),
            ("https://b.test/r", PostState.DELIVERED),
            ("https://a.test/r", PostState.PENDING),  # another report is not affected
        ]
        # A failure that completes after a sibling's success is superseded, not rescheduled.
        late = add(outbox, "https://c.test/r", claimed=True)
        assert outbox.failed(late, T0 + 2, "timeout", T0 + 60) is PostState.SUPERSEDED
        assert [e.post_id for e in outbox.entries("r2@x")] == [other]


def test_inflight_entries_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path, now=T0) as outbox:
        add(outbox, "https://a.test/r", claimed=True)
    with Outbox(path, now=T0 + 100) as reopened:
        [entry] = reopened.entries()
        assert (entry.state, entry.next_attempt_at, entry.body) == (PostState.PENDING, T0 + 100, b"\x1f\x8bbody")
        assert [e.uri for e in reopened.claim_due(T0 + 100)] == ["https://a.test/r"]


def test_closed_and_unknown(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3", now=T0)
    with pytest.raises(TlsRptError, match="no outbox entry"):
        outbox.get(42)
    outbox.close()
    outbox.close()  # idempotent
    with pytest.raises(OutboxClosed, match="closed"):
        outbox.entries()


def test_a_regenerated_report_supersedes_the_pending_older_one(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", now=T0) as outbox:
        old = add(outbox, "https://a.test/r", report_id="2026-11-28.d.test.aa@x")
        other_domain = outbox.add(
            report_id="2026-11-28.d.test.evil.bb@x",
            policy_domain="d.test.evil",
            uri="https://a.test/r",
            body=b"",
            media_type="application/tlsrpt+gzip",
            now=T0,
        ).post_id
        other_day = add(outbox, "https://a.test/r", report_id="2026-11-27.d.test.cc@x")
        assert outbox.supersede("d.test", "2026-11-28.d.test.", T0 + 1) == 1
        assert outbox.get(old).state is PostState.SUPERSEDED
        assert outbox.get(other_domain).state is PostState.PENDING
        assert outbox.get(other_day).state is PostState.PENDING
