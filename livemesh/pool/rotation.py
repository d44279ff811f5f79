"""When to move a session to a fresh connection, or end it: a pure planner, no I/O, no clock.

The service ends every connection after about 10 minutes (a ``goAway`` comes about 60 s before)
and, without context compression, every session after 15 min (audio) or 2 min (audio+video).
:func:`plan` looks at one session's times and answers with a :class:`Step`: wait until some
time, rotate now, or end now, and why. The pool's rotation task calls it again whenever
something changes (a goAway, the session turning quiet, the planned time passing).

The rules, in order of precedence:

* **Targets.** The connection should be left ``margin`` before its lifetime ends (``margin`` is
  ``connection_margin_s`` but at most ``connection_margin_fraction`` of the lifetime, so limits
  shrunk to seconds in tests keep the same shape: 9 of 10 minutes, 2.7 of 3 seconds); a
  ``goAway`` makes it due at once. The session budget is treated the same way with
  ``budget_margin_s``. The earliest target wins.
* **Stagger.** Each connection draws one ``jitter`` in [0, 1); age- and budget-driven targets
  move *earlier* by ``jitter * stagger``, so thousands of sessions started in the same second
  spread their reconnects over the stagger window instead of hitting the service together.
  A goAway is never delayed by jitter.
* **Quiet point.** Once due, the pool acts only at a quiet point (resumable handle, no
  generation, no pending tool call: the ``quiet`` input). If none comes, it acts anyway
  ``force_before_s`` before the deadline (``forced=True``): a clean, announced move beats the
  service cutting the connection mid-turn.
* **Unavoidable limits.** If the budget is due and a new connection does not reset it (the
  service counts the budget per session; ``budget_resets_on_resume=False``), rotating is
  pointless: the step is ``END`` with a reason the caller can show.
"""

from __future__ import annotations

import enum

import attrs

from livemesh.errors import ConfigError
from livemesh.limits import ServiceLimits

__all__ = ["Reason", "RotationConfig", "RotationInputs", "Step", "StepKind", "plan"]

INF = float("inf")


class Reason(enum.Enum):
    GO_AWAY = "go_away"
    CONNECTION_AGE = "connection_age"
    SESSION_BUDGET = "session_budget"


class StepKind(enum.Enum):
    WAIT = "wait"
    ROTATE = "rotate"
    END = "end"


def _ge0(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ConfigError(f"{attribute.name} must be >= 0, not {value!r}")


def _fraction(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value < 1:
        raise ConfigError(f"{attribute.name} must be in [0, 1), not {value!r}")


@attrs.frozen(kw_only=True)
class RotationConfig:
    """Margins of the rotation planner; the defaults rotate at about 9 of 10 minutes.

    Every margin is ``min(seconds, fraction * the limit it guards)``.
    """

    connection_margin_s: float = attrs.field(default=60.0, validator=_ge0)
    connection_margin_fraction: float = attrs.field(default=0.1, validator=_fraction)
    budget_margin_s: float = attrs.field(default=30.0, validator=_ge0)
    budget_margin_fraction: float = attrs.field(default=0.1, validator=_fraction)
    stagger_s: float = attrs.field(default=30.0, validator=_ge0)
    stagger_fraction: float = attrs.field(default=0.1, validator=_fraction)
    """Rotations spread over up to this much time before the target (per-connection jitter)."""
    force_before_s: float = attrs.field(default=5.0, validator=_ge0)
    force_before_fraction: float = attrs.field(default=0.05, validator=_fraction)
    """Without a quiet point, act this long before the deadline anyway."""
    budget_resets_on_resume: bool = True
    """Whether a resumed connection starts a new duration budget (the emulator's behaviour).
    False: the budget spans the whole conversation, and reaching it ends the session."""
    enabled: bool = True

    def connection_margin(self, limits: ServiceLimits) -> float:
        return min(self.connection_margin_s, self.connection_margin_fraction * limits.connection_lifetime_s)

    def budget_margin(self, budget: float) -> float:
        return min(self.budget_margin_s, self.budget_margin_fraction * budget)

    def stagger(self, span: float) -> float:
        return min(self.stagger_s, self.stagger_fraction * span)

    def force_before(self, span: float) -> float:
        return min(self.force_before_s, self.force_before_fraction * span)


@attrs.frozen(kw_only=True)
class RotationInputs:
    """One session's situation at ``now`` (all times on the same monotonic clock)."""

    now: float
    connection_started_at: float
    budget_started_at: float
    """When the current duration budget began (session start, or the last resume if it resets)."""
    video: bool = False
    compressed: bool = False
    """Context window compression is on: no session budget (the connection limit still applies)."""
    go_away_at: float | None = None
    go_away_time_left: float | None = None
    quiet: bool = True
    jitter: float = 0.0
    """This connection's draw in [0, 1)."""


@attrs.frozen
class Step:
    """The planner's answer.

    ``WAIT``: re-plan at ``at`` (or sooner, when the inputs change). ``ROTATE``/``END``: act now.
    ``deadline`` is when the service would cut; ``forced`` means no quiet point came in time.
    """

    kind: StepKind
    at: float
    deadline: float
    reason: Reason | None = None
    forced: bool = False
    detail: str = ""
    waiting_for_quiet: bool = False
    """A ``WAIT`` that is due already: re-plan as soon as the session turns quiet."""


def plan(inputs: RotationInputs, limits: ServiceLimits, config: RotationConfig) -> Step:
    """Decide what one session should do at ``inputs.now``. Pure and cheap (called per event)."""
    now = inputs.now
    if not config.enabled:
        return Step(StepKind.WAIT, INF, INF)
    lifetime = limits.connection_lifetime_s
    lifetime_deadline = inputs.connection_started_at + lifetime
    candidates: list[tuple[float, float, Reason, str, float]] = []  # (target, deadline, reason, detail, span)

    age_target = (
        lifetime_deadline - config.connection_margin(limits) - inputs.jitter * config.stagger(lifetime)
    )
    candidates.append(
        (
            age_target,
            lifetime_deadline,
            Reason.CONNECTION_AGE,
            f"connection nearing its {lifetime:g}s lifetime",
            lifetime,
        )
    )
    if inputs.go_away_at is not None:
        left = inputs.go_away_time_left if inputs.go_away_time_left is not None else limits.go_away_notice_s
        go_deadline = min(lifetime_deadline, inputs.go_away_at + max(0.0, left))
        candidates.append(
            (inputs.go_away_at, go_deadline, Reason.GO_AWAY, f"goAway ({left:g}s left)", lifetime)
        )
    if not inputs.compressed:
        budget = limits.session_budget_s(video=inputs.video)
        kind = "audio+video" if inputs.video else "audio"
        budget_deadline = inputs.budget_started_at + budget
        budget_target = (
            budget_deadline - config.budget_margin(budget) - inputs.jitter * config.stagger(budget)
        )
        candidates.append(
            (
                budget_target,
                budget_deadline,
                Reason.SESSION_BUDGET,
                f"{kind} session budget of {budget:g}s",
                budget,
            )
        )

    target, deadline, reason, detail, span = min(candidates, key=lambda c: (c[0], c[1]))
    # The service cuts at the earliest deadline of all, whichever target we act on.
    deadline = min(c[1] for c in candidates)
    act = StepKind.ROTATE
    if reason is Reason.SESSION_BUDGET and not config.budget_resets_on_resume:
        act = StepKind.END
        detail += " reached; a new connection would not reset it (enable context_window_compression)"
    if now < target:
        return Step(StepKind.WAIT, target, deadline, reason, detail=detail)
    if inputs.quiet:
        return Step(act, now, deadline, reason, detail=detail)
    force_at = deadline - config.force_before(span)
    if now >= force_at:
        return Step(
            act, now, deadline, reason, forced=True, detail=detail + "; no quiet point before the deadline"
        )
    return Step(
        StepKind.WAIT,
        force_at,
        deadline,
        reason,
        detail=detail + "; waiting for a quiet point",
        waiting_for_quiet=True,
    )
