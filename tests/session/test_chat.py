"""The seed's text chat example, and the basics of the session lifecycle."""

from __future__ import annotations

import json

import trio

from livemesh.emulator.app import Emulator
from livemesh.session import open_session
from tests.session.conftest import make_config


async def test_text_chat_turn(emu: Emulator) -> None:
    with trio.fail_after(10):
        async with open_session(make_config(emu, system_instruction="You are helpful.")) as session:
            await session.send_client_content("What is machine learning?")
            turn = await session.receive_turn()
            assert turn.text == "You said: What is machine learning?"
            assert not turn.interrupted
            assert turn.usage is not None
            assert session.server_session_id is not None
            recall = await session.ask("recall")
            assert json.loads(recall) == ["What is machine learning?"]
        assert session.state == "closed"
        assert emu.live_connections() == 0
