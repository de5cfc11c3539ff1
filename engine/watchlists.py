"""An account's named watchlists: ordered lists of symbols, each symbol at most once per list."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.errors import DuplicateError, UnknownWatchlistError, ValidationError
from engine.ids import Symbol

MAX_WATCHLISTS = 100
MAX_SYMBOLS = 1_000


@dataclass(frozen=True, slots=True)
class Watchlist:
    """A watchlist as it stood: its name and its symbols in the order they were added."""

    name: str
    symbols: tuple[Symbol, ...]


def parse_watchlist_name(value: object, field: str = "name") -> str:
    """Return a watchlist name: 1-64 characters after trimming."""
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 64:
        raise ValidationError(field, "must be a non-empty string of at most 64 characters", value)
    return value.strip()


class Watchlists:
    """One account's watchlists, by name. Every operation is O(1) on the list it names, plus
    O(s) to copy or search its s symbols."""

    def __init__(self) -> None:
        self._lists: dict[str, list[Symbol]] = {}

    def _get(self, name: str) -> list[Symbol]:
        try:
            return self._lists[name]
        except KeyError:
            raise UnknownWatchlistError(name) from None

    def create(self, name: str, symbols: Iterable[Symbol] = ()) -> Watchlist:
        """Create a watchlist (duplicates among `symbols` are kept once)."""
        if name in self._lists:
            raise DuplicateError("watchlist", name)
        if len(self._lists) >= MAX_WATCHLISTS:
            raise ValidationError(
                "name", f"is one watchlist too many (at most {MAX_WATCHLISTS})", name
            )
        unique = list(dict.fromkeys(symbols))
        if len(unique) > MAX_SYMBOLS:
            raise ValidationError("symbols", f"must be at most {MAX_SYMBOLS}", len(unique))
        self._lists[name] = unique
        return self.get(name)

    def rename(self, name: str, new_name: str) -> Watchlist:
        """Rename a watchlist, keeping its symbols."""
        symbols = self._get(name)
        if new_name != name and new_name in self._lists:
            raise DuplicateError("watchlist", new_name)
        del self._lists[name]
        self._lists[new_name] = symbols
        return self.get(new_name)

    def replace(
        self, name: str, symbols: Iterable[Symbol] | None, new_name: str | None
    ) -> Watchlist:
        """Replace a watchlist's symbols and/or rename it, all or nothing: every check is made
        before anything changes."""
        current = self._get(name)
        target = name if new_name is None else new_name
        if target != name and target in self._lists:
            raise DuplicateError("watchlist", target)
        chosen = current if symbols is None else list(dict.fromkeys(symbols))
        if len(chosen) > MAX_SYMBOLS:
            raise ValidationError("symbols", f"must be at most {MAX_SYMBOLS}", len(chosen))
        if target != name:
            del self._lists[name]
        self._lists[target] = chosen
        return self.get(target)

    def delete(self, name: str) -> None:
        """Delete a watchlist."""
        self._get(name)
        del self._lists[name]

    def add(self, name: str, symbol: Symbol) -> Watchlist:
        """Add a symbol at the end (no change if it is there already)."""
        symbols = self._get(name)
        if symbol not in symbols:
            if len(symbols) >= MAX_SYMBOLS:
                raise ValidationError("symbol", f"would pass {MAX_SYMBOLS} symbols", symbol)
            symbols.append(symbol)
        return self.get(name)

    def remove(self, name: str, symbol: Symbol) -> Watchlist:
        """Remove a symbol from a watchlist."""
        symbols = self._get(name)
        if symbol not in symbols:
            raise ValidationError("symbol", f"is not in watchlist {name!r}", symbol)
        symbols.remove(symbol)
        return self.get(name)

    def get(self, name: str) -> Watchlist:
        """One watchlist."""
        return Watchlist(name, tuple(self._get(name)))

    def all(self) -> list[Watchlist]:
        """Every watchlist, in the order they were created (or renamed)."""
        return [Watchlist(name, tuple(symbols)) for name, symbols in self._lists.items()]
