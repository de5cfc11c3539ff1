"""Snapshots to JSON: money and prices as strings, times as ISO 8601 in UTC, enums as values."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    """`value` as JSON-ready data (dataclasses and named tuples become objects)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {key: plain(item) for key, item in value._asdict().items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [plain(item) for item in items]
    return str(value)


def iso(moment: datetime) -> str:
    """An aware datetime as ISO 8601 with a `Z` for UTC."""
    return moment.isoformat().replace("+00:00", "Z")
