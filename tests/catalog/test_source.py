"""YAML data files are read with line numbers, and broken ones are named precisely."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.catalog.source import load_yaml
from conformance.errors import DataFileError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_lines_are_kept_for_keys_and_items(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "a: 1\nlist:\n  - x: 2\n  - y: 3\n"))
    assert doc.data == {"a": 1, "list": [{"x": 2}, {"y": 3}]}
    assert doc.line_of(("a",)) == 1
    assert doc.line_of(("list", 1, "y")) == 4
    assert doc.line_of(("list", 1, "y", "deeper", 0)) == 4  # falls back to the known prefix


def test_duplicate_keys_are_an_error_with_their_line(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as err:
        load_yaml(write(tmp_path, "a: 1\nb: 2\na: 3\n"))
    assert err.value.line == 3
    assert "duplicate key" in str(err.value)


def test_syntax_errors_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as err:
        load_yaml(write(tmp_path, "a: 1\nb: [1, 2\nc: 3\n"))
    assert err.value.line is not None and err.value.line >= 2
    assert str(err.value).startswith(str(tmp_path / "data.yaml"))


def test_not_utf8_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: \xff\n")
    with pytest.raises(DataFileError, match="not UTF-8"):
        load_yaml(path)
    with pytest.raises(DataFileError, match="empty"):
        load_yaml(write(tmp_path, "# nothing\n"))


@given(st.text(max_size=200))
def test_any_text_loads_or_raises_our_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.yaml"
        path.write_text(text, encoding="utf-8")
        with contextlib.suppress(DataFileError):
            load_yaml(path)
