"""The journal in PostgreSQL (psycopg 3), for servers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.stores import history
from gateway.stores.journal import GroupCommitJournal

PREFIX = "brokerage_"

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

    PREFIX = PREFIX
    MARK = "%s"

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
        self._connect = psycopg.connect
        self._db.execute(SCHEMA)
        self._db.execute(SNAPSHOTS)
        for statement in history.schema(PREFIX, sqlite=False):
            self._db.execute(statement)

        def present(table: str) -> set[str]:
            return {
                row[0]
                for row in self._db.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = %s AND table_schema = current_schema()",
                    (table,),
                )
            }

        for statement in history.added_columns(PREFIX, present):
            self._db.execute(statement)
        self._db.execute(f"SET synchronous_commit = {'on' if durability == 'fsync' else 'off'}")
        self._keep_order, self._keep_transaction = history.upserts(PREFIX, "%s")

    def write(
        self,
        rows: Sequence[str],
        orders: Sequence[tuple[Any, ...]] = (),
        transactions: Sequence[tuple[Any, ...]] = (),
    ) -> None:
        """Append the rows and keep the history rows in one transaction."""
        with self._db.transaction(), self._db.cursor() as cursor:
            if rows:
                cursor.executemany(
                    "INSERT INTO brokerage_journal (facts) VALUES (%s)", [(row,) for row in rows]
                )
            if orders:
                cursor.executemany(self._keep_order, orders)
            if transactions:
                cursor.executemany(self._keep_transaction, transactions)

    def connect(self) -> Any:
        """A new connection for one thread's history searches (it sees what is committed)."""
        return self._connect(self.url, autocommit=True)

    def save_snapshot(self, state: bytes, position: int | None = None) -> int:
        """Keep `state` at `position` (None: the last); drop the older snapshots."""
        with self.connect() as db:  # not the writer's connection: the journal goes on
            return self._save_snapshot(db, state, position)

    @staticmethod
    def _save_snapshot(db: Any, state: bytes, position: int | None) -> int:
        if position is None:
            (position,) = db.execute(
                "SELECT coalesce(max(seq), 0) FROM brokerage_journal"
            ).fetchone()
        with db.transaction():
            db.execute("LOCK TABLE brokerage_snapshots IN EXCLUSIVE MODE")
            (newest,) = db.execute(
                "SELECT coalesce(max(seq), -1) FROM brokerage_snapshots"
            ).fetchone()
            if newest <= position:
                db.execute("DELETE FROM brokerage_snapshots")
                db.execute(
                    "INSERT INTO brokerage_snapshots (seq, state) VALUES (%s, %s)",
                    (position, state),
                )
        return int(position)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        """The newest snapshot, if any."""
        row = self._db.execute(
            "SELECT seq, state FROM brokerage_snapshots ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def shut(self) -> None:
        """Close the connections."""
        self._close_searches()
        self._db.close()
