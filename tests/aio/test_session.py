"""livemesh.aio sessions against the emulator: the trio semantics, from asyncio."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from typing import Any

import pytest
import trio
import trio.testing

import livemesh
import livemesh.aio
from livemesh import wire
from livemesh.aio import guest
from livemesh.emulator import EmulatorConfig
from tests.aio.helpers import AUDIO_MODEL, MODEL, run, text_options

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_ask_tools_and_a_move_under_asyncio_run() -> None:
    """The README's asyncio quickstart, plus an asyncio tool that really runs on the loop."""
    loop_of_tool: list[object] = []

    async def get_weather(city: str) -> dict[str, str]:
        """The weather in a city."""
        await asyncio.sleep(0)  # asyncio code: this fails inside trio
        loop_of_tool.append(asyncio.get_running_loop())
        return {"city": city, "sky": "sunny", "request": request_id.get()}

    async def main() -> None:
        request_id.set("r-1")
        config = EmulatorConfig(resumption_update_interval_s=0.2)
        async with livemesh.aio.open_emulator(config) as emu:
            async with livemesh.aio.open_session(**text_options(emu.url), tools=[get_weather]) as session:
                assert await session.ask("hello") == "You said: hello"
                answer = await session.ask('call get_weather {"city": "Paris"}')
                assert answer == 'get_weather returned {"city": "Paris", "request": "r-1", "sky": "sunny"}'
                await livemesh.aio.run_trio(emu.send_go_away, time_left=1.0)
                await session.wait_moved(1)
                assert json.loads(await session.ask("recall")) == ["hello"]
                assert session.statistics().connections == 2
            server = emu.stats(session.server_session_id or "")
            assert server.connections == 2 and server.resumptions == 1 and server.tool_responses == 1
        assert loop_of_tool == [asyncio.get_running_loop()]

    run(main)


def test_a_plain_tool_runs_in_a_worker_thread_and_callbacks_on_the_loop() -> None:
    threads: list[str] = []
    seen: list[str] = []

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        threads.append(threading.current_thread().name)
        return a + b

    async def on_message(message: wire.ServerMessage) -> None:
        await asyncio.sleep(0)
        if message.server_content is not None and message.server_content.turn_complete:
            seen.append("turn complete (async callback)")

    def on_transcription(direction: str, transcription: Any) -> None:
        asyncio.get_running_loop()  # a sync callback runs on the loop's thread
        seen.append(direction)

    async def main() -> None:
        async with livemesh.aio.open_emulator() as emu:
            async with livemesh.aio.open_session(
                **text_options(emu.url),
                tools=[add],
                callbacks=livemesh.Callbacks(on_message=on_message, on_transcription=on_transcription),
            ) as session:
                assert await session.ask('call add {"a": 2, "b": 3}') == 'add returned {"result": 5}'
        assert threads and threads[0] != threading.main_thread().name
        assert "turn complete (async callback)" in seen

    run(main)


async def _trio_turns(url: str, options: dict[str, Any], script: list[str]) -> list[livemesh.Turn]:
    turns: list[livemesh.Turn] = []
    async with livemesh.open_session(**options, base_url=url) as session:
        for text in script:
            await session.send_client_content(text)
            turns.append(await session.receive_turn())
            await _answer(session, turns[-1])
    return turns


async def _answer(session: Any, turn: livemesh.Turn) -> None:
    """Answer the turn's calls silently (nothing left owed; no new turn)."""
    for call in turn.tool_calls:
        response = {"id": call.id, "name": call.name, "response": {}}
        await session.send_tool_response([response], scheduling="SILENT")


def test_receive_turn_is_the_trio_sessions_turn() -> None:
    """The asyncio side assembles turns itself (it owns the stream): same result as trio's,
    for text, audio with transcripts, and a tool call answered by the caller."""
    decl = {
        "name": "lookup",
        "behavior": "NON_BLOCKING",  # the turn completes with the call in it
        "parameters": {"type": "OBJECT", "properties": {"q": {"type": "STRING"}}},
    }
    cases = [
        ({"model": MODEL, "auth": "k", "response_modalities": ["TEXT"]}, ["hello", "recall"]),
        (
            {
                "model": AUDIO_MODEL,
                "auth": "k",
                "response_modalities": ["AUDIO"],
                "output_audio_transcription": True,
            },
            ["hi there"],
        ),
        (
            {"model": MODEL, "auth": "k", "response_modalities": ["TEXT"], "tools": [decl]},
            ['call lookup {"q": "x"}', "after"],
        ),
    ]

    async def main() -> None:
        async with livemesh.aio.open_emulator() as emu:
            for options, script in cases:
                expected = await livemesh.aio.run_trio(_trio_turns, emu.url, options, script)
                got = []
                async with livemesh.aio.open_session(**options, base_url=emu.url) as session:
                    for text in script:
                        await session.send_client_content(text)
                        got.append(await session.receive_turn())
                        await _answer(session, got[-1])
                assert [_comparable(t) for t in got] == [_comparable(t) for t in expected]
                assert any(t.audio for t in got) == ("AUDIO" in options["response_modalities"])
                assert any(t.tool_calls for t in got) == ("tools" in options)

    run(main)


def _comparable(turn: livemesh.Turn) -> tuple[Any, ...]:
    # ids and usage differ between two runs; everything the turn says must not
    return (
        turn.text.replace("function-call-1", "ID").replace("function-call-2", "ID"),
        len(turn.audio),
        turn.audio_chunks,
        turn.input_transcript,
        turn.output_transcript,
        turn.interrupted,
        [c.name for c in turn.tool_calls],
        len(turn.messages),
    )


def test_cancelling_a_receive_cancels_only_that_wait() -> None:
    async def main() -> None:
        async with livemesh.aio.open_emulator() as emu:
            async with livemesh.aio.open_session(**text_options(emu.url)) as session:
                while True:  # until a receive is parked (earlier messages: resumption updates)
                    waiter = asyncio.create_task(session.receive())
                    await asyncio.sleep(0)
                    if not waiter.done():
                        break
                    assert waiter.result().server_content is None
                waiter.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiter
                assert session.state == "open"
                # Nothing was taken: the whole answer of the next turn arrives.
                await session.send_client_content("one")
                turn = await session.receive_turn()
                assert turn.text == "You said: one"
                assert await session.ask("two") == "You said: two"

    run(main)


def test_a_message_delivered_to_a_cancelled_receiver_stays_queued() -> None:
    """The race the mailbox must win: the message is put while the receiver is being cancelled."""
    from livemesh.aio.streams import Mailbox

    async def main() -> None:
        mailbox = Mailbox()
        receiver = asyncio.create_task(mailbox.next())
        await asyncio.sleep(0)  # parked in the queue
        message = wire.ServerMessage(setup_complete=wire.SetupComplete())
        mailbox._queue.put_nowait(message)  # the pump's put (same thread)
        receiver.cancel()  # before the receiver ran again
        with pytest.raises(asyncio.CancelledError):
            await receiver
        assert await mailbox.next() is message

    run(main)


def test_a_failed_session_raises_in_the_asyncio_caller() -> None:
    async def main() -> None:
        async with livemesh.aio.open_emulator() as emu:
            # A receiver sees the error once every earlier message was received.
            with pytest.raises(livemesh.ServiceClosedError) as caught:
                async with livemesh.aio.open_session(**text_options(emu.url)) as session:
                    assert await session.ask("hello") == "You said: hello"
                    await livemesh.aio.run_trio(emu.drop, close_code=1008)
                    async for _ in session:
                        pass
            assert caught.value.code == 1008
            # The block's body, busy elsewhere, is cancelled and the block raises the error.
            body: list[str] = []
            with pytest.raises(livemesh.ServiceClosedError):
                async with livemesh.aio.open_session(**text_options(emu.url)) as session:
                    await livemesh.aio.run_trio(emu.drop, close_code=1008)
                    try:
                        await asyncio.sleep(3600)
                    except asyncio.CancelledError:
                        body.append("cancelled")
                        raise
            assert body == ["cancelled"]
            assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
            # Sending to it afterwards: the trio session's own error
            with pytest.raises(livemesh.SessionClosedError):
                await session.send_client_content("late")

    run(main)


def test_setup_rejection_and_bad_settings_raise_the_trio_errors() -> None:
    async def main() -> None:
        with pytest.raises(livemesh.ConfigError):
            livemesh.aio.open_session(model=MODEL, response_modalities=["TEXT", "AUDIO"])
        assert guest.current_guest_run() is None  # refused at the call: nothing started
        async with livemesh.aio.open_emulator(EmulatorConfig(api_keys=("good",))) as emu:
            with pytest.raises(livemesh.AuthError):
                async with livemesh.aio.open_session(**{**text_options(emu.url), "auth": "bad"}):
                    pytest.fail("the block must not run")
            async with livemesh.aio.open_session(**{**text_options(emu.url), "auth": "good"}) as session:
                with pytest.raises(livemesh.ConfigError):
                    await session.send_realtime_input(audio=b"\0\0", text="two inputs")
                with pytest.raises(livemesh.LocalProtocolError):
                    await session.send_tool_response([{"id": "never-called", "name": "x", "response": {}}])
                await session.aclose()
                async for message in session:  # what was left, then the end (no error)
                    assert message.server_content is None
                with pytest.raises(livemesh.SessionClosedError):
                    await session.receive()
                with pytest.raises(livemesh.SessionClosedError):
                    await session.send_client_content("after close")

    run(main)


def test_an_asyncio_tool_is_cancelled_when_the_session_times_it_out() -> None:
    cancelled: list[str] = []

    async def slow() -> str:
        """Never finishes in time."""
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise
        return "late"

    async def main() -> None:
        async with livemesh.aio.open_emulator() as emu:
            async with livemesh.aio.open_session(
                **text_options(emu.url), tools=[livemesh.function_tool(slow, timeout=0.05)]
            ) as session:
                assert (
                    await session.ask("call slow {}") == 'slow returned {"error": "timed out after 0.05 s"}'
                )
        assert cancelled == ["slow"]

    run(main)


def test_trio_tools_in_a_trio_session_are_untouched() -> None:
    """Only livemesh.aio wraps async functions: the trio API keeps awaiting them in trio."""

    async def trio_tool() -> str:
        """A trio tool."""
        await trio.lowlevel.checkpoint()
        return "trio"

    async def main() -> None:
        async with livemesh.aio.open_emulator() as emu:

            async def trio_side() -> str:
                async with livemesh.open_session(**text_options(emu.url), tools=[trio_tool]) as s:
                    return await s.ask("call trio_tool {}")

            assert await livemesh.aio.run_trio(trio_side) == 'trio_tool returned {"result": "trio"}'

    run(main)


def test_cancelled_sends_are_not_sent() -> None:
    """A send waiting for room (input held during a BLOCKING call, hold limit reached) and one
    queued behind it, both cancelled: neither reaches the service; the session goes on."""
    decl = {"name": "wait", "parameters": {"type": "OBJECT", "properties": {}}}

    async def main() -> None:
        async with livemesh.aio.open_emulator() as emu:
            options = text_options(emu.url, tools=[decl], hold_limit=2)
            async with livemesh.aio.open_session(**options) as session:
                await session.send_client_content("call wait {}")
                call = None
                while call is None:
                    message = await session.receive()
                    if message.tool_call is not None:
                        call = (message.tool_call.function_calls or [])[0]
                chunk = bytes(3200)
                held = 0
                while True:  # input is held, until the session's producers block
                    running = asyncio.create_task(session.send_realtime_input(audio=chunk))
                    await asyncio.sleep(0)
                    await livemesh.aio.run_trio(trio.testing.wait_all_tasks_blocked)
                    if not running.done():
                        break
                    await running
                    held += 1
                    assert held < 100
                queued = asyncio.create_task(session.send_realtime_input(audio=chunk))
                await asyncio.sleep(0)
                assert not running.done() and not queued.done()
                queued.cancel()
                running.cancel()
                for task in (queued, running):
                    with pytest.raises(asyncio.CancelledError):
                        await task
                await session.send_tool_response([{"id": call.id, "name": call.name, "response": {}}])
                await session.receive_turn()  # "wait returned {}"
                stats = json.loads(await session.ask("stats"))
                assert held > 0 and stats["audio_chunks"] == held
                await session.send_realtime_input(audio=chunk)  # still usable
                assert json.loads(await session.ask("stats"))["audio_chunks"] == held + 1

    run(main)
