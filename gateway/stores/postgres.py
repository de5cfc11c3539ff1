"""The journal in PostgreSQL (psycopg 3), for servers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from gateway.stores.journal import GroupCommitJournal

SCHEMA = """
CREATE TABLE IF NOT EXISTS brokerage_journal (
    seq BIGSERIAL PRIMARY KEY,
    facts TEXT NOT NULL
)
"""
"""One row per batch of facts made durable together, in order (a JSON array of facts)."""

SNAPSHOTS = """
CREATE TABLE IF NOT EXISTS brokerage_snapshots (
    seq BIGINT PRIMARY KEY,
    state BYTEA NOT NULL
)
"""
"""The engine's state at a clean stop, at the journal position `seq` (the last batch in it)."""


class PostgresJournal(GroupCommitJournal):
    """Facts as rows of one table, one transaction per batch. `durability` "fsync" waits for
    the server to flush each commit to its disk (`synchronous_commit=on`); "os" does not
    (`off`: a crash of this process loses nothing committed, a crash of the server may lose
    the last commits)."""

    def __init__(self, url: str, durability: str) -> None:
        super().__init__()
        try:
            import psycopg  # noqa: PLC0415  (only a PostgreSQL store needs it)
        except ImportError:
            raise SystemExit(
                "a PostgreSQL store needs psycopg: pip install 'brokerage[postgres]'"
            ) from None
        self.url = url
        self._db: Any = psycopg.connect(url, autocommit=True)
        self._db.execute(SCHEMA)
        self._db.execute(SNAPSHOTS)
        self._db.execute(f"SET synchronous_commit = {'on' if durability == 'fsync' else 'off'}")

    def write(self, rows: Sequence[str]) -> None:
        """Append the rows in one transaction."""
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO brokerage_journal (facts) VALUES (%s)", [(row,) for row in rows]
            )

    def read(self, after: int = 0) -> Iterator[tuple[int, str]]:
        """Every batch's row after position `after`, in the order written."""
        yield from self._db.execute(
            "SELECT seq, facts FROM brokerage_journal WHERE seq > %s ORDER BY seq", (after,)
        )

    def save_snapshot(self, state: bytes) -> int:
        """Keep `state` at the last position; drop the older snapshots."""
        (seq,) = self._db.execute("SELECT coalesce(max(seq), 0) FROM brokerage_journal").fetchone()
        with self._db.transaction():
            self._db.execute("DELETE FROM brokerage_snapshots")
            self._db.execute(
                "INSERT INTO brokerage_snapshots (seq, state) VALUES (%s, %s)", (seq, state)
            )
        return int(seq)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        """The newest snapshot, if any."""
        row = self._db.execute(
            "SELECT seq, state FROM brokerage_snapshots ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def shut(self) -> None:
        """Close the connection."""
        self._db.close()
