"""The durable outbox of HTTPS report submissions (RFC 8460 sections 3, 5.4, 5.5), on SQLite.

One entry per (report, ``https:`` URI). Section 5.5 asks for redelivery "for up to 24 hours
after the initial attempt"; keeping the entries on disk means a restart of the MTA loses no
pending report. Section 3: with several ``rua`` URIs "the report SHOULD NOT be considered
successfully delivered until one of the endpoints accepts delivery of the report", so once
one entry of a report is delivered the others stop (``superseded``).

States::

    pending --claim--> inflight --2xx--> delivered (siblings: superseded)
                                --fail--> pending (next attempt due later) | failed (24 h over)

On open, entries left ``inflight`` by a process that died are pending again, due at once.
Synchronous; time comes in as arguments, so the store never reads a clock.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from reference_impl.sqlite_store import SqliteStore
from reference_impl.tlsrpt.errors import TlsRptError

__all__ = ["Outbox", "OutboxClosed", "OutboxEntry", "PostState"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    uri TEXT NOT NULL,
    body BLOB NOT NULL,
    media_type TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_attempt_at REAL,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_due ON posts(state, next_attempt_at);
CREATE INDEX IF NOT EXISTS posts_report ON posts(report_id);
"""


class OutboxClosed(TlsRptError):
    """The outbox was used after :meth:`Outbox.close`."""

    def __init__(self, message: str) -> None:
        super().__init__("outbox-closed", "5.5", message)


class PostState(StrEnum):
    PENDING = "pending"
    INFLIGHT = "inflight"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up: the 24 hours of section 5.5 are over
    SUPERSEDED = "superseded"  # another URI of the same report took it (section 3)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    post_id: int
    report_id: str
    policy_domain: str
    uri: str
    body: bytes
    media_type: str
    state: PostState
    attempts: int
    first_attempt_at: float | None
    next_attempt_at: float
    last_error: str | None


_SELECT = (
    "SELECT id, report_id, policy_domain, uri, body, media_type, state, attempts, first_attempt_at,"
    " next_attempt_at, last_error FROM posts"
)


def _entry(row: Any) -> OutboxEntry:  # a sqlite3 row
    pid, rid, domain, uri, body, mtype, state, attempts, first, nxt, error = row
    return OutboxEntry(
        post_id=int(pid),
        report_id=str(rid),
        policy_domain=str(domain),
        uri=str(uri),
        body=bytes(body),
        media_type=str(mtype),
        state=PostState(state),
        attempts=int(attempts),
        first_attempt_at=None if first is None else float(first),
        next_attempt_at=float(nxt),
        last_error=None if error is None else str(error),
    )


class Outbox(SqliteStore):
    """Pending HTTPS submissions in one SQLite file; use from one thread (the event loop)."""

    closed_error = OutboxClosed
    what = "TLSRPT outbox"

    def __init__(self, path: Path | str, *, now: float) -> None:
        super().__init__(path, _SCHEMA, synchronous="FULL")
        try:
            # A process died mid-POST: the outcome is unknown, so the entry is tried again.
            with self._transaction() as conn:
                conn.execute(
                    "UPDATE posts SET state = ?, next_attempt_at = ?, updated_at = ? WHERE state = ?",
                    (PostState.PENDING.value, now, now, PostState.INFLIGHT.value),
                )
        except Exception:
            self.close()
            raise

    def add(
        self,
        *,
        report_id: str,
        policy_domain: str,
        uri: str,
        body: bytes,
        media_type: str,
        now: float,
        claimed: bool = False,
    ) -> OutboxEntry:
        """Store a submission due now; ``claimed`` stores it inflight (the caller posts at once)."""
        state = PostState.INFLIGHT if claimed else PostState.PENDING
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO posts (report_id, policy_domain, uri, body, media_type, state,"
                " first_attempt_at, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (report_id, policy_domain, uri, body, media_type, state.value, now if claimed else None, now, now, now),
            )
            post_id = cursor.lastrowid
            assert post_id is not None
            return self._get(conn, post_id)

    def claim_due(self, now: float, limit: int = 100) -> list[OutboxEntry]:
        """Mark the pending entries due at ``now`` inflight and return them, oldest first."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM posts WHERE state = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
                (PostState.PENDING.value, now, max(limit, 0)),
            ).fetchall()
            ids = [int(row[0]) for row in rows]
            for post_id in ids:
                conn.execute(
                    "UPDATE posts SET state = ?, first_attempt_at = COALESCE(first_attempt_at, ?), updated_at = ?"
                    " WHERE id = ?",
                    (PostState.INFLIGHT.value, now, now, post_id),
                )
            return [self._get(conn, post_id) for post_id in ids]

    def delivered(self, post_id: int, now: float) -> None:
        """The endpoint took the report (section 5.4): the report's other entries stop (section 3)."""
        with self._transaction() as conn:
            entry = self._get(conn, post_id)
            conn.execute(
                "UPDATE posts SET state = ?, attempts = attempts + 1, last_error = NULL, updated_at = ? WHERE id = ?",
                (PostState.DELIVERED.value, now, post_id),
            )
            conn.execute(
                "UPDATE posts SET state = ?, updated_at = ? WHERE report_id = ? AND id != ? AND state = ?",
                (PostState.SUPERSEDED.value, now, entry.report_id, post_id, PostState.PENDING.value),
            )

    def failed(self, post_id: int, now: float, error: str, next_attempt_at: float | None) -> PostState:
        """A failed attempt: pending again at ``next_attempt_at``, or given up when it is None.
        An entry whose report another URI already delivered is superseded instead."""
        with self._transaction() as conn:
            entry = self._get(conn, post_id)
            taken = conn.execute(
                "SELECT 1 FROM posts WHERE report_id = ? AND state = ? LIMIT 1",
                (entry.report_id, PostState.DELIVERED.value),
            ).fetchone()
            if taken is not None:
                state, due = PostState.SUPERSEDED, now
            elif next_attempt_at is None:
                state, due = PostState.FAILED, now
            else:
                state, due = PostState.PENDING, next_attempt_at
            conn.execute(
                "UPDATE posts SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
                " updated_at = ? WHERE id = ?",
                (state.value, due, error[:500], now, post_id),
            )
            return state

    def supersede(self, policy_domain: str, report_id_prefix: str, now: float) -> int:
        """Stop the pending entries of ``policy_domain``'s older reports whose id starts with
        ``report_id_prefix`` (a regenerated report of the same day replaces them); how many."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE posts SET state = ?, updated_at = ? WHERE state = ? AND policy_domain = ?"
                " AND substr(report_id, 1, ?) = ?",
                (
                    PostState.SUPERSEDED.value,
                    now,
                    PostState.PENDING.value,
                    policy_domain,
                    len(report_id_prefix),
                    report_id_prefix,
                ),
            )
            return cursor.rowcount

    def report_delivered(self, report_id: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM posts WHERE report_id = ? AND state = ? LIMIT 1", (report_id, PostState.DELIVERED.value)
        ).fetchone()
        return row is not None

    def next_due_at(self) -> float | None:
        row = self._conn.execute(
            "SELECT MIN(next_attempt_at) FROM posts WHERE state = ?", (PostState.PENDING.value,)
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def entries(self, report_id: str | None = None) -> list[OutboxEntry]:
        query = _SELECT
        args: tuple[str, ...] = ()
        if report_id is not None:
            query += " WHERE report_id = ?"
            args = (report_id,)
        return [_entry(row) for row in self._conn.execute(query + " ORDER BY id", args).fetchall()]

    def get(self, post_id: int) -> OutboxEntry:
        return self._get(self._conn, post_id)

    @staticmethod
    def _get(conn: sqlite3.Connection, post_id: int) -> OutboxEntry:
        row = conn.execute(_SELECT + " WHERE id = ?", (post_id,)).fetchone()
        if row is None:
            raise TlsRptError("outbox-unknown-entry", "5.5", f"no outbox entry {post_id}")
        return _entry(row)
