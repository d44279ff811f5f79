"""Round-trip properties of the codec, against generated messages and generated wire JSON."""

from __future__ import annotations

import base64
import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livemesh import wire
from livemesh.errors import DecodeError
from livemesh.wire import messages as m
from livemesh.wire.fields import wire_fields
from tests.wire import strategies as s
from tests.wire.wirejson import canonical, rewrite, snake, to_wire

CLIENT = s.client_messages()
SERVER = s.server_messages()
FAST = settings(max_examples=40, deadline=None)


def test_strategies_cover_every_field() -> None:
    """Every field type of every message class has a strategy (fails when a new type appears)."""
    for cls in s.MESSAGE_CLASSES:
        for field in wire_fields(cls):
            s.WIRE.for_field(cls, field)
            s.KNOWN.for_field(cls, field)


@pytest.mark.parametrize("cls", s.MESSAGE_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_every_class_round_trips_through_the_converter(cls: type, data: st.DataObject) -> None:
    value = data.draw(s.messages(cls))
    json = orjson.loads(orjson.dumps(wire.converter.unstructure(value)))
    assert canonical(json) == canonical(to_wire(value))
    assert wire.converter.structure(json, cls) == value


@FAST
@given(CLIENT)
def test_client_round_trip(message: m.ClientMessage) -> None:
    assert wire.decode_client(wire.encode_client(message)) == message
    assert wire.decode_client(wire.encode_client(message).decode()) == message  # text frames


@FAST
@given(SERVER)
def test_server_round_trip(message: m.ServerMessage) -> None:
    assert wire.decode_server(wire.encode_server(message)) == message


@FAST
@given(CLIENT)
def test_client_encoding_matches_the_reference(message: m.ClientMessage) -> None:
    """camelCase keys, absent fields omitted, standard base64, int64 strings, "N.NNNs" durations."""
    reference = to_wire(message)
    assert canonical(orjson.loads(wire.encode_client(message))) == canonical(reference)
    # and the reverse: wire JSON in the reference spelling decodes and re-encodes unchanged
    assert canonical(
        orjson.loads(wire.encode_client(wire.decode_client(orjson.dumps(reference))))
    ) == canonical(reference)


@FAST
@given(SERVER)
def test_server_encoding_matches_the_reference(message: m.ServerMessage) -> None:
    reference = to_wire(message)
    assert canonical(orjson.loads(wire.encode_server(message))) == canonical(reference)
    assert canonical(
        orjson.loads(wire.encode_server(wire.decode_server(orjson.dumps(reference))))
    ) == canonical(reference)


def _respell(draw_bool: Any) -> Any:
    def key(k: str) -> str:
        return snake(k) if draw_bool() else k

    return key


@FAST
@given(CLIENT, st.data())
def test_client_snake_case_keys_decode_the_same(message: m.ClientMessage, data: st.DataObject) -> None:
    """snake_case at any class level (each key drawn separately), never inside free-form JSON."""
    reference = to_wire(message)
    all_snake = rewrite(reference, m.ClientMessage, key=snake)
    assert wire.decode_client(orjson.dumps(all_snake)) == message
    mixed = rewrite(reference, m.ClientMessage, key=_respell(lambda: data.draw(st.booleans())))
    assert wire.decode_client(orjson.dumps(mixed)) == message


@FAST
@given(SERVER, st.data())
def test_server_snake_case_keys_decode_the_same(message: m.ServerMessage, data: st.DataObject) -> None:
    reference = to_wire(message)
    assert wire.decode_server(orjson.dumps(rewrite(reference, m.ServerMessage, key=snake))) == message
    mixed = rewrite(reference, m.ServerMessage, key=_respell(lambda: data.draw(st.booleans())))
    assert wire.decode_server(orjson.dumps(mixed)) == message


def test_free_form_json_keys_are_not_respelled() -> None:
    args = {"snake_key": {"inner_key": 1}, "camelKey": [{"x_y": True}]}
    frame = {"tool_call": {"function_calls": [{"name": "f", "args": args, "id": "1"}]}}
    message = wire.decode_server(orjson.dumps(frame))
    assert message.tool_call is not None and message.tool_call.function_calls is not None
    assert message.tool_call.function_calls[0].args == args


def _urlsafe_unpadded(value: str) -> str:
    return base64.urlsafe_b64encode(base64.b64decode(value)).decode().rstrip("=")


def _urlsafe_padded(value: str) -> str:
    return base64.urlsafe_b64encode(base64.b64decode(value)).decode()


def _std_unpadded(value: str) -> str:
    return value.rstrip("=")


@FAST
@given(CLIENT)
def test_client_base64_variants_and_int64_numbers_decode_the_same(message: m.ClientMessage) -> None:
    reference = to_wire(message)
    for spell in (_urlsafe_padded, _urlsafe_unpadded, _std_unpadded):
        assert (
            wire.decode_client(orjson.dumps(rewrite(reference, m.ClientMessage, bytes_value=spell)))
            == message
        )
    as_numbers = rewrite(reference, m.ClientMessage, int64_value=int)
    assert wire.decode_client(orjson.dumps(as_numbers)) == message


@FAST
@given(SERVER)
def test_server_base64_variants_and_int64_numbers_decode_the_same(message: m.ServerMessage) -> None:
    reference = to_wire(message)
    for spell in (_urlsafe_padded, _urlsafe_unpadded, _std_unpadded):
        assert (
            wire.decode_server(orjson.dumps(rewrite(reference, m.ServerMessage, bytes_value=spell)))
            == message
        )
    as_numbers = rewrite(reference, m.ServerMessage, int64_value=int)
    assert wire.decode_server(orjson.dumps(as_numbers)) == message


def test_sdk_style_url_safe_audio_decodes() -> None:
    """What google-genai really sends: snake_case top level, camelCase inside, URL-safe base64."""
    pcm = bytes([0xFB, 0xFF, 0xFE, 0x00])
    frame = {
        "realtime_input": {"audio": {"data": base64.urlsafe_b64encode(pcm).decode(), "mimeType": "audio/pcm"}}
    }
    assert "-" in frame["realtime_input"]["audio"]["data"] or "_" in frame["realtime_input"]["audio"]["data"]
    message = wire.decode_client(orjson.dumps(frame))
    assert message == m.ClientMessage(realtime_input=m.RealtimeInput(audio=m.Blob(pcm, "audio/pcm")))


# ----------------------------------------------------------------------------- durations


@settings(max_examples=200, deadline=None)
@given(s.DURATION_NANOS)
def test_whole_nanosecond_durations_round_trip_exactly(nanos: int) -> None:
    seconds = nanos / 1e9
    text = wire.format_duration(seconds)
    assert text == s.duration_text(nanos)
    assert wire.parse_duration(text) == seconds


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=315_576_000_000, allow_nan=False))
def test_any_duration_round_trips_to_the_nearest_nanosecond(seconds: float) -> None:
    """A float between nanoseconds is rounded to 9 decimals (protobuf's resolution), no further."""
    back = wire.parse_duration(wire.format_duration(seconds))
    assert abs(back - seconds) <= 0.5e-9 + 4 * math.ulp(seconds)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("9.5s", 9.5), ("50s", 50.0), ("9.500s", 9.5), ("0.000000001s", 1e-9), ("-1.5s", -1.5), ("0s", 0.0)],
)
def test_protobuf_duration_spellings_parse(text: str, seconds: float) -> None:
    assert wire.parse_duration(text) == seconds
    frame = orjson.dumps({"goAway": {"timeLeft": text}})
    assert wire.decode_server(frame) == m.ServerMessage(go_away=m.GoAway(time_left=m.Duration(seconds)))


@pytest.mark.parametrize("text", ["9.5", "s", "9.5 s", "1.0000000001s", "1e3s", "", "5s\n", "+5s"])
def test_bad_durations_raise_decode_error(text: str) -> None:
    with pytest.raises(DecodeError, match="duration"):
        wire.parse_duration(text)
    with pytest.raises(DecodeError):
        wire.decode_server(orjson.dumps({"goAway": {"timeLeft": text}}))


# ----------------------------------------------------------------------------- protobuf JSON specials


@pytest.mark.parametrize(
    ("text", "check"), [("NaN", math.isnan), ("Infinity", math.isinf), ("-Infinity", math.isinf)]
)
def test_protobuf_non_finite_float_spellings_decode(text: str, check: Any) -> None:
    """NaN/inf are excluded from round trips (orjson writes them as null) but must still decode."""
    message = wire.decode_client(
        orjson.dumps({"setup": {"model": "m", "generationConfig": {"temperature": text}}})
    )
    assert message.setup is not None and message.setup.generation_config is not None
    assert check(message.setup.generation_config.temperature)


@settings(max_examples=100, deadline=None)
@given(s.INT64)
def test_int64_extremes_as_string_or_number(value: int) -> None:
    for spelled in (str(value), value):
        frame = orjson.dumps({"sessionResumptionUpdate": {"lastConsumedClientMessageIndex": spelled}})
        update = wire.decode_server(frame).session_resumption_update
        assert update == m.SessionResumptionUpdate(last_consumed_client_message_index=m.Int64(value))


def test_empty_marker_objects_encode_as_empty_objects() -> None:
    message = m.ClientMessage(realtime_input=m.RealtimeInput(activity_start=m.ActivityStart()))
    assert orjson.loads(wire.encode_client(message)) == {"realtimeInput": {"activityStart": {}}}
    setup = m.ClientMessage(
        setup=m.Setup(model="models/x", input_audio_transcription=m.AudioTranscriptionConfig())
    )
    assert orjson.loads(wire.encode_client(setup)) == {
        "setup": {"model": "models/x", "inputAudioTranscription": {}}
    }


def test_unknown_fields_are_kept_at_every_level_and_written_back() -> None:
    frame = {
        "serverContent": {
            "modelTurn": {"parts": [{"text": "hi", "newPartField": {"x": 1}}], "futureField": 2}
        },
        "brandNewMessage": {"a": 1, "b": None},
    }
    message = wire.decode_server(orjson.dumps(frame))
    assert message == m.ServerMessage(
        server_content=m.ServerContent(
            model_turn=m.Content(
                parts=[m.Part(text="hi", extra={"newPartField": {"x": 1}})], extra={"futureField": 2}
            )
        ),
        extra={"brandNewMessage": {"a": 1, "b": None}},
    )
    assert wire.unknown_fields(message) == [
        ("brandNewMessage", {"a": 1, "b": None}),
        ("serverContent.modelTurn.futureField", 2),
        ("serverContent.modelTurn.parts[0].newPartField", {"x": 1}),
    ]
    assert canonical(orjson.loads(wire.encode_server(message))) == canonical(frame)
    brand_new = wire.decode_server(b'{"brandNewMessage": {}}')  # a kind livemesh does not know yet
    assert brand_new.kind == "" and brand_new.extra == {"brandNewMessage": {}}


def test_extra_is_merged_into_the_json_object_by_object() -> None:
    """The escape hatch: members merged verbatim, nested objects key by key, nothing mutated."""
    args = {"q": 1}
    extra = {"generationConfig": {"newKnob": {"level": 2}}, "brandNewSetting": [1, 2]}
    setup = m.Setup(
        model="models/x",
        generation_config=m.GenerationConfig(temperature=0.5),
        tools=[m.Tool(function_declarations=[m.FunctionDeclaration(name="f", parameters=args)])],
        extra=extra,
    )
    sent = orjson.loads(wire.encode_client(m.ClientMessage(setup=setup)))
    assert sent["setup"]["generationConfig"] == {"temperature": 0.5, "newKnob": {"level": 2}}
    assert sent["setup"]["brandNewSetting"] == [1, 2]
    assert extra == {"generationConfig": {"newKnob": {"level": 2}}, "brandNewSetting": [1, 2]}
    assert args == {"q": 1}


def test_a_null_value_is_present_not_absent() -> None:
    """protobuf writes NullValue as JSON null: a streamed null argument must not vanish."""
    call = b'{"id": "1", "partialArgs": [{"jsonPath": "$.a", "nullValue": null}]}'
    frame = b'{"toolCall": {"functionCalls": [' + call + b"]}}"
    message = wire.decode_server(frame)
    assert message.tool_call is not None and message.tool_call.function_calls is not None
    (arg,) = message.tool_call.function_calls[0].partial_args or []
    assert arg == m.PartialArg(json_path="$.a", null_value=m.NullValue("NULL_VALUE"))
    assert wire.decode_server(wire.encode_server(message)) == message
