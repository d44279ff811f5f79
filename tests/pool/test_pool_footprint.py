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
from livemesh.pool.pool import SessionFailure, open_pool
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


class _BrokenRotation(FakeSession):
    """Rotation fails for the conversation named "rotating" only."""

    async def rotate(self, reason: str = "requested") -> None:
        if self.session_id != "rotating":
            await super().rotate(reason)
            return
        await trio.sleep(0.01)
        raise RuntimeError(f"rotation failed ({reason})")


class _SlowRotation(FakeSession):
    rotating: trio.Event  # set per test (an Event belongs to one trio run)

    async def rotate(self, reason: str = "requested") -> None:
        _SlowRotation.rotating.set()
        await trio.sleep_forever()


async def test_a_failed_rotation_fails_its_incarnation_only(autojump_clock: trio.testing.MockClock) -> None:
    """The planner's helper task raises: that incarnation ends with the error (reported, restarted
    by policy), exactly as when the rotation ran in a task of the incarnation's own nursery."""
    connect = FakeConnect()
    failures: list[SessionFailure] = []
    calm_done = trio.Event()

    async def talk(session: FakeSession) -> None:
        await session.handle("h0")
        await trio.sleep(60)

    async def calm(session: FakeSession) -> None:
        await session.handle("c0")
        await trio.sleep(4)  # rotated (successfully) at ~2.5 s, next to the failing one
        calm_done.set()

    connect.session_class = _BrokenRotation
    with trio.fail_after(30):
        async with open_pool(
            connect=connect,
            limits=SMALL,
            seed=6,
            on_session_error=failures.append,
            restart=RestartPolicy(restart=Restart.TEMPORARY),
        ) as pool:
            calm_handle = await pool.start(config(), calm, conversation_id="calm")
            handle = await pool.start(config(), talk, conversation_id="rotating")
            await handle.wait()
            await calm_handle.wait()
    assert calm_done.is_set() and calm_handle.error is None
    calm_session = next(s for s in connect.sessions if s.session_id == "calm")
    assert calm_session.rotated_at
    assert isinstance(handle.error, RuntimeError) and "rotation failed" in str(handle.error)
    assert [f.conversation_id for f in failures] == ["rotating"]
    assert trio.current_time() < 5.0  # ended at the first rotation (~2.4-2.7 s), not by the handler


async def test_a_handler_returning_mid_rotation_leaves_no_helper_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connect = FakeConnect()
    _SlowRotation.rotating = trio.Event()

    async def talk(session: FakeSession) -> None:
        await session.handle("h0")
        await _SlowRotation.rotating.wait()  # returns while the pool's helper is mid-rotate()

    with trio.fail_after(30):
        async with open_pool(connect=connect, limits=SMALL, seed=7) as pool:
            connect.session_class = _SlowRotation
            handle = await pool.start(config(), talk)
            await handle.wait()
            await trio.testing.wait_all_tasks_blocked()
            names = [t.name for t in _tasks_under(trio.lowlevel.current_task())]
            assert not [n for n in names if n.startswith("pool:help:")]
    assert handle.error is None
