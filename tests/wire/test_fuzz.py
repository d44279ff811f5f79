"""Fuzzing the decoders: whatever arrives, they return a message or raise DecodeError, nothing else.

Three depths of garbage: arbitrary bytes/text (the JSON parser's job), arbitrary JSON whose keys are
real field names so it reaches the class hooks, and valid frames with one typed leaf replaced
(a string where a bool belongs, deep inside), where the reason must name what was expected.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livemesh import wire
from livemesh.errors import DecodeError, EncodeError
from livemesh.wire import messages as m
from tests.wire import strategies as s
from tests.wire.wirejson import leaves, replace_at, to_wire

DECODERS: list[Callable[..., Any]] = [wire.decode_client, wire.decode_server]
FUZZ = settings(max_examples=100, deadline=None)


def _decodes_or_decode_error(decode: Callable[..., Any], data: bytes | str) -> None:
    try:
        decode(data)
    except DecodeError as exc:
        assert isinstance(exc.reason, str) and exc.reason


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    for decode in DECODERS:
        _decodes_or_decode_error(decode, data)


@FUZZ
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=100))
def test_arbitrary_text_including_lone_surrogates(data: str) -> None:
    for decode in DECODERS:
        _decodes_or_decode_error(decode, data)


FIELD_KEYS = list(s.FIELD_KEYS)
ANY_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),  # all orjson can write; wider ints are tested as raw text
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
        st.sampled_from(["AAE=", "-_8", "9.5s", "12", "NaN", "TEXT", ""]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELD_KEYS), st.text(max_size=6)), children, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(ANY_JSON)
def test_arbitrary_json_with_real_field_names(value: Any) -> None:
    data = orjson.dumps(value)
    for decode in DECODERS:
        _decodes_or_decode_error(decode, data)


@settings(max_examples=100, deadline=None)
@given(st.one_of(s.client_messages(), s.server_messages()), st.data())
def test_valid_frames_with_one_leaf_replaced_by_any_json(message: Any, data: st.DataObject) -> None:
    cls = type(message)
    reference = to_wire(message)
    paths = leaves(reference, cls)
    if not paths:
        return
    path, _tp = data.draw(st.sampled_from(paths))
    mutated = replace_at(reference, path, data.draw(ANY_JSON))
    decode = wire.decode_client if cls is m.ClientMessage else wire.decode_server
    _decodes_or_decode_error(decode, orjson.dumps(mutated))


# ----------------------------------------------------------------------------- wrong types at depth


def _wrong_values(tp: Any) -> tuple[list[Any], str] | None:
    """Values of the wrong JSON type for a field type, and a word the reason must contain."""
    if tp is bool:
        return ["true", 1, 0, [], {}], "boolean"
    if tp is m.Int64 or tp is int:
        return ["ten", True, 1.5, [], {}], "integer"
    if tp is float:
        return ["fast", True, [], {}], "number"
    if tp is str or tp is m.NullValue:
        return [5, True, 1.5, [], {}], "string"
    if tp == m.StringMap:
        return ["x", 5, [], True, {"k": 5}], "string"
    if tp is bytes:
        return [5, True, [], {}, "not base64!", "A"], "base64"
    if tp is m.Duration:
        return [5, 9.5, "9.5", "soon", True], "duration"
    if typing.get_origin(tp) is list:
        return ["x", 5, {}], "list"
    if tp == m.JSONObject or (isinstance(tp, type) and attrs.has(tp)):
        return ["x", 5, [], True], "JSON object"
    return None  # Any: every JSON value is valid


@settings(max_examples=100, deadline=None)
@given(st.one_of(s.client_messages(), s.server_messages()), st.data())
def test_wrong_type_at_depth_names_the_expected_type(message: Any, data: st.DataObject) -> None:
    cls = type(message)
    reference = to_wire(message)
    candidates = [(path, tp) for path, tp in leaves(reference, cls) if _wrong_values(tp) is not None]
    if not candidates:
        return
    path, tp = data.draw(st.sampled_from(candidates))
    wrong = _wrong_values(tp)
    assert wrong is not None
    values, word = wrong
    value = data.draw(st.sampled_from(values))
    decode = wire.decode_client if cls is m.ClientMessage else wire.decode_server
    with pytest.raises(DecodeError) as info:
        decode(orjson.dumps(replace_at(reference, path, value)))
    assert word in info.value.reason, (path, value, info.value.reason)


@pytest.mark.parametrize(
    ("frame", "word"),
    [
        ({"serverContent": {"turnComplete": "yes"}}, "boolean"),
        ({"serverContent": {"modelTurn": {"parts": [{"thought": "true"}]}}}, "boolean"),
        ({"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "@@@@"}}]}}}, "base64"),
        ({"toolCall": {"functionCalls": [{"args": [1, 2]}]}}, "JSON object"),
        ({"toolCall": {"functionCalls": {"name": "f"}}}, "list"),
        ({"goAway": {"timeLeft": 50}}, "duration"),
        ({"usageMetadata": {"promptTokenCount": "many"}}, "integer"),
        ({"usageMetadata": {"promptTokenCount": 2**63}}, "int64 range"),
        ({"sessionResumptionUpdate": {"lastConsumedClientMessageIndex": "-9223372036854775809"}}, "int64"),
        ({"serverContent": "done"}, "ServerContent"),
        ({"usageMetadata": {"totalTokenCount": 1.5}}, "integer"),
    ],
)
def test_server_reasons_name_the_problem(frame: dict[str, Any], word: str) -> None:
    with pytest.raises(DecodeError) as info:
        wire.decode_server(orjson.dumps(frame))
    assert word in info.value.reason


@pytest.mark.parametrize(
    "text",
    [
        b'{"usageMetadata": {"totalTokenCount": 123456789012345678901234567890}}',
        b'{"usageMetadata": {"totalTokenCount": "123456789012345678901234567890"}}',
        b'{"usageMetadata": {"totalTokenCount": 1e400}}',
        b'{"usageMetadata": {"totalTokenCount": "' + b"9" * 5000 + b'"}}',
    ],
)
def test_integers_beyond_int64_are_refused(text: bytes) -> None:
    with pytest.raises(DecodeError):
        wire.decode_server(text)


# ----------------------------------------------------------------------------- frame-level rules


def test_invalid_json_and_non_objects() -> None:
    for data in [b"", b"{", b"nul", b"\xff\xfe", b"[]", b"1", b'"setup"', b"null", "{\ud800}"]:
        for decode in DECODERS:
            with pytest.raises(DecodeError):
                decode(data)


@settings(max_examples=30, deadline=None)
@given(s.client_messages())
def test_oversized_client_frames_are_refused_before_parsing(message: m.ClientMessage) -> None:
    data = wire.encode_client(message)
    assert wire.decode_client(data, max_size=len(data)) == message
    with pytest.raises(DecodeError, match="exceeds"):
        wire.decode_client(data, max_size=len(data) - 1)
    # Refused on size alone: the bytes after the limit are never looked at.
    with pytest.raises(DecodeError, match="exceeds"):
        wire.decode_client(data + b"\xff" * 10, max_size=len(data))


def test_oversized_server_frame_and_default_limit() -> None:
    frame = b'{"setupComplete":{}}'
    with pytest.raises(DecodeError, match="exceeds"):
        wire.decode_server(frame, max_size=len(frame) - 1)
    big = b'{"setupComplete":{"sessionId":"' + b"x" * wire.DEFAULT_MAX_FRAME_BYTES + b'"}}'
    with pytest.raises(DecodeError, match="exceeds"):
        wire.decode_server(big)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(m.CLIENT_ONEOF), min_size=2, max_size=5, unique=True), st.data())
def test_client_frames_with_two_or_more_oneof_fields_are_refused(
    names: list[str], data: st.DataObject
) -> None:
    frame: dict[str, Any] = {}
    for name in names:
        one = data.draw(s.WIRE._one_field(m.ClientMessage, name))
        frame.update(to_wire(one))
    with pytest.raises(DecodeError, match="exactly one"):
        wire.decode_client(orjson.dumps(frame))


def test_client_frame_with_no_oneof_field_is_refused() -> None:
    for frame in [b"{}", b'{"unknownMessage": {}}', b'{"setup": null}']:
        with pytest.raises(DecodeError, match="exactly one"):
            wire.decode_client(frame)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(m.SERVER_ONEOF), min_size=2, max_size=4, unique=True), st.data())
def test_server_frames_with_two_or_more_oneof_fields_are_refused(
    names: list[str], data: st.DataObject
) -> None:
    frame: dict[str, Any] = {}
    for name in names:
        one = data.draw(s.WIRE._one_field(m.ServerMessage, name))
        frame.update(to_wire(one))
    frame["usageMetadata"] = {"totalTokenCount": 3}
    with pytest.raises(DecodeError, match="oneof"):
        wire.decode_server(orjson.dumps(frame))


def test_server_usage_metadata_alone_or_riding_along() -> None:
    alone = wire.decode_server(b'{"usageMetadata": {"totalTokenCount": "7"}}')
    assert alone.kind == "usage_metadata"
    assert alone.usage_metadata == m.UsageMetadata(total_token_count=7)
    along = wire.decode_server(b'{"serverContent": {"turnComplete": true}, "usageMetadata": {}}')
    assert along.kind == "server_content"
    assert wire.decode_server(b"{}").kind == ""


# ----------------------------------------------------------------------------- the encoding side

NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


@settings(max_examples=30, deadline=None)
@given(st.one_of(NON_FINITE, st.floats(allow_nan=False, allow_infinity=False)))
def test_what_the_encoder_accepts_the_decoder_accepts(seconds: float) -> None:
    """A GoAway the encoder writes must decode: non-finite durations must fail at encode time.

    ``format_duration(nan)`` currently writes ``"nans"``, a frame every peer (including
    livemesh's own decoder) refuses; the encoder should raise EncodeError instead.
    """
    message = m.ServerMessage(go_away=m.GoAway(time_left=m.Duration(seconds)))
    try:
        data = wire.encode_server(message)
    except EncodeError:
        return
    wire.decode_server(data)


def test_values_json_cannot_carry_raise_encode_error() -> None:
    too_big = m.ClientMessage(
        tool_response=m.ToolResponse([m.FunctionResponse(id="1", name="f", response={"n": 2**64})])
    )
    not_json = m.ClientMessage(
        tool_response=m.ToolResponse([m.FunctionResponse(id="1", name="f", response={"o": object()})])
    )
    for message in (too_big, not_json):
        with pytest.raises(EncodeError):
            wire.encode_client(message)


# Wrong Python values a caller might put in a message: the encoder may write them (it does not
# re-validate types on the hot path) or refuse them, but only with EncodeError.
WRONG_PYTHON_VALUES = st.sampled_from(
    [object(), "9.5s", "x", 1.5, -1, 2**70, b"\x00", [object()], {"k": object()}, {1: 2}, math.nan, True]
)


def _attrs_slots(obj: Any) -> list[tuple[Any, str]]:
    """Every (instance, field name) in a message tree, nested instances included."""
    found: list[tuple[Any, str]] = []
    for field in attrs.fields(type(obj)):
        found.append((obj, field.name))
        value = getattr(obj, field.name)
        children = value if isinstance(value, list) else [value]
        for child in children:
            if attrs.has(type(child)):
                found.extend(_attrs_slots(child))
    return found


@settings(max_examples=100, deadline=None)
@given(st.one_of(s.client_messages(), s.server_messages()), st.data())
def test_encoders_raise_only_encode_error_for_wrong_values(message: Any, data: st.DataObject) -> None:
    target, name = data.draw(st.sampled_from(_attrs_slots(message)))
    setattr(target, name, data.draw(WRONG_PYTHON_VALUES))
    encode = wire.encode_client if type(message) is m.ClientMessage else wire.encode_server
    try:
        encode(message)
    except EncodeError:
        pass


@pytest.mark.parametrize(
    "message",
    [
        m.ServerMessage(go_away=m.GoAway(time_left="9.5s")),  # type: ignore[arg-type]
        m.ServerMessage(voice_activity=m.VoiceActivity(audio_offset=[1])),  # type: ignore[arg-type]
        m.ServerMessage(setup_complete=m.SetupComplete(session_id=object())),  # type: ignore[arg-type]
        m.ServerMessage(
            server_content=m.ServerContent(
                model_turn=m.Content(parts=[m.Part(inline_data=m.Blob("x"))])  # type: ignore[arg-type]
            )
        ),
    ],
    ids=["duration-as-str", "duration-as-list", "str-as-object", "bytes-as-str"],
)
def test_encoder_refuses_mistyped_values_with_encode_error(message: m.ServerMessage) -> None:
    with pytest.raises(EncodeError):
        wire.encode_server(message)
