"""Sends racing a close never raise, and an unexpected error ends one connection, not the server.

The bug these pin down: with per-message latency (``FaultConfig.latency_s``/``jitter_s``) the writer
slept before a frame, the client's close arrived meanwhile, and wsproto refused the frame
(``LocalProtocolError: ... cannot be sent in state REMOTE_CLOSING``). Every test here checks the
emulator logged no error, so a send racing a close fails it even though the boundary in
``serve_stream`` would have contained it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, open_websocket_url

from livemesh import wire
from livemesh.emulator import EmulatorConfig, FaultConfig, faults, open_emulator
from livemesh.emulator.live import LiveConnection
from livemesh.errors import DecodeError
from tests.emulator.helpers import GEMINI, connect, session_of, sleep_until_closed, text_setup

ERRORS = logging.ERROR


def emulator_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "livemesh.emulator" and r.levelno >= ERRORS]


@asynccontextmanager
async def quiet_errors(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """Capture the emulator's error log; fail if it logged any."""
    caplog.set_level(logging.ERROR, logger="livemesh.emulator")
    yield
    assert emulator_errors(caplog) == []


@pytest.mark.parametrize(
    "fault",
    [
        FaultConfig(latency_s=0.1, jitter_s=0.2, seed=1),
        FaultConfig(latency_s=0.1, close_1011_probability=0.3, seed=2),
        FaultConfig(latency_s=0.1, drop_probability=0.2, malformed_probability=0.2, seed=3),
    ],
)
async def test_clients_closing_while_frames_are_delayed(
    fault: FaultConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """Several sessions close (handshake) while the server sleeps before their next frame."""
    config = EmulatorConfig(faults_by_key={"faulty": fault}, chunks_per_reply=6)
    async with quiet_errors(caplog):
        with trio.fail_after(10):
            async with open_emulator(config) as emu:

                async def one(frames: int) -> None:
                    try:
                        async with connect(emu, text_setup(), query="?key=faulty") as c:
                            await c.say("hello there")
                            for _ in range(frames):
                                await c.recv()  # the next frame is now being delayed
                    except (ConnectionClosed, DecodeError):
                        pass  # a fault closed, dropped or garbled it first: fine

                async with trio.open_nursery() as nursery:
                    for i in range(8):
                        nursery.start_soon(one, i % 3)
                await emu.wait_idle()
                async with connect(emu, text_setup()) as c:
                    assert await c.ask("still serving") == "You said: still serving"


async def test_server_close_and_go_away_racing_client_close(caplog: pytest.LogCaptureFixture) -> None:
    """A goAway, a 1011 close and the client's own close all land while a frame is delayed. Our
    close is only queued when the client's arrives, so the server answers the client's close;
    that answer waits behind the delayed frame, which must then not be sent."""
    config = EmulatorConfig(faults=FaultConfig(latency_s=0.1), chunks_per_reply=6)
    async with quiet_errors(caplog):
        with trio.fail_after(10):
            async with open_emulator(config) as emu:
                async with connect(emu, text_setup()) as c:
                    await c.say("hello")
                    await c.recv()
                    await emu.send_go_away(0.5, session_of(c))
                    await emu.drop(session_of(c), close_code=1011)
                await emu.wait_idle()
                assert emu.live_connections() == 0


async def test_writer_failure_ends_only_its_connection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected exception in one connection's writer task (injected into its fault plan)
    drops that connection; the server and another session go on."""

    def broken(self: faults.FaultPlan) -> tuple[faults.Action, float]:
        raise RuntimeError("injected writer failure")

    monkeypatch.setattr(faults.FaultPlan, "next", broken)
    caplog.set_level(logging.ERROR, logger="livemesh.emulator")
    config = EmulatorConfig(faults_by_key={"bad": FaultConfig(latency_s=0.001)})
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, text_setup()) as healthy:
            async with connect(emu, text_setup(), query="?key=bad") as doomed:
                await doomed.say("hello")
                assert (await sleep_until_closed(doomed))[0] == 1006
            assert await healthy.ask("still fine") == "You said: still fine"
            async with connect(emu, text_setup()) as fresh:
                assert await fresh.ask("new") == "You said: new"
    assert emulator_errors(caplog) == ["emulator connection failed"]


async def test_error_during_cancellation_stays_in_its_connection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection task that fails while being cancelled (an error and a Cancelled in one group)
    is logged, not lost, and contained: shutting the emulator down still ends cleanly."""
    real = LiveConnection._timers

    async def broken(self: LiveConnection) -> None:
        try:
            await real(self)
        finally:
            raise RuntimeError("injected failure while cancelled")

    monkeypatch.setattr(LiveConnection, "_timers", broken)
    caplog.set_level(logging.ERROR, logger="livemesh.emulator")
    with trio.fail_after(5):
        async with trio.open_nursery() as outer:
            async with open_emulator() as emu:
                ready = trio.Event()

                async def client() -> None:
                    async with connect(emu, text_setup()) as c:
                        ready.set()
                        await c.closed()

                outer.start_soon(client)
                await ready.wait()
                # leaving the block cancels the connection: its timers task then raises
    assert any("failed" in m for m in emulator_errors(caplog))


async def test_control_waiting_on_a_full_queue_returns_when_the_connection_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``send_raw`` waits while a client that stopped reading fills the queue; ending that
    connection releases the wait instead of leaving the caller blocked on a dead queue."""
    config = EmulatorConfig(send_queue_size=1)
    frame = b"x" * 500_000  # under the client's 1 MiB message limit
    async with quiet_errors(caplog):
        with trio.fail_after(10):
            async with open_emulator(config) as emu:
                url = emu.url + GEMINI + "?key=k"
                async with open_websocket_url(url, message_queue_size=0) as ws:
                    await ws.send_message(wire.encode_client(wire.ClientMessage(setup=text_setup())))
                    complete = wire.decode_server(await ws.get_message()).setup_complete
                    assert complete is not None and complete.session_id is not None
                    sid = complete.session_id
                    sent = 0

                    async def flood() -> None:
                        nonlocal sent
                        for _ in range(64):  # far more than the socket buffers hold
                            await emu.send_raw(frame, sid)
                            sent += 1

                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(flood)
                        await trio.testing.wait_all_tasks_blocked()
                        assert 0 < sent < 64  # the flood waits on the full queue
                        await emu.drop(sid)
                await emu.wait_idle()


async def test_client_closing_with_a_full_queue_ends_within_the_close_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client closes (1009: a frame over its 1 MiB limit) and stops reading while the
    server's queue is full and its writer is blocked: the connection still ends, after at most
    ``close_timeout_s``, instead of waiting forever to queue the close reply."""
    config = EmulatorConfig(send_queue_size=1, close_timeout_s=0.2)
    frame = b"x" * 2_000_000
    async with quiet_errors(caplog):
        with trio.fail_after(10):
            async with open_emulator(config) as emu:
                async with connect(emu, text_setup()) as c:
                    sid = session_of(c)

                    async def flood() -> None:
                        for _ in range(64):
                            await emu.send_raw(frame, sid)

                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(flood)
                        assert (await c.closed())[0] == 1009
                await emu.wait_idle()
