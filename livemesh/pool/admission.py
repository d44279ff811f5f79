"""Fair admission: at most ``capacity`` sessions at once, later callers queue first-come first-served.

Why not ``trio.CapacityLimiter``: it is FIFO too, but a waiter cannot be told "the pool is
closing" (only cancelled), and it cannot say where a timed-out caller stood in the queue. This is
the same idea in forty lines, with bookkeeping decided synchronously (httpcore's pool habit):

* ``release()`` hands the freed slot straight to the oldest live waiter, so a newcomer can never
  jump the queue between a release and the waiter waking up;
* a waiter cancelled (or timed out) after it was handed a slot gives the slot back, so capacity is
  never lost to a race between a deadline and a release;
* ``close()`` wakes every waiter with :class:`~livemesh.pool.errors.PoolClosedError`.

:class:`QuotaBackoff` is the other half of admission: the service counts concurrent sessions per
project and refuses extra ones with a quota close. After such a close the
pool pauses all new connection attempts for an exponentially growing, jittered time instead of
hammering the service.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from livemesh.errors import ConfigError
from livemesh.pool.errors import AdmissionTimeoutError, PoolClosedError

__all__ = ["Admission", "AdmissionStatistics", "QuotaBackoff"]


@attrs.define(eq=False, slots=True)
class _Waiter:
    event: trio.Event = attrs.field(factory=trio.Event)
    granted: bool = False
    closed: bool = False
    gone: bool = False


@attrs.frozen
class AdmissionStatistics:
    capacity: int
    active: int
    waiting: int
    closed: bool


class Admission:
    """At most ``capacity`` holders at once; waiters are served strictly in arrival order."""

    def __init__(self, capacity: int, *, clock: Callable[[], float] = trio.current_time) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigError(f"capacity must be a positive int, not {capacity!r}")
        self._capacity = capacity
        self._active = 0
        self._waiters: deque[_Waiter] = deque()
        self._waiting = 0
        self._closed = False
        self._clock = clock

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> AdmissionStatistics:
        return AdmissionStatistics(self._capacity, self._active, self._waiting, self._closed)

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody is queued (never overtakes a waiter)."""
        if self._closed:
            raise PoolClosedError("the pool is closed; no new sessions are admitted")
        if self._active < self._capacity and self._waiting == 0:
            self._active += 1
            return True
        return False

    async def acquire(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 (reported in the error)
        """Wait for a slot, in arrival order. :class:`AdmissionTimeoutError` after ``timeout`` s."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.try_acquire():
            await trio.lowlevel.cancel_shielded_checkpoint()  # a checkpoint that cannot lose the slot
            return
        waiter = _Waiter()
        self._waiters.append(waiter)
        self._waiting += 1
        started = self._clock()
        try:
            with trio.move_on_after(float("inf") if timeout is None else timeout):
                await waiter.event.wait()
        except BaseException:
            self._abandon(waiter)
            raise
        if waiter.closed:
            raise PoolClosedError("the pool closed while this caller waited for a session slot")
        if waiter.granted:
            return
        position = self._abandon(waiter)
        raise AdmissionTimeoutError(
            waited=self._clock() - started, position=position, capacity=self._capacity
        )

    def _abandon(self, waiter: _Waiter) -> int:
        """Leave the queue; return how many live waiters were ahead. A granted slot is given back."""
        if waiter.granted:
            waiter.granted = False
            self.release()
            return 0
        if waiter.gone:
            return 0
        waiter.gone = True
        self._waiting -= 1
        ahead = 0
        for other in self._waiters:
            if other is waiter:
                break
            if not other.gone:
                ahead += 1
        # Drop abandoned waiters from the front so the deque never grows with dead entries there.
        while self._waiters and self._waiters[0].gone:
            self._waiters.popleft()
        return ahead

    def release(self) -> None:
        """Free a slot: hand it to the oldest live waiter, or return it to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.gone:
                continue
            waiter.gone = True
            waiter.granted = True
            self._waiting -= 1
            waiter.event.set()
            return
        if self._active <= 0:
            raise RuntimeError("Admission.release() without a matching acquire()")
        self._active -= 1

    def close(self) -> None:
        """Stop admitting: every queued caller (and every later one) gets :class:`PoolClosedError`."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.gone:
                continue
            waiter.gone = True
            waiter.closed = True
            self._waiting -= 1
            waiter.event.set()

    @asynccontextmanager
    async def admit(self, *, timeout: float | None = None) -> AsyncIterator[None]:  # noqa: ASYNC109
        """Hold a slot for the block; it is released however the block ends."""
        await self.acquire(timeout=timeout)
        try:
            yield
        finally:
            self.release()


class QuotaBackoff:
    """Pause new connection attempts after quota refusals: jittered exponential, reset on success.

    ``uniform`` returns floats in [0, 1) (inject a seeded ``random.Random().random`` in tests);
    the pause after the n-th consecutive refusal is ``min(max_s, base_s * 2**(n-1))`` scaled by
    a factor in [0.5, 1), so many sessions refused together do not all come back at once.
    """

    def __init__(
        self,
        *,
        base_s: float = 1.0,
        max_s: float = 60.0,
        uniform: Callable[[], float],
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if base_s < 0 or max_s < base_s:
            raise ConfigError(f"need 0 <= base_s <= max_s, got base_s={base_s}, max_s={max_s}")
        self._base = base_s
        self._max = max_s
        self._uniform = uniform
        self._clock = clock
        self._strikes = 0
        self._paused_until = float("-inf")

    @property
    def strikes(self) -> int:
        return self._strikes

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def note_quota(self) -> float:
        """Record a quota refusal; returns the time until which attempts pause."""
        self._strikes += 1
        pause = min(self._max, self._base * 2 ** (self._strikes - 1)) * (0.5 + 0.5 * self._uniform())
        self._paused_until = max(self._paused_until, self._clock() + pause)
        return self._paused_until

    def note_success(self) -> None:
        """A connection got through: the next refusal starts from the base pause again."""
        self._strikes = 0

    async def wait(self) -> None:
        """Return once no pause is in force (a checkpoint either way)."""
        while self._clock() < self._paused_until:  # noqa: ASYNC110 (a new refusal may extend the pause)
            await trio.sleep_until(self._paused_until)
        await trio.lowlevel.checkpoint()
