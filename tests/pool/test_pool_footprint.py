"""What an idle pooled session costs the pool: one task (its supervisor, which runs the handler).

Rotation planning and handle saving are pool-wide (one planner with a timer heap, one saver):
a parked task per session costs ~2-4 KB, and idle memory per session is a headline figure
(bench/pool_scale.py). These tests pin that shape, and that the shared timer heap cannot grow
with churn.
"""

from __future__ import annotations

import trio
import trio.testing

from livemesh.limits import ServiceLimits
from livemesh.pool import pool as pool_module
from livemesh.pool.handles import MemoryHandleStore
from livemesh.pool.pool import open_pool
from livemesh.pool.supervision import Restart, RestartPolicy

from .fakes import FakeConnect, FakeSession, config

SMALL = ServiceLimits(
    connection_lifetime_s=3.0, go_away_notice_s=1.0, audio_session_s=5.0, audio_video_session_s=2.0
)


def _tasks_under(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    found: list[trio.lowlevel.Task] = []
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            found.append(child)
            found.extend(_tasks_under(child))
    return found


async def test_an_idle_pooled_session_costs_one_task_and_handles_are_still_saved(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connect = FakeConnect()
    store = MemoryHandleStore(clock=trio.current_time)
    release = trio.Event()
    parked = 0
    all_parked = trio.Event()

    async def idle(session: FakeSession) -> None:
        nonlocal parked
        await session.handle(f"h-{session.session_id}")
        parked += 1
        if parked == 50:
            all_parked.set()
        await release.wait()

    with trio.fail_after(30):
        async with open_pool(connect=connect, limits=SMALL, seed=2, handle_store=store) as pool:
            for i in range(50):
                await pool.start(config(), idle, conversation_id=f"c{i}")
            await all_parked.wait()
            await trio.testing.wait_all_tasks_blocked()
            names = [t.name for t in _tasks_under(trio.lowlevel.current_task())]
            per_session = [n for n in names if n.startswith("pool:c")]
            assert len(per_session) == 50  # the supervisors, nothing else per session
            assert sorted(n for n in names if not n.startswith("pool:c")) == [
                "pool:housekeeping",
                "pool:planner",
                "pool:saver",
            ]
            # the pool-wide saver stored every handle while the sessions run
            assert [(await store.load(f"c{i}")) is not None for i in range(50)] == [True] * 50
            release.set()


async def test_the_timer_heap_stays_bounded_under_churn(autojump_clock: trio.testing.MockClock) -> None:
    """Thousands of short sessions each arm a planner timer minutes ahead; ended children must not
    pile up in the heap (each entry would keep its ended child alive until the timer is due)."""
    connect = FakeConnect()
    limits = ServiceLimits(connection_lifetime_s=600.0)
    peak = 0

    async def brief(session: FakeSession) -> None:
        nonlocal peak
        await session.handle("h")
        await trio.sleep(0.01)
        peak = max(peak, len(pool._timers))

    with trio.fail_after(60):
        async with open_pool(
            connect=connect,
            limits=limits,
            seed=3,
            max_sessions=10,
            connect_rate=1000.0,
            restart=RestartPolicy(restart=Restart.TEMPORARY),
        ) as pool:
            handles = [await pool.start(config(), brief) for _ in range(2000)]
            for handle in handles:
                await handle.wait()
    assert len(connect.sessions) == 2000
    assert 0 < peak <= 2 * 10 + 64 + 1
    assert list(pool_module._iter_children(pool)) == []
