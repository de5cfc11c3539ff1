"""Money, prices and quantities: integer cents and whole shares inside, `Decimal` at the edges.

Nothing here is ever built from a `float`: a float cannot hold most cent amounts exactly, so the
parsers refuse one with an error that says so. Callers give `str`, `int` or `Decimal`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from engine.errors import ValidationError

CENTS_PER_UNIT = 100
MAX_PRICE_CENTS = 100_000_000_000  # $1,000,000,000.00 a share
MAX_AMOUNT_CENTS = 10**17  # $1e15: far above any real balance, well inside exact arithmetic
MAX_QUANTITY = 1_000_000_000
_CENT = Decimal("0.01")


def _to_decimal(field: str, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValidationError(field, "must be a number, not a bool", value)
    if isinstance(value, float):
        raise ValidationError(
            field, "must be given as a str, int or Decimal (a float is not exact)", value
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValidationError(field, "must be a number", value) from None
    else:
        raise ValidationError(field, "must be a str, int or Decimal", value)
    if not result.is_finite():
        raise ValidationError(field, "must be a finite number", value)
    return result


def _to_cents(field: str, value: Any, maximum: int, *, allow_zero: bool = False) -> int:
    amount = _to_decimal(field, value)
    cents = amount * CENTS_PER_UNIT
    if cents != cents.to_integral_value():
        raise ValidationError(field, "must be a whole number of cents (0.01)", value)
    if cents < 0 or (cents == 0 and not allow_zero):
        raise ValidationError(
            field, "must not be negative" if allow_zero else "must be positive", value
        )
    if cents > maximum:
        raise ValidationError(field, f"must be at most {cents_to_decimal(maximum)}", value)
    return int(cents)


def parse_price(value: Any, field: str = "price") -> int:
    """Return a positive price in integer cents.

    Raises:
        ValidationError: for a float, a non-number, NaN or infinity, zero or less, or a value
            finer than one cent.
    """
    return _to_cents(field, value, MAX_PRICE_CENTS)


def parse_amount(value: Any, field: str = "amount", *, allow_zero: bool = False) -> int:
    """Return a positive (or, with `allow_zero`, zero) cash amount in integer cents; the other
    rules are those of `parse_price`."""
    return _to_cents(field, value, MAX_AMOUNT_CENTS, allow_zero=allow_zero)


def parse_quantity(value: Any, field: str = "quantity") -> int:
    """Return a positive whole number of shares.

    Raises:
        ValidationError: for a float, a non-number, a fraction, zero or less.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        quantity = value
    else:
        amount = _to_decimal(field, value)
        if amount != amount.to_integral_value():
            raise ValidationError(field, "must be a positive whole number", value)
        quantity = int(amount)
    if quantity <= 0:
        raise ValidationError(field, "must be a positive whole number", value)
    if quantity > MAX_QUANTITY:
        raise ValidationError(field, f"must be at most {MAX_QUANTITY}", value)
    return quantity


def parse_percent(value: Any, field: str) -> Fraction:
    """Return a non-negative percentage as an exact fraction (5 means 5 %)."""
    amount = _to_decimal(field, value)
    if amount < 0:
        raise ValidationError(field, "must not be negative", value)
    return Fraction(amount)


def notional(price_cents: int, quantity: int) -> int:
    """Return the cash value in cents of `quantity` shares at `price_cents`: the one place
    where a price times a quantity becomes money."""
    return price_cents * quantity


def cents_to_decimal(cents: int) -> Decimal:
    """Return integer cents as a `Decimal` with two places (12345 -> Decimal('123.45'))."""
    return Decimal(cents).scaleb(-2)


def fraction_to_decimal(cents: Fraction | int) -> Decimal:
    """Round an exact amount in cents to whole cents, half to even, for display."""
    if isinstance(cents, int):
        return cents_to_decimal(cents)
    value = Decimal(cents.numerator) / Decimal(cents.denominator)
    return value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN).scaleb(-2)


Exact = int | Fraction
"""An exact amount of cents: an int while it is whole, a Fraction once a division left a rest."""


def exact_share(total: Exact, part: int, whole: int) -> Exact:
    """Return `total * part / whole` exactly, as an int whenever it divides evenly."""
    scaled = total * part
    if isinstance(scaled, int) and scaled % whole == 0:
        return scaled // whole
    return Fraction(scaled) / whole


def percent(part: Exact, whole: Exact) -> Decimal | None:
    """Return `part / whole` as a percentage rounded to 0.01, or None when `whole` is zero."""
    if whole == 0:
        return None
    ratio = Fraction(part) * 100 / whole
    value = Decimal(ratio.numerator) / Decimal(ratio.denominator)
    return value.quantize(_CENT, rounding=ROUND_HALF_EVEN)


def average_price(total_cents: int, quantity: int) -> Decimal:
    """Return the average price of `quantity` shares that cost `total_cents` in all: to the
    cent when it is exact, else to 0.0001."""
    if total_cents % quantity == 0:
        return cents_to_decimal(total_cents // quantity)
    value = cents_to_decimal(total_cents) / quantity
    return value.quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
