"""OpenAPI response schemas made from the engine's own snapshot types.

Routes answer with `plain()` JSON; their `response_model` is only documentation, built here by
walking each snapshot's type hints (Decimal as a decimal string, datetime as an ISO 8601 time,
an enum as its values, a nested snapshot as its own schema), so the document cannot drift from
the types it describes. The fuzz test checks every answer against it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

DecimalString = Annotated[
    str, Field(description="a decimal number as a string", examples=["150.00"])
]


class Strict(BaseModel):
    """Base of the request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Snapshot(BaseModel):
    """Base of the generated schemas."""

    model_config = ConfigDict(frozen=True)


def _fields(cls: type) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return list(cls._fields)  # type: ignore[attr-defined]  # a NamedTuple


def _is_snapshot(value: Any) -> bool:
    return isinstance(value, type) and (
        dataclasses.is_dataclass(value) or (issubclass(value, tuple) and hasattr(value, "_fields"))
    )


def _convert(hint: Any) -> Any:
    supertype = getattr(hint, "__supertype__", None)  # a NewType such as AccountId
    if supertype is not None:
        return _convert(supertype)
    if hint is Decimal:
        return DecimalString
    if hint in (str, int, bool, datetime, type(None)):
        return hint
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if _is_snapshot(hint):
        return schema(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return Union[tuple(_convert(a) for a in args)]  # noqa: UP007  # built at run time
    if origin in (tuple, list, frozenset, set):
        return list[_convert(args[0])]  # type: ignore[misc]
    if origin is dict:
        return dict[_convert(args[0]), _convert(args[1])]  # type: ignore[misc]
    return Any


@functools.cache
def schema(cls: type) -> type[BaseModel]:
    """The response schema of a snapshot class (a dataclass or a NamedTuple)."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {name: (_convert(hints[name]), ...) for name in _fields(cls)}
    model: type[BaseModel] = create_model(
        cls.__name__, __base__=Snapshot, __doc__=cls.__doc__, **fields
    )
    return model


def many(cls: type) -> Any:
    """The response schema of a list of `cls` snapshots."""
    return list[schema(cls)]  # type: ignore[misc]
