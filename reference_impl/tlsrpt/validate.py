"""The TLSRPT report validator: judges reports received from systems under test and from the wild
(RFC 8460 sections 3, 4, 5).

Written from the RFC alone, apart from the reference generator, so that the two can check each
other. Every entry point returns a :class:`Validation` and never raises on any input; only
unusable arguments raise :class:`~reference_impl.tlsrpt.errors.ReportError`.

* :func:`validate_report_json`: a JSON text (sections 4, 4.4, 4.5, 6.6).
* :func:`validate_report_payload`: a body as POSTed, gzip or JSON, with its media type and
  filename (sections 5.1, 5.2, 5.4, 5.6).
* :func:`validate_report_mail`: a whole report message: MIME, headers, Subject, DKIM
  (sections 3, 5.3, 5.6).
* :func:`validate_file`: any of the three, told apart by content.

Each module states its rules in a table: ``validate_json`` (I-JSON, schema), ``validate_rules``
and ``validate_keys`` (semantics), ``validate_payload`` and ``validate_filename`` (delivery),
``validate_mail`` and ``validate_dkim`` (mail). Severities: an error breaks a MUST or leaves
the report unreadable; a warning is a SHOULD or a form the RFC contradicts itself about; an info
is worth showing and judged neither way. A report from the wild with optional fields missing
gets no error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from reference_impl.tlsrpt.errors import ReportError
from reference_impl.tlsrpt.limits import MAX_MESSAGE_BYTES
from reference_impl.tlsrpt.schema import load_schema
from reference_impl.tlsrpt.validate_json import validate_report_json
from reference_impl.tlsrpt.validate_mail import TxtLookup, validate_report_mail
from reference_impl.tlsrpt.validate_payload import GZIP_MAGIC, judge_payload, validate_report_payload
from reference_impl.tlsrpt.validate_result import Validation, finding

__all__ = [
    "TxtLookup",
    "Validation",
    "load_schema",
    "looks_like_mail",
    "validate_file",
    "validate_report_json",
    "validate_report_mail",
    "validate_report_payload",
]

_SNIFF_BYTES = 64 * 1024
_HEADER_LINE = re.compile(rb"[!-9;-~]+:")  # RFC 5322 2.2: printable US-ASCII except ":" , then ":"


def looks_like_mail(data: bytes) -> bool:
    """Header lines ("Name: value", folded or not, after an optional mbox "From " line) up to
    the first empty line, among them MIME-Version or Content-Type."""
    lines = data[:_SNIFF_BYTES].split(b"\n")
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]
    names: set[bytes] = set()
    for line in lines:
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            continue
        match = _HEADER_LINE.match(line)
        if match is None:
            return False
        names.add(match.group()[:-1].lower())
    return bool(names & {b"mime-version", b"content-type"})


def validate_file(
    path: Path | str | os.PathLike[str], *, txt_lookup: TxtLookup | None = None, max_bytes: int = MAX_MESSAGE_BYTES
) -> Validation:
    """Judge a report stored in a file: a mail, a gzip body or a JSON text, told apart by content.

    A file above ``max_bytes`` is refused (``report-too-large``) without being read whole. The
    file name is checked as a report filename (section 5.1) unless the file is a mail.
    """
    try:
        file = Path(path)
        size = file.stat().st_size
        with file.open("rb") as stream:
            head = stream.read(_SNIFF_BYTES)
            rest = stream.read(max_bytes + 1 - len(head)) if size <= max_bytes and len(head) <= max_bytes else b""
    except (OSError, TypeError, ValueError) as exc:
        raise ReportError("validator-argument", "5", f"cannot read {path!r}: {exc}") from exc
    data = head + rest
    is_mail = looks_like_mail(head)
    form = "mail" if is_mail else "gzip" if head[:2] == GZIP_MAGIC else "json"
    if size > max_bytes or len(data) > max_bytes:
        validation = Validation(form=form, filename=file.name)
        message = f"a file of {max(size, len(data))} bytes, above the limit of {max_bytes}: not read"
        validation.findings.append(finding("report-too-large", "5.2", "error", message, file.name))
        return validation
    if is_mail:
        return validate_report_mail(data, txt_lookup=txt_lookup, max_message=max_bytes)
    # A stored file was not necessarily sent as it is stored: compression is not judged (5.2).
    return judge_payload(
        data, content_type=None, filename=file.name, transport_section="5.4", compression_expected=False
    )
