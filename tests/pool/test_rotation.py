"""The rotation planner: earliest of goAway / connection age / session budget, stagger, quiet point."""

from __future__ import annotations

import random

import attrs
import pytest

from livemesh.errors import ConfigError
from livemesh.limits import ServiceLimits
from livemesh.pool.rotation import Reason, RotationConfig, RotationInputs, StepKind, plan

REAL = ServiceLimits()
SMALL = ServiceLimits(
    connection_lifetime_s=3.0, go_away_notice_s=1.0, audio_session_s=5.0, audio_video_session_s=2.0
)
CONFIG = RotationConfig()


def inputs(now: float, **kw: object) -> RotationInputs:
    base: dict[str, object] = {"connection_started_at": 0.0, "budget_started_at": 0.0}
    base.update(kw)
    return RotationInputs(now=now, **base)  # type: ignore[arg-type]


def test_real_limits_rotate_at_nine_of_ten_minutes() -> None:
    step = plan(inputs(0.0), REAL, CONFIG)
    assert step.kind is StepKind.WAIT
    assert step.at == pytest.approx(540.0)
    assert step.reason is Reason.CONNECTION_AGE
    assert step.deadline == pytest.approx(600.0)
    assert plan(inputs(540.0), REAL, CONFIG).kind is StepKind.ROTATE


def test_shrunk_limits_keep_the_same_shape() -> None:
    step = plan(inputs(0.0), SMALL, CONFIG)
    assert step.at == pytest.approx(2.7)


def test_go_away_makes_it_due_at_once_with_its_own_deadline() -> None:
    step = plan(inputs(100.0, go_away_at=100.0, go_away_time_left=50.0), REAL, CONFIG)
    assert step.kind is StepKind.ROTATE
    assert step.reason is Reason.GO_AWAY
    assert step.deadline == pytest.approx(150.0)


def test_go_away_is_not_delayed_by_jitter() -> None:
    step = plan(inputs(100.0, go_away_at=100.0, go_away_time_left=50.0, jitter=0.99), REAL, CONFIG)
    assert (step.kind, step.at) == (StepKind.ROTATE, 100.0)


def test_budget_earlier_than_connection_age_wins() -> None:
    # audio+video: 120 s budget, margin min(30, 12) = 12 -> 108
    step = plan(inputs(0.0, video=True), REAL, CONFIG)
    assert step.reason is Reason.SESSION_BUDGET
    assert step.at == pytest.approx(108.0)
    assert step.deadline == pytest.approx(120.0)


def test_compression_removes_the_budget() -> None:
    step = plan(inputs(0.0, video=True, compressed=True), REAL, CONFIG)
    assert step.reason is Reason.CONNECTION_AGE


def test_budget_spanning_resumes_ends_the_session_with_a_reason() -> None:
    config = RotationConfig(budget_resets_on_resume=False)
    step = plan(inputs(110.0, video=True, connection_started_at=100.0), REAL, config)
    assert step.kind is StepKind.END
    assert step.reason is Reason.SESSION_BUDGET
    assert "compression" in step.detail
    # with a budget that resets, the same situation is a rotation
    assert plan(inputs(110.0, video=True, connection_started_at=100.0), REAL, CONFIG).kind is StepKind.ROTATE


def test_jitter_spreads_rotations_earlier_within_the_stagger_window() -> None:
    rng = random.Random(1)
    targets = [plan(inputs(0.0, jitter=rng.random()), REAL, CONFIG).at for _ in range(1000)]
    assert min(targets) >= 540.0 - 30.0
    assert max(targets) <= 540.0
    # spread: no one-second bucket holds more than a few percent of the sessions
    buckets: dict[int, int] = {}
    for t in targets:
        buckets[int(t)] = buckets.get(int(t), 0) + 1
    assert max(buckets.values()) < 80


def test_waits_for_a_quiet_point_then_forces_before_the_deadline() -> None:
    step = plan(inputs(545.0, quiet=False), REAL, CONFIG)
    assert step.kind is StepKind.WAIT
    assert step.at == pytest.approx(595.0)  # force_before = min(5, 0.05 * 600)
    assert "quiet" in step.detail and step.waiting_for_quiet
    assert not plan(inputs(0.0, quiet=False), REAL, CONFIG).waiting_for_quiet
    assert plan(inputs(560.0, quiet=True), REAL, CONFIG).kind is StepKind.ROTATE
    forced = plan(inputs(595.0, quiet=False), REAL, CONFIG)
    assert forced.kind is StepKind.ROTATE and forced.forced


def test_earliest_deadline_is_reported_whatever_the_target() -> None:
    # goAway with 10 s left arrives; the budget would end sooner still
    step = plan(inputs(110.0, video=True, go_away_at=110.0, go_away_time_left=30.0), REAL, CONFIG)
    assert step.deadline == pytest.approx(120.0)


def test_disabled_never_rotates() -> None:
    step = plan(inputs(1e9), REAL, attrs.evolve(CONFIG, enabled=False))
    assert step.kind is StepKind.WAIT and step.at == float("inf")


def test_config_validates() -> None:
    with pytest.raises(ConfigError):
        RotationConfig(connection_margin_s=-1)
    with pytest.raises(ConfigError):
        RotationConfig(stagger_fraction=1.0)
