"""The TLSRPT parts of the reference MTA a mutant may swap (RFC 8460), reference behaviour by default.

One field of :class:`TlsRptParts` per decision of report generation and delivery, each a small
callable or flag; :attr:`reference_impl.mta.mta.MtaVariant.tlsrpt` holds one instance and every
mutant of :mod:`reference_impl.mta.tlsrpt_mutants` replaces exactly one field. Nothing in the
reference branches on a flag that says "be broken": the defaults below *are* the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from reference_impl.mta.sender import TransientResult, no_transient_record
from reference_impl.tlsrpt import compose
from reference_impl.tlsrpt.compose import DkimSigner, MailShape
from reference_impl.tlsrpt.model import Report, day_window
from reference_impl.tlsrpt.record import ReportUri, TlsRptRecord, select_record
from reference_impl.tlsrpt.retry import Backoff

__all__ = [
    "DkimChoice",
    "FilenameChoice",
    "JsonHook",
    "MediaTypeChoice",
    "RecordSelector",
    "ReportHook",
    "RuaChoice",
    "TlsRptParts",
    "WindowChoice",
    "every_uri",
    "keep_json",
    "keep_report",
    "keep_signer",
    "standard_filename",
    "utc_day",
]

RecordSelector = Callable[[Sequence[str]], TlsRptRecord | None]
WindowChoice = Callable[[date, float], tuple[datetime, datetime]]  # (day, now) -> [start, end)
ReportHook = Callable[[Report], Report]
JsonHook = Callable[[dict[str, Any]], dict[str, Any]]
MediaTypeChoice = Callable[[bool], str]  # gzip? -> media type
FilenameChoice = Callable[[str, str, datetime, datetime, str, bool], str]  # submitter, domain, start, end, id, gzip
RuaChoice = Callable[[tuple[ReportUri, ...]], tuple[ReportUri, ...]]
DkimChoice = Callable[[DkimSigner], DkimSigner | None]


def utc_day(day: date, now: float) -> tuple[datetime, datetime]:
    """Section 4.1: "The report SHOULD cover a full day, from 00:00-24:00 UTC"."""
    return day_window(day)


def keep_report(report: Report) -> Report:
    return report


def keep_json(document: dict[str, Any]) -> dict[str, Any]:
    return document


def standard_filename(submitter: str, policy_domain: str, start: datetime, end: datetime, unique: str, gz: bool) -> str:
    """Section 5.1, with the report's unique token as ``unique-id``."""
    return compose.report_filename(submitter, policy_domain, start, end, unique, gzip=gz)


def every_uri(uris: tuple[ReportUri, ...]) -> tuple[ReportUri, ...]:
    """Section 3: "the reporter MAY attempt to deliver to each of the supported rua destinations"."""
    return uris


def keep_signer(signer: DkimSigner) -> DkimSigner | None:
    return signer


@dataclass(frozen=True, slots=True)
class TlsRptParts:
    """Report generation (RFC 8460 sections 3, 4) and delivery (section 5), part by part."""

    sends_reports: bool = True
    # Section 3: the _smtp._tls TXT record set ("If the number of resulting records is not one ...").
    record_selector: RecordSelector = select_record
    # Section 4.1: the report window.
    window: WindowChoice = utc_day
    # Sections 4.2-4.4: the report's content, as a model and as the JSON document.
    report_hook: ReportHook = keep_report
    json_hook: JsonHook = keep_json
    # Sections 5.2-5.4: compression, media type, filename.
    gzip: bool = True
    media_type: MediaTypeChoice = compose.media_type
    filename: FilenameChoice = standard_filename
    # Sections 3 and 5.5: which rua URIs are tried, and redelivery for 24 hours.
    rua_choice: RuaChoice = every_uri
    backoff: Backoff = field(default_factory=Backoff)
    strict_https: bool = False  # section 3: "MAY ignore certificate validation errors"
    # Sections 3 and 5.3: report mail (DKIM, header fields, container).
    dkim: DkimChoice = keep_signer
    mail_shape: MailShape = field(default_factory=MailShape)
    # Section 3: report mail is delivered despite TLS failures and not counted in the next report.
    mail_exempt_from_tls_policy: bool = True
    records_report_sessions: bool = False
    # Section 4.3.4: transient failures (a refused connection) are not reported.
    transient_result: TransientResult = no_transient_record
