"""One-for-one restart policy: restart types, fatal errors, intensity, jittered backoff."""

from __future__ import annotations

import pytest

from livemesh.errors import ConfigError, QuotaError, ReconnectError, SetupRejectedError
from livemesh.pool.supervision import Action, Restart, RestartPolicy, RestartTracker


def tracker(**kwargs: object) -> RestartTracker:
    return RestartTracker(RestartPolicy(**kwargs), uniform=lambda: 0.0)  # type: ignore[arg-type]


def test_transient_restarts_failures_only() -> None:
    t = tracker()
    assert t.decide(None, 0.0).action is Action.STOP
    assert t.decide(RuntimeError("x"), 0.0).action is Action.RESTART


def test_permanent_restarts_even_a_normal_end() -> None:
    assert tracker(restart=Restart.PERMANENT).decide(None, 0.0).action is Action.RESTART


def test_temporary_never_restarts() -> None:
    decision = tracker(restart=Restart.TEMPORARY).decide(RuntimeError("x"), 0.0)
    assert decision.action is Action.STOP
    assert "temporary" in decision.reason


@pytest.mark.parametrize("error", [SetupRejectedError("bad", code=1007), ConfigError("typo")])
def test_fatal_errors_are_not_retried(error: Exception) -> None:
    decision = tracker(restart=Restart.PERMANENT).decide(error, 0.0)
    assert decision.action is Action.STOP
    assert type(error).__name__ in decision.reason


def test_retryable_session_errors_are_restarted() -> None:
    t = tracker()
    assert t.decide(ReconnectError("gave up", code=1011), 0.0).action is Action.RESTART
    assert t.decide(QuotaError("429", code=1011), 0.0).action is Action.RESTART


def test_intensity_gives_up_past_max_restarts_within_the_period() -> None:
    t = tracker(max_restarts=3, period_s=10.0)
    actions = [t.decide(RuntimeError(), now).action for now in (0.0, 1.0, 2.0, 3.0)]
    assert actions == [Action.RESTART] * 3 + [Action.GIVE_UP]
    assert t.restarts == 3


def test_old_restarts_age_out_of_the_period() -> None:
    t = tracker(max_restarts=2, period_s=10.0)
    for now in (0.0, 5.0, 10.5, 15.5, 21.0):
        assert t.decide(RuntimeError(), now).action is Action.RESTART
    assert t.decide(RuntimeError(), 22.0).action is Action.GIVE_UP


def test_zero_restarts_gives_up_at_once() -> None:
    assert tracker(max_restarts=0).decide(RuntimeError(), 0.0).action is Action.GIVE_UP


def test_backoff_doubles_within_the_period_and_is_jittered() -> None:
    low = RestartTracker(
        RestartPolicy(max_restarts=5, backoff_base_s=1.0, backoff_max_s=4.0), uniform=lambda: 0.0
    )
    high = RestartTracker(
        RestartPolicy(max_restarts=5, backoff_base_s=1.0, backoff_max_s=4.0), uniform=lambda: 0.999
    )
    assert [low.decide(RuntimeError(), 0.0).delay for _ in range(4)] == [0.5, 1.0, 2.0, 2.0]
    assert [round(high.decide(RuntimeError(), 0.0).delay, 2) for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]


def test_policy_validates() -> None:
    with pytest.raises(ConfigError):
        RestartPolicy(max_restarts=-1)
    with pytest.raises(ConfigError):
        RestartPolicy(period_s=-1.0)
