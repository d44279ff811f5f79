"""Admission: FIFO fairness, timeouts with a clear error, capacity never lost; quota backoff."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from livemesh.errors import ConfigError
from livemesh.pool.admission import Admission, QuotaBackoff
from livemesh.pool.errors import AdmissionTimeoutError, PoolClosedError


async def test_waiters_are_served_in_arrival_order(autojump_clock: trio.testing.MockClock) -> None:
    admission = Admission(2)
    order: list[int] = []

    async def caller(i: int) -> None:
        async with admission.admit():
            order.append(i)
            await trio.sleep(1)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(caller, i)
                await trio.sleep(0.01)  # mock time: fixes the arrival order
    assert order == list(range(10))
    assert admission.statistics().active == 0
    assert admission.waiting == 0


async def test_release_hands_the_slot_to_the_oldest_waiter_not_a_newcomer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    admission = Admission(1)
    await admission.acquire()
    got: list[str] = []

    async def waiter() -> None:
        await admission.acquire()
        got.append("waiter")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        admission.release()
        assert admission.try_acquire() is False  # the freed slot already belongs to the waiter
    assert got == ["waiter"]
    assert admission.active == 1


async def test_timeout_raises_a_typed_error_saying_why(autojump_clock: trio.testing.MockClock) -> None:
    admission = Admission(1)
    await admission.acquire()
    errors: list[AdmissionTimeoutError] = []

    async def impatient(patience: float) -> None:
        with pytest.raises(AdmissionTimeoutError) as info:
            await admission.acquire(timeout=patience)
        errors.append(info.value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(admission.acquire)  # stays queued (first)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(impatient, 2.5)
        await trio.testing.wait_all_tasks_blocked()
        assert admission.waiting == 2
        await trio.sleep(3)
        assert admission.waiting == 1
        admission.release()  # goes to the first waiter
    (error,) = errors
    assert error.waited == pytest.approx(2.5)
    assert error.position == 1
    assert error.capacity == 1
    assert "1 caller(s) still ahead" in str(error)
    assert isinstance(error, TimeoutError)


async def test_capacity_is_released_when_the_block_fails(autojump_clock: trio.testing.MockClock) -> None:
    admission = Admission(1)
    with pytest.raises(RuntimeError):
        async with admission.admit():
            raise RuntimeError("boom")
    assert admission.active == 0
    async with admission.admit(timeout=0.1):
        assert admission.active == 1


async def test_cancelled_after_being_granted_gives_the_slot_back() -> None:
    admission = Admission(1)
    await admission.acquire()
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def waiter() -> None:
                await admission.acquire()
                raise AssertionError("must not get here: cancelled in the same tick it was granted")

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()  # the waiter is rescheduled with Cancelled ...
            admission.release()  # ... and the release in the same tick must not lose the slot
    assert admission.active == 0
    assert admission.try_acquire()


async def test_a_cancelled_immediate_acquire_takes_no_slot() -> None:
    admission = Admission(1)
    with trio.CancelScope() as scope:
        scope.cancel()
        await admission.acquire()
    assert admission.active == 0


async def test_close_wakes_every_waiter_with_pool_closed() -> None:
    admission = Admission(1)
    await admission.acquire()
    closed: list[int] = []

    async def waiter(i: int) -> None:
        with pytest.raises(PoolClosedError):
            await admission.acquire()
        closed.append(i)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(waiter, i)
            await trio.testing.wait_all_tasks_blocked()
            admission.close()
    assert sorted(closed) == [0, 1, 2]
    with pytest.raises(PoolClosedError):
        await admission.acquire()
    admission.release()
    assert admission.active == 0


def test_bad_capacity_is_a_config_error() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ConfigError):
            Admission(bad)  # type: ignore[arg-type]


async def test_quota_backoff_grows_and_resets(autojump_clock: trio.testing.MockClock) -> None:
    backoff = QuotaBackoff(base_s=1.0, max_s=8.0, uniform=random.Random(7).random)
    start = trio.current_time()
    pauses = []
    for _ in range(6):
        pauses.append(backoff.note_quota() - trio.current_time())
        await backoff.wait()
    assert [0.5 <= p / min(8.0, 2**i) < 1.0 for i, p in enumerate(pauses)] == [True] * 6
    assert trio.current_time() - start == pytest.approx(sum(pauses))
    backoff.note_success()
    assert backoff.strikes == 0
    assert backoff.note_quota() - trio.current_time() < 1.0


async def test_quota_backoff_wait_sees_an_extended_pause(autojump_clock: trio.testing.MockClock) -> None:
    backoff = QuotaBackoff(base_s=1.0, max_s=1.0, uniform=lambda: 0.0)  # pauses of exactly 0.5 s
    backoff.note_quota()
    woke: list[float] = []

    async def waiter() -> None:
        await backoff.wait()
        woke.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(0.4)
        backoff.note_quota()  # another refusal: paused until 0.9
    assert woke == [pytest.approx(0.9)]
