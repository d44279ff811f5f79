"""Resumption snapshots, goAway, connection lifetime and the test controls."""

from __future__ import annotations

import pytest
import trio

from livemesh import wire
from livemesh.emulator import EmulatorConfig, ServiceLimits, open_emulator
from tests.emulator.helpers import VERTEX, Client, connect, session_of, sleep_until_closed, text_setup

RESUME = wire.SessionResumptionConfig()


async def newest_handle(c: Client) -> wire.SessionResumptionUpdate:
    _, update = await c.until("session_resumption_update")
    assert update.session_resumption_update is not None
    return update.session_resumption_update


async def test_handle_is_a_snapshot_and_resume_restores_it() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu:
            async with connect(emu, text_setup(session_resumption=RESUME)) as c:
                sid = session_of(c)
                first = await newest_handle(c)  # right after setupComplete
                assert first.resumable and first.new_handle
                await c.say("alice")
                seen, _ = await c.until("turn_complete")
                not_resumable = [m.session_resumption_update for m in seen if m.session_resumption_update]
                assert not_resumable and not_resumable[0].resumable is False
                assert not_resumable[0].new_handle == ""
                after_alice = await newest_handle(c)
                # consumed after the handle: not in the snapshot
                await c.say("bob")
                await c.turn_text()
                assert emu.stats(sid).texts == ("alice", "bob")
            setup = text_setup(session_resumption=wire.SessionResumptionConfig(handle=after_alice.new_handle))
            async with connect(emu, setup) as c2:
                assert session_of(c2) == sid
                assert await c2.ask_json("recall") == ["alice"]
                stats = emu.stats(sid)
                assert stats.messages == 1 and stats.connections == 2 and stats.resumptions == 1


async def test_resume_with_other_model_or_unknown_handle_is_refused() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu:
            async with connect(emu, text_setup(session_resumption=RESUME)) as c:
                handle = (await newest_handle(c)).new_handle
            other = text_setup(
                model="models/gemini-2.0-flash-live-001",
                session_resumption=wire.SessionResumptionConfig(handle=handle),
            )
            async with connect(emu, other, expect_setup_complete=False) as c2:
                assert await sleep_until_closed(c2) == (1007, "Request contains an invalid argument.")
            bogus = text_setup(session_resumption=wire.SessionResumptionConfig(handle="h-nope"))
            async with connect(emu, bogus, expect_setup_complete=False) as c3:
                assert await sleep_until_closed(c3) == (1008, "Requested entity was not found.")


async def test_resume_while_old_connection_open_is_refused_1011() -> None:
    with trio.fail_after(5):
        async with open_emulator(EmulatorConfig(resume_grace_s=0.05)) as emu:
            async with connect(emu, text_setup(session_resumption=RESUME)) as c:
                handle = (await newest_handle(c)).new_handle
                setup = text_setup(session_resumption=wire.SessionResumptionConfig(handle=handle))
                async with connect(emu, setup, expect_setup_complete=False) as c2:
                    assert await sleep_until_closed(c2) == (1011, "Internal error occurred.")


async def test_expired_handle_is_refused() -> None:
    limits = ServiceLimits(handle_validity_s=0.05)
    with trio.fail_after(5):
        async with open_emulator(EmulatorConfig(limits=limits)) as emu:
            async with connect(emu, text_setup(session_resumption=RESUME)) as c:
                handle = (await newest_handle(c)).new_handle
            await trio.sleep(0.1)  # handle validity is the behaviour under test
            setup = text_setup(session_resumption=wire.SessionResumptionConfig(handle=handle))
            async with connect(emu, setup, expect_setup_complete=False) as c2:
                assert (await sleep_until_closed(c2))[0] == 1008


async def test_periodic_handles_and_vertex_message_index() -> None:
    config = EmulatorConfig(resumption_update_interval_s=0.02)
    resume = wire.SessionResumptionConfig(transparent=True)
    with trio.fail_after(5):
        async with open_emulator(config) as emu:
            async with connect(
                emu,
                text_setup(session_resumption=resume),
                path=VERTEX,
                query="",
                headers=[("Authorization", "Bearer t")],
            ) as c:
                first = await newest_handle(c)
                assert first.last_consumed_client_message_index == -1
                for _ in range(3):
                    await c.audio(b"\x00\x00" * 160)
                while True:
                    update = await newest_handle(c)
                    if update.last_consumed_client_message_index == 2:
                        break
                assert emu.stats(session_of(c)).audio_chunks == 3


async def test_transparent_refused_on_gemini_api() -> None:
    setup = text_setup(session_resumption=wire.SessionResumptionConfig(transparent=True))
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, setup, expect_setup_complete=False) as c:
            assert (await sleep_until_closed(c))[0] == 1007


async def test_lifetime_go_away_then_deadline_close() -> None:
    limits = ServiceLimits(connection_lifetime_s=0.3, go_away_notice_s=0.2)
    with trio.fail_after(5):
        async with open_emulator(EmulatorConfig(limits=limits)) as emu, connect(emu, text_setup()) as c:
            _, go_away = await c.until("go_away")
            assert go_away.go_away is not None and 0 < (go_away.go_away.time_left or 0) <= 0.2
            assert await sleep_until_closed(c) == (1011, "Deadline expired before operation could complete.")


async def test_session_budget_without_compression_but_not_with_it() -> None:
    limits = ServiceLimits(audio_session_s=0.2, go_away_notice_s=0.1)
    with trio.fail_after(5):
        async with open_emulator(EmulatorConfig(limits=limits)) as emu:
            async with connect(emu, text_setup()) as c:
                assert (await sleep_until_closed(c))[0] == 1011
            budget = ServiceLimits(audio_session_s=10, audio_video_session_s=0.2, go_away_notice_s=0.1)
            async with open_emulator(EmulatorConfig(limits=budget)) as emu2, connect(emu2, text_setup()) as v:
                frame = wire.Blob(data=b"\xff\xd8", mime_type="image/jpeg")
                await v.send(wire.ClientMessage(realtime_input=wire.RealtimeInput(video=frame)))
                assert (await sleep_until_closed(v))[0] == 1011
                assert emu2.stats(session_of(v)).video_frames == 1
            compressed = text_setup(context_window_compression=wire.ContextWindowCompressionConfig())
            async with connect(emu, compressed) as c2:
                with trio.move_on_after(0.4):
                    await c2.recv()
                    raise AssertionError("no goAway expected with compression")


async def test_controls_go_away_and_drop() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu:
            async with connect(emu, text_setup()) as c:
                await emu.send_go_away(time_left=2.5, session_id=session_of(c))
                _, go_away = await c.until("go_away")
                assert go_away.go_away is not None and go_away.go_away.time_left == 2.5
                await emu.drop(close_code=1011)
                assert await sleep_until_closed(c) == (1011, "Internal error occurred.")
            async with connect(emu, text_setup()) as c2:
                await emu.drop()
                assert (await sleep_until_closed(c2))[0] == 1006
            assert emu.live_connections() == 0


async def test_controls_refuse_an_unknown_session_and_count_what_they_reached() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu:
            async with connect(emu, text_setup()) as c:
                sid = session_of(c)
                for control in (
                    emu.send_go_away(time_left=1.0, session_id="no-such-session"),
                    emu.drop("no-such-session"),
                    emu.send_raw(b"{}", "no-such-session"),
                    emu.send_malformed("no-such-session"),
                ):
                    with pytest.raises(KeyError, match="no-such-session"):
                        await control  # it used to do nothing, silently
                assert await c.ask("still here") == "You said: still here"  # nothing reached it
                assert await emu.send_go_away(time_left=2.5, session_id=sid) == 1
                await c.until("go_away")
                assert await emu.drop(sid) == 1
                await c.closed()
            await emu.wait_idle()
            # Known, but without a live connection now: nothing to reach, and it says so.
            assert await emu.send_go_away(session_id=sid) == 0
            assert await emu.drop(sid, close_code=1011) == 0
            assert await emu.send_raw(b"{}", sid) == 0
            assert await emu.send_malformed(sid) == 0
            assert await emu.drop() == 0


async def test_audio_consumed_after_the_handle_is_lost_on_resume() -> None:
    chunk = b"\x00\x00" * 1600
    with trio.fail_after(5):
        async with open_emulator() as emu:
            async with connect(emu, text_setup(session_resumption=RESUME)) as c:
                sid = session_of(c)
                for _ in range(5):
                    await c.audio(chunk)
                assert (await c.ask_json("stats"))["audio_chunks"] == 5
                handle = (await newest_handle(c)).new_handle  # issued after the stats turn
                for _ in range(3):
                    await c.audio(chunk)
                assert (await c.ask_json("stats"))["audio_chunks"] == 8
                await emu.drop(sid)  # abrupt: the client must replay the 3 chunks
                await c.closed()
            setup = text_setup(session_resumption=wire.SessionResumptionConfig(handle=handle))
            async with connect(emu, setup) as c2:
                stats = await c2.ask_json("stats")
                assert stats["audio_chunks"] == 5 and stats["audio_bytes"] == 5 * len(chunk)
                assert stats["messages"] == 5
                assert emu.stats(sid).audio_chunks == 5
