"""The session runs its connection's keepalive (from the mover task): a connection that goes
silent, answering no ping, is given up ``keepalive_interval + keepalive_timeout`` after the last
frame, on either engine, and the session reacts as to any lost connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from websockets.frames import Opcode

from livemesh import wire
from livemesh.auth import ApiKey
from livemesh.errors import ReconnectError
from livemesh.session import Session, SessionConfig
from livemesh.transport import Engine, TransportOptions
from tests.session.conftest import TEXT_MODEL
from tests.transport.helpers import KEY, PairPeer, open_on, server_frame, socket_pair


async def test_a_silent_connection_is_given_up_by_the_sessions_keepalive(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    client, server = socket_pair()
    peer = PairPeer(server)
    options = TransportOptions(engine=engine)
    config = SessionConfig(
        model=TEXT_MODEL,
        generation_config={"response_modalities": ["TEXT"]},
        auth=ApiKey(KEY),
        base_url="ws://127.0.0.1:9",  # never dialled: connect() hands over the socket pair
        keepalive_interval=20,
        keepalive_timeout=60,
        transport=options,
    )

    @asynccontextmanager
    async def connect(url: str, headers: list[tuple[str, str]]) -> AsyncIterator[Any]:
        async with open_on(engine, client, options) as conn:
            yield conn

    pings: list[float] = []

    async def silent_server() -> None:
        await peer.accept()
        (setup,) = await peer.read_frames(1)
        assert b"setup" in bytes(setup.data)
        complete = wire.ServerMessage(setup_complete=wire.SetupComplete(session_id="s"))
        await peer.stream.send_all(server_frame(0x2, wire.encode_server(complete)))
        while frames := await peer.frames.next():  # read all, answer nothing (not even pings)
            pings.extend(trio.current_time() for frame in frames if frame.opcode is Opcode.PING)

    session = Session(config, connect=connect)
    with trio.fail_after(1000):  # virtual seconds: a keepalive that never fires fails here
        with pytest.RaisesGroup(ReconnectError):  # what Session.run raises into the nursery
            async with trio.open_nursery() as nursery:
                nursery.start_soon(silent_server)
                await nursery.start(session.run)
                opened = trio.current_time()
                with pytest.raises(ReconnectError, match="keepalive") as info:
                    while True:  # the setupComplete, then nothing until the session fails
                        await session.receive()
                gave_up = trio.current_time()
                nursery.cancel_scope.cancel()
    # No handle was ever issued, so the session cannot resume: it fails, naming the keepalive.
    assert info.value.code == 1011
    assert len(pings) == 1 and pings[0] - opened == pytest.approx(20, abs=0.5)
    # 20 s of silence, the ping, 60 s without a pong; then the close handshake's bounded wait
    # (the silent peer never answers the close frame either).
    assert gave_up - opened == pytest.approx(80 + options.disconnect_timeout, abs=0.5)
