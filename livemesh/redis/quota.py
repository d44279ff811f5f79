"""A per-project session quota shared by every worker: leases with expiry, heartbeat, fair waiting.

The service counts concurrent Live sessions per *project*, whatever host they come from (3 on a
free tier: firebase.google.com/docs/ai-logic/live-api/limits-and-specs), so one process's
:class:`~livemesh.pool.admission.Admission` cannot enforce it for a fleet.
:class:`DistributedQuota` keeps, per project, in one Cluster slot:

* ``leases``: a sorted set of lease id -> expiry (Redis time). A holder's heartbeat extends its
  leases every ``lease_ttl_s / 3``; a worker that crashes stops beating and its slots come back by
  themselves within ``lease_ttl_s`` (expired leases are swept by the next acquire);
* ``queue``: waiting callers as tickets in arrival order (a counter gives each its number). A
  caller at queue position ``r`` is granted only while ``r < free slots``, and a newcomer never
  takes a slot while anyone queues, so callers are served first-come first-served across the fleet;
* ``alive``: each waiter's liveness (refreshed by its polls) so a crashed waiter leaves the queue.

Waiters poll (with jitter, slower the further back they stand) rather than subscribe: polling
survives a Redis restart or failover with no resubscription logic, and costs one small script per
poll. A timeout raises :class:`~livemesh.redis.errors.QuotaTimeoutError` with the caller's position.

Layering with the pool: a worker's pool keeps its local ``Admission`` (bounding this process) and
its ``QuotaBackoff`` (pausing after the service's own quota closes); :func:`quota_connect` wraps the
pool's ``connect`` so each connection attempt also holds a distributed lease::

    async with open_quota(backend, project="my-project", limit=3) as quota:
        async with open_pool(max_sessions=50, connect=quota_connect(quota, timeout=30)) as pool:
            ...

If Redis loses the leases (a restart without persistence), the heartbeat reinstates them while
the project has room; a lease that cannot be reinstated cancels the block holding it
(:class:`~livemesh.redis.errors.QuotaLostError`), so the limit is never knowingly exceeded.
The one unavoidable window: a holder stalled longer than ``lease_ttl_s`` (a frozen VM) overlaps
with the next holder until its own next heartbeat cancels it; pick ``lease_ttl_s`` well above
the longest stall you expect (the default 15 s; heartbeats run every 5 s).
"""

from __future__ import annotations

import logging
import math
import random
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import trio

from livemesh._validators import check_int_at_least
from livemesh.errors import ConfigError, QuotaError
from livemesh.redis import scripts
from livemesh.redis._client import RedisBackend, beat
from livemesh.redis.errors import QuotaLostError, QuotaTimeoutError, RedisUnavailableError

__all__ = ["DistributedQuota", "QuotaLease", "QuotaStatistics", "open_quota", "quota_connect"]

log = logging.getLogger("livemesh.redis.quota")

_SHORTEST_S = 0.001
"""The shortest duration the scripts can carry: Redis counts milliseconds, and a shorter one would
round to 0 (a Redis error for a pause, a lease that has expired already)."""


def _check_duration(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not _SHORTEST_S <= value < math.inf:
        raise ConfigError(f"{name} must be a finite number of seconds >= {_SHORTEST_S}, not {value!r}")


@attrs.define(eq=False)
class QuotaLease:
    """One held slot of a project's quota, from :meth:`DistributedQuota.acquire` or
    :meth:`DistributedQuota.slot`; hand it back with :meth:`DistributedQuota.release`.

    Attributes:
        id: The lease's id, unique across the fleet.
        project: The project it counts against.
        lost: Set when the heartbeat found the lease lost for good.
    """

    id: str
    project: str
    lost: bool = False
    _scope: trio.CancelScope | None = attrs.field(default=None, init=False, repr=False)
    """The cancel scope of the :meth:`DistributedQuota.slot` block running under this lease,
    cancelled when the heartbeat finds the lease lost. Set by that block, never by a caller."""


@attrs.frozen
class QuotaStatistics:
    """Counters of one :class:`DistributedQuota` (from :meth:`DistributedQuota.statistics`).

    Attributes:
        held: Leases this process holds now.
        waiting: Callers of this process waiting for a slot now.
        renewals: Heartbeats that renewed the leases.
        reinstated: Leases Redis had lost and a heartbeat put back.
        lost: Leases lost for good (their blocks were cancelled).
        heartbeat_failures: Heartbeats that failed (Redis away, or this process too slow).
    """

    held: int
    waiting: int
    renewals: int
    reinstated: int
    lost: int
    heartbeat_failures: int


class DistributedQuota:
    """A project's concurrent-session quota, shared by every worker through Redis.

    Create it with :func:`open_quota` (which runs the heartbeat). Safe to share between tasks.

    Attributes:
        backend: The Redis backend.
        project: The project the quota counts.
        limit: Concurrent sessions the project may hold fleet-wide.
        lease_ttl_s: How long a lease lives without a heartbeat.
        poll_s: The base interval at which waiting callers poll.
        waiter_ttl_s: How long a waiting caller stays queued without polling.
        refusal_pause_s: The first and the longest fleet-wide pause after a quota refusal.
    """

    def __init__(
        self,
        backend: RedisBackend,
        project: str,
        limit: int,
        *,
        lease_ttl_s: float = 15.0,
        poll_s: float = 0.1,
        waiter_ttl_s: float | None = None,
        refusal_pause_s: tuple[float, float] = (1.0, 60.0),
        rng: random.Random | None = None,
    ) -> None:
        """Prepare the quota (the heartbeat is :meth:`run_heartbeat`).

        Args:
            backend: The Redis backend shared by the fleet.
            project: The project the quota counts (every worker must use the same name).
            limit: Concurrent sessions the project may hold fleet-wide.
            lease_ttl_s: How long a lease lives without a heartbeat (heartbeats come every
                third of it); a crashed worker's slots come back after this long. Pick it well
                above the longest stall you expect: a holder stalled longer overlaps with the
                next holder until its own next heartbeat cancels it.
            poll_s: The base interval at which waiting callers poll (the back of the queue
                polls slower).
            waiter_ttl_s: How long a waiting caller stays queued without polling (default
                ``max(2, 10 * poll_s)``): a crashed waiter leaves the queue after it.
            refusal_pause_s: The first and the longest fleet-wide pause after the service
                refuses a session for quota (doubling per consecutive refusal), ``first <=
                longest``.
            rng: The source of polling jitter (for reproducible tests).

        Raises:
            ConfigError: ``project`` is not a non-empty string without braces (it becomes the
                keys' Redis Cluster hash tag), ``limit`` is not an int >= 1, a duration is not
                a finite number of seconds of at least 0.001 (Redis counts milliseconds), or
                ``refusal_pause_s`` is not two such durations in order.
        """
        if not isinstance(project, str) or not project or "{" in project or "}" in project:
            raise ConfigError(f"project must be a non-empty string without braces, not {project!r}")
        check_int_at_least("limit", limit, 1)
        _check_duration("lease_ttl_s", lease_ttl_s)
        _check_duration("poll_s", poll_s)
        if waiter_ttl_s is not None:
            _check_duration("waiter_ttl_s", waiter_ttl_s)
        if not isinstance(refusal_pause_s, tuple | list) or len(refusal_pause_s) != 2:
            raise ConfigError(f"refusal_pause_s must be a (first, longest) pair, not {refusal_pause_s!r}")
        _check_duration("refusal_pause_s[0]", refusal_pause_s[0])
        _check_duration("refusal_pause_s[1]", refusal_pause_s[1])
        if refusal_pause_s[0] > refusal_pause_s[1]:
            raise ConfigError(
                f"refusal_pause_s must be (first, longest), first <= longest, not {refusal_pause_s!r}"
            )
        self.backend = backend
        self.project = project
        self.limit = limit
        self.lease_ttl_s = lease_ttl_s
        self.poll_s = poll_s
        self.waiter_ttl_s = waiter_ttl_s if waiter_ttl_s is not None else max(2.0, 10 * poll_s)
        self.refusal_pause_s = refusal_pause_s
        self._rng = rng or random.Random()
        tag = f"quota:{project}"
        self._leases_key = backend.key(tag, "leases")
        self._queue_key = backend.key(tag, "queue")
        self._alive_key = backend.key(tag, "alive")
        self._counter_key = backend.key(tag, "tickets")
        self._pause_key = backend.key(tag, "pause")
        self._strikes_key = backend.key(tag, "strikes")
        self._held: dict[str, QuotaLease] = {}
        self._released = trio.Event()
        self._waiting = 0
        self._renewals = 0
        self._reinstated = 0
        self._lost = 0
        self._heartbeat_failures = 0

    def __repr__(self) -> str:
        return f"DistributedQuota(project={self.project!r}, limit={self.limit}, held={len(self._held)})"

    def statistics(self) -> QuotaStatistics:
        """A snapshot of this process's counters.

        Returns:
            The counters now.
        """
        return QuotaStatistics(
            len(self._held),
            self._waiting,
            self._renewals,
            self._reinstated,
            self._lost,
            self._heartbeat_failures,
        )

    # ------------------------------------------------------------------ acquiring

    def _new_lease(self) -> QuotaLease:
        return QuotaLease(id=secrets.token_hex(8), project=self.project)

    async def _attempt(self, lease: QuotaLease, mode: str) -> tuple[bool, int]:
        granted, rank = await self.backend.eval(
            "quota acquire",
            scripts.QUOTA_ACQUIRE,
            [self._leases_key, self._queue_key, self._alive_key, self._counter_key, self._pause_key],
            [self.limit, round(self.lease_ttl_s * 1000), lease.id, round(self.waiter_ttl_s * 1000), mode],
        )
        if int(granted) == 1:
            self._held[lease.id] = lease
            return True, 0
        return False, int(rank)

    async def try_acquire(self) -> QuotaLease | None:
        """Take a slot if one is free and nobody queues; never waits, never queues.

        Returns:
            The lease (release it with :meth:`release`), or ``None``.

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        lease = self._new_lease()
        granted, _ = await self._attempt(lease, "try")
        return lease if granted else None

    async def acquire(self, *, timeout: float | None = None) -> QuotaLease:  # noqa: ASYNC109 (reported in the error)
        """Wait in the project's fleet-wide FIFO queue for a slot.

        The queue ticket is withdrawn however the wait ends (timeout, cancellation, error).
        Prefer :meth:`slot`, which also releases the lease.

        Args:
            timeout: Seconds to wait at most (``None``: no limit).

        Returns:
            The lease (release it with :meth:`release`).

        Raises:
            QuotaTimeoutError: No slot came free within ``timeout``.
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        lease = self._new_lease()
        started = trio.current_time()
        position: int | None = None
        self._waiting += 1
        try:
            with trio.move_on_after(float("inf") if timeout is None else timeout):
                while True:
                    granted, position = await self._attempt(lease, "wait")
                    if granted:
                        return lease
                    # The head of the queue polls fastest; the back, where nothing changes soon, slower.
                    # A release in this process wakes local waiters at once (the next slot may be theirs).
                    factor = 1.0 + min(position, 8) / 2
                    with trio.move_on_after(self.poll_s * factor * (0.5 + self._rng.random())):
                        await self._released.wait()
        except BaseException:
            await self._withdraw(lease)
            raise
        finally:
            self._waiting -= 1
        await self._withdraw(lease)
        raise QuotaTimeoutError(
            self.project, waited=trio.current_time() - started, position=position, limit=self.limit
        )

    async def _withdraw(self, lease: QuotaLease) -> None:
        """Give back a lease or a queue ticket (shielded, bounded: a dead waiter also expires)."""
        was_held = self._held.pop(lease.id, None) is not None
        with trio.CancelScope(shield=True):
            try:
                await self.backend.eval(
                    "quota release",
                    scripts.QUOTA_RELEASE,
                    [self._leases_key, self._queue_key, self._alive_key],
                    [lease.id],
                    budget_s=min(1.0, self.lease_ttl_s / 3),
                )
            except RedisUnavailableError:
                log.warning("could not release quota lease of %s; it expires by itself", self.project)
        if was_held:
            self._released.set()
            self._released = trio.Event()

    async def note_refusal(self) -> float:
        """Report that the service refused a session for quota anyway.

        That happens when other clients share the project, or ``limit`` is set too high. New
        grants pause fleet-wide, exponentially per consecutive refusal (``refusal_pause_s``), so
        no worker hammers the service. :func:`quota_connect` calls this for you.

        Returns:
            The pause, in seconds.

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        pause_ms = await self.backend.eval(
            "quota pause",
            scripts.QUOTA_PAUSE,
            [self._pause_key, self._strikes_key],
            [round(self.refusal_pause_s[0] * 1000), round(self.refusal_pause_s[1] * 1000)],
        )
        log.info("service quota refusal for %s: new sessions pause %d ms fleet-wide", self.project, pause_ms)
        return int(pause_ms) / 1000

    async def note_success(self) -> None:
        """Report that a session got through: the next refusal pauses from the base again.

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        key = self._strikes_key
        await self.backend.call("quota strikes", lambda: self.backend.client.delete([key]))

    async def release(self, lease: QuotaLease) -> None:
        """Free the slot (idempotent; shielded from cancellation).

        Args:
            lease: The lease to give back.
        """
        await self._withdraw(lease)

    @asynccontextmanager
    async def slot(self, *, timeout: float | None = None) -> AsyncIterator[QuotaLease]:  # noqa: ASYNC109
        """Hold a slot for the block, waiting for one as :meth:`acquire` does.

        If the heartbeat finds the lease lost for good, the block is cancelled and
        :class:`QuotaLostError` raised from it.

        Args:
            timeout: Seconds to wait for a slot at most (``None``: no limit).

        Yields:
            The lease.

        Raises:
            QuotaTimeoutError: No slot came free within ``timeout``.
            QuotaLostError: The lease was lost during the block.
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        lease = await self.acquire(timeout=timeout)
        try:
            with trio.CancelScope() as scope:
                lease._scope = scope
                if lease.lost:
                    scope.cancel()
                yield lease
        finally:
            await self._withdraw(lease)
        if lease.lost:
            raise QuotaLostError(self.project, lease.id)

    # ------------------------------------------------------------------ heartbeat

    async def renew(self) -> None:
        """Extend every held lease once (one script for all); mark and cancel the lost ones.

        The heartbeat calls this; call it yourself only without :func:`open_quota`.

        Raises:
            RedisUnavailableError: Redis did not answer within the heartbeat's budget.
        """
        held = list(self._held.values())
        if not held:
            return
        statuses = await self.backend.eval(
            "quota renew",
            scripts.QUOTA_RENEW,
            [self._leases_key],
            [self.limit, round(self.lease_ttl_s * 1000), *(lease.id for lease in held)],
            budget_s=self.lease_ttl_s / 2,
        )
        for lease, status in zip(held, statuses, strict=True):
            if lease.id not in self._held:
                continue  # released while we waited for Redis
            if int(status) == 0:
                self._lost += 1
                lease.lost = True
                self._held.pop(lease.id, None)
                if lease._scope is not None:
                    lease._scope.cancel()
                log.warning("quota lease of %s lost: the project is full again", self.project)
            elif int(status) == 2:
                self._reinstated += 1
        self._renewals += 1

    async def run_heartbeat(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Renew every ``lease_ttl_s / 3`` until cancelled (for ``nursery.start``).

        A failed beat is logged and retried soon with backoff, within what is left of the lease
        (sessions keep running meanwhile). :func:`open_quota` runs it for you.

        Args:
            task_status: Reports the heartbeat started, for ``nursery.start``.
        """
        task_status.started()
        await beat(self.renew, self.lease_ttl_s, self._note_failure, what=f"quota of {self.project}")

    def _note_failure(self) -> None:
        self._heartbeat_failures += 1

    async def usage(self) -> tuple[int, int]:
        """The project's usage as Redis sees it now.

        Returns:
            ``(leases held fleet-wide, callers queued)``; expired leases count until the next
            acquire sweeps them.

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        client = self.backend.client

        async def read() -> tuple[int, int]:
            return await client.zcard(self._leases_key), await client.zcard(self._queue_key)

        return await self.backend.call("quota usage", read)


@asynccontextmanager
async def open_quota(
    backend: RedisBackend,
    project: str,
    limit: int,
    *,
    lease_ttl_s: float = 15.0,
    poll_s: float = 0.1,
    waiter_ttl_s: float | None = None,
    refusal_pause_s: tuple[float, float] = (1.0, 60.0),
    rng: random.Random | None = None,
) -> AsyncIterator[DistributedQuota]:
    """A :class:`DistributedQuota` whose heartbeat runs in a nursery owned by this block.

    Args:
        backend: The Redis backend shared by the fleet.
        project: The project the quota counts.
        limit: Concurrent sessions the project may hold fleet-wide.
        lease_ttl_s: How long a lease lives without a heartbeat.
        poll_s: The base interval at which waiting callers poll.
        waiter_ttl_s: How long a waiting caller stays queued without polling.
        refusal_pause_s: The first and the longest fleet-wide pause after a quota refusal.
        rng: The source of polling jitter.

    Yields:
        The quota.

    Raises:
        ConfigError: A setting is out of range, before anything is sent (see
            :class:`DistributedQuota`).
    """
    quota = DistributedQuota(
        backend,
        project,
        limit,
        lease_ttl_s=lease_ttl_s,
        poll_s=poll_s,
        waiter_ttl_s=waiter_ttl_s,
        refusal_pause_s=refusal_pause_s,
        rng=rng,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(quota.run_heartbeat)
        try:
            yield quota
        finally:
            nursery.cancel_scope.cancel()


Connect = Callable[[Any, Any, random.Random], AbstractAsyncContextManager[Any]]


def quota_connect(
    quota: DistributedQuota, connect: Connect | None = None, *, timeout: float | None = None
) -> Connect:
    """Wrap the pool's ``connect`` so every session holds a distributed lease while it runs.

    Order per attempt: the pool's local admission, quota backoff and rate limiter, then this lease
    (waiting fairly up to ``timeout``), then the connection. A :class:`QuotaTimeoutError` is an
    ordinary session failure for the pool's restart policy. If the service still refuses the
    connection for quota (:class:`~livemesh.errors.QuotaError`), the pool backs off locally as
    usual and this wrapper also pauses the project's grants fleet-wide
    (:meth:`DistributedQuota.note_refusal`).

    Args:
        quota: The project's quota, from :func:`open_quota`.
        connect: The ``connect`` to wrap (default: open the session as the pool does).
        timeout: Seconds each attempt waits for a slot at most (``None``: no limit).

    Returns:
        The wrapped ``connect``, for ``open_pool(connect=...)``.
    """

    def wrapped(config: Any, on_handle: Any, rng: random.Random) -> AbstractAsyncContextManager[Any]:
        @asynccontextmanager
        async def hold() -> AsyncIterator[Any]:
            async with quota.slot(timeout=timeout):
                opened = False
                try:
                    if connect is not None:
                        async with connect(config, on_handle, rng) as session:
                            opened = True
                            await _note_success(quota)
                            yield session
                    else:
                        from livemesh.session import open_session

                        async with open_session(config, on_handle=on_handle, rng=rng) as session:
                            opened = True
                            await _note_success(quota)
                            yield session
                except QuotaError:
                    if not opened:
                        with trio.CancelScope(shield=True):
                            await _note_refusal(quota)
                    raise

        return hold()

    return wrapped


async def _note_success(quota: DistributedQuota) -> None:
    try:
        await quota.note_success()
    except RedisUnavailableError:
        pass  # only resets the refusal backoff; the session itself is fine


async def _note_refusal(quota: DistributedQuota) -> None:
    try:
        await quota.note_refusal()
    except RedisUnavailableError:
        log.warning("could not pause %s fleet-wide after a quota refusal", quota.project)
