"""Stock search: ranked, case-insensitive matches on symbols and company-name words.

Ranks, best first: the exact symbol; a symbol starting with the query; a word of the name
starting with the query; the query anywhere in the symbol or name. Prefix look-ups are binary
searches in sorted lists; a substring look-up intersects trigram postings, so no query scans
every stock.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from engine.ids import Symbol

_WORD = re.compile(r"[a-z0-9]+")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A stock that matched, and how well (0 is best: exact symbol)."""

    symbol: Symbol
    name: str
    rank: int


def _from(items: list[T], start: int) -> Iterator[T]:
    """The items of a list from index `start` on, without walking the ones before."""
    for index in range(start, len(items)):
        yield items[index]


def _trigrams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


class SearchIndex:
    """Every listed stock, indexed for `search`."""

    def __init__(self) -> None:
        self._names: dict[Symbol, str] = {}
        self._symbols: list[str] = []  # lower-case symbols, sorted
        self._words: list[tuple[str, Symbol]] = []  # (lower-case name word, symbol), sorted
        self._grams: dict[str, list[Symbol]] = {}  # trigram -> symbols having it, sorted
        self._gram_sets: dict[str, set[Symbol]] = {}  # the same, for membership tests
        self._haystacks: dict[Symbol, str] = {}  # "symbol name", lower case

    def __len__(self) -> int:
        return len(self._names)

    def add(self, symbol: Symbol, name: str) -> None:
        """Index a stock. O(log n) searches plus O(n) list inserts, once per listing."""
        self._names[symbol] = name
        bisect.insort(self._symbols, symbol.lower())
        lowered = name.lower()
        for word in set(_WORD.findall(lowered)):
            bisect.insort(self._words, (word, symbol))
        self._haystacks[symbol] = f"{symbol.lower()} {lowered}"
        for gram in _trigrams(symbol.lower()) | _trigrams(lowered):
            bisect.insort(self._grams.setdefault(gram, []), symbol)
            self._gram_sets.setdefault(gram, set()).add(symbol)

    def search(self, query: str, limit: int = 10) -> list[SearchResult]:
        """The best `limit` matches for `query`: by rank, then in the order of the sorted
        symbol (ranks 0, 1, 3) or name-word (rank 2) lists.

        O(log n + limit) for prefix matches; a substring match walks the shortest trigram
        posting of the query in symbol order and stops at `limit` matches (a query under
        three characters finds only prefixes, which then abound).
        """
        needle = query.strip().lower()
        if not needle or limit <= 0:
            return []
        found: dict[Symbol, int] = {}

        def take(symbols: Iterable[Symbol], rank: int) -> bool:
            for symbol in symbols:
                if len(found) >= limit:
                    break
                found.setdefault(symbol, rank)
            return len(found) >= limit

        upper = Symbol(needle.upper())
        if take([upper] if upper in self._names else [], 0):
            return self._results(found)
        start = bisect.bisect_left(self._symbols, needle)
        prefixed = itertools.takewhile(lambda s: s.startswith(needle), _from(self._symbols, start))
        if take((Symbol(s.upper()) for s in prefixed), 1):
            return self._results(found)
        word = _WORD.search(needle)  # "corp." looks for the word "corp"
        if word is not None:
            start = bisect.bisect_left(self._words, (word.group(), Symbol("")))
            words = itertools.takewhile(
                lambda item: item[0].startswith(word.group()), _from(self._words, start)
            )
            if take((symbol for _, symbol in words if needle in self._haystacks[symbol]), 2):
                return self._results(found)
        if len(needle) >= 3:
            grams = sorted(_trigrams(needle), key=lambda g: len(self._grams.get(g, ())))
            others = [self._gram_sets.get(g, set()) for g in grams[1:]]
            haystacks = self._haystacks
            take(
                (
                    s
                    for s in self._grams.get(grams[0], ())
                    if all(s in other for other in others) and needle in haystacks[s]
                ),
                3,
            )
        return self._results(found)

    def _results(self, found: dict[Symbol, int]) -> list[SearchResult]:
        return [SearchResult(s, self._names[s], rank) for s, rank in found.items()]
