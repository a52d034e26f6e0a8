"""The ``_mta-sts.<domain>`` TXT record (RFC 8461 section 3.1; duplicate fields, section 3.2).

Grammar (RFC 8461 section 3.1, ABNF per RFC 7405, ``%s`` = case-sensitive)::

    sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
    sts-field       = sts-id / sts-extension
    sts-field-delim = *WSP ";" *WSP
    sts-version     = %s"v=STSv1"
    sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
    sts-extension   = sts-ext-name "=" sts-ext-value
    sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
    sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)

The regular expressions below (:data:`ID_PATTERN`, :data:`EXT_NAME_PATTERN`,
:data:`EXT_VALUE_PATTERN`) are that grammar; the tests build their strategies from them.

Decisions where the RFC leaves room (each also in the report of the change that added them):

* **Whitespace before the first ";"** (reported erratum 6285): the ABNF allows
  ``v=STSv1 ; id=1`` while the discard rule keeps only records that begin with the literal
  ``v=STSv1;``. The default reading (:attr:`RecordReadings.whitespace_before_semicolon` true)
  follows the ABNF: the ABNF is the formal definition, section 3.2 says parsers MUST accept
  syntactically valid records, and discarding such a record silently turns a published policy
  into "no policy" (a downgrade). The other reading discards the record in
  :func:`select_record` and rejects it in :func:`parse_record` (rule ``txt-version-whitespace``).
* **Duplicated fields** (``id`` twice, an extension twice, a later ``v=``): section 3.2 says
  that for every non-repeated field "all entries except for the first SHALL be ignored"; that
  sentence follows "Parsers MUST accept TXT records and policy files", so it applies here too.
  Fields are told apart by their (case-sensitive) name; the *first* ``id`` must be a valid
  ``sts-id`` (``id=bad-one; id=good`` is invalid), later ones need only be valid extensions.
* **Trailing whitespace** after the last field with no ``;`` after it is not allowed by the
  grammar (``*WSP`` only occurs inside ``sts-field-delim``), so it is an error
  (``txt-trailing-whitespace``); leading whitespace means the record does not begin with
  ``v=STSv1`` (``txt-version-first``).
* **Non-ASCII** text is an error (section 3.1: records "MUST be US-ASCII").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reference_impl.mtasts.errors import Finding, RecordError, quote_value

__all__ = [
    "EXT_NAME_PATTERN",
    "EXT_VALUE_PATTERN",
    "ID_PATTERN",
    "VERSION",
    "RecordReadings",
    "StsRecord",
    "parse_record",
    "render_record",
    "scan_record",
    "select_record",
]

SECTION = "3.1"
VERSION = "v=STSv1"
WSP = " \t"

#: sts-id value: 1*32(ALPHA / DIGIT), ASCII only.
ID_PATTERN = r"[A-Za-z0-9]{1,32}"
#: sts-ext-name.
EXT_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}"
#: sts-ext-value: 1*(%x21-3A / %x3C / %x3E-7E), i.e. visible ASCII except "=" and ";".
EXT_VALUE_PATTERN = r"[!-:<>-~]+"

_ID = re.compile(ID_PATTERN)
_EXT_NAME = re.compile(EXT_NAME_PATTERN)
_EXT_VALUE = re.compile(EXT_VALUE_PATTERN)
_TRAILING_WSP = "whitespace after the last field with no ';' after it"
_DISCARD_PREFIX_GRAMMAR = re.compile(rb"v=STSv1[ \t]*;")


@dataclass(frozen=True, slots=True)
class StsRecord:
    """A valid ``_mta-sts`` TXT record: the policy ``id`` and any extension fields, in order."""

    id: str
    extensions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RecordReadings:
    """How to read the places where RFC 8461 section 3.1 contradicts itself.

    ``whitespace_before_semicolon`` (reported erratum 6285): true (the default) follows the
    ABNF, so ``v=STSv1 ; id=1`` is a valid record that survives the discard rule; false follows
    the literal discard rule, so such a record is discarded by :func:`select_record` and
    rejected by :func:`parse_record`. The default is the ABNF because it is the formal
    definition, section 3.2 requires parsers to accept syntactically valid records, and the
    literal reading turns a published policy into "no policy".
    """

    whitespace_before_semicolon: bool = True


def _error(rule: str, message: str) -> Finding:
    return Finding(rule=rule, section=SECTION, severity="error", message=message)


def _warning(rule: str, message: str, section: str = SECTION) -> Finding:
    return Finding(rule=rule, section=section, severity="warning", message=message)


def _scan_version(head: str, has_delimiter: bool, readings: RecordReadings) -> list[Finding]:
    """Check the first segment (everything before the first ";")."""
    bare = head.rstrip(WSP)
    # 3.1: "The TXT record MUST begin with the sts-version field"; %s"v=STSv1" is case-sensitive.
    if bare != VERSION:
        hint = " (the version is case-sensitive)" if bare.lower() == VERSION.lower() else ""
        return [_error("txt-version-first", f"the record must begin with 'v=STSv1;', not {quote_value(head)}{hint}")]
    if bare == head or not has_delimiter:
        return []
    # 3.1 and erratum 6285: sts-field-delim = *WSP ";" *WSP, but the discard rule wants "v=STSv1;".
    message = "whitespace between 'v=STSv1' and ';': senders that read the discard rule literally drop the record"
    if readings.whitespace_before_semicolon:
        return [_warning("txt-version-whitespace", message)]
    return [_error("txt-version-whitespace", message)]


def scan_record(text: str, readings: RecordReadings = RecordReadings()) -> tuple[StsRecord | None, list[Finding]]:
    """Check one TXT record text against section 3.1; return the record (or ``None``) and all findings.

    The record is ``None`` exactly when some finding has severity ``"error"``.
    """
    findings: list[Finding] = []
    # 3.1: "MTA-STS TXT records MUST be US-ASCII".
    if not text.isascii():
        position = next(i for i, char in enumerate(text) if not char.isascii())
        findings.append(_error("txt-not-ascii", f"non-ASCII character at offset {position}"))
    segments = text.split(";")
    findings += _scan_version(segments[0], len(segments) > 1, readings)
    if len(segments) == 1 and segments[0] != segments[0].rstrip(WSP) and segments[0].rstrip(WSP) == VERSION:
        findings.append(_error("txt-trailing-whitespace", _TRAILING_WSP))

    record_id: str | None = None
    seen: set[str] = {"v"}
    extensions: list[tuple[str, str]] = []
    last = len(segments) - 1
    for index in range(1, len(segments)):
        segment = segments[index].lstrip(WSP)
        if index == last:
            if segment == "":
                continue  # 3.1: the optional trailing sts-field-delim
            if segment != segment.rstrip(WSP):
                # 3.1: *WSP is only allowed inside sts-field-delim, i.e. next to a ";".
                findings.append(_error("txt-trailing-whitespace", _TRAILING_WSP))
        field = segment.rstrip(WSP)
        if field == "":
            # 3.1: sts-field-delim separates fields; two delimiters in a row leave an empty field.
            findings.append(_error("txt-empty-field", f"empty field between two ';' (field {index + 1})"))
            continue
        name, equals, value = field.partition("=")
        if not equals:
            findings.append(_error("txt-field-syntax", f"field {quote_value(field)} is not name=value"))
            continue
        if not _EXT_NAME.fullmatch(name):
            # 3.1: sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
            findings.append(_error("txt-ext-name-invalid", f"field name {quote_value(name)} is not a valid name"))
            continue
        if name == "id" and "id" not in seen:
            seen.add(name)
            # 3.1: sts-id = %s"id=" 1*32(ALPHA / DIGIT)
            if _ID.fullmatch(value):
                record_id = value
            else:
                findings.append(_error("txt-id-invalid", f"id {quote_value(value)} is not 1 to 32 letters and digits"))
            continue
        if not _EXT_VALUE.fullmatch(value):
            # 3.1: sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E), no "=", ";", SP or CTLs
            findings.append(_error("txt-ext-value-invalid", f"value of {name!r} is {quote_value(value)}"))
            continue
        if name in seen:
            # 3.2: a duplicated non-repeated field: all entries except the first are ignored.
            findings.append(_warning("txt-duplicate-field", f"field {name!r} repeated; only the first counts", "3.2"))
            continue
        seen.add(name)
        extensions.append((name, value))  # 3.2: unknown fields are ignored by senders; kept for callers

    if "id" not in seen:
        # 3.1: "id" (plaintext, required).
        findings.append(_error("txt-id-missing", "the required id field is missing"))
    if record_id is None or any(f.severity == "error" for f in findings):
        return None, findings
    return StsRecord(id=record_id, extensions=tuple(extensions)), findings


def parse_record(text: str, readings: RecordReadings = RecordReadings()) -> StsRecord:
    """Parse one TXT record text (strings already concatenated); raise :class:`RecordError`."""
    record, findings = scan_record(text, readings)
    if record is None:
        first = next(f for f in findings if f.severity == "error")
        raise RecordError(first.rule, first.section, first.message, first.line)
    return record


def _begins_with_version(data: bytes, readings: RecordReadings) -> bool:
    # 3.1: "records that do not begin with "v=STSv1;" are discarded" (erratum 6285 for the WSP).
    if readings.whitespace_before_semicolon:
        return _DISCARD_PREFIX_GRAMMAR.match(data) is not None
    return data.startswith(b"v=STSv1;")


def select_record(rrs: Sequence[Sequence[bytes]], readings: RecordReadings = RecordReadings()) -> StsRecord | None:
    """Pick the policy record from every TXT RR at ``_mta-sts.<domain>`` (section 3.1).

    Each RR is given as its character-strings. Returns ``None`` when no RR begins with
    ``v=STSv1;`` (no policy); raises :class:`RecordError` ``txt-multiple-records`` when more
    than one does, and the parse error when the single one is invalid. The caller treats both
    errors as "no available policy" (section 3.1) without dropping a cached policy (5.1).
    RRs are counted as given: a DNS RRset holds no duplicates, so two equal RRs are two records.
    """
    # 3.1: "the record MUST be treated as if those strings are concatenated without adding spaces".
    joined = [b"".join(strings) for strings in rrs]
    kept = [data for data in joined if _begins_with_version(data, readings)]
    if not kept:
        return None
    if len(kept) > 1:
        # 3.1: "If the number of resulting records is not one ... senders MUST assume ... no policy".
        raise RecordError("txt-multiple-records", SECTION, f"{len(kept)} TXT records begin with 'v=STSv1;'")
    data = kept[0]
    if not data.isascii():
        # 3.1: US-ASCII only; report before decoding so the error names the right rule.
        position = next(i for i, byte in enumerate(data) if byte > 0x7F)
        raise RecordError("txt-not-ascii", SECTION, f"non-ASCII byte at offset {position}")
    return parse_record(data.decode("ascii"), readings)


def render_record(record: StsRecord) -> str:
    """Render ``record`` as ``v=STSv1; id=...; name=value;`` (the section 3.1 example's layout).

    Renders what it is given, unchecked: an invalid record yields text :func:`parse_record`
    rejects, which is what negative scenarios need.
    """
    fields = [VERSION, f"id={record.id}", *(f"{name}={value}" for name, value in record.extensions)]
    return "; ".join(fields) + ";"
