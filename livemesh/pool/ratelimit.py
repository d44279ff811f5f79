"""At most ``rate`` connection attempts per second (with a small burst), in call order.

A pool restarting hundreds of sessions after a network blip, or rotating thousands started in
the same second, must not open hundreds of sockets in one instant: the service (and the local
TLS stack) would see a thundering herd. This is GCRA (the "virtual scheduling" token bucket):
each caller reserves the next free send time synchronously, then sleeps until it. Reservations
are made in call order, so callers are served FIFO; a caller cancelled while sleeping wastes its
slot (the limiter errs on the slow side, never the fast one).
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from livemesh.errors import ConfigError

__all__ = ["RateLimiter"]


class RateLimiter:
    """``rate`` attempts per second on average, up to ``burst`` back to back after an idle spell."""

    def __init__(
        self, rate: float, *, burst: int = 1, clock: Callable[[], float] = trio.current_time
    ) -> None:
        if not rate > 0:
            raise ConfigError(f"rate must be positive, not {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ConfigError(f"burst must be a positive int, not {burst!r}")
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._tat = float("-inf")  # theoretical arrival time of the next conforming attempt
        self._granted = 0

    @property
    def rate(self) -> float:
        return 1.0 / self._interval

    @property
    def granted(self) -> int:
        """Attempts let through (or reserved) so far."""
        return self._granted

    def reserve(self) -> float:
        """Book the next slot now; return the time at which the caller may go (maybe in the past)."""
        now = self._clock()
        tat = max(self._tat, now)
        go_at = max(now, tat - self._tolerance)
        self._tat = tat + self._interval
        self._granted += 1
        return go_at

    async def acquire(self) -> None:
        """Wait for this caller's slot (always a checkpoint)."""
        go_at = self.reserve()
        if go_at > self._clock():
            await trio.sleep_until(go_at)
        else:
            await trio.lowlevel.checkpoint()
