"""Reading a TLSRPT report body as I-JSON and checking it against the schema (RFC 8460 sections 4, 4.4).

Section 4: "The report is composed as a plaintext file encoded in the Internet JSON (I-JSON)
format [RFC7493]". The reader is strict where I-JSON is strict and says so in findings:

======================= ======== ===============================================================
rule                    severity when
======================= ======== ===============================================================
report-too-large        error    the JSON text is above the decompressed-size limit
json-not-utf8           error    not UTF-8 (RFC 7493 section 2.1)
json-bom                warning  a leading byte order mark (RFC 8259 section 8.1: MUST NOT add;
                                 a parser MAY ignore it, so the rest is still read)
json-syntax             error    not JSON at all (the report is unreadable)
json-non-finite         error    ``NaN`` / ``Infinity``: Python reads them, JSON has no such thing
json-too-deep           error    nested deeper than ``MAX_JSON_DEPTH`` (a report needs 5 levels)
json-duplicate-key      error    a key twice in one object (RFC 7493 section 2.3); the last wins
json-bad-code-point     error    a lone surrogate or a noncharacter (RFC 7493 section 2.1)
json-number-range       warning  a number beyond IEEE 754 double precision (RFC 7493 section 2.2)
report-schema           error    the shape breaks ``schema/tlsrpt-report.schema.json``
count-not-integer       error    a count written as a fraction or exponent (``5.0``, ``1e3``):
                                 section 4.4 says "an integer, encoded as a JSON number"
policies-not-array      error    "policies" is not an array (section 4: MUST be an array)
policy-type-unknown     error    "policy-type" outside tlsa / sts / no-policy-found (section 4.4)
======================= ======== ===============================================================

Then the semantic rules of :mod:`reference_impl.tlsrpt.validate_rules` run on what was read.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend

from reference_impl.tlsrpt.errors import Finding, ReportError
from reference_impl.tlsrpt.limits import MAX_DECOMPRESSED_BYTES, MAX_JSON_DEPTH
from reference_impl.tlsrpt.schema import load_schema
from reference_impl.tlsrpt.validate_result import Validation, finding, json_pointer, quote
from reference_impl.tlsrpt.validate_rules import check_report

__all__ = ["read_ijson", "read_report", "schema_findings", "validate_report_json"]

_MAX_EXACT_INTEGER = 2**53 - 1  # RFC 7493 section 2.2: beyond this a double loses integers
_MAX_INT_DIGITS = 4000  # below Python's int-from-str guard (4300), which would raise ValueError
_BOM = b"\xef\xbb\xbf"

# RFC 7493 section 2.1: no surrogates (a lone one survives a "\ud800" escape) and no
# noncharacters (U+FDD0..U+FDEF and the last two code points of every plane).
_BAD_CODE_POINT = re.compile(
    "[\\ud800-\\udfff\\ufdd0-\\ufdef" + "".join(f"\\U{plane:04X}FFFE\\U{plane:04X}FFFF" for plane in range(17)) + "]"
)


class _JsonObject(dict[str, Any]):
    """An object as parsed, remembering keys that came twice (json keeps only the last)."""

    duplicates: list[str]


class _NonFinite(ValueError):
    pass


class _TooDeep(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(name)


def _integer(text: str) -> int | float:
    # A longer literal is beyond any double anyway; as a float it is flagged, not a crash.
    return int(text) if len(text) <= _MAX_INT_DIGITS else float(text)


def read_ijson(data: bytes | bytearray, findings: list[Finding]) -> tuple[Any, bool]:
    """``(value, True)`` when ``data`` is readable JSON, else ``(None, False)``; findings appended."""
    if data.startswith(_BOM):
        findings.append(finding("json-bom", "4", "warning", "starts with a byte order mark (RFC 8259 8.1)", ""))
        data = data[len(_BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        findings.append(finding("json-not-utf8", "4", "error", f"not UTF-8 at byte {exc.start} (RFC 7493 2.1)", ""))
        return None, False
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_refuse_constant, parse_int=_integer)
    except _NonFinite as exc:
        message = f"{exc} is not JSON (RFC 8259 section 6 has no NaN or Infinity)"
        findings.append(finding("json-non-finite", "4", "error", message, ""))
        return None, False
    except RecursionError:
        findings.append(finding("json-too-deep", "4", "error", "nested too deep to read", ""))
        return None, False
    except json.JSONDecodeError as exc:
        message = f"not JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        findings.append(finding("json-syntax", "4", "error", message, ""))
        return None, False
    try:
        return _normalise(value, (), findings, 0), True
    except _TooDeep:
        message = f"nested deeper than {MAX_JSON_DEPTH} levels (a report needs 5)"
        findings.append(finding("json-too-deep", "4", "error", message, ""))
        return None, False


def _normalise(value: Any, path: tuple[str | int, ...], findings: list[Finding], depth: int) -> Any:
    """Plain dicts again, with the I-JSON findings of every object, string and number."""
    if depth > MAX_JSON_DEPTH:
        raise _TooDeep
    if isinstance(value, _JsonObject):
        for key in dict.fromkeys(value.duplicates):
            message = f"key {quote(key)} appears more than once in one object (RFC 7493 2.3); the last is used"
            findings.append(finding("json-duplicate-key", "4", "error", message, json_pointer(*path, key)))
        out: dict[str, Any] = {}
        for key, item in value.items():
            _check_string(key, (*path, key), findings, "key")
            out[key] = _normalise(item, (*path, key), findings, depth + 1)
        return out
    if isinstance(value, list):
        return [_normalise(item, (*path, index), findings, depth + 1) for index, item in enumerate(value)]
    if isinstance(value, str):
        _check_string(value, path, findings, "string")
    elif isinstance(value, bool):
        pass
    elif (isinstance(value, int) and abs(value) > _MAX_EXACT_INTEGER) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        message = "a number beyond IEEE 754 double precision (RFC 7493 2.2): receivers may read it inexactly"
        findings.append(finding("json-number-range", "4", "warning", message, json_pointer(*path)))
    return value


def _check_string(text: str, path: tuple[str | int, ...], findings: list[Finding], what: str) -> None:
    bad = _BAD_CODE_POINT.search(text)
    if bad is not None:
        message = f"{what} holds U+{ord(bad.group()):04X}, a surrogate or noncharacter (RFC 7493 2.1)"
        findings.append(finding("json-bad-code-point", "4", "error", message, json_pointer(*path)))


def _strict_integer(_checker: object, instance: object) -> bool:
    # Draft 2020-12 calls 5.0 an integer; section 4.4 wants counts written as integers.
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def _validator() -> Validator:
    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer)
    cls = extend(Draft202012Validator, type_checker=checker)  # type: ignore[no-untyped-call]  # untyped in the stubs
    validator: Validator = cls(load_schema())
    return validator


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a fraction", str: "a string", list: "an array"}
    if value is None:
        return "null"
    return names.get(type(value), "an object")


def _schema_rule(error: ValidationError, path: tuple[str | int, ...]) -> tuple[str, str]:
    """A rule id of its own for the schema errors a reader most needs named."""
    if error.validator == "type" and error.validator_value == "integer" and isinstance(error.instance, float):
        return "count-not-integer", "4.4"
    if error.validator == "type" and path == ("policies",):
        return "policies-not-array", "4"
    if error.validator == "enum" and path[-1:] == ("policy-type",):
        return "policy-type-unknown", "4.4"
    return "report-schema", "4.4"


def _schema_message(error: ValidationError) -> str:
    if error.validator == "type":
        wanted = error.validator_value
        wanted_text = " or ".join(wanted) if isinstance(wanted, list) else str(wanted)
        return f"{_json_type(error.instance)} where the schema wants {wanted_text}"
    if error.validator == "enum":
        values = error.validator_value if isinstance(error.validator_value, list) else []
        return f"{quote(error.instance)} is not one of {', '.join(map(str, values))}"
    if error.validator == "minimum":
        return f"{quote(error.instance)} is below the minimum {error.validator_value}"
    return quote(error.message, 200)


def schema_findings(value: Any) -> list[Finding]:
    """One finding per schema error, where = the JSON pointer (of the missing key, for ``required``)."""
    findings: list[Finding] = []
    errors = sorted(_validator().iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        path = tuple(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            required = error.validator_value if isinstance(error.validator_value, list) else []
            for key in required:
                where = json_pointer(*path, key)
                if key not in error.instance and not any(f.where == where for f in findings):
                    message = f"required key {quote(key)} is missing"
                    findings.append(finding("report-schema", "4.4", "error", message, where))
            continue
        rule, section = _schema_rule(error, path)
        findings.append(finding(rule, section, "error", _schema_message(error), json_pointer(*path)))
    return findings


def validate_report_json(data: bytes) -> Validation:
    """Judge a report's JSON text: I-JSON, the schema, then the semantic rules of section 4.4."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ReportError("validator-argument", "4", f"report JSON must be bytes, not {type(data).__name__}")
    validation = Validation(form="json")
    if len(data) > MAX_DECOMPRESSED_BYTES:
        message = f"{len(data)} bytes of JSON, above the limit of {MAX_DECOMPRESSED_BYTES}"
        validation.findings.append(finding("report-too-large", "5.2", "error", message, ""))
        return validation
    read_report(bytes(data), validation)
    return validation


def read_report(text: bytes | bytearray, validation: Validation) -> None:
    """Read ``text`` as the report into ``validation``: I-JSON, schema and semantic findings."""
    value, readable = read_ijson(text, validation.findings)
    if not readable:
        return
    validation.findings += schema_findings(value)
    if isinstance(value, dict):
        validation.report = value
        validation.findings += check_report(value)
