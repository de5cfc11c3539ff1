"""A brokerage's fee schedule: what an order pays as it fills, and what to hold for it up front.

A commission (a fee per order, per share and in percent of the notional, with a minimum and a
maximum per order) on every order, plus the regulatory fees a broker passes on for sells: the
SEC fee on the notional sold and FINRA's trading activity fee (TAF) per share sold, capped per
order. Fees are worked out on an order's fills so far as one total, rounded up to the cent
(a broker never undercharges a fee), and each fill pays what that total grew by: the fees of an
order do not depend on how it was split into fills, its minimum is paid at its first fill, and
no fill pays past its maximum.

A buy holds its worst case up front beside its cash: the fee of all its shares at its reserve
price (fees only grow with shares and notional). A sell's fees are paid out of what it sells
for first, so it holds only what its fills may not cover (`bound`): no fill can overdraw the
account, whatever its price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from engine.errors import ValidationError
from engine.money import CENTS_PER_UNIT, cents_to_decimal, parse_fraction
from engine.orders import Side
from engine.settings import check_names, parse_pairs

MAX_FEES_TEXT = 400
"""Characters a fee schedule given as text may have."""


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """What an order pays (all amounts exact: cents and fractions of a cent).

    Attributes:
        per_order: Cents per order that fills.
        per_share: Cents per share filled.
        rate: The part of the notional filled (1/1000 is 0.1 %).
        minimum: Cents an order that fills pays at least in commission.
        maximum: Cents an order pays at most in commission (None: no cap).
        sec_rate: The SEC fee: the part of a sell's notional (27.80 dollars per million is
            278/10,000,000).
        taf_per_share: FINRA's TAF: cents per share sold.
        taf_max: Cents of TAF an order pays at most (None: no cap).
    """

    per_order: int = 0
    per_share: Fraction = Fraction(0)
    rate: Fraction = Fraction(0)
    minimum: int = 0
    maximum: int | None = None
    sec_rate: Fraction = Fraction(0)
    taf_per_share: Fraction = Fraction(0)
    taf_max: int | None = None

    @property
    def free(self) -> bool:
        """True when no order ever pays anything."""
        return self == FREE

    def charged(self, side: Side, quantity: int, cents: int) -> int:
        """The fees in cents of an order of `side` that filled `quantity` shares for `cents`:
        its commission, and for a sell the SEC fee and TAF, each rounded up to the cent."""
        if not quantity:
            return 0
        commission = _ceil(self.per_order + self.per_share * quantity + self.rate * cents)
        commission = max(commission, self.minimum)
        if self.maximum is not None:
            commission = min(commission, self.maximum)
        if side is Side.BUY:
            return commission
        taf = _ceil(self.taf_per_share * quantity)
        if self.taf_max is not None:
            taf = min(taf, self.taf_max)
        return commission + _ceil(self.sec_rate * cents) + taf

    def bound(self, side: Side, quantity: int, price: int | None) -> int:
        """The cash an order for `quantity` shares holds for its fees.

        A buy's `price` is its reserve price: it holds its fees at that price (it never fills
        dearer). A sell's is the lowest it fills at (its limit; None: a cent): after any of its
        fills, the fees so far less what it sold for are at most its fees at no notional and a
        cent for each rounded-up proportional part, less the part of one share's price the
        proportional fees leave (fees grow by at most `rate + sec_rate` of the notional, and
        its fills so far sold at least one share at `price`); it holds that, or nothing.
        """
        if side is Side.BUY:
            assert price is not None, "a buy has a reserve price"
            return self.charged(side, quantity, price * quantity)
        rates = self.rate + self.sec_rate
        fixed = self.charged(side, quantity, 0) + bool(self.rate) + bool(self.sec_rate)
        covered = (1 - rates) * (price or 1)
        return max(0, fixed - covered.numerator // covered.denominator)

    # -- at the edges --------------------------------------------------------------------------

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> FeeSchedule:
        """Read a schedule from dollars and percentages (str, int or Decimal): `per_order`,
        `per_share`, `percent` (of the notional), `minimum`, `maximum`, `sec_per_million`
        (dollars per million dollars sold), `taf_per_share`, `taf_max`. Each is optional.

        Raises:
            ValidationError: for an unknown name, a value that is no number, negative or past
                its bound, or a maximum below the minimum.
        """
        values = check_names(values, "fees", _LIMITS, "fee", "amounts")
        amounts: dict[str, Fraction | None] = {}
        for name, (limit, _) in _LIMITS.items():
            value = values.get(name)
            if value is None:
                amounts[name] = None
                continue
            amounts[name] = parse_fraction(value, f"fees.{name}", limit)
        cents = {
            name: None if amount is None else amount * CENTS_PER_UNIT
            for name, amount in amounts.items()
        }
        for name in ("per_order", "minimum", "maximum", "taf_max"):
            amount = cents[name]
            if amount is not None and amount.denominator != 1:
                raise ValidationError(
                    f"fees.{name}", "must be a whole number of cents (0.01)", values[name]
                )
        minimum = int(cents["minimum"] or 0)
        maximum = None if cents["maximum"] is None else int(cents["maximum"])
        if maximum is not None and maximum < minimum:
            raise ValidationError(
                "fees.maximum", f"must not be below the minimum {values.get('minimum')}", maximum
            )
        return cls(
            per_order=int(cents["per_order"] or 0),
            per_share=cents["per_share"] or Fraction(0),
            rate=(amounts["percent"] or Fraction(0)) / 100,
            minimum=minimum,
            maximum=maximum,
            sec_rate=(amounts["sec_per_million"] or Fraction(0)) / 1_000_000,
            taf_per_share=cents["taf_per_share"] or Fraction(0),
            taf_max=None if cents["taf_max"] is None else int(cents["taf_max"]),
        )

    @classmethod
    def parse_text(cls, text: Any) -> FeeSchedule:
        """Read a schedule written as `name=amount` pairs separated by commas
        ("per_share=0.005,minimum=1,taf_per_share=0.000166,taf_max=8.30"); "" or "none" is
        free.

        Raises:
            ValidationError: for a text that is too long or not such pairs, and as `parse`.
        """
        values = parse_pairs(text, "fees", MAX_FEES_TEXT)
        return FREE if values is None else cls.parse(values)

    def text(self) -> str:
        """The schedule as `parse_text` reads it (only the fees it has; "" when free)."""
        return ",".join(
            f"{name}={value}"
            for name, value in self.describe().items()
            if value is not None and (value or name in ("maximum", "taf_max"))
        )

    def describe(self) -> dict[str, Decimal | None]:
        """The schedule in dollars and percentages, as `parse` reads it (exact: a value that
        no Decimal holds is shown to 12 places)."""
        cents = CENTS_PER_UNIT
        return {
            "per_order": cents_to_decimal(self.per_order),
            "per_share": _decimal(self.per_share / cents),
            "percent": _decimal(self.rate * 100),
            "minimum": cents_to_decimal(self.minimum),
            "maximum": None if self.maximum is None else cents_to_decimal(self.maximum),
            "sec_per_million": _decimal(self.sec_rate * 1_000_000),
            "taf_per_share": _decimal(self.taf_per_share / cents),
            "taf_max": None if self.taf_max is None else cents_to_decimal(self.taf_max),
        }


def _decimal(value: Fraction) -> Decimal:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact if exact * value.denominator == value.numerator else round(exact, 12)


FREE = FeeSchedule()
"""No fees (the default)."""

_LIMITS: dict[str, tuple[Decimal, str]] = {
    "per_order": (Decimal(1000), "dollars per order"),
    "per_share": (Decimal(1), "dollars per share"),
    "percent": (Decimal(10), "percent of the notional"),
    "minimum": (Decimal(1000), "dollars of commission per order at least"),
    "maximum": (Decimal(100_000), "dollars of commission per order at most"),
    "sec_per_million": (Decimal(100_000), "dollars per million dollars sold"),
    "taf_per_share": (Decimal(1), "dollars per share sold"),
    "taf_max": (Decimal(1000), "dollars of TAF per order at most"),
}
"""Each fee's name, its highest value and its unit: rates stay far below 100 % together, so
what a sell fills for always covers its proportional fees."""
