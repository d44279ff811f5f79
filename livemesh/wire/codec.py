"""The one converter between message classes and the Live API's JSON, and four entry points.

Built once at import and never changed (cattrs' own advice: make your own converter). Design
choices, all measured in ``bench/codec.py``:

* cattrs generates one structure and one unstructure function per class; JSON is orjson;
  base64 is pybase64 (SIMD), which is what makes audio messages cheap.
* Encoders write lowerCamelCase, omit absent (``None``) fields and write standard base64.
* Decoders accept lowerCamelCase and snake_case at every level (the protobuf JSON parser does,
  and the official SDK sends ``{"client_content": {"turnComplete": ...}}``), standard and
  URL-safe base64, int64 as string or number. A member no class models is kept verbatim in its
  object's ``extra`` (forward compatibility without loss): it costs nothing when absent, one
  small dict when present (``bench/codec.py`` measures both).
* Encoders merge each object's ``extra`` into its JSON, so a field newer than livemesh can be
  sent (see :func:`merge_json`).
* Decoders are strict about types (a string where a bool belongs is an error, not ``True``) and
  raise only :class:`~livemesh.errors.DecodeError`, whose reason names the cause.
"""

from __future__ import annotations

import binascii
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Final, TypeVar

import attrs
import cattrs
import orjson
import pybase64

from livemesh.errors import DecodeError, EncodeError
from livemesh.wire import messages as m
from livemesh.wire.fields import wire_fields

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "converter",
    "decode_client",
    "decode_server",
    "encode_client",
    "encode_server",
    "format_duration",
    "parse_duration",
]

DEFAULT_MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
"""Frames larger than this are refused before parsing (a bounded decoder)."""

T = TypeVar("T")


# ----------------------------------------------------------------------------- scalar hooks


def _type_error(expected: str, value: object) -> DecodeError:
    return DecodeError(f"expected {expected}, got {type(value).__name__} {value!r:.60}")


def _structure_str(value: Any, _: Any) -> str:
    if type(value) is str:
        return value
    raise _type_error("a string", value)


def _structure_bool(value: Any, _: Any) -> bool:
    if value is True or value is False:
        return bool(value)
    raise _type_error("a boolean", value)


_INT_MAX: Final = 2**63 - 1
_INT_MIN: Final = -(2**63)


_INT_RE: Final = re.compile(r"-?[0-9]{1,19}")


def _structure_int(value: Any, _: Any) -> int:
    # protobuf's JSON parser accepts int64 as a string or a number, int32 as a number;
    # we accept both everywhere (strictness here would only reject valid servers).
    if type(value) is int:
        result = value
    elif type(value) is str and _INT_RE.fullmatch(value):
        result = int(value)
    elif type(value) is float and value.is_integer():
        result = int(value)
    else:
        raise _type_error("an integer", value)
    if not _INT_MIN <= result <= _INT_MAX:
        raise DecodeError(f"integer out of int64 range: {result}")
    return result


def _structure_float(value: Any, _: Any) -> float:
    t = type(value)
    if t is float or t is int:
        return float(value)
    if t is str and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    raise _type_error("a number", value)


_URLSAFE_TO_STD: Final = str.maketrans("-_", "+/")


def _structure_bytes(value: Any, _: Any) -> bytes:
    # protobuf's JSON parser takes standard and URL-safe base64, padded or not; so do we.
    if type(value) is not str:
        raise _type_error("a base64 string", value)
    if "-" in value or "_" in value:
        value = value.translate(_URLSAFE_TO_STD)
    missing = -len(value) % 4
    if missing:
        value += "=" * missing
    try:
        return pybase64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"invalid base64: {exc}") from None


def _unstructure_bytes(value: bytes) -> str:
    return pybase64.b64encode_as_string(value)


def format_duration(seconds: float) -> str:
    """Seconds as a protobuf Duration JSON string: ``9.5 -> "9.5s"``, ``50 -> "50s"``."""
    if not math.isfinite(seconds):
        raise EncodeError(f"a duration must be finite, got {seconds!r}")
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


_DURATION_RE: Final = re.compile(r"^(-?\d+)(?:\.(\d{1,9}))?s$")


def parse_duration(text: str) -> float:
    """A protobuf Duration JSON string to seconds: ``"9.5s" -> 9.5``."""
    match = _DURATION_RE.fullmatch(text)  # not match(): "$" also matches before a final "\n"
    if match is None:
        raise DecodeError(f"invalid duration {text!r:.40} (expected e.g. '9.5s')")
    return float(text[:-1])


def _structure_duration(value: Any, _: Any) -> float:
    if type(value) is str:
        return parse_duration(value)
    raise _type_error("a duration string like '9.5s'", value)


def _unstructure_int64(value: int) -> str:
    if type(value) is not int:
        raise EncodeError(f"an int64 field needs an int, got {type(value).__name__}")
    return str(value)


def _structure_int64(value: Any, _: Any) -> int:
    return _structure_int(value, int)


def _structure_json_object(value: Any, _: Any) -> dict[str, Any]:
    if type(value) is dict:
        return value
    raise _type_error("a JSON object", value)


def _structure_string_map(value: Any, _: Any) -> dict[str, str]:
    if type(value) is not dict:
        raise _type_error("a JSON object of strings", value)
    for key, item in value.items():
        if type(item) is not str:
            raise _type_error("a string", item).at(key)
    return value


def _structure_null_value(value: Any, _: Any) -> str:
    # JSON null never reaches a hook (the class function turns it into "NULL_VALUE"); a string is
    # protobuf's other spelling of the enum, kept as is (forward compatible like every enum).
    return _structure_str(value, str)


def _structure_any(value: Any, _: Any) -> Any:
    return value


def _make_list_hook(conv: cattrs.Converter, item_type: Any) -> Callable[[Any, Any], list[Any]]:
    item_hook = conv.get_structure_hook(item_type)

    def structure_list(value: Any, _: Any) -> list[Any]:
        if type(value) is not list:
            raise _type_error("a list", value)
        out = []
        for index, item in enumerate(value):
            try:
                out.append(item_hook(item, item_type))
            except DecodeError as exc:
                raise exc.at(index) from None
        return out

    return structure_list


def _is_optional(tp: Any) -> bool:
    args = getattr(tp, "__args__", ())
    is_union = isinstance(tp, types.UnionType) or getattr(tp, "__origin__", None) is typing.Union
    return is_union and type(None) in args


def _make_optional_hook(conv: cattrs.Converter, tp: Any) -> Callable[[Any, Any], Any]:
    # cattrs' own Optional hook dispatches on every call; binding the inner hook once is ~3x faster.
    (inner,) = (arg for arg in tp.__args__ if arg is not type(None))
    inner_hook = conv.get_structure_hook(inner)

    def structure_optional(value: Any, _: Any) -> Any:
        return None if value is None else inner_hook(value, inner)

    return structure_optional


# ----------------------------------------------------------------------------- class hooks


_MESSAGE_CLASSES: Final[tuple[type, ...]] = tuple(
    obj
    for obj in vars(m).values()
    if isinstance(obj, type) and attrs.has(obj) and obj.__module__ == m.__name__
)


def _build_converter() -> cattrs.Converter:
    conv = cattrs.Converter(omit_if_default=True, detailed_validation=False)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bytes, _structure_bytes)
    conv.register_unstructure_hook(bytes, _unstructure_bytes)
    conv.register_structure_hook(m.Int64, _structure_int64)
    conv.register_unstructure_hook(m.Int64, _unstructure_int64)
    conv.register_structure_hook(m.Duration, _structure_duration)
    conv.register_unstructure_hook(m.Duration, format_duration)
    conv.register_structure_hook_func(lambda t: t == m.JSONObject, _structure_json_object)
    conv.register_structure_hook_func(lambda t: t == m.StringMap, _structure_string_map)
    conv.register_structure_hook(m.NullValue, _structure_null_value)
    conv.register_structure_hook_func(lambda t: t is Any, _structure_any)
    conv.register_structure_hook_factory(_is_optional, lambda t: _make_optional_hook(conv, t))
    conv.register_structure_hook_factory(
        lambda t: getattr(t, "__origin__", None) is list,
        lambda t: _make_list_hook(conv, t.__args__[0]),
    )
    conv.register_unstructure_hook_factory(
        lambda t: getattr(t, "__origin__", None) is list,
        lambda t: _make_list_unstructure_hook(conv, t.__args__[0]),
    )

    # Classes are registered leaves first, so each generated function can bind its children's.
    for cls in sorted(_MESSAGE_CLASSES, key=_depth):
        _register_class(conv, cls)
    return conv


def _depth(cls: type, _seen: frozenset[type] = frozenset()) -> int:
    depth = 0
    for field in wire_fields(cls):
        inner = field.message_class
        if inner is not None and inner not in _seen:
            depth = max(depth, 1 + _depth(inner, _seen | {cls}))
    return depth


_IDENTITY_TYPES: Final = (str, bool, int, float, Any, m.JSONObject, m.StringMap, m.NullValue)


def _register_class(conv: cattrs.Converter, cls: type) -> None:
    """Generate and register one structure and one unstructure function for ``cls``.

    cattrs' own generated functions cost about twice ours here (they dispatch Optional hooks at
    run time and compare fields to defaults with ``!=``); on a 100 ms audio frame that was the
    difference between 2.3x and 1.5x of bare orjson + base64 (bench/codec.py). Like cattrs, we
    generate straight-line code per class, and we keep cattrs as the registry of hooks.
    """
    attrs.resolve_types(cls)
    fields = wire_fields(cls)
    has_extra = any(f.name == m.EXTRA for f in attrs.fields(cls))
    defaults = [f.default for f in attrs.fields(cls) if f.name != m.EXTRA]
    name = cls.__name__
    globs: dict[str, Any] = {"_cl": cls, "_type_error": _type_error, "_DecodeError": DecodeError}

    # Structure: make the object with its defaults (the C-level default arguments of attrs'
    # __init__ are cheaper than passing every slot, and a Part has twenty), then walk only the
    # keys present (messages are sparse), find each key's field in a table holding both spellings
    # (camelCase and snake_case) and store the value through the slot's descriptor. A key that
    # names no field is kept, verbatim, in the object's ``extra`` (forward compatibility: a field
    # newer than livemesh stays reachable); a NullValue field turns JSON null into "NULL_VALUE"
    # (present, unlike other nulls).
    index: dict[str, int] = {}
    for i, f in enumerate(fields):
        index[f.json_name] = i
        index[f.name] = i
    nulls = [i for i, f in enumerate(fields) if f.type is m.NullValue]
    globs["_index"] = index.get
    globs["_hooks"] = tuple(conv.get_structure_hook(f.type) for f in fields)
    globs["_types"] = tuple(f.type for f in fields)
    globs["_set"] = tuple(vars(cls)[f.name].__set__ for f in fields)
    s_lines = [
        f"def structure_{name}(o, _=None):",
        "  if type(o) is not dict:",
        f"    raise _type_error('a JSON object for {name}', o)",
        "  r = _cl()",
        "  ex = None",
        "  for k, v in o.items():",
        "    i = _index(k)",
        "    if i is None:",
        "      if ex is None:",
        "        ex = {}",
        "      ex[k] = v",
        "    elif v is not None:",
        "      try:",
        "        _set[i](r, _hooks[i](v, _types[i]))",
        "      except _DecodeError as e:",  # zero-cost unless raised (3.11): the path for free
        "        raise e.at(k) from None",
    ]
    if nulls:
        globs["_nulls"] = frozenset(nulls)
        s_lines += ["    elif i in _nulls:", "      _set[i](r, 'NULL_VALUE')"]
    if has_extra:
        globs["_set_extra"] = vars(cls)[m.EXTRA].__set__
        s_lines += ["  if ex is not None:", "    _set_extra(r, ex)"]
    s_lines.append("  return r")

    u_lines = [f"def unstructure_{name}(obj):", "  res = {}"]
    for i, f in enumerate(fields):
        globs[f"d{i}"] = defaults[i]
        if f.type in _IDENTITY_TYPES or f.type == list[str]:
            value = "v"
        else:
            globs[f"uh{i}"] = conv.get_unstructure_hook(f.type)
            value = f"uh{i}(v)"
        # Absent is None; a non-None default (b"" for Blob.data) is omitted too, as protobuf does.
        present = "v is not None" if defaults[i] is None else f"v is not None and v != d{i}"
        u_lines.append(f"  v = obj.{f.name}")
        u_lines.append(f"  if {present}:")
        u_lines.append(f"    res[{f.json_name!r}] = {value}")
    if has_extra:
        # Members livemesh does not model, written verbatim (nested objects merged key by key).
        globs["_merge"] = merge_json
        u_lines += ["  v = obj.extra", "  if v:", "    return _merge(res, v)"]
    u_lines.append("  return res")

    namespace: dict[str, Any] = {}
    exec(compile("\n".join(s_lines), f"<livemesh structure {name}>", "exec"), globs, namespace)
    exec(compile("\n".join(u_lines), f"<livemesh unstructure {name}>", "exec"), globs, namespace)
    conv.register_structure_hook(cls, namespace[f"structure_{name}"])
    conv.register_unstructure_hook(cls, namespace[f"unstructure_{name}"])


def merge_json(base: dict[str, Any], extra: Any) -> dict[str, Any]:
    """``base`` with ``extra``'s members merged in: objects merged key by key (recursively), any
    other value of ``extra`` replacing ``base``'s. Neither argument is modified.

    Args:
        base: A JSON object (what livemesh writes for a message).
        extra: The members to merge (a message's ``extra``).

    Returns:
        A new JSON object.

    Raises:
        EncodeError: ``extra`` is not a JSON object.
    """
    if type(extra) is not dict:
        raise EncodeError(f"extra must be a JSON object, not {type(extra).__name__}")
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = merge_json(old, value) if type(old) is dict and type(value) is dict else value
    return out


def _make_list_unstructure_hook(conv: cattrs.Converter, item_type: Any) -> Callable[[Any], Any]:
    if item_type in _IDENTITY_TYPES:
        return list
    item_hook = conv.get_unstructure_hook(item_type)

    def unstructure_list(value: list[Any]) -> list[Any]:
        return [item_hook(item) for item in value]

    return unstructure_list


converter: Final = _build_converter()
"""The one converter. Use the four functions below rather than calling it directly."""

_unstructure_client = converter.get_unstructure_hook(m.ClientMessage)
_unstructure_server = converter.get_unstructure_hook(m.ServerMessage)
_structure_client = converter.get_structure_hook(m.ClientMessage)
_structure_server = converter.get_structure_hook(m.ServerMessage)


# ----------------------------------------------------------------------------- entry points


def encode_client(message: m.ClientMessage) -> bytes:
    """A client message as UTF-8 JSON bytes (send it as a text frame).

    Raises :class:`EncodeError` for values JSON cannot carry (e.g. a non-JSON object in a
    function response, an integer beyond 64 bits), before anything is sent.
    """
    return _dumps(_unstructure_client, message)


def encode_server(message: m.ServerMessage) -> bytes:
    """A server message as UTF-8 JSON bytes (the service sends binary frames of JSON)."""
    return _dumps(_unstructure_server, message)


def _dumps(hook: Callable[[Any], Any], message: Any) -> bytes:
    try:
        return orjson.dumps(hook(message))
    except (orjson.JSONEncodeError, TypeError, ValueError, AttributeError) as exc:
        raise EncodeError(f"cannot encode {type(message).__name__}: {exc}") from None


def _load(data: bytes | str, max_size: int) -> dict[str, Any]:
    # A str frame is measured in UTF-8 bytes, as the wire carried it (cheap for ASCII JSON).
    # bytes-like frames (the WebSocket engines may hand over a bytearray) are measured as they are
    size = len(data) if not isinstance(data, str) or data.isascii() else len(data.encode("utf-8", "replace"))
    if size > max_size:
        raise DecodeError(f"frame of {size} bytes exceeds the limit of {max_size}")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    if type(obj) is not dict:
        raise _type_error("a JSON object at the top level", obj)
    return obj


def _structure(hook: Callable[[Any, Any], T], obj: dict[str, Any], cls: type[T]) -> T:
    try:
        return hook(obj, cls)
    except DecodeError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise DecodeError(f"{type(exc).__name__}: {exc}") from None


def decode_client(data: bytes | str, *, max_size: int = DEFAULT_MAX_FRAME_BYTES) -> m.ClientMessage:
    """Parse one client frame; exactly one of setup/clientContent/realtimeInput/toolResponse/
    contextUpdate must be set, else :class:`DecodeError`."""
    message = _structure(_structure_client, _load(data, max_size), m.ClientMessage)
    count = sum(getattr(message, name) is not None for name in m.CLIENT_ONEOF)
    if count != 1:
        raise DecodeError(
            "client message must set exactly one of setup, clientContent, realtimeInput, "
            f"toolResponse, contextUpdate; it sets {count}"
        )
    return message


def decode_server(data: bytes | str, *, max_size: int = DEFAULT_MAX_FRAME_BYTES) -> m.ServerMessage:
    """Parse one server frame; at most one oneof field may be set (usageMetadata rides along)."""
    message = _structure(_structure_server, _load(data, max_size), m.ServerMessage)
    count = 0
    for name in m.SERVER_ONEOF:
        if getattr(message, name) is not None:
            count += 1
    if count > 1:
        raise DecodeError(f"server message sets {count} oneof fields; at most one is allowed")
    return message
