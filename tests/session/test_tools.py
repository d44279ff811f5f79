"""Function calling: automatic answers from plain functions, the seed's on_tool_call, manual
answers, cancellation, errors, timeouts, NON_BLOCKING concurrency and the exactly-once ledger."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from livemesh import wire
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.app import Emulator
from livemesh.errors import LocalProtocolError
from livemesh.session import function_tool, open_session
from tests.session.conftest import make_config
from tests.session.workload import SILENCE, drain


def get_stock_price(symbol: str) -> dict[str, Any]:
    """Get the current stock price.

    Args:
        symbol: The ticker, e.g. AAPL.
    """
    return {"price": 178.50, "currency": "USD", "symbol": symbol}


async def test_function_calling_with_automatic_response(emu: Emulator) -> None:
    with trio.fail_after(10):
        async with open_session(make_config(emu, tools=[get_stock_price])) as session:
            await session.send_client_content('call get_stock_price {"symbol": "AAPL"}')
            turn = await session.receive_turn()
            assert [c.name for c in turn.tool_calls] == ["get_stock_price"]
            answer = {"currency": "USD", "price": 178.5, "symbol": "AAPL"}
            assert turn.text == f"get_stock_price returned {json.dumps(answer, sort_keys=True)}"
            stats = emu.stats(session.server_session_id or "")
            assert (stats.tool_responses, stats.unknown_tool_responses) == (1, 0)
    metrics = session.statistics()
    assert (metrics.tool_calls, metrics.tool_errors) == (1, 0)
    assert metrics.tool_latency_max_s >= 0


async def test_seed_style_on_tool_call_returns_responses(emu: Emulator) -> None:
    tools = [
        {
            "function_declarations": [
                {
                    "name": "get_weather",
                    "description": "Get current weather for a location",
                    "parameters": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    },
                }
            ]
        }
    ]
    seen: list[wire.ToolCall] = []

    def on_tool_call(tool_call: wire.ToolCall) -> tuple[str, list[dict[str, Any]]]:
        seen.append(tool_call)
        calls = tool_call.function_calls or []
        return ("tool_response", [{"id": c.id, "name": c.name, "response": {"temp": 72}} for c in calls])

    config = make_config(emu, tools=tools, callbacks={"on_tool_call": on_tool_call})
    with trio.fail_after(10):
        async with open_session(config) as session:
            reply = await session.ask('call get_weather {"location": "Paris"}')
            assert reply == 'get_weather returned {"temp": 72}'
    assert len(seen) == 1


async def test_manual_tool_response_exactly_once(emu: Emulator) -> None:
    tools = [wire.FunctionDeclaration(name="lookup", description="Look something up")]
    with trio.fail_after(10):
        async with open_session(make_config(emu, tools=tools)) as session:
            await session.send_client_content("call lookup {}")
            async for message in session:
                if message.tool_call is not None:
                    call = (message.tool_call.function_calls or [])[0]
                    break
            with pytest.raises(LocalProtocolError):
                await session.send_tool_response({"id": "no-such-call", "name": "lookup", "response": {}})
            await session.send_tool_response({"id": call.id, "name": "lookup", "response": {"found": True}})
            with pytest.raises(LocalProtocolError):
                await session.send_tool_response({"id": call.id, "name": "lookup", "response": {"again": 1}})
            turn = await session.receive_turn()
            assert turn.text == 'lookup returned {"found": true}'
            stats = emu.stats(session.server_session_id or "")
            assert (stats.tool_responses, stats.unknown_tool_responses) == (1, 0)


async def test_hanging_tool_is_cancelled_by_tool_call_cancellation(emu: Emulator) -> None:
    started = trio.Event()
    finished: list[str] = []

    async def hang() -> dict[str, Any]:
        """Never returns on its own."""
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            finished.append("cancelled")
        return {}  # pragma: no cover

    cancelled_ids: list[list[str]] = []
    config = make_config(emu, tools=[hang], callbacks={"on_tool_call_cancellation": cancelled_ids.append})
    with trio.fail_after(10):
        async with open_session(config) as session:
            await session.send_client_content("call hang {}")
            await started.wait()
            await session.send_client_content("never mind")  # interrupts the turn: the call is cancelled
            first = await session.receive_turn()
            assert first.interrupted
            second = await session.receive_turn()
            assert second.text == "You said: never mind"
            assert finished == ["cancelled"]
            stats = emu.stats(session.server_session_id or "")
            assert stats.tool_responses == 0  # a cancelled call is owed nothing
    assert len(cancelled_ids) == 1
    assert session.statistics().tool_cancellations == 1


async def test_raising_tool_answers_with_an_error_and_the_session_lives(emu: Emulator) -> None:
    def boom(x: int) -> int:
        raise ValueError(f"bad x {x}")

    with trio.fail_after(10):
        async with open_session(make_config(emu, tools=[boom])) as session:
            reply = await session.ask('call boom {"x": 3}')
            assert reply == 'boom returned {"error": "ValueError: bad x 3"}'
            assert await session.ask("still there?") == "You said: still there?"
    assert session.statistics().tool_errors == 1


async def test_tool_timeout_answers_in_time(emu: Emulator) -> None:
    async def slow() -> str:
        await trio.sleep_forever()
        return "never"  # pragma: no cover

    with trio.fail_after(10):
        async with open_session(make_config(emu, tools=[function_tool(slow, timeout=0.05)])) as session:
            reply = await session.ask("call slow {}")
            assert reply == 'slow returned {"error": "timed out after 0.05 s"}'


async def test_non_blocking_tool_runs_while_the_conversation_goes_on(emu: Emulator) -> None:
    release = trio.Event()

    async def research(topic: str) -> dict[str, str]:
        await release.wait()
        return {"summary": f"all about {topic}"}

    tool = function_tool(research, behavior=wire.Behavior.NON_BLOCKING, scheduling=wire.Scheduling.WHEN_IDLE)
    with trio.fail_after(10):
        async with open_session(make_config(emu, tools=[tool])) as session:
            assert await session.ask('call research {"topic": "trio"}') == "Calling research."
            assert await session.ask("meanwhile") == "You said: meanwhile"  # the tool is still running
            release.set()
            turn = await session.receive_turn()
            assert turn.text == 'research returned {"summary": "all about trio"}'


async def test_realtime_input_is_held_while_a_blocking_call_is_pending() -> None:
    """Streaming audio while a BLOCKING call waits is reported to end the session with 1008; the
    session holds that input until the answer is sent, then flushes it (nothing lost)."""
    release = trio.Event()
    started = trio.Event()

    async def approve() -> dict[str, bool]:
        started.set()
        await release.wait()
        return {"ok": True}

    async with open_emulator(EmulatorConfig(abort_input_during_blocking_call=True)) as emu:
        with trio.fail_after(10):
            async with open_session(make_config(emu, tools=[approve])) as session:
                await session.send_client_content("call approve {}")
                await started.wait()
                for _ in range(5):
                    await session.send_realtime_input(audio=SILENCE)
                assert session.statistics().held >= 5 - 1
                release.set()
                turn = await session.receive_turn()
                assert turn.text == 'approve returned {"ok": true}'
                stats = emu.stats(session.server_session_id or "")
                reply = await session.ask("stats")
                assert json.loads(reply)["audio_chunks"] == 5
                assert stats.tool_responses == 1


async def test_drain_helper_stops_with_the_session(emu: Emulator) -> None:
    with trio.fail_after(5):
        async with open_session(make_config(emu)) as session, trio.open_nursery() as nursery:
            nursery.start_soon(drain, session)
            await session.send_client_content("hi")
            await session.aclose()
