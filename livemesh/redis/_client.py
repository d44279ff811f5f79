"""The one place livemesh talks to coredis: opening a client, key names, scripts, retries.

Every other module in :mod:`livemesh.redis` goes through :class:`RedisBackend`, so there is one
error boundary (habit 9: translate errors at each layer): coredis connection errors, timeouts and
"loading"/"cluster down" replies become a bounded, jittered, exponential retry, and after the
budget one :class:`~livemesh.redis.errors.RedisUnavailableError`. Script bodies live in
:mod:`livemesh.redis.scripts`; coredis reloads them by itself after a restart flushed the script
cache (``NOSCRIPT``).

coredis runs its connection tasks in an anyio task group that lives inside ``async with client``;
:func:`open_redis` enters it, so those tasks are in a nursery the caller can see.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import coredis
import coredis.exceptions
import trio
from coredis.client import Client
from coredis.commands.script import Script
from coredis.retry import NoRetryPolicy

from livemesh.errors import ConfigError
from livemesh.redis.errors import RedisUnavailableError

__all__ = ["RedisBackend", "RedisRetry", "beat", "open_redis"]

log = logging.getLogger("livemesh.redis")

T = TypeVar("T")

# What "Redis is away" looks like through coredis: a dropped/refused connection, a timeout, a
# server still loading its dataset after a restart, a cluster resharding or without a primary.
_TRANSIENT: tuple[type[BaseException], ...] = (
    coredis.exceptions.ConnectionError,
    coredis.exceptions.BusyLoadingError,
    coredis.exceptions.ClusterDownError,
    coredis.exceptions.TryAgainError,
    coredis.exceptions.ReadOnlyError,  # a replica promoted/demoted under Sentinel
    TimeoutError,
    trio.TooSlowError,
    OSError,
)


@attrs.frozen(kw_only=True)
class RedisRetry:
    """Retry budget for one Redis operation: ``min(max_s, base_s * 2**n)`` scaled into [0.5, 1).

    ``budget_s`` bounds the whole operation (attempts and pauses); after it the caller gets
    :class:`RedisUnavailableError`. Background heartbeats use their own, shorter budget so they
    report an outage quickly and simply try again at their next beat.
    """

    base_s: float = 0.05
    max_s: float = 1.0
    budget_s: float = 5.0

    def __attrs_post_init__(self) -> None:
        if not (0 <= self.base_s <= self.max_s) or not self.budget_s > 0:
            raise ConfigError(f"need 0 <= base_s <= max_s and budget_s > 0, got {self!r}")


class RedisBackend:
    """A coredis client (plain, Cluster or Sentinel-backed) plus livemesh's key prefix and retries.

    Create it with :func:`open_redis` from a URL, or wrap a client you entered yourself::

        async with coredis.RedisCluster.from_url("redis://node1:7000", decode_responses=True) as c:
            backend = RedisBackend(c)

    The client must use ``decode_responses=True``.
    """

    def __init__(
        self,
        client: Client[str],
        *,
        prefix: str = "livemesh",
        retry: RedisRetry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigError(f"prefix must be non-empty and without braces, not {prefix!r}")
        self.client = client
        self.prefix = prefix
        self.retry = retry or RedisRetry()
        self._rng = rng or random.Random()
        self._scripts: dict[str, Script[str]] = {}

    def __repr__(self) -> str:
        return f"RedisBackend({self.client!r}, prefix={self.prefix!r})"

    def key(self, tag: str, *parts: str) -> str:
        """``prefix:{tag}:parts``: keys sharing ``tag`` land in one Cluster slot (hash tag)."""
        return ":".join((self.prefix, "{" + tag + "}", *parts))

    def script(self, source: str) -> Script[str]:
        """The registered script for ``source`` (one per backend; NOSCRIPT reloads are automatic)."""
        found = self._scripts.get(source)
        if found is None:
            found = self._scripts[source] = self.client.register_script(source)
        return found

    async def eval(
        self,
        what: str,
        source: str,
        keys: Sequence[str],
        args: Sequence[str | int | float],
        *,
        budget_s: float | None = None,
    ) -> Any:
        """Run a Lua script with retries; every livemesh script is idempotent, so a retry after a
        reply was lost in a dropped connection is harmless."""
        script = self.script(source)
        return await self.call(what, lambda: script(list(keys), list(args)), budget_s=budget_s)

    async def call(self, what: str, op: Callable[[], Awaitable[T]], *, budget_s: float | None = None) -> T:
        """Await ``op()``, retrying transient failures with backoff within ``budget_s`` seconds."""
        budget = self.retry.budget_s if budget_s is None else budget_s
        started = trio.current_time()
        deadline = started + budget
        attempts = 0
        while True:
            attempts += 1
            try:
                with trio.fail_after(max(0.0, deadline - trio.current_time()) + 0.001):
                    return await op()
            except _TRANSIENT as exc:
                now = trio.current_time()
                pause = min(self.retry.max_s, self.retry.base_s * 2 ** (attempts - 1))
                pause *= 0.5 + 0.5 * self._rng.random()
                if now + pause >= deadline:
                    log.warning("redis unavailable for %s after %d attempt(s): %r", what, attempts, exc)
                    raise RedisUnavailableError(what, attempts=attempts, waited=now - started) from exc
                log.debug("redis error on %s (attempt %d), retrying in %.3fs: %r", what, attempts, pause, exc)
                await trio.sleep(pause)

    async def server_time(self) -> float:
        """Redis's clock in seconds: leases are judged by it, never by a worker's own clock."""
        now = await self.call("TIME", self.client.time)
        return now.timestamp()


async def beat(
    renew: Callable[[], Awaitable[None]], lease_ttl_s: float, on_failure: Callable[[], None], *, what: str
) -> None:
    """A heartbeat loop shared by quota and ownership: ``renew()`` every ``lease_ttl_s / 3``.

    After a failed renew the next try comes quickly (a tenth of the interval, doubling) instead of
    a whole interval later: a lease has three intervals of life, and a busy event loop or a short
    Redis blip should cost one late beat, not the lease.
    """
    interval = lease_ttl_s / 3
    pause = interval
    while True:
        await trio.sleep(pause)
        try:
            await renew()
        except RedisUnavailableError as exc:
            on_failure()
            log.warning("heartbeat for %s failed: %s", what, exc)
            pause = interval / 10 if pause >= interval else min(interval, pause * 2)
        else:
            pause = interval


@asynccontextmanager
async def open_redis(
    url: str,
    *,
    prefix: str = "livemesh",
    retry: RedisRetry | None = None,
    connect_timeout: float = 2.0,
    stream_timeout: float = 10.0,
    **client_options: Any,
) -> AsyncIterator[RedisBackend]:
    """A :class:`RedisBackend` on a single Redis (or Valkey) server for the block.

    ``url`` is ``redis://[user:pass@]host:port/db``, ``rediss://...`` (TLS) or ``unix://path``.
    For Cluster or Sentinel build the coredis client yourself and pass it to
    :class:`RedisBackend` (see :mod:`livemesh.redis`). Nothing connects until the first command,
    so opening never fails because Redis is briefly away.

    Per-operation deadlines come from :class:`RedisRetry`; ``stream_timeout`` only detects a
    connection that went silent. Keep it generous: coredis multiplexes commands on a connection and
    a read timeout fails every command in flight on it, which under load turns one slow reply
    into many failures.
    """
    client: coredis.Redis[str] = coredis.Redis.from_url(
        url,
        decode_responses=True,
        connect_timeout=connect_timeout,
        stream_timeout=stream_timeout,
        retry_policy=NoRetryPolicy(),
        **client_options,
    )
    async with client:
        yield RedisBackend(client, prefix=prefix, retry=retry)
