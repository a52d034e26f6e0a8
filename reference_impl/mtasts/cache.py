"""The sending MTA's persistent MTA-STS policy cache, on SQLite (WAL).

RFC 8461 section 3.3 and 5.1: a policy applies while its time since the last successful
fetch has not exceeded its ``max_age`` (section 3.2: "Well-behaved clients SHOULD cache a
policy for up to this value from the last policy fetch time"), so every successful fetch
restarts the lifetime: ``expires_at = fetched_at + max_age``. Section 3.1: the cached ``id``
lets the sender check the TXT record without an HTTPS request. Section 3.3: "In the case
where the HTTPS GET fails, implementers SHOULD limit further attempts to a period of five
minutes or longer per version ID", so the cache also keeps, per domain, the last failed fetch
and the ``id`` it was for (a successful fetch clears it).

Entries are keyed by Policy Domain (lower case, no root dot). The policy text is the source
of truth: the parsed policy is rebuilt from it on every read, so a stored entry can never
disagree with the text it came from (an entry the parser now rejects reads as absent).
Expired entries are returned too, so the planner can tell "expired" from "never seen";
:func:`reference_impl.mtasts.discovery.is_usable` decides whether one applies.

Synchronous and sans-IO in the network sense: sqlite3 only, time only through ``clock``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from reference_impl.mtasts.errors import PolicyError
from reference_impl.mtasts.policy import Policy, PolicyReadings, parse_policy
from reference_impl.sqlite_store import SqliteStore

if TYPE_CHECKING:
    from reference_impl.mtasts.discovery import PolicyOutcome

_SCHEMA = """
CREATE TABLE IF NOT EXISTS policies (
    domain TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    policy_text TEXT NOT NULL,
    mode TEXT NOT NULL,
    max_age INTEGER NOT NULL,
    fetched_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fetch_failures (
    domain TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""


class Clock(Protocol):
    """Seconds since the epoch, like ``time.time()``; tests inject a manual clock."""

    def now(self) -> float: ...


class CacheError(Exception):
    """The cache was used after close, or its file is not a policy cache."""


@dataclass(frozen=True, slots=True)
class CachedPolicy:
    domain: str
    record_id: str  # the TXT id the policy was fetched under (section 3.1)
    policy_text: str
    policy: Policy
    fetched_at: float  # the last successful fetch
    expires_at: float  # fetched_at + max_age (sections 3.2, 3.3)

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True, slots=True)
class FailureNote:
    """The last failed fetch for a domain (section 3.3, five minutes per version id)."""

    domain: str
    record_id: str
    failed_at: float


def cache_key(domain: str) -> str:
    """Domains compare case-insensitively and without the root dot."""
    return domain.strip().rstrip(".").lower()


class PolicyCache(SqliteStore):
    """One cache file; use from one thread (the event loop)."""

    closed_error = CacheError
    what = "policy cache"

    def __init__(self, path: Path | str, *, clock: Clock, policy_readings: PolicyReadings | None = None) -> None:
        self._clock = clock
        self._readings = policy_readings or PolicyReadings()
        try:
            super().__init__(path, _SCHEMA, synchronous="NORMAL")  # a lost cache write costs a refetch
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"cannot open the policy cache {path}: {exc}") from exc

    # -- reads -----------------------------------------------------------------------------

    def get(self, domain: str) -> CachedPolicy | None:
        """The stored policy for ``domain``, expired or not; None if none (or unparsable)."""
        row = self._conn.execute(
            "SELECT domain, record_id, policy_text, fetched_at, expires_at FROM policies WHERE domain = ?",
            (cache_key(domain),),
        ).fetchone()
        return None if row is None else _entry(row, self._readings)

    def last_failure(self, domain: str) -> FailureNote | None:
        row = self._conn.execute(
            "SELECT domain, record_id, failed_at FROM fetch_failures WHERE domain = ?", (cache_key(domain),)
        ).fetchone()
        return None if row is None else FailureNote(str(row[0]), str(row[1]), float(row[2]))

    def entries(self) -> list[CachedPolicy]:
        """Every parsable stored policy, soonest expiry first (for a refresh task, 10.2)."""
        rows = self._conn.execute(
            "SELECT domain, record_id, policy_text, fetched_at, expires_at FROM policies ORDER BY expires_at, domain"
        ).fetchall()
        entries = (_entry(row, self._readings) for row in rows)
        return [entry for entry in entries if entry is not None]

    # -- writes ----------------------------------------------------------------------------

    def store(self, domain: str, record_id: str, policy_text: str, policy: Policy) -> CachedPolicy:
        """Record a successful fetch now: the lifetime restarts (section 3.3, 5.1) and any
        failure note for the domain is cleared."""
        now = self._clock.now()
        key = cache_key(domain)
        # Section 3.2: cache "for up to this value from the last policy fetch time".
        expires_at = now + policy.max_age
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT INTO policies (domain, record_id, policy_text, mode, max_age, fetched_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(domain) DO UPDATE SET record_id = excluded.record_id,"
                " policy_text = excluded.policy_text, mode = excluded.mode, max_age = excluded.max_age,"
                " fetched_at = excluded.fetched_at, expires_at = excluded.expires_at",
                (key, record_id, policy_text, str(policy.mode.value), int(policy.max_age), now, expires_at),
            )
            self._conn.execute("DELETE FROM fetch_failures WHERE domain = ?", (key,))
        return CachedPolicy(key, record_id, policy_text, policy, now, expires_at)

    def note_failure(self, domain: str, record_id: str) -> FailureNote:
        """Record a failed fetch for ``record_id`` now (section 3.3: "SHOULD limit further
        attempts to a period of five minutes or longer per version ID"). The cached policy,
        if any, is kept: a failed fetch never removes it (section 3.3)."""
        now = self._clock.now()
        key = cache_key(domain)
        self._conn.execute(
            "INSERT INTO fetch_failures (domain, record_id, failed_at) VALUES (?, ?, ?)"
            " ON CONFLICT(domain) DO UPDATE SET record_id = excluded.record_id, failed_at = excluded.failed_at",
            (key, record_id, now),
        )
        return FailureNote(key, record_id, now)

    def remove(self, domain: str) -> None:
        key = cache_key(domain)
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM policies WHERE domain = ?", (key,))
            self._conn.execute("DELETE FROM fetch_failures WHERE domain = ?", (key,))

    def purge_expired(self) -> int:
        """Drop policies that expired (they are never applied, sections 3.3 and 5.1)."""
        cursor = self._conn.execute("DELETE FROM policies WHERE expires_at <= ?", (self._clock.now(),))
        return cursor.rowcount

    def record(self, domain: str, outcome: PolicyOutcome) -> CachedPolicy | None:
        """Apply what a discovery outcome asks of the cache: store a fetched policy, or note
        a failed fetch. Returns the new entry when one was stored."""
        if outcome.failed_fetch_id is not None:
            self.note_failure(domain, outcome.failed_fetch_id)
        if outcome.store and outcome.policy is not None and outcome.policy_text is not None:
            if outcome.record_id is None:
                raise CacheError("a fetched policy needs the TXT id it was fetched under")
            return self.store(domain, outcome.record_id, outcome.policy_text, outcome.policy)
        return None


def _entry(row: tuple[object, ...], readings: PolicyReadings) -> CachedPolicy | None:
    domain, record_id, text, fetched_at, expires_at = row
    try:
        policy = parse_policy(str(text), readings)
    except PolicyError:
        return None
    return CachedPolicy(str(domain), str(record_id), str(text), policy, _float(fetched_at), _float(expires_at))


def _float(value: object) -> float:
    if not isinstance(value, int | float):
        raise CacheError(f"corrupt cache row: {value!r} is not a time")
    return float(value)
