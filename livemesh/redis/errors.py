"""Errors of the Redis layer, under :class:`livemesh.errors.LivemeshError`, split by blame.

* :class:`RedisUnavailableError`: the *infrastructure* is away (Redis restarting, a failover in
  progress, a partition). Raised only after the bounded retry with backoff gave up, so callers see
  one clear, typed error instead of a coredis ``ConnectionError`` from deep in a pool. Sessions
  already running are not affected: they keep their WebSocket connections while Redis is away.
* :class:`QuotaTimeoutError`: the project's distributed session quota stayed full for the
  caller's whole timeout (it says where the caller stood in the queue).
* :class:`OwnershipError` / :class:`OwnershipLostError`: another worker owns the conversation,
  or this worker's lease on it was taken over (its fencing token is stale): stop writing.
"""

from __future__ import annotations

from livemesh.errors import LivemeshError

__all__ = [
    "OwnershipError",
    "OwnershipLostError",
    "QuotaLostError",
    "QuotaTimeoutError",
    "RedisError",
    "RedisUnavailableError",
]


class RedisError(LivemeshError):
    """Base class of the Redis layer's errors (a :class:`~livemesh.errors.LivemeshError`)."""


class RedisUnavailableError(RedisError, ConnectionError):
    """Redis did not answer within the retry budget: the infrastructure is away.

    The coredis error is chained as ``__cause__``. Retrying later is safe: every livemesh script is
    idempotent (claims, tickets and leases carry client-generated ids). Also a
    ``ConnectionError``.

    Attributes:
        what: The operation that needed Redis, in words.
        attempts: How many times it was tried.
        waited: Seconds spent trying.
    """

    def __init__(self, what: str, *, attempts: int, waited: float) -> None:
        """Describe an operation Redis did not answer.

        Args:
            what: The operation, in words.
            attempts: How many times it was tried.
            waited: Seconds spent trying.
        """
        super().__init__(f"redis unavailable for {what}: {attempts} attempt(s) over {waited:.3g}s")
        self.what = what
        self.attempts = attempts
        self.waited = waited


class QuotaTimeoutError(RedisError, TimeoutError):
    """The project's distributed quota had no free slot within the caller's timeout.

    Also a ``TimeoutError``.

    Attributes:
        project: The project whose quota was full.
        waited: Seconds the caller waited.
        position: How many callers were still ahead of it (``None``: unknown).
        limit: The project's session limit.
    """

    def __init__(self, project: str, *, waited: float, position: int | None, limit: int) -> None:
        """Describe a wait that timed out.

        Args:
            project: The project whose quota was full.
            waited: Seconds the caller waited.
            position: Callers still ahead of it, if known.
            limit: The project's session limit.
        """
        where = "unknown position" if position is None else f"{position} caller(s) still ahead"
        super().__init__(
            f"no session slot for project {project!r} within {waited:.3g}s: all {limit} in use, {where}"
        )
        self.project = project
        self.waited = waited
        self.position = position
        self.limit = limit


class QuotaLostError(RedisError):
    """A held quota lease could not be renewed or reinstated.

    Redis lost it (a restart without persistence, say) and the project is full again: the block
    holding it was cancelled, so the project's limit stays honest.

    Attributes:
        project: The project the lease belonged to.
        lease_id: The lost lease's id.
    """

    def __init__(self, project: str, lease_id: str) -> None:
        """Describe a lost lease.

        Args:
            project: The project the lease belonged to.
            lease_id: The lease's id.
        """
        super().__init__(f"lost quota lease {lease_id!r} of project {project!r}")
        self.project = project
        self.lease_id = lease_id


class OwnershipError(RedisError):
    """Another live worker owns the conversation; this one may not run it.

    Attributes:
        conversation_id: The conversation.
        owner: The worker holding it (``None`` if unknown).
    """

    def __init__(self, conversation_id: str, *, owner: str | None) -> None:
        """Describe a refused claim.

        Args:
            conversation_id: The conversation.
            owner: The worker holding it, if known.
        """
        super().__init__(f"conversation {conversation_id!r} is owned by worker {owner!r}")
        self.conversation_id = conversation_id
        self.owner = owner


class OwnershipLostError(RedisError):
    """This worker's lease on the conversation was taken over: stop writing for it.

    Attributes:
        conversation_id: The conversation.
        token: This worker's fencing token, now stale (another worker holds a larger one).
    """

    def __init__(self, conversation_id: str, *, token: int) -> None:
        """Describe a lost claim.

        Args:
            conversation_id: The conversation.
            token: This worker's stale fencing token.
        """
        super().__init__(
            f"lost ownership of conversation {conversation_id!r} (fencing token {token} is stale)"
        )
        self.conversation_id = conversation_id
        self.token = token
