"""What each message class carries on the wire: its fields' JSON names, types and enum values.

One table, derived from the attrs classes once, that the converter, the strict key check on
user settings (:func:`unknown_keys`), the walk over unknown members (:func:`unknown_fields`) and
the test strategies all read, so they cannot disagree about a field's name or type.
"""

from __future__ import annotations

import difflib
import functools
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from livemesh.wire import messages as m

__all__ = [
    "UnknownKey",
    "WireField",
    "json_name",
    "snake_name",
    "unknown_fields",
    "unknown_keys",
    "wire_fields",
]


def json_name(name: str) -> str:
    """``turn_complete`` -> ``turnComplete`` (the protobuf JSON name of a field).

    Args:
        name: A field's Python (snake_case) name.

    Returns:
        Its lowerCamelCase JSON name.
    """
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def snake_name(key: str) -> str:
    """``turnComplete`` -> ``turn_complete`` (keys already in snake_case are unchanged).

    Args:
        key: A JSON key in either spelling.

    Returns:
        Its snake_case spelling.
    """
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:
        return next(arg for arg in args if arg is not type(None)), True
    return tp, False


@attrs.frozen
class WireField:
    """One field of a message class, as the wire sees it."""

    name: str
    """The Python name (``turn_complete``)."""
    json_name: str
    """The JSON name (``turnComplete``)."""
    type: Any
    """The resolved type with ``Optional`` removed (``bool``, ``list[Part]``, ``JSONObject`` ...)."""
    enum: type | None
    """The constants class of an enum-valued field (:class:`~livemesh.wire.messages.Modality` ...)."""

    @property
    def item_type(self) -> Any:
        """The element type of a list field, else the field's type."""
        if typing.get_origin(self.type) is list:
            return typing.get_args(self.type)[0]
        return self.type

    @property
    def message_class(self) -> type | None:
        """The message class this field holds (directly or in a list), if any."""
        item = self.item_type
        return item if isinstance(item, type) and attrs.has(item) else None


@functools.cache
def wire_fields(cls: type) -> tuple[WireField, ...]:
    """The wire fields of a message class, in declaration order (its ``extra`` left out).

    Args:
        cls: A message class of :mod:`livemesh.wire` (``wire.Part``, ``wire.Setup`` ...).

    Returns:
        One :class:`WireField` per field.
    """
    hints = typing.get_type_hints(cls)
    out = []
    for field in attrs.fields(cls):
        if field.name == m.EXTRA:
            continue
        tp, _ = _unwrap_optional(hints[field.name])
        out.append(WireField(field.name, json_name(field.name), tp, m.enum_of(field)))
    return tuple(out)


@functools.cache
def _by_key(cls: type) -> dict[str, WireField]:
    table: dict[str, WireField] = {}
    for field in wire_fields(cls):
        table[field.json_name] = field
        table[field.name] = field
    return table


def field_for_key(cls: type, key: str) -> WireField | None:
    """The field a JSON key names, in either spelling (``turnComplete`` or ``turn_complete``).

    Args:
        cls: A message class.
        key: A JSON key.

    Returns:
        The field, or ``None`` if no field of ``cls`` has that name.
    """
    return _by_key(cls).get(key)


# ----------------------------------------------------------------------------- unknown members


def unknown_fields(message: object) -> list[tuple[str, Any]]:
    """Every JSON member a decoded message carried that livemesh does not model, with its path.

    ``[("serverContent.modelTurn.parts[0].newField", {...})]``: fields newer than livemesh, kept
    (in each object's ``extra``) instead of thrown away. Free-form JSON (function args, schemas)
    is data, not fields, and is not searched.

    Args:
        message: A decoded message (or any message object).

    Returns:
        ``(path, value)`` pairs, outer objects first; empty when livemesh knew every member.
    """
    found: list[tuple[str, Any]] = []
    _walk_unknown(message, "", found)
    return found


@functools.cache
def _message_fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(Python name, JSON name) of the fields of ``cls`` that hold message objects."""
    return tuple((f.name, f.json_name) for f in wire_fields(cls) if f.message_class is not None)


def _walk_unknown(obj: object, path: str, found: list[tuple[str, Any]]) -> None:
    extra = getattr(obj, m.EXTRA, None)
    if extra:
        found.extend((f"{path}.{key}" if path else key, value) for key, value in extra.items())
    cls: type = type(obj)
    for name, json_key in _message_fields(cls):
        value = getattr(obj, name)
        if value is None:
            continue
        where = f"{path}.{json_key}" if path else json_key
        if type(value) is list:
            for index, item in enumerate(value):
                _walk_unknown(item, f"{where}[{index}]", found)
        else:
            _walk_unknown(value, where, found)


@attrs.frozen
class UnknownKey:
    """A key of a user's setting that names no field (see :func:`unknown_keys`)."""

    path: str
    """Where it is, in the user's own spelling: ``generation_config.thinking_config``."""
    key: str
    suggestion: str | None
    """The closest field name, in the spelling the key used, if one is close."""

    def __str__(self) -> str:
        where = f"{self.path}.{self.key}" if self.path else self.key
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"unknown key {where!r}{hint}"


def unknown_keys(data: Mapping[str, Any], cls: type, path: str = "") -> list[UnknownKey]:
    """The keys of ``data`` (a JSON-like setting for ``cls``) that name no field, at any depth.

    Keys may be camelCase or snake_case. Free-form JSON (function args, schemas, labels) is not
    checked; values that already are message objects were checked when they were built.

    Args:
        data: The setting, as JSON-like Python values.
        cls: The message class it is for.
        path: Where ``data`` sits, prefixed to every reported path.

    Returns:
        One :class:`UnknownKey` per key that names no field, with the closest field name.
    """
    return list(_unknown_keys(data, cls, path))


def _unknown_keys(data: Mapping[str, Any], cls: type, path: str) -> Iterator[UnknownKey]:
    for key, value in data.items():
        key = str(key)
        field = field_for_key(cls, key)
        if field is None:
            yield UnknownKey(path, key, suggest(key, cls))
            continue
        inner = field.message_class
        if inner is None or value is None:
            continue
        where = f"{path}.{key}" if path else key
        if isinstance(value, Mapping):
            yield from _unknown_keys(value, inner, where)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    yield from _unknown_keys(item, inner, f"{where}[{index}]")


def suggest(key: str, cls: type) -> str | None:
    """The field name of ``cls`` closest to ``key`` (in ``key``'s spelling), or ``None``.

    Args:
        key: A key that names no field.
        cls: The message class it was meant for.

    Returns:
        The closest field name in camelCase if ``key`` has capitals, else in snake_case.
    """
    camel = any(c.isupper() for c in key)
    names = [f.json_name if camel else f.name for f in wire_fields(cls)]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return close[0]
    # A misspelt word in a long name ("thinking_levle") scores low against the whole list; compare
    # snake forms too, so "thinkingLevle" finds "thinkingLevel".
    by_snake = {f.name: (f.json_name if camel else f.name) for f in wire_fields(cls)}
    close = difflib.get_close_matches(snake_name(key), list(by_snake), n=1, cutoff=0.6)
    return by_snake[close[0]] if close else None
