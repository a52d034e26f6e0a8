"""The base of the reference implementation's SQLite files (queue, TLS records, policy cache).

One autocommit connection per file, in WAL mode so readers do not block the writer, with the
durability each store needs; closing is idempotent, and use after close raises the store's
own error rather than sqlite3's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Literal, Self


class SqliteStore:
    closed_error: ClassVar[type[Exception]] = RuntimeError
    what: ClassVar[str] = "store"

    def __init__(
        self,
        path: Path | str,
        schema: str,
        *,
        synchronous: Literal["FULL", "NORMAL"] | None = None,
        migrate: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self._db: sqlite3.Connection | None = sqlite3.connect(str(path), isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            if synchronous is not None:
                self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.executescript(schema)
            if migrate is not None:
                migrate(self._db)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise self.closed_error(f"the {self.what} is closed")
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE: no other writer can slip in
        between a read and the write that depends on it); rolled back on any exception."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
