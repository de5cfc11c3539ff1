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

SNAPSHOTS = """
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY,
    state BLOB NOT NULL
)
"""
"""The engine's state at a clean stop, at the journal position `seq` (the last batch in it)."""


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
        self._db.execute(SNAPSHOTS)

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

    def read(self, after: int = 0) -> Iterator[tuple[int, str]]:
        """Every batch's row after position `after`, in the order written."""
        yield from self._db.execute(
            "SELECT seq, facts FROM journal WHERE seq > ? ORDER BY seq", (after,)
        )

    def save_snapshot(self, state: bytes) -> int:
        """Keep `state` at the last position; drop the older snapshots."""
        db = self._db
        (seq,) = db.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()
        db.execute("BEGIN")
        db.execute("DELETE FROM snapshots")
        db.execute("INSERT INTO snapshots (seq, state) VALUES (?, ?)", (seq, state))
        db.execute("COMMIT")
        return int(seq)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        """The newest snapshot, if any."""
        row = self._db.execute(
            "SELECT seq, state FROM snapshots ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def shut(self) -> None:
        """Close the database."""
        self._db.close()
