"""A reference encoder and schema-guided rewrites of wire JSON, written independently of the codec.

The reference encoder spells a message the way the Live API does (lowerCamelCase keys, absent
fields omitted, standard padded base64, int64 as decimal strings, durations as ``"9.5s"``), from the
attrs field types alone, so the codec is checked against a second implementation rather than
against itself. :func:`rewrite` walks wire JSON alongside the message classes and lets a test
respell keys (snake_case, at class levels only: free-form JSON inside is data and must be left
alone), bytes (URL-safe, unpadded) and int64 values (numbers) the ways real peers do.
"""

from __future__ import annotations

import base64
import typing
from collections.abc import Callable
from typing import Any

import attrs
import orjson

from livemesh.wire import messages as m
from livemesh.wire.fields import wire_fields
from tests.wire.strategies import duration_text


def camel(name: str) -> str:
    """``turn_complete`` -> ``turnComplete`` (the protobuf JSON name of a field)."""
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def field_types(cls: type) -> dict[str, Any]:
    """Python field name -> its type (Optional removed), ``extra`` left out."""
    return {f.name: f.type for f in wire_fields(cls)}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def canonical(value: Any) -> bytes:
    """Type-exact comparison key for JSON values (``True != 1``, key order ignored)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _strip_optional(tp: Any) -> Any:
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:
        return next(arg for arg in args if arg is not type(None))
    return tp


def to_wire(obj: Any) -> dict[str, Any]:
    """The reference JSON (as Python values) of an attrs message instance (``extra`` merged in)."""
    out: dict[str, Any] = {}
    types = field_types(type(obj))
    for field in attrs.fields(type(obj)):
        if field.name == m.EXTRA:
            continue
        value = getattr(obj, field.name)
        if value is None or (field.default is not attrs.NOTHING and value == field.default):
            continue
        out[camel(field.name)] = _value_to_wire(value, _strip_optional(types[field.name]))
    extra = getattr(obj, m.EXTRA, None)
    return _merge(out, extra) if extra else out


def _value_to_wire(value: Any, tp: Any) -> Any:
    if tp is m.Int64:
        return str(value)
    if tp is m.Duration:
        return duration_text(round(value * 1e9))
    if tp is bytes:
        return base64.b64encode(value).decode("ascii")
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        return [_value_to_wire(v, item) for v in value]
    if isinstance(tp, type) and attrs.has(tp):
        return to_wire(value)
    return value  # bool, int, float, str, free-form JSON


Rewrite = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def rewrite(
    data: dict[str, Any],
    cls: type,
    *,
    key: Callable[[str], str] = _same,
    bytes_value: Rewrite = _same,
    int64_value: Rewrite = _same,
) -> dict[str, Any]:
    """A copy of wire JSON ``data`` (of class ``cls``) with keys/bytes/int64 values respelled.

    ``key`` gets the camelCase key of every field of every message class (never keys inside
    free-form JSON); ``bytes_value`` every base64 string; ``int64_value`` every int64 string.
    """
    by_camel = {camel(name): (name, _strip_optional(tp)) for name, tp in field_types(cls).items()}
    out: dict[str, Any] = {}
    for wire_key, value in data.items():
        if wire_key not in by_camel:
            out[wire_key] = value  # a member no class models: data, kept verbatim
            continue
        _name, tp = by_camel[wire_key]
        out[key(wire_key)] = _rewrite_value(value, tp, key, bytes_value, int64_value)
    return out


def _rewrite_value(
    value: Any, tp: Any, key: Callable[[str], str], bytes_value: Rewrite, int64_value: Rewrite
) -> Any:
    if tp is bytes:
        return bytes_value(value)
    if tp is m.Int64:
        return int64_value(value)
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        return [_rewrite_value(v, item, key, bytes_value, int64_value) for v in value]
    if isinstance(tp, type) and attrs.has(tp):
        return rewrite(value, tp, key=key, bytes_value=bytes_value, int64_value=int64_value)
    return value


def snake(key: str) -> str:
    """``turnComplete`` -> ``turn_complete``."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def leaves(data: Any, cls: type, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], Any]]:
    """Every typed leaf of wire JSON as ``(path, field type)``, free-form JSON counting as one leaf.

    Lists and class-level objects are reported too (their own type can be wrong), then descended.
    """
    found: list[tuple[tuple[str | int, ...], Any]] = []
    by_camel = {camel(name): _strip_optional(tp) for name, tp in field_types(cls).items()}
    for wire_key, value in data.items():
        if wire_key in by_camel:  # unknown members are data: any value is valid there
            found.extend(_leaves_of(value, by_camel[wire_key], (*path, wire_key)))
    return found


def _leaves_of(value: Any, tp: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], Any]]:
    found: list[tuple[tuple[str | int, ...], Any]] = [(path, tp)]
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        for index, v in enumerate(value):
            found.extend(_leaves_of(v, item, (*path, index)))
    elif isinstance(tp, type) and attrs.has(tp):
        found.extend(leaves(value, tp, path))
    return found


def replace_at(data: Any, path: tuple[str | int, ...], new: Any) -> Any:
    """A copy of nested JSON ``data`` with the value at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, *rest = path
    if isinstance(data, list):
        copy_list = list(data)
        copy_list[typing.cast(int, head)] = replace_at(data[typing.cast(int, head)], tuple(rest), new)
        return copy_list
    copy_dict = dict(data)
    copy_dict[typing.cast(str, head)] = replace_at(data[head], tuple(rest), new)
    return copy_dict
