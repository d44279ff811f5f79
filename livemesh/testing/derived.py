"""Hypothesis strategies for every message class, derived from the classes' field types.

Each field's strategy comes from its type (read by :func:`livemesh.testing._fields.fields_of`),
so a field added to a message class is generated without touching this module; a field of a
*type* nothing here knows raises :class:`TypeError` when the strategy is built, not a silent gap.
Explicit strategies stand where deriving from the type would be wrong:

* ``int`` fields are int32 and :data:`~livemesh.wire.messages.Int64` fields int64
  (hypothesis's ``from_type`` would ignore the bounds, and JSON codecs reject wider integers);
* floats are finite (JSON has no NaN or infinity);
* durations are whole nanoseconds from 0 to about 11.6 days (``n / 1e9`` seconds): exactly the
  values a protobuf Duration holds;
* bytes are short binary strings (base64 on the wire);
* free-form JSON (function arguments and responses, schemas) is a small recursive JSON object
  whose keys include snake_case and camelCase spellings, which a decoder must leave untouched;
* enum-valued fields draw the values their constants class knows and, unless ``known_enums``,
  any other text too: the service may add a value tomorrow, and livemesh keeps enums as ``str``
  so that it decodes;
* the two top-level messages obey their oneof rule: a client message sets exactly one field,
  a server message at most one (``usageMetadata`` rides along).
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised by a test in a subprocess
    raise ImportError(
        "livemesh.testing's strategies need hypothesis: pip install 'livemesh[testing]'"
    ) from exc

from livemesh.testing._fields import Field, fields_of, known_values
from livemesh.wire import messages as m

__all__ = [
    "BYTES",
    "DURATIONS",
    "DURATION_NANOS",
    "FLOATS",
    "INT32",
    "INT64",
    "JSON_OBJECTS",
    "JSON_VALUES",
    "KEYS",
    "KNOWN",
    "TEXT",
    "UNKNOWN_KEYS",
    "WIRE",
    "FieldKey",
    "MessageStrategies",
]

INT32 = st.integers(-(2**31), 2**31 - 1)
"""Plain ``int`` fields (counts, sizes): protobuf int32."""
INT64 = st.integers(-(2**63), 2**63 - 1)
""":data:`~livemesh.wire.messages.Int64` fields and JSON integers."""
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
MAX_DURATION_NANOS = 10**15
"""About 11.6 days; below 2**22 s, where a float still resolves nanoseconds exactly."""
DURATION_NANOS = st.integers(0, MAX_DURATION_NANOS)
DURATIONS = DURATION_NANOS.map(lambda n: n / 1e9)
"""Durations in seconds that a protobuf Duration holds exactly."""
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
"""Strings: any Unicode scalar value, short."""
KEYS = st.one_of(
    st.sampled_from(["snake_case_key", "camelKey", "_lead", "trail_", "a", "turn_complete", "mimeType"]),
    TEXT,
)
"""Keys of free-form JSON objects, including spellings of real field names."""
BYTES = st.binary(max_size=40)

JSON_SCALARS = st.one_of(st.none(), st.booleans(), INT64, FLOATS, TEXT)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=3)),
    max_leaves=8,
)
"""Any JSON value, small."""
JSON_OBJECTS = st.dictionaries(KEYS, JSON_VALUES, max_size=4)
"""Free-form JSON objects (function args and responses): passed through untouched."""
NON_NULL_JSON = JSON_VALUES.filter(lambda v: v is not None)

UNKNOWN_KEYS = st.from_regex(r"zz[A-Za-z0-9_]{0,8}", fullmatch=True)
"""Member names no message class has (no field name starts with ``zz``), for ``extra``."""
UNKNOWN_MEMBERS = st.dictionaries(UNKNOWN_KEYS, JSON_VALUES, min_size=1, max_size=2)

FieldKey = tuple[type, str]
"""``(message class, field name)``: how overrides and exclusions name a field."""


class HasName(Protocol):
    """Anything naming a field by its ``name`` attribute (a field description)."""

    @property
    def name(self) -> str: ...


def _explicit_types() -> dict[Any, st.SearchStrategy[Any]]:
    """Types whose values the type alone does not describe (looked up by name: a wire module
    without one of them simply has no field of that type)."""
    table: dict[Any, st.SearchStrategy[Any]] = {m.Int64: INT64, m.Duration: DURATIONS}
    null_value = getattr(m, "NullValue", None)
    if null_value is not None:
        table[null_value] = st.just("NULL_VALUE")  # protobuf's NullValue has one member
    return table


_EXPLICIT = _explicit_types()


class MessageStrategies:
    """Strategies for the message classes under one configuration.

    Two instances cover most needs: :data:`WIRE` (anything the protocol can carry) and
    :data:`KNOWN` (only values livemesh knows). Build another to match a particular peer, e.g.
    the official SDK's pydantic types: ``MessageStrategies(known_enums=True, overrides={...})``.

    Args:
        known_enums: Enum fields draw only the values their constants class knows.
        unknown_members: Objects may carry JSON members no class models (in their ``extra``
            field, where the message classes have one), which a decoder must keep.
        overrides: ``(class, field name) -> strategy`` for that field's value when present.
        exclude: Fields never set.
    """

    def __init__(
        self,
        *,
        known_enums: bool = False,
        unknown_members: bool = False,
        overrides: Mapping[FieldKey, st.SearchStrategy[Any]] | None = None,
        exclude: Iterable[FieldKey] = (),
    ) -> None:
        self.known_enums = known_enums
        self.unknown_members = unknown_members
        self.overrides: dict[FieldKey, st.SearchStrategy[Any]] = dict(overrides or {})
        self.exclude = frozenset(exclude)
        for cls, name in (*self.overrides, *self.exclude):
            if name not in attrs.fields_dict(cls):
                raise ValueError(f"{cls.__name__} has no field {name!r}")
        self._cache: dict[type, st.SearchStrategy[Any]] = {}

    def __repr__(self) -> str:
        return (
            f"MessageStrategies(known_enums={self.known_enums}, unknown_members={self.unknown_members}, "
            f"{len(self.overrides)} override(s), {len(self.exclude)} exclusion(s))"
        )

    # ------------------------------------------------------------------ fields

    def for_type(self, tp: Any) -> st.SearchStrategy[Any]:
        """Values of one field type (``Optional`` already removed).

        Args:
            tp: A field type: a scalar, ``list[X]``, ``dict[str, X]``, a message class, or one of
                the wire module's named types (``Int64``, ``Duration``, ``JSONObject``).

        Returns:
            A strategy for present values of that type.

        Raises:
            TypeError: Nothing here knows how to generate ``tp``.
        """
        explicit = _EXPLICIT.get(tp)
        if explicit is not None:
            return explicit
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
        origin = typing.get_origin(tp)
        if origin is list:
            (item,) = typing.get_args(tp)
            return st.lists(self.for_type(item), max_size=3)
        if origin is dict:
            key, value = typing.get_args(tp)
            if key is str and value is Any:
                return JSON_OBJECTS
            return st.dictionaries(self.for_type(key), self.for_type(value), max_size=3)
        if isinstance(tp, type) and attrs.has(tp):
            return st.deferred(lambda: self.messages(tp))
        raise TypeError(f"no strategy for field type {tp!r}")

    def value(self, cls: type, name: str | HasName) -> st.SearchStrategy[Any]:
        """Present (non-None) values of one field, honouring enums and overrides.

        Args:
            cls: A message class.
            name: The field's Python name (or an object with a ``name``, such as
                :class:`livemesh.wire.WireField`).

        Returns:
            A strategy for the field's value.
        """
        name = _name(name)
        override = self.overrides.get((cls, name))
        if override is not None:
            return override
        field = _field(cls, name)
        if field.enum is not None:
            known = st.sampled_from(known_values(field.enum))
            one = known if self.known_enums else st.one_of(known, TEXT)
            return st.lists(one, max_size=3) if typing.get_origin(field.type) is list else one
        return self.for_type(field.type)

    def for_field(self, cls: type, name: str | HasName) -> st.SearchStrategy[Any]:
        """A field's value or ``None`` (absent); a field without a ``None`` default is always set.

        Args:
            cls: A message class.
            name: The field's Python name (or an object with a ``name``).

        Returns:
            A strategy for the argument of that name to ``cls(...)``.
        """
        name = _name(name)
        field = _field(cls, name)
        if field.extra:
            return st.one_of(st.none(), st.none(), UNKNOWN_MEMBERS) if self.unknown_members else st.none()
        if (cls, name) in self.exclude:
            return st.none() if field.default is None else st.just(field.default)
        value = self.value(cls, name)
        return st.one_of(st.none(), value) if field.default is None else value

    # ------------------------------------------------------------------ messages

    def messages(self, cls: type) -> st.SearchStrategy[Any]:
        """Instances of any message class; the two top-level classes obey their oneof rules.

        Args:
            cls: A class of :mod:`livemesh.wire.messages`.

        Returns:
            A strategy for instances of ``cls``.
        """
        found: st.SearchStrategy[Any] | None = self._cache.get(cls)
        if found is None:
            if cls is m.ClientMessage:
                found = self.client_messages()
            elif cls is m.ServerMessage:
                found = self.server_messages()
            else:
                found = st.builds(cls, **{f.name: self.for_field(cls, f.name) for f in fields_of(cls)})
            self._cache[cls] = found
        return found

    def client_messages(self, kinds: Iterable[str] | None = None) -> st.SearchStrategy[m.ClientMessage]:
        """Client messages with exactly one of the oneof fields set, as every client frame has.

        Args:
            kinds: The oneof fields to choose from (``"setup"``, ``"client_content"``,
                ``"realtime_input"``, ``"tool_response"``, ``"context_update"``); all by default.

        Returns:
            A strategy for :class:`~livemesh.wire.messages.ClientMessage`.

        Raises:
            ValueError: ``kinds`` names something that is not a oneof field.
        """
        chosen = _kinds(kinds, m.CLIENT_ONEOF)
        return st.one_of(*(self._one_field(m.ClientMessage, name) for name in chosen))

    def server_messages(self, kinds: Iterable[str] | None = None) -> st.SearchStrategy[m.ServerMessage]:
        """Server messages with at most one oneof field and, independently, optional usage.

        Args:
            kinds: The oneof fields to choose from (``"server_content"``, ``"tool_call"``, ...;
                ``"usage_metadata"`` for a message carrying usage alone); all by default.

        Returns:
            A strategy for :class:`~livemesh.wire.messages.ServerMessage`.

        Raises:
            ValueError: ``kinds`` names something that is not a oneof field.
        """
        chosen = _kinds(kinds, (*m.SERVER_ONEOF, "usage_metadata"))
        usage = st.one_of(st.none(), self.messages(m.UsageMetadata))
        options = [
            self._one_field(m.ServerMessage, name, usage_metadata=usage)
            for name in chosen
            if name != "usage_metadata"
        ]
        if "usage_metadata" in chosen:
            options.append(self._one_field(m.ServerMessage, "usage_metadata"))
        return st.one_of(*options)

    def _one_field(self, cls: type, name: str, **more: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        extra = {f.name: self.for_field(cls, f.name) for f in fields_of(cls) if f.extra}
        return st.builds(cls, **{name: self.value(cls, name)}, **more, **extra)


def _name(field: str | HasName) -> str:
    return field if isinstance(field, str) else field.name


def _field(cls: type, name: str) -> Field:
    for field in fields_of(cls):
        if field.name == name:
            return field
    raise ValueError(f"{cls.__name__} has no field {name!r}")


def _kinds(kinds: Iterable[str] | None, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if kinds is None:
        return allowed
    chosen = tuple(kinds)
    unknown = [k for k in chosen if k not in allowed]
    if unknown or not chosen:
        raise ValueError(f"kinds must be a non-empty selection of {allowed}, got {chosen}")
    return chosen


WIRE = MessageStrategies(unknown_members=True)
"""Anything the protocol can carry: enum values livemesh does not know and unknown members too."""

KNOWN = MessageStrategies(known_enums=True)
"""Only what livemesh knows: enum values it has constants for, no unknown members."""
