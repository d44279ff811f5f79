"""Text turns, commands and setup against the emulator over raw trio-websocket."""

from __future__ import annotations

import pytest
import trio

from livemesh.emulator import EmulatorConfig, open_emulator
from tests.emulator.helpers import connect, session_of, text_setup


@pytest.mark.parametrize("chunks_per_reply", [1, 3])
async def test_text_turn_streams_chunks_then_completes(chunks_per_reply: int) -> None:
    config = EmulatorConfig(chunks_per_reply=chunks_per_reply)  # 1 was sent as 2, silently
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, text_setup()) as c:
            await c.say("hello there")
            text, seen = await c.turn_text()
            assert text == "You said: hello there"
            kinds = [m for m in seen if m.server_content is not None]
            chunks = [m for m in kinds if m.server_content and m.server_content.model_turn]
            assert len(chunks) == chunks_per_reply
            assert any(m.server_content and m.server_content.generation_complete for m in kinds)
            assert seen[-1].usage_metadata is not None
            assert seen[-1].usage_metadata.total_token_count


async def test_realtime_text_and_recall_and_stats() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup()) as c:
            assert await c.ask("one") == "You said: one"
            assert await c.ask("two", realtime=True) == "You said: two"
            assert await c.ask_json("recall") == ["one", "two"]
            stats = await c.ask_json("stats")
            assert stats["messages"] == 2 and stats["turns"] == 2 and stats["texts"] == ["one", "two"]
            assert emu.stats(session_of(c)).messages == 2
            assert emu.live_connections() == 1
        assert emu.live_connections() == 0
