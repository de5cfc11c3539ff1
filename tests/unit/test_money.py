from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ValidationError
from engine.money import (
    average_price,
    cents_to_decimal,
    fraction_to_decimal,
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
    assert fraction_to_decimal(Fraction(1001, 2)) == Decimal("5.00")
    assert fraction_to_decimal(Fraction(1003, 2)) == Decimal("5.02")
    assert fraction_to_decimal(Fraction(1000, 3)) == Decimal("3.33")


def test_average_price_is_exact_to_the_cent_or_shown_to_four_places() -> None:
    assert average_price(30000, 2) == Decimal("150.00")
    assert average_price(1000, 3) == Decimal("3.3333")


def test_percent_of_zero_is_none() -> None:
    assert percent(Fraction(5), Fraction(0)) is None
    assert percent(Fraction(75 * 100), Fraction(750 * 100)) == Decimal("10.00")
