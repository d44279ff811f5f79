"""Seed-parity callbacks: every event reaches its callback, sync or async, and a raising callback
is reported without killing the session."""

from __future__ import annotations

from typing import Any

import trio

from livemesh import wire
from livemesh.emulator.app import Emulator
from livemesh.session import Callbacks, open_session
from tests.session.conftest import make_config
from tests.session.workload import wait_until


async def test_callbacks_see_every_event(emu: Emulator) -> None:
    events: list[tuple[str, Any]] = []

    async def on_message(message: wire.ServerMessage) -> None:
        events.append(("message", message.kind))

    def on_go_away(go_away: wire.GoAway) -> None:
        events.append(("go_away", go_away.time_left))

    def on_session_resumption(update: wire.SessionResumptionUpdate) -> None:
        events.append(("resumption", update.resumable))

    def on_close(error: object) -> None:
        events.append(("close", error))

    def on_error(error: BaseException) -> None:
        events.append(("error", type(error).__name__))

    callbacks = Callbacks(
        on_message=on_message,
        on_go_away=on_go_away,
        on_session_resumption=on_session_resumption,
        on_close=on_close,
        on_error=on_error,
    )
    config = make_config(emu, callbacks=callbacks)
    with trio.fail_after(10):
        async with open_session(config) as session:
            assert await session.ask("hello") == "You said: hello"
            await emu.send_go_away(time_left=1.5)
            await wait_until(session, lambda: session.statistics().rotations >= 1)
            assert await session.ask("still here") == "You said: still here"
    kinds = [kind for kind, _ in events]
    assert ("message", "setup_complete") not in events  # setupComplete is consumed by open_session
    assert ("message", "server_content") in events
    assert ("go_away", 1.5) in events
    assert ("resumption", True) in events and ("resumption", False) in events
    assert kinds[-1] == "close" and events[-1][1] is None
    assert "error" not in kinds


async def test_raising_callback_is_reported_and_the_session_lives(emu: Emulator) -> None:
    errors: list[BaseException] = []

    def bad_on_message(message: wire.ServerMessage) -> None:
        raise ValueError("callback bug")

    config = make_config(emu, callbacks={"on_message": bad_on_message, "on_error": errors.append})
    with trio.fail_after(10):
        async with open_session(config) as session:
            assert await session.ask("hello") == "You said: hello"
    assert session.statistics().callback_errors >= 1
    assert errors and isinstance(errors[0], ValueError)
