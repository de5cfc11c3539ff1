"""Group commit: facts queue up from every actor, and one writer thread makes each batch durable
with one transaction, then tells every fact's future. An actor never waits for the disk; a
caller's reply waits for its facts' futures.

Facts are made durable in the order they were appended, so a fact that caused another (an
account's acceptance before the match it led to) is never durable after it.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pykka

from actors.futures import LightFuture
from engine.account import Transaction
from engine.errors import JournalFailedError
from engine.history import (
    OrderQuery,
    TransactionQuery,
    archive_rows,
    order_from_row,
    transaction_from_row,
)
from engine.journal import Fact, decode, encode
from engine.orders import OrderSnapshot
from gateway.stores import history

DURABILITIES = ("fsync", "os")

Queued = tuple[Fact | None, LightFuture[Any], Sequence[Any]]
"""A fact (None: a barrier), its future, and the history rows it made."""


def batch_text(facts: list[Any]) -> str:
    """A batch's facts as one compact JSON text (orjson; the standard library's for what orjson
    refuses, such as a lone surrogate in a name)."""
    try:
        return orjson.dumps(facts).decode("utf-8")
    except TypeError:
        return json.dumps(facts, separators=(",", ":"))


class GroupCommitJournal:
    """A journal that batches: subclasses say how a batch is written and how facts are read."""

    def __init__(self) -> None:
        # a C queue: putting costs a fraction of a microsecond and wakes the writer if it
        # waits (a deque beside a threading.Event cost the loop a lock and a notify a fact)
        self._queue: queue.SimpleQueue[Queued | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self.batches = 0
        self.written = 0
        self.failure: str | None = None
        """Why a write failed, once one has: from then on every fact is refused."""
        self._readers = threading.local()
        self._opened: list[Any] = []
        self._opening = threading.Lock()

    def start(self) -> None:
        """Start the writer thread (after the replay)."""
        if self._writer is None:
            self._writer = threading.Thread(target=self._run, name="journal", daemon=True)
            self._writer.start()

    def append(self, fact: Fact | None, archive: Sequence[Any] = ()) -> pykka.Future[Any]:
        """Queue `fact` and the history it made (`archive`: finished orders and new
        transactions, written in the same transaction); the future is set once it is durable
        (or fails with the write's error). No fact: a barrier, set once everything queued
        before it is durable."""
        future: LightFuture[Any] = LightFuture()
        if self.failure is not None:
            error = JournalFailedError(self.failure)
            future.set_exception((JournalFailedError, error, None))
            return future
        self._queue.put((fact, future, archive))
        return future

    def barrier(self) -> pykka.Future[Any]:
        """A future set once everything queued so far is durable (its history rows too)."""
        return self.append(None)

    def _run(self) -> None:
        waiting = self._queue
        closing = False
        while not closing:
            batch: list[Queued] = []
            item = waiting.get()  # None: stop once what is queued is written
            while True:
                if item is None:
                    closing = True
                else:
                    batch.append(item)
                try:
                    item = waiting.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[Queued]) -> None:
        # one row per batch: a JSON array of facts, each an array (kind, then fields)
        facts = [encode(fact) for fact, _, _ in batch if fact is not None]
        row = batch_text(facts) if facts else None
        orders, transactions = archive_rows(item for _, _, archive in batch for item in archive)
        try:
            self.write([] if row is None else [row], orders, transactions)
        except Exception as error:  # the disk refused: nothing of this batch is acknowledged,
            self.failure = f"{type(error).__name__}: {error}"  # and nothing more is taken
            failed = JournalFailedError(self.failure)
            for _, future, _ in batch:
                future.set_exception((JournalFailedError, failed, None))
            return
        self.batches += row is not None
        self.written += len(facts)
        for _, future, _ in batch:
            future.set(None)

    def stop(self) -> None:
        """Write what is queued and stop the writer."""
        writer = self._writer
        if writer is not None:
            self._queue.put(None)
            writer.join()
            self._writer = None

    def close(self) -> None:
        """Write what is queued, stop the writer, close the store."""
        self.stop()
        self.shut()

    def facts(self, after: int = 0) -> Iterator[Fact]:
        """Every durable fact of the batches after position `after`, oldest first."""
        for _, row in self.read(after):
            for fact in json.loads(row):
                yield decode(fact)

    # -- what a store provides -----------------------------------------------------------------

    def write(
        self,
        rows: Sequence[str],
        orders: Sequence[tuple[Any, ...]] = (),
        transactions: Sequence[tuple[Any, ...]] = (),
    ) -> None:
        """Append `rows` (each a batch of encoded facts) and keep the history rows (finished
        orders, replacing an earlier row of the same order; transactions) in one durable
        transaction."""
        raise NotImplementedError

    def keep_history(
        self, orders: Sequence[tuple[Any, ...]], transactions: Sequence[tuple[Any, ...]]
    ) -> None:
        """Keep history rows outside a batch (what a recovery finished), durably."""
        self.write((), orders, transactions)

    # -- history searches (each on its thread's own connection) --------------------------------

    PREFIX = ""
    """What the store's tables' names start with."""
    _db: Any
    """The writer's connection."""
    MARK = "?"
    """The SQL parameter placeholder."""

    def find_orders(self, query: OrderQuery) -> list[OrderSnapshot]:
        """The finished orders kept that match `query`: its first `query.end`, in its order."""
        sql, params = history.find_orders(query, self.PREFIX, self.MARK)
        return [order_from_row(row) for row in self._search(sql, params)]

    def find_order(
        self, order_id: str | None = None, client: tuple[str, str] | None = None
    ) -> OrderSnapshot | None:
        """The finished order kept with this id, or with this (account, client order id)."""
        sql, params = history.find_order(order_id, client, self.PREFIX, self.MARK)
        rows = self._search(sql, params)
        return order_from_row(rows[0]) if rows else None

    def find_transactions(self, query: TransactionQuery) -> list[Transaction]:
        """The transactions kept that match `query`: its first `query.end`, in its order."""
        sql, params = history.find_transactions(query, self.PREFIX, self.MARK)
        return [transaction_from_row(row) for row in self._search(sql, params)]

    def _search(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """The rows of a search, on this thread's own connection (made on first use)."""
        db = getattr(self._readers, "db", None)
        if db is None:
            db = self._readers.db = self.connect()
            with self._opening:
                self._opened.append(db)
        return [tuple(row) for row in db.execute(sql, params)]

    def _close_searches(self) -> None:
        with self._opening:
            for db in self._opened:
                db.close()
            self._opened.clear()

    def connect(self) -> Any:
        """A new connection to the store, for one thread's searches."""
        raise NotImplementedError

    def read(self, after: int = 0, limit: int | None = None) -> Iterator[tuple[int, str]]:
        """Every row written after position `after` (the first `limit`) with its position,
        oldest first."""
        sql = f"SELECT seq, facts FROM {self.PREFIX}journal WHERE seq > {self.MARK} ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        yield from self._db.execute(sql, (after,))

    def save_snapshot(self, state: bytes, position: int | None = None) -> int:
        """Keep `state` as the snapshot at journal `position` (None: the last, with the writer
        stopped); return that position. Older snapshots go; a snapshot older than the newest
        kept is not kept."""
        raise NotImplementedError

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        """The newest snapshot and its position, if any."""
        raise NotImplementedError

    def shut(self) -> None:
        """Release the store."""
