"""Hypothesis strategies for every wire message class, derived from the classes themselves.

Each field's strategy comes from its type in :func:`livemesh.wire.wire_fields` (so a field added
to a message class is generated without touching this module; ``test_strategies_cover_every_field``
fails if a new field *type* has no strategy), with explicit scalar strategies (hypothesis's
``from_type`` would ignore bounds, and orjson rejects ints beyond 64 bits):

* ``int`` fields are int32, :data:`~livemesh.wire.messages.Int64` fields the full int64 range;
* floats are finite: NaN and infinities cannot travel through orjson (it writes ``null``), and the
  protobuf JSON spellings (``"NaN"``, ``"Infinity"``) are tested separately, decode-only;
* durations are whole nanoseconds (``n / 1e9`` seconds, ``0 <= n <= 1e15``): exactly the values a
  protobuf Duration holds, so ``format_duration``/``parse_duration`` must round-trip them exactly;
* free-form JSON (function args, responses, schemas) is a bounded recursive JSON object whose keys
  deliberately include snake_case and camelCase spellings, which decoders must leave untouched;
* enum-valued fields (their constants class in the field's metadata) draw the known values, and,
  unless ``known_enums``, arbitrary text too (livemesh keeps enums as ``str`` so tomorrow's values
  decode today);
* with ``unknown_members``, any object may carry members no class models (``extra``), which
  decoders must keep and encoders must write back.

:class:`MessageStrategies` holds one configuration; :data:`WIRE` is everything the protocol can
carry. A caller matching another implementation (the official SDK) builds its own with
``known_enums=True``, ``unknown_members=False`` and ``overrides`` for fields it types differently.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

import attrs
from hypothesis import strategies as st

from livemesh.wire import messages as m
from livemesh.wire.fields import WireField, snake_name, wire_fields

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
MAX_DURATION_NANOS = 10**15
"""About 11.6 days; below 2**22 s, where a float still resolves nanoseconds exactly."""
DURATION_NANOS = st.integers(0, MAX_DURATION_NANOS)
DURATIONS = DURATION_NANOS.map(lambda n: n / 1e9)
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
KEYS = st.one_of(
    st.sampled_from(["snake_case_key", "camelKey", "_lead", "trail_", "a", "turn_complete", "mimeType"]),
    TEXT,
)
BYTES = st.binary(max_size=40)

JSON_SCALARS = st.one_of(st.none(), st.booleans(), INT64, FLOATS, TEXT)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=3)),
    max_leaves=8,
)
JSON_OBJECTS = st.dictionaries(KEYS, JSON_VALUES, max_size=4)
"""Free-form JSON objects (function args and responses): passed through untouched."""

NON_NULL_JSON = JSON_VALUES.filter(lambda v: v is not None)

UNKNOWN_KEYS = st.from_regex(r"zz[A-Za-z0-9_]{0,8}", fullmatch=True)
"""Member names no class has (every field name starts otherwise), in any spelling."""
UNKNOWN_MEMBERS = st.dictionaries(UNKNOWN_KEYS, JSON_VALUES, min_size=1, max_size=2)


def duration_text(nanos: int) -> str:
    """A reference spelling of a Duration, written from integer nanoseconds (no float involved)."""
    seconds, frac = divmod(nanos, 10**9)
    if not frac:
        return f"{seconds}s"
    return f"{seconds}.{frac:09d}".rstrip("0") + "s"


FieldKey = tuple[type, str]


class MessageStrategies:
    """Strategies for message classes under one configuration (see the module docstring).

    Args:
        known_enums: enum fields draw only the values their constants class knows.
        unknown_members: objects may carry members no class models (in ``extra``).
        overrides: ``(class, field name) -> strategy`` for the field's (non-None) value.
        exclude: ``(class, field name)`` pairs never set.
    """

    def __init__(
        self,
        *,
        known_enums: bool = False,
        unknown_members: bool = False,
        overrides: Mapping[FieldKey, st.SearchStrategy[Any]] | None = None,
        exclude: frozenset[FieldKey] = frozenset(),
    ) -> None:
        self.known_enums = known_enums
        self.unknown_members = unknown_members
        self.overrides = dict(overrides or {})
        self.exclude = exclude
        self._cache: dict[type, st.SearchStrategy[Any]] = {}

    # ------------------------------------------------------------------ fields

    def for_type(self, tp: Any) -> st.SearchStrategy[Any]:
        """The strategy for one (non-Optional) field type; raises ``TypeError`` for an unknown one."""
        if tp is m.Int64:
            return INT64
        if tp is m.Duration:
            return DURATIONS
        if tp is m.NullValue:
            return st.just("NULL_VALUE")
        if tp == m.JSONObject:
            return JSON_OBJECTS
        if tp == m.StringMap:
            return st.dictionaries(TEXT, TEXT, max_size=3)
        if tp is Any:
            return NON_NULL_JSON
        if tp is bool:
            return st.booleans()
        if tp is int:
            return INT32
        if tp is float:
            return FLOATS
        if tp is str:
            return TEXT
        if tp is bytes:
            return BYTES
        if typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            return st.lists(self.for_type(item), max_size=3)
        if isinstance(tp, type) and attrs.has(tp):
            return st.deferred(lambda: self.messages(tp))
        raise TypeError(f"no strategy for field type {tp!r}")

    def value(self, cls: type, field: WireField) -> st.SearchStrategy[Any]:
        """A present (non-None) value of one field, honouring enums and overrides."""
        override = self.overrides.get((cls, field.name))
        if override is not None:
            return override
        if field.enum is not None:
            known = st.sampled_from(m.known_values(field.enum))
            one = known if self.known_enums else st.one_of(known, TEXT)
            return st.lists(one, max_size=3) if typing.get_origin(field.type) is list else one
        return self.for_type(field.type)

    def for_field(self, cls: type, field: WireField) -> st.SearchStrategy[Any]:
        """The field's value or None (absent); required fields (``Setup.model``, ``Blob.data``)
        are always present."""
        if (cls, field.name) in self.exclude:
            return st.none()
        value = self.value(cls, field)
        default = attrs.fields_dict(cls)[field.name].default
        return value if default is not None else st.one_of(st.none(), value)

    # ------------------------------------------------------------------ messages

    def messages(self, cls: type) -> st.SearchStrategy[Any]:
        """Instances of any message class; the two top-level messages obey their oneof rules."""
        found = self._cache.get(cls)
        if found is None:
            if cls is m.ClientMessage:
                found = self.client_messages()
            elif cls is m.ServerMessage:
                found = self.server_messages()
            else:
                found = self._plain(cls)
            self._cache[cls] = found
        return found

    def _extra(self) -> st.SearchStrategy[Any]:
        if not self.unknown_members:
            return st.none()
        return st.one_of(st.none(), st.none(), UNKNOWN_MEMBERS)

    def _plain(self, cls: type) -> st.SearchStrategy[Any]:
        kwargs = {f.name: self.for_field(cls, f) for f in wire_fields(cls)}
        return st.builds(cls, **kwargs, extra=self._extra())

    def _one_field(self, cls: type, name: str, **more: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        (field,) = (f for f in wire_fields(cls) if f.name == name)
        return st.builds(cls, **{name: self.value(cls, field)}, **more, extra=self._extra())

    def client_messages(self) -> st.SearchStrategy[m.ClientMessage]:
        """Client messages with exactly one oneof field set (as every real client frame has)."""
        return st.one_of(*(self._one_field(m.ClientMessage, name) for name in m.CLIENT_ONEOF))

    def server_messages(self) -> st.SearchStrategy[m.ServerMessage]:
        """Server messages with at most one oneof field and, independently, optional usage metadata."""
        usage = st.one_of(st.none(), self.messages(m.UsageMetadata))
        one_of = [self._one_field(m.ServerMessage, name, usage_metadata=usage) for name in m.SERVER_ONEOF]
        return st.one_of(*one_of, st.builds(m.ServerMessage, usage_metadata=usage, extra=self._extra()))


WIRE = MessageStrategies(unknown_members=True)
"""Anything the protocol can carry: unknown enum values and unknown members included."""

KNOWN = MessageStrategies(known_enums=True)
"""Only what livemesh knows: enum values it has constants for, no unknown members."""


def messages(cls: type) -> st.SearchStrategy[Any]:
    """``WIRE.messages(cls)``."""
    return WIRE.messages(cls)


def client_messages() -> st.SearchStrategy[m.ClientMessage]:
    return WIRE.client_messages()


def server_messages() -> st.SearchStrategy[m.ServerMessage]:
    return WIRE.server_messages()


MESSAGE_CLASSES: tuple[type, ...] = tuple(
    obj
    for obj in vars(m).values()
    if isinstance(obj, type) and attrs.has(obj) and obj.__module__ == m.__name__
)
"""Every attrs class in the messages module (the converter registers the same set)."""

FIELD_KEYS: tuple[str, ...] = tuple(
    sorted(
        {f.name for cls in MESSAGE_CLASSES for f in wire_fields(cls)}
        | {f.json_name for cls in MESSAGE_CLASSES for f in wire_fields(cls)}
    )
)
"""Every field name of every class in both spellings (keys that reach the class hooks)."""

assert not any(snake_name(k).startswith("zz") for k in FIELD_KEYS)  # UNKNOWN_KEYS stay unknown
