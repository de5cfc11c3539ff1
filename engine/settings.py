"""Settings a brokerage is configured with, written as text (a fee schedule, a slippage
model): `name=value` pairs separated by commas."""

from __future__ import annotations

from typing import Any

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
