"""A TLSRPT report body as delivered: gzip or JSON, its media type and filename (RFC 8460 sections 5.1-5.4).

The body is sniffed, not trusted to its label: gzip is recognised by its magic bytes ``1f 8b``
(section 6.5), anything else is read as JSON. A gzip body is inflated in bounded steps
(``zlib.decompressobj`` with ``max_length``), so a decompression bomb ends in a
``report-too-large`` finding once the output passes the limit, never in an exhausted memory.

========================== ======== ===========================================================
rule                       severity when
========================== ======== ===========================================================
report-too-large           error    the body, or what it inflates to, is above its limit
gzip-invalid               error    a truncated or corrupt gzip stream (RFC 1952)
gzip-trailing-data         warning  bytes after the last gzip member (ignored)
gzip-not-used              warning  a plain JSON body: 5.2 says the report SHOULD be gzipped
media-type-mismatch        error    application/tlsrpt+json on gzip, or +gzip on plain JSON
media-type-unexpected      warning  any other media type: 5.4 says the report SHOULD be labelled
                                    application/tlsrpt+gzip or application/tlsrpt+json (5.3 names
                                    the same two for mail)
========================== ======== ===========================================================

The filename rules (5.1, 5.6) are in :mod:`reference_impl.tlsrpt.validate_filename`, the JSON
ones in :mod:`reference_impl.tlsrpt.validate_json`.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

from reference_impl.tlsrpt.errors import Finding, ReportError
from reference_impl.tlsrpt.limits import GZIP_STEP_BYTES, MAX_COMPRESSED_BYTES, MAX_DECOMPRESSED_BYTES
from reference_impl.tlsrpt.validate_filename import check_filename
from reference_impl.tlsrpt.validate_json import read_report
from reference_impl.tlsrpt.validate_result import Validation, finding

__all__ = ["GZIP_MAGIC", "MEDIA_TYPE_GZIP", "MEDIA_TYPE_JSON", "judge_payload", "validate_report_payload"]

GZIP_MAGIC = b"\x1f\x8b"
MEDIA_TYPE_GZIP = "application/tlsrpt+gzip"
MEDIA_TYPE_JSON = "application/tlsrpt+json"


def validate_report_payload(
    data: bytes,
    *,
    content_type: str | None = None,
    filename: str | None = None,
    max_compressed: int = MAX_COMPRESSED_BYTES,
    max_decompressed: int = MAX_DECOMPRESSED_BYTES,
) -> Validation:
    """Judge a report body as POSTed over HTTPS (section 5.4): form, media type, filename, JSON."""
    return judge_payload(
        data,
        content_type=content_type,
        filename=filename,
        max_compressed=max_compressed,
        max_decompressed=max_decompressed,
        transport_section="5.4",
    )


def judge_payload(
    data: bytes,
    *,
    content_type: str | None,
    filename: str | None,
    max_compressed: int = MAX_COMPRESSED_BYTES,
    max_decompressed: int = MAX_DECOMPRESSED_BYTES,
    transport_section: str,
    where: str = "",
    compression_expected: bool = True,
) -> Validation:
    """:func:`validate_report_payload` for any carrier: ``transport_section`` is cited by the
    media-type findings (5.4 for HTTPS, 5.3 for mail), ``where`` names the MIME part."""
    _check_arguments(data, content_type, filename, max_compressed, max_decompressed)
    body = data if isinstance(data, bytes | bytearray) else bytes(data)
    is_gzip = body[:2] == GZIP_MAGIC
    validation = Validation(form="gzip" if is_gzip else "json", filename=filename)
    findings = validation.findings
    if content_type is not None:
        findings += _check_media_type(content_type, is_gzip, transport_section, where)
    if len(body) > max_compressed:
        message = f"a body of {len(body)} bytes, above the limit of {max_compressed}"
        findings.append(finding("report-too-large", "5.2", "error", message, where))
    else:
        text = _gunzip(bytes(body), max_decompressed, findings, where) if is_gzip else body
        if not is_gzip and compression_expected:
            message = "a plain JSON body: the report SHOULD be gzip-compressed"
            findings.append(finding("gzip-not-used", "5.2", "warning", message, where))
        if text is not None and len(text) > max_decompressed:
            message = f"{len(text)} bytes of JSON, above the limit of {max_decompressed}"
            findings.append(finding("report-too-large", "5.2", "error", message, where))
        elif text is not None:
            read_report(text, validation)
    if filename is not None:
        findings += check_filename(filename, is_gzip=is_gzip, report=validation.report, where=where or "filename")
    if where:  # in a mail, the JSON root ("") is best named by its MIME part
        validation.findings = [replace(f, where=where) if f.where == "" else f for f in findings]
    return validation


def _check_arguments(
    data: object, content_type: object, filename: object, max_compressed: int, max_decompressed: int
) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ReportError("validator-argument", "5", f"report body must be bytes, not {type(data).__name__}")
    if content_type is not None and not isinstance(content_type, str):
        raise ReportError("validator-argument", "5", "content_type must be a str or None")
    if filename is not None and not isinstance(filename, str):
        raise ReportError("validator-argument", "5", "filename must be a str or None")
    if max_compressed < 0 or max_decompressed < 0:
        raise ReportError("validator-argument", "5", "size limits must not be negative")


def _check_media_type(content_type: str, is_gzip: bool, section: str, where: str) -> list[Finding]:
    media_type = content_type.split(";", 1)[0].strip().lower()
    wanted = MEDIA_TYPE_GZIP if is_gzip else MEDIA_TYPE_JSON
    if media_type == wanted:
        return []
    body = "gzip" if is_gzip else "plain JSON"
    if media_type in (MEDIA_TYPE_GZIP, MEDIA_TYPE_JSON):
        message = f"labelled {media_type} but the body is {body}"
        return [finding("media-type-mismatch", section, "error", message, where or "content-type")]
    message = f"labelled {media_type or '(empty)'}: a {body} report SHOULD be labelled {wanted}"
    return [finding("media-type-unexpected", section, "warning", message, where or "content-type")]


def _gunzip(data: bytes, limit: int, findings: list[Finding], where: str) -> bytearray | None:
    """The concatenated members of a gzip stream (RFC 1952 2.2), or None with a finding."""
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pending = rest
        try:
            while not inflater.eof:
                # max_length bounds each step; input zlib did not get to stays in unconsumed_tail.
                chunk = inflater.decompress(pending, GZIP_STEP_BYTES)
                out += chunk
                if len(out) > limit:
                    message = f"inflates to more than {limit} bytes (a decompression bomb?): refused"
                    findings.append(finding("report-too-large", "5.2", "error", message, where))
                    return None
                pending = inflater.unconsumed_tail
                if not pending and not chunk:
                    break
        except zlib.error as exc:
            findings.append(finding("gzip-invalid", "5.2", "error", f"corrupt gzip stream: {exc}", where))
            return None
        if not inflater.eof:
            findings.append(finding("gzip-invalid", "5.2", "error", "truncated gzip stream", where))
            return None
        rest = inflater.unused_data
        if not rest.startswith(GZIP_MAGIC):
            break
    if rest.strip(b"\0"):  # zero padding after the last member is tolerated, as gzip(1) does
        message = f"{len(rest)} bytes after the gzip stream (ignored)"
        findings.append(finding("gzip-trailing-data", "5.2", "warning", message, where))
    return out
