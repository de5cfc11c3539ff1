"""Snapshots to JSON: money and prices as strings, times as ISO 8601 in UTC, enums as values.

`plain` turns a snapshot into JSON-ready data; `dumps` writes the same JSON straight from the
snapshot with orjson (dataclasses, enums and datetimes natively, the rest through `_default`),
several times faster than `json.dumps(plain(value))` and byte for byte the same text for every
snapshot the API answers with (tests/server/test_fast.py compares them over each kind; no
snapshot holds a float, which orjson would write as a number and `plain` as a string).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Hashable
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

_OPTIONS = orjson.OPT_UTC_Z


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


def _default(value: Any) -> Any:
    """What orjson does not write itself, as `plain` spells it."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a named tuple: an object
        return value._asdict()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError


def dumps(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON, the same text as `json.dumps(plain(value))` with
    Starlette's settings (compact separators, no ASCII escaping)."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError:  # something orjson cannot take (a non-string key, a huge integer)
        return json.dumps(
            plain(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")


class Encoded:
    """The JSON of answers that callers share while they stand (a published quote, a kept
    search's tuple): written once per answer object, then the same bytes while `key` still
    has that very object. At most `size` keys, the oldest dropped first, so no stream of
    distinct questions can grow it. For one event loop's use (no lock)."""

    __slots__ = ("_kept", "_size")

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._kept: dict[Hashable, tuple[object, bytes]] = {}

    def dumps(self, key: Hashable, value: object) -> bytes:
        """`dumps(value)`, written again only if `key` last had another object."""
        kept = self._kept.get(key)
        if kept is not None and kept[0] is value:
            return kept[1]
        content = dumps(value)
        if kept is None and len(self._kept) >= self._size:
            del self._kept[next(iter(self._kept))]
        self._kept[key] = (value, content)
        return content


def iso(moment: datetime) -> str:
    """An aware datetime as ISO 8601 with a `Z` for UTC."""
    return moment.isoformat().replace("+00:00", "Z")
