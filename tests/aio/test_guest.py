"""The guest run: one per loop, shared, ended before the loop; the crossings and their
cancellation, both ways."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

import livemesh.aio
from livemesh.aio import guest, onloop
from tests.aio.helpers import run


class Boom(Exception):
    pass


def test_blocks_on_one_loop_share_one_guest_run_that_ends_with_the_last() -> None:
    async def main() -> None:
        assert guest.current_guest_run() is None
        async with guest.guest_run() as first:
            async with guest.guest_run() as second:
                assert first is second
            assert guest.current_guest_run() is first  # still used by the outer block
            finished = first._finished
        assert finished.done()  # the exit waited for the trio run to end
        assert guest.current_guest_run() is None
        async with guest.guest_run() as third:  # a new one starts on demand
            assert third is not first

    run(main)


def test_concurrent_blocks_get_the_same_run() -> None:
    async def main() -> set[int]:
        seen: list[guest.GuestRun] = []
        both = asyncio.Event()

        async def user() -> None:
            async with guest.guest_run() as r:
                seen.append(r)
                if len(seen) == 2:
                    both.set()
                await both.wait()

        await asyncio.gather(user(), user())
        return {id(r) for r in seen}

    assert len(run(main)) == 1


def test_each_loop_in_each_thread_has_its_own_run() -> None:
    runs: dict[str, int] = {}
    ready = threading.Barrier(2)

    def thread(name: str) -> None:
        async def main() -> None:
            async with guest.guest_run() as r:
                runs[name] = id(r)
                await asyncio.to_thread(ready.wait)
                assert await livemesh.aio.run_trio(trio.sleep, 0) is None

        asyncio.run(main())

    threads = [threading.Thread(target=thread, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(set(runs.values())) == 2


def test_run_trio_returns_and_raises_the_same_objects() -> None:
    error = Boom("from trio")

    async def trio_fn(x: int) -> int:
        await trio.lowlevel.checkpoint()
        return x + 1

    async def trio_fails() -> None:
        await trio.lowlevel.checkpoint()
        raise error

    async def main() -> None:
        assert await livemesh.aio.run_trio(trio_fn, 41) == 42
        with pytest.raises(Boom) as caught:
            await livemesh.aio.run_trio(trio_fails)
        assert caught.value is error

    run(main)


def test_cancelling_the_asyncio_caller_cancels_the_trio_call_and_waits_for_it() -> None:
    async def main() -> None:
        entered = asyncio.Event()
        trio_saw: list[str] = []

        async def trio_side() -> None:
            entered.set()  # asyncio objects may be touched from trio: same thread
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                trio_saw.append("cancelled")
                raise
            finally:
                with trio.CancelScope(shield=True):
                    await trio.lowlevel.checkpoint()  # cleanup that needs a checkpoint still runs
                trio_saw.append("cleaned up")

        async with guest.guest_run():
            task = asyncio.create_task(livemesh.aio.run_trio(trio_side))
            await entered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # by the time the asyncio side sees CancelledError, the trio side is done
            assert trio_saw == ["cancelled", "cleaned up"]

    run(main)


def test_trio_cancels_an_asyncio_coroutine_it_awaits() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = asyncio.Event()
        asyncio_saw: list[str] = []

        async def asyncio_side() -> None:
            assert asyncio.current_task() is not None  # a real asyncio task on this loop
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                asyncio_saw.append("cancelled")
                raise

        async def trio_side() -> str:
            with trio.move_on_after(0.05):  # trio's own timeout
                await onloop.run_on_loop(loop, asyncio_side, (), {})
            return "moved on"

        assert await livemesh.aio.run_trio(trio_side) == "moved on"
        assert started.is_set() and asyncio_saw == ["cancelled"]

    run(main)


def test_run_on_loop_runs_in_a_copy_of_the_given_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        var.set("request-42")
        context = contextvars.copy_context()
        var.set("changed later")

        async def asyncio_side() -> str:
            value = var.get()
            var.set("set by the task")  # stays in the task's copy
            return value

        async def trio_side() -> str:
            return await onloop.run_on_loop(loop, asyncio_side, (), {}, context)

        assert await livemesh.aio.run_trio(trio_side) == "request-42"
        assert context[var] == "request-42"

    run(main)


def test_asyncio_may_call_sync_trio_functions_while_the_run_is_up() -> None:
    """What the crossings rely on (trio documents it for guest mode): the host thread may call
    trio's synchronous functions: set an Event, cancel a scope, start a task, read the clock."""

    async def main() -> None:
        async with guest.guest_run() as r:
            event = trio.Event()
            woke = asyncio.Event()

            async def waiter() -> None:
                await event.wait()
                woke.set()

            r.nursery.start_soon(waiter)
            await asyncio.sleep(0)
            assert trio.current_time() > 0
            event.set()
            await woke.wait()

    run(main)


@asynccontextmanager
async def trio_cm(log: list[object]) -> AsyncIterator[str]:
    log.append("entered")
    try:
        yield "value"
    except BaseException as exc:
        log.append(exc)
        raise
    finally:
        with trio.CancelScope(shield=True):
            await trio.lowlevel.checkpoint()
        log.append("exited")


def test_trio_block_sees_the_asyncio_bodys_exception() -> None:
    async def main() -> None:
        log: list[object] = []
        error = Boom("body")
        with pytest.raises(Boom) as caught:
            async with livemesh.aio.trio_block(trio_cm(log)) as value:
                assert value == "value"
                raise error
        assert caught.value is error
        assert log == ["entered", error, "exited"]
        async with livemesh.aio.trio_block(trio_cm(log)):
            pass
        assert log[-2:] == ["entered", "exited"]

    run(main)


def test_trio_block_that_fails_by_itself_cancels_the_asyncio_body_and_raises() -> None:
    error = Boom("the trio side failed")

    @asynccontextmanager
    async def failing_cm(fail: trio.Event) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:

            async def watchdog() -> None:
                await fail.wait()
                raise error

            nursery.start_soon(watchdog)
            yield

    async def main() -> None:
        fail = trio.Event()
        body: list[str] = []
        with pytest.raises(BaseException) as caught:
            async with livemesh.aio.trio_block(failing_cm(fail)):
                fail.set()
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    body.append("cancelled")
                    raise
        assert body == ["cancelled"]
        leaves = caught.value.exceptions if isinstance(caught.value, BaseExceptionGroup) else (caught.value,)
        assert error in leaves
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    run(main)


def test_an_outer_cancellation_is_not_swallowed_by_a_trio_block() -> None:
    async def main() -> None:
        log: list[object] = []
        inside = asyncio.Event()

        async def user() -> None:
            async with livemesh.aio.trio_block(trio_cm(log)):
                inside.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(user())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert log[0] == "entered" and isinstance(log[1], asyncio.CancelledError) and log[2] == "exited"

    run(main)
