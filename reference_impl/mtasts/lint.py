"""Operator checks for a published TXT record and policy file (RFC 8461 sections 3.1, 3.2, 3.3, 5, 10.2).

Every rule broken, not only the first: errors are what :func:`~.record.parse_record` and
:func:`~.policy.parse_policy` reject (same rule ids, same scan, so the linter and the parsers
cannot disagree); warnings are legal input worth changing:

========================== ======= ==============================================================
rule                       section warning when
========================== ======= ==============================================================
txt-version-whitespace     3.1     ``v=STSv1 ;``: literal readers of the discard rule drop it
                                   (reported erratum 6285; an error under the literal reading)
txt-duplicate-field        3.2     a field repeated; only the first counts
policy-bare-lf             3.2     a line ends in bare LF (legal by the grammar, erratum 6253)
policy-duplicate-field     3.2     version/mode/max_age/an extension repeated; the first counts
policy-key-case            3.2     ``Mode:`` and the like: keys are case-sensitive, so ignored
policy-max-age-over-limit  3.2     max_age above 31557600 (capped; an error under "reject")
policy-empty-line          3.2     an empty line, under the "ignore" reading (else an error)
policy-mode-testing        5       mode testing: failures are reported, mail still flows
policy-max-age-short       10.2    max_age under one week with mode enforce or testing
                                   (inventory rfc8461-10.2-prefer-long-max-age)
========================== ======= ==============================================================
"""

from __future__ import annotations

from reference_impl.mtasts.errors import Finding
from reference_impl.mtasts.policy import PolicyReadings, scan_policy
from reference_impl.mtasts.record import RecordReadings, scan_record

__all__ = ["Finding", "lint_policy", "lint_record"]


_RECORD_READINGS = RecordReadings()
_POLICY_READINGS = PolicyReadings()


def _ordered(findings: list[Finding] | tuple[Finding, ...]) -> list[Finding]:
    """Findings by line (file-wide ones last), errors before warnings, else in scan order."""
    return sorted(findings, key=lambda f: (f.line if f.line is not None else float("inf"), f.severity != "error"))


def lint_record(text: str, readings: RecordReadings = _RECORD_READINGS) -> list[Finding]:
    """All problems in one ``_mta-sts`` TXT record text (character-strings already joined)."""
    return list(scan_record(text, readings)[1])


def lint_policy(body: bytes | str, readings: PolicyReadings = _POLICY_READINGS) -> list[Finding]:
    """All problems in a policy body, with 1-based line numbers where a line is to blame."""
    return _ordered(scan_policy(body, readings).findings)
