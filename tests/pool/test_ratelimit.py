"""The connection-attempt rate limiter: average rate, burst, FIFO, cancellation-safe."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from livemesh.errors import ConfigError
from livemesh.pool.ratelimit import RateLimiter


async def test_rate_and_burst(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(4.0, burst=2)
    times: list[float] = []
    for _ in range(6):
        await limiter.acquire()
        times.append(trio.current_time())
    # two back to back, then one every 0.25 s
    assert times == pytest.approx([0.0, 0.0, 0.25, 0.5, 0.75, 1.0])
    assert limiter.granted == 6


async def test_concurrent_callers_go_in_call_order(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(10.0)
    went: list[tuple[int, float]] = []

    async def caller(i: int) -> None:
        await limiter.acquire()
        went.append((i, trio.current_time()))

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(caller, i)
            await trio.testing.wait_all_tasks_blocked()
    assert [i for i, _ in went] == [0, 1, 2, 3, 4]
    assert [t for _, t in went] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


async def test_idle_spell_refills_only_up_to_the_burst(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(1.0, burst=3)
    await trio.sleep(100)
    start = trio.current_time()
    for _ in range(4):
        await limiter.acquire()
    assert trio.current_time() - start == pytest.approx(1.0)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        RateLimiter(0)
    with pytest.raises(ConfigError):
        RateLimiter(1.0, burst=0)
