"""The MTA-STS error base and findings: structured fields, message format, pickling."""

from __future__ import annotations

import copy
import pickle

import pytest

from reference_impl.mtasts.errors import Finding, MtaStsError, PolicyError, RecordError, quote_value


def test_str_names_rfc_section_rule_detail_and_line() -> None:
    error = PolicyError("policy-mode-invalid", "3.2", "mode is 'Enforce'", line=2)
    assert str(error) == "RFC 8461 section 3.2 [policy-mode-invalid]: mode is 'Enforce' (line 2)"


def test_str_without_line() -> None:
    error = RecordError(rule="txt-multiple-records", section="3.1", detail="2 records")
    assert str(error) == "RFC 8461 section 3.1 [txt-multiple-records]: 2 records"
    assert error.line is None


@pytest.mark.parametrize("cls", [RecordError, PolicyError])
def test_one_base_class(cls: type[MtaStsError]) -> None:
    error = cls("rule", "3.1", "detail", 4)
    assert isinstance(error, MtaStsError)
    assert (error.rule, error.section, error.detail, error.line) == ("rule", "3.1", "detail", 4)


@pytest.mark.parametrize("error", [RecordError("r", "3.1", "d"), PolicyError("r", "3.2", "d", 7)])
def test_errors_pickle_and_copy(error: MtaStsError) -> None:
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):  # noqa: S301 - our own bytes
        assert type(clone) is type(error)
        assert str(clone) == str(error)


def test_finding_str() -> None:
    finding = Finding("policy-bare-lf", "3.2", "warning", "bare LF", 3)
    assert str(finding) == "warning: RFC 8461 section 3.2 [policy-bare-lf]: bare LF (line 3)"


def test_quote_value_escapes_and_bounds() -> None:
    assert quote_value("a\x1b[31m") == repr("a\x1b[31m")
    long = quote_value("x" * 1000)
    assert len(long) < 100 and "1000 characters" in long
