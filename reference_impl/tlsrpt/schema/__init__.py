"""The JSON Schema (draft 2020-12) of the TLSRPT report, RFC 8460 section 4.4, as package data.

``tlsrpt-report.schema.json`` states the shape (keys, types, required keys); the semantic
rules the schema cannot say (a whole UTC day, registered result types, totals that add up) are
in ``reference_impl.tlsrpt.validate_rules``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["SCHEMA_NAME", "load_schema"]

SCHEMA_NAME = "tlsrpt-report.schema.json"


def load_schema() -> dict[str, Any]:
    """A fresh copy of the report schema (callers may change it without affecting others)."""
    text = resources.files(__name__).joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
