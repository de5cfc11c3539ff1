"""OHLCV bars at fixed intervals, built from price updates and trades."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from engine.errors import ValidationError
from engine.money import cents_to_decimal
from engine.orders import ns_to_datetime

_SECOND = 1_000_000_000
INTERVALS: dict[str, int] = {"1m": 60 * _SECOND, "5m": 300 * _SECOND, "1d": 86_400 * _SECOND}
"""Bar intervals by name, in nanoseconds (a day is a UTC day)."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One interval's open, high, low and close prices and traded volume."""

    interval: str
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


@dataclass(slots=True)
class _Bar:
    start_ns: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0


class BarSeries:
    """The bars of one interval, oldest first; at most `limit` are kept.

    An interval with no price update and no trade has no bar (no empty bars are invented).
    """

    def __init__(self, interval: str, limit: int) -> None:
        if interval not in INTERVALS:
            raise ValidationError("interval", f"must be one of {', '.join(INTERVALS)}", interval)
        self.interval = interval
        self._length = INTERVALS[interval]
        self._bars: deque[_Bar] = deque(maxlen=limit)
        self._open: _Bar | None = None  # the latest bar, while `at_ns` stays inside it
        self._end_ns = 0

    def _current(self, price: int, at_ns: int) -> _Bar:
        bar = self._open
        if bar is not None and bar.start_ns <= at_ns < self._end_ns:
            return bar  # the common case: O(1) with no arithmetic
        start = at_ns - at_ns % self._length
        if self._bars and self._bars[-1].start_ns >= start:
            return self._bars[-1]  # a clock that steps back still lands in the latest bar
        bar = _Bar(start, price, price, price, price)
        self._bars.append(bar)
        self._open, self._end_ns = bar, start + self._length
        return bar

    def price(self, price: int, at_ns: int) -> None:
        """Record a price (cents) at `at_ns`. O(1)."""
        bar = self._current(price, at_ns)
        if price > bar.high:
            bar.high = price
        elif price < bar.low:
            bar.low = price
        bar.close = price

    def trade(self, price: int, quantity: int, at_ns: int) -> None:
        """Record a trade of `quantity` shares at `price`. O(1)."""
        bar = self._current(price, at_ns)
        if price > bar.high:
            bar.high = price
        elif price < bar.low:
            bar.low = price
        bar.close = price
        bar.volume += quantity

    @property
    def last(self) -> _Bar | None:
        """The latest bar, if any."""
        return self._bars[-1] if self._bars else None

    @property
    def previous(self) -> _Bar | None:
        """The bar before the latest, if any."""
        return self._bars[-2] if len(self._bars) > 1 else None

    def bars(self, limit: int) -> list[Bar]:
        """The latest `limit` bars, oldest first. O(limit)."""
        chosen = list(self._bars)[-limit:] if limit else []
        return [
            Bar(
                self.interval,
                ns_to_datetime(b.start_ns),
                cents_to_decimal(b.open),
                cents_to_decimal(b.high),
                cents_to_decimal(b.low),
                cents_to_decimal(b.close),
                b.volume,
            )
            for b in chosen
        ]
