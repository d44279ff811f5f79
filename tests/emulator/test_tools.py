"""Tool calls: BLOCKING round trip, NON_BLOCKING scheduling, cancellation on interruption."""

from __future__ import annotations

import trio

from livemesh import wire
from livemesh.emulator import EmulatorConfig, open_emulator
from tests.emulator.helpers import Client, connect, session_of, text_setup

TOOLS = [
    wire.Tool(
        function_declarations=[
            wire.FunctionDeclaration(name="lookup", parameters={"type": "OBJECT"}),
            wire.FunctionDeclaration(name="later", behavior=wire.Behavior.NON_BLOCKING),
        ]
    )
]


async def call(c: Client, text: str) -> wire.FunctionCall:
    await c.say(text)
    _, message = await c.until("tool_call")
    assert message.tool_call is not None and message.tool_call.function_calls
    return message.tool_call.function_calls[0]


async def answer(
    c: Client, fc: wire.FunctionCall, response: dict[str, object], scheduling: str | None = None
) -> None:
    reply = wire.FunctionResponse(id=fc.id, name=fc.name, response=response, scheduling=scheduling)
    await c.send(wire.ClientMessage(tool_response=wire.ToolResponse(function_responses=[reply])))


async def test_blocking_round_trip_and_unique_ids() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup(tools=TOOLS)) as c:
            fc = await call(c, 'call lookup {"city": "Paris"}')
            assert fc.name == "lookup" and fc.args == {"city": "Paris"} and fc.id
            await answer(c, fc, {"temp": 21})
            text, _ = await c.turn_text()
            assert text == 'lookup returned {"temp": 21}'
            fc2 = await call(c, "call lookup")
            assert fc2.id != fc.id and fc2.args == {}
            await answer(c, fc2, {})
            await c.turn_text()
            await answer(c, fc2, {})  # a duplicate
            stats = await c.ask_json("stats")
            assert stats["tool_responses"] == 3 and stats["unknown_tool_responses"] == 1
            assert emu.stats(session_of(c)).texts == ()


async def test_undeclared_name_is_just_text() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup(tools=TOOLS)) as c:
            assert await c.ask("call nothing") == "You said: call nothing"


async def test_interrupt_cancels_pending_blocking_call() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup(tools=TOOLS)) as c:
            fc = await call(c, "call lookup")
            await c.say("never mind")
            seen, _ = await c.until("tool_call_cancellation")
            assert any(m.server_content and m.server_content.interrupted for m in seen)
            text, _ = await c.turn_text()  # the interrupted turn's turnComplete
            assert text == ""
            assert (await c.turn_text())[0] == "You said: never mind"
            await answer(c, fc, {})  # late answer to a cancelled call: not "unknown"
            stats = await c.ask_json("stats")
            assert stats["tool_responses"] == 1 and stats["unknown_tool_responses"] == 0


async def test_non_blocking_scheduling() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup(tools=TOOLS)) as c:
            fc = await call(c, "call later")
            text, _ = await c.turn_text()
            assert text == "Calling later."
            await answer(c, fc, {"ok": 1}, wire.Scheduling.WHEN_IDLE)
            text, _ = await c.turn_text()
            assert text == 'later returned {"ok": 1}'
            fc = await call(c, "call later")
            await c.turn_text()
            await answer(c, fc, {"ok": 2}, wire.Scheduling.SILENT)
            assert await c.ask("hi") == 'later returned {"ok": 2} You said: hi'
            fc = await call(c, "call later")
            await c.turn_text()
            await answer(c, fc, {"ok": 3}, wire.Scheduling.INTERRUPT)
            assert (await c.turn_text())[0] == 'later returned {"ok": 3}'


async def test_interrupt_scheduling_interrupts_a_running_turn() -> None:
    config = EmulatorConfig(chunks_per_reply=40, chunk_interval_s=0.02)
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, text_setup(tools=TOOLS)) as c:
            fc = await call(c, "call later")
            await c.turn_text()
            await c.say("talk for a while")
            await c.until("server_content")
            await answer(c, fc, {"ok": 4}, wire.Scheduling.INTERRUPT)
            seen, _ = await c.until("turn_complete")
            assert any(m.server_content and m.server_content.interrupted for m in seen)
            assert (await c.turn_text())[0] == 'later returned {"ok": 4}'


async def test_no_handle_while_call_pending() -> None:
    config = EmulatorConfig(resumption_update_interval_s=0.01)
    setup = text_setup(tools=TOOLS, session_resumption=wire.SessionResumptionConfig())
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, setup) as c:
            fc = await call(c, "call lookup")
            with trio.move_on_after(0.1):
                while True:
                    message = await c.recv()
                    update = message.session_resumption_update
                    assert update is None or not update.resumable
            await answer(c, fc, {})
            await c.turn_text()
            _, update = await c.until("session_resumption_update")
            assert update.session_resumption_update and update.session_resumption_update.resumable
