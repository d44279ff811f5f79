"""Hypothesis strategies for every wire message class.

Strategies are derived from each attrs class's field types, with explicit scalar strategies
(hypothesis's ``from_type`` would ignore bounds, and orjson rejects ints beyond 64 bits):

* ``int`` fields are int32, :data:`~livemesh.wire.messages.Int64` fields the full int64 range;
* floats are finite: NaN and infinities cannot travel through orjson (it writes ``null``), and the
  protobuf JSON spellings (``"NaN"``, ``"Infinity"``) are tested separately, decode-only;
* durations are whole nanoseconds (``n / 1e9`` seconds, ``0 <= n <= 1e15``): exactly the values a
  protobuf Duration holds, so ``format_duration``/``parse_duration`` must round-trip them exactly;
* free-form JSON (function args, responses, schemas) is a bounded recursive JSON object whose keys
  deliberately include snake_case and camelCase spellings, which decoders must leave untouched.

Two profiles: ``"wire"`` (anything the protocol can carry; enum fields mix known constants with
arbitrary text, since livemesh keeps enums as ``str`` for forward compatibility) and ``"sdk"``
(values the official SDK's pydantic types accept: enum members only, typed sub-objects where
livemesh keeps free-form JSON, no fields the SDK lacks). Deriving from the field types means a
field the lead adds later is generated automatically; ``test_strategies_cover_every_field``
fails if a new field type has no strategy.
"""

from __future__ import annotations

import functools
import typing
from typing import Any, Literal

import attrs
from hypothesis import strategies as st

from livemesh.wire import messages as m

Profile = Literal["wire", "sdk"]

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


def duration_text(nanos: int) -> str:
    """A reference spelling of a Duration, written from integer nanoseconds (no float involved)."""
    seconds, frac = divmod(nanos, 10**9)
    if not frac:
        return f"{seconds}s"
    return f"{seconds}.{frac:09d}".rstrip("0") + "s"


# ----------------------------------------------------------------------------- enum-valued fields

# Values copied from google-genai 3.6.1's enums (types.py), minus the *_UNSPECIFIED members.
SDK_ENUMS: dict[tuple[type, str], tuple[str, ...]] = {
    (m.GenerationConfig, "response_modalities"): ("TEXT", "IMAGE", "AUDIO"),
    (m.GenerationConfig, "media_resolution"): (
        "MEDIA_RESOLUTION_LOW",
        "MEDIA_RESOLUTION_MEDIUM",
        "MEDIA_RESOLUTION_HIGH",
    ),
    (m.FunctionDeclaration, "behavior"): ("BLOCKING", "NON_BLOCKING"),
    (m.FunctionResponse, "scheduling"): ("SILENT", "WHEN_IDLE", "INTERRUPT"),
    (m.AutomaticActivityDetection, "start_of_speech_sensitivity"): (
        "START_SENSITIVITY_HIGH",
        "START_SENSITIVITY_LOW",
    ),
    (m.AutomaticActivityDetection, "end_of_speech_sensitivity"): (
        "END_SENSITIVITY_HIGH",
        "END_SENSITIVITY_LOW",
    ),
    (m.RealtimeInputConfig, "activity_handling"): ("START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"),
    (m.RealtimeInputConfig, "turn_coverage"): ("TURN_INCLUDES_ONLY_ACTIVITY", "TURN_INCLUDES_ALL_INPUT"),
    (m.ServerContent, "turn_complete_reason"): (
        "MALFORMED_FUNCTION_CALL",
        "RESPONSE_REJECTED",
        "NEED_MORE_INPUT",
        "GENERATED_OTHER",
    ),
    (m.VoiceActivity, "type"): ("ACTIVITY_START", "ACTIVITY_END"),
    (m.VoiceActivityDetectionSignal, "vad_signal_type"): ("VAD_SIGNAL_TYPE_SOS", "VAD_SIGNAL_TYPE_EOS"),
    (m.ModalityTokenCount, "modality"): ("TEXT", "IMAGE", "VIDEO", "AUDIO", "DOCUMENT"),
    (m.ExecutableCode, "language"): ("PYTHON",),
    (m.CodeExecutionResult, "outcome"): ("OUTCOME_OK", "OUTCOME_FAILED", "OUTCOME_DEADLINE_EXCEEDED"),
    (m.Content, "role"): ("user", "model"),
}

# A simple OpenAPI-style schema, the shape the SDK's ``Schema`` type accepts (uppercase types).
_SCHEMA_LEAF = st.fixed_dictionaries(
    {"type": st.sampled_from(["STRING", "INTEGER", "NUMBER", "BOOLEAN"])},
    optional={"description": TEXT},
)
SDK_SCHEMAS = st.fixed_dictionaries(
    {"type": st.just("OBJECT")},
    optional={
        "properties": st.dictionaries(
            st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), _SCHEMA_LEAF, max_size=3
        ),
        "description": TEXT,
    },
)

# Where livemesh keeps free-form JSON but the SDK has a typed object, the sdk profile generates
# values of that type (camelCase keys, every key set, so a dump by alias gives the same dict).
SDK_JSON_FIELDS: dict[tuple[type, str], st.SearchStrategy[Any]] = {
    (m.FunctionDeclaration, "parameters"): SDK_SCHEMAS,
    (m.FunctionDeclaration, "response"): SDK_SCHEMAS,
    (m.Tool, "google_search"): st.just({}),
    (m.Tool, "code_execution"): st.just({}),
    (m.Tool, "url_context"): st.just({}),
    (m.ServerContent, "grounding_metadata"): st.one_of(
        st.just({}), st.fixed_dictionaries({"webSearchQueries": st.lists(TEXT, min_size=1, max_size=2)})
    ),
    (m.ServerContent, "url_context_metadata"): st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {"urlMetadata": st.lists(st.fixed_dictionaries({"retrievedUrl": TEXT}), min_size=1, max_size=2)}
        ),
    ),
    (m.ClientMessage, "context_update"): st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {
                "systemInstruction": st.fixed_dictionaries(
                    {"parts": st.just([{"text": "be brief"}]), "role": TEXT}
                )
            }
        ),
    ),
}

SDK_EXCLUDED_FIELDS: frozenset[tuple[type, str]] = frozenset(
    {
        # Sent by the SDK (from LiveConnectConfig) but missing from its LiveClientSetup type.
        (m.Setup, "realtime_input_config"),
    }
)


# ----------------------------------------------------------------------------- derivation


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field of an attrs class (annotations are strings here)."""
    return typing.get_type_hints(cls)


def _optional_inner(tp: Any) -> Any | None:
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:
        return next(arg for arg in args if arg is not type(None))
    return None


def for_type(tp: Any, profile: Profile) -> st.SearchStrategy[Any]:
    """The strategy for one (non-Optional) field type; raises ``TypeError`` for an unknown one."""
    if tp is m.Int64:
        return INT64
    if tp is m.Duration:
        return DURATIONS
    if tp == m.JSONObject:
        return JSON_OBJECTS
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
        return st.lists(for_type(item, profile), max_size=3)
    if isinstance(tp, type) and attrs.has(tp):
        return messages(tp, profile)
    raise TypeError(f"no strategy for field type {tp!r}")


def for_field(cls: type, name: str, tp: Any, profile: Profile) -> st.SearchStrategy[Any]:
    """The strategy for one field, honouring the enum and SDK-typed overrides of the profile."""
    inner = _optional_inner(tp)
    base = tp if inner is None else inner
    key = (cls, name)
    strategy: st.SearchStrategy[Any]
    if key in SDK_ENUMS:
        known = st.sampled_from(SDK_ENUMS[key])
        value = known if profile == "sdk" else st.one_of(known, TEXT)
        strategy = st.lists(value, max_size=3) if typing.get_origin(base) is list else value
    elif profile == "sdk" and key in SDK_JSON_FIELDS:
        strategy = SDK_JSON_FIELDS[key]
    else:
        strategy = for_type(base, profile)
    if inner is not None:
        strategy = st.one_of(st.none(), strategy)
    return strategy


@functools.cache
def messages(cls: type, profile: Profile = "wire") -> st.SearchStrategy[Any]:
    """Instances of any message class; the two top-level messages obey their oneof rules."""
    if cls is m.ClientMessage:
        return client_messages(profile)
    if cls is m.ServerMessage:
        return server_messages(profile)
    return _plain(cls, profile)


def _plain(cls: type, profile: Profile) -> st.SearchStrategy[Any]:
    kwargs = {
        name: for_field(cls, name, tp, profile)
        for name, tp in field_types(cls).items()
        if not (profile == "sdk" and (cls, name) in SDK_EXCLUDED_FIELDS)
    }
    return st.builds(cls, **kwargs)


def _one_field(
    cls: type, name: str, profile: Profile, **extra: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    tp = field_types(cls)[name]
    inner = _optional_inner(tp)
    strategy = (
        SDK_JSON_FIELDS[(cls, name)]
        if profile == "sdk" and (cls, name) in SDK_JSON_FIELDS
        else for_type(inner if inner is not None else tp, profile)
    )
    return st.builds(cls, **{name: strategy}, **extra)


@functools.cache
def client_messages(profile: Profile = "wire") -> st.SearchStrategy[m.ClientMessage]:
    """Client messages with exactly one oneof field set (as every real client frame has)."""
    return st.one_of(*(_one_field(m.ClientMessage, name, profile) for name in m.CLIENT_ONEOF))


@functools.cache
def server_messages(profile: Profile = "wire") -> st.SearchStrategy[m.ServerMessage]:
    """Server messages with at most one oneof field and, independently, optional usage metadata."""
    usage = st.one_of(st.none(), messages(m.UsageMetadata, profile))
    one_of = [_one_field(m.ServerMessage, name, profile, usage_metadata=usage) for name in m.SERVER_ONEOF]
    return st.one_of(*one_of, st.builds(m.ServerMessage, usage_metadata=usage))


MESSAGE_CLASSES: tuple[type, ...] = tuple(
    obj
    for obj in vars(m).values()
    if isinstance(obj, type) and attrs.has(obj) and obj.__module__ == m.__name__
)
"""Every attrs class in the messages module (the converter registers the same set)."""
