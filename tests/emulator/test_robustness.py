"""One connection's failure stays with it; idle and vanished peers release their resources."""

from __future__ import annotations

import logging

import pytest
import trio
from trio_websocket import open_websocket_url, wrap_client_stream

from livemesh import wire
from livemesh.emulator import EmulatorConfig, ServiceLimits, model, open_emulator
from tests.emulator.helpers import GEMINI, connect, sleep_until_closed, text_setup


async def test_a_crashing_connection_does_not_stop_the_server(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = model.say_reply

    def flaky(text: str) -> str:
        if text == "boom":
            raise RuntimeError("scripted crash")
        return real(text)

    monkeypatch.setattr(model, "say_reply", flaky)
    caplog.set_level(logging.CRITICAL, logger="livemesh.emulator")
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup()) as healthy:
            async with connect(emu, text_setup()) as doomed:
                await doomed.say("boom")
                assert await sleep_until_closed(doomed) == (1011, "Internal error occurred.")
            assert await healthy.ask("still fine") == "You said: still fine"
            async with connect(emu, text_setup()) as fresh:
                assert await fresh.ask("new") == "You said: new"


async def test_setup_timeout_and_idle_http() -> None:
    config = EmulatorConfig(setup_timeout_s=0.1, http_idle_timeout_s=0.1)
    with trio.fail_after(5):
        async with open_emulator(config) as emu:
            async with connect(emu) as c:
                assert (await sleep_until_closed(c))[0] == 1011
            stream = await trio.open_tcp_stream("127.0.0.1", emu.port)
            async with stream:
                assert await stream.receive_some(100) == b""  # closed by the server


async def test_vanished_clients_leave_nothing_behind() -> None:
    config = EmulatorConfig(chunks_per_reply=200, chunk_interval_s=0.001)
    with trio.fail_after(10):
        async with open_emulator(config) as emu:
            for _ in range(5):
                stream = await trio.open_tcp_stream("127.0.0.1", emu.port)
                async with trio.open_nursery() as nursery:
                    path = (
                        "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=k"
                    )
                    ws = await wrap_client_stream(nursery, stream, "127.0.0.1", path)
                    await ws.send_message(wire.encode_client(wire.ClientMessage(setup=text_setup())).decode())
                    await ws.get_message()
                    content = wire.Content(parts=[wire.Part(text="x" * 300)], role="user")
                    message = wire.ClientMessage(
                        client_content=wire.ClientContent(turns=[content], turn_complete=True)
                    )
                    await ws.send_message(wire.encode_client(message).decode())
                    await ws.get_message()
                    await trio.aclose_forcefully(stream)  # vanish mid-generation
                    nursery.cancel_scope.cancel()
            await emu.wait_idle()
            assert emu.live_connections() == 0


async def test_many_concurrent_sessions() -> None:
    with trio.fail_after(20):
        async with open_emulator() as emu:

            async def one(n: int) -> None:
                async with connect(emu, text_setup()) as c:
                    assert await c.ask(f"n{n}") == f"You said: n{n}"
                    assert await c.ask_json("recall") == [f"n{n}"]

            async with trio.open_nursery() as nursery:
                for n in range(100):
                    nursery.start_soon(one, n)
            assert emu.live_connections() == 0


async def test_a_client_that_stops_reading_is_still_ended_at_its_deadline() -> None:
    limits = ServiceLimits(connection_lifetime_s=0.5, go_away_notice_s=0.2)
    config = EmulatorConfig(limits=limits, send_queue_size=2, close_timeout_s=0.2, chunks_per_reply=50)
    setup = text_setup(generation_config=wire.GenerationConfig(response_modalities=["AUDIO"]))
    with trio.fail_after(5):
        async with open_emulator(config) as emu:
            url = emu.url + GEMINI + "?key=k"
            async with open_websocket_url(url, message_queue_size=1) as ws:
                await ws.send_message(wire.encode_client(wire.ClientMessage(setup=setup)).decode())
                content = wire.Content(parts=[wire.Part(text="x" * 3000)], role="user")  # ~200 s of tone
                message = wire.ClientMessage(
                    client_content=wire.ClientContent(turns=[content], turn_complete=True)
                )
                await ws.send_message(wire.encode_client(message).decode())
                await emu.wait_idle()  # never reading: the server gives up on us by itself


NASTY_FRAMES: list[str | bytes] = [
    b"\xff\xfe\x00garbage",
    "[]",
    "null",
    '{"realtime_input": {"audio": {"data": "!!!not base64", "mimeType": "audio/pcm"}}}',
    '{"client_content": {"turns": [{"parts": [{"text": 5}]}]}}',
    '{"tool_response": {"functionResponses": "x"}}',
    '{"realtimeInput": {}, "clientContent": {}}',
    "[" * 10_000 + "]" * 10_000,
    '{"setup": {"model": 1}}',
]


@pytest.mark.parametrize("frame", NASTY_FRAMES, ids=range(len(NASTY_FRAMES)))
async def test_nasty_frames_close_only_their_connection(frame: str | bytes) -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup()) as healthy:
            async with connect(emu, text_setup()) as c:
                await c.send_raw(frame)
                code, _ = await sleep_until_closed(c)
                assert code == 1007
            assert await healthy.ask("ok") == "You said: ok"


async def test_leaving_the_emulator_block_ends_open_connections() -> None:
    with trio.fail_after(5):
        closed = trio.Event()
        async with trio.open_nursery() as nursery:
            async with open_emulator() as emu:
                ready = trio.Event()

                async def client() -> None:
                    async with connect(emu, text_setup()) as c:
                        ready.set()
                        await c.closed()
                        closed.set()

                nursery.start_soon(client)
                await ready.wait()
            await closed.wait()  # the server went away under a live session: the client sees it
