"""The wire tests' strategies: livemesh.testing's, under the names these tests use.

Every strategy is derived from the message classes' field types by
:mod:`livemesh.testing.strategies`, which users' tests import too (see its module docstring for
the explicit scalar strategies: int32/int64 bounds, finite floats, whole-nanosecond durations,
free-form JSON keys in both spellings, enum values known and unknown, unknown members). This
module only keeps the names the wire tests were written against.
"""

from __future__ import annotations

from livemesh.testing import duration_text as duration_text
from livemesh.testing._fields import message_classes
from livemesh.testing.derived import BYTES as BYTES
from livemesh.testing.derived import DURATION_NANOS as DURATION_NANOS
from livemesh.testing.derived import DURATIONS as DURATIONS
from livemesh.testing.derived import FLOATS as FLOATS
from livemesh.testing.derived import INT32 as INT32
from livemesh.testing.derived import INT64 as INT64
from livemesh.testing.derived import JSON_OBJECTS as JSON_OBJECTS
from livemesh.testing.derived import JSON_VALUES as JSON_VALUES
from livemesh.testing.derived import KEYS as KEYS
from livemesh.testing.derived import KNOWN as KNOWN
from livemesh.testing.derived import MAX_DURATION_NANOS as MAX_DURATION_NANOS
from livemesh.testing.derived import NON_NULL_JSON as NON_NULL_JSON
from livemesh.testing.derived import TEXT as TEXT
from livemesh.testing.derived import UNKNOWN_KEYS as UNKNOWN_KEYS
from livemesh.testing.derived import UNKNOWN_MEMBERS as UNKNOWN_MEMBERS
from livemesh.testing.derived import WIRE as WIRE
from livemesh.testing.derived import FieldKey as FieldKey
from livemesh.testing.derived import MessageStrategies as MessageStrategies
from livemesh.testing.strategies import client_messages as client_messages
from livemesh.testing.strategies import messages as messages
from livemesh.testing.strategies import server_messages as server_messages
from livemesh.wire.fields import wire_fields

MESSAGE_CLASSES: tuple[type, ...] = message_classes()
"""Every attrs class in the messages module (the converter registers the same set)."""

FIELD_KEYS: tuple[str, ...] = tuple(
    sorted({name for cls in MESSAGE_CLASSES for f in wire_fields(cls) for name in (f.name, f.json_name)})
)
"""Every field name of every class in both spellings (keys that reach the class hooks)."""
