"""One-for-one supervision, OTP style: when one session fails, only that session is restarted.

An Erlang supervisor decides per child from its *restart type* and the supervisor's *intensity*
(at most ``max_restarts`` in ``period_s`` seconds). livemesh keeps both ideas but applies the
intensity per session: in OTP exceeding it kills the supervisor and every sibling, which is the
opposite of what a pool of independent calls wants. A session that exceeds it is given up alone,
reported with :class:`~livemesh.pool.errors.RestartIntensityError`.

* ``Restart.PERMANENT``: restarted whenever it ends, even normally (a long-lived agent).
* ``Restart.TRANSIENT`` (default): restarted only when it fails.
* ``Restart.TEMPORARY``: never restarted; failures are still reported.

Some failures are not worth a retry whatever the type: the service refused the setup or the
credentials (1007/1008), or the caller misconfigured the session. Restarting would get the same
answer and, at scale, hammer the service. ``RestartPolicy.fatal`` lists them.

This module is pure: :class:`RestartTracker` turns (failure, time) into a :class:`Decision`; the
pool does the sleeping and the restarting.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable

import attrs

from livemesh.errors import (
    AuthError,
    CertificateError,
    ConfigError,
    LocalProtocolError,
    ServiceClosedError,
    SetupRejectedError,
)

__all__ = ["Action", "Decision", "Restart", "RestartPolicy", "RestartTracker"]


class Restart(enum.Enum):
    """When a child is restarted (OTP's restart types): always, only after a failure, or never."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Action(enum.Enum):
    RESTART = "restart"
    STOP = "stop"
    """Not restarted by policy (normal end, temporary child, fatal error)."""
    GIVE_UP = "give_up"
    """Restart intensity exceeded."""


DEFAULT_FATAL: tuple[type[BaseException], ...] = (
    SetupRejectedError,
    ServiceClosedError,
    CertificateError,
    AuthError,
    ConfigError,
    LocalProtocolError,
)


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ConfigError(f"{attribute.name} must be >= 0, not {value!r}")


def _non_negative_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{attribute.name} must be an int >= 0, not {value!r}")


@attrs.frozen(kw_only=True)
class RestartPolicy:
    """How a supervised session is restarted. Defaults: transient, at most 3 restarts in 5 s.

    ``backoff_base_s``/``backoff_max_s``: the n-th restart inside the current period waits
    ``min(max, base * 2**(n-1))`` scaled by a jittered factor in [0.5, 1). ``resume``: restart
    from the newest stored resumption handle (the conversation continues) rather than afresh.
    """

    restart: Restart = Restart.TRANSIENT
    max_restarts: int = attrs.field(default=3, validator=_non_negative_int)
    period_s: float = attrs.field(default=5.0, validator=_non_negative)
    backoff_base_s: float = attrs.field(default=0.05, validator=_non_negative)
    backoff_max_s: float = attrs.field(default=5.0, validator=_non_negative)
    resume: bool = True
    fatal: tuple[type[BaseException], ...] = DEFAULT_FATAL


NEVER = RestartPolicy(restart=Restart.TEMPORARY)
"""Report failures, never restart."""


@attrs.frozen
class Decision:
    action: Action
    delay: float = 0.0
    reason: str = ""


class RestartTracker:
    """The restart history of one supervised session and the policy that judges it."""

    __slots__ = ("_recent", "_uniform", "policy", "restarts")  # one per supervised session

    def __init__(self, policy: RestartPolicy, *, uniform: Callable[[], float]) -> None:
        self.policy = policy
        self._uniform = uniform
        self._recent: deque[float] | None = None  # created on the first failure (most never fail)
        self.restarts = 0

    def decide(self, error: BaseException | None, now: float) -> Decision:
        """What to do after the session ended at ``now`` (``error`` None = it returned normally)."""
        policy = self.policy
        if error is None:
            if policy.restart is not Restart.PERMANENT:
                return Decision(Action.STOP, reason="ended normally")
        elif policy.restart is Restart.TEMPORARY:
            return Decision(Action.STOP, reason="temporary session: failures are not restarted")
        elif isinstance(error, policy.fatal):
            return Decision(Action.STOP, reason=f"{type(error).__name__} is not retried")
        if self._recent is None:
            self._recent = deque()
        while self._recent and self._recent[0] <= now - policy.period_s:
            self._recent.popleft()
        if len(self._recent) >= policy.max_restarts:
            return Decision(
                Action.GIVE_UP,
                reason=f"more than {policy.max_restarts} restart(s) within {policy.period_s:g}s",
            )
        self._recent.append(now)
        self.restarts += 1
        n = len(self._recent)
        ceiling = min(policy.backoff_max_s, policy.backoff_base_s * 2 ** (n - 1))
        delay = ceiling * (0.5 + 0.5 * self._uniform())
        return Decision(Action.RESTART, delay=delay, reason=f"restart {n} within {policy.period_s:g}s")
