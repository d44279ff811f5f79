"""One owner per live conversation across a fleet: leases with fencing tokens, and failover.

Each worker opens an :class:`Ownership` (``open_ownership``) with its own ``worker_id``. To run a
conversation it *claims* it: one atomic script checks that no other worker holds a live lease,
increments the conversation's **fencing token** (a counter that only grows) and records
``owner, token, expiry`` (Redis time). The worker's single heartbeat renews all its leases in one
script every ``lease_ttl_s / 3``.

When a worker dies (SIGKILL, host loss) its leases run out. Other workers look for
:meth:`Ownership.orphans` (conversations whose lease expired, from a sorted set of live
conversations by expiry) and claim them: the claim script is atomic, so **exactly one** claimant
wins, with a token larger than the dead owner's. The winner resumes the session from the shared
handle (:class:`~livemesh.redis.handles.RedisHandleStore`) and continues.

Fencing is what makes "exactly once" hold when the old owner is not dead but only paused or cut
off: every write it would make after losing its lease carries its stale token and is refused
(handle saves with ``fence=ownership.token``, :meth:`Ownership.write_state`), its heartbeat learns
it lost, and the block it runs the conversation in is cancelled with
:class:`~livemesh.redis.errors.OwnershipLostError`. (The Live service itself also refuses to resume
a session whose previous connection is still open, reported with 1011.)

Redis restarts: a renew that finds its entry gone (a restart without persistence) reinstates it
unless a newer token was issued meanwhile, and the fence counter is raised back to the live token,
so tokens stay monotonic. Claims of expired leases may be delayed by ``grace_s`` to give owners a
moment to renew after an outage.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import attrs
import trio
from coredis.tokens import PureToken

from livemesh.errors import ConfigError
from livemesh.limits import DEFAULT_LIMITS
from livemesh.redis import scripts
from livemesh.redis._client import RedisBackend, beat
from livemesh.redis.errors import OwnershipError, OwnershipLostError, RedisUnavailableError
from livemesh.redis.handles import FLEET_TAG

__all__ = ["Claim", "Ownership", "OwnershipStatistics", "open_ownership"]

log = logging.getLogger("livemesh.redis.ownership")


@attrs.define(eq=False)
class Claim:
    """This worker's lease on one conversation, from :meth:`Ownership.claim` or :meth:`Ownership.own`.

    Attributes:
        conversation_id: The conversation.
        token: The fencing token: larger than every earlier owner's.
        previous_owner: The worker whose expired lease this claim took over (``None``: nobody
            held it).
        lost: Set when the heartbeat found that another worker took the conversation over.
    """

    conversation_id: str
    token: int
    previous_owner: str | None
    lost: bool = False
    _scope: trio.CancelScope | None = attrs.field(default=None, init=False, repr=False)
    """The cancel scope of the :meth:`Ownership.hold` block running under this claim, cancelled
    when the heartbeat finds the claim lost. Set by that block, never by a caller."""

    @property
    def is_takeover(self) -> bool:
        """Whether this claim took the conversation over from another worker."""
        return self.previous_owner is not None


@attrs.frozen
class OwnershipStatistics:
    """Counters of one :class:`Ownership` since it was opened (from :meth:`Ownership.statistics`).

    Attributes:
        owned: Conversations this worker owns now.
        claims: Successful claims.
        takeovers: Claims that took a conversation over from a worker whose lease expired.
        refused: Claims refused because another worker held a live lease.
        renewals: Heartbeats that renewed the leases.
        reinstated: Leases Redis had lost and a heartbeat put back.
        lost: Leases lost to another worker (their blocks were cancelled).
        heartbeat_failures: Heartbeats that failed (Redis away, or this process too slow).
    """

    owned: int
    claims: int
    takeovers: int
    refused: int
    renewals: int
    reinstated: int
    lost: int
    heartbeat_failures: int


class Ownership:
    """One worker's view of conversation ownership. Create it with :func:`open_ownership`.

    Attributes:
        backend: The Redis backend.
        worker_id: This worker's name, as other workers see it.
        lease_ttl_s: How long a lease lives without a heartbeat.
        grace_s: How long past expiry a lease waits before others may take it over.
    """

    def __init__(
        self,
        backend: RedisBackend,
        *,
        worker_id: str | None = None,
        lease_ttl_s: float = 10.0,
        grace_s: float = 0.0,
        state_ttl_s: float = DEFAULT_LIMITS.handle_validity_s,
    ) -> None:
        """Prepare ownership for one worker (the heartbeat is :meth:`run_heartbeat`).

        Args:
            backend: The Redis backend shared by the fleet.
            worker_id: This worker's name (default: a random ``w-...``).
            lease_ttl_s: How long a lease lives without a heartbeat; heartbeats come every
                third of it. A worker that dies loses its conversations after this long.
            grace_s: How long past expiry a lease waits before another worker may claim it,
                to give owners a moment to renew after an outage.
            state_ttl_s: How long conversation state written with :meth:`write_state` lives.

        Raises:
            ConfigError: A duration is out of range.
        """
        if not lease_ttl_s > 0 or grace_s < 0 or not state_ttl_s > 0:
            raise ConfigError("need lease_ttl_s > 0, grace_s >= 0, state_ttl_s > 0")
        self.backend = backend
        self.worker_id = worker_id or "w-" + secrets.token_hex(4)
        self.lease_ttl_s = lease_ttl_s
        self.grace_s = grace_s
        self._state_ttl_ms = round(state_ttl_s * 1000)
        self._live_key = backend.key(FLEET_TAG, "live")
        self._owned: dict[str, Claim] = {}
        self._claims = self._takeovers = self._refused = 0
        self._renewals = self._reinstated = self._lost = self._heartbeat_failures = 0

    def __repr__(self) -> str:
        return f"Ownership(worker_id={self.worker_id!r}, owned={len(self._owned)})"

    def _key(self, kind: str, conversation_id: str) -> str:
        return self.backend.key(FLEET_TAG, kind, conversation_id)

    def statistics(self) -> OwnershipStatistics:
        """A snapshot of this worker's counters.

        Returns:
            The counters now.
        """
        return OwnershipStatistics(
            len(self._owned),
            self._claims,
            self._takeovers,
            self._refused,
            self._renewals,
            self._reinstated,
            self._lost,
            self._heartbeat_failures,
        )

    def token(self, conversation_id: str) -> int | None:
        """This worker's current fencing token for the conversation.

        Pass ``fence=ownership.token`` to :class:`~livemesh.redis.handles.RedisHandleStore` so
        that a worker that lost a conversation can no longer save its handles.

        Args:
            conversation_id: The conversation.

        Returns:
            The token, or ``None`` if this worker does not own the conversation (or lost it).
        """
        claim = self._owned.get(conversation_id)
        return None if claim is None or claim.lost else claim.token

    # ------------------------------------------------------------------ claiming

    async def claim(self, conversation_id: str) -> Claim:
        """Take the conversation: it is free, or its owner's lease expired.

        One atomic script checks the lease and raises the fencing token, so of several workers
        claiming at once exactly one wins. Prefer :meth:`own`, which also releases the claim.

        Args:
            conversation_id: The conversation.

        Returns:
            The claim, with a token larger than every earlier owner's.

        Raises:
            OwnershipError: Another worker holds a live lease (or this worker already does).
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        if conversation_id in self._owned:
            raise OwnershipError(conversation_id, owner=self.worker_id)
        claim_id = secrets.token_hex(8)
        reply = await self.backend.eval(
            "ownership claim",
            scripts.OWN_CLAIM,
            [self._key("owner", conversation_id), self._key("fence", conversation_id), self._live_key],
            [
                self.worker_id,
                round(self.lease_ttl_s * 1000),
                round(self.grace_s * 1000),
                claim_id,
                conversation_id,
                self._state_ttl_ms,
            ],
        )
        if int(reply[0]) != 1:
            self._refused += 1
            raise OwnershipError(conversation_id, owner=str(reply[2]))
        previous = str(reply[2]) or None
        claim = Claim(conversation_id, int(reply[1]), previous)
        self._owned[conversation_id] = claim
        self._claims += 1
        if previous is not None:
            self._takeovers += 1
            log.info(
                "%s took over %s from %s (token %d)", self.worker_id, conversation_id, previous, claim.token
            )
        return claim

    async def release(self, claim: Claim, *, finished: bool = False) -> bool:
        """Give the conversation up, if this worker's token is still current.

        Shielded from cancellation and bounded in time; if Redis is away the lease simply
        expires.

        Args:
            claim: The claim to give up.
            finished: True: the conversation is done (its state is dropped and it leaves the
                live set for good). False: hand it over (it is listed as an orphan at once, for
                another worker to take).

        Returns:
            True if released; False if the token was stale or Redis did not answer.
        """
        self._owned.pop(claim.conversation_id, None)
        with trio.CancelScope(shield=True):
            try:
                done = await self.backend.eval(
                    "ownership release",
                    scripts.OWN_RELEASE,
                    [
                        self._key("owner", claim.conversation_id),
                        self._live_key,
                        self._key("state", claim.conversation_id),
                    ],
                    [claim.token, claim.conversation_id, "1" if finished else "0"],
                    budget_s=min(2.0, self.lease_ttl_s / 2),
                )
            except RedisUnavailableError:
                log.warning("could not release %s; its lease expires by itself", claim.conversation_id)
                return False
        return int(done) == 1

    @asynccontextmanager
    async def own(self, conversation_id: str, *, finished: bool = True) -> AsyncIterator[Claim]:
        """Claim the conversation (:meth:`claim`) and hold it for the block (:meth:`hold`).

        Args:
            conversation_id: The conversation.
            finished: Whether a block that ends normally means the conversation is done (see
                :meth:`hold`).

        Yields:
            The claim.

        Raises:
            OwnershipError: Another worker holds a live lease.
            OwnershipLostError: Another worker took the conversation over during the block
                (the block was cancelled).
            RedisUnavailableError: Redis did not answer the claim within the retry budget.
        """
        claim = await self.claim(conversation_id)
        async with self.hold(claim, finished=finished):
            yield claim

    @asynccontextmanager
    async def hold(self, claim: Claim, *, finished: bool = True) -> AsyncIterator[Claim]:
        """Run the block under a claim made earlier; the claim is released when it ends.

        If the lease is lost (another worker now holds a newer token), the block is cancelled
        and :class:`OwnershipLostError` raised from it.

        Args:
            claim: A claim from :meth:`claim`.
            finished: True: a block that ends normally means the conversation is done (it
                leaves the live set). A block that ends with an error or a cancellation always
                hands the conversation over: it is released and listed as an orphan at once,
                for another worker to take over.

        Yields:
            The claim.

        Raises:
            OwnershipLostError: The lease was lost during the block.
        """
        completed = False
        try:
            with trio.CancelScope() as scope:
                claim._scope = scope
                if claim.lost:
                    scope.cancel()
                yield claim
                completed = True
        finally:
            if not claim.lost:
                await self.release(claim, finished=finished and completed)
        if claim.lost:
            raise OwnershipLostError(claim.conversation_id, token=claim.token)

    async def orphans(self, *, limit: int = 100) -> list[str]:
        """Conversations whose owner's lease expired (``grace_s`` ago): candidates to claim.

        Args:
            limit: At most this many.

        Returns:
            Their ids, those this worker owns excluded.

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        found = await self.backend.eval(
            "ownership orphans", scripts.OWN_ORPHANS, [self._live_key], [round(self.grace_s * 1000), limit]
        )
        return [str(conv) for conv in found if str(conv) not in self._owned]

    async def enlist(self, conversation_ids: list[str]) -> None:
        """List conversations as waiting for an owner (orphans from the start).

        A front end hands work to the fleet this way, and a conversation whose first worker died
        before claiming it is still found. Already-listed conversations keep their lease expiry.

        Args:
            conversation_ids: The conversations.

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        if not conversation_ids:
            return
        mapping: dict[str | bytes, int | float] = dict.fromkeys(conversation_ids, 0)
        await self.backend.call(
            "ownership enlist",
            lambda: self.backend.client.zadd(self._live_key, mapping, condition=PureToken.NX),
        )

    async def owners_of(self, conversation_ids: list[str]) -> dict[str, tuple[str | None, int | None]]:
        """Who owns each of many conversations, in one atomic snapshot.

        Args:
            conversation_ids: The conversations.

        Returns:
            ``{conversation: (owner worker id, fencing token)}``, ``(None, None)`` for a
            conversation nobody owns.

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        if not conversation_ids:
            return {}
        flat = await self.backend.eval(
            "ownership snapshot", scripts.OWN_OWNERS, [self._key("owner", c) for c in conversation_ids], []
        )
        return {
            conv: (str(flat[2 * i]) or None, int(flat[2 * i + 1]) if flat[2 * i + 1] else None)
            for i, conv in enumerate(conversation_ids)
        }

    async def owner_of(self, conversation_id: str) -> tuple[str | None, int | None]:
        """Who owns the conversation, as Redis records it now.

        Args:
            conversation_id: The conversation.

        Returns:
            ``(owner worker id, fencing token)``, or ``(None, None)`` if nobody owns it.

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        key = self._key("owner", conversation_id)
        owner, token = await self.backend.call(
            "ownership read", lambda: self.backend.client.hmget(key, ["owner", "token"])
        )
        return owner, None if token is None else int(token)

    # ------------------------------------------------------------------ fenced state

    async def write_state(self, claim: Claim, values: Mapping[str, str | int]) -> None:
        """Store application state for the conversation, fenced by the claim's token.

        Args:
            claim: This worker's claim on the conversation.
            values: Fields to set (other fields are kept).

        Raises:
            OwnershipLostError: A newer owner exists; nothing was written.
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        args: list[str | int] = [claim.token, self._state_ttl_ms]
        for field, value in values.items():
            args += [field, value]
        written = await self.backend.eval(
            "ownership state",
            scripts.OWN_WRITE_STATE,
            [self._key("owner", claim.conversation_id), self._key("state", claim.conversation_id)],
            args,
        )
        if int(written) != 1:
            raise OwnershipLostError(claim.conversation_id, token=claim.token)

    async def read_state(self, conversation_id: str) -> dict[str, str]:
        """The application state stored with :meth:`write_state`.

        Args:
            conversation_id: The conversation.

        Returns:
            Its fields (empty if none were written or they expired).

        Raises:
            RedisUnavailableError: Redis did not answer within the retry budget.
        """
        key = self._key("state", conversation_id)
        state: dict[str, str] = await self.backend.call(
            "ownership state", lambda: self.backend.client.hgetall(key)
        )
        return dict(state)

    # ------------------------------------------------------------------ heartbeat

    async def renew(self) -> None:
        """Renew every owned lease in one script; cancel the blocks of the lost ones.

        The heartbeat calls this; call it yourself only without :func:`open_ownership`.

        Raises:
            RedisUnavailableError: Redis did not answer within the heartbeat's budget.
        """
        owned = [claim for claim in self._owned.values() if not claim.lost]
        if not owned:
            return
        keys = [self._live_key]
        keys += [self._key("owner", c.conversation_id) for c in owned]
        keys += [self._key("fence", c.conversation_id) for c in owned]
        args: list[str | int] = [self.worker_id, round(self.lease_ttl_s * 1000), self._state_ttl_ms]
        for claim in owned:
            args += [claim.conversation_id, claim.token]
        statuses = await self.backend.eval(
            "ownership renew", scripts.OWN_RENEW, keys, args, budget_s=self.lease_ttl_s / 2
        )
        for claim, status in zip(owned, statuses, strict=True):
            if self._owned.get(claim.conversation_id) is not claim:
                continue  # released meanwhile
            if int(status) == 0:
                self._lost += 1
                claim.lost = True
                self._owned.pop(claim.conversation_id, None)
                if claim._scope is not None:
                    claim._scope.cancel()
                log.warning(
                    "%s lost %s (token %d is stale)", self.worker_id, claim.conversation_id, claim.token
                )
            elif int(status) == 2:
                self._reinstated += 1
        self._renewals += 1

    async def run_heartbeat(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Renew every ``lease_ttl_s / 3`` until cancelled (for ``nursery.start``).

        A failed beat (Redis away, or this process too busy to hear back in time) is logged and
        retried soon with backoff, within what is left of the lease, while the sessions keep
        running on their connections. :func:`open_ownership` runs it for you.

        Args:
            task_status: Reports the heartbeat started, for ``nursery.start``.
        """
        task_status.started()
        await beat(self.renew, self.lease_ttl_s, self._note_failure, what=f"ownership of {self.worker_id}")

    def _note_failure(self) -> None:
        self._heartbeat_failures += 1


@asynccontextmanager
async def open_ownership(
    backend: RedisBackend,
    *,
    worker_id: str | None = None,
    lease_ttl_s: float = 10.0,
    grace_s: float = 0.0,
    state_ttl_s: float = DEFAULT_LIMITS.handle_validity_s,
) -> AsyncIterator[Ownership]:
    """An :class:`Ownership` whose heartbeat runs in a nursery owned by this block.

    Leaving the block stops the heartbeat; conversations still owned then expire and can be
    taken over.

    Args:
        backend: The Redis backend shared by the fleet.
        worker_id: This worker's name (default: a random ``w-...``).
        lease_ttl_s: How long a lease lives without a heartbeat.
        grace_s: How long past expiry a lease waits before another worker may claim it.
        state_ttl_s: How long conversation state written with :meth:`Ownership.write_state`
            lives.

    Yields:
        The worker's ownership.

    Raises:
        ConfigError: A duration is out of range.
    """
    ownership = Ownership(
        backend, worker_id=worker_id, lease_ttl_s=lease_ttl_s, grace_s=grace_s, state_ttl_s=state_ttl_s
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(ownership.run_heartbeat)
        try:
            yield ownership
        finally:
            nursery.cancel_scope.cancel()
