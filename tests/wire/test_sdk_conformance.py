"""The codec against the official SDK (google-genai), with generated data, in both directions.

google-genai is the oracle here and is imported only by tests. Four checks:

* livemesh -> SDK types (client): every client frame livemesh encodes is accepted by
  ``LiveClientMessage.model_validate_json`` (extra fields are forbidden there, so a misnamed field
  fails) and holds the same content.
* SDK send paths -> livemesh (client): the SDK's own serializers (``send_client_content``,
  ``send_realtime_input``, ``send_tool_response`` and ``connect``'s setup, reproduced call for call
  from live.py) produce frames that livemesh decodes to the same content. Those frames mix
  snake_case and camelCase at different depths and carry URL-safe base64.
* SDK types -> livemesh (server): SDK ``LiveServerMessage`` objects, serialized as the service
  does (camelCase JSON, base64 bytes), decode in livemesh to the same content.
* livemesh -> SDK receive path (server): ``encode_server`` output read by live.py's receive path
  (``json.loads``, ``_LiveServerMessage_from_mldev``, ``LiveServerMessage._from_response``) gives
  the same content.

"The same content" is compared as wire JSON in one canonical spelling (camelCase, URL-safe
base64, int64 as numbers), type-exact (``True != 1``).
"""

from __future__ import annotations

import base64
import json
import warnings
from typing import Any

import attrs
import orjson
import pytest
from google import genai
from google.genai import _common, _live_converters, types
from google.genai import _transformers as sdk_t
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livemesh import wire
from livemesh.wire import coverage
from livemesh.wire import messages as m
from tests.wire import strategies as s
from tests.wire.sdk_strategies import SDK_SENDS, SDK_TYPES, sdk_setup_frame
from tests.wire.wirejson import canonical, field_types, rewrite, to_wire

SDK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _urlsafe(value: str) -> str:
    return base64.urlsafe_b64encode(base64.b64decode(value)).decode()


def _same_content(wire_json: dict[str, Any], cls: type, sdk_json: dict[str, Any]) -> None:
    """Compare livemesh's reference JSON with an SDK dump (by alias, JSON mode, no None)."""
    ours = rewrite(wire_json, cls, bytes_value=_urlsafe, int64_value=int)
    assert canonical(ours) == canonical(sdk_json)


def _sdk_dump(obj: Any) -> dict[str, Any]:
    """An SDK object as wire JSON: its camelCase aliases, plus the one renamed field (below)."""
    dump: dict[str, Any] = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    activity = dump.get("voiceActivity")
    if activity is not None and "voiceActivityType" in activity:
        # The only field whose wire name is not the camelCase of its SDK name: the SDK's
        # _VoiceActivity_from_mldev reads "type" into voice_activity_type.
        activity["type"] = activity.pop("voiceActivityType")
    return dump


# ----------------------------------------------------------------------------- client: livemesh -> SDK


@SDK
@given(SDK_TYPES.client_messages())
def test_every_client_frame_is_a_valid_sdk_live_client_message(message: m.ClientMessage) -> None:
    sdk_message = types.LiveClientMessage.model_validate_json(wire.encode_client(message))
    _same_content(to_wire(message), m.ClientMessage, _sdk_dump(sdk_message))


def test_realtime_input_config_is_sent_by_the_sdk_but_missing_from_its_setup_type() -> None:
    """Why the sdk profile leaves ``realtimeInputConfig`` out of the check above.

    The SDK's connect() puts ``setup.realtimeInputConfig`` on the wire (from LiveConnectConfig),
    yet its ``LiveClientSetup`` type has no such field; the setup-path test below covers it.
    """
    assert "realtime_input_config" not in types.LiveClientSetup.model_fields
    assert "realtime_input_config" in types.LiveConnectConfig.model_fields


# ---------------------------------------------------------------- client: SDK send paths -> livemesh


def _py(obj: Any) -> Any:
    """A message as the Python dict an SDK user would write: snake_case keys, raw bytes, ints,
    durations as protobuf strings (the SDK types them ``str``)."""
    if attrs.has(type(obj)):
        types_ = field_types(type(obj))
        out: dict[str, Any] = {}
        for field in attrs.fields(type(obj)):
            value = getattr(obj, field.name)
            if field.name == m.EXTRA or value is None:
                continue
            if field.default is not attrs.NOTHING and value == field.default:
                continue
            tp = types_[field.name]
            if field.name == "type" and type(obj) is m.VoiceActivity:
                out["voice_activity_type"] = value
            elif tp is m.Duration:
                out[field.name] = protobuf_duration(round(value * 1e9))
            elif isinstance(value, list):
                out[field.name] = [_py(v) for v in value]
            else:
                out[field.name] = _py(value)
        return out
    return obj


CLIENT_CONTENTS = st.builds(
    m.ClientContent,
    turns=st.one_of(st.none(), st.lists(SDK_SENDS.messages(m.Content), min_size=1, max_size=3)),
    turn_complete=st.one_of(st.none(), st.booleans()),
)


@SDK
@given(CLIENT_CONTENTS)
def test_sdk_send_client_content_frames_decode_to_the_same_content(content: m.ClientContent) -> None:
    # live.py AsyncSession.send_client_content, Gemini API branch.
    turns = [types.Content.model_validate(_py(turn)) for turn in content.turns] if content.turns else None
    client_content = sdk_t.t_client_content(turns, content.turn_complete).model_dump(  # type: ignore[arg-type]
        mode="json", exclude_none=True
    )
    body = _live_converters._LiveClientContent_to_mldev(from_object=client_content)
    frame = json.dumps({"client_content": body})
    assert wire.decode_client(frame) == m.ClientMessage(client_content=content)


REALTIME_FIELDS = ("media", "audio", "audio_stream_end", "video", "text", "activity_start", "activity_end")


@st.composite
def _realtime_inputs(draw: st.DrawFn) -> tuple[str, m.RealtimeInput]:
    """One ``send_realtime_input`` keyword (the SDK takes exactly one) and its livemesh message."""
    name = draw(st.sampled_from(REALTIME_FIELDS))
    mime = {
        "audio": st.sampled_from(["audio/pcm;rate=16000", "audio/pcm;rate=24000", "audio/pcm"]),
        "video": st.sampled_from(["image/jpeg", "image/png"]),
    }.get(name, st.sampled_from(["audio/pcm;rate=16000", "image/jpeg"]))
    blob = st.builds(m.Blob, data=s.BYTES, mime_type=mime)  # the SDK checks audio/* and image/*
    if name == "media":
        return name, m.RealtimeInput(media_chunks=[draw(blob)])
    if name == "audio":
        return name, m.RealtimeInput(audio=draw(blob))
    if name == "video":
        return name, m.RealtimeInput(video=draw(blob))
    if name == "audio_stream_end":
        return name, m.RealtimeInput(audio_stream_end=draw(st.booleans()))
    if name == "text":
        return name, m.RealtimeInput(text=draw(s.TEXT))
    if name == "activity_start":
        return name, m.RealtimeInput(activity_start=m.ActivityStart())
    return name, m.RealtimeInput(activity_end=m.ActivityEnd())


@SDK
@given(_realtime_inputs())
def test_sdk_send_realtime_input_frames_decode_to_the_same_content(case: tuple[str, m.RealtimeInput]) -> None:
    name, realtime_input = case
    value = getattr(realtime_input, "media_chunks" if name == "media" else name)
    kwargs = {name: _py(value[0]) if name == "media" else _py(value)}
    # live.py AsyncSession.send_realtime_input, Gemini API branch.
    params = types.LiveSendRealtimeInputParameters.model_validate(kwargs)
    body = _live_converters._LiveSendRealtimeInputParameters_to_mldev(from_object=params)
    body = _common.encode_unserializable_types(_common.convert_to_dict(body))
    frame = json.dumps({"realtime_input": body})
    assert wire.decode_client(frame) == m.ClientMessage(realtime_input=realtime_input)


# The SDK camelCases only the top-level keys of a tool response (convert_to_dict's recursion drops
# convert_keys), so ``will_continue`` travels snake_case inside, and free-form ``response`` keys are
# left alone: both are exactly what livemesh must accept.
FUNCTION_RESPONSES = st.builds(
    m.FunctionResponse,
    id=s.TEXT,
    name=st.one_of(st.none(), s.TEXT),
    response=st.one_of(st.none(), s.JSON_OBJECTS),
    will_continue=st.one_of(st.none(), st.booleans()),
    scheduling=st.one_of(st.none(), st.sampled_from(m.known_values(m.Scheduling))),
    parts=st.one_of(st.none(), st.lists(SDK_SENDS.messages(m.FunctionResponsePart), max_size=2)),
)


@SDK
@given(st.lists(FUNCTION_RESPONSES, min_size=1, max_size=3))
def test_sdk_send_tool_response_frames_decode_to_the_same_content(
    responses: list[m.FunctionResponse],
) -> None:
    # live.py AsyncSession.send_tool_response, Gemini API branch.
    tool_response = sdk_t.t_tool_response([_py(r) for r in responses])
    body = _common.encode_unserializable_types(_common.convert_to_dict(tool_response, convert_keys=True))
    frame = json.dumps({"tool_response": body})
    expected = m.ClientMessage(tool_response=m.ToolResponse(function_responses=responses))
    assert wire.decode_client(frame) == expected


def _merged_like_t_tools(tools: list[m.Tool]) -> list[m.Tool]:
    """What the SDK's ``t_tools`` sends for these tools: empty ones dropped, every function
    declaration moved into one last Tool, the other tools kept in order."""
    declarations: list[m.FunctionDeclaration] = []
    out: list[m.Tool] = []
    for tool in tools:
        if tool == m.Tool():
            continue
        if tool.function_declarations:
            declarations.extend(tool.function_declarations)
            rest = attrs.evolve(tool, function_declarations=None)
            if rest != m.Tool():
                out.append(rest)
        else:
            out.append(tool)
    if declarations:
        out.append(m.Tool(function_declarations=declarations))
    return out


SETUPS = st.builds(
    lambda setup: attrs.evolve(
        setup, tools=_merged_like_t_tools(setup.tools) if setup.tools else setup.tools
    ),
    st.builds(
        attrs.evolve,
        SDK_SENDS.messages(m.Setup),
        model=st.from_regex(r"models/[a-z0-9][a-z0-9-]{0,20}", fullmatch=True),
    ),
)


def connect_config(setup: m.Setup) -> dict[str, Any]:
    """The ``LiveConnectConfig`` keywords that make ``connect()`` send this setup: the generation
    fields LiveConnectConfig has at its top level there, the others in ``generation_config``."""
    config: dict[str, Any] = _py(setup)
    config.pop("model")
    generation = config.pop("generation_config", {})
    for name in list(generation):
        if name in coverage.CONNECT_GENERATION_FIELDS:
            config[name] = generation.pop(name)
    if generation:
        config["generation_config"] = generation
    return config


@pytest.fixture(scope="module")
def api_client() -> Any:
    return genai.Client(api_key="test-key")._api_client


@SDK
@given(setup=SETUPS)
def test_sdk_connect_setup_frames_decode_to_the_same_content(api_client: Any, setup: m.Setup) -> None:
    request = sdk_setup_frame(api_client, setup.model, connect_config(setup))
    if setup.generation_config == m.GenerationConfig():
        setup = attrs.evolve(setup, generation_config=None)  # nothing to send, none sent
    assert wire.decode_client(json.dumps(request)) == m.ClientMessage(setup=setup)


def test_sdk_sends_two_generation_fields_under_names_the_api_does_not_know(api_client: Any) -> None:
    """Why SDK_SENDS leaves ``modelConfig`` and ``TextResponseFormat.schema`` out.

    The SDK passes ``generation_config`` through as a Python dump, so on the Gemini API it sends
    ``model_selection_config`` (the API's name is ``modelConfig``, which its Vertex converter writes)
    and ``jsonSchema`` (the alias is ``schema``). livemesh keeps what it cannot name in ``extra``.
    """
    config = types.LiveConnectConfig(
        generation_config=types.GenerationConfig(
            model_selection_config=types.ModelSelectionConfig(feature_selection_preference="BALANCED"),
            response_format=[
                types.ResponseFormat(text=types.TextResponseFormat(jsonSchema={"type": "object"}))
            ],
        )
    )
    setup = wire.decode_client(json.dumps(sdk_setup_frame(api_client, "models/x", config))).setup
    assert setup is not None and setup.generation_config is not None
    assert setup.generation_config.model_config is None
    assert setup.generation_config.extra == {
        "model_selection_config": {"feature_selection_preference": "BALANCED"}
    }
    (response_format,) = setup.generation_config.response_format or []
    assert response_format.text is not None and response_format.text.extra == {
        "jsonSchema": {"type": "object"}
    }


# ----------------------------------------------------------------------------- server: SDK -> livemesh


def protobuf_duration(nanos: int) -> str:
    """A Duration as protobuf's JSON printer writes it: 0, 3, 6 or 9 fractional digits."""
    seconds, frac = divmod(nanos, 10**9)
    if not frac:
        return f"{seconds}s"
    digits = 3 if frac % 10**6 == 0 else 6 if frac % 10**3 == 0 else 9
    return f"{seconds}.{frac:09d}"[: len(str(seconds)) + 1 + digits] + "s"


@SDK
@given(SDK_TYPES.server_messages())
def test_sdk_server_messages_serialized_as_the_service_does_decode_the_same(message: m.ServerMessage) -> None:
    sdk_message = types.LiveServerMessage.model_validate(_py(message))
    frame = _sdk_dump(sdk_message)  # camelCase, URL-safe base64 (pydantic's spelling)
    assert wire.decode_server(json.dumps(frame)) == message
    # protobuf's printer writes int64 as strings
    assert wire.decode_server(json.dumps(rewrite(frame, m.ServerMessage, int64_value=str))) == message


def test_voice_activity_type_travels_as_type() -> None:
    frame = b'{"voiceActivity": {"type": "ACTIVITY_END", "audioOffset": "1.5s"}}'
    sdk_message = types.LiveServerMessage._from_response(
        response=_live_converters._LiveServerMessage_from_mldev(orjson.loads(frame)), kwargs={}
    )
    assert sdk_message.voice_activity is not None
    assert sdk_message.voice_activity.voice_activity_type == "ACTIVITY_END"
    assert wire.decode_server(frame) == m.ServerMessage(
        voice_activity=m.VoiceActivity(type="ACTIVITY_END", audio_offset=m.Duration(1.5))
    )


# -------------------------------------------------------------- server: livemesh -> SDK receive path


@SDK
@given(SDK_TYPES.server_messages())
def test_livemesh_server_frames_read_by_the_sdk_receive_path(message: m.ServerMessage) -> None:
    # live.py AsyncSession._receive, Gemini API branch.
    response = json.loads(wire.encode_server(message))
    response_dict = _live_converters._LiveServerMessage_from_mldev(response)
    sdk_message = types.LiveServerMessage._from_response(
        response=response_dict, kwargs=types.LiveServerMessage().model_dump()
    )
    _same_content(to_wire(message), m.ServerMessage, _sdk_dump(sdk_message))


def test_sdk_text_and_data_properties_agree_with_the_helpers() -> None:
    """The SDK's ``.text`` / ``.data`` on a livemesh frame equal livemesh's own readers."""
    from livemesh.wire import helpers

    message = m.ServerMessage(
        server_content=m.ServerContent(
            model_turn=m.Content(
                role="model",
                parts=[
                    m.Part(text="thinking...", thought=True),
                    m.Part(text="Hello, "),
                    m.Part(inline_data=m.Blob(b"\x01\x02", "audio/pcm;rate=24000")),
                    m.Part(text="world"),
                    m.Part(inline_data=m.Blob(b"\x03", "audio/pcm;rate=24000")),
                ],
            )
        )
    )
    sdk_message = types.LiveServerMessage._from_response(
        response=_live_converters._LiveServerMessage_from_mldev(orjson.loads(wire.encode_server(message))),
        kwargs={},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sdk_message.text == helpers.extract_text(message) == "Hello, world"
        assert sdk_message.data == b"".join(helpers.extract_audio(message)) == b"\x01\x02\x03"
