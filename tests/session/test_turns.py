"""TurnBuilder: an interaction ends on IDLE where the model sends interactionStatus (on
turnComplete where it does not), several parts in one serverContent, a usage-only serverContent
before the first turn, and streamed function calls assembled once."""

from __future__ import annotations

import pytest

from livemesh import wire
from livemesh.session.turns import TurnBuilder, ends_interaction

AUDIO = b"\x01\x00" * 4


def content(**fields: object) -> wire.ServerMessage:
    return wire.ServerMessage(server_content=wire.ServerContent(**fields))  # type: ignore[arg-type]


def spoken(text: str, audio: bytes = AUDIO) -> wire.ServerMessage:
    """Audio and its transcription in one message (gemini-3.x)."""
    part = wire.Part(inline_data=wire.Blob(data=audio, mime_type="audio/pcm;rate=24000"))
    return content(
        model_turn=wire.Content(role="model", parts=[part]),
        output_transcription=wire.Transcription(text=text),
    )


def done(status: str | None = None, usage: int = 0) -> wire.ServerMessage:
    return wire.ServerMessage(
        server_content=wire.ServerContent(turn_complete=True, interaction_status=status),
        usage_metadata=wire.UsageMetadata(total_token_count=usage) if usage else None,
    )


def feed(messages: list[wire.ServerMessage]) -> tuple[list[bool], TurnBuilder]:
    builder = TurnBuilder()
    return [builder.add(message) for message in messages], builder


@pytest.mark.parametrize(
    ("fields", "ends"),
    [
        ({"turn_complete": True}, True),  # no status: turnComplete ends it (older models)
        ({"turn_complete": True, "interaction_status": "IDLE"}, True),
        ({"turn_complete": True, "interaction_status": "IN_PROGRESS"}, False),
        ({"interaction_status": "IDLE"}, True),  # IDLE alone ends it, as in the SDK
        ({"interaction_status": "REQUIRES_ACTION"}, True),  # the SDK's deprecated spelling of IDLE
        ({"turn_complete": True, "interaction_status": "INTERACTION_STATUS_UNSPECIFIED"}, True),
        ({"turn_complete": True, "interaction_status": "SOMETHING_NEW"}, True),  # unknown: turnComplete
        ({"interaction_status": "SOMETHING_NEW"}, False),
        ({"generation_complete": True}, False),
        ({}, False),
    ],
)
def test_ends_interaction(fields: dict[str, object], ends: bool) -> None:
    assert ends_interaction(wire.ServerContent(**fields)) is ends  # type: ignore[arg-type]


def test_audio_and_transcription_in_one_message_and_usage_before_the_first_turn() -> None:
    usage_only = wire.ServerMessage(
        server_content=wire.ServerContent(), usage_metadata=wire.UsageMetadata(total_token_count=5)
    )
    ended, builder = feed(
        [
            usage_only,
            spoken("Hel"),
            spoken("lo", b"\x02\x00"),
            content(generation_complete=True),
            done("IDLE", 9),
        ]
    )
    assert ended == [False, False, False, False, True]
    turn = builder.build()
    assert turn.output_transcript == "Hello"
    assert turn.audio == AUDIO + b"\x02\x00" and turn.audio_chunks == 2
    assert turn.text == ""
    assert turn.usage == wire.UsageMetadata(total_token_count=9)
    assert (turn.model_turns, turn.interaction_status, turn.interrupted) == (1, "IDLE", False)
    assert len(turn.messages) == 5


def test_text_audio_and_both_transcriptions_in_one_message() -> None:
    parts = [
        wire.Part(text="thinking", thought=True),
        wire.Part(text="Hi"),
        wire.Part(inline_data=wire.Blob(data=AUDIO, mime_type="audio/pcm")),
    ]
    message = content(
        model_turn=wire.Content(parts=parts),
        input_transcription=wire.Transcription(text="hey"),
        output_transcription=wire.Transcription(text="Hi"),
        turn_complete=True,
    )
    ended, builder = feed([message])
    turn = builder.build()
    assert ended == [True]
    assert (turn.text, turn.audio, turn.input_transcript, turn.output_transcript) == (
        "Hi",
        AUDIO,
        "hey",
        "Hi",
    )


def test_in_progress_is_not_the_end_the_next_idle_is() -> None:
    call = wire.FunctionCall(id="c1", name="lookup", args={"q": 1})
    ended, builder = feed(
        [
            wire.ServerMessage(tool_call=wire.ToolCall(function_calls=[call])),
            spoken("Calling lookup."),
            done("IN_PROGRESS"),
            spoken("lookup returned 2"),
            done("IDLE"),
        ]
    )
    assert ended == [False, False, False, False, True]
    turn = builder.build()
    assert turn.output_transcript == "Calling lookup.\nlookup returned 2"
    assert turn.tool_calls == (call,)
    assert (turn.model_turns, turn.interaction_status) == (2, "IDLE")


def test_an_interruption_with_in_progress_goes_on_into_the_next_turn() -> None:
    ended, builder = feed(
        [spoken("Long ans"), content(interrupted=True), done("IN_PROGRESS"), spoken("Sure."), done("IDLE")]
    )
    assert ended[-1] and not any(ended[:-1])
    turn = builder.build()
    assert turn.interrupted and turn.output_transcript == "Long ans\nSure."


def test_older_models_end_at_turn_complete() -> None:
    ended, builder = feed([content(model_turn=wire.Content(parts=[wire.Part(text="ok")])), done()])
    assert ended == [False, True]
    assert (builder.build().model_turns, builder.build().interaction_status) == (1, None)


def test_streamed_calls_appear_once_whole_and_cancelled_pieces_are_dropped() -> None:
    def piece(call_id: str, path: str, value: str, more: bool = True) -> wire.ServerMessage:
        arg = wire.PartialArg(json_path=path, string_value=value)
        call = wire.FunctionCall(id=call_id, name="f", partial_args=[arg], will_continue=more)
        return wire.ServerMessage(tool_call=wire.ToolCall(function_calls=[call]))

    ended, builder = feed(
        [
            piece("a", "$.city", "Paris"),
            piece("b", "$.x", "1"),
            wire.ServerMessage(tool_call_cancellation=wire.ToolCallCancellation(ids=["b"])),
            piece("a", "$.day", "Mon", more=False),
            done("IDLE"),
        ]
    )
    assert ended[-1]
    assert builder.build().tool_calls == (
        wire.FunctionCall(id="a", name="f", args={"city": "Paris", "day": "Mon"}),
    )
