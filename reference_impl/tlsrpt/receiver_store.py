"""Durable storage of the reports the receiver accepted (RFC 8460 sections 5.3, 5.4, 5.6).

Section 5.4: "The receiving system is not expected to process reports at receipt time and
MAY store them for processing at a later time." The store is a directory:

* ``reports/<policy-domain>/<key>.json``: the report as the validator read it (JSON);
* ``reports/<policy-domain>/<key>.meta.json``: transport, received-at, content type,
  filename, the validator's findings and the receiver's notes. It is written last, so a
  report counts as stored only once its metadata is on disk;
* ``log.jsonl``: one line per decision: stored, duplicate, ignored (mail without a valid
  DKIM signature, section 3) or refused, with the reason.

``<policy-domain>`` comes from the report body, which section 5.6 makes authoritative over
the Subject and filename. ``<key>`` is the SHA-256 of the sender's ``contact-info`` and the
``report-id``: section 5.3 gives the report-id so that duplicates can be recognised, and a
report-id is only unique per sender (section 4.4: "whatever scheme they prefer"), hence the
sender in the hash. Every file is written to a temporary name, synced and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from reference_impl.tlsrpt.errors import Finding

__all__ = [
    "LogEntry",
    "Outcome",
    "ReportStore",
    "StoredReport",
    "Transport",
    "finding_from_json",
    "finding_to_json",
    "report_key",
    "report_policy_domain",
]

Transport = Literal["https", "mail"]
Outcome = Literal["stored", "duplicate", "ignored", "refused"]

UNKNOWN_DOMAIN = "_unknown"
"""The directory of reports whose policy domain is missing or not a usable name."""

_DIRECTORY_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True, slots=True)
class StoredReport:
    """One accepted report as the store keeps it."""

    key: str
    report: dict[str, Any]
    transport: Transport
    received_at: datetime
    policy_domain: str
    findings: tuple[Finding, ...] = ()
    content_type: str | None = None
    filename: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One decision of the receiver, as ``log.jsonl`` records it."""

    at: datetime
    transport: Transport
    outcome: Outcome
    reason: str
    key: str | None = None
    policy_domain: str | None = None
    rules: tuple[str, ...] = ()


def report_policy_domain(report: Mapping[str, Any]) -> str | None:
    """The first ``policies[].policy.policy-domain`` of a report (section 4.4), or None."""
    policies = report.get("policies")
    if not isinstance(policies, list):
        return None
    for entry in policies:
        policy = entry.get("policy") if isinstance(entry, dict) else None
        domain = policy.get("policy-domain") if isinstance(policy, dict) else None
        if isinstance(domain, str) and domain:
            return domain
    return None


def report_key(report: Mapping[str, Any], body: bytes) -> str:
    """SHA-256 of contact-info and report-id; of the body when the report has no report-id."""
    report_id = report.get("report-id")
    if not isinstance(report_id, str):
        return hashlib.sha256(b"body\0" + body).hexdigest()
    contact = report.get("contact-info")
    sender = contact if isinstance(contact, str) else ""
    return hashlib.sha256(f"report\0{sender}\0{report_id}".encode("utf-8", "surrogatepass")).hexdigest()


def directory_name(domain: str | None) -> str:
    """A policy domain usable as a directory name (lower case, no trailing dot)."""
    if domain is None:
        return UNKNOWN_DOMAIN
    name = domain.strip().rstrip(".").lower()
    return name if len(name) <= 253 and _DIRECTORY_NAME.fullmatch(name) else UNKNOWN_DOMAIN


def finding_to_json(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "section": finding.section,
        "severity": finding.severity,
        "message": finding.message,
        "line": finding.line,
        "where": finding.where,
    }


def finding_from_json(data: Mapping[str, Any]) -> Finding:
    severity = data.get("severity")
    line = data.get("line")
    where = data.get("where")
    return Finding(
        rule=str(data.get("rule", "")),
        section=str(data.get("section", "")),
        severity=severity if severity in _SEVERITIES else "info",
        message=str(data.get("message", "")),
        line=line if isinstance(line, int) else None,
        where=where if isinstance(where, str) else None,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ReportStore:
    """A directory of accepted reports and a log of every decision; thread-safe."""

    def __init__(self, root: Path, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.root = root
        self._reports = root / "reports"
        self._log_path = root / "log.jsonl"
        self._clock = clock
        self._lock = threading.Lock()
        self._reports.mkdir(parents=True, exist_ok=True)

    def save(
        self,
        report: dict[str, Any],
        *,
        transport: Transport,
        body: bytes,
        findings: Iterable[Finding] = (),
        policy_domain: str | None = None,
        content_type: str | None = None,
        filename: str | None = None,
        notes: Iterable[str] = (),
    ) -> tuple[StoredReport, bool]:
        """Store ``report`` unless it is already stored; returns it and whether it was a duplicate.

        ``policy_domain`` defaults to the report body's (section 5.6).
        """
        domain = directory_name(policy_domain if policy_domain is not None else report_policy_domain(report))
        key = report_key(report, body)
        stored = StoredReport(
            key=key,
            report=report,
            transport=transport,
            received_at=self._clock(),
            policy_domain=domain,
            findings=tuple(findings),
            content_type=content_type,
            filename=filename,
            notes=tuple(notes),
        )
        with self._lock:
            existing = self._find(key)
            if existing is not None:
                self._append_log(transport, "duplicate", "report-id already stored", key=key, domain=domain)
                return existing, True
            folder = self._reports / domain
            folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(folder / f"{key}.json", _json_bytes(report))
            meta = _metadata(stored, body)
            _write_atomically(folder / f"{key}.meta.json", _json_bytes(meta))
            self._append_log(transport, "stored", "report stored", key=key, domain=domain)
        return stored, False

    def record(
        self,
        transport: Transport,
        outcome: Outcome,
        reason: str,
        *,
        rules: Iterable[str] = (),
        policy_domain: str | None = None,
    ) -> LogEntry:
        """Log a decision that stored nothing (an ignored mail, a refused POST)."""
        with self._lock:
            return self._append_log(transport, outcome, reason, rules=tuple(rules), domain=policy_domain)

    def received(self) -> list[StoredReport]:
        """Every stored report, oldest first."""
        with self._lock:
            reports = [self._load(meta) for meta in self._reports.glob("*/*.meta.json")]
        found = [report for report in reports if report is not None]
        return sorted(found, key=lambda report: (report.received_at, report.key))

    def log(self) -> list[LogEntry]:
        """Every logged decision, in order."""
        with self._lock:
            try:
                lines = self._log_path.read_text("utf-8").splitlines()
            except FileNotFoundError:
                return []
        entries = []
        for line in lines:
            try:
                entries.append(_entry_from_json(json.loads(line)))
            except (ValueError, TypeError, KeyError):
                continue  # a torn last line after a crash
        return entries

    # -- internals -----------------------------------------------------------------------

    def _find(self, key: str) -> StoredReport | None:
        for meta in self._reports.glob(f"*/{key}.meta.json"):
            return self._load(meta)
        return None

    def _load(self, meta_path: Path) -> StoredReport | None:
        try:
            meta = json.loads(meta_path.read_bytes())
            report = json.loads(meta_path.with_name(f"{meta['key']}.json").read_bytes())
            return StoredReport(
                key=str(meta["key"]),
                report=report if isinstance(report, dict) else {},
                transport="mail" if meta["transport"] == "mail" else "https",
                received_at=datetime.fromisoformat(meta["received_at"]),
                policy_domain=str(meta["policy_domain"]),
                findings=tuple(finding_from_json(item) for item in meta.get("findings", [])),
                content_type=meta.get("content_type"),
                filename=meta.get("filename"),
                notes=tuple(str(note) for note in meta.get("notes", [])),
            )
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None  # not ours, or damaged: never stops the others from loading

    def _append_log(
        self,
        transport: Transport,
        outcome: Outcome,
        reason: str,
        *,
        key: str | None = None,
        domain: str | None = None,
        rules: tuple[str, ...] = (),
    ) -> LogEntry:
        entry = LogEntry(self._clock(), transport, outcome, reason, key, domain, rules)
        line = json.dumps(
            {
                "at": entry.at.isoformat(),
                "transport": transport,
                "outcome": outcome,
                "reason": reason,
                "key": key,
                "policy_domain": domain,
                "rules": list(rules),
            },
            ensure_ascii=True,  # untrusted text (a Subject's domain) may hold lone surrogates
        )
        with self._log_path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
            log.flush()
            os.fsync(log.fileno())
        return entry


def _metadata(stored: StoredReport, body: bytes) -> dict[str, Any]:
    report_id = stored.report.get("report-id")
    return {
        "key": stored.key,
        "transport": stored.transport,
        "received_at": stored.received_at.isoformat(),
        "policy_domain": stored.policy_domain,
        "report_id": report_id if isinstance(report_id, str) else None,
        "content_type": stored.content_type,
        "filename": stored.filename,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_bytes": len(body),
        "findings": [finding_to_json(finding) for finding in stored.findings],
        "notes": list(stored.notes),
    }


def _entry_from_json(data: dict[str, Any]) -> LogEntry:
    outcome = data["outcome"]
    if outcome not in ("stored", "duplicate", "ignored", "refused"):
        raise ValueError(f"unknown outcome {outcome!r}")
    return LogEntry(
        at=datetime.fromisoformat(data["at"]),
        transport="mail" if data["transport"] == "mail" else "https",
        outcome=cast(Outcome, outcome),
        reason=str(data["reason"]),
        key=data.get("key"),
        policy_domain=data.get("policy_domain"),
        rules=tuple(str(rule) for rule in data.get("rules", [])),
    )


def _json_bytes(data: Any) -> bytes:
    # ASCII with escapes: a report read from JSON may hold lone surrogates ("\ud800" is valid
    # JSON) that no UTF-8 encoder writes, and the escapes read back to the same string.
    return json.dumps(data, ensure_ascii=True, indent=1).encode("ascii")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either nothing or the whole file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
