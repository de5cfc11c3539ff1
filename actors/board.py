"""What the actors publish for readers on other threads, so that the hottest reads need no
message: a stock's quote, and whether the listing (what search finds) has changed.

Each entry has one writer, the actor that owns what it describes; a reader takes what is there
(a dict lookup and an int read are atomic in CPython). What a reader finds is never newer than
the owner's state and never older than the last change a call was answered for:

- A symbol actor clears its quote as the first step of every message that may change it
  (before any reply or news of that message leaves the actor), and publishes the snapshot it
  builds for a quote request. So a published quote is the symbol's state as it stands, and a
  call answered after a change can no longer find the quote from before it.
- The gateway actor counts every listing after it adds the stock to its search index, before
  it answers. A reader keeps a search's answer with the count it read before it asked, and
  uses it only while the count is unchanged (`Generations`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable
from typing import Generic, TypeVar

from engine.ids import Symbol
from engine.matching import QuoteSnapshot

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Board:
    """The published reads of one engine (see the module's docstring).

    Attributes:
        quotes: Each symbol's quote as it stands, or None (or absent) while it may have changed
            since it was last built; written by the symbol's actor only.
        listings: How many stocks the gateway actor has listed since it started; written by it
            only.
    """

    __slots__ = ("listings", "quotes")

    def __init__(self) -> None:
        self.quotes: dict[Symbol, QuoteSnapshot | None] = {}
        self.listings = 0


class Generations(Generic[K, V]):
    """Answers kept while a generation count stays what it was when they were asked for: a
    search's results while the listing is unchanged.

    `mark()` reads the count before the ask; `keep(key, mark, value)` keeps the answer only if
    the count is still that (a listing that came in while the question was out might not be in
    it); `get(key)` gives it back while the count is unchanged. At most `size` answers are
    kept, the oldest dropped first, so no stream of distinct questions can grow it.
    """

    __slots__ = ("_board", "_kept", "_size")

    def __init__(self, board: Board, size: int = 4096) -> None:
        self._board = board
        self._size = size
        self._kept: dict[K, tuple[int, V]] = {}

    def mark(self) -> int:
        """The count to pass to `keep` for an answer asked for from now."""
        return self._board.listings

    def get(self, key: K) -> V | None:
        """The answer kept for `key`, if the count has not moved since it was asked for."""
        kept = self._kept.get(key)
        if kept is None or kept[0] != self._board.listings:
            return None
        return kept[1]

    def keep(self, key: K, mark: int, value: V) -> None:
        """Keep `value` for `key` if the count is still `mark` (see the class's docstring)."""
        if mark != self._board.listings:
            return
        kept = self._kept
        if key not in kept and len(kept) >= self._size:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # another thread
                del kept[next(iter(kept))]  # took it, or changed the dict as this looked
        kept[key] = (mark, value)
