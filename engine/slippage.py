"""Slippage for `market`-mode fills: an order that fills on arrival pays half a quoted spread
plus an impact that grows with its size, instead of the last price exactly.

A buy fills at `price * (1 + move)` rounded up to the cent, a sell at `price * (1 - move)`
rounded down (never below a cent), and never past the order's own bound: a buy's limit or, at
market, its collar (what its account reserved for it), a sell's limit. The move is, in parts of
the price, `spread / 2 + impact * sqrt(quantity / size) * jitter`, at most `max_bps`: `jitter`
is drawn for each fill from `[1 - j, 1 + j]` by a random generator seeded with the model's seed
and the symbol, so the same orders in the same order get the same prices (a replay of the
journal, a `--deterministic` simulation). Resting limit orders filled later by a price move
fill at their own price, as without it. Integer arithmetic throughout.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ValidationError
from engine.ids import Symbol
from engine.orders import Side
from engine.settings import check_names, parse_pairs

MAX_SLIPPAGE_TEXT = 200
"""Characters a slippage model given as text may have."""
_PARTS = 100_000_000
"""The move's unit: a hundred-millionth of the price (a basis point is 10,000 of them)."""


@dataclass(frozen=True, slots=True)
class Slippage:
    """A slippage model (see the module).

    Attributes:
        spread_bps: The spread quoted around the last price, in basis points (hundredths of a
            percent); a fill pays half of it.
        impact_bps: The impact of an order of `size` shares, in basis points.
        size: The order size whose impact is `impact_bps`; impact grows with the square root
            of the size over it.
        jitter_percent: How far each fill's impact may stray from it, in percent (0: none).
        max_bps: The largest move, in basis points.
        seed: The random generator's seed.
    """

    spread_bps: int = 0
    impact_bps: int = 0
    size: int = 100
    jitter_percent: int = 0
    max_bps: int = 500
    seed: int = 0

    def generator(self, symbol: Symbol) -> random.Random:
        """The seeded random generator of `symbol`'s fills."""
        return random.Random(f"{self.seed}:{symbol}")

    def fill_price(
        self, side: Side, price: int, quantity: int, bound: int | None, draw: random.Random
    ) -> int:
        """The price in cents an order of `side` for `quantity` shares fills at, arriving when
        the last price is `price`, within its `bound`."""
        impact = self.impact_bps * math.isqrt(quantity * _PARTS // self.size)
        if self.jitter_percent:
            spread = self.jitter_percent * 100
            impact = impact * draw.randint(10_000 - spread, 10_000 + spread) // 10_000
        move = min(self.spread_bps * 5_000 + impact, self.max_bps * 10_000)
        shift = -(-price * move // _PARTS)  # rounded up: against the order
        if side is Side.BUY:
            filled = price + shift
            return filled if bound is None else min(filled, bound)
        filled = max(price - shift, 1)
        return filled if bound is None else max(filled, bound)

    # -- at the edges --------------------------------------------------------------------------

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> Slippage:
        """Read a model from whole numbers: `spread_bps` (0-1,000), `impact_bps` (0-1,000),
        `size` (1-1,000,000), `jitter_percent` (0-100), `max_bps` (1-5,000), `seed`. Each is
        optional.

        Raises:
            ValidationError: for an unknown name or a value that is no whole number in range.
        """
        values = check_names(values, "slippage", _LIMITS, "setting", "numbers")
        found = {
            name: _whole(values[name], f"slippage.{name}", low, high)
            for name, (low, high) in _LIMITS.items()
            if values.get(name) is not None
        }
        return cls(**found)

    @classmethod
    def parse_text(cls, text: Any) -> Slippage | None:
        """Read a model written as `name=number` pairs separated by commas
        ("spread_bps=10,impact_bps=5,size=100,jitter_percent=50,seed=7"); "" or "none" is
        None (no slippage).

        Raises:
            ValidationError: for a text that is too long or not such pairs, and as `parse`.
        """
        values = parse_pairs(text, "slippage", MAX_SLIPPAGE_TEXT)
        return None if values is None else cls.parse(values)

    def text(self) -> str:
        """The model as `parse_text` reads it."""
        return ",".join(
            f"{name}={getattr(self, name)}" for name in _LIMITS if name != "seed" or self.seed
        )


def _whole(value: Any, field: str, low: int, high: int) -> int:
    """A whole number from `low` to `high`, given as an int or its digits."""
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 12:
            value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(field, f"must be a whole number from {low} to {high}", value)
    return value


_LIMITS: dict[str, tuple[int, int]] = {
    "spread_bps": (0, 1_000),
    "impact_bps": (0, 1_000),
    "size": (1, 1_000_000),
    "jitter_percent": (0, 100),
    "max_bps": (1, 5_000),
    "seed": (0, 2**31),
}
"""Each setting's lowest and highest value."""
