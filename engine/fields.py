"""Parsers of the caller's raw values that are not money (`engine.money` parses those): names,
ids, symbols, counts, pages, moments and status filters.

Each returns the parsed value or raises `ValidationError` naming the field and the value given.
The `*_key` parsers read a reference to something that may exist (an account, a symbol, an
order, an alert): any text is a well-formed reference, and a value that is no text names
nothing, so they raise the matching `NotFoundError` as a look-up of it would.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from engine.account import TransactionKind
from engine.errors import (
    UnknownAccountError,
    UnknownAlertError,
    UnknownOrderError,
    UnknownSymbolError,
    UnknownUserError,
    ValidationError,
)
from engine.ids import AccountId, OrderId, Symbol, UserId
from engine.orders import OrderStatus, datetime_to_ns

E = TypeVar("E", bound=enum.Enum)

_SYMBOL = re.compile(r"[A-Z][A-Z0-9.\-]{0,9}")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}")
MAX_TEXT = 200
"""Characters a name, email or phone may have."""
MAX_CLIENT_ORDER_ID = 128
"""Characters a client's own order id may have (as on Alpaca)."""


def parse_symbol(value: Any, field: str = "symbol") -> Symbol:
    """Return a symbol in upper case: 1-10 letters, digits, dots or dashes, starting with a
    letter."""
    if not isinstance(value, str) or not _SYMBOL.fullmatch(value.strip().upper()):
        raise ValidationError(
            field, "must be 1-10 letters, digits, '.' or '-', starting with a letter", value
        )
    return Symbol(value.strip().upper())


def parse_identifier(value: Any, field: str) -> str:
    """Return an id: 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or
    digit."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise ValidationError(field, "must be 1-64 letters, digits, '_', '.', '@' or '-'", value)
    return value


def parse_user_id(value: Any) -> UserId:
    """Return a user id (see `parse_identifier`)."""
    return UserId(parse_identifier(value, "user_id"))


def parse_text(value: Any, field: str) -> str | None:
    """Return a trimmed, non-empty text of at most 200 characters, or None for None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise ValidationError(field, "must be a non-empty string of at most 200 characters", value)
    return value.strip()


def parse_email(value: Any) -> str | None:
    """Return an email address (a text with an '@'), or None for None."""
    email = parse_text(value, "email")
    if email is not None and "@" not in email:
        raise ValidationError("email", "must be an email address", value)
    return email


def parse_client_order_id(value: Any) -> str | None:
    """Return a client's own order id: 1-128 printable characters, or None for None."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_CLIENT_ORDER_ID
        or not value.isprintable()
    ):
        raise ValidationError(
            "client_order_id", f"must be 1-{MAX_CLIENT_ORDER_ID} printable characters", value
        )
    return value


def parse_flag(value: Any, field: str) -> bool:
    """Return `value` if it is True or False (no other value stands for one)."""
    if not isinstance(value, bool):
        raise ValidationError(field, "must be True or False", value)
    return value


def parse_count(value: Any, field: str, maximum: int = 1_000) -> int:
    """Return a whole number from 1 to `maximum` (how many levels, trades, bars, results)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(field, f"must be a whole number from 1 to {maximum}", value)
    return value


def parse_page(offset: Any, limit: Any) -> tuple[int, int | None]:
    """Return a page: an `offset` from 0 to 1e9 and a `limit` from 1 to 1e9 (None: all)."""
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 10**9:
        raise ValidationError("offset", "must be a whole number from 0 to 1000000000", offset)
    if limit is not None:
        limit = parse_count(limit, "limit", maximum=10**9)
    return offset, limit


def parse_moment(value: Any, field: str) -> int | None:
    """A `datetime` (naive: UTC) as nanoseconds since the epoch, or None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(field, "must be a datetime", value)
    try:  # an offset may take a moment near year 1 or 9999 past what a UTC datetime holds
        value.astimezone(UTC) if value.tzinfo is not None else value
    except OverflowError:
        raise ValidationError(field, "must be within the years 1 to 9999 in UTC", value) from None
    return datetime_to_ns(value)


def parse_cursor(value: Any, prefix: str) -> int | None:
    """The number of the id a page's cursor names (`prefix` then digits: "O-000042" -> 42), or
    None for no cursor."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= len(prefix) + 20:
        rest = value.removeprefix(prefix)
        if rest != value and rest.isascii() and rest.isdigit():
            return int(rest)
    raise ValidationError("cursor", f"must be an id {prefix}<number> from a listing", value)


def parse_statuses(value: Any) -> frozenset[OrderStatus] | None:
    """Return the set of statuses an order filter asks for (None: every status)."""
    return _parse_choices(value, OrderStatus, "status")


def parse_kinds(value: Any) -> frozenset[TransactionKind] | None:
    """Return the set of kinds a transaction filter asks for (None: every kind)."""
    return _parse_choices(value, TransactionKind, "kind")


def _parse_choices(value: Any, kind: type[E], name: str) -> frozenset[E] | None:
    if value is None:
        return None
    items: Any = [value] if isinstance(value, str | enum.Enum) else value
    choices = ", ".join(repr(item.value) for item in kind)
    problem = ValidationError(name, f"must be one or more of {choices}", value)
    if not isinstance(items, Iterable):
        raise problem
    chosen: list[E] = []
    for item in items:  # each choice at most once: a longer list is no filter
        if len(chosen) >= len(kind) * 2 or not isinstance(item, str | enum.Enum):
            raise problem
        text = item.value if isinstance(item, enum.Enum) else item
        if not isinstance(text, str) or len(text) > 40:
            raise problem
        try:
            chosen.append(kind(text.strip().lower()))
        except ValueError:
            raise problem from None
    return frozenset(chosen)


# -- references to what may exist ---------------------------------------------------------------


def account_key(value: Any) -> AccountId:
    """An account id as given; a value that is no text names no account."""
    if not isinstance(value, str):
        raise UnknownAccountError(value)
    return AccountId(value)


def user_key(value: Any) -> UserId:
    """A user id as given; a value that is no text names no user."""
    if not isinstance(value, str):
        raise UnknownUserError(value)
    return UserId(value)


def symbol_key(value: Any) -> Symbol:
    """A symbol as listed (trimmed, upper case); a value that is no text names no symbol."""
    if not isinstance(value, str):
        raise UnknownSymbolError(value)
    return Symbol(value.strip().upper())


def order_key(value: Any) -> OrderId:
    """An order id as given; a value that is no text names no order."""
    if not isinstance(value, str):
        raise UnknownOrderError(value)
    return OrderId(value)


def alert_key(value: Any) -> str:
    """An alert id as given; a value that is no text names no alert."""
    if not isinstance(value, str):
        raise UnknownAlertError(value)
    return value
