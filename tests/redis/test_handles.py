"""RedisHandleStore against a real Redis: the HandleStore contract, TTL, two racing writers, fencing."""

from __future__ import annotations

import random

import pytest
import trio

from livemesh.pool.handles import HandleStore, StoredHandle
from livemesh.redis import Ownership, OwnershipError, RedisBackend, RedisHandleStore, open_ownership
from tests.redis.helpers import eventually


async def test_contract_newest_wins_and_no_handle_in_repr(backend: RedisBackend) -> None:
    store = RedisHandleStore(backend, ttl_s=60)
    assert isinstance(store, HandleStore)
    assert await store.load("c") is None
    assert await store.save("c", StoredHandle("secret-h2", 2))
    assert not await store.save("c", StoredHandle("secret-h1", 1))
    assert not await store.save("c", StoredHandle("other", 2))  # same seq, another value: first wins
    assert await store.save("c", StoredHandle("secret-h2", 2))  # same value again: a refresh
    loaded = await store.load("c")
    assert loaded is not None and (loaded.handle, loaded.seq) == ("secret-h2", 2)
    assert loaded.saved_at > 1_600_000_000  # Redis's clock, epoch seconds
    assert "secret" not in repr(loaded) and "secret" not in repr(store)
    await store.delete("c")
    assert await store.load("c") is None


async def test_ttl_is_set_and_refreshed_on_update(backend: RedisBackend) -> None:
    store = RedisHandleStore(backend, ttl_s=7200)
    key = backend.key("fleet", "handle", "c")
    await store.save("c", StoredHandle("h1", 1))
    ttl = await backend.client.pttl(key)
    assert 7_190_000 < ttl <= 7_200_000
    await backend.client.pexpire(key, 5_000)
    await store.save("c", StoredHandle("h2", 2))
    assert await backend.client.pttl(key) > 7_190_000


async def test_entries_expire(backend: RedisBackend) -> None:
    store = RedisHandleStore(backend, ttl_s=0.05)
    await store.save("c", StoredHandle("h1", 1))

    async def gone() -> bool:
        return await store.load("c") is None

    await eventually(gone)  # Redis expires it; we only watch


async def test_two_writers_never_go_backwards(backend: RedisBackend) -> None:
    """Two writers save interleaved, shuffled sequences while a reader watches: the stored seq
    only ever grows, and the newest handle wins in the end."""
    store_a = RedisHandleStore(backend, ttl_s=60)
    store_b = RedisHandleStore(backend, ttl_s=60)
    seqs = list(range(1, 301))
    rng = random.Random(7)
    a_seqs = sorted(rng.sample(seqs, 150))
    b_seqs = sorted(set(seqs) - set(a_seqs))
    # Each writer also replays some old seqs late, as a task cancelled mid-save would.
    a_plan = a_seqs + rng.sample(a_seqs, 30)
    b_plan = b_seqs + rng.sample(b_seqs, 30)
    observed: list[int] = []
    done = trio.Event()

    async def writer(store: RedisHandleStore, plan: list[int]) -> None:
        for seq in plan:
            await store.save("conv", StoredHandle(f"h{seq}", seq))

    async def reader() -> None:
        while not done.is_set():
            got = await store_a.load("conv")
            if got is not None:
                observed.append(got.seq)
                assert got.handle == f"h{got.seq}"
            await trio.lowlevel.checkpoint()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            async with trio.open_nursery() as writers:
                writers.start_soon(writer, store_a, a_plan)
                writers.start_soon(writer, store_b, b_plan)
            done.set()
    assert observed == sorted(observed)
    final = await store_b.load("conv")
    assert final is not None and final.seq == 300


async def test_fenced_saves_refuse_a_stale_owner(backend: RedisBackend) -> None:
    """A paused owner (no heartbeat: a bare Ownership) keeps its token, but once another worker
    took the conversation over, the paused one's handle writes are refused."""
    paused = Ownership(backend, worker_id="a", lease_ttl_s=0.2)
    async with open_ownership(backend, worker_id="b", lease_ttl_s=5) as b:
        store_a = RedisHandleStore(backend, fence=paused.token)
        store_b = RedisHandleStore(backend, fence=b.token)
        assert not await store_a.save("c", StoredHandle("h1", 1))  # a does not own it yet
        claim_a = await paused.claim("c")
        assert await store_a.save("c", StoredHandle("h1", 1))
        with pytest.raises(OwnershipError):
            await b.claim("c")  # a's lease is live

        async def orphaned() -> bool:
            return "c" in await b.orphans()

        await eventually(orphaned)  # a's lease runs out in Redis time
        claim_b = await b.claim("c")
        assert claim_b.token > claim_a.token and claim_b.previous_owner == "a"
        assert paused.token("c") == claim_a.token  # the zombie still believes it owns "c"
        assert not await store_a.save("c", StoredHandle("h9-from-zombie", 9))
        assert store_a.fenced_out == 2
        assert await store_b.save("c", StoredHandle("h2", 2))
        loaded = await store_b.load("c")
        assert loaded is not None and loaded.handle == "h2"
        await paused.renew()  # the zombie's next beat learns it lost
        assert paused.token("c") is None and paused.statistics().lost == 1
