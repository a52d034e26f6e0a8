"""Report bodies as delivered (RFC 8460 sections 5.1, 5.2, 5.4, 5.6): gzip, media type, filename, limits."""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib

import pytest

from reference_impl.tlsrpt.errors import ReportError
from reference_impl.tlsrpt.validate import validate_report_payload
from tests.reference_impl.tlsrpt.test_validate_support import (
    BEGIN_STAMP,
    END_STAMP,
    GOOD_FILENAME,
    POLICY_DOMAIN,
    SENDER,
    appendix_b,
    encode,
    good_report,
    gzipped,
    rules,
)

GZIP = "application/tlsrpt+gzip"
JSON = "application/tlsrpt+json"


def test_gzip_report_with_its_media_type_and_filename_is_clean() -> None:
    validation = validate_report_payload(gzipped(good_report()), content_type=GZIP, filename=GOOD_FILENAME)
    assert validation.findings == []
    assert validation.form == "gzip"
    assert validation.filename == GOOD_FILENAME
    assert validation.report == good_report()


def test_plain_json_report_is_only_told_to_compress() -> None:
    validation = validate_report_payload(encode(good_report()), content_type=JSON, filename=GOOD_FILENAME[:-3])
    assert rules(validation) == {("gzip-not-used", "warning")}
    assert validation.form == "json"
    assert validation.report == good_report()


def test_media_type_parameters_and_case_are_ignored() -> None:
    validation = validate_report_payload(gzipped(good_report()), content_type="Application/TLSRPT+gzip; x=1")
    assert validation.findings == []


def test_appendix_b_gzipped_has_no_error() -> None:
    name = "company-x.example!company-y.example!1459468800!1459555199.json.gz"
    validation = validate_report_payload(gzip.compress(appendix_b()), content_type=GZIP, filename=name)
    assert validation.errors == []
    assert validation.warnings == ["additional-information-uri", "failure-detail-field-missing", "mx-host-string"]


def test_several_gzip_members_are_one_report() -> None:
    text = encode(good_report())
    body = gzip.compress(text[:100]) + gzip.compress(text[100:])
    validation = validate_report_payload(body, content_type=GZIP)
    assert validation.findings == []
    assert validation.report == good_report()


def test_zero_padding_after_gzip_is_tolerated() -> None:
    assert validate_report_payload(gzipped(good_report()) + b"\0" * 16).findings == []


PAYLOAD_CASES: list[tuple[bytes, str | None, str | None, str, str]] = [
    # body, content type, filename, rule, severity
    (gzipped(good_report()), JSON, None, "media-type-mismatch", "error"),
    (encode(good_report()), GZIP, None, "media-type-mismatch", "error"),
    (gzipped(good_report()), "application/gzip", None, "media-type-unexpected", "warning"),
    (gzipped(good_report()), "", None, "media-type-unexpected", "warning"),
    (gzipped(good_report())[:-12], None, None, "gzip-invalid", "error"),
    (b"\x1f\x8b", None, None, "gzip-invalid", "error"),
    (gzipped(good_report())[:12] + b"\xff" * 40, None, None, "gzip-invalid", "error"),
    (gzipped(good_report()) + b"junk", None, None, "gzip-trailing-data", "warning"),
    (gzipped(good_report()), None, "report.xml", "filename-extension", "error"),
    (gzipped(good_report()), None, GOOD_FILENAME[:-3], "filename-extension-mismatch", "error"),
    (gzipped(good_report()), None, "report.json.gz", "filename-format", "warning"),
    (
        gzipped(good_report()),
        None,
        f"{SENDER}!{POLICY_DOMAIN}!{BEGIN_STAMP}!{END_STAMP}!0-1.json.gz",
        "filename-format",
        "warning",
    ),
    (
        gzipped(good_report()),
        None,
        f"{SENDER}!{POLICY_DOMAIN}!{END_STAMP}!{BEGIN_STAMP}.json.gz",
        "filename-format",
        "warning",
    ),
    (
        gzipped(good_report()),
        None,
        f"{SENDER}!b\u00fccher.example!{BEGIN_STAMP}!{END_STAMP}.json.gz",
        "domain-not-a-label",
        "error",
    ),
    (
        gzipped(good_report()),
        None,
        f"{SENDER}!other.example!{BEGIN_STAMP}!{END_STAMP}.json.gz",
        "filename-body-mismatch",
        "info",
    ),
    (
        gzipped(good_report()),
        None,
        f"mta.{SENDER}!{POLICY_DOMAIN}!{BEGIN_STAMP}!{END_STAMP}.json.gz",
        "filename-body-mismatch",
        "info",
    ),
    (
        gzipped(good_report()),
        None,
        f"{SENDER}!{POLICY_DOMAIN}!{BEGIN_STAMP - 3600}!{END_STAMP}.json.gz",
        "filename-body-mismatch",
        "info",
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "filename", "rule", "severity"), PAYLOAD_CASES, ids=lambda v: str(v)[:20]
)
def test_each_payload_rule_alone(
    body: bytes, content_type: str | None, filename: str | None, rule: str, severity: str
) -> None:
    validation = validate_report_payload(body, content_type=content_type, filename=filename)
    found = rules(validation) - {("gzip-not-used", "warning")}
    assert found == {(rule, severity)}
    assert all(f.section.startswith("5") for f in validation.findings)


def test_one_second_of_slack_between_filename_and_an_inclusive_end() -> None:
    name = f"{SENDER}!{POLICY_DOMAIN}!{BEGIN_STAMP}!{END_STAMP - 1}.json.gz"
    assert validate_report_payload(gzipped(good_report()), filename=name).findings == []


def test_json_findings_come_through_the_payload() -> None:
    body = gzip.compress(b'{"organization-name": "x"')
    validation = validate_report_payload(body, content_type=GZIP)
    assert rules(validation) == {("json-syntax", "error")}
    assert validation.report is None


def test_body_above_the_compressed_limit_is_refused() -> None:
    validation = validate_report_payload(gzipped(good_report()), content_type=GZIP, max_compressed=100)
    assert rules(validation) == {("report-too-large", "error")}
    assert validation.report is None


def test_json_above_the_decompressed_limit_is_refused() -> None:
    for body in (gzipped(good_report()), encode(good_report())):
        validation = validate_report_payload(body, max_decompressed=1000)
        assert ("report-too-large", "error") in rules(validation)
        assert validation.report is None


def _gzip_of_zeros(gibibytes: int) -> bytes:
    """A valid gzip stream of ``gibibytes`` GiB of zeros, built without holding the zeros:
    after a full flush deflate restarts, so the compressed form of each 1 MiB block is the same."""
    block = bytes(1 << 20)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    segment = deflater.compress(block) + deflater.flush(zlib.Z_FULL_FLUSH)
    blocks = gibibytes * 1024
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    size = (blocks << 20) & 0xFFFFFFFF
    return header + segment * blocks + deflater.flush() + crc.to_bytes(4, "little") + size.to_bytes(4, "little")


def test_the_bomb_builder_makes_valid_gzip() -> None:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    body = _gzip_of_zeros(1)[: 10 + 2 * 1100]  # the first two blocks inflate to zeros
    assert set(inflater.decompress(body, 3 << 20)) == {0}


def test_gzip_bomb_is_refused_fast_and_in_bounded_memory() -> None:
    bomb = _gzip_of_zeros(1)
    assert len(bomb) < 2 << 20
    tracemalloc.start()
    started = time.monotonic()
    try:
        validation = validate_report_payload(bomb, content_type=GZIP)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5
    assert rules(validation) == {("report-too-large", "error")}
    assert peak < 160 << 20  # the 64 MiB limit plus one step, not the 1 GiB the stream claims


def test_unusable_arguments_raise_report_error() -> None:
    with pytest.raises(ReportError):
        validate_report_payload("{}")  # type: ignore[arg-type]
    with pytest.raises(ReportError):
        validate_report_payload(b"{}", content_type=b"application/json")  # type: ignore[arg-type]
    with pytest.raises(ReportError):
        validate_report_payload(b"{}", max_compressed=-1)
