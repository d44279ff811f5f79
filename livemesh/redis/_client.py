"""The one place livemesh talks to coredis: opening a client, key names, scripts, retries.

Every other module in :mod:`livemesh.redis` goes through :class:`RedisBackend`, so there is one
error boundary (errors are translated where layers meet, as httpcore's ``map_exceptions`` does):
coredis connection errors, timeouts and "loading"/"cluster down" replies become a bounded,
jittered, exponential retry, and after the budget one
:class:`~livemesh.redis.errors.RedisUnavailableError`. Script bodies live in
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
    """Retry budget for one Redis operation.

    After the n-th failed attempt (0-based) the operation pauses ``min(max_s, base_s * 2**n)``,
    scaled by a random factor in [0.5, 1) so workers do not retry in step. Background heartbeats
    use their own, shorter budget so they report an outage quickly and simply try again at their
    next beat.

    Attributes:
        base_s: The first pause, in seconds.
        max_s: The longest pause, in seconds.
        budget_s: How long one operation may take in all (attempts and pauses); after it the
            caller gets :class:`~livemesh.redis.RedisUnavailableError`.

    Raises:
        ConfigError: The pauses are negative or out of order, or the budget is not positive.
    """

    base_s: float = 0.05
    max_s: float = 1.0
    budget_s: float = 5.0

    def __attrs_post_init__(self) -> None:
        if not (0 <= self.base_s <= self.max_s) or not self.budget_s > 0:
            raise ConfigError(f"need 0 <= base_s <= max_s and budget_s > 0, got {self!r}")


class RedisBackend:
    """A coredis client (plain, Cluster or Sentinel-backed) plus livemesh's key prefix and retries.

    Create it with :func:`open_redis` from a URL, or wrap a client you entered yourself (a
    Cluster or a Sentinel primary; see :mod:`livemesh.redis`):

    ```python
    async with coredis.RedisCluster.from_url("redis://node1:7000", decode_responses=True) as c:
        backend = RedisBackend(c)
    ```

    Every other piece of :mod:`livemesh.redis` takes a backend. Its methods are the building
    blocks those pieces use; most applications never call them.

    Attributes:
        client: The coredis client.
        prefix: The first part of every key livemesh writes.
        retry: The retry budget of each operation.
    """

    def __init__(
        self,
        client: Client[str],
        *,
        prefix: str = "livemesh",
        retry: RedisRetry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Wrap ``client``.

        Args:
            client: A coredis client made with ``decode_responses=True``, already entered
                (``async with client``) by the caller.
            prefix: The first part of every key: fleets sharing one Redis keep apart by it.
            retry: The retry budget of each operation (default :class:`RedisRetry()`).
            rng: The source of retry jitter (for reproducible tests).

        Raises:
            ConfigError: ``prefix`` is empty or contains a brace (braces make hash tags).
        """
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
        """A key name, ``prefix:{tag}:part:...``.

        Args:
            tag: The hash tag: keys sharing it land in one Redis Cluster slot, so one script
                may touch them all.
            *parts: The rest of the name.

        Returns:
            The key.
        """
        return ":".join((self.prefix, "{" + tag + "}", *parts))

    def script(self, source: str) -> Script[str]:
        """The registered script for ``source`` (one per backend; NOSCRIPT reloads are automatic).

        Args:
            source: The Lua source.

        Returns:
            The coredis script object, registered on first use.
        """
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
        """Run a Lua script, retrying transient failures within the budget.

        Every livemesh script is idempotent, so a retry after a reply was lost in a dropped
        connection is harmless.

        Args:
            what: What the operation is for, in words (for logs and the error).
            source: The Lua source.
            keys: The script's KEYS (all in one Cluster slot).
            args: The script's ARGV.
            budget_s: This operation's budget in seconds (default ``retry.budget_s``).

        Returns:
            The script's reply.

        Raises:
            RedisUnavailableError: Redis did not answer within the budget.
        """
        script = self.script(source)
        return await self.call(what, lambda: script(list(keys), list(args)), budget_s=budget_s)

    async def call(self, what: str, op: Callable[[], Awaitable[T]], *, budget_s: float | None = None) -> T:
        """Await ``op()``, retrying transient failures with backoff within the budget.

        Transient failures are dropped or refused connections, timeouts, a server still loading
        its data after a restart, a cluster resharding or without a primary, and a replica
        promoted or demoted under Sentinel. Any other error is raised as it is.

        Args:
            what: What the operation is for, in words (for logs and the error).
            op: Makes one attempt; called again for each retry.
            budget_s: This operation's budget in seconds (default ``retry.budget_s``).

        Returns:
            What ``op()`` returned.

        Raises:
            RedisUnavailableError: No attempt succeeded within the budget (the last failure is
                its ``__cause__``).
        """
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
        """Redis's clock: leases are judged by it, never by a worker's own clock.

        Returns:
            Seconds since the epoch, as Redis's ``TIME`` says.

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        now = await self.call("TIME", self.client.time)
        return now.timestamp()


async def beat(
    renew: Callable[[], Awaitable[None]], lease_ttl_s: float, on_failure: Callable[[], None], *, what: str
) -> None:
    """A heartbeat loop shared by quota and ownership: ``renew()`` every ``lease_ttl_s / 3``.

    After a failed renew the next try comes quickly (a tenth of the interval, doubling) instead of
    a whole interval later: a lease has three intervals of life, and a busy event loop or a short
    Redis blip should cost one late beat, not the lease. Runs until cancelled.

    Args:
        renew: Renews every lease once.
        lease_ttl_s: The lease lifetime the beat keeps ahead of.
        on_failure: Called after each renew that failed (for statistics).
        what: What the heartbeat keeps alive, in words (for logs).
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

    For Cluster or Sentinel build the coredis client yourself and pass it to
    :class:`RedisBackend` (see :mod:`livemesh.redis`). Nothing connects until the first command,
    so opening never fails because Redis is briefly away. The client's connection tasks run in
    a nursery that belongs to the block.

    Args:
        url: ``redis://[user:pass@]host:port/db``, ``rediss://...`` (TLS) or ``unix://path``.
        prefix: The first part of every key livemesh writes.
        retry: The retry budget of each operation (default :class:`RedisRetry()`).
        connect_timeout: Seconds to wait for a connection.
        stream_timeout: Seconds of silence after which a connection counts as dead. Keep it
            generous: coredis multiplexes commands on a connection and a read timeout fails
            every command in flight on it, which under load turns one slow reply into many
            failures. Per-operation deadlines come from ``retry``.
        **client_options: Passed on to ``coredis.Redis.from_url``.

    Yields:
        The backend, for the duration of the block.

    Raises:
        ConfigError: ``prefix`` is empty or contains a brace.
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
