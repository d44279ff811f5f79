"""The small conveniences in livemesh.wire.helpers, checked against the SDK where it has the same."""

from __future__ import annotations

import base64
import json
import warnings
from typing import Any

import pytest
from google.genai import _common, _live_converters, types
from google.genai import _transformers as sdk_t
from hypothesis import given, settings
from hypothesis import strategies as st

from livemesh import wire
from livemesh.errors import ConfigError
from livemesh.wire import helpers as h
from livemesh.wire import messages as m
from tests.wire import strategies as s
from tests.wire.sdk_strategies import SDK_TYPES
from tests.wire.wirejson import rewrite, snake, to_wire

PROPS = settings(max_examples=40, deadline=None)


def _sdk_receive(message: m.ServerMessage) -> types.LiveServerMessage:
    response = _live_converters._LiveServerMessage_from_mldev(json.loads(wire.encode_server(message)))
    return types.LiveServerMessage._from_response(response=response, kwargs={})


# ----------------------------------------------------------------------------- readers


@PROPS
@given(SDK_TYPES.server_messages())
def test_extract_text_matches_the_sdk_text_property(message: m.ServerMessage) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK warns once about non-text parts
        expected = _sdk_receive(message).text or ""
    assert h.extract_text(message) == expected
    assert h.extract_text(message.server_content) == expected
    assert h.extract_text(message.server_content.model_turn if message.server_content else None) == expected


AUDIO_PARTS = st.builds(
    m.Part,
    text=st.one_of(st.none(), s.TEXT),
    inline_data=st.one_of(
        st.none(),
        st.builds(m.Blob, data=s.BYTES, mime_type=st.sampled_from(["audio/pcm;rate=24000", "AUDIO/L16"])),
    ),
)


@PROPS
@given(st.lists(AUDIO_PARTS, max_size=5))
def test_extract_audio_matches_the_sdk_data_property_for_audio_turns(parts: list[m.Part]) -> None:
    message = m.ServerMessage(server_content=m.ServerContent(model_turn=m.Content(parts=parts, role="model")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = _sdk_receive(message).data or b""
    chunks = h.extract_audio(message)
    assert b"".join(chunks) == expected
    assert len(chunks) == sum(p.inline_data is not None for p in parts)


def test_extract_audio_skips_non_audio_inline_data_and_thoughts_are_not_text() -> None:
    turn = m.Content(
        parts=[
            m.Part(inline_data=m.Blob(b"jpeg", "image/jpeg")),
            m.Part(inline_data=m.Blob(b"\x01\x00", "audio/pcm;rate=24000")),
            m.Part(inline_data=m.Blob(b"?", None)),
            m.Part(text="plan", thought=True),
            m.Part(text="answer", thought=False),
        ]
    )
    assert h.extract_audio(turn) == [b"\x01\x00"]
    assert h.extract_text(turn) == "answer"


def test_readers_on_messages_without_content() -> None:
    for source in (
        None,
        m.ServerMessage(),
        m.ServerMessage(go_away=m.GoAway(m.Duration(5.0))),
        m.ServerContent(),
    ):
        assert h.extract_text(source) == ""
        assert h.extract_audio(source) == []
        assert h.input_transcript(source) == ""
        assert h.output_transcript(source) == ""


def test_transcripts() -> None:
    content = m.ServerContent(
        input_transcription=m.Transcription(text="what time"),
        output_transcription=m.Transcription(text="It is noon", finished=True),
    )
    message = m.ServerMessage(server_content=content)
    assert h.input_transcript(message) == h.input_transcript(content) == "what time"
    assert h.output_transcript(message) == h.output_transcript(content) == "It is noon"
    assert h.output_transcript(m.ServerContent(output_transcription=m.Transcription())) == ""


# ----------------------------------------------------------------------------- client_content


def _sdk_client_content_frame(turns: Any, turn_complete: bool) -> m.ClientMessage:
    sdk_content = sdk_t.t_client_content(turns, turn_complete)
    body = _live_converters._LiveClientContent_to_mldev(
        from_object=sdk_content.model_dump(mode="json", exclude_none=True)
    )
    return wire.decode_client(json.dumps({"client_content": body}))


@PROPS
@given(st.text(min_size=1, max_size=20), st.booleans())
def test_client_content_from_a_string_is_the_sdk_docstring_example(text: str, turn_complete: bool) -> None:
    """The SDK's send_client_content takes no bare string; its example sends one user text part."""
    ours = m.ClientMessage(client_content=h.client_content(text, turn_complete=turn_complete))
    sdk_turn = types.Content(role="user", parts=[types.Part(text=text)])
    assert wire.decode_client(wire.encode_client(ours)) == _sdk_client_content_frame(sdk_turn, turn_complete)


@PROPS
@given(st.lists(s.KNOWN.messages(m.Content), min_size=1, max_size=3), st.booleans())
def test_client_content_from_turn_dicts_in_either_spelling(
    turns: list[m.Content], turn_complete: bool
) -> None:
    expected = m.ClientContent(turns=turns, turn_complete=turn_complete)
    camel_dicts = [to_wire(turn) for turn in turns]
    assert h.client_content(camel_dicts, turn_complete=turn_complete) == expected
    # snake_case keys and raw bytes, as Python users write them
    snake_dicts = [rewrite(d, m.Content, key=snake, bytes_value=base64.b64decode) for d in camel_dicts]
    assert h.client_content(snake_dicts, turn_complete=turn_complete) == expected
    assert h.client_content(turns, turn_complete=turn_complete) == expected
    if len(turns) == 1:
        assert h.client_content(turns[0], turn_complete=turn_complete) == expected
        assert h.client_content(camel_dicts[0], turn_complete=turn_complete) == expected


def test_client_content_names_unknown_keys_in_turn_dicts() -> None:
    with pytest.raises(ConfigError, match=r"turn 1: unknown key 'parts\[0\]\.txt' \(did you mean 'text'\?\)"):
        h.client_content([{"parts": [{"text": "a"}]}, {"parts": [{"txt": "b"}]}])
    with pytest.raises(ConfigError, match="unknown key 'rol'"):
        h.client_content({"rol": "user", "parts": []})


def test_client_content_seed_examples() -> None:
    history = [
        {"role": "user", "parts": [{"text": "What is the capital of France?"}]},
        {"role": "model", "parts": [{"text": "Paris"}]},
        {"role": "user", "parts": [{"text": "What about Germany?"}]},
    ]
    content = h.client_content(history)
    assert content.turn_complete is True
    assert content.turns is not None and [t.role for t in content.turns] == ["user", "model", "user"]
    assert json.loads(wire.encode_client(m.ClientMessage(client_content=content))) == {
        "clientContent": {"turns": history, "turnComplete": True}
    }
    partial = h.client_content("Part 1 of my question...", turn_complete=False)
    assert partial.turn_complete is False
    assert h.client_content(None) == m.ClientContent(turn_complete=True)
    assert h.client_content("") == m.ClientContent(turns=[], turn_complete=True)
    assert h.client_content([]) == m.ClientContent(turns=[], turn_complete=True)


def test_client_content_accepts_part_objects_and_bytes_inside_dicts() -> None:
    content = h.client_content(
        [
            {
                "role": "user",
                "parts": [
                    m.Part(text="look"),
                    {"inline_data": {"data": b"\xff\x00", "mime_type": "image/png"}},
                ],
            }
        ]
    )
    assert content.turns == [
        m.Content(
            role="user", parts=[m.Part(text="look"), m.Part(inline_data=m.Blob(b"\xff\x00", "image/png"))]
        )
    ]


@pytest.mark.parametrize(
    ("turns", "kwargs", "match"),
    [
        (5, {}, "turns must be"),
        ([5], {}, "turn 0 must be"),
        (["ok", 1.5], {}, "turn 1 must be"),
        ([{"parts": "text"}], {}, "turn 0 is not a valid Content"),
        ([{"parts": [{"text": 3}]}], {}, "expected a string"),
        ([{"role": None, "parts": [{"thought": "yes"}]}], {}, "expected a boolean"),
        ("hi", {"turn_complete": "yes"}, "turn_complete must be a bool"),
        ("hi", {"turn_complete": None}, "turn_complete must be a bool"),
    ],
)
def test_client_content_bad_arguments_raise_config_error(
    turns: Any, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        h.client_content(turns, **kwargs)


# ----------------------------------------------------------------------------- realtime input


def _sdk_realtime_frame(**kwargs: Any) -> m.ClientMessage:
    params = types.LiveSendRealtimeInputParameters.model_validate(kwargs)
    body = _live_converters._LiveSendRealtimeInputParameters_to_mldev(from_object=params)
    body = _common.encode_unserializable_types(_common.convert_to_dict(body))
    return wire.decode_client(json.dumps({"realtime_input": body}))


@PROPS
@given(
    st.binary(max_size=64).map(lambda b: b[: len(b) // 2 * 2]),
    st.sampled_from([8000, 16000, 24000, 44100, 48000]),
)
def test_audio_input_is_what_the_sdk_sends(pcm: bytes, rate: int) -> None:
    ours = m.ClientMessage(realtime_input=h.audio_input(pcm, rate))
    sdk = _sdk_realtime_frame(audio=types.Blob(data=pcm, mime_type=f"audio/pcm;rate={rate}"))
    assert wire.decode_client(wire.encode_client(ours)) == sdk
    assert h.audio_input(bytearray(pcm)) == h.audio_input(memoryview(pcm), 16000)
    assert h.audio_input(pcm).audio == m.Blob(pcm, "audio/pcm;rate=16000")


@PROPS
@given(st.binary(max_size=64), st.sampled_from(["image/jpeg", "image/png"]))
def test_video_input_is_what_the_sdk_sends(frame: bytes, mime_type: str) -> None:
    ours = m.ClientMessage(realtime_input=h.video_input(frame, mime_type))
    sdk = _sdk_realtime_frame(video=types.Blob(data=frame, mime_type=mime_type))
    assert wire.decode_client(wire.encode_client(ours)) == sdk
    assert h.video_input(frame).video == m.Blob(frame, "image/jpeg")


def test_text_input_is_what_the_sdk_sends() -> None:
    ours = m.ClientMessage(realtime_input=h.text_input("Hello"))
    assert wire.decode_client(wire.encode_client(ours)) == _sdk_realtime_frame(text="Hello")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: h.audio_input("pcm"), "pcm must be bytes"),  # type: ignore[arg-type]
        (lambda: h.audio_input(b"\x00"), "even number of bytes"),
        (lambda: h.audio_input(b"", 0), "rate must be a positive int"),
        (lambda: h.audio_input(b"", -16000), "rate must be a positive int"),
        (lambda: h.audio_input(b"", True), "rate must be a positive int"),
        (lambda: h.audio_input(b"", 16000.0), "rate must be a positive int"),  # type: ignore[arg-type]
        (lambda: h.audio_input(b"", "16000"), "rate must be a positive int"),  # type: ignore[arg-type]
        (lambda: h.video_input(b"", "audio/pcm"), "image/\\* or video/\\*"),
        (lambda: h.video_input(None), "frame must be bytes"),  # type: ignore[arg-type]
        (lambda: h.text_input(b"hi"), "text must be a str"),  # type: ignore[arg-type]
    ],
)
def test_realtime_builders_bad_arguments_raise_config_error(call: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        call()
