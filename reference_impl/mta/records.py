"""TLS session records: one per SMTP session the reference MTA tried, for TLSRPT.

The result types are the names of RFC 8460 section 4.3 (4.3.1 negotiation failures, 4.3.2.1
DANE and 4.3.2.2 MTA-STS policy failures, the 4.3.3 catch-all "validation-failure"); "success" is the
successful-session counter of section 4.4 (``total-successful-session-count``). Transient
failures (TCP refused, timeouts; section 4.3.4) are not TLS sessions and produce no record.

Besides one record per SMTP session, the MTA-STS enforcement (RFC 8461 section 6) adds
policy records with no session: an MX host that does not match the policy's ``mx`` patterns
(``validation-failure``, reason ``mx-mismatch``, ``ip`` empty) and a discovery failure
(``sts-policy-fetch-error``, ``sts-policy-invalid``, ``sts-webpki-invalid``; ``mx_host`` and
``ip`` empty). DANE (RFC 7672) adds per-MX records with no session too: a TLSA lookup that
failed in a signed zone (``dnssec-invalid``) and an MX without validated TLSA records for a
domain configured as DANE-required (``dane-required``); ``ip`` empty. Every record carries what
RFC 8460 section 4.4 "policies" needs: the policy type (``tlsa``, ``sts`` or
``no-policy-found``), the policy strings (the MTA-STS policy's lines, or the TLSA records in
presentation form, section 4.5) and the ``mx`` patterns (MTA-STS only), and the sending side of
a session: the local address of its outbound socket (``sending-mta-ip``; empty for a record
without a session).

Records are kept in their own SQLite file so the report generator can read them while the
queue is busy.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from reference_impl.mta.errors import MtaError
from reference_impl.sqlite_store import SqliteStore


class TlsResultType(Enum):
    """RFC 8460 section 4.3 result types the sender can observe itself, plus success."""

    SUCCESS = "success"
    STARTTLS_NOT_SUPPORTED = "starttls-not-supported"  # section 4.3.1
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"  # section 4.3.1
    CERTIFICATE_EXPIRED = "certificate-expired"  # section 4.3.1
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"  # section 4.3.1
    VALIDATION_FAILURE = "validation-failure"  # section 4.3.3
    TLSA_INVALID = "tlsa-invalid"  # section 4.3.2.1
    DNSSEC_INVALID = "dnssec-invalid"  # section 4.3.2.1
    DANE_REQUIRED = "dane-required"  # section 4.3.2.1
    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"  # section 4.3.2.2
    STS_POLICY_INVALID = "sts-policy-invalid"  # section 4.3.2.2
    STS_WEBPKI_INVALID = "sts-webpki-invalid"  # section 4.3.2.2


POLICY_TYPE_STS = "sts"  # RFC 8460 section 4.4 "policy-type"
POLICY_TYPE_TLSA = "tlsa"
POLICY_TYPE_NONE = "no-policy-found"
MX_MISMATCH = "mx-mismatch"  # failure_reason of an MX that fails RFC 8461 section 4.1


@dataclass(frozen=True, slots=True)
class TlsSessionRecord:
    policy_domain: str  # the recipient domain (RFC 8460 section 4.4 "policy-domain")
    mx_host: str  # "receiving-mx-hostname"
    ip: str  # "receiving-ip"
    result_type: TlsResultType
    tls_version: str | None  # None when the session stayed in plaintext
    cipher: str | None
    at: float
    failure_reason: str | None = None  # "failure-reason-code", e.g. the OpenSSL verify message
    mx_helo: str | None = None  # "receiving-mx-helo": the first word of the greeting, untrusted
    policy_type: str = POLICY_TYPE_NONE  # RFC 8460 section 4.4 "policy-type"
    policy_strings: tuple[str, ...] = ()  # "policy-string": MTA-STS policy lines, or TLSA RRs (4.5)
    mx_patterns: tuple[str, ...] = ()  # "mx-host": the MTA-STS policy's mx patterns
    sending_ip: str = ""  # "sending-mta-ip": the local address of the outbound socket ("" if none)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tls_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    policy_domain TEXT NOT NULL,
    mx_host TEXT NOT NULL,
    ip TEXT NOT NULL,
    result_type TEXT NOT NULL,
    tls_version TEXT,
    cipher TEXT,
    at REAL NOT NULL,
    failure_reason TEXT,
    mx_helo TEXT,
    policy_type TEXT NOT NULL DEFAULT 'no-policy-found',
    policy_strings TEXT NOT NULL DEFAULT '',
    mx_patterns TEXT NOT NULL DEFAULT '',
    sending_ip TEXT NOT NULL DEFAULT ''
);
"""
# Columns added after the first release of the store; older files get them on open.
_ADDED_COLUMNS = (
    ("policy_type", "TEXT NOT NULL DEFAULT 'no-policy-found'"),
    ("policy_strings", "TEXT NOT NULL DEFAULT ''"),
    ("mx_patterns", "TEXT NOT NULL DEFAULT ''"),
    ("sending_ip", "TEXT NOT NULL DEFAULT ''"),
)
_SELECT = (
    "SELECT policy_domain, mx_host, ip, result_type, tls_version, cipher, at, failure_reason,"
    " mx_helo, policy_type, policy_strings, mx_patterns, sending_ip FROM tls_sessions"
)
_SELECT_ALL = _SELECT + " ORDER BY id"
_SELECT_BETWEEN = _SELECT + " WHERE at >= ? AND at < ? ORDER BY id"


def _join(lines: tuple[str, ...]) -> str:
    return "\n".join(lines)


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split("\n")) if text else ()


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Files written before the MTA-STS (or sending-ip) columns existed gain them on open."""
    present = {str(row[1]) for row in db.execute("PRAGMA table_info(tls_sessions)")}
    for column, declaration in _ADDED_COLUMNS:
        if column not in present:
            db.execute(f"ALTER TABLE tls_sessions ADD COLUMN {column} {declaration}")


class TlsRecordStore(SqliteStore):
    """Append-only store of :class:`TlsSessionRecord` in one SQLite file."""

    closed_error = MtaError
    what = "TLS record store"

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA, migrate=_add_missing_columns)

    def add(self, record: TlsSessionRecord) -> None:
        self._conn.execute(
            "INSERT INTO tls_sessions (policy_domain, mx_host, ip, result_type, tls_version,"
            " cipher, at, failure_reason, mx_helo, policy_type, policy_strings, mx_patterns, sending_ip)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.policy_domain,
                record.mx_host,
                record.ip,
                record.result_type.value,
                record.tls_version,
                record.cipher,
                record.at,
                record.failure_reason,
                record.mx_helo,
                record.policy_type,
                _join(record.policy_strings),
                _join(record.mx_patterns),
                record.sending_ip,
            ),
        )

    def all(self) -> list[TlsSessionRecord]:
        return self._rows(self._conn.execute(_SELECT_ALL).fetchall())

    def between(self, start: float, end: float) -> list[TlsSessionRecord]:
        """The records of sessions at ``start <= at < end`` (a TLSRPT report window)."""
        return self._rows(self._conn.execute(_SELECT_BETWEEN, (start, end)).fetchall())

    @staticmethod
    def _rows(rows: list[Any]) -> list[TlsSessionRecord]:
        return [
            TlsSessionRecord(d, h, ip, TlsResultType(r), v, c, at, f, helo, ptype, _split(lines), _split(mx), sip)
            for d, h, ip, r, v, c, at, f, helo, ptype, lines, mx, sip in rows
        ]
