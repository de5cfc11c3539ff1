"""Margin accounts: Reg T buying power, maintenance requirements and short selling.

A margin account may borrow against what it holds: its cash may go below zero (a debit
balance) and it may sell short the symbols marked shortable (a negative position). Its figures,
as Alpaca documents them for a Reg T account:

- equity = cash + the market value of its longs - the market value of its shorts;
- initial margin = the initial requirement (50 % by default) of every position's market value;
- maintenance margin = 25 % of its longs' market value and 30 % of its shorts' (by default);
- buying power = (equity - initial margin - what its open orders need) / the initial
  requirement: twice the excess equity at 50 %, Alpaca's `multiplier` "2".

An order is accepted while what it needs fits in the excess equity: a buy that adds to a long
needs the initial requirement of its notional at its reserve price, a sale short the
requirement of its shares at the last price; a sale of shares held or a buy to cover needs
nothing. A price move that takes equity below maintenance is a margin call.

Rates are whole basis points (hundredths of a percent), so every requirement is integer
arithmetic (it runs at every order of a margin account); a requirement is rounded up to the
cent (a broker never asks too little).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from engine.errors import ValidationError
from engine.fields import parse_symbol
from engine.ids import Symbol
from engine.money import BPS, parse_fraction
from engine.settings import parse_pairs

MAX_MARGIN_TEXT = 4000
"""Characters margin rules given as text may have."""
MAX_OVERRIDES = 200
"""Stocks with rates of their own at most."""


def ceil_cents(bp_cents: int) -> int:
    """An amount in basis points of a cent, rounded up to a whole cent."""
    return -(-bp_cents // BPS)


@dataclass(frozen=True, slots=True)
class Rates:
    """The requirements of one stock, in basis points of a position's market value."""

    initial: int
    long: int
    short: int


@dataclass(frozen=True, slots=True)
class MarginFigures:
    """A margin account's figures at current prices, in cents.

    Attributes:
        equity: Cash plus longs' market value minus shorts'.
        long_value, short_value: The market value of its longs and of its shorts (both >= 0).
        initial: The initial requirement of its positions.
        maintenance: The maintenance requirement of its positions.
        held: What its open orders need of the excess equity (with their fee holds).
        excess: Equity less the initial requirement and what open orders need.
        buying_power: What a buy may still add, in notional (excess / the initial rate).
    """

    equity: int
    long_value: int
    short_value: int
    initial: int
    maintenance: int
    held: int
    excess: int
    buying_power: int

    @property
    def deficit(self) -> int:
        """How far equity is below maintenance (0: no margin call)."""
        return max(0, self.maintenance - self.equity)


@dataclass(frozen=True)
class MarginRules:
    """A brokerage's margin requirements and which symbols may be sold short.

    Attributes:
        initial: The initial requirement in basis points (Reg T: 5,000, 50 %).
        maintenance_long: The maintenance requirement of a long position (2,500).
        maintenance_short: The maintenance requirement of a short position (3,000).
        overrides: A stock's own rates (a volatile stock's initial may be 10,000: no
            borrowing on it).
        shortable: The symbols that may be sold short; None: every symbol.
    """

    initial: int = 5_000
    maintenance_long: int = 2_500
    maintenance_short: int = 3_000
    overrides: Mapping[Symbol, Rates] = field(default_factory=dict)
    shortable: frozenset[Symbol] | None = None

    def rates(self, symbol: Symbol) -> Rates:
        """The requirements of `symbol` (its own, or the brokerage's)."""
        own = self.overrides.get(symbol)
        if own is not None:
            return own
        return Rates(self.initial, self.maintenance_long, self.maintenance_short)

    def can_short(self, symbol: Symbol) -> bool:
        """True if `symbol` may be sold short."""
        return self.shortable is None or symbol in self.shortable

    def marginable(self, symbol: Symbol) -> bool:
        """True if a margin account may borrow to buy `symbol` (its initial requirement is
        under 100 %)."""
        return self.rates(symbol).initial < BPS

    @property
    def multiplier(self) -> Fraction:
        """Buying power per dollar of excess equity (2 at a 50 % initial requirement)."""
        return Fraction(BPS, self.initial)

    @property
    def multiplier_text(self) -> str:
        """The multiplier as Alpaca writes it ("2"; to 4 places)."""
        exact = Decimal(self.multiplier.numerator) / self.multiplier.denominator
        return format(exact.quantize(Decimal("0.0001")).normalize(), "f")

    def figures(
        self,
        cash: int,
        positions: Iterable[tuple[Symbol, int]],
        prices: Mapping[Symbol, int],
        needs: int,
    ) -> MarginFigures:
        """The figures of an account with `cash` and signed `positions`, at `prices`, whose
        open orders need `needs` basis points of a cent of its excess equity."""
        long_value = short_value = 0
        initial = maintenance = 0
        for symbol, quantity in positions:
            if not quantity:
                continue
            rates = self.rates(symbol)
            value = prices[symbol] * abs(quantity)
            initial += rates.initial * value
            if quantity > 0:
                long_value += value
                maintenance += rates.long * value
            else:
                short_value += value
                maintenance += rates.short * value
        equity = cash + long_value - short_value
        initial_cents, held = ceil_cents(initial), ceil_cents(needs)
        excess = equity - initial_cents - held
        return MarginFigures(
            equity=equity,
            long_value=long_value,
            short_value=short_value,
            initial=initial_cents,
            maintenance=ceil_cents(maintenance),
            held=held,
            excess=excess,
            buying_power=max(0, excess) * BPS // self.initial,
        )

    # -- at the edges --------------------------------------------------------------------------

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> MarginRules:
        """Read rules from percentages (str, int or Decimal): `initial`, `long`, `short` (the
        maintenance requirements), `shortable` ("all", or symbols separated by spaces), and a
        stock's own rates as `SYMBOL.initial`, `SYMBOL.long`, `SYMBOL.short` (each defaults to
        the brokerage's). Each is optional.

        Raises:
            ValidationError: for an unknown name, a rate that is no percentage from 1 to 100,
                a maintenance requirement above the initial one, or a symbol that is none.
        """
        if not isinstance(values, Mapping):
            raise ValidationError("margin", "must be a mapping of names to percentages", values)
        base: dict[str, int] = {}
        own: dict[Symbol, dict[str, int]] = {}
        shortable: frozenset[Symbol] | None = None
        for key, value in values.items():
            name = str(key)[:60]
            if name == "shortable":
                shortable = _symbols(value)
                continue
            stock, dot, rate = name.rpartition(".")
            if rate not in _RATES:
                raise ValidationError(
                    "margin",
                    f"unknown rule {name!r}; known: {', '.join(_RATES)}, shortable, "
                    "and SYMBOL.initial, SYMBOL.long, SYMBOL.short",
                    name,
                )
            parsed = _rate(value, f"margin.{name}")
            if dot:
                symbol = parse_symbol(stock, f"margin.{name}")
                if len(own) >= MAX_OVERRIDES and symbol not in own:
                    raise ValidationError(
                        "margin", f"must give rates of its own to at most {MAX_OVERRIDES}", name
                    )
                own.setdefault(symbol, {})[rate] = parsed
            else:
                base[rate] = parsed
        defaults = {
            "initial": base.get("initial", cls.initial),
            "long": base.get("long", cls.maintenance_long),
            "short": base.get("short", cls.maintenance_short),
        }
        overrides = {
            symbol: Rates(**{**defaults, **rates}) for symbol, rates in sorted(own.items())
        }
        every = [("", Rates(**defaults)), *((f"{s}.", r) for s, r in overrides.items())]
        for where, rates in every:
            for kind in ("long", "short"):
                if getattr(rates, kind) > rates.initial:
                    raise ValidationError(
                        f"margin.{where}{kind}",
                        f"must not be above the initial requirement {_percent(rates.initial)}",
                        str(_percent(getattr(rates, kind))),
                    )
        return cls(defaults["initial"], defaults["long"], defaults["short"], overrides, shortable)

    @classmethod
    def parse_text(cls, text: Any) -> MarginRules:
        """Read rules written as `name=value` pairs separated by commas ("initial=50,long=25,
        short=30,shortable=AAPL MSFT,GME.initial=100"); "" or "none" is the defaults."""
        values = parse_pairs(text, "margin", MAX_MARGIN_TEXT)
        return cls() if values is None else cls.parse(values)

    def describe(self) -> dict[str, Any]:
        """The rules in percentages, as `parse` reads them."""
        found: dict[str, Any] = {
            "initial": _percent(self.initial),
            "long": _percent(self.maintenance_long),
            "short": _percent(self.maintenance_short),
            "shortable": "all" if self.shortable is None else " ".join(sorted(self.shortable)),
        }
        for symbol, rates in self.overrides.items():
            for kind in _RATES:
                found[f"{symbol}.{kind}"] = _percent(getattr(rates, kind))
        return found


_RATES = ("initial", "long", "short")


def _rate(value: Any, name: str) -> int:
    percent = parse_fraction(value, name, Decimal(100))
    if percent < 1 or (percent * 100).denominator != 1:
        raise ValidationError(name, "must be a percentage from 1 to 100, to 0.01", value)
    return int(percent * 100)


def _percent(bps: int) -> Decimal:
    return Decimal(bps).scaleb(-2)


def _symbols(value: Any) -> frozenset[Symbol] | None:
    if not isinstance(value, str):
        raise ValidationError("margin.shortable", "must be 'all' or symbols", value)
    if value.strip().lower() == "all":
        return None
    return frozenset(parse_symbol(part, "margin.shortable") for part in value.split()[:10_000])
