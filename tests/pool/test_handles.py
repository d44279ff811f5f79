"""The handle store: monotonic saves, expiry, no handle in reprs."""

from __future__ import annotations

from livemesh.pool.handles import HandleStore, MemoryHandleStore, StoredHandle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_newest_wins_and_older_never_overwrites() -> None:
    store = MemoryHandleStore(ttl_s=10, clock=Clock())
    assert isinstance(store, HandleStore)
    assert await store.save("c", StoredHandle("h2", 2))
    assert not await store.save("c", StoredHandle("h1", 1))
    assert not await store.save("c", StoredHandle("other", 2))  # same seq, different value
    loaded = await store.load("c")
    assert loaded is not None and loaded.handle == "h2" and loaded.seq == 2
    assert await store.save("c", StoredHandle("h3", 3))
    loaded = await store.load("c")
    assert loaded is not None and loaded.handle == "h3"
    assert await store.load("unknown") is None


async def test_entries_expire_after_the_ttl_and_a_resave_refreshes() -> None:
    clock = Clock()
    store = MemoryHandleStore(ttl_s=10, clock=clock)
    await store.save("a", StoredHandle("ha", 1))
    clock.now += 6
    await store.save("b", StoredHandle("hb", 1))
    assert await store.save("a", StoredHandle("ha", 1))  # same handle again: refreshes the TTL
    clock.now += 6
    assert (await store.load("a")) is not None
    clock.now += 5
    assert await store.load("b") is None
    # an expired entry does not block an older seq (a new conversation life)
    assert await store.save("b", StoredHandle("hb0", 0))


async def test_sweep_keeps_memory_bounded() -> None:
    clock = Clock()
    store = MemoryHandleStore(ttl_s=1, clock=clock)
    for i in range(100):
        await store.save(f"c{i}", StoredHandle("h", 1))
        clock.now += 0.1
    assert len(store) <= 11


async def test_delete_and_repr_hides_the_handle() -> None:
    store = MemoryHandleStore(clock=Clock())
    await store.save("c", StoredHandle("SECRET-HANDLE", 1))
    assert "SECRET-HANDLE" not in repr(await store.load("c"))
    await store.delete("c")
    assert await store.load("c") is None
    await store.delete("c")  # idempotent
