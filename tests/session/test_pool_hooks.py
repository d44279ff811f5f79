"""Hooks the pool asked for: turn latencies, is_idle, video frames counted, rotate with a deadline."""

from __future__ import annotations

import trio

from livemesh.emulator.app import Emulator
from livemesh.session import Session
from tests.session.conftest import make_config

JPEG = b"\xff\xd8\xff\xe0" + bytes(64) + b"\xff\xd9"


async def test_turn_latency_hook_idle_flag_video_count_and_rotate_deadline(emu: Emulator) -> None:
    latencies: list[float] = []
    session = Session(make_config(emu, session_resumption=True), on_turn_latency=latencies.append)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(session.run)
            assert session.is_idle
            await session.send_client_content("hello")
            turn = await session.receive_turn()
            assert turn.text == "You said: hello"
            assert session.is_idle
            assert len(latencies) == 1 and latencies[0] >= 0
            await session.send_realtime_input(video=JPEG)
            await session.send_realtime_input(video=JPEG)
            assert session.statistics().video_frames == 2
            await session.rotate("pool", deadline=trio.current_time() + 5.0)
            assert session.statistics().rotations == 1
            assert await session.ask("again") == "You said: again"
            assert len(latencies) == 2
            await session.aclose()
