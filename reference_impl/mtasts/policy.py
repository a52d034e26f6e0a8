"""The MTA-STS policy file (RFC 8461 section 3.2; size limit 3.3; lint warnings 5 and 10.2).

Grammar (RFC 8461 section 3.2, ABNF per RFC 7405, ``%s`` = case-sensitive)::

    sts-policy-record      = sts-policy-field *WSP *(sts-policy-term sts-policy-field *WSP)
                             [sts-policy-term]
    sts-policy-field       = version / mode / max-age / mx / extension   ("key" ":" *WSP value)
    sts-policy-term        = LF / CRLF
    version value          = %s"STSv1"
    mode value             = %s"testing" / %s"enforce" / %s"none"
    max_age value          = 1*10(DIGIT)
    mx value               = ["*."] Domain                     ; Domain: RFC 5321 section 4.1.2
    sts-policy-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
                             ; the RFC writes "sta-policy-alphanum" here, a typo for sts-policy-alphanum
    sts-policy-ext-value   = sts-policy-vchar [*(%x20 / sts-policy-vchar) sts-policy-vchar]
    sts-policy-vchar       = %x21-7E / UTF8-2 / UTF8-3 / UTF8-4

The ``*_PATTERN`` regular expressions below are that grammar; the tests build strategies from them.

Decisions where the RFC leaves room:

* **Line ends** (reported erratum 6253): the prose says CRLF-separated, the grammar allows LF
  or CRLF; both, mixed, and a missing final terminator are accepted (lint warns on bare LF).
  A CR not followed by LF is a control character, so an error (``policy-bare-cr``).
* **max_age above 31557600**: the grammar allows ten digits, section 3.2 calls 31557600 the
  "maximum value" without saying what a larger one means. Default
  (:attr:`PolicyReadings.max_age_over_limit` ``"cap"``): accept and cap to 31557600, because
  section 3.2 requires accepting syntactically valid policies and capping only makes the cache
  expire sooner, while rejecting would silently drop an ``enforce`` policy. ``"reject"`` makes
  it an error (``policy-max-age-over-limit``).
* **Empty lines** (including whitespace-only ones and an extra terminator at the end): the
  grammar has no empty line (a term is always followed by a field), so by default they are an
  error; :attr:`PolicyReadings.empty_lines` ``"ignore"`` skips them (lint then warns).
* **Duplicated fields**: fields are told apart by their case-sensitive key and the *first*
  occurrence wins (section 3.2), so ``mode: Enforce`` then ``mode: enforce`` is invalid; later
  duplicates need only be valid extension values and are otherwise ignored (lint warns).
  Duplicate extensions are dropped the same way; ``mx`` repeats by design.
* **mx**: ``*`` must be the whole left-most label; a trailing dot is not in the Domain grammar
  and is an error; labels are at most 63 octets and the name at most 253 characters (RFC 1035
  section 2.3.4); any non-ASCII character is an error (section 3.2: A-labels, not U-labels).
* **Size**: bodies over 64 KiB (65536 bytes) are rejected (section 3.3 suggests 64 kilobytes).
* **Encoding**: the body must be UTF-8 (``sts-policy-vchar``); a UTF-8 BOM is not a field name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from reference_impl.mtasts.errors import Finding, PolicyError, quote_value

__all__ = [
    "DOMAIN_PATTERN",
    "EXT_NAME_PATTERN",
    "EXT_VALUE_PATTERN",
    "MAX_AGE_LIMIT",
    "MAX_AGE_PATTERN",
    "MAX_DOMAIN_LENGTH",
    "MAX_POLICY_BYTES",
    "MX_PATTERN",
    "ONE_WEEK",
    "Mode",
    "Policy",
    "PolicyReadings",
    "PolicyScan",
    "parse_policy",
    "render_policy",
    "scan_policy",
]

SECTION = "3.2"
MAX_AGE_LIMIT = 31557600
MAX_POLICY_BYTES = 64 * 1024
ONE_WEEK = 7 * 86400
WSP = " \t"

#: sts-policy-ext-name (with the "sta-policy-alphanum" typo read as sts-policy-alphanum).
EXT_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}"
_VCHAR = r"[!-~\x80-\ud7ff\ue000-\U0010ffff]"  # %x21-7E / UTF8-2 / UTF8-3 / UTF8-4 (no surrogates)
#: sts-policy-ext-value: visible characters, inner spaces, no leading or trailing space.
EXT_VALUE_PATTERN = rf"{_VCHAR}(?:[ !-~\x80-\ud7ff\ue000-\U0010ffff]*{_VCHAR})?"
#: sts-policy-max-age-value.
MAX_AGE_PATTERN = r"[0-9]{1,10}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
#: Domain (RFC 5321 section 4.1.2) with RFC 1035 label lengths; the 253-character cap is checked apart.
DOMAIN_PATTERN = rf"{_LABEL}(?:\.{_LABEL})*"
#: sts-policy-mx-value = ["*."] Domain.
MX_PATTERN = rf"(?:\*\.)?{DOMAIN_PATTERN}"
MAX_DOMAIN_LENGTH = 253

_EXT_NAME = re.compile(EXT_NAME_PATTERN)
_EXT_VALUE = re.compile(EXT_VALUE_PATTERN)
_MAX_AGE = re.compile(MAX_AGE_PATTERN)
_DOMAIN = re.compile(DOMAIN_PATTERN)

_KNOWN_KEYS = ("version", "mode", "max_age", "mx")


class Mode(StrEnum):
    """The policy ``mode`` (section 5)."""

    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Policy:
    """A valid policy. ``mx`` keeps the patterns as written, in order; extensions keep first occurrences."""

    mode: Mode
    max_age: int
    mx: tuple[str, ...]
    version: str = "STSv1"
    extensions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyReadings:
    """How to read what section 3.2 leaves open (see the module docstring for the reasons).

    ``max_age_over_limit``: ``"cap"`` (default) accepts a ``max_age`` above
    :data:`MAX_AGE_LIMIT` and caps it; ``"reject"`` makes it an error.
    ``empty_lines``: ``"reject"`` (default, the grammar) or ``"ignore"``.
    """

    max_age_over_limit: Literal["cap", "reject"] = "cap"
    empty_lines: Literal["reject", "ignore"] = "reject"


@dataclass(frozen=True, slots=True)
class PolicyScan:
    """What :func:`scan_policy` found: the policy (``None`` iff any error) and every finding."""

    policy: Policy | None
    findings: tuple[Finding, ...]


def _encode(body: bytes | str) -> bytes | Finding:
    """The body as bytes within the size limit, or the finding that stops the scan."""
    # 3.3: "a suggested maximum policy size is 64 kilobytes"; checked before any other work.
    if len(body) > MAX_POLICY_BYTES:
        return Finding("policy-too-large", "3.3", "error", f"policy body is over {MAX_POLICY_BYTES} bytes")
    if isinstance(body, bytes):
        data = body
    else:
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError as exc:
            line = body[: exc.start].count("\n") + 1
            return Finding("policy-not-utf8", SECTION, "error", "text holds a lone surrogate, not UTF-8", line)
        if len(data) > MAX_POLICY_BYTES:
            return Finding("policy-too-large", "3.3", "error", f"policy body is over {MAX_POLICY_BYTES} bytes")
    return data


def _split_lines(text: str) -> list[tuple[int, str, bool]]:
    """(line number, content, ends in bare LF) per line; the optional final terminator adds no line."""
    if text == "":
        return []  # no field at all: reported as the missing required fields
    parts = text.split("\n")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # 3.2: [sts-policy-term] after the last field
        terminated = len(parts)
    else:
        terminated = len(parts) - 1
    lines: list[tuple[int, str, bool]] = []
    for index, part in enumerate(parts):
        # 3.2: sts-policy-term = LF / CRLF (erratum 6253: the prose says CRLF).
        if index < terminated and part.endswith("\r"):
            lines.append((index + 1, part[:-1], False))
        else:
            lines.append((index + 1, part, index < terminated))
    return lines


def _check_mx(value: str) -> str | None:
    """Why ``value`` is not a valid ``mx`` pattern, or ``None`` when it is one."""
    if not value.isascii():
        return "u-label"
    domain = value[2:] if value.startswith("*.") else value
    if not _DOMAIN.fullmatch(domain) or len(domain) > MAX_DOMAIN_LENGTH:
        return "invalid"
    return None


class _Scanner:
    """Collects the findings for one body; one instance per :func:`scan_policy` call."""

    def __init__(self, readings: PolicyReadings) -> None:
        self.readings = readings
        self.findings: list[Finding] = []
        self.first: dict[str, tuple[str, int]] = {}
        self.mx: list[str] = []
        self.extensions: list[tuple[str, str]] = []
        self.version: str | None = None
        self.mode: Mode | None = None
        self.max_age: int | None = None
        self.bare_lf: list[int] = []

    def error(self, rule: str, message: str, line: int | None, section: str = SECTION) -> None:
        self.findings.append(Finding(rule, section, "error", message, line))

    def warning(self, rule: str, message: str, line: int | None, section: str = SECTION) -> None:
        self.findings.append(Finding(rule, section, "warning", message, line))

    def line(self, number: int, content: str, bare_lf: bool) -> None:
        if bare_lf:
            self.bare_lf.append(number)
        if content.strip(WSP) == "":
            # 3.2: every sts-policy-term is followed by a field, so the grammar has no empty line.
            if self.readings.empty_lines == "reject":
                self.error("policy-empty-line", "empty line; the grammar has none", number)
            else:
                self.warning("policy-empty-line", "empty line (ignored by this reading)", number)
            return
        if "\r" in content:
            # 3.2: a CR outside CRLF is a control character, not a line end.
            self.error("policy-bare-cr", "carriage return not followed by line feed", number)
            content = content.replace("\r", "")
        key, colon, rest = content.partition(":")
        if not colon:
            self.error("policy-field-syntax", f"line {quote_value(content)} is not 'key: value'", number)
            return
        if not _EXT_NAME.fullmatch(key):
            # 3.2: sts-policy-ext-name; also catches leading space, space before ":" and a BOM.
            hint = " (a UTF-8 byte order mark)" if key.startswith("\ufeff") else ""
            self.error("policy-ext-name-invalid", f"key {quote_value(key)} is not a valid field name{hint}", number)
            return
        # 3.2: sts-policy-field-delim = ":" *WSP, and *WSP may end the line.
        value = rest.strip(WSP)
        if key == "mx":
            self.mx_line(value, number)
        elif key in self.first:
            self.duplicate(key, value, number)
        elif key in _KNOWN_KEYS:
            self.first[key] = (value, number)
            self.known(key, value, number)
        else:
            self.extension(key, value, number)

    def known(self, key: str, value: str, number: int) -> None:
        if key == "version":
            # 3.2: sts-policy-version-value = %s"STSv1"
            if value == "STSv1":
                self.version = value
            else:
                self.error("policy-version-invalid", f"version is {quote_value(value)}, not 'STSv1'", number)
        elif key == "mode":
            # 3.2: sts-policy-mode-value = %s"testing" / %s"enforce" / %s"none" (case-sensitive)
            if value in {m.value for m in Mode}:
                self.mode = Mode(value)
            else:
                self.error("policy-mode-invalid", f"mode is {quote_value(value)}, not enforce/testing/none", number)
        else:
            self.max_age_line(value, number)

    def max_age_line(self, value: str, number: int) -> None:
        # 3.2: sts-policy-max-age-value = 1*10(DIGIT), ASCII digits only, no sign or inner space.
        if not _MAX_AGE.fullmatch(value):
            self.error("policy-max-age-invalid", f"max_age {quote_value(value)} is not 1 to 10 digits", number)
            return
        seconds = int(value)
        if seconds > MAX_AGE_LIMIT:
            # 3.2: "maximum value of 31557600"; what a larger value means is a reading.
            message = f"max_age {seconds} is above the maximum {MAX_AGE_LIMIT}"
            if self.readings.max_age_over_limit == "reject":
                self.error("policy-max-age-over-limit", message, number)
                return
            self.warning("policy-max-age-over-limit", message + "; capped", number)
            seconds = MAX_AGE_LIMIT
        self.max_age = seconds

    def mx_line(self, value: str, number: int) -> None:
        problem = _check_mx(value)
        if problem == "u-label":
            # 3.2: the mx value "MUST specify the Punycode-encoded A-label ... and not the ... U-label".
            self.error("policy-mx-u-label", f"mx {quote_value(value)} is not ASCII; write IDNs as A-labels", number)
        elif problem is not None:
            # 3.2: sts-policy-mx-value = ["*."] Domain; "each MX MUST have its own "mx:" key".
            hint = "; each pattern needs its own 'mx:' line" if any(c in value for c in " \t,") else ""
            self.error("policy-mx-invalid", f"mx {quote_value(value)} is not a name or '*.' name{hint}", number)
        else:
            self.mx.append(value)

    def duplicate(self, key: str, value: str, number: int) -> None:
        if not _EXT_VALUE.fullmatch(value):
            # 3.2: a later duplicate must still be a syntactically valid field.
            self.error("policy-ext-value-invalid", f"value of {key!r} is {quote_value(value)}", number)
            return
        # 3.2: "If any non-repeated field ... is duplicated, all entries except for the first SHALL be ignored."
        first_line = self.first[key][1]
        self.warning("policy-duplicate-field", f"{key!r} repeated; the first (line {first_line}) counts", number)

    def extension(self, key: str, value: str, number: int) -> None:
        self.first[key] = (value, number)
        if not _EXT_VALUE.fullmatch(value):
            # 3.2: sts-policy-ext-value: visible characters, no CTLs, no leading/trailing spaces.
            self.error("policy-ext-value-invalid", f"value of {key!r} is {quote_value(value)}", number)
            return
        if key.lower() in _KNOWN_KEYS:
            # 3.2: keys are case-sensitive (%s), so this is an unknown field and is ignored.
            self.warning("policy-key-case", f"key {key!r} is not {key.lower()!r}: keys are case-sensitive", number)
        self.extensions.append((key, value))  # 3.2: "unknown fields SHALL be ignored"; kept for callers

    def finish(self) -> Policy | None:
        # 3.2: version, mode and max_age are each "required once".
        for key in ("version", "mode", "max_age"):
            if key not in self.first:
                self.error(f"policy-{key.replace('_', '-')}-missing", f"the required {key!r} field is missing", None)
        # 3.2: mx is "required at least once, except when mode is "none"".
        # (an invalid mx line was reported already; "missing" would only repeat it)
        mode = self.mode
        mx_reported = any(f.rule in ("policy-mx-invalid", "policy-mx-u-label") for f in self.findings)
        if mode is not None and mode is not Mode.NONE and not self.mx and not mx_reported:
            self.error("policy-mx-missing", f"mode {mode.value} needs at least one mx line", None)
        self.advice()
        if self.mode is None or self.max_age is None or self.version is None:
            return None
        if any(f.severity == "error" for f in self.findings):
            return None
        return Policy(self.mode, self.max_age, tuple(self.mx), self.version, tuple(self.extensions))

    def advice(self) -> None:
        """Warnings about legal values an operator should reconsider."""
        if self.bare_lf:
            # 3.2 prose: "CRLF-separated"; grammar: LF / CRLF (reported erratum 6253). One finding per file.
            count = len(self.bare_lf)
            message = f"{count} line(s) end in bare LF, first at line {self.bare_lf[0]}; section 3.2 prose says CRLF"
            self.warning("policy-bare-lf", message, self.bare_lf[0])
        if self.mode is Mode.TESTING:
            # 5: in testing mode senders deliver anyway; the policy protects nothing yet.
            self.warning("policy-mode-testing", "mode testing: failures are only reported", self.first["mode"][1], "5")
        if self.mode in (Mode.ENFORCE, Mode.TESTING) and self.max_age is not None and self.max_age < ONE_WEEK:
            # 10.2: "implementers SHOULD prefer policy "max_age" values to be as long as is practical"
            # (inventory rfc8461-10.2-prefer-long-max-age: warn below one week for enforce and testing).
            message = f"max_age {self.max_age} is under one week ({ONE_WEEK}); prefer weeks or more"
            self.warning("policy-max-age-short", message, self.first["max_age"][1], "10.2")


def scan_policy(body: bytes | str, readings: PolicyReadings = PolicyReadings()) -> PolicyScan:
    """Check a policy body against section 3.2: the policy (``None`` iff any error) and all findings."""
    data = _encode(body)
    if isinstance(data, Finding):
        return PolicyScan(None, (data,))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # 3.2: sts-policy-vchar admits UTF-8 only.
        line = data[: exc.start].count(b"\n") + 1
        return PolicyScan(None, (Finding("policy-not-utf8", SECTION, "error", f"invalid UTF-8: {exc.reason}", line),))
    scanner = _Scanner(readings)
    for number, content, bare_lf in _split_lines(text):
        scanner.line(number, content, bare_lf)
    policy = scanner.finish()
    return PolicyScan(policy, tuple(scanner.findings))


def parse_policy(body: bytes | str, readings: PolicyReadings = PolicyReadings()) -> Policy:
    """Parse a policy body (section 3.2); raise :class:`PolicyError` with the first problem's line."""
    scan = scan_policy(body, readings)
    if scan.policy is None:
        first = next(f for f in scan.findings if f.severity == "error")
        raise PolicyError(first.rule, first.section, first.message, first.line)
    return scan.policy


def render_policy(policy: Policy, *, line_end: str = "\r\n") -> str:
    """Render ``policy`` as the section 3.2 example lays it out, every line ended by ``line_end``.

    Renders what it is given, unchecked (any ``line_end``, any values), so negative scenarios
    can stage broken files; for a valid policy ``parse_policy(render_policy(p)) == p``.
    """
    lines = [f"version: {policy.version}", f"mode: {policy.mode.value}"]
    lines += [f"mx: {pattern}" for pattern in policy.mx]
    lines.append(f"max_age: {policy.max_age}")
    lines += [f"{name}: {value}" for name, value in policy.extensions]
    return "".join(line + line_end for line in lines)
