"""The model families: gemini-3.8-live's behaviours, the older families unchanged, streamed args."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from livemesh import wire
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.config import DEFAULT_LIVE_MODELS
from livemesh.emulator.families import GEMINI_3_8_LIVE, HALF_CASCADE, NATIVE_AUDIO_2_5, family_of
from tests.emulator.helpers import Client, connect, sleep_until_closed, text_setup

CURRENT = "models/gemini-3.8-live"
NATIVE = "models/gemini-2.5-flash-native-audio-preview-12-2025"
OLDER = "models/gemini-live-2.5-flash-preview"
TOOLS = [wire.Tool(function_declarations=[wire.FunctionDeclaration(name="lookup")])]


def audio_setup(model: str = CURRENT, **fields: Any) -> wire.Setup:
    fields.setdefault("generation_config", wire.GenerationConfig(response_modalities=["AUDIO"]))
    return wire.Setup(model=model, **fields)


async def read_turn(c: Client) -> list[wire.ServerMessage]:
    """Every message up to and including the next turnComplete."""
    seen, last = await c.until("turn_complete")
    return [*seen, last]


def transcript(messages: list[wire.ServerMessage]) -> str:
    return "".join(wire.output_transcript(m) for m in messages)


# ----------------------------------------------------------------------------- gemini-3.8-live


async def test_current_model_answers_audio_with_transcription_in_one_message_then_idle() -> None:
    setup = audio_setup(output_audio_transcription=wire.AudioTranscriptionConfig())
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, setup) as c:
            await c.say("hello")
            turn = await read_turn(c)
            contents = [m.server_content for m in turn if m.server_content is not None]
            # a usage-only serverContent before the first model turn (then never again)
            first = next(m for m in turn if m.server_content is not None)
            assert first.server_content == wire.ServerContent() and first.usage_metadata is not None
            spoken = [sc for sc in contents if sc.model_turn is not None]
            assert spoken and all(sc.output_transcription is not None for sc in spoken)
            assert all(wire.extract_audio(sc) for sc in spoken)
            assert transcript(turn) == "You said: hello"
            last = contents[-1]
            assert last.turn_complete and last.interaction_status == wire.InteractionStatus.IDLE
            assert turn[-1].usage_metadata is not None
            await c.say("again")
            turn = await read_turn(c)
            assert not any(m.server_content == wire.ServerContent() for m in turn)


async def test_current_model_calls_are_non_blocking_by_default() -> None:
    with trio.fail_after(5):
        async with (
            open_emulator() as emu,
            connect(
                emu, audio_setup(tools=TOOLS, output_audio_transcription=wire.AudioTranscriptionConfig())
            ) as c,
        ):
            await c.say('call lookup {"q": 1}')
            turn = await read_turn(c)
            (call,) = [fc for m in turn if m.tool_call for fc in m.tool_call.function_calls or []]
            assert transcript(turn) == "Calling lookup."  # the turn went on without an answer
            assert turn[-1].server_content is not None
            assert turn[-1].server_content.interaction_status == wire.InteractionStatus.IN_PROGRESS
            response = wire.FunctionResponse(id=call.id, name="lookup", response={"a": 2})
            await c.send(wire.ClientMessage(tool_response=wire.ToolResponse(function_responses=[response])))
            turn = await read_turn(c)
            assert transcript(turn) == 'lookup returned {"a": 2}'
            assert turn[-1].server_content is not None
            assert turn[-1].server_content.interaction_status == wire.InteractionStatus.IDLE


async def test_a_declared_blocking_call_still_blocks_on_the_current_model() -> None:
    tools = [wire.Tool(function_declarations=[wire.FunctionDeclaration(name="lookup", behavior="BLOCKING")])]
    setup = audio_setup(tools=tools, output_audio_transcription=wire.AudioTranscriptionConfig())
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, setup) as c:
            await c.say("call lookup")
            _, message = await c.until("tool_call")
            assert message.tool_call is not None and message.tool_call.function_calls
            (call,) = message.tool_call.function_calls
            response = wire.FunctionResponse(id=call.id, name="lookup", response={})
            await c.send(wire.ClientMessage(tool_response=wire.ToolResponse(function_responses=[response])))
            # nothing was said before the answer: a non-blocking call would have said "Calling lookup."
            assert transcript(await read_turn(c)) == "lookup returned {}"


REFUSED_SETUPS = {
    "text modality": audio_setup(generation_config=wire.GenerationConfig(response_modalities=["TEXT"])),
    "thinking_level": audio_setup(
        generation_config=wire.GenerationConfig(thinking_config=wire.ThinkingConfig(thinking_level="LOW"))
    ),
    "proactive_audio false": audio_setup(proactivity=wire.ProactivityConfig(proactive_audio=False)),
    "enable_affective_dialog": audio_setup(
        generation_config=wire.GenerationConfig(enable_affective_dialog=True)
    ),
}


@pytest.mark.parametrize("setup", REFUSED_SETUPS.values(), ids=REFUSED_SETUPS.keys())
async def test_current_model_refuses_what_it_no_longer_takes(setup: wire.Setup) -> None:
    async with open_emulator() as emu, connect(emu, setup, expect_setup_complete=False) as c:
        assert await sleep_until_closed(c) == (1007, "Request contains an invalid argument.")
    # the older families take the same setup
    older = wire.Setup(model=NATIVE, generation_config=setup.generation_config, proactivity=setup.proactivity)
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, older) as c:
            await c.say("hi")
            turn = await read_turn(c)
            assert turn[-1].server_content is not None and turn[-1].server_content.interaction_status is None


async def test_current_model_refuses_media_chunks() -> None:
    blob = wire.Blob(data=b"\x00\x00" * 160, mime_type="audio/pcm;rate=16000")
    message = wire.ClientMessage(realtime_input=wire.RealtimeInput(media_chunks=[blob]))
    async with open_emulator() as emu:
        async with connect(emu, audio_setup()) as c:
            await c.send(message)
            assert await sleep_until_closed(c) == (1007, "Request contains an invalid argument.")
        setup = audio_setup(NATIVE, output_audio_transcription=wire.AudioTranscriptionConfig())
        async with connect(emu, setup) as c:
            await c.send(message)  # accepted (deprecated) by the 2.5 family
            await c.say("still here")
            with trio.fail_after(5):
                assert transcript(await read_turn(c)) == "You said: still here"


# ----------------------------------------------------------------------------- every family


@pytest.mark.parametrize("model", [CURRENT, NATIVE, OLDER])
async def test_an_unknown_setup_field_is_refused_with_the_parsers_text(model: str) -> None:
    setup = audio_setup(model, generation_config=wire.GenerationConfig(extra={"model_selection_config": {}}))
    async with open_emulator() as emu, connect(emu, setup, expect_setup_complete=False) as c:
        code, reason = await sleep_until_closed(c)
    assert code == 1007
    assert reason == (
        'Invalid JSON payload received. Unknown name "model_selection_config" '
        "at 'setup.generation_config': Cannot find field."
    )


async def test_an_unknown_field_in_a_later_message_closes_with_1007() -> None:
    async with open_emulator() as emu, connect(emu, text_setup()) as c:
        await c.send(
            wire.ClientMessage(client_content=wire.ClientContent(turn_complete=True, extra={"zz": 1}))
        )
        assert await sleep_until_closed(c) == (
            1007,
            "Invalid JSON payload received. Unknown name \"zz\" at 'client_content': Cannot find field.",
        )


async def test_older_families_keep_their_behaviour() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu:
            for model in (NATIVE, OLDER):  # TEXT answers, BLOCKING calls, no interactionStatus
                async with connect(emu, text_setup(model=model, tools=TOOLS)) as c:
                    await c.say("hello")
                    text, seen = await c.turn_text()
                    assert text == "You said: hello"
                    assert all(
                        m.server_content is None or m.server_content.interaction_status is None for m in seen
                    )
                    assert not any(m.server_content == wire.ServerContent() for m in seen)
                    await c.say("call lookup")
                    _, message = await c.until("tool_call")
                    assert message.tool_call is not None and message.tool_call.function_calls
                    (call,) = message.tool_call.function_calls
                    answer = wire.FunctionResponse(id=call.id, name="lookup", response={})
                    await c.send(
                        wire.ClientMessage(tool_response=wire.ToolResponse(function_responses=[answer]))
                    )
                    assert (await c.turn_text())[0] == "lookup returned {}"  # nothing said before the answer


def test_every_default_model_has_a_family_and_names_not_listed_keep_the_old_behaviour() -> None:
    assert DEFAULT_LIVE_MODELS[0] == "gemini-3.8-live"
    assert family_of("gemini-3.8-live") is GEMINI_3_8_LIVE
    assert family_of("gemini-2.5-flash-native-audio-preview-12-2025") is NATIVE_AUDIO_2_5
    assert family_of("gemini-2.0-flash-live-001") is HALF_CASCADE
    assert family_of("my-native-audio-model") is NATIVE_AUDIO_2_5
    assert family_of("anything-else") is HALF_CASCADE


# ----------------------------------------------------------------------------- streamed arguments


def assemble(pieces: list[wire.FunctionCall]) -> dict[str, Any]:
    """A reference assembler: every PartialArg's value at its JSON path (strings concatenated)."""
    args: dict[str, Any] = {}
    for piece in pieces:
        for arg in piece.partial_args or []:
            assert arg.json_path is not None and arg.json_path.startswith("$.")
            if arg.string_value is not None:
                value: Any = args.get(arg.json_path, "") + arg.string_value
            elif arg.number_value is not None:
                value = arg.number_value
            elif arg.bool_value is not None:
                value = arg.bool_value
            else:
                assert arg.null_value == "NULL_VALUE"
                value = None
            args[arg.json_path] = value
    return args


async def test_streamed_function_arguments_behind_a_flag() -> None:
    config = EmulatorConfig(stream_function_args=True)
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, text_setup(tools=TOOLS)) as c:
            await c.say('call lookup {"city": "Paris", "n": 2, "ok": true, "none": null, "at": {"x": [1]}}')
            pieces: list[wire.FunctionCall] = []
            while not pieces or pieces[-1].will_continue:
                _, message = await c.until("tool_call")
                assert message.tool_call is not None
                (piece,) = message.tool_call.function_calls or []
                pieces.append(piece)
            assert {p.id for p in pieces} == {pieces[0].id} and all(p.name == "lookup" for p in pieces)
            assert all(p.args is None for p in pieces) and pieces[-1].partial_args is None
            assert assemble(pieces) == {
                "$.city": "Paris",
                "$.n": 2.0,
                "$.ok": True,
                "$.none": None,
                "$.at.x[0]": 1.0,
            }
            response = wire.FunctionResponse(id=pieces[0].id, name="lookup", response={"a": 1})
            await c.send(wire.ClientMessage(tool_response=wire.ToolResponse(function_responses=[response])))
            assert await c.ask("stats")  # the blocking turn ended with the answer; the session goes on
