"""The journal in SQLite (the standard library's), in WAL mode: the embedded default."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from gateway.stores.journal import GroupCommitJournal

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    facts TEXT NOT NULL
)
"""
"""One row per batch of facts made durable together, in order (a JSON array of facts)."""


class SqliteJournal(GroupCommitJournal):
    """Facts as rows of one table, one transaction per batch; `durability` "fsync" syncs the
    write-ahead log at every commit (`synchronous=FULL`), "os" leaves it to the operating system
    (`synchronous=NORMAL`: a process crash loses nothing, a power cut may lose the last
    batches)."""

    def __init__(self, path: str, durability: str) -> None:
        super().__init__()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durability == 'fsync' else 'NORMAL'}")
        self._db.execute(SCHEMA)

    def write(self, rows: Sequence[str]) -> None:
        """Append the rows in one transaction."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO journal (facts) VALUES (?)", [(row,) for row in rows])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def read(self) -> Iterator[str]:
        """Every batch's row, in the order written."""
        for (row,) in self._db.execute("SELECT facts FROM journal ORDER BY seq"):
            yield row

    def shut(self) -> None:
        """Close the database."""
        self._db.close()
