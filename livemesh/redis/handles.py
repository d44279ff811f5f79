"""``RedisHandleStore``: the pool's :class:`~livemesh.pool.handles.HandleStore` on Redis.

Several workers (processes, hosts) share resumption handles, so a conversation can be resumed by
whichever worker picks it up. The semantics are exactly the in-memory store's:

* entries are keyed by conversation id and expire ``ttl_s`` after their last save (default
  ``ServiceLimits.handle_validity_s``, 2 h: the service honours a handle that long after the
  session's last connection ends, and the pool saves once more when a session ends);
* ``save`` is monotonic, decided atomically in one Lua script: a lower ``seq`` never overwrites a
  higher one, the same ``seq`` with another value keeps the first writer's, the same value again
  refreshes the TTL. Two workers racing can never roll a conversation back;
* optionally **fenced**: given ``fence`` (usually :meth:`livemesh.redis.Ownership.token`), a save
  is also refused unless the writer's fencing token is the conversation's current one, so a
  paused or partitioned former owner cannot write after another worker took the session over.

Handles are bearer credentials: the value never appears in a repr, a log line or an error.
"""

from __future__ import annotations

from collections.abc import Callable

from livemesh.errors import ConfigError
from livemesh.limits import DEFAULT_LIMITS
from livemesh.pool.handles import StoredHandle
from livemesh.redis import scripts
from livemesh.redis._client import RedisBackend

__all__ = ["FLEET_TAG", "RedisHandleStore"]

FLEET_TAG = "fleet"
"""The hash tag shared by handles and ownership keys (one Cluster slot per key prefix: fenced
writes compare the owner's token and the handle atomically; see :mod:`livemesh.redis`)."""


class RedisHandleStore:
    """Resumption handles in Redis, shared by every worker using the same backend prefix.

    Pass it to ``open_pool(handle_store=...)``: the pool saves each new resumable handle and
    restarts a failed conversation from the newest one, on whichever worker runs it.

    Attributes:
        fenced_out: Saves refused because this worker no longer held the conversation's
            current fencing token.
    """

    def __init__(
        self,
        backend: RedisBackend,
        *,
        ttl_s: float = DEFAULT_LIMITS.handle_validity_s,
        fence: Callable[[str], int | None] | None = None,
    ) -> None:
        """Share handles through ``backend``.

        Args:
            backend: The Redis connection and key prefix (from :func:`~livemesh.redis.open_redis`).
            ttl_s: How long an entry lives after its last save; the default is how long the
                service honours a handle after the session's last connection.
            fence: Usually :meth:`Ownership.token <livemesh.redis.Ownership.token>`: this
                worker's fencing token for a conversation, or ``None`` if it does not own it.
                With it, a save is refused unless the token is still the conversation's current
                one. ``None`` (the default) saves unfenced.

        Raises:
            ConfigError: ``ttl_s`` is not positive.
        """
        if not ttl_s > 0:
            raise ConfigError(f"ttl_s must be positive, not {ttl_s!r}")
        self._backend = backend
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._fence = fence
        self.fenced_out = 0

    def __repr__(self) -> str:
        return f"RedisHandleStore({self._backend!r}, ttl_ms={self._ttl_ms}, fenced={self._fence is not None})"

    def _key(self, conversation_id: str) -> str:
        return self._backend.key(FLEET_TAG, "handle", conversation_id)

    async def save(self, conversation_id: str, handle: StoredHandle) -> bool:
        """Store ``handle`` unless an equal-or-newer one is stored (or this worker is fenced out).

        The decision is one atomic script, so two workers racing can never roll a conversation
        back to an older handle.

        Args:
            conversation_id: The conversation the handle resumes.
            handle: The handle and its sequence number within the conversation.

        Returns:
            True if stored; False if a newer (or the same) handle was already stored or the
            fence refused the write.

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        token = ""
        if self._fence is not None:
            current = self._fence(conversation_id)
            if current is None:
                self.fenced_out += 1
                return False
            token = str(current)
        result = await self._backend.eval(
            "handle save",
            scripts.HANDLE_SAVE,
            [self._key(conversation_id), self._backend.key(FLEET_TAG, "owner", conversation_id)],
            [handle.handle, handle.seq, self._ttl_ms, token],
        )
        if int(result) < 0:
            self.fenced_out += 1
        return int(result) == 1

    async def load(self, conversation_id: str) -> StoredHandle | None:
        """The newest unexpired handle of the conversation.

        Args:
            conversation_id: The conversation to resume.

        Returns:
            The stored handle, or ``None`` if there is none (never saved, or expired).

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        key = self._key(conversation_id)
        values = await self._backend.call(
            "handle load", lambda: self._backend.client.hmget(key, ["h", "seq", "at"])
        )
        value, seq, at = values
        if value is None or seq is None:
            return None
        return StoredHandle(value, int(seq), saved_at=int(at or 0) / 1000)

    async def delete(self, conversation_id: str) -> None:
        """Forget the conversation's handle (it ended for good).

        Args:
            conversation_id: The conversation that ended.

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        key = self._key(conversation_id)
        await self._backend.call("handle delete", lambda: self._backend.client.delete([key]))
