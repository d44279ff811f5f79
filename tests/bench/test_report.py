"""Report shape: exactly the issue's keys, ratios oriented so > 1 means livemesh is ahead."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from livemesh.bench import report
from livemesh.bench.metrics import Recorder


def _result(client: str, **over: object) -> dict[str, object]:
    rec = Recorder()
    rec.turn_done(0.010)
    rec.turn_done(0.020)
    rec.first_chunk(0.005)
    rec.audio_lag(0.001)
    rec.turns, rec.messages_sent, rec.messages_received = 100, 150, 600
    result = rec.result(client=client, sessions=4, duration_s=10.0)
    result.update(over)
    return result


def test_result_has_exactly_the_issue_keys() -> None:
    result = _result("livemesh")
    assert tuple(result) == report.RESULT_KEYS
    assert set(result["turn_latency_ms"]) == {"p50", "p90", "p99", "max"}  # type: ignore[arg-type]
    assert set(result["first_response_ms"]) == {"p50", "p99"}  # type: ignore[arg-type]
    assert set(result["chunk_lag_ms"]) == {"p50", "p99"}  # type: ignore[arg-type]
    assert result["turn_latency_ms"]["max"] >= result["turn_latency_ms"]["p50"] > 0  # type: ignore[index]


def test_frozen_traffic_ignores_the_verification_phase() -> None:
    rec = Recorder()
    rec.turns = 10
    rec.freeze_traffic()
    rec.turns = 99
    rec.lost = 1
    result = rec.result(client="x", sessions=1)
    assert result["turns"] == 10 and result["lost"] == 1


def test_failed() -> None:
    assert not report.failed(_result("a"))
    assert report.failed(_result("a", lost=1))
    assert report.failed(_result("a", duplicated=2))
    assert report.failed(_result("a", errors=1))


def test_ratios_point_the_same_way() -> None:
    ours = _result("livemesh", turns=300, client_cpu_s=1.0)
    theirs = _result("genai", turns=100, client_cpu_s=4.0)
    ours["turn_latency_ms"] = {"p50": 1.0, "p90": 2.0, "p99": 5.0, "max": 9.0}
    theirs["turn_latency_ms"] = {"p50": 1.0, "p90": 2.0, "p99": 10.0, "max": 9.0}
    r = report.ratios(ours, theirs, {"audio_messages_sent": 50}, {"audio_messages_sent": 25})
    assert r["turns_per_s"] == 3.0
    assert r["audio_messages_per_s"] == 2.0
    assert r["p99_turn_latency"] == 2.0
    assert r["cpu_per_message"] == 4.0
    assert report.ratios(ours, theirs, {}, {})["audio_messages_per_s"] is None


def test_json_single_and_side_by_side(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    report.write_json(str(one), [_result("livemesh")], None)
    assert tuple(json.loads(one.read_text())) == report.RESULT_KEYS
    two = tmp_path / "two.json"
    ratio = {"turns_per_s": 1.5}
    report.write_json(str(two), [_result("livemesh"), _result("genai")], ratio)
    doc = json.loads(two.read_text())
    assert [r["client"] for r in doc["results"]] == ["livemesh", "genai"]
    assert doc["ratios"] == ratio


def test_table_renders_both_columns_and_problems() -> None:
    out = io.StringIO()
    console = Console(file=out, width=140)
    details = [{"audio_messages_sent": 5, "error_samples": ["s1: turn s1-t2 consumed 2 times"]}, {}]
    report.render_table(console, [_result("livemesh"), _result("genai")], details, {"turns_per_s": 2.0})
    text = out.getvalue()
    assert "livemesh" in text and "genai" in text and "2.00x" in text and "consumed 2 times" in text


def test_rounds_merge_into_totals_and_median_ratios(tmp_path: Path) -> None:
    # --rounds: counters and CPU add up (rates are totals over totals), latency percentiles are
    # the median round's, and each round's ratios are kept with their medians.
    slow = _result(
        "livemesh", turns=100, client_cpu_s=2.0, turn_latency_ms={"p50": 9, "p90": 9, "p99": 90, "max": 99}
    )
    fast = _result(
        "livemesh", turns=300, client_cpu_s=1.0, turn_latency_ms={"p50": 1, "p90": 1, "p99": 10, "max": 11}
    )
    mid = _result(
        "livemesh", turns=200, client_cpu_s=1.5, turn_latency_ms={"p50": 5, "p90": 5, "p99": 50, "max": 55}
    )
    merged, details = report.merge_rounds(
        [
            (slow, {"audio_messages_sent": 1, "server_cpu_s": 1.5, "sessions_verified": 4}),
            (fast, {"audio_messages_sent": 2, "server_cpu_s": 1.0, "sessions_verified": 3}),
            (mid, {"audio_messages_sent": 3, "server_cpu_s": 0.5, "sessions_verified": 4}),
        ]
    )
    assert tuple(merged) == report.RESULT_KEYS
    assert (merged["turns"], merged["duration_s"], merged["client_cpu_s"]) == (600, 30.0, 4.5)
    assert merged["turn_latency_ms"] == {"p50": 5, "p90": 5, "p99": 50, "max": 55}
    assert details["audio_messages_sent"] == 6 and details["server_cpu_s"] == 3.0
    assert details["sessions_verified"] == 3  # of 4 sessions: the worst round
    rounds = [
        {"turns_per_s": 1.0, "p99_turn_latency": None},
        {"turns_per_s": 3.0, "p99_turn_latency": 2.0},
        {"turns_per_s": 1.5, "p99_turn_latency": 1.0},
    ]
    assert report.median_ratios(rounds) == {"turns_per_s": 1.5, "p99_turn_latency": None}
    path = tmp_path / "r.json"
    report.write_json(str(path), [merged, merged], {"turns_per_s": 1.0}, rounds)
    doc = json.loads(path.read_text())
    assert doc["rounds"] == rounds and doc["median_ratios"]["turns_per_s"] == 1.5
    out = io.StringIO()
    report.render_table(
        Console(file=out, width=200),
        [merged, merged],
        [details, details],
        {"turns_per_s": 1.0},
        rounds=rounds,
    )
    assert "median of rounds" in out.getvalue() and "1.00 3.00 1.50" in out.getvalue()


def test_bytes_a_client_cannot_count_are_n_a_not_zero() -> None:
    # google-genai offers no public byte count on its socket: its column says so instead of 0.
    rec = Recorder(bytes_counted=False)
    rec.bytes_sent = 123
    theirs = rec.result(client="genai", sessions=1, duration_s=1.0)
    assert theirs["bytes_sent"] is None and theirs["bytes_received"] is None
    merged, _ = report.merge_rounds([(theirs, {}), (theirs, {})])
    assert merged["bytes_sent"] is None
    out = io.StringIO()
    ours = _result("livemesh", bytes_sent=2_000_000)
    report.render_table(Console(file=out, width=160), [ours, theirs], [{}, {}], None)
    text = out.getvalue()
    assert "2.0 / 0.0" in text and "n/a" in text
