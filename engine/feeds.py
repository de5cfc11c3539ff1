"""Price paths for the price feed: a seeded random walk and a replay of recorded rows.

Pure: they make (time, symbol, price in cents) ticks; something else sends them to
`update_price`. Prices stay integer cents; the walk does its arithmetic in `Decimal`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from engine.errors import ValidationError
from engine.ids import Symbol
from engine.money import parse_price

_SECONDS_PER_YEAR = Decimal(252 * 23_400)  # trading seconds in a year (6.5 h a day)


@dataclass(frozen=True, slots=True)
class Tick:
    """One price for one symbol at `at_seconds` from the start of the feed."""

    at_seconds: Decimal
    symbol: Symbol
    price: int


class RandomWalk:
    """Geometric Brownian motion per symbol, seeded, so the same seed gives the same path.

    Args:
        prices: Starting price of each symbol, in cents.
        drift: Yearly drift (0.05 is 5 %).
        volatility: Yearly volatility (0.3 is 30 %).
        step_seconds: Market time between two ticks of a symbol.
    """

    def __init__(
        self,
        prices: Mapping[Symbol, int],
        *,
        seed: int = 0,
        drift: Decimal | str = "0.05",
        volatility: Decimal | str = "0.30",
        step_seconds: Decimal | str = "1",
    ) -> None:
        self._prices = {symbol: Decimal(price) for symbol, price in prices.items()}
        self._rng = random.Random(seed)
        step = Decimal(step_seconds) / _SECONDS_PER_YEAR
        sigma = Decimal(volatility)
        self._mean = (Decimal(drift) - sigma * sigma / 2) * step
        self._scale = sigma * step.sqrt()
        self._step = Decimal(step_seconds)
        self._time = Decimal(0)

    def step(self) -> list[Tick]:
        """Advance every symbol one step; return the new prices (at least one cent)."""
        self._time += self._step
        ticks = []
        with localcontext() as context:
            context.prec = 28
            for symbol in sorted(self._prices):
                shock = Decimal(self._rng.gauss(0, 1))  # a random number, not a price
                price = self._prices[symbol] * (self._mean + self._scale * shock).exp()
                self._prices[symbol] = price
                cents = int(price.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
                ticks.append(Tick(self._time, symbol, max(1, cents)))
        return ticks

    def __iter__(self) -> Iterator[list[Tick]]:
        while True:
            yield self.step()


def parse_price_rows(lines: Iterable[str]) -> list[Tick]:
    """Parse CSV lines `time,symbol,price` (a header line is allowed), in time order.

    `time` is seconds from the start (a number); `price` is a decimal with at most two places.

    Raises:
        ValidationError: naming the line and field of the first bad row.
    """
    ticks: list[Tick] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = [f.strip() for f in text.split(",")]
        if number == 1 and fields[0].lower() == "time":
            continue
        if len(fields) != 3:
            raise ValidationError(f"line {number}", "must have time,symbol,price", text)
        try:
            at = Decimal(fields[0])
        except ArithmeticError:
            raise ValidationError(f"line {number} time", "must be a number", fields[0]) from None
        if not at.is_finite() or at < 0:
            raise ValidationError(f"line {number} time", "must be a number >= 0", fields[0])
        symbol = fields[1].upper()
        if not symbol:
            raise ValidationError(f"line {number} symbol", "must not be empty", fields[1])
        price = parse_price(fields[2], f"line {number} price")
        ticks.append(Tick(at, Symbol(symbol), price))
    ticks.sort(key=lambda tick: tick.at_seconds)
    return ticks
