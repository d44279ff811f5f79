"""Seamless moves: planned (goAway, the lifetime timer, rotate()) and unplanned (abrupt drops), on
both API flavours, in the middle of an audio stream with interleaved text turns. The emulator's
snapshot-faithful resumption loses what the client does not replay, so its stats prove the claim."""

from __future__ import annotations

import pytest
import trio

from livemesh.emulator import EmulatorConfig, FaultConfig, open_emulator
from livemesh.emulator.app import Emulator
from livemesh.errors import ConfigError, SessionClosedError
from livemesh.limits import ServiceLimits
from livemesh.session import RotationPolicy, open_session
from tests.session.conftest import make_config
from tests.session.workload import drain, loss_and_doubles, server_stats, stream, wait_until

FLAVOURS = [pytest.param(False, id="gemini"), pytest.param(True, id="vertex")]


@pytest.mark.parametrize("vertex", FLAVOURS)
async def test_go_away_storm_mid_stream_loses_and_doubles_nothing(emu: Emulator, vertex: bool) -> None:
    with trio.fail_after(20):
        async with open_session(make_config(emu, vertex=vertex)) as session:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, session)

                async def go_away(_: int) -> None:
                    await emu.send_go_away(time_left=2.0)

                sent = await stream(session, chunks=150, turn_every=15, every=20, hook=go_away)
                nursery.cancel_scope.cancel()
            stats = await server_stats(session, emu)
    metrics = session.statistics()
    assert metrics.rotations >= 4
    assert metrics.go_aways >= 4
    assert metrics.replay_ambiguous == 0
    assert loss_and_doubles(sent, stats) == (0, 0), (sent, stats, metrics)
    assert stats["texts"] == sent.turns
    assert stats["audio_bytes"] == sent.audio_bytes


@pytest.mark.parametrize("vertex", FLAVOURS)
async def test_rotate_mid_stream(emu: Emulator, vertex: bool) -> None:
    with trio.fail_after(20):
        async with open_session(make_config(emu, vertex=vertex)) as session:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, session)

                async def rotate(_: int) -> None:
                    await session.rotate()

                sent = await stream(session, chunks=120, turn_every=10, every=30, hook=rotate)
                nursery.cancel_scope.cancel()
            stats = await server_stats(session, emu)
    metrics = session.statistics()
    assert metrics.rotations == 3
    assert metrics.reconnects == 3
    assert loss_and_doubles(sent, stats) == (0, 0)
    assert stats["texts"] == sent.turns


@pytest.mark.parametrize("vertex", FLAVOURS)
async def test_lifetime_timer_rotates_mid_stream(emu: Emulator, vertex: bool) -> None:
    """The session's own clock (connection lifetime minus a margin) moves it, no goAway needed."""
    limits = ServiceLimits(connection_lifetime_s=0.2, go_away_notice_s=0.05)
    rotation = RotationPolicy(margin_s=0.1, quiet_timeout_s=1, handle_timeout_s=1)
    config = make_config(emu, vertex=vertex, limits=limits, rotation=rotation)
    with trio.fail_after(20):
        async with open_session(config) as session:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, session)

                async def until_rotated(i: int) -> None:
                    await wait_until(session, lambda: session.statistics().rotations >= i // 40)

                sent = await stream(session, chunks=121, turn_every=10, every=40, hook=until_rotated)
                nursery.cancel_scope.cancel()
            stats = await server_stats(session, emu)
    metrics = session.statistics()
    assert metrics.rotations >= 3
    assert metrics.go_aways == 0  # the emulator's own lifetime is 10 min: the timer acted first
    assert loss_and_doubles(sent, stats) == (0, 0)
    assert stats["texts"] == sent.turns


async def test_silent_server_after_go_away_still_moves_in_time() -> None:
    """tau2-bench#461: after goAway the service may send nothing more; the session's own clock
    moves it before the deadline close."""
    config = EmulatorConfig(resumption_update_interval_s=0.05, faults=FaultConfig(silent_after_go_away=True))
    async with open_emulator(config) as emu:
        with trio.fail_after(20):
            async with open_session(make_config(emu)) as session:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(drain, session)

                    async def go_away(i: int) -> None:
                        await emu.send_go_away(time_left=0.3)
                        await wait_until(session, lambda: session.statistics().rotations >= i // 25)

                    sent = await stream(session, chunks=76, turn_every=0, every=25, hook=go_away)
                    nursery.cancel_scope.cancel()
                stats = await server_stats(session, emu)
    metrics = session.statistics()
    assert metrics.rotations == 3
    assert metrics.drops == 0  # moved before the deadline close, every time
    lost, doubled = loss_and_doubles(sent, stats)
    assert lost <= metrics.replay_skipped
    assert doubled <= metrics.replay_ambiguous


async def test_abrupt_drops_vertex_transparent_lose_nothing(emu: Emulator) -> None:
    with trio.fail_after(20):
        async with open_session(make_config(emu, vertex=True)) as session:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, session)

                async def drop(_: int) -> None:
                    await emu.drop()

                sent = await stream(session, chunks=150, turn_every=15, every=20, hook=drop)
                nursery.cancel_scope.cancel()
            stats = await server_stats(session, emu)
    metrics = session.statistics()
    assert metrics.drops >= 5
    assert metrics.replay_ambiguous == 0
    assert loss_and_doubles(sent, stats) == (0, 0)
    assert stats["texts"] == sent.turns


async def test_abrupt_drops_gemini_report_what_may_be_lost_or_doubled(emu: Emulator) -> None:
    """Without transparent resumption the client cannot know which in-flight messages the last
    handle covers. It resends what the handle may not cover (counted as ambiguous: may be doubled)
    and skips only what the settle rule takes as covered (counted: may be lost); the counts are
    upper bounds of what the server's context really shows."""
    with trio.fail_after(20):
        async with open_session(make_config(emu)) as session:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, session)

                async def drop(_: int) -> None:
                    await emu.drop()

                sent = await stream(session, chunks=150, turn_every=15, every=20, hook=drop)
                nursery.cancel_scope.cancel()
            stats = await server_stats(session, emu)
    metrics = session.statistics()
    lost, doubled = loss_and_doubles(sent, stats)
    assert metrics.drops >= 5
    assert lost <= metrics.replay_skipped + metrics.replay_overflow
    assert doubled <= metrics.replay_ambiguous
    assert metrics.replay_overflow == 0
    assert stats["texts"] == sent.turns  # turns are never skipped: answered turns are evidence


async def test_wait_moved_waits_for_the_move_and_fails_clearly(emu: Emulator) -> None:
    with trio.fail_after(10):
        async with open_session(make_config(emu, vertex=False)) as session:
            await session.wait_moved(0)  # already true
            with pytest.raises(ConfigError):
                await session.wait_moved(-1)
            assert await session.ask("hello") == "You said: hello"
            await emu.send_go_away(time_left=1.0)
            await session.wait_moved(1)
            assert session.statistics().reconnects == 1
            assert await session.ask("recall") == '["hello"]'
        with pytest.raises(SessionClosedError):
            await session.wait_moved(2)
