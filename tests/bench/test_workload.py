"""The bench's judge: plans are reproducible and losses/duplicates are counted from ``stats``."""

from __future__ import annotations

import json

import trio

from livemesh.bench import livemesh_client
from livemesh.bench import workload as wl
from livemesh.bench.workload import Check, WorkloadSpec
from livemesh.emulator import EmulatorConfig, ServiceLimits, open_emulator


def test_plans_are_seeded_and_mixed() -> None:
    spec = WorkloadSpec(url="ws://127.0.0.1:1", sessions=20, seed=3)
    first, again = wl.plan_sessions(spec), wl.plan_sessions(spec)
    assert first == again
    kinds = [p.kind for p in first]
    assert kinds.count("text") == 8 and kinds.count("tools") == 6 and kinds.count("audio") == 6
    assert [p.index for p in first] == list(range(20))
    assert all(0 <= p.start_delay_s <= spec.start_spread_s for p in first)
    other = wl.plan_sessions(WorkloadSpec(url="ws://127.0.0.1:1", sessions=20, seed=4))
    assert [p.kind for p in other] != kinds


def test_single_kind_workload() -> None:
    plans = wl.plan_sessions(WorkloadSpec(url="ws://x:1", workload="audio", sessions=3))
    assert [p.kind for p in plans] == ["audio"] * 3


def test_spec_round_trips_through_json() -> None:
    spec = WorkloadSpec(url="wss://127.0.0.1:9", sessions=7, lifetime_s=2.5, ca_file="/tmp/ca.pem")
    assert WorkloadSpec.from_json(spec.to_json()) == spec
    assert "bench-key" not in repr(spec)


def _stats(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"texts": [], "audio_chunks": 0, "audio_bytes": 0, "tool_responses": 0}
    base.update(fields)
    return base


def test_check_counts_missing_and_doubled_turns() -> None:
    check = Check("text", 4, labels=["s4-t1", "s4-t2", "s4-t3"])
    stats = _stats(texts=[wl.text_turn(4, 1, 10), wl.text_turn(4, 3, 10), wl.text_turn(4, 3, 10)])
    verdict = wl.check_stats(check, stats)
    assert (verdict.lost, verdict.duplicated) == (1, 1)
    assert any("s4-t2" in p for p in verdict.problems)


def test_labels_match_whole_words_only() -> None:
    check = Check("text", 1, labels=["s1-t1"])
    verdict = wl.check_stats(check, _stats(texts=["s1-t10 lorem", "s1-t1 lorem"]))
    assert (verdict.lost, verdict.duplicated) == (0, 0)


def test_check_compares_audio_and_tool_counts() -> None:
    check = Check("audio", 2, audio_chunks=15, audio_bytes=15 * 3200)
    assert wl.check_stats(check, _stats(audio_chunks=15, audio_bytes=48000)).problems == ()
    short = wl.check_stats(check, _stats(audio_chunks=13, audio_bytes=13 * 3200))
    assert short.lost == 2 and short.duplicated == 0
    extra = wl.check_stats(check, _stats(audio_chunks=16, audio_bytes=16 * 3200))
    assert extra.duplicated == 1
    tools = Check("tools", 5, tool_responses=3)
    verdict = wl.check_stats(tools, _stats(tool_responses=4, unknown_tool_responses=1))
    assert verdict.duplicated == 2 and verdict.lost == 0


def test_same_chunk_count_but_fewer_bytes_is_loss() -> None:
    check = Check("audio", 1, audio_chunks=2, audio_bytes=6400)
    verdict = wl.check_stats(check, _stats(audio_chunks=2, audio_bytes=3200))
    assert verdict.lost == 1


def test_parse_stats_reads_the_emulator_reply() -> None:
    body = json.dumps({"messages": 3, "texts": ["a"], "audio_chunks": 0})
    assert wl.parse_stats(body) == {"messages": 3, "texts": ["a"], "audio_chunks": 0}
    assert wl.parse_stats("You said: hello") is None
    assert wl.parse_stats('{"no": "texts"}') is None


def test_audio_turn_is_speech_then_exactly_the_end_silence() -> None:
    speech, silence = wl.speech_chunk(), wl.silence_chunk()
    assert len(speech) == len(silence) == wl.INPUT_RATE * 2 * wl.CHUNK_MS // 1000
    assert silence == bytes(len(silence)) and max(speech) > 0
    assert wl.SILENCE_CHUNKS_TO_END * wl.CHUNK_MS >= wl.SILENCE_MS


def test_tool_reply_check() -> None:
    args = {"sid": 3, "n": 12}
    assert wl.tool_result(args) == {"sid": 3, "n": 12, "ok": True}
    reply = 'lookup returned {"n": 12, "ok": true, "sid": 3}'
    assert wl.tool_reply_ok(reply, 3, 12)
    assert not wl.tool_reply_ok(reply, 3, 1)


def test_turns_the_sliding_window_cut_count_as_consumed() -> None:
    check = Check("text", 4, labels=["s4-t1", "s4-t2", "s4-t3"])
    cut, kept = [wl.text_turn(4, 1, 10)], [wl.text_turn(4, 2, 10), wl.text_turn(4, 3, 10)]
    assert wl.check_stats(check, _stats(compressed_texts=cut, texts=kept)).problems == ()
    doubled = wl.check_stats(check, _stats(compressed_texts=[*cut, *cut], texts=kept))
    assert (doubled.lost, doubled.duplicated) == (0, 1)  # a double is caught across the cut too


async def test_a_closed_loop_text_session_outlives_the_context_window() -> None:
    """The bench's text sessions answer hundreds of turns a second: without compression any
    context window fills within seconds and the service ends the session (1007). With a window of
    400 tokens (about ten turns) every machine fills it many times over in the same run."""
    limits = ServiceLimits(context_window_native_audio=400)
    async with open_emulator(EmulatorConfig(limits=limits)) as emu:
        spec = WorkloadSpec(
            url=emu.url, workload="text", sessions=2, duration_s=1, start_spread_s=0, progress_interval_s=9
        )
        with trio.fail_after(30):
            out = await livemesh_client.amain(spec)
    result = out["result"]
    assert result["turns"] > 50, result  # the window was filled several times over
    assert (result["lost"], result["duplicated"], result["errors"]) == (0, 0, 0), out["details"]
