"""Pool metrics: counters, retired totals that only grow, HDR percentiles."""

from __future__ import annotations

import pytest

from livemesh.pool.metrics import PoolMetrics, SessionSummary, Traffic


def summary(cid: str, n: int) -> SessionSummary:
    return SessionSummary(
        conversation_id=cid,
        state="running",
        started_at=0.0,
        reconnects=1,
        traffic=Traffic(n, n, n * 10, n * 10),
    )


def test_snapshot_sums_live_and_retired_sessions() -> None:
    metrics = PoolMetrics()
    metrics.started = 3
    metrics.retire(summary("gone", 5))
    snap = metrics.snapshot(active=2, queued=1, sessions=[summary("a", 1), summary("b", 2)])
    assert snap.traffic == Traffic(8, 8, 80, 80)
    assert snap.reconnects == 3
    assert (snap.active, snap.queued, snap.started) == (2, 1, 3)
    assert [s.conversation_id for s in snap.sessions] == ["a", "b"]
    assert metrics.snapshot(active=0, queued=0, sessions=[], include_sessions=False).sessions == ()


def test_latency_percentiles() -> None:
    metrics = PoolMetrics()
    assert metrics.latency().count == 0
    for ms in range(1, 101):
        metrics.record_turn_latency(ms / 1000)
    lat = metrics.latency()
    assert lat.count == 100
    assert lat.p50 == pytest.approx(0.050, rel=0.02)
    assert lat.p99 == pytest.approx(0.099, rel=0.02)
    assert lat.max == pytest.approx(0.100, rel=0.02)
    metrics.record_turn_latency(1e9)  # clamped, never raises
    metrics.record_turn_latency(0.0)
    assert metrics.latency().count == 102
