"""Refusals and error closes with the service's codes and texts."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import HandshakeError, open_websocket_url

from livemesh import wire
from livemesh.emulator import EmulatorConfig, ServiceLimits, open_emulator
from tests.emulator.helpers import MODEL, connect, sleep_until_closed, text_setup

INVALID = (1007, "Request contains an invalid argument.")


async def test_bad_json_as_setup_and_later() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu:
            async with connect(emu) as c:
                await c.send_raw("{not json")
                assert await sleep_until_closed(c) == INVALID
            async with connect(emu, text_setup()) as c:
                await c.send_raw('{"client_content": {"turns": 3}}')
                assert await sleep_until_closed(c) == INVALID


async def test_message_before_setup_and_second_setup() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu:
            async with connect(emu) as c:
                await c.say("hi")
                assert await sleep_until_closed(c) == INVALID
            async with connect(emu, text_setup()) as c:
                await c.send(wire.ClientMessage(setup=text_setup()))
                assert await sleep_until_closed(c) == INVALID


async def test_two_modalities_refused() -> None:
    setup = text_setup(generation_config=wire.GenerationConfig(response_modalities=["TEXT", "AUDIO"]))
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, setup, expect_setup_complete=False) as c:
            assert await sleep_until_closed(c) == INVALID


async def test_unknown_model_1008_with_version() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu:
            setup = text_setup(model="models/gemini-2.5-flash")
            async with connect(emu, setup, expect_setup_complete=False) as c:
                assert await sleep_until_closed(c) == (
                    1008,
                    "models/gemini-2.5-flash is not found for API version v1beta, "
                    "or is not supported for bidiGenerateContent",
                )
            setup = text_setup(model="x" * 300)
            async with connect(emu, setup, expect_setup_complete=False) as c:
                code, reason = await sleep_until_closed(c)
                assert code == 1008 and len(reason.encode()) <= 123


async def test_keys() -> None:
    config = EmulatorConfig(api_keys=frozenset({"good"}))
    with trio.fail_after(5):
        async with open_emulator(config) as emu:
            async with connect(emu, text_setup(), query="?key=bad", expect_setup_complete=False) as c:
                assert await sleep_until_closed(c) == (
                    1008,
                    "API key not valid. Please pass a valid API key.",
                )
            async with connect(emu, text_setup(), query="", expect_setup_complete=False) as c:
                assert (await sleep_until_closed(c))[0] == 1008
            async with connect(emu, text_setup(), query="", headers=[("x-goog-api-key", "good")]) as c:
                assert await c.ask("ok") == "You said: ok"


async def test_quota_per_key_and_max_sessions() -> None:
    limits = ServiceLimits(concurrent_sessions=1)
    with trio.fail_after(5):
        async with open_emulator(EmulatorConfig(limits=limits)) as emu:
            async with connect(emu, text_setup()):
                async with connect(emu, text_setup(), expect_setup_complete=False) as c:
                    code, reason = await sleep_until_closed(c)
                    assert code == 1011 and "quota" in reason and "RESOURCE_EXHAUSTED" in reason
                async with connect(emu, text_setup(), query="?key=other") as c:
                    assert await c.ask("x") == "You said: x"
        async with open_emulator(EmulatorConfig(max_sessions=1)) as emu:
            async with connect(emu, text_setup()):
                async with connect(emu, text_setup(), query="?key=other", expect_setup_complete=False) as c:
                    assert await sleep_until_closed(c) == (1011, "The service is currently unavailable.")


async def test_frame_too_big() -> None:
    with trio.fail_after(5):
        async with open_emulator(EmulatorConfig(max_frame_bytes=1024)) as emu:
            async with connect(emu, text_setup()) as c:
                await c.say("x" * 2048)
                assert (await sleep_until_closed(c))[0] == 1009


async def test_unknown_path_is_rejected_at_upgrade_and_double_slash_tolerated() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu:
            with pytest.raises(HandshakeError):
                async with open_websocket_url(emu.url + "/ws/nothing?key=k"):
                    pass
            path = "//ws/google.ai.generativelanguage.v1.GenerativeService.BidiGenerateContent"
            async with connect(emu, text_setup(model=MODEL.removeprefix("models/")), path=path) as c:
                assert await c.ask("ok") == "You said: ok"


async def test_snake_case_client_frames() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup()) as c:
            turn = '{"role": "user", "parts": [{"text": "snake"}]}'
            await c.send_raw('{"client_content": {"turns": [' + turn + '], "turn_complete": true}}')
            assert (await c.turn_text())[0] == "You said: snake"


async def test_input_during_blocking_call_aborts_when_asked() -> None:
    config = EmulatorConfig(abort_input_during_blocking_call=True)
    tools = [wire.Tool(function_declarations=[wire.FunctionDeclaration(name="f")])]
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, text_setup(tools=tools)) as c:
            await c.say("call f")
            await c.until("tool_call")
            await c.audio(b"\x00\x00" * 100)
            assert await sleep_until_closed(c) == (1008, "The operation was aborted.")
