"""Ownership and lost leases: one owner at a time, tokens only grow, a superseded holder's block is
cancelled with a typed error, handover lists the conversation for the next owner."""

from __future__ import annotations

from typing import Any

import coredis.exceptions
import pytest
import trio

from livemesh.redis import (
    Ownership,
    OwnershipError,
    OwnershipLostError,
    QuotaLostError,
    RedisBackend,
    open_ownership,
    open_quota,
    scripts,
)
from tests.redis.helpers import eventually


async def test_one_owner_at_a_time_and_tokens_only_grow(backend: RedisBackend) -> None:
    async with (
        open_ownership(backend, worker_id="a", lease_ttl_s=5) as a,
        open_ownership(backend, worker_id="b", lease_ttl_s=5) as b,
    ):
        tokens = []
        for _ in range(3):
            async with a.own("c", finished=False) as claim:
                tokens.append(claim.token)
                assert a.token("c") == claim.token
                with pytest.raises(OwnershipError) as info:
                    await b.claim("c")
                assert info.value.owner == "a"
            assert "c" in await b.orphans()  # handed over: listed for the next owner at once
            async with b.own("c") as claim:
                tokens.append(claim.token)
                assert claim.previous_owner is None  # a released it cleanly: not a takeover
        assert tokens == sorted(tokens) and len(set(tokens)) == 6
        assert "c" not in await a.orphans()  # finished: off the live set
        assert await b.read_state("c") == {}


async def test_a_retried_takeover_claim_still_reports_the_previous_owner(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim's reply is lost after Redis ran it (a dropped connection): the retry, with the same
    claim id, must say who was taken over, or the takeover goes uncounted."""
    stalled = Ownership(backend, worker_id="a", lease_ttl_s=0.2)  # no heartbeat: its lease runs out
    await stalled.claim("c")
    watcher = Ownership(backend, worker_id="watcher")  # orphans() leaves out a worker's own
    await eventually(lambda: _listed(watcher, "c"))
    real_script = backend.script
    runs: list[list[Any]] = []

    def losing_the_first_reply(source: str) -> Any:
        script = real_script(source)
        if source != scripts.OWN_CLAIM:
            return script

        async def run(keys: list[str], args: list[Any]) -> Any:
            reply = await script(keys, args)
            runs.append(args)
            if len(runs) == 1:
                raise coredis.exceptions.ConnectionError("reply lost")  # after Redis ran it
            return reply

        return run

    monkeypatch.setattr(backend, "script", losing_the_first_reply)
    async with open_ownership(backend, worker_id="b", lease_ttl_s=5) as b:
        claim = await b.claim("c")
        assert len(runs) == 2 and runs[0] == runs[1]  # the same claim id, run twice
        assert claim.previous_owner == "a" and claim.is_takeover
        assert b.statistics().takeovers == 1 and b.statistics().claims == 1
        assert await b.owner_of("c") == ("b", claim.token)
        await b.release(claim, finished=True)


async def _listed(ownership: Ownership, conversation_id: str) -> bool:
    return conversation_id in await ownership.orphans()


async def test_a_superseded_owner_is_cancelled_with_ownership_lost(backend: RedisBackend) -> None:
    paused = Ownership(backend, worker_id="a", lease_ttl_s=0.2)  # no heartbeat: a stalled worker

    async def orphaned() -> bool:
        return "c" in await paused.orphans() or "c" in await b.orphans()

    async with open_ownership(backend, worker_id="b", lease_ttl_s=5) as b:
        with trio.fail_after(10), pytest.raises(OwnershipLostError) as info:
            async with paused.own("c") as stale:
                await paused.write_state(stale, {"acked": 1})
                await eventually(orphaned)
                fresh = await b.claim("c")
                assert fresh.previous_owner == "a" and fresh.token > stale.token
                with pytest.raises(OwnershipLostError):
                    await paused.write_state(stale, {"acked": 2})  # fenced out
                await paused.renew()  # its next heartbeat learns it lost: the block is cancelled
                await trio.sleep_forever()
        assert info.value.token == stale.token
        assert (await b.read_state("c"))["acked"] == "1"
        assert await b.owner_of("c") == ("b", fresh.token)


async def test_a_quota_lease_redis_lost_is_reinstated_or_its_block_cancelled(backend: RedisBackend) -> None:
    async with open_quota(backend, "lost", 1, lease_ttl_s=5, poll_s=0.01) as quota:
        leases = backend.key("quota:lost", "leases")
        async with quota.slot(timeout=1):
            await backend.client.delete([leases])  # Redis restarted without persistence
            await quota.renew()
            assert quota.statistics().reinstated == 1 and await quota.usage() == (1, 0)
        with trio.fail_after(10), pytest.raises(QuotaLostError):
            async with quota.slot(timeout=1):
                await backend.client.delete([leases])
                other = await quota.acquire(timeout=1)  # the only slot went to someone else
                await quota.renew()  # no room to reinstate: this block is cancelled
                await trio.sleep_forever()
        await quota.release(other)
        assert quota.statistics().lost == 1 and await quota.usage() == (0, 0)
