"""Reading YAML data files with the line of every value, so schema errors can name it.

PyYAML's ``safe_load`` throws positions away and silently lets a later duplicate key win.
Here the file is composed into nodes first; the converter keeps ``path -> line`` for every
mapping key and sequence item, and rejects duplicate keys (a scenario that says ``verdict``
twice is a bug in the catalog, not something to guess about).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conformance.errors import DataFileError

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """A parsed data file: the plain data and where each part of it came from."""

    path: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of the deepest known prefix of ``loc`` (pydantic error locations may
        point below what YAML knows, e.g. into a union member)."""
        key: PathKey = tuple(loc)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)


class _Constructor(yaml.SafeLoader):
    """Only used for its scalar constructors (ints, bools, nulls, floats, strings)."""


def load_yaml(path: Path, *, max_bytes: int = 4 * 2**20) -> SourceDocument:
    """Parse one YAML document with line numbers. Raises DataFileError on any problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(path, None, "file", f"cannot read: {exc.strerror}") from exc
    if len(raw) > max_bytes:
        raise DataFileError(path, None, "file", f"larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(path, None, "file", f"not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise DataFileError(path, line, "yaml", str(exc.problem or exc)) from exc
    except yaml.YAMLError as exc:
        raise DataFileError(path, None, "yaml", str(exc)) from exc
    if node is None:
        raise DataFileError(path, 1, "file", "empty document")
    lines: dict[PathKey, int] = {}
    constructor = _Constructor("")
    data = _convert(node, (), lines, constructor, path)
    return SourceDocument(path=path, data=data, lines=lines)


def _convert(
    node: yaml.Node,
    at: PathKey,
    lines: dict[PathKey, int],
    constructor: _Constructor,
    path: Path,
) -> Any:
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise DataFileError(path, line, _dotted(at), f"mapping key {key!r} is not a string")
            if key in result:
                raise DataFileError(path, line, _dotted((*at, key)), "duplicate key")
            lines[(*at, key)] = line
            result[key] = _convert(value_node, (*at, key), lines, constructor, path)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*at, index)] = item.start_mark.line + 1
            items.append(_convert(item, (*at, index), lines, constructor, path))
        return items
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise DataFileError(path, node.start_mark.line + 1, _dotted(at), str(exc)) from exc


def _dotted(loc: Sequence[str | int]) -> str:
    """``("scenarios", 3, "world", "mx")`` -> ``scenarios[3].world.mx``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "<document>"


dotted = _dotted
