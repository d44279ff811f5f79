"""Structured lifetime: clean close, cancellation mid-turn, the pool's nursery variant, and
backpressure that bounds memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing

from livemesh import wire
from livemesh.emulator.app import Emulator
from livemesh.session import Session, open_session
from livemesh.session.writer import WRITE_BATCH
from livemesh.transport import CloseInfo
from tests.session.conftest import NoKeepalive, make_config
from tests.session.workload import SILENCE


async def test_cancelling_the_block_mid_turn_leaves_nothing_running(emu: Emulator) -> None:
    with trio.fail_after(10):
        with trio.CancelScope() as scope:
            async with open_session(make_config(emu)) as session:
                await session.send_client_content("a long question")
                async for message in session:
                    if message.server_content is not None and message.server_content.model_turn is not None:
                        scope.cancel()  # mid-turn: the first chunk is in, the rest is coming
                        await trio.sleep_forever()
        assert scope.cancelled_caught
        assert session.state == "closed"
        # The server notices the socket is gone once it runs; nothing of ours is left to run.
        await trio.testing.wait_all_tasks_blocked()
    assert emu.live_connections() == 0


async def test_pool_style_run_in_a_callers_nursery(emu: Emulator) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            session = Session(make_config(emu))
            started = await nursery.start(session.run)
            assert started is session and session.state == "open"
            assert await session.ask("hello") == "You said: hello"
            await session.wait_quiet()
            assert session.is_quiet
            await session.rotate()
            assert await session.ask("again") == "You said: again"
            await session.aclose()
        assert session.state == "closed"
        metrics = session.statistics()
        assert (metrics.rotations, metrics.reconnects, metrics.turns) == (1, 1, 2)


class _StuckConnection(NoKeepalive):
    """Answers setup, then never finishes sending: a network that stopped draining."""

    def __init__(self) -> None:
        self.sent = 0
        self._setup_answered = False
        self.arrived_after = None

    @property
    def close_info(self) -> CloseInfo | None:
        return None

    async def send(self, data: bytes) -> None:
        if self.sent:
            await trio.sleep_forever()
        self.sent += 1

    async def receive(self) -> bytes:
        if not self._setup_answered:
            self._setup_answered = True
            return wire.encode_server(wire.ServerMessage(setup_complete=wire.SetupComplete(session_id="s")))
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        return None

    received_index = -1

    async def send_many(self, frames: list[bytes]) -> None:
        await self.send(frames[0])

    async def send_fenced(self, frames: list[bytes]) -> bytes:
        if frames:
            await self.send(frames[0])
        return b"fence"

    def fence_result(self, token: bytes) -> int | None:
        return None

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        return None


async def test_backpressure_blocks_the_producer_instead_of_growing_memory(emu: Emulator) -> None:
    stuck = _StuckConnection()

    @asynccontextmanager
    async def connect(url: str, headers: list[tuple[str, str]]) -> AsyncIterator[_StuckConnection]:
        yield stuck

    config = make_config(emu, outbox_size=8)
    session = Session(config, connect=connect)
    produced = 0

    async def producer() -> None:
        nonlocal produced
        while True:
            await session.send_realtime_input(audio=SILENCE)
            produced += 1

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(session.run)
            nursery.start_soon(producer)
            await trio.testing.wait_all_tasks_blocked()
            # the writer's batch (stuck in send: at most WRITE_BATCH), the outbox 8, 1 sender waiting
            assert produced <= WRITE_BATCH + 8 + 1
            first = produced
            await trio.testing.wait_all_tasks_blocked()
            assert produced == first  # blocked, not growing
            nursery.cancel_scope.cancel()


async def test_close_during_a_planned_move_is_bounded() -> None:
    """A goAway from a server that then goes silent starts a move that cannot get a fresh handle;
    closing meanwhile still flushes, sends a close frame and ends within close_timeout."""
    from livemesh.emulator import EmulatorConfig, FaultConfig, open_emulator

    config = EmulatorConfig(faults=FaultConfig(silent_after_go_away=True))
    async with open_emulator(config) as emu:
        with trio.fail_after(5):
            async with open_session(make_config(emu, close_timeout=0.5)) as session:
                await session.ask("hello")
                await emu.send_go_away(time_left=30.0)
                await session.send_realtime_input(audio=SILENCE)
                start = trio.current_time()
            assert trio.current_time() - start < 1.5
    assert session.state == "closed"
