"""Pool-wide counters and a turn-latency histogram, cheap enough to leave on in production.

The hot path only increments integers and records one histogram value per completed turn (about
2 µs in ``hdrhistogram``); all aggregation happens in :meth:`PoolMetrics.snapshot`, which the
caller pays for when it asks. Live sessions' traffic counters are read from their summaries at
snapshot time; a finished session's counters are folded into the retired totals once, so the
pool-wide totals only ever grow.

Latency percentiles come from an HDR histogram (1 µs to 1 h, 2 significant digits: ~25 KiB),
not from sorting samples, so the cost and the memory do not grow with traffic.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
from hdrh.histogram import HdrHistogram

__all__ = ["LatencySummary", "PoolMetrics", "PoolSnapshot", "SessionSummary", "Traffic"]

_MAX_US = 3_600_000_000


@attrs.frozen
class Traffic:
    """Messages and bytes each way."""

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.messages_in + other.messages_in,
            self.messages_out + other.messages_out,
            self.bytes_in + other.bytes_in,
            self.bytes_out + other.bytes_out,
        )


@attrs.frozen(kw_only=True)
class SessionSummary:
    """One supervised session as the pool sees it (all times on the trio clock)."""

    conversation_id: str
    state: str
    """``"connecting"``, ``"running"``, ``"rotating"``, ``"restarting"``, ``"ended"``, ``"failed"``."""
    started_at: float
    connection_started_at: float | None = None
    restarts: int = 0
    rotations: int = 0
    reconnects: int = 0
    turns: int = 0
    traffic: Traffic = Traffic()
    last_error: str | None = None
    next_rotation_at: float | None = None
    next_rotation_reason: str | None = None


@attrs.frozen
class LatencySummary:
    """Turn latency (request sent → first response), seconds."""

    count: int = 0
    mean: float = 0.0
    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    max: float = 0.0


@attrs.frozen(kw_only=True)
class PoolSnapshot:
    """A frozen, pool-wide view of the counters at one instant (cheap: no per-message work)."""

    active: int
    queued: int
    started: int
    failed: int
    restarted: int
    given_up: int
    rotations: int
    """Planned moves to a fresh connection (goAway, age, budget, ``rotate()``), all sessions."""
    reconnects: int
    """New connections after the first, planned or not (drops included), all sessions."""
    turns: int
    ended_by_limit: int
    admission_timeouts: int
    traffic: Traffic
    turn_latency: LatencySummary
    sessions: tuple[SessionSummary, ...] = ()


class PoolMetrics:
    """Mutable counters owned by one pool (no globals: two pools never share numbers)."""

    def __init__(self) -> None:
        self.started = 0
        self.failed = 0
        self.restarted = 0
        self.given_up = 0
        self.ended_by_limit = 0
        self.admission_timeouts = 0
        self._retired = Traffic()
        self._retired_reconnects = 0
        self._retired_rotations = 0
        self._retired_turns = 0
        self._histogram = HdrHistogram(1, _MAX_US, 2)

    def record_turn_latency(self, seconds: float) -> None:
        self._histogram.record_value(min(_MAX_US, max(1, round(seconds * 1e6))))

    def retire(self, summary: SessionSummary) -> None:
        """Fold a finished session (or a finished incarnation of one) into the totals."""
        self._retired = self._retired + summary.traffic
        self._retired_reconnects += summary.reconnects
        self._retired_rotations += summary.rotations
        self._retired_turns += summary.turns

    def latency(self) -> LatencySummary:
        h = self._histogram
        count = h.get_total_count()
        if not count:
            return LatencySummary()
        p50, p90, p99 = (h.get_value_at_percentile(p) / 1e6 for p in (50, 90, 99))
        return LatencySummary(count, h.get_mean_value() / 1e6, p50, p90, p99, h.get_max_value() / 1e6)

    def snapshot(
        self, *, active: int, queued: int, sessions: Iterable[SessionSummary], include_sessions: bool = True
    ) -> PoolSnapshot:
        live = tuple(sessions)
        traffic = self._retired
        reconnects = self._retired_reconnects
        rotations = self._retired_rotations
        turns = self._retired_turns
        for summary in live:
            traffic = traffic + summary.traffic
            reconnects += summary.reconnects
            rotations += summary.rotations
            turns += summary.turns
        return PoolSnapshot(
            active=active,
            queued=queued,
            started=self.started,
            failed=self.failed,
            restarted=self.restarted,
            given_up=self.given_up,
            rotations=rotations,
            turns=turns,
            reconnects=reconnects,
            ended_by_limit=self.ended_by_limit,
            admission_timeouts=self.admission_timeouts,
            traffic=traffic,
            turn_latency=self.latency(),
            sessions=live if include_sessions else (),
        )
