"""The seed's resumption example, handle bookkeeping and the handle-store hook."""

from __future__ import annotations

import json

import pytest
import trio

from livemesh import wire
from livemesh.emulator.app import Emulator
from livemesh.errors import ReconnectError, SetupRejectedError
from livemesh.session import Session, open_session
from tests.session.conftest import make_config
from tests.session.workload import wait_until


async def test_my_name_is_alice_survives_a_new_session(emu: Emulator) -> None:
    saved: list[str] = []
    updates: list[wire.SessionResumptionUpdate] = []
    config = make_config(emu, callbacks={"on_session_resumption": updates.append})
    with trio.fail_after(10):
        async with open_session(config, on_handle=saved.append) as first:
            assert await first.ask("Remember: my name is Alice.") == "You said: Remember: my name is Alice."
        handle = first.resume_handle
        assert handle is not None and handle == saved[-1]
        # generation sends {newHandle: "", resumable: false}: never stored over a real handle
        assert any(not u.resumable for u in updates)
        assert all(h for h in saved)
        async with open_session(make_config(emu, resume_handle=handle)) as second:
            texts = json.loads(await second.ask("recall"))
            assert texts == ["Remember: my name is Alice."]
            assert second.server_session_id == first.server_session_id


async def test_alice_survives_a_forced_reconnect_in_the_same_session(emu: Emulator) -> None:
    with trio.fail_after(10):
        async with open_session(make_config(emu)) as session:
            await session.ask("my name is Alice")
            await emu.drop()  # abrupt: no close frame
            assert json.loads(await session.ask("recall")) == ["my name is Alice"]
            await emu.send_go_away(time_left=1.0)
            await wait_until(session, lambda: session.statistics().reconnects >= 2)
            assert json.loads(await session.ask("recall")) == ["my name is Alice"]
    metrics = session.statistics()
    assert metrics.reconnects >= 2
    assert metrics.drops == 1


async def test_unknown_handle_is_refused_at_open(emu: Emulator) -> None:
    with trio.fail_after(10), pytest.raises(SetupRejectedError) as info:
        async with open_session(make_config(emu, resume_handle="h-does-not-exist")):
            pass  # pragma: no cover
    assert info.value.code == 1008


async def test_expired_handle_on_reconnect_is_a_reconnect_error(emu: Emulator) -> None:
    """If the handle stops resolving while the session is disconnected, the session fails with a
    typed error instead of silently starting a fresh context."""
    with trio.fail_after(10):
        session = Session(make_config(emu))
        with pytest.RaisesGroup(ReconnectError):  # what Session.run raises into the nursery
            async with trio.open_nursery() as nursery:
                await nursery.start(session.run)
                await session.ask("hello")
                emu.store.sessions.clear()  # every handle of every session forgotten
                await emu.drop()
                with pytest.raises(ReconnectError) as info:
                    while True:
                        await session.receive()
        assert info.value.code == 1008
        assert session.state == "failed"
