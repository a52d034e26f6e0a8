"""Reading ``results.json`` back: its JSON Schema, and a loader that names what is wrong.

The schema (``schema/results.schema.json``, draft 2020-12) is package data and the contract
of the file: ``mailtls run`` writes it, ``mailtls report`` reads it. A file of another
``schema_version``, or one that does not follow the schema, is refused with a
:class:`~conformance.errors.DataFileError` naming the file and the JSON path
(``reports/results.json: $.results[3].verdict: 'MAYBE' is not one of [...]``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from conformance.errors import DataFileError

SCHEMA_VERSION = 1
_MAX_BYTES = 512 * 2**20  # a results file is data we wrote, but never read unbounded


@cache
def results_schema() -> dict[str, Any]:
    text = (resources.files("conformance.report") / "schema" / "results.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    schema = results_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def json_path(parts: Any) -> str:
    """``$.results[3].verdict`` for the path ``["results", 3, "verdict"]``."""
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def validate_results(document: Any, path: Path) -> dict[str, Any]:
    """``document`` if it is a results document this version reads; else DataFileError."""
    if not isinstance(document, dict):
        raise DataFileError(path, None, "$", "not a results document (a JSON object is expected)")
    version = document.get("schema_version")
    if version is None:
        raise DataFileError(
            path,
            None,
            "$.schema_version",
            "missing: not a results.json, or one written by an older mailtls (run it again)",
        )
    if version != SCHEMA_VERSION:
        raise DataFileError(
            path, None, "$.schema_version", f"unknown schema_version {version!r} (this mailtls reads {SCHEMA_VERSION})"
        )
    error = best_match(_validator().iter_errors(document))
    if error is not None:
        raise DataFileError(path, None, json_path(error.absolute_path), error.message)
    return document


def load_results(path: Path) -> dict[str, Any]:
    """Read and validate one ``results.json``."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise DataFileError(path, None, "file", f"cannot read: {exc.strerror or exc}") from exc
    if len(raw) > _MAX_BYTES:
        raise DataFileError(path, None, "file", f"larger than {_MAX_BYTES} bytes")
    try:
        document = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise DataFileError(path, None, "$", f"not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DataFileError(path, exc.lineno, "$", f"not JSON: {exc.msg} (column {exc.colno})") from exc
    return validate_results(document, path)
