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
        self._db.execute(f"SET synchronous_commit = {'on' if durability == 'fsync' else 'off'}")

    def write(self, rows: Sequence[str]) -> None:
        """Append the rows in one transaction."""
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO brokerage_journal (facts) VALUES (%s)", [(row,) for row in rows]
            )

    def read(self) -> Iterator[str]:
        """Every batch's row, in the order written."""
        for (row,) in self._db.execute("SELECT facts FROM brokerage_journal ORDER BY seq"):
            yield row

    def shut(self) -> None:
        """Close the connection."""
        self._db.close()
