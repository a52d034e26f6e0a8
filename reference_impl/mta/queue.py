"""The reference MTA's durable message queue, on SQLite.

RFC 5321 section 4.5.4.1 (retry strategy: a sender retries a deferred recipient, and gives up
after a bounded time) and section 6.1 (reliable delivery: once the server has answered 250 to
the end of data it owns the message and MUST NOT lose it). The failure notice it owes is a
DSN (RFC 3464, see :mod:`reference_impl.mta.dsn`), enqueued in the same transaction that
marks the recipient bounced, so a crash can never leave a bounce without its DSN.

Per recipient the states are::

    queued --claim--> inflight --delivered--> delivered
                               --temporary--> deferred --(due)--> inflight ...
                               --permanent--> bounced (+ DSN unless the sender is <>)
    deferred past the maximum lifetime ----> bounced (+ DSN)

On open, recipients left ``inflight`` by a process that died are queued again: delivery is
at least once, never at most once.

The queue is synchronous on purpose: :meth:`MessageQueue.enqueue` returns only after the
commit reached the disk (WAL, ``synchronous=FULL``), and the receiver answers 250 after it
returns. It reads time only through the injected :class:`~reference_impl.mta.clock.Clock`.

A message can be flagged as a TLSRPT report (RFC 8460 section 3, ``tlsrpt_report``): its
delivery sessions follow the rules for report mail (delivered despite TLS failures, not
recorded for the next report); the flag travels with every job of the message.

The DSN of a REQUIRETLS message (RFC 8689 section 5) is sent with REQUIRETLS and carries only
the original headers, even when RET=FULL was asked (:class:`~reference_impl.requiretls.bounce.
BounceRules`).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from reference_impl.mta import dsn
from reference_impl.mta.clock import Clock
from reference_impl.mta.errors import QueueError
from reference_impl.requiretls.bounce import BounceRules
from reference_impl.sqlite_store import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    mail_params TEXT NOT NULL,
    data BLOB NOT NULL,
    received_at REAL NOT NULL,
    dsn_of INTEGER,
    tlsrpt_report INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS recipients (
    message_id INTEGER NOT NULL REFERENCES messages(id),
    position INTEGER NOT NULL,
    address TEXT NOT NULL,
    domain TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    status TEXT,
    remote_mta TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (message_id, position)
);
CREATE INDEX IF NOT EXISTS recipients_due ON recipients(state, next_attempt_at);
"""
# Columns added after the first release of the queue; older files get them on open.
_ADDED_MESSAGE_COLUMNS = (("tlsrpt_report", "INTEGER NOT NULL DEFAULT 0"),)


def _add_missing_columns(db: sqlite3.Connection) -> None:
    present = {str(row[1]) for row in db.execute("PRAGMA table_info(messages)")}
    for column, declaration in _ADDED_MESSAGE_COLUMNS:
        if column not in present:
            db.execute(f"ALTER TABLE messages ADD COLUMN {column} {declaration}")


class RecipientState(Enum):
    QUEUED = "queued"
    INFLIGHT = "inflight"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"


FINAL_STATES = frozenset({RecipientState.DELIVERED, RecipientState.BOUNCED})


class OutcomeKind(Enum):
    """What one delivery attempt decided for one recipient."""

    DELIVERED = "delivered"
    TEMPORARY = "temporary"  # 4xx, network, DNS SERVFAIL: try again later
    PERMANENT = "permanent"  # 5xx, NXDOMAIN, null MX: bounce now


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry a deferred recipient and when to give up (RFC 5321 section 4.5.4.1)."""

    schedule: tuple[float, ...] = (60.0, 300.0, 900.0, 1800.0, 3600.0)
    max_lifetime_s: float = 5 * 86400.0

    def __post_init__(self) -> None:
        if not self.schedule or any(delay <= 0 for delay in self.schedule):
            raise ValueError("the retry schedule needs at least one positive delay")
        if self.max_lifetime_s <= 0:
            raise ValueError("the maximum queue lifetime must be positive")

    def delay_after(self, attempts: int) -> float:
        """Delay before the next try after ``attempts`` failed tries (the last step repeats)."""
        return self.schedule[min(max(attempts, 1), len(self.schedule)) - 1]


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """The recipients of one message in one domain that are due now, claimed (inflight)."""

    message_id: int
    sender: str  # "" is the null reverse path
    mail_params: tuple[str, ...]
    domain: str
    recipients: tuple[Recipient, ...]
    data: bytes
    received_at: float
    tlsrpt_report: bool = False  # RFC 8460 section 3: report mail, see the module docstring


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    address: str
    kind: OutcomeKind
    status: str  # enhanced status code (RFC 3463), e.g. "2.0.0", "4.4.1", "5.1.1"
    diagnostic: str | None = None  # the remote reply or a local explanation
    remote_mta: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message_id: int
    sender: str
    mail_params: tuple[str, ...]
    data: bytes
    received_at: float
    dsn_of: int | None
    tlsrpt_report: bool = False


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    message_id: int
    address: str
    domain: str
    state: RecipientState
    attempts: int
    next_attempt_at: float
    last_error: str | None
    status: str | None


def recipient_domain(address: str) -> str:
    """The domain of an envelope address, lower case (domains are case-insensitive;
    RFC 5321 section 2.4), without a trailing dot."""
    _, at, domain = address.rpartition("@")
    if not at or not domain:
        raise QueueError(f"recipient has no domain: {address!r}")
    return domain.rstrip(".").lower()


class MessageQueue(SqliteStore):
    """The durable queue. One instance per state file; use from one thread (the event loop)."""

    closed_error = QueueError
    what = "queue"

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock,
        retry: RetryPolicy,
        reporting_mta: str,
        bounce_rules: BounceRules | None = None,
    ) -> None:
        self._clock = clock
        self._bounce = bounce_rules or BounceRules()
        self._retry = retry
        self._reporting_mta = reporting_mta
        # Durability before the 250: every commit is fsynced (RFC 5321 section 6.1).
        super().__init__(path, _SCHEMA, synchronous="FULL", migrate=_add_missing_columns)
        try:
            self._recover()
        except Exception:
            self.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------

    def _recover(self) -> None:
        # A previous process died while these were being delivered: their fate is unknown,
        # so they are tried again (at least once; a duplicate beats a loss).
        with self._transaction() as conn:
            conn.execute(
                "UPDATE recipients SET state = ?, next_attempt_at = ? WHERE state = ?",
                (RecipientState.QUEUED.value, self._clock.now(), RecipientState.INFLIGHT.value),
            )

    # -- accepting -------------------------------------------------------------------------

    def enqueue(
        self,
        sender: str,
        recipients: Sequence[Recipient],
        data: bytes,
        mail_params: Sequence[str] = (),
        *,
        dsn_of: int | None = None,
        tlsrpt_report: bool = False,
    ) -> int:
        """Store a message durably and return its id. Returns only after the commit."""
        unique: dict[str, Recipient] = {}
        for rcpt in recipients:
            unique.setdefault(rcpt.address, rcpt)  # a repeated RCPT TO is one recipient
        if not unique:
            raise QueueError("a message needs at least one recipient")
        domains = {address: recipient_domain(address) for address in unique}
        now = self._clock.now()
        with self._transaction() as conn:
            message_id = self._insert(
                conn, sender, list(unique.values()), domains, data, tuple(mail_params), dsn_of, now
            )
            if tlsrpt_report:
                conn.execute("UPDATE messages SET tlsrpt_report = 1 WHERE id = ?", (message_id,))
            return message_id

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        sender: str,
        recipients: list[Recipient],
        domains: dict[str, str],
        data: bytes,
        mail_params: tuple[str, ...],
        dsn_of: int | None,
        now: float,
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO messages (sender, mail_params, data, received_at, dsn_of) VALUES (?, ?, ?, ?, ?)",
            (sender, json.dumps(list(mail_params)), data, now, dsn_of),
        )
        message_id = cursor.lastrowid
        assert message_id is not None
        conn.executemany(
            "INSERT INTO recipients (message_id, position, address, domain, params, state,"
            " next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    message_id,
                    i,
                    r.address,
                    domains[r.address],
                    json.dumps(list(r.params)),
                    RecipientState.QUEUED.value,
                    now,
                    now,
                )
                for i, r in enumerate(recipients)
            ],
        )
        return message_id

    # -- delivering ------------------------------------------------------------------------

    def claim_due(self, limit: int = 100) -> list[DeliveryJob]:
        """Mark every due recipient inflight and return them grouped per (message, domain),
        at most ``limit`` jobs, oldest first."""
        now = self._clock.now()
        due_states = (RecipientState.QUEUED.value, RecipientState.DEFERRED.value)
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT r.message_id, r.domain FROM recipients r"
                " WHERE r.state IN (?, ?) AND r.next_attempt_at <= ?"
                " GROUP BY r.message_id, r.domain ORDER BY MIN(r.next_attempt_at),"
                " r.message_id, r.domain LIMIT ?",
                (*due_states, now, limit),
            ).fetchall()
            jobs = []
            for message_id, domain in rows:
                message = self._message(conn, message_id)
                rcpts = conn.execute(
                    "SELECT address, params FROM recipients WHERE message_id = ? AND domain = ?"
                    " AND state IN (?, ?) AND next_attempt_at <= ? ORDER BY position",
                    (message_id, domain, *due_states, now),
                ).fetchall()
                conn.execute(
                    "UPDATE recipients SET state = ?, updated_at = ? WHERE message_id = ?"
                    " AND domain = ? AND state IN (?, ?) AND next_attempt_at <= ?",
                    (RecipientState.INFLIGHT.value, now, message_id, domain, *due_states, now),
                )
                jobs.append(
                    DeliveryJob(
                        message_id=message_id,
                        sender=message.sender,
                        mail_params=message.mail_params,
                        domain=domain,
                        recipients=tuple(Recipient(a, tuple(json.loads(p))) for a, p in rcpts),
                        data=message.data,
                        received_at=message.received_at,
                        tlsrpt_report=message.tlsrpt_report,
                    )
                )
            return jobs

    def complete(self, job: DeliveryJob, outcomes: Sequence[RecipientOutcome]) -> list[int]:
        """Apply the outcomes of one delivery attempt for a claimed job; returns the ids of
        the DSN messages enqueued for bounced recipients (in the same transaction)."""
        by_address = {o.address: o for o in outcomes}
        unknown = set(by_address) - {r.address for r in job.recipients}
        if unknown:
            raise QueueError(f"outcomes for recipients not in the job: {sorted(unknown)}")
        now = self._clock.now()
        expires_at = job.received_at + self._retry.max_lifetime_s
        bounced: list[tuple[Recipient, RecipientOutcome]] = []
        with self._transaction() as conn:
            for rcpt in job.recipients:
                outcome = by_address.get(rcpt.address) or RecipientOutcome(
                    rcpt.address, OutcomeKind.TEMPORARY, "4.0.0", "no outcome was recorded"
                )
                row = conn.execute(
                    "SELECT attempts, state FROM recipients WHERE message_id = ? AND address = ?",
                    (job.message_id, rcpt.address),
                ).fetchone()
                if row is None or row[1] != RecipientState.INFLIGHT.value:
                    raise QueueError(f"{rcpt.address!r} of message {job.message_id} not inflight")
                attempts = row[0] + 1
                state, next_at, error = self._transition(outcome, attempts, now, expires_at)
                conn.execute(
                    "UPDATE recipients SET state = ?, attempts = ?, next_attempt_at = ?,"
                    " last_error = ?, status = ?, remote_mta = ?, updated_at = ?"
                    " WHERE message_id = ? AND address = ?",
                    (
                        state.value,
                        attempts,
                        next_at,
                        error,
                        outcome.status,
                        outcome.remote_mta,
                        now,
                        job.message_id,
                        rcpt.address,
                    ),
                )
                if state is RecipientState.BOUNCED:
                    bounced.append((rcpt, outcome))
            return self._enqueue_dsn(conn, job, bounced, now)

    def _transition(
        self, outcome: RecipientOutcome, attempts: int, now: float, expires_at: float
    ) -> tuple[RecipientState, float, str | None]:
        if outcome.kind is OutcomeKind.DELIVERED:
            return RecipientState.DELIVERED, now, None
        if outcome.kind is OutcomeKind.PERMANENT:
            return RecipientState.BOUNCED, now, outcome.diagnostic
        # RFC 5321 section 4.5.4.1: give up once the message is older than the lifetime.
        if now >= expires_at:
            reason = f"delivery time expired; last error: {outcome.diagnostic or outcome.status}"
            return RecipientState.BOUNCED, now, reason
        # Never schedule past the lifetime: the last try happens at the deadline itself.
        next_at = min(now + self._retry.delay_after(attempts), expires_at)
        return RecipientState.DEFERRED, next_at, outcome.diagnostic

    def _enqueue_dsn(
        self,
        conn: sqlite3.Connection,
        job: DeliveryJob,
        bounced: list[tuple[Recipient, RecipientOutcome]],
        now: float,
    ) -> list[int]:
        wanted = [(r, o) for r, o in bounced if dsn.failure_dsn_wanted(job.sender, r.params)]
        if not wanted:
            return []
        token = f"{job.message_id}.{secrets.token_hex(8)}"
        request = dsn.DsnRequest(
            reporting_mta=self._reporting_mta,
            original_sender=job.sender,
            original_message=job.data,
            recipients=tuple(
                dsn.RecipientReport(
                    final_recipient=r.address,
                    status=o.status if o.status[:1] in "45" else "5.0.0",
                    diagnostic=o.diagnostic,
                    remote_mta=o.remote_mta,
                    original_recipient=dsn.original_recipient(r.params),
                    last_attempt_at=now,
                )
                for r, o in wanted
            ),
            arrival_date=job.received_at,
            created_at=now,
            token=token,
            envid=dsn.envelope_id(job.mail_params),
            # RFC 8689 section 5: RET=HDRS behaviour for a REQUIRETLS message.
            return_full=self._bounce.return_full(job.mail_params),
        )
        data = dsn.build_dsn(request)
        try:
            domain = recipient_domain(job.sender)
        except QueueError:
            return []  # a sender without a domain cannot be answered; the bounce is recorded
        # RFC 3461 section 6.1: the DSN travels with the null reverse path.
        message_id = self._insert(
            conn,
            "",
            [Recipient(job.sender)],
            {job.sender: domain},
            data,
            self._bounce.mail_params(job.mail_params),  # RFC 8689 section 5: REQUIRETLS again
            job.message_id,
            now,
        )
        return [message_id]

    # -- inspecting ------------------------------------------------------------------------

    def next_due_at(self) -> float | None:
        """When the earliest queued or deferred recipient becomes due (None: nothing waits)."""
        row = self._conn.execute(
            "SELECT MIN(next_attempt_at) FROM recipients WHERE state IN (?, ?)",
            (RecipientState.QUEUED.value, RecipientState.DEFERRED.value),
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def count_in_state(self, state: RecipientState) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM recipients WHERE state = ?", (state.value,)).fetchone()
        return int(row[0])

    def recipient_states(self, message_id: int | None = None) -> list[RecipientStatus]:
        query = (
            "SELECT message_id, address, domain, state, attempts, next_attempt_at, last_error, status FROM recipients"
        )
        args: tuple[int, ...] = ()
        if message_id is not None:
            query += " WHERE message_id = ?"
            args = (message_id,)
        rows = self._conn.execute(query + " ORDER BY message_id, position", args).fetchall()
        return [RecipientStatus(m, a, d, RecipientState(s), n, t, e, st) for m, a, d, s, n, t, e, st in rows]

    def message(self, message_id: int) -> StoredMessage:
        return self._message(self._conn, message_id)

    def messages(self) -> list[StoredMessage]:
        ids = [row[0] for row in self._conn.execute("SELECT id FROM messages ORDER BY id")]
        return [self._message(self._conn, i) for i in ids]

    @staticmethod
    def _message(conn: sqlite3.Connection, message_id: int) -> StoredMessage:
        row = conn.execute(
            "SELECT sender, mail_params, data, received_at, dsn_of, tlsrpt_report FROM messages WHERE id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            raise QueueError(f"no message {message_id}")
        sender, params, data, received_at, dsn_of, report = row
        return StoredMessage(
            message_id, sender, tuple(json.loads(params)), bytes(data), received_at, dsn_of, bool(report)
        )
