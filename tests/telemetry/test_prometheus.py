"""The metrics served for Prometheus, under the names the documentation lists."""

from __future__ import annotations

import urllib.request

from livemesh import telemetry


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def test_serve_prometheus_exposes_the_metrics_and_restores_the_setting() -> None:
    before = telemetry.current()
    with telemetry.serve_prometheus(0) as port:
        probe = telemetry.session_probe("s1", model="m-live", api="gemini", engine="sansio")
        probe.opened()
        probe.connection_opened(None)
        probe.turn_started(0.0)
        probe.first_chunk(0.5)
        probe.turn_complete(2.0)
        probe.move_done("go_away", 0.25)
        text = _scrape(port)
        probe.closed()
    assert telemetry.current() is before
    lines = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}
    for name in (
        "gen_ai_client_operation_duration_seconds_count",
        "gen_ai_client_operation_time_to_first_chunk_seconds_sum",
        "livemesh_moves_total",
        "livemesh_move_stall_seconds_bucket",
        "livemesh_connections_total",
        "livemesh_sessions_active",
    ):
        assert name in lines, (name, sorted(lines))
    moves = [line for line in text.splitlines() if line.startswith("livemesh_moves_total{")]
    assert len(moves) == 1
    assert 'livemesh_move_reason="goAway"' in moves[0] and 'gen_ai_request_model="m-live"' in moves[0]
    assert moves[0].endswith(" 1.0")
