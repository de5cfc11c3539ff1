"""Plain JSON values for frozen dataclasses of simple fields (the domain commands, the journal's
facts): each becomes an object with its class's name under "type" and each field, enums by
value and tuples as lists; reading one back checks every field's type."""

from __future__ import annotations

import enum
import operator
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, Union

from engine.errors import ValidationError


class Codec:
    """Encodes and decodes the classes of `registry` (name -> class); `what` names them in
    errors ("command", "fact")."""

    def __init__(self, registry: dict[str, type[Any]], what: str) -> None:
        self.registry = registry
        self.what = what
        self._hints: dict[type, dict[str, Any]] = {}
        self._readers: dict[type, tuple[Callable[[Any], Any], ...]] = {}
        self._names: dict[type, tuple[str, ...]] = {
            kind: tuple(item.name for item in fields(kind)) for kind in registry.values()
        }
        self._rows: dict[type, Callable[[Any], list[Any]]] = {}
        self._defaults: dict[type, tuple[Any, ...]] = {
            kind: tuple(item.default for item in fields(kind) if item.default is not MISSING)
            for kind in registry.values()
        }
        """Each kind's trailing fields' defaults: a row written before they were added lacks
        them and reads as if it had them at their defaults."""
        self._enums: dict[type, tuple[tuple[int, dict[Any, Any]], ...] | None] = {}

    def encode(self, value: Any) -> dict[str, Any]:
        """`value` as plain JSON values."""
        plain: dict[str, Any] = {"type": type(value).__name__}
        for item in fields(value):
            plain[item.name] = _plain(getattr(value, item.name))
        return plain

    def decode(self, plain: Any) -> Any:
        """The value `encode` wrote; `ValidationError` if `plain` is not one."""
        if not isinstance(plain, dict):
            raise ValidationError(self.what, "must be an object", plain)
        name = plain.get("type")
        kind = self.registry.get(name) if isinstance(name, str) else None
        if kind is None:
            choices = ", ".join(self.registry)
            raise ValidationError("type", f"must be one of {choices}", name)
        hints = self._type_hints(kind)
        names = self._names[kind]
        extra = set(plain) - set(names) - {"type"}
        if extra:
            raise ValidationError(self.what, f"has fields {kind.__name__} does not", sorted(extra))
        values = {}
        for field_name in names:
            if field_name not in plain:
                raise ValidationError(field_name, f"is missing from a {kind.__name__}", plain)
            values[field_name] = _typed(hints[field_name], plain[field_name], field_name)
        return kind(**values)

    def _type_hints(self, kind: type) -> dict[str, Any]:
        hints = self._hints.get(kind)
        if hints is None:
            hints = self._hints[kind] = typing.get_type_hints(kind)
        return hints

    def encode_row(self, value: Any) -> list[Any]:
        """`value` as a compact JSON array: its class's name, then its fields in order."""
        kind = type(value)
        row = self._rows.get(kind)
        if row is None:
            row = self._rows[kind] = self._row_maker(kind)
        return row(value)

    def _enum_fields(self, kind: type) -> tuple[tuple[int, dict[Any, Any]], ...] | None:
        """For a class whose fields JSON reads as they are but for string enums (read by
        value), each enum field's position and its members by value; None for another class.
        The journal's replay reads millions of facts: a reader per field of each was a fifth
        of a recovery's time."""
        hints = self._type_hints(kind)
        if not all(_simple(hint) for hint in hints.values()):
            return None
        found = []
        for position, field_name in enumerate(self._names[kind]):
            hint = hints[field_name]
            options = typing.get_args(hint) or (hint,)
            for option in options:
                if isinstance(option, type) and issubclass(option, enum.StrEnum):
                    found.append((position, {member.value: member for member in option}))
        return tuple(found)

    def _row_maker(self, kind: type) -> Callable[[Any], list[Any]]:
        """How a value of `kind` becomes a row, made once per class: a class whose fields are
        all text, numbers and string enums (JSON writes a string enum as its value) needs no
        field converted, which the journal's writer, doing it for every fact, feels."""
        name, names = kind.__name__, self._names[kind]
        if all(_simple(hint) for hint in self._type_hints(kind).values()):
            get = operator.attrgetter(*names)
            if len(names) == 1:
                return lambda value: [name, get(value)]
            return lambda value: [name, *get(value)]
        return lambda value: [name, *(_plain(getattr(value, n)) for n in names)]

    def decode_row(self, row: Any) -> Any:
        """The value `encode_row` wrote; `ValidationError` if `row` is not one."""
        if not isinstance(row, list) or not row:
            raise ValidationError(self.what, "must be a non-empty list", row)
        name = row[0]
        kind = self.registry.get(name) if isinstance(name, str) else None
        if kind is None:
            raise ValidationError("type", f"must be one of {', '.join(self.registry)}", name)
        if kind not in self._enums:
            self._enums[kind] = self._enum_fields(kind)
        missing = len(self._names[kind]) + 1 - len(row)
        if 0 < missing <= len(self._defaults[kind]):
            row = [*row, *self._defaults[kind][-missing:]]
        enums = self._enums[kind]
        if enums is not None:  # every field text, a number or a string enum: only enums to read
            values = row[1:]
            if len(values) != len(self._names[kind]):
                raise ValidationError(self.what, f"must have the fields of {name}", row)
            try:
                for position, members in enums:
                    value = values[position]
                    if value is not None:
                        values[position] = members[value]
            except (KeyError, TypeError):
                raise ValidationError(
                    self.what, f"has a field {name} does not allow", row
                ) from None
            return kind(*values)
        readers = self._readers.get(kind)
        if readers is None:
            hints = self._type_hints(kind)
            readers = self._readers[kind] = tuple(
                _reader(hints[name], name) for name in self._names[kind]
            )
        if len(row) != len(readers) + 1:
            raise ValidationError(self.what, f"must have the {len(readers)} fields of {name}", row)
        return kind(*[read(value) for read, value in zip(readers, row[1:], strict=True)])


def _simple(hint: Any) -> bool:
    """True for a field JSON writes as it is: text, a whole number, a flag, a string enum,
    optional or not."""
    hint = getattr(hint, "__supertype__", hint)
    if typing.get_origin(hint) in (Union, types.UnionType):
        return all(_simple(option) for option in typing.get_args(hint))
    return hint in (str, int, bool, type(None)) or (
        isinstance(hint, type) and issubclass(hint, enum.StrEnum)
    )


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def _reader(hint: Any, name: str) -> Callable[[Any], Any]:
    """A function that reads a value as a field of type `hint` (as `_typed` does), made once per
    field: the journal's replay reads millions."""
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:
        return _reader(supertype, name)
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        if len(options) == 1 and len(typing.get_args(hint)) == 2:
            inner = _reader(options[0], name)
            return lambda value: None if value is None else inner(value)
    if origin in (Union, types.UnionType) or origin is tuple:
        return lambda value: _typed(hint, value, name)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        members = {member.value: member for member in hint}

        def read_enum(value: Any) -> Any:
            try:
                return members[value]
            except (KeyError, TypeError):
                raise ValidationError(name, f"must be a {hint.__name__}", value) from None

        return read_enum
    if hint is bool or hint is int or hint is str:

        def read_plain(value: Any) -> Any:
            if type(value) is not hint:
                raise ValidationError(name, f"must be a {hint.__name__}", value)
            return value

        return read_plain
    raise TypeError(f"no field of type {hint!r} is encoded")  # pragma: no cover


def _typed(hint: Any, value: Any, name: str) -> Any:
    """`value` read as a field of type `hint` (str, int, bool, enums, NewTypes of them, optional
    ones and tuples of them)."""
    supertype = getattr(hint, "__supertype__", None)  # a NewType: its base type
    if supertype is not None:
        return _typed(supertype, value, name)
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = (option for option in options if option is not type(None))
        return _typed(inner, value, name)
    if origin is tuple:
        if not isinstance(value, list):
            raise ValidationError(name, "must be a list", value)
        (item, _ellipsis) = typing.get_args(hint)
        return tuple(_typed(item, v, name) for v in value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise ValidationError(name, f"must be a {hint.__name__}", value) from None
    if hint is bool or hint is int or hint is str:
        if type(value) is not hint:
            raise ValidationError(name, f"must be a {hint.__name__}", value)
        return value
    raise TypeError(f"no field of type {hint!r} is encoded")  # pragma: no cover
