from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ValidationError
from engine.money import (
    average_price,
    cents_to_decimal,
    divide_half_even,
    notional,
    parse_amount,
    parse_price,
    parse_quantity,
    percent,
)


@pytest.mark.parametrize(
    ("given", "cents"),
    [("150.00", 15000), ("0.01", 1), (7, 700), (Decimal("2800.5"), 280050), (" 1.10 ", 110)],
)
def test_price_parses_str_int_and_decimal_to_cents(given: object, cents: int) -> None:
    assert parse_price(given) == cents


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        (150.0, "float"),
        ("0", "positive"),
        ("-1.00", "positive"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("1.001", "whole number of cents"),
        ("abc", "must be a number"),
        (True, "bool"),
        (None, "str, int or Decimal"),
        ("2000000000", "at most"),
    ],
)
def test_bad_price_raises_a_validation_error_naming_field_and_value(
    given: object, problem: str
) -> None:
    with pytest.raises(ValidationError) as error:
        parse_price(given, "limit_price")

    assert error.value.field == "limit_price"
    assert problem in str(error.value)
    assert str(error.value).endswith(f"was {given!r}")


@pytest.mark.parametrize("given", [0, -5, "1.5", Decimal("2.5"), 1.0, "ten", None, True])
def test_bad_quantity_is_refused(given: object) -> None:
    with pytest.raises(ValidationError, match="quantity"):
        parse_quantity(given)


def test_quantity_accepts_whole_numbers_in_any_exact_form() -> None:
    assert parse_quantity(10) == 10
    assert parse_quantity("10") == 10
    assert parse_quantity(Decimal("10.000")) == 10


def test_zero_or_negative_amount_is_refused() -> None:
    with pytest.raises(ValidationError, match="amount must be positive, was '0'"):
        parse_amount("0")
    with pytest.raises(ValidationError, match="positive"):
        parse_amount(-5)


@given(st.integers(min_value=1, max_value=10**11))
def test_cents_round_trip_through_decimal(cents: int) -> None:
    assert parse_price(cents_to_decimal(cents)) == cents
    assert parse_price(str(cents_to_decimal(cents))) == cents


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**6))
def test_notional_is_exact_integer_cents(price: int, quantity: int) -> None:
    assert notional(price, quantity) == price * quantity
    assert cents_to_decimal(notional(price, quantity)) == cents_to_decimal(price) * quantity


def test_display_rounding_is_half_even_to_the_cent() -> None:
    assert cents_to_decimal(divide_half_even(1001, 2)) == Decimal("5.00")
    assert cents_to_decimal(divide_half_even(1003, 2)) == Decimal("5.02")
    assert cents_to_decimal(divide_half_even(1000, 3)) == Decimal("3.33")


def test_average_price_is_exact_to_the_cent_or_shown_to_four_places() -> None:
    assert average_price(30000, 2) == Decimal("150.00")
    assert average_price(1000, 3) == Decimal("3.3333")


def _percent_by_decimal(part: Fraction, whole: Fraction) -> Decimal:
    """The percentage as Decimal division and quantize write it (the reference)."""
    ratio = part * 100 / whole
    value = Decimal(ratio.numerator) / Decimal(ratio.denominator)
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


amounts = st.integers(-(10**15), 10**15)


@given(amounts, amounts.filter(bool))
def test_percent_and_half_even_division_agree_with_decimal(part: int, whole: int) -> None:
    """Integer arithmetic gives what Decimal gives, to the text ("-0.00" included)."""
    expected = _percent_by_decimal(Fraction(part), Fraction(whole))
    assert str(percent(part, whole)) == str(expected)
    assert str(percent(Fraction(part, 3), Fraction(whole, 7))) == str(
        _percent_by_decimal(Fraction(part, 3), Fraction(whole, 7))
    )
    if whole > 0:
        exact = (Decimal(abs(part)) / Decimal(whole)).quantize(Decimal(1), ROUND_HALF_EVEN)
        assert divide_half_even(abs(part), whole) == int(exact)
    assert divide_half_even(part, whole) == -divide_half_even(-part, whole)


def test_half_even_division_rounds_ties_to_even() -> None:
    assert [divide_half_even(n, 2) for n in (1, 3, 5, -1, -3, 4)] == [0, 2, 2, 0, -2, 2]
    assert divide_half_even(7, -2) == -4
    assert str(percent(-1, 10**9)) == "-0.00"


def test_percent_of_zero_is_none() -> None:
    assert percent(Fraction(5), Fraction(0)) is None
    assert percent(Fraction(75 * 100), Fraction(750 * 100)) == Decimal("10.00")
