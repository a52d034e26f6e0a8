"""Reports stored in files (RFC 8460 sections 5.1-5.3): mail, gzip or JSON told apart by content."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reference_impl.tlsrpt.errors import ReportError
from reference_impl.tlsrpt.validate import looks_like_mail, validate_file
from tests.reference_impl.tlsrpt.test_validate_support import (
    FIXTURES,
    GOOD_FILENAME,
    encode,
    good_report,
    gzipped,
    key_lookup,
    report_mail,
    rules,
    sign,
)


def test_appendix_b_fixture_file(tmp_path: Path) -> None:
    path = tmp_path / "appendix-b.json"
    shutil.copy(FIXTURES / "appendix-b.json", path)
    validation = validate_file(path)
    assert validation.form == "json"
    assert validation.errors == []
    assert "filename-format" in validation.warnings  # not sender!domain!begin!end
    assert "gzip-not-used" not in validation.warnings  # a stored file says nothing of how it was sent


def test_gzip_file_with_a_report_filename_is_clean(tmp_path: Path) -> None:
    path = tmp_path / GOOD_FILENAME
    path.write_bytes(gzipped(good_report()))
    validation = validate_file(path)
    assert (validation.form, validation.filename, validation.findings) == ("gzip", GOOD_FILENAME, [])


def test_json_file_with_a_report_filename_is_clean(tmp_path: Path) -> None:
    path = tmp_path / GOOD_FILENAME.removesuffix(".gz")
    path.write_bytes(encode(good_report()))
    validation = validate_file(str(path))
    assert (validation.form, validation.findings) == ("json", [])


@pytest.mark.parametrize("mbox_line", [b"", b"From tlsrpt@sender.example Sat Nov 28 04:12:00 2026\n"])
def test_mail_file_is_judged_as_mail(tmp_path: Path, mbox_line: bytes) -> None:
    path = tmp_path / "report.eml"
    path.write_bytes(mbox_line + sign(report_mail()))
    validation = validate_file(path, txt_lookup=key_lookup())
    assert validation.form == "mail"
    assert validation.dkim == "pass"
    assert validation.findings == []


def test_file_above_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / GOOD_FILENAME
    with path.open("wb") as stream:
        stream.write(gzipped(good_report()))
        stream.truncate(200 << 20)  # sparse: no 200 MiB are written
    validation = validate_file(path)
    assert rules(validation) == {("report-too-large", "error")}
    assert validation.form == "gzip"
    assert validation.report is None


def test_missing_file_raises_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError) as raised:
        validate_file(tmp_path / "absent.json")
    assert raised.value.rule == "validator-argument"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbody", True),
        (b"Subject: folded\r\n over two lines\r\nContent-Type: multipart/report\r\n\r\n", True),
        (b"From x@y Sat Nov 28 04:12:00 2026\nContent-Type: text/plain\n\n", True),
        (b"Subject: a mail without MIME headers\r\n\r\nbody", False),
        (b'{"organization-name": "x"}', False),
        (b"\x1f\x8b\x08\x00", False),
        (b"", False),
    ],
)
def test_mail_is_recognised_by_its_header_block(head: bytes, expected: bool) -> None:
    assert looks_like_mail(head) is expected
