"""Operator checks for a published ``_smtp._tls`` TXT record set (RFC 8460 section 3).

Every rule broken, not only the first. Errors are what :func:`~.record.parse_record` and
:func:`~.record.select_record` reject (same scan, same rule ids, so the linter and the parser
cannot disagree): with an error, senders see no usable TLSRPT record. Warnings are legal input
worth changing: a URI senders skip while another is usable, or a form some senders read
differently.

=============================== ======= =========================================================
rule                            level   when
=============================== ======= =========================================================
record-none                     error   no TXT record begins with ``v=TLSRPTv1;``
record-multiple-records         error   more than one does (senders assume no TLSRPT)
record-version-missing          error   the record does not begin with ``v=TLSRPTv1`` (case!)
record-version-not-first        error   ``v=TLSRPTv1`` is there, but not at the very start
record-rua-missing              error   no ``rua=`` field (``RUA=`` does not count)
record-rua-bad-uri              error   an empty list item or a string that is not an RFC 3986 URI
record-rua-unencoded-char       error   a raw ``!``, or a raw ``,``/``;`` that cut a URI in two
record-rua-no-supported-uri     error   no rua URI is usable (see the three warnings below)
record-bad-extension            error   a field name or value outside the extension grammar
record-field-syntax             error   a field without ``=``
record-empty-field              error   ``;;``: an empty field
record-trailing-whitespace      error   whitespace after the last field with no ``;`` after it
record-rua-unsupported-scheme   warning a URI whose scheme is not mailto or https (e.g. http)
record-rua-bad-mailto           warning a mailto URI without exactly one valid addr-spec
record-rua-bad-https            warning an https URI without a host
record-duplicate-field          warning a field repeated; the first counts
record-field-case               warning ``RUA=`` or ``V=``: names are case-sensitive
record-version-whitespace       warning ``v=TLSRPTv1 ;`` (the ABNF allows it, the discard rule's
                                        literal prefix does not; see ``record.py``)
record-discarded                warning next to the record senders use, another that looks like
                                        TLSRPT but does not begin with ``v=TLSRPTv1;``
=============================== ======= =========================================================

In a set of several TXT records, findings about one record carry ``where="record N"`` (1-based,
in the order given).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from reference_impl.tlsrpt.errors import Finding
from reference_impl.tlsrpt.record import SECTION, begins_with_version, scan_record

__all__ = ["Finding", "lint_record", "lint_record_set", "looks_like_tlsrpt"]

_RUA_FIELD = re.compile(r"(?:^|;)[ \t]*rua[ \t]*=", re.IGNORECASE)


def lint_record(text: str) -> list[Finding]:
    """All problems in one ``_smtp._tls`` TXT record text (character-strings already joined)."""
    return scan_record(text)[1]


def looks_like_tlsrpt(text: str) -> bool:
    """A near miss worth explaining: mentions TLSRPT or has a ``rua`` field, whatever its case."""
    return "tlsrpt" in text.lower() or _RUA_FIELD.search(text) is not None


def _placed(findings: list[Finding], index: int, several: bool) -> list[Finding]:
    if not several:
        return findings
    return [dataclasses.replace(finding, where=f"record {index + 1}") for finding in findings]


def lint_record_set(records: Sequence[str]) -> list[Finding]:
    """All problems in the TXT records at ``_smtp._tls.<domain>``, each already joined.

    Has an error finding exactly when :func:`~.record.select_record` returns ``None`` or raises.
    """
    several = len(records) > 1
    kept = [index for index, text in enumerate(records) if begins_with_version(text)]
    near_misses = [index for index, text in enumerate(records) if index not in kept and looks_like_tlsrpt(text)]
    findings: list[Finding] = []
    if len(kept) == 1:
        findings += _placed(lint_record(records[kept[0]]), kept[0], several)
        for index in near_misses:
            message = "looks like TLSRPT but does not begin with 'v=TLSRPTv1;': senders discard it"
            findings += _placed([Finding("record-discarded", SECTION, "warning", message)], index, several)
        return findings
    if kept:
        # 3: "If the number of resulting records is not one, senders MUST assume the recipient
        # domain does not implement TLSRPT."
        message = f"{len(kept)} TXT records begin with 'v=TLSRPTv1;': senders assume no TLSRPT"
        findings.append(Finding("record-multiple-records", SECTION, "error", message))
        for index in kept:
            findings += _placed(lint_record(records[index]), index, several)
        return findings
    # No record survives the discard rule: explain the near misses, then the verdict.
    for index in near_misses:
        findings += _placed(lint_record(records[index]), index, several)
    message = "no TXT record begins with 'v=TLSRPTv1;': senders see no TLSRPT policy"
    findings.append(Finding("record-none", SECTION, "error", message))
    return findings
