"""The traffic composites follow the protocol's documented order, and their messages encode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemesh import wire
from livemesh.testing import strategies as lst
from livemesh.wire import messages as m
from tests.testing.budget import PURE


def _content(message: m.ServerMessage) -> m.ServerContent:
    assert message.server_content is not None, message
    return message.server_content


def _calls(stream: list[m.ServerMessage]) -> list[str]:
    return [c.id or "" for msg in stream if msg.tool_call for c in msg.tool_call.function_calls or ()]


@PURE
@given(lst.model_turns())
def test_a_model_turn_is_chunks_then_generation_complete_then_turn_complete_with_usage(
    turn: list[m.ServerMessage],
) -> None:
    *chunks, done, complete = turn
    assert chunks and all(_content(c).model_turn is not None for c in chunks)
    assert _content(done).generation_complete is True
    assert _content(complete).turn_complete is True
    usage = complete.usage_metadata
    assert usage is not None and usage.total_token_count is not None
    assert usage.total_token_count >= (usage.prompt_token_count or 0) + (usage.response_token_count or 0)


@PURE
@given(lst.model_turns("AUDIO"))
def test_an_audio_turn_carries_24_khz_pcm(turn: list[m.ServerMessage]) -> None:
    for chunk in turn[:-2]:
        (part,) = _content(chunk).model_turn.parts or []  # type: ignore[union-attr]
        assert part.inline_data is not None and part.inline_data.mime_type == "audio/pcm;rate=24000"
        assert len(part.inline_data.data) % 2 == 0


@PURE
@given(lst.interrupted_turns())
def test_an_interrupted_turn_never_completes_its_generation(turn: list[m.ServerMessage]) -> None:
    *chunks, interrupted, complete = turn
    assert all(_content(c).model_turn is not None for c in chunks)
    assert _content(interrupted).interrupted is True
    assert _content(complete).turn_complete is True
    assert not any(msg.server_content and msg.server_content.generation_complete for msg in turn)


@PURE
@given(lst.cancelled_tool_calls())
def test_a_cancellation_names_calls_of_its_turn_after_the_interruption(turn: list[m.ServerMessage]) -> None:
    assert turn[0].tool_call is not None
    kinds = [msg.kind for msg in turn]
    cancel_at = kinds.index("tool_call_cancellation")
    assert _content(turn[cancel_at - 1]).interrupted is True
    ids = turn[cancel_at].tool_call_cancellation.ids  # type: ignore[union-attr]
    assert ids and set(ids) <= set(_calls(turn)) and len(set(ids)) == len(ids)
    assert _content(turn[-1]).turn_complete is True


@PURE
@given(lst.tool_call_turns())
def test_a_tool_call_turn_is_the_call_then_a_model_turn(turn: list[m.ServerMessage]) -> None:
    assert turn[0].tool_call is not None
    calls = turn[0].tool_call.function_calls or []
    assert 1 <= len(calls) <= 3 and len(set(_calls(turn))) == len(calls)
    assert _content(turn[-1]).turn_complete is True


@PURE
@given(lst.go_aways())
def test_a_go_away_is_followed_by_a_resumable_handle(messages: list[m.ServerMessage]) -> None:
    go_away, update = messages
    assert go_away.go_away is not None and 0 <= (go_away.go_away.time_left or 0) <= 60
    assert update.session_resumption_update is not None
    assert update.session_resumption_update.resumable is True and update.session_resumption_update.new_handle


@PURE
@given(lst.server_streams())
def test_a_server_stream_is_a_session_as_the_service_sends_it(stream: list[m.ServerMessage]) -> None:
    assert stream[0].setup_complete is not None
    assert not any(msg.setup_complete for msg in stream[1:])
    calls = _calls(stream)
    assert len(calls) == len(set(calls)), "tool call ids are unique within a stream"
    handles = [
        msg.session_resumption_update.new_handle
        for msg in stream
        if msg.session_resumption_update and msg.session_resumption_update.resumable
    ]
    assert all(handles) and len(handles) == len(set(handles))
    seen: set[str] = set()
    for msg in stream:
        if msg.tool_call:
            seen.update(c.id or "" for c in msg.tool_call.function_calls or ())
        if msg.tool_call_cancellation:
            assert set(msg.tool_call_cancellation.ids or ()) <= seen, "a cancellation follows its call"
    kinds = [msg.kind for msg in stream]
    if "go_away" in kinds:
        assert kinds[kinds.index("go_away") :] == ["go_away", "session_resumption_update"]
    for msg in stream:
        assert wire.decode_server(wire.encode_server(msg)) == msg


@PURE
@given(lst.server_streams(resumption=False, go_away=False, segments=["model_turn"], modality="TEXT"))
def test_server_stream_options_are_honoured(stream: list[m.ServerMessage]) -> None:
    kinds = {msg.kind for msg in stream}
    assert kinds <= {"setup_complete", "server_content", "usage_metadata"}


def test_arguments_are_checked_at_the_call() -> None:
    with pytest.raises(ValueError, match="segments"):
        lst.server_streams(segments=["karaoke"])
    with pytest.raises(ValueError, match="max_turns"):
        lst.client_streams(max_turns=-1)
    with pytest.raises(ValueError, match="modality"):
        lst.model_turns("VIDEO")  # type: ignore[arg-type]


@PURE
@given(lst.client_streams())
def test_a_client_stream_opens_with_its_setup_and_follows_it(stream: list[m.ClientMessage]) -> None:
    setup = stream[0].setup
    assert setup is not None and setup.model.startswith("models/")
    assert not any(msg.setup for msg in stream[1:])
    modalities = setup.generation_config.response_modalities  # type: ignore[union-attr]
    assert modalities is not None and len(modalities) == 1
    detection = (
        setup.realtime_input_config.automatic_activity_detection if setup.realtime_input_config else None
    )
    manual = bool(detection and detection.disabled)
    for msg in stream[1:]:
        realtime = msg.realtime_input
        if realtime is not None and (realtime.activity_start or realtime.activity_end):
            assert manual, "activity signals only with automatic activity detection off"
        if realtime is not None and realtime.audio_stream_end:
            assert not manual, "audioStreamEnd only with automatic activity detection on"
    answered = [
        r.id for msg in stream if msg.tool_response for r in msg.tool_response.function_responses or ()
    ]
    assert len(answered) == len(set(answered))
    for msg in stream:
        assert wire.decode_client(wire.encode_client(msg)) == msg


@PURE
@given(lst.setups(resume_handle="handle-1", manual_vad=False, modality="AUDIO"))
def test_a_setup_resumes_when_asked(message: m.ClientMessage) -> None:
    assert message.setup is not None and message.setup.session_resumption is not None
    assert message.setup.session_resumption.handle == "handle-1"
    assert message.setup.generation_config.response_modalities == ["AUDIO"]  # type: ignore[union-attr]


@PURE
@given(lst.user_turns(manual_vad=True))
def test_a_manual_vad_turn_is_framed_by_activity_signals_when_it_is_audio(
    turn: list[m.ClientMessage],
) -> None:
    if len(turn) > 1:
        assert turn[0].realtime_input.activity_start is not None  # type: ignore[union-attr]
        assert turn[-1].realtime_input.activity_end is not None  # type: ignore[union-attr]


@PURE
@given(st.data())
def test_tool_responses_answer_every_call_once(data: st.DataObject) -> None:
    turn = data.draw(lst.tool_call_turns())
    calls = turn[0].tool_call.function_calls or []  # type: ignore[union-attr]
    answers = data.draw(lst.tool_responses(calls))
    ids = [r.id for msg in answers for r in msg.tool_response.function_responses or ()]  # type: ignore[union-attr]
    assert ids == [call.id for call in calls]
