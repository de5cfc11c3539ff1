"""The journal in SQLite (the standard library's), in WAL mode: the embedded default."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from gateway.stores import history
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
"""The engine's state at the journal position `seq` (the last batch in it), in a database file
of its own (`<path>-snapshots`)."""

LATEST = "SELECT seq, state FROM snapshots ORDER BY seq DESC LIMIT 1"


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
        for statement in history.schema("", sqlite=True):
            self._db.execute(statement)

        def present(table: str) -> set[str]:
            return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

        for statement in history.added_columns("", present):
            self._db.execute(statement)
        self._keep_order, self._keep_transaction = history.upserts("", "?")

    def write(
        self,
        rows: Sequence[str],
        orders: Sequence[tuple[Any, ...]] = (),
        transactions: Sequence[tuple[Any, ...]] = (),
    ) -> None:
        """Append the rows and keep the history rows in one transaction."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO journal (facts) VALUES (?)", [(row,) for row in rows])
            if orders:
                db.executemany(self._keep_order, orders)
            if transactions:
                db.executemany(self._keep_transaction, transactions)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def connect(self) -> Any:
        """A new connection for one thread's history searches (it sees what is committed)."""
        return sqlite3.connect(self.path, check_same_thread=False)

    def save_snapshot(self, state: bytes, position: int | None = None) -> int:
        """Keep `state` at `position` (None: the last) in the snapshots' own database file, so
        that writing one never holds the journal's write lock; drop the older snapshots."""
        if position is None:
            (position,) = self._db.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()
        with closing(self._snapshot_db()) as db:
            db.execute("BEGIN IMMEDIATE")
            (newest,) = db.execute("SELECT coalesce(max(seq), -1) FROM snapshots").fetchone()
            if newest <= position:
                db.execute("DELETE FROM snapshots")
                db.execute("INSERT INTO snapshots (seq, state) VALUES (?, ?)", (position, state))
            db.execute("COMMIT")
        return int(position)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        """The newest snapshot, if any (one kept in the journal's own file by an earlier
        version too)."""
        found = []
        with closing(self._snapshot_db()) as db:
            found.append(db.execute(LATEST).fetchone())
        found.append(self._db.execute(LATEST).fetchone())
        rows = [row for row in found if row is not None]
        if not rows:
            return None
        seq, state = max(rows, key=lambda row: int(row[0]))
        return int(seq), bytes(state)

    def _snapshot_db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path + "-snapshots", isolation_level=None, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(SNAPSHOTS)
        return db

    def shut(self) -> None:
        """Close the database (and the searches' connections)."""
        self._close_searches()
        self._db.close()
