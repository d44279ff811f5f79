"""Each fault flag does what it says, deterministically for a seed."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import ConnectionClosed

from livemesh.emulator import EmulatorConfig, FaultConfig, ServiceLimits, open_emulator
from livemesh.errors import DecodeError
from tests.emulator.helpers import connect, session_of, sleep_until_closed, text_setup


async def test_drop_after_messages_is_abrupt() -> None:
    config = EmulatorConfig(faults=FaultConfig(drop_after_messages=2), chunks_per_reply=5)
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, text_setup()) as c:
            await c.say("hello")
            await c.recv()
            await c.recv()
            assert (await sleep_until_closed(c))[0] == 1006


async def test_drop_probability_one() -> None:
    config = EmulatorConfig(faults=FaultConfig(drop_probability=1.0))
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, text_setup()) as c:
            await c.say("hello")
            assert (await sleep_until_closed(c))[0] == 1006


async def test_close_1011_probability_one() -> None:
    config = EmulatorConfig(faults=FaultConfig(close_1011_probability=1.0))
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, text_setup()) as c:
            await c.say("hello")
            assert await sleep_until_closed(c) == (1011, "Internal error occurred.")


async def test_malformed_frames() -> None:
    config = EmulatorConfig(faults=FaultConfig(malformed_probability=1.0))
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, text_setup()) as c:
            await c.say("hello")
            try:
                await c.recv()
            except DecodeError:
                pass
            else:
                raise AssertionError("expected a malformed frame")


async def test_seeded_faults_are_deterministic() -> None:
    async def run() -> int:
        config = EmulatorConfig(faults=FaultConfig(seed=7, drop_probability=0.2), chunks_per_reply=4)
        received = 0
        async with open_emulator(config) as emu, connect(emu, text_setup()) as c:
            try:
                for _ in range(20):
                    await c.say("x")
                    await c.turn_text()
                    received += 1
            except ConnectionClosed:
                pass
        return received

    with trio.fail_after(10):
        first = await run()
        assert first < 20
        assert await run() == first


async def test_go_away_storm_and_silence_after_go_away() -> None:
    faults = FaultConfig(go_away_storm_interval_s=0.05, silent_after_go_away=True)
    limits = ServiceLimits(connection_lifetime_s=0.5, go_away_notice_s=0.1)
    with trio.fail_after(5):
        async with (
            open_emulator(EmulatorConfig(faults=faults, limits=limits)) as emu,
            connect(emu, text_setup()) as c,
        ):
            _, go_away = await c.until("go_away")
            assert go_away.go_away is not None
            await c.say("anyone there?")
            assert await sleep_until_closed(c) == (1011, "Deadline expired before operation could complete.")


async def test_storm_repeats() -> None:
    faults = FaultConfig(go_away_storm_interval_s=0.02)
    with trio.fail_after(5):
        async with open_emulator(EmulatorConfig(faults=faults)) as emu, connect(emu, text_setup()) as c:
            for _ in range(3):
                await c.until("go_away")
            assert await c.ask("still here") == "You said: still here"


async def test_latency() -> None:
    config = EmulatorConfig(faults=FaultConfig(latency_s=0.05, jitter_s=0.01), chunks_per_reply=2)
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, text_setup()) as c:
            start = trio.current_time()
            assert await c.ask("slow") == "You said: slow"
            assert trio.current_time() - start >= 4 * 0.05


async def test_faults_by_key_hit_only_that_key() -> None:
    config = EmulatorConfig(faults_by_key={"bad": FaultConfig(drop_probability=1.0)})
    with trio.fail_after(5):
        async with open_emulator(config) as emu:
            async with (
                connect(emu, text_setup()) as good,
                connect(emu, text_setup(), query="?key=bad") as bad,
            ):
                await bad.say("x")
                assert (await sleep_until_closed(bad))[0] == 1006
                assert await good.ask("fine") == "You said: fine"


async def test_send_malformed_to_one_session() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup()) as a, connect(emu, text_setup()) as b:
            await emu.send_malformed(session_of(a))
            with pytest.raises(DecodeError):
                await a.recv()
            assert await b.ask("fine") == "You said: fine"


async def test_disconnect_mid_turn_is_counted() -> None:
    config = EmulatorConfig(chunks_per_reply=100, chunk_interval_s=0.01)
    with trio.fail_after(5):
        async with open_emulator(config) as emu:
            async with connect(emu, text_setup()) as c:
                sid = session_of(c)
                await c.say("x" * 200)
                await c.until("server_content")
            await emu.wait_idle()
            async with connect(emu, text_setup()) as quiet:
                await quiet.ask("done first")
                quiet_sid = session_of(quiet)
            await emu.wait_idle()
            assert emu.stats(sid).disconnects_mid_turn == 1
            assert emu.stats(quiet_sid).disconnects_mid_turn == 0
