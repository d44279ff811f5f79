"""One trio guest run per asyncio loop, and the crossings between the two libraries.

livemesh is trio code. Under asyncio it runs as a *guest* of the asyncio loop
(:func:`trio.lowlevel.start_guest_run`): trio's tasks run as callbacks of the asyncio loop, on
its thread, and only trio's wait for I/O moves to a helper thread (trio's docs on guest mode:
https://trio.readthedocs.io/en/stable/reference-lowlevel.html#using-guest-mode-to-run-trio-on-top-of-other-event-loops).
A host loop may carry one guest run at a time, so every ``livemesh.aio`` block on a loop shares
one :class:`GuestRun`: the first block entered starts it, the last one to exit ends it and waits
for its end. Used as blocks, the trio run therefore always ends before the loop does.

Because both sides run on one thread, trio code may touch asyncio objects directly (set a
future's result, put into an ``asyncio.Queue``), and asyncio code may call trio's *synchronous*
functions (trio documents that the host may, once the guest run has started): set a
``trio.Event``, cancel a ``trio.CancelScope``, start a task in a nursery. Only waiting needs a
task on the other side. The crossings:

* asyncio awaits trio: :meth:`GuestRun.call` (here) runs one trio function in a task of the guest
  run's nursery; :class:`~livemesh.aio.block.TrioBlock` holds a trio ``async with`` open for an
  asyncio ``async with``.
* trio awaits asyncio: :func:`~livemesh.aio.onloop.run_on_loop` runs an asyncio coroutine
  function as an asyncio task and waits for it (tools, callbacks and handlers written for asyncio).

Cancellation crosses both ways. Cancelling the asyncio task that awaits a crossing cancels the
trio task doing the work (and waits for it to finish, so nothing is left running); cancelling the
trio side of :func:`run_on_loop` cancels the asyncio task. An error raised on one side is raised,
as the same object, on the other; trio's own ``Cancelled`` never reaches asyncio code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import outcome
import trio

from livemesh.errors import LivemeshError

__all__ = ["GuestRun", "GuestRunError", "current_guest_run", "guest_run", "wait_uncancellably"]

T = TypeVar("T")


class GuestRunError(LivemeshError, RuntimeError):
    """livemesh's trio guest run ended while asyncio code still depended on it.

    It ends on its own only if something stopped it from outside: a ``KeyboardInterrupt`` that
    trio delivered (a loop without asyncio's own Ctrl-C handling), or the loop closing with a
    ``livemesh.aio`` block still open."""


# ----------------------------------------------------------------------------- the run


class GuestRun:
    """The trio run hosted by one asyncio loop, shared by every ``livemesh.aio`` block on it.

    Get it with :func:`guest_run` (``async with guest_run() as run``): the run starts with the
    first user and ends when the last one leaves. Its one nursery holds every task the crossings
    start; those tasks never raise into it (each hands its outcome to the asyncio side), so one
    failure cannot end the others.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._users = 0
        self._nursery: trio.Nursery | None = None
        self._started: asyncio.Future[None] = loop.create_future()
        self._finished: asyncio.Future[outcome.Outcome[None]] = loop.create_future()
        self._stopping = False

    def __repr__(self) -> str:
        state = "stopping" if self._stopping else "running" if self._nursery else "starting"
        return f"<GuestRun {state} users={self._users}>"

    @property
    def nursery(self) -> trio.Nursery:
        """The run's nursery (trio tasks started here outlive no ``livemesh.aio`` block)."""
        if self._nursery is None or self._stopping:
            raise GuestRunError("livemesh's trio guest run is not running")
        return self._nursery

    def _start(self) -> None:
        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=self.loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=self.loop.call_soon,
            done_callback=self._done,
            # asyncio owns signal.set_wakeup_fd (add_signal_handler): trio must not take it over
            host_uses_signal_set_wakeup_fd=True,
        )

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if not self._started.done():
                self._started.set_result(None)
            await trio.sleep_forever()

    def _done(self, result: outcome.Outcome[None]) -> None:
        self._stopping = True
        self._forget()
        if not self._started.done():
            error = result.error if isinstance(result, outcome.Error) else None
            self._started.set_exception(
                GuestRunError(f"livemesh's trio guest run ended before it started: {error!r}")
            )
        if not self._finished.done():
            self._finished.set_result(result)
        if isinstance(result, outcome.Error):
            stop = _first_leaf(result.error, (KeyboardInterrupt, SystemExit))
            if stop is not None:
                raise stop from None  # Ctrl-C that trio caught: the host loop stops as it would have

    def _forget(self) -> None:
        if _RUNS.get(self.loop) is self:
            del _RUNS[self.loop]

    async def _enter(self) -> None:
        self._users += 1
        try:
            await asyncio.shield(self._started)
        except BaseException:
            await self._exit()
            raise

    async def _exit(self) -> None:
        self._users -= 1
        if self._users or self._stopping:
            return
        self._stopping = True
        self._forget()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        await wait_uncancellably(self._finished)

    # ------------------------------------------------------------------ asyncio awaits trio

    async def call(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Run the trio function ``fn(*args, **kwargs)`` in the guest run and return its result.

        Raises what ``fn`` raised. If the calling asyncio task is cancelled, ``fn`` is cancelled
        and waited for before ``CancelledError`` propagates (if ``fn`` had already finished, its
        effect stands: a send that returned in trio was queued).
        """
        call: _Call[T] = _Call(self.loop.create_future())
        self.nursery.start_soon(_run_call, call, fn, args, kwargs)
        try:
            await call.future
        except asyncio.CancelledError:
            call.scope.cancel()
            await call.settled(self.loop)
            raise
        assert call.outcome is not None
        return call.outcome.unwrap()


def current_guest_run() -> GuestRun | None:
    """The current loop's guest run, if one is running (for tests and diagnostics)."""
    return _RUNS.get(asyncio.get_running_loop())


_RUNS: dict[asyncio.AbstractEventLoop, GuestRun] = {}
"""The guest run of each loop that has one. Module state because trio allows one guest run per
host loop, whoever starts it: every ``livemesh.aio`` block of a loop must find the same one."""


@asynccontextmanager
async def guest_run() -> AsyncIterator[GuestRun]:
    """Use the current loop's guest run for the duration of the block (starting it if needed).

    When the last user leaves, the run is stopped and the exit waits until it has ended.
    """
    loop = asyncio.get_running_loop()
    while True:
        run = _RUNS.get(loop)
        if run is None:
            run = _RUNS[loop] = GuestRun(loop)
            try:
                run._start()
            except BaseException:
                run._forget()
                raise
        elif run._stopping:  # the last user left a moment ago: let that run end first
            await wait_uncancellably(run._finished)
            continue
        break
    await run._enter()
    try:
        yield run
    finally:
        await run._exit()


# ----------------------------------------------------------------------------- one call


class _Call(Generic[T]):
    """One asyncio -> trio call: the trio task fills ``outcome`` and resolves ``future``."""

    __slots__ = ("finished", "future", "outcome", "scope")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future
        self.scope = trio.CancelScope()
        self.outcome: outcome.Outcome[T] | None = None
        self.finished = False

    def finish(self, result: outcome.Outcome[T]) -> None:
        self.outcome = result
        self.finished = True
        if not self.future.done():
            self.future.set_result(None)

    async def settled(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait (ignoring further cancellation) until the trio task has finished."""
        while not self.finished:
            self.future = loop.create_future()
            try:
                await self.future
            except asyncio.CancelledError:
                continue


async def _run_call(
    call: _Call[T], fn: Callable[..., Awaitable[T]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    result: outcome.Outcome[T] = outcome.Error(GuestRunError("the call did not run"))
    try:
        with call.scope:
            result = await outcome.acapture(fn, *args, **kwargs)
        if isinstance(result, outcome.Error) and isinstance(result.error, trio.Cancelled):
            # cancelled by the guest run stopping (the asyncio caller's own cancellation never
            # looks at the result): asyncio code must not see trio's Cancelled
            result = outcome.Error(GuestRunError("livemesh's trio guest run stopped during the call"))
    finally:
        call.finish(result)


# ----------------------------------------------------------------------------- helpers


def _first_leaf(error: BaseException, types: tuple[type[BaseException], ...]) -> BaseException | None:
    """``error`` if it is one of ``types``, else the first such exception inside its groups."""
    if isinstance(error, types):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _first_leaf(inner, types)
            if found is not None:
                return found
    return None


async def wait_uncancellably(
    future: asyncio.Future[Any], on_cancel: Callable[[], object] | None = None
) -> bool:
    """Wait for ``future`` even if the task is cancelled meanwhile (``on_cancel`` is called on the
    first cancellation); True if it was."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            if not cancelled and on_cancel is not None:
                on_cancel()
            cancelled = True
    return cancelled
