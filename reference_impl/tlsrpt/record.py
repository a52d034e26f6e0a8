"""The ``_smtp._tls.<domain>`` TXT record (RFC 8460 section 3; examples in 3.1.1 and 3.1.2).

Grammar (RFC 8460 section 3, ABNF per RFC 5234 and RFC 7405, ``%s`` = case-sensitive)::

    tlsrpt-record    = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
    field-delim      = *WSP ";" *WSP
    tlsrpt-field     = tlsrpt-rua / tlsrpt-extension      ; tlsrpt-rua is required
    tlsrpt-version   = %s"v=TLSRPTv1"
    tlsrpt-rua       = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
    tlsrpt-uri       = URI    ; RFC 3986; "," "!" and ";" MUST be percent-encoded
    tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
    tlsrpt-ext-name  = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
    tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)

:data:`EXT_NAME_PATTERN`, :data:`EXT_VALUE_PATTERN` and :data:`URI_PATTERN` (RFC 3986 section 3)
are that grammar; the tests build their strategies from them. One scan (:func:`scan_record`)
yields every finding; :func:`parse_record` raises the first error and the linter returns them
all, so the two cannot disagree.

Decisions where the RFC leaves room:

* **Whitespace before the first ";"**: the ABNF allows ``v=TLSRPTv1 ; rua=...`` while the
  discard rule keeps records that "begin with v=TLSRPTv1;". This is the wording RFC 8461
  section 3.1 has (reported erratum 6285 there). As in this project's MTA-STS core, the
  ABNF wins: :func:`select_record` keeps a record starting ``v=TLSRPTv1`` ``*WSP ";"``, and
  the linter warns (``record-version-whitespace``). The ABNF is the formal definition, the
  section requires parsers to accept syntactically valid records, and the literal reading
  silently turns reporting off for a domain that asked for it.
* **Syntax errors reject the whole record** (severity ``error``), including one malformed URI
  in a list: the record is then not a ``tlsrpt-record``, and a mis-split list (a raw ","
  inside a URI) cannot be told from two URIs.
* **Unusable URIs**: a syntactically valid URI whose scheme is neither ``mailto`` nor
  ``https`` (section 3: "Two URI schemes are supported"), a ``mailto`` URI without one
  usable address, or an ``https`` URI without a host is skipped with a warning when another
  URI is usable; when none is, the record is unusable (``record-rua-no-supported-uri``).
  Schemes compare case-insensitively (RFC 3986 section 3.1).
* **A raw "!"** is legal in RFC 3986 but section 3 says it MUST be encoded (DMARC gives it a
  meaning, a size limit): an error, ``record-rua-unencoded-char``. A raw "," or ";" splits
  the URI; the scan names that rule when the piece that follows cannot stand on its own.
* **Repeated fields**: RFC 8460 is silent. The first ``rua`` counts; later ones must still be
  well-formed and are ignored with a warning, as are repeated extensions (the treatment
  RFC 8461 section 3.2 gives the same grammar). Field names are case-sensitive: ``RUA=`` is an
  unknown field (ignored, a warning).
* **Trailing whitespace** after the last field with no ";" after it is outside the grammar
  (``*WSP`` only occurs inside ``field-delim``): an error, as in the MTA-STS core.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import idna

from reference_impl.mtasts.errors import quote_value
from reference_impl.tlsrpt.errors import Finding, RecordError

__all__ = [
    "EXT_NAME_PATTERN",
    "EXT_VALUE_PATTERN",
    "URI_PATTERN",
    "VERSION",
    "ReportUri",
    "TlsRptRecord",
    "begins_with_version",
    "mailto_address",
    "parse_record",
    "record_name",
    "render_record",
    "scan_record",
    "select_record",
]

SECTION = "3"
VERSION = "v=TLSRPTv1"
WSP = " \t"
Scheme = Literal["mailto", "https"]

#: tlsrpt-ext-name.
EXT_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}"
#: tlsrpt-ext-value: visible ASCII except "=" and ";".
EXT_VALUE_PATTERN = r"[!-:<>-~]+"

# RFC 3986 section 3 (URI), ASCII only; "%" must start a pct-encoded triplet.
_PCT = r"%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCHAR = _UNRESERVED + _SUB_DELIMS + ":@"
_SEGMENT = rf"(?:[{_PCHAR}]|{_PCT})*"
_SEGMENT_NZ = rf"(?:[{_PCHAR}]|{_PCT})+"
_AUTHORITY = (
    rf"(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@)?"  # userinfo
    rf"(?P<host>\[[{_UNRESERVED}{_SUB_DELIMS}:]+\]|(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*)"  # IP-literal / reg-name
    r"(?::[0-9]*)?"  # port
)
_HIER_PART = (
    rf"(?://{_AUTHORITY}(?:/{_SEGMENT})*"  # "//" authority path-abempty
    rf"|/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?"  # path-absolute
    rf"|{_SEGMENT_NZ}(?:/{_SEGMENT})*"  # path-rootless
    r"|)"  # path-empty
)
_QUERY = rf"(?:[{_PCHAR}/?]|{_PCT})*"
#: URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ] (RFC 3986 section 3).
URI_PATTERN = rf"(?P<scheme>[A-Za-z][A-Za-z0-9+\-.]*):{_HIER_PART}(?:\?{_QUERY})?(?:#{_QUERY})?"

_EXT_NAME = re.compile(EXT_NAME_PATTERN)
_EXT_VALUE = re.compile(EXT_VALUE_PATTERN)
_URI = re.compile(URI_PATTERN)
_IPVFUTURE = re.compile(rf"[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+")
_HAS_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:")
_DISCARD_PREFIX = re.compile(r"v=TLSRPTv1[ \t]*;")
_SCHEMES: tuple[Scheme, ...] = ("mailto", "https")

# RFC 5322 section 3.4.1 addr-spec (RFC 6532: UTF-8 allowed), after RFC 6068 percent-decoding.
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a0-\U0010ffff]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_ADDR_SPEC = re.compile(rf'(?:{_DOT_ATOM}|"(?:[^"\\\x00-\x1f\x7f]|\\[ -~])*")@(?:{_DOT_ATOM}|\[[!-Z^-~]*\])')


@dataclass(frozen=True, slots=True)
class ReportUri:
    """One usable ``rua`` URI: the text as published and its (lower-case) scheme."""

    uri: str
    scheme: Scheme

    @property
    def target(self) -> str:
        """Where reports go: the addr-spec of a ``mailto`` URI, the URI itself for ``https``."""
        return mailto_address(self.uri) if self.scheme == "mailto" else self.uri


@dataclass(frozen=True, slots=True)
class TlsRptRecord:
    """A valid ``_smtp._tls`` record: its usable ``rua`` URIs and unknown fields, in order."""

    rua: tuple[ReportUri, ...]
    extensions: tuple[tuple[str, str], ...] = ()


def _error(rule: str, message: str) -> Finding:
    return Finding(rule=rule, section=SECTION, severity="error", message=message)


def _warning(rule: str, message: str) -> Finding:
    return Finding(rule=rule, section=SECTION, severity="warning", message=message)


def _percent_decode(text: str) -> str:
    """RFC 3986 section 2.1 decoding to UTF-8 text; a bad triplet or bad UTF-8 is a RecordError."""
    pieces = text.split("%")
    data = bytearray(pieces[0].encode("utf-8"))
    for piece in pieces[1:]:
        if not re.fullmatch(r"[0-9A-Fa-f]{2}", piece[:2]):
            raise RecordError("record-rua-bad-mailto", SECTION, f"bad percent-encoding in {quote_value(text)}")
        data.append(int(piece[:2], 16))
        data += piece[2:].encode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError("record-rua-bad-mailto", SECTION, f"{quote_value(text)} is not UTF-8") from None


def mailto_address(uri: str) -> str:
    """The one addr-spec a ``mailto:`` URI names (RFC 6068 section 2), percent-decoded.

    ``?subject=`` and other header fields are dropped (a report's headers are fixed by
    section 5.3). Raises :class:`RecordError` ``record-rua-bad-mailto`` when the ``to`` part is
    empty, holds more than one address (an encoded ","), or is not an addr-spec.
    """
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() != "mailto":
        raise RecordError("record-rua-bad-mailto", SECTION, f"{quote_value(uri)} is not a mailto URI")
    to = rest.partition("#")[0].partition("?")[0]
    if not to:
        raise RecordError("record-rua-bad-mailto", SECTION, f"{quote_value(uri)} names no address before '?'")
    address = _percent_decode(to)
    # RFC 6068: to = addr-spec *("," addr-spec); one URI must name one mailbox here.
    if "," in address and not _ADDR_SPEC.fullmatch(address):
        raise RecordError("record-rua-bad-mailto", SECTION, f"{quote_value(uri)} names several addresses")
    if not _ADDR_SPEC.fullmatch(address):
        raise RecordError("record-rua-bad-mailto", SECTION, f"{quote_value(address)} is not an addr-spec")
    return address


def _uri_syntax_problem(item: str) -> str | None:
    """Why ``item`` is not an RFC 3986 URI, or ``None`` when it is one."""
    match = _URI.fullmatch(item)
    if match is None:
        if not item.isascii():
            return f"{quote_value(item)} has non-ASCII characters (they must be percent-encoded)"
        if any(char in WSP for char in item):
            return f"{quote_value(item)} contains whitespace (only allowed around ',' and ';')"
        return f"{quote_value(item)} is not a URI (RFC 3986)"
    host = match["host"]
    if host is not None and host.startswith("["):
        literal = host[1:-1]
        if not _IPVFUTURE.fullmatch(literal):
            try:
                ipaddress.IPv6Address(literal)
            except ValueError:
                return f"{quote_value(item)} has a bad IP literal {quote_value(host)}"
    return None


def _unusable_reason(item: str, scheme: str) -> tuple[str, str] | None:
    """(rule, message) when a syntactically valid URI cannot take reports; ``None`` when it can."""
    if scheme not in _SCHEMES:
        hint = " (reports are only POSTed over https)" if scheme == "http" else ""
        return "record-rua-unsupported-scheme", f"{quote_value(item)}: scheme {scheme!r} is not mailto or https{hint}"
    if scheme == "mailto":
        try:
            mailto_address(item)
        except RecordError as exc:
            return exc.rule, exc.detail
        return None
    match = _URI.fullmatch(item)
    if match is None or not match["host"]:
        # RFC 9110 section 4.2.2: an https URI with an empty host is invalid.
        return "record-rua-bad-https", f"{quote_value(item)} names no host to POST to"
    return None


def _scan_rua(value: str) -> tuple[list[ReportUri], list[Finding]]:
    """tlsrpt-rua's value: tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)."""
    findings: list[Finding] = []
    usable: list[ReportUri] = []
    unusable: list[Finding] = []
    items = value.split(",")
    previous_ok = False
    for index, raw in enumerate(items):
        item = raw.lstrip(WSP) if index > 0 else raw
        item = item.rstrip(WSP) if index < len(items) - 1 else item
        if not item:
            findings.append(_error("record-rua-bad-uri", f"empty URI in the rua list (item {index + 1})"))
            previous_ok = False
            continue
        if previous_ok and not _HAS_SCHEME.match(item):
            # 3: commas inside a URI MUST be encoded; "a,b" split the previous URI in two.
            findings.append(_error("record-rua-unencoded-char", f"raw ',' before {quote_value(item)}: write %2C"))
            previous_ok = False
            continue
        problem = _uri_syntax_problem(item)
        previous_ok = problem is None
        if problem is not None:
            findings.append(_error("record-rua-bad-uri", problem))
            continue
        if "!" in item:
            # 3: exclamation points MUST be encoded (DMARC's size-limit suffix is not part of TLSRPT).
            findings.append(_error("record-rua-unencoded-char", f"raw '!' in {quote_value(item)}: write %21"))
            continue
        scheme = item.partition(":")[0].lower()
        reason = _unusable_reason(item, scheme)
        if reason is not None:
            unusable.append(_warning(reason[0], f"{reason[1]}; senders skip this URI"))
        elif scheme == "mailto":
            usable.append(ReportUri(item, "mailto"))
        else:
            usable.append(ReportUri(item, "https"))
    findings += unusable
    if unusable and not usable:
        # 3: "Two URI schemes are supported": with no usable URI there is nowhere to report to.
        findings.append(_error("record-rua-no-supported-uri", "no rua URI is a usable mailto: or https: URI"))
    return usable, findings


def _scan_version(head: str, has_delimiter: bool, later: list[str]) -> list[Finding]:
    """Check the text before the first ";" (3: the record begins with tlsrpt-version)."""
    bare = head.rstrip(WSP)
    if bare == VERSION:
        if bare != head and has_delimiter:
            message = "whitespace between 'v=TLSRPTv1' and ';': literal readers of the discard rule drop the record"
            return [_warning("record-version-whitespace", message)]
        return []
    if head.strip(WSP) == VERSION or VERSION in (field.strip(WSP) for field in later):
        message = f"the record must begin with 'v=TLSRPTv1;', not {quote_value(head)}"
        return [_error("record-version-not-first", message)]
    hint = ""
    if bare.lower() == VERSION.lower():
        hint = " (the version is case-sensitive)"
    elif bare.startswith(VERSION):
        hint = " (the version must be followed by ';')"
    message = f"the record must begin with 'v=TLSRPTv1;', not {quote_value(head)}{hint}"
    return [_error("record-version-missing", message)]


def scan_record(text: str) -> tuple[TlsRptRecord | None, list[Finding]]:
    """Check one TXT record text against section 3; the record (or ``None``) and all findings.

    The record is ``None`` exactly when some finding has severity ``"error"``.
    """
    segments = text.split(";")
    head_is_version = segments[0].rstrip(WSP) == VERSION
    findings = _scan_version(segments[0], len(segments) > 1, segments[1:])
    # A head that is not the version but a field (e.g. "rua=...; v=TLSRPTv1") is still scanned.
    head_name, head_equals, _ = segments[0].strip(WSP).partition("=")
    first = 0 if not head_is_version and head_equals and head_name.strip(WSP).lower() != "v" else 1
    rua: list[ReportUri] | None = None
    seen: set[str] = {"v"}
    extensions: list[tuple[str, str]] = []
    last = len(segments) - 1
    previous = ""
    for index in range(first, len(segments)):
        segment = segments[index].lstrip(WSP)
        if index == last and index > 0:
            if segment == "":
                continue  # 3: the optional trailing field-delim
            if segment != segment.rstrip(WSP):
                message = "whitespace after the last field with no ';' after it"
                findings.append(_error("record-trailing-whitespace", message))
        field = segment.rstrip(WSP)
        name, equals, value = field.partition("=")
        current, previous = previous, name if equals else ""
        if field == "":
            findings.append(_error("record-empty-field", f"empty field between two ';' (field {index + 1})"))
        elif not equals and current == "rua":
            # 3: semicolons inside a URI MUST be encoded; the URI was cut at a raw ";".
            findings.append(_error("record-rua-unencoded-char", f"raw ';' before {quote_value(field)}: write %3B"))
        elif not equals:
            findings.append(_error("record-field-syntax", f"field {quote_value(field)} is not name=value"))
        elif name == "rua":
            uris, rua_findings = _scan_rua(value)
            if rua is None:
                rua = uris
                findings += rua_findings
            else:
                # An ignored rua must still be well-formed; whether its URIs are usable does not matter.
                findings += [
                    f for f in rua_findings if f.severity == "error" and f.rule != "record-rua-no-supported-uri"
                ]
                findings.append(_warning("record-duplicate-field", "rua repeated; only the first counts"))
        elif not _EXT_NAME.fullmatch(name) or not _EXT_VALUE.fullmatch(value):
            # 3: tlsrpt-ext-name / tlsrpt-ext-value (no "=", ";", SP or control characters).
            findings.append(_error("record-bad-extension", f"field {quote_value(field)} is not a valid extension"))
        elif name == "v" and not head_is_version:
            pass  # a misplaced version, already reported by _scan_version
        elif name in seen:
            findings.append(_warning("record-duplicate-field", f"field {name!r} repeated; only the first counts"))
        else:
            if name.lower() in {"v", "rua"}:
                message = f"{name!r} is not {name.lower()!r}: names are case-sensitive, so it is ignored"
                findings.append(_warning("record-field-case", message))
            seen.add(name)
            extensions.append((name, value))  # 3: unknown fields SHALL be ignored; kept for callers
    if rua is None:
        # 3: "Note that the tlsrpt-rua record is required."
        findings.append(_error("record-rua-missing", "the required rua field is missing"))
    if rua is None or any(f.severity == "error" for f in findings):
        return None, findings
    return TlsRptRecord(rua=tuple(rua), extensions=tuple(extensions)), findings


def parse_record(text: str) -> TlsRptRecord:
    """Parse one TXT record text (character-strings already joined); raise :class:`RecordError`."""
    record, findings = scan_record(text)
    if record is None:
        first = next(f for f in findings if f.severity == "error")
        raise RecordError(first.rule, first.section, first.message, first.line)
    return record


def begins_with_version(text: str) -> bool:
    """Whether the discard rule of section 3 keeps ``text``: ``v=TLSRPTv1`` then ``*WSP ";"``.

    The literal rule reads "records that do not begin with "v=TLSRPTv1;" are discarded"; the
    whitespace follows the ABNF's field-delim (see the module docstring for why).
    """
    return _DISCARD_PREFIX.match(text) is not None


def select_record(records: Sequence[str]) -> TlsRptRecord | None:
    """Pick the TLSRPT record among the TXT records at ``_smtp._tls.<domain>`` (section 3).

    Each record is given already joined from its character-strings without spaces (3: "as if
    those strings are concatenated without adding spaces"). ``None`` when the number of records
    beginning with ``v=TLSRPTv1;`` is not one (3: "senders MUST assume the recipient domain does
    not implement TLSRPT"); :class:`RecordError` when the one record is malformed.
    """
    kept = [text for text in records if begins_with_version(text)]
    if len(kept) != 1:
        return None
    return parse_record(kept[0])


def record_name(domain: str) -> str:
    """``_smtp._tls.<domain>`` with the domain in A-labels (U-labels converted by IDNA 2008/UTS 46).

    Raises :class:`RecordError` ``record-domain-invalid`` for a name that cannot be queried.
    """
    try:
        # UTS 46 mapping first, on the whole name: it also turns the ideographic full stops into ".".
        mapped = domain if domain.isascii() else idna.uts46_remap(domain, std3_rules=False, transitional=False)
        labels = mapped.removesuffix(".").split(".")
        out: list[str] = []
        for label in labels:
            ascii_label = label.lower() if label.isascii() else idna.alabel(label).decode("ascii")
            if not 0 < len(ascii_label) <= 63:
                raise RecordError("record-domain-invalid", SECTION, f"{quote_value(domain)} has an empty or long label")
            out.append(ascii_label)
    except UnicodeError as exc:  # idna.IDNAError is a UnicodeError
        raise RecordError("record-domain-invalid", SECTION, f"{quote_value(domain)}: {exc}") from None
    name = "_smtp._tls." + ".".join(out)
    if len(name) > 253:
        raise RecordError("record-domain-invalid", SECTION, f"{quote_value(name)} is longer than 253 octets")
    return name


def render_record(record: TlsRptRecord) -> str:
    """``v=TLSRPTv1; rua=uri,uri; name=value``: renders what it is given, unchecked."""
    fields = [VERSION, "rua=" + ",".join(uri.uri for uri in record.rua)]
    fields += [f"{name}={value}" for name, value in record.extensions]
    return "; ".join(fields)
