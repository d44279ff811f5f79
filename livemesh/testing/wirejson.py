"""A reference writer of wire JSON, independent of the codec, in the spellings real peers use.

:func:`to_json` spells a message the way the Live API's JSON mapping does, from the attrs field
types alone: lowerCamelCase keys (or snake_case, which the protobuf JSON parser also accepts),
absent fields omitted, bytes as standard or URL-safe base64, int64 as a decimal string (or a
number), durations as ``"9.5s"``. It is a second implementation on purpose: a test that decodes
what it writes checks :mod:`livemesh.wire.codec` against something other than itself.
"""

from __future__ import annotations

import base64 as b64
import typing
from typing import Any, Literal

import attrs

from livemesh.testing._fields import fields_of
from livemesh.wire import messages as m

__all__ = ["Base64Style", "Int64Style", "KeyStyle", "duration_text", "to_json"]

KeyStyle = Literal["camel", "snake"]
"""``"camel"``: ``turnComplete`` (what the service writes); ``"snake"``: ``turn_complete``."""

Base64Style = Literal["standard", "urlsafe"]
"""``"standard"``: ``+/`` (what the service writes); ``"urlsafe"``: ``-_`` (what google-genai sends)."""

Int64Style = Literal["string", "number"]
"""``"string"``: ``"42"`` (protobuf's printer); ``"number"``: ``42`` (parsers accept both)."""


def duration_text(nanos: int) -> str:
    """A protobuf Duration's JSON text from whole nanoseconds, with no float involved.

    Args:
        nanos: The duration in nanoseconds.

    Returns:
        The shortest exact spelling: ``"50s"``, ``"9.5s"``, ``"0.000000001s"``.
    """
    sign = "-" if nanos < 0 else ""
    seconds, frac = divmod(abs(nanos), 10**9)
    if not frac:
        return f"{sign}{seconds}s"
    return f"{sign}{seconds}.{frac:09d}".rstrip("0") + "s"


def to_json(
    message: Any,
    *,
    keys: KeyStyle = "camel",
    base64: Base64Style = "standard",
    int64: Int64Style = "string",
) -> dict[str, Any]:
    """A message as the JSON object (Python values) a peer would send for it.

    Free-form JSON (function arguments, schemas) is data and is copied as it is, whatever
    ``keys`` says; so are the members a message keeps in its ``extra`` field, which are merged
    into its object.

    Args:
        message: An instance of any class of :mod:`livemesh.wire.messages`.
        keys: How to spell field names.
        base64: How to spell bytes.
        int64: How to write int64 fields.

    Returns:
        A JSON object: ``orjson.dumps`` or ``json.dumps`` of it is a frame.

    Raises:
        TypeError: ``message`` is not a message class instance.
    """
    if not attrs.has(type(message)):
        raise TypeError(f"to_json takes a message class instance, not {type(message).__name__}")
    return _Writer(keys, base64, int64).message(message)


class _Writer:
    def __init__(self, keys: KeyStyle, base64: Base64Style, int64: Int64Style) -> None:
        self.snake = keys == "snake"
        self.urlsafe = base64 == "urlsafe"
        self.int64_number = int64 == "number"

    def message(self, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        extra: dict[str, Any] | None = None
        cls: type = type(obj)
        for field in fields_of(cls):
            value = getattr(obj, field.name)
            if field.extra:
                extra = value
                continue
            if value is None or (field.default is not None and value == field.default):
                continue  # absent, or the class's non-None default, which protobuf omits too
            key = field.name if self.snake else field.json_name
            out[key] = self.value(value, field.type)
        return _merge(out, extra) if extra else out

    def value(self, value: Any, tp: Any) -> Any:
        if tp is m.Int64:
            return int(value) if self.int64_number else str(value)
        if tp is m.Duration:
            return duration_text(round(value * 1e9))
        if tp is bytes:
            encode = b64.urlsafe_b64encode if self.urlsafe else b64.b64encode
            return encode(value).decode("ascii")
        if typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            return [self.value(v, item) for v in value]
        if isinstance(tp, type) and attrs.has(tp):
            return self.message(value)
        return value  # str, bool, int, float and free-form JSON travel as they are


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` merged into ``base``: objects key by key, any other value replacing."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out
