"""Money, prices and quantities: integer cents and whole shares inside, `Decimal` at the edges.

Nothing here is ever built from a `float`: a float cannot hold most cent amounts exactly, so the
parsers refuse one with an error that says so. Callers give `str`, `int` or `Decimal`. Every
number is bounded by its text (at most 40 characters, 30 digits, magnitudes within 1e20) before
any arithmetic, and every error, decimal ones included, is a `ValidationError`.
"""

from __future__ import annotations

import re
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from fractions import Fraction
from typing import Any

from engine.errors import ValidationError

CENTS_PER_UNIT = 100
MAX_PRICE_CENTS = 100_000_000_000  # $1,000,000,000.00 a share
MAX_AMOUNT_CENTS = 10**17  # $1e15: far above any real balance, well inside exact arithmetic
MAX_QUANTITY = 1_000_000_000
_CENT = Decimal("0.01")


MAX_NUMBER_TEXT = 40
"""Characters a number given as text may have: far more than any price, amount or quantity
needs, and few enough that nothing done with it can take long."""
MAX_DIGITS = 30
"""Significant digits a number may have."""
MAX_MAGNITUDE = 20
"""The largest power of ten (either way) a number's digits may reach: 1e20 and 1e-20."""

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,9})?")
"""A plain decimal number in ASCII digits: no `_` separators, no other scripts' digits."""
_NOT_FINITE = re.compile(r"[+-]?(?:nan|snan|inf|infinity)", re.IGNORECASE)
_EXACT = Context(prec=MAX_DIGITS * 2, traps=[InvalidOperation, Overflow, Inexact, DivisionByZero])
"""Arithmetic on bounded inputs: wide enough never to round, and it says so if it would."""


def shown(value: Any) -> Any:
    """`value` as an error message shows it: a long text or a huge number is cut down, so that
    echoing a hostile input back (or logging it) costs nothing."""
    if isinstance(value, str) and len(value) > MAX_NUMBER_TEXT:
        return f"{value[:MAX_NUMBER_TEXT]}... ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, Decimal) and value.is_finite() and len(value.as_tuple()[1]) > MAX_DIGITS:
        return f"<a Decimal of {len(value.as_tuple()[1])} digits>"
    return value


def _bounded(field: str, result: Decimal, value: Any) -> Decimal:
    """Refuse a finite Decimal whose digits or exponent go past the bounds (O(its digits),
    which its text or its maker already paid for)."""
    _, digits, exponent = result.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) > MAX_DIGITS:
        raise ValidationError(field, f"must have at most {MAX_DIGITS} digits", shown(value))
    if not -MAX_MAGNITUDE <= exponent <= MAX_MAGNITUDE or result.adjusted() > MAX_MAGNITUDE:
        raise ValidationError(
            field, f"must be within 1e{MAX_MAGNITUDE} with at most {MAX_MAGNITUDE} places", value
        )
    return result


def _to_decimal(field: str, value: Any) -> Decimal:
    """Return `value` as a bounded, finite Decimal; it is bounded by its text (length, digits,
    exponent) before any arithmetic, so no input can make this, or what follows, slow."""
    if isinstance(value, bool):
        raise ValidationError(field, "must be a number, not a bool", value)
    if isinstance(value, float):
        raise ValidationError(
            field, "must be given as a str, int or Decimal (a float is not exact)", value
        )
    if isinstance(value, int):
        if abs(value) >= 10**MAX_MAGNITUDE:
            raise ValidationError(field, f"must be below 1e{MAX_MAGNITUDE}", shown(value))
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationError(field, "must be a finite number", value)
        return _bounded(field, value, value)
    if not isinstance(value, str):
        raise ValidationError(field, "must be a str, int or Decimal", shown(value))
    if len(value) > MAX_NUMBER_TEXT:
        raise ValidationError(
            field, f"must be at most {MAX_NUMBER_TEXT} characters long", shown(value)
        )
    text = value.strip()
    if not _NUMBER.fullmatch(text):
        if _NOT_FINITE.fullmatch(text):
            raise ValidationError(field, "must be a finite number", value)
        raise ValidationError(field, "must be a number in plain ASCII digits", value)
    try:
        return _bounded(field, Decimal(text), value)
    except ArithmeticError:
        raise ValidationError(field, "must be a number", value) from None


def _to_cents(field: str, value: Any, maximum: int, *, allow_zero: bool = False) -> int:
    amount = _to_decimal(field, value)
    cents = _EXACT.multiply(amount, CENTS_PER_UNIT)
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
        raise ValidationError(field, "must be a positive whole number", shown(value))
    if quantity > MAX_QUANTITY:
        raise ValidationError(field, f"must be at most {MAX_QUANTITY}", shown(value))
    return quantity


def parse_percent(value: Any, field: str) -> Fraction:
    """Return a non-negative percentage as an exact fraction (5 means 5 %)."""
    amount = _to_decimal(field, value)
    if amount < 0:
        raise ValidationError(field, "must not be negative", value)
    return Fraction(amount)


def parse_fraction(value: Any, field: str, maximum: Decimal) -> Fraction:
    """Return a number from 0 to `maximum` as an exact fraction (a rate, or dollars finer
    than a cent)."""
    amount = _to_decimal(field, value)
    if not 0 <= amount <= maximum:
        raise ValidationError(field, f"must be between 0 and {maximum}", value)
    return Fraction(amount)


def parse_trail_percent(value: Any, field: str = "trail_percent") -> int:
    """Return a trailing stop's percentage (above 0, below 100, to 0.01 %) in hundredths of a
    percent: "1.5" is 150."""
    amount = _to_decimal(field, value)
    hundredths = _EXACT.multiply(amount, CENTS_PER_UNIT)
    if hundredths != hundredths.to_integral_value():
        raise ValidationError(field, "must be a whole number of hundredths of a percent", value)
    if not 0 < hundredths < 10_000:
        raise ValidationError(field, "must be above 0 and below 100", value)
    return int(hundredths)


BPS = 10_000
"""Basis points (hundredths of a percent) in a whole."""


def notional(price_cents: int, quantity: int) -> int:
    """Return the cash value in cents of `quantity` shares at `price_cents`: the one place
    where a price times a quantity becomes money."""
    return price_cents * quantity


def cents_to_decimal(cents: int) -> Decimal:
    """Return integer cents as a `Decimal` with two places (12345 -> Decimal('123.45'))."""
    return Decimal(cents).scaleb(-2)


def share_of(total_cents: int, part: int, whole: int) -> int:
    """Return `total_cents * part / whole` rounded half to even, to the cent, in integers: the
    cost a sale of `part` of `whole` shares takes away, so that what is taken plus what is
    kept is always the total (0 <= part <= whole, whole > 0)."""
    return divide_half_even(total_cents * part, whole)


def divide_half_even(numerator: int, denominator: int) -> int:
    """Return `numerator / denominator` rounded half to even, in integers (either may be
    negative; the rounding is symmetric about zero, as Decimal's)."""
    quotient, rest = divmod(abs(numerator), abs(denominator))
    twice = 2 * rest
    if twice > abs(denominator) or (twice == abs(denominator) and quotient % 2):
        quotient += 1
    return -quotient if (numerator < 0) != (denominator < 0) else quotient


def percent(part: int | Fraction, whole: int | Fraction) -> Decimal | None:
    """Return `part / whole` as a percentage rounded to 0.01, or None when `whole` is zero.

    A loss that rounds to nothing is "-0.00", as Decimal writes it."""
    if whole == 0:
        return None
    if isinstance(part, int) and isinstance(whole, int):  # no Fraction: the common case
        numerator, denominator = part * 10_000, whole
    else:
        ratio = Fraction(part) * 100 / whole
        numerator, denominator = ratio.numerator * 100, ratio.denominator
    hundredths = divide_half_even(numerator, denominator)
    value = Decimal(hundredths).scaleb(-2)
    negative = numerator != 0 and (numerator < 0) != (denominator < 0)
    return value.copy_negate() if hundredths == 0 and negative else value


def average_price(total_cents: int, quantity: int) -> Decimal:
    """Return the average price of `quantity` shares that cost `total_cents` in all: to the
    cent when it is exact, else to 0.0001."""
    if total_cents % quantity == 0:
        return cents_to_decimal(total_cents // quantity)
    value = cents_to_decimal(total_cents) / quantity
    return value.quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
