"""The pool's supervision, admission, rotation and shutdown against a scripted fake session.

Deterministic: mock clock (autojump), seeded jitter, no sockets. The same behaviours are proven
against the real session and the emulator in test_pool_emulator.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from livemesh import wire
from livemesh.errors import QuotaError, ReconnectError, SessionClosedError, SetupRejectedError
from livemesh.limits import ServiceLimits
from livemesh.pool import pool as pool_module
from livemesh.pool.errors import (
    AdmissionTimeoutError,
    PoolClosedError,
    RestartIntensityError,
    SessionLimitError,
)
from livemesh.pool.handles import MemoryHandleStore, StoredHandle
from livemesh.pool.pool import SessionFailure, open_pool
from livemesh.pool.rotation import RotationConfig
from livemesh.pool.supervision import Action, Restart, RestartPolicy
from livemesh.session.callbacks import Callbacks

from .fakes import FakeConnect, FakeSession, config


def sleeper(seconds: float) -> Callable[[FakeSession], Awaitable[None]]:
    async def handler(session: FakeSession) -> None:
        await trio.sleep(seconds)

    return handler


SMALL = ServiceLimits(
    connection_lifetime_s=3.0, go_away_notice_s=1.0, audio_session_s=5.0, audio_video_session_s=2.0
)


async def test_a_failing_handler_is_restarted_from_the_newest_handle_and_siblings_are_unaffected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connect = FakeConnect()
    failures: list[SessionFailure] = []
    store = MemoryHandleStore(clock=trio.current_time)
    runs: dict[str, int] = {}
    calm_done = trio.Event()

    async def flaky(session: FakeSession) -> None:
        runs["flaky"] = runs.get("flaky", 0) + 1
        await session.handle(f"h{runs['flaky']}")
        await trio.sleep(0.1)
        if runs["flaky"] < 3:
            raise RuntimeError(f"handler bug {runs['flaky']}")

    async def calm(session: FakeSession) -> None:
        await trio.sleep(5)
        calm_done.set()

    with trio.fail_after(30):
        async with open_pool(
            connect=connect, seed=1, on_session_error=failures.append, handle_store=store
        ) as pool:
            a = await pool.start(config(), flaky, conversation_id="flaky")
            b = await pool.start(config(), calm, conversation_id="calm")
            await a.wait()
            await b.wait()
    assert calm_done.is_set()
    assert runs["flaky"] == 3
    assert a.error is None and a.restarts == 2
    assert [f.action for f in failures] == [Action.RESTART, Action.RESTART]
    assert all(f.conversation_id == "flaky" for f in failures)
    assert isinstance(failures[0].error, RuntimeError)
    flaky_configs = [c for c in connect.configs if c.session_id == "flaky"]
    assert [c.resume_handle for c in flaky_configs] == [None, "h1", "h2"]
    stored = await store.load("flaky")
    assert stored is not None and stored.handle == "h3"
    snap = pool.metrics()
    assert (snap.started, snap.failed, snap.restarted, snap.active) == (2, 2, 2, 0)


async def test_restart_intensity_gives_up_with_a_typed_error(autojump_clock: trio.testing.MockClock) -> None:
    failures: list[SessionFailure] = []

    async def broken(session: FakeSession) -> None:
        raise RuntimeError("always")

    policy = RestartPolicy(max_restarts=2, period_s=10.0)
    async with open_pool(
        connect=FakeConnect(), restart=policy, seed=2, on_session_error=failures.append
    ) as pool:
        handle = await pool.start(config(), broken)
        await handle.wait()
    assert isinstance(handle.error, RestartIntensityError)
    assert isinstance(handle.error.__cause__, RuntimeError)
    assert [f.action for f in failures] == [Action.RESTART, Action.RESTART, Action.GIVE_UP]
    assert pool.metrics().given_up == 1


async def test_fatal_errors_are_not_restarted(autojump_clock: trio.testing.MockClock) -> None:
    connect = FakeConnect(failures=[SetupRejectedError("bad model", code=1008)])
    async with open_pool(connect=connect, restart=RestartPolicy(restart=Restart.PERMANENT)) as pool:
        handle = await pool.start(config(), sleeper(1))
        await handle.wait()
    assert isinstance(handle.error, SetupRejectedError)
    assert len(connect.configs) == 1


async def test_exception_groups_are_unwrapped_at_the_boundary(autojump_clock: trio.testing.MockClock) -> None:
    async def grouped(session: FakeSession) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 10)
            raise ReconnectError("gave up", code=1011)

    async with open_pool(connect=FakeConnect(), restart=RestartPolicy(restart=Restart.TEMPORARY)) as pool:
        handle = await pool.start(config(), grouped)
        await handle.wait()
    assert isinstance(handle.error, ReconnectError)


async def test_quota_refusals_pause_new_connections(autojump_clock: trio.testing.MockClock) -> None:
    connect = FakeConnect(failures=[QuotaError("RESOURCE_EXHAUSTED", code=1011)] * 2)
    started = trio.current_time()
    async with open_pool(connect=connect, seed=3, quota_backoff_s=(2.0, 8.0)) as pool:
        handle = await pool.start(config(), sleeper(0))
        await handle.wait()
    assert handle.error is None
    # two refusals: pauses in [1, 2) and [2, 4) seconds before the third attempt
    assert trio.current_time() - started >= 3.0
    assert len(connect.configs) == 3


async def test_admission_is_fifo_and_times_out_clearly(autojump_clock: trio.testing.MockClock) -> None:
    order: list[int] = []

    async def work(session: FakeSession) -> None:
        await trio.sleep(1)

    async with open_pool(connect=FakeConnect(), max_sessions=2) as pool:

        async def client(i: int) -> None:
            # distinct durations: releases (and so grants) never coincide, so the order is observable
            handle = await pool.start(config(), sleeper(1 + i / 10), conversation_id=f"c{i}")
            order.append(i)
            await handle.wait()

        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(client, i)
                await trio.testing.wait_all_tasks_blocked()
            await trio.testing.wait_all_tasks_blocked()
            assert pool.metrics().queued == 4
        assert order == list(range(6))

        blocker = await pool.start(config(), sleeper(100))
        blocker2 = await pool.start(config(), sleeper(100))
        with pytest.raises(AdmissionTimeoutError) as info:
            await pool.start(config(), work, admission_timeout=0.5)
        assert info.value.capacity == 2
        assert pool.metrics().admission_timeouts == 1
        blocker.cancel()
        blocker2.cancel()


async def test_lent_session_and_its_connect_error(autojump_clock: trio.testing.MockClock) -> None:
    connect = FakeConnect(failures=[SetupRejectedError("nope", code=1007)])
    failures: list[SessionFailure] = []
    async with open_pool(connect=connect, on_session_error=failures.append) as pool:
        with pytest.raises(SetupRejectedError):
            async with pool.session(config()):
                raise AssertionError("unreachable")
        async with pool.session(config(), conversation_id="lent") as session:
            assert isinstance(session, FakeSession)
            assert pool.metrics().active == 1
            assert [s.conversation_id for s in pool.metrics().sessions] == ["lent"]
        assert session.closed
        assert pool.metrics().active == 0
        pool.record_turn_latency(0.05)
        assert pool.metrics().turn_latency.count == 1
    assert len(failures) == 1


async def test_rotation_is_staggered_and_waits_for_a_quiet_point(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connect = FakeConnect()
    rotation = RotationConfig()

    async def talk(session: FakeSession) -> None:
        await session.handle("h0")
        await trio.sleep(2.6)  # inside the stagger window [2.4, 2.7]: rotation may be due now
        await session.generation()
        await trio.sleep(0.1)  # not rotated mid-generation (FakeSession.rotate asserts it)
        await session.finish_generation()
        await trio.sleep(6)

    async with open_pool(connect=connect, limits=SMALL, rotation=rotation, seed=4) as pool:
        handles = [await pool.start(config(), talk) for _ in range(20)]
        for h in handles:
            await h.wait()
    firsts = [s.rotated_at[0] - s.opened_at for s in connect.sessions]  # staggered connects (rate limit)
    assert all(s.rotated_at for s in connect.sessions)
    assert min(firsts) >= 2.4
    assert max(firsts) <= 2.71  # some waited for the end of the turn at 2.7
    assert len({round(t, 2) for t in firsts}) > 5  # staggered, not all at once
    assert sum(1 for t in firsts if t == pytest.approx(2.7, abs=0.015)) >= 1  # waited for the quiet point
    assert pool.metrics().rotations == sum(len(s.rotated_at) for s in connect.sessions)
    assert all(len(s.rotated_at) >= 2 for s in connect.sessions)


async def test_go_away_rotates_at_once(autojump_clock: trio.testing.MockClock) -> None:
    connect = FakeConnect()
    seen: list[float | None] = []

    async def user_on_go_away(go_away: wire.GoAway) -> None:  # still called, after the pool's
        seen.append(go_away.time_left)

    async def talk(session: FakeSession) -> None:
        await session.handle("h0")
        await trio.sleep(0.5)
        await session.go_away(1.0)
        await trio.sleep(0.1)
        assert session.rotated_at and session.rotated_at[0] == pytest.approx(0.511, abs=0.01)

    async with open_pool(
        connect=connect, limits=SMALL, seed=5, restart=RestartPolicy(restart=Restart.TEMPORARY)
    ) as pool:
        handle = await pool.start(config(callbacks=Callbacks(on_go_away=user_on_go_away)), talk)
        await handle.wait()
    assert handle.error is None
    assert seen == [1.0]


async def test_unavoidable_budget_ends_the_session_with_a_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    failures: list[SessionFailure] = []
    rotation = RotationConfig(budget_resets_on_resume=False)
    limits = ServiceLimits(connection_lifetime_s=10.0, audio_session_s=2.0)

    async def talk(session: FakeSession) -> None:
        await session.handle("h0")
        await trio.sleep(100)

    async with open_pool(
        connect=FakeConnect(), limits=limits, rotation=rotation, on_session_error=failures.append
    ) as pool:
        handle = await pool.start(config(), talk)
        await handle.wait()
    assert isinstance(handle.error, SessionLimitError)
    assert "budget" in handle.error.reason
    assert pool.metrics().ended_by_limit == 1
    assert trio.current_time() < 2.0


async def test_close_lets_turns_finish_within_the_grace_then_cancels(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connect = FakeConnect()

    async def busy(session: FakeSession) -> None:
        await session.handle("h0")
        await session.generation()
        await trio.sleep(1.0)
        await session.finish_generation()
        await trio.sleep(100)

    async def idle(session: FakeSession) -> None:
        await session.handle("h-idle")  # the service issues a handle right after setup
        await trio.sleep(100)

    async with open_pool(connect=connect) as pool:
        await pool.start(config(), busy)
        await pool.start(config(), idle)
        await trio.sleep(0.01)  # mock time: both connected (connect takes 1 ms)
        assert connect.open_now == 2
        start = trio.current_time()
        assert not pool.closing
        await pool.close(grace=5.0)
        assert pool.closing
        with trio.fail_after(0.1):
            await pool.wait_closing()
        assert sorted(s.counters.turns for s in connect.sessions) == [0, 1]  # the busy one finished its turn
        assert trio.current_time() - start == pytest.approx(1.0, abs=0.05)
        assert connect.open_now == 0
        with pytest.raises(PoolClosedError):
            await pool.start(config(), idle)


async def test_cancelling_the_pool_block_leaves_nothing_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connect = FakeConnect()
    with trio.move_on_after(1.0):
        async with open_pool(connect=connect) as pool:
            for _ in range(50):
                await pool.start(config(), sleeper(float("inf")))
            await trio.sleep_forever()
    assert connect.open_now == 0
    assert len(connect.sessions) == 50
    assert all(s.closed for s in connect.sessions)
    assert list(pool_module._iter_children(pool)) == []


async def test_the_store_handle_is_used_for_a_new_conversation_with_the_same_id(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryHandleStore(clock=trio.current_time)
    await store.save("conv", StoredHandle("from-another-process", 7))
    connect = FakeConnect()
    async with open_pool(connect=connect, handle_store=store) as pool:
        handle = await pool.start(config(), lambda s: s.handle("newer"), conversation_id="conv")
        await handle.wait()
    assert connect.configs[0].resume_handle == "from-another-process"
    stored = await store.load("conv")
    assert stored is not None and (stored.handle, stored.seq) == ("newer", 8)


async def test_the_blocks_own_exception_comes_out_bare_not_in_a_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connect = FakeConnect()
    with pytest.raises(ValueError, match="mine"):
        async with open_pool(connect=connect) as pool:
            await pool.start(config(), sleeper(float("inf")))
            await trio.sleep(0.1)
            raise ValueError("mine")
    assert connect.open_now == 0


class _UserClosableSession(FakeSession):
    """Like the real session: once its user has closed it, ``rotate`` raises SessionClosedError
    (while the session may still look quiet, flushing its input before the close frame)."""

    error: BaseException | None = None
    user_closed = False

    async def aclose(self) -> None:
        self.user_closed = True

    async def rotate(self, reason: str = "requested") -> None:
        if self.user_closed:
            raise SessionClosedError("the session is closed")
        await super().rotate(reason)


async def test_a_lent_session_its_user_closed_is_not_a_failure(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    connect = FakeConnect(session_class=_UserClosableSession)
    failures: list[SessionFailure] = []
    async with open_pool(connect=connect, limits=SMALL, seed=4, on_session_error=failures.append) as pool:
        async with pool.session(config()) as session:
            assert isinstance(session, _UserClosableSession)
            await session.handle("h0")
            await session.aclose()
            await trio.sleep(3)  # the planner's rotation comes due while the block still runs
        metrics = pool.metrics()
    assert connect.configs  # the session did open
    assert failures == []
    assert (metrics.failed, metrics.rotations) == (0, 0)
    assert "failed" not in caplog.text
