"""Settings a brokerage is configured with, written as text (a fee schedule, a slippage
model): `name=value` pairs separated by commas."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from engine.errors import ValidationError


def parse_pairs(text: Any, field: str, limit: int) -> dict[str, str] | None:
    """Read settings written as `name=value` pairs separated by commas, each name once, in a
    text of at most `limit` characters; None for "" or "none"."""
    if not isinstance(text, str) or len(text) > limit:
        raise ValidationError(field, f"must be a text of at most {limit} characters", text)
    if text.strip().lower() in ("", "none"):
        return None
    values: dict[str, str] = {}
    for pair in text.split(","):
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise ValidationError(field, "must be name=value pairs separated by ','", pair)
        if name.strip() in values:
            raise ValidationError(field, "must name each setting once", name.strip())
        values[name.strip()] = value.strip()
    return values


def check_names(
    values: Any, field: str, known: Collection[str], name: str, unit: str
) -> Mapping[str, Any]:
    """`values`, a mapping of `known` names (each a `name`) to values (`unit`s).

    Raises:
        ValidationError: for anything else, naming the first unknown name.
    """
    if not isinstance(values, Mapping):
        raise ValidationError(field, f"must be a mapping of names to {unit}", values)
    unknown = sorted(str(key)[:40] for key in values if key not in known)
    if unknown:
        raise ValidationError(
            field, f"unknown {name} {unknown[0]!r}; known: {', '.join(known)}", unknown[0]
        )
    return values


T = TypeVar("T")


def read_setting(
    value: Any,
    kind: type[T],
    parse: Callable[[Mapping[str, Any]], T | None],
    parse_text: Callable[[str], T | None],
) -> T | None:
    """A setting given as itself, None, its text or a mapping of its names."""
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, str):
        return parse_text(value)
    return parse(value)
