"""The pool's own errors, under :class:`livemesh.errors.LivemeshError`.

They live here (not in ``livemesh/errors.py``) because the pool owns the policies that raise them;
``livemesh`` re-exports them at the top level for ``except`` clauses.
"""

from __future__ import annotations

from livemesh.errors import LivemeshError

__all__ = [
    "AdmissionTimeoutError",
    "PoolClosedError",
    "PoolError",
    "RestartIntensityError",
    "SessionLimitError",
]


class PoolError(LivemeshError):
    """Base class of the pool's errors."""


class PoolClosedError(PoolError):
    """The pool is closing or closed: it admits no new session."""


class AdmissionTimeoutError(PoolError, TimeoutError):
    """No session slot freed up within the admission timeout.

    ``waited`` is how long the caller queued, ``position`` where it stood when it gave up (0 = next),
    ``capacity`` the pool's limit, so the message says why without a debugger.
    """

    def __init__(self, *, waited: float, position: int, capacity: int) -> None:
        super().__init__(
            f"no session slot within {waited:.3g}s: all {capacity} in use, "
            f"{position} caller(s) still ahead in the queue"
        )
        self.waited = waited
        self.position = position
        self.capacity = capacity


class RestartIntensityError(PoolError):
    """A supervised session failed more often than its restart intensity allows; it was given up.

    ``restarts`` within ``period_s`` exceeded the policy; ``__cause__`` is the last failure.
    """

    def __init__(self, conversation_id: str, *, restarts: int, period_s: float) -> None:
        super().__init__(
            f"session {conversation_id!r} gave up: more than {restarts} restart(s) within {period_s:g}s"
        )
        self.conversation_id = conversation_id
        self.restarts = restarts
        self.period_s = period_s


class SessionLimitError(PoolError):
    """The pool ended a session at a service limit it could not avoid by rotating.

    Example: audio+video without context compression reaches its 2-minute session budget; a new
    connection would not reset it, so the pool ends the session at a quiet point with this reason
    instead of letting the service cut it mid-turn.
    """

    def __init__(self, conversation_id: str, reason: str) -> None:
        super().__init__(f"session {conversation_id!r} ended by the pool: {reason}")
        self.conversation_id = conversation_id
        self.reason = reason
