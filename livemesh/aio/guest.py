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

* asyncio awaits trio: :meth:`GuestRun.call` runs one trio function in a task of the guest run's
  nursery; :class:`TrioBlock` holds a trio ``async with`` open for an asyncio ``async with``.
* trio awaits asyncio: :func:`run_on_loop` runs an asyncio coroutine function as an asyncio task
  and waits for it (tools, callbacks and handlers written for asyncio).

Cancellation crosses both ways. Cancelling the asyncio task that awaits a crossing cancels the
trio task doing the work (and waits for it to finish, so nothing is left running); cancelling the
trio side of :func:`run_on_loop` cancels the asyncio task. An error raised on one side is raised,
as the same object, on the other; trio's own ``Cancelled`` never reaches asyncio code.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Generic, TypeVar

import outcome
import trio

from livemesh.errors import LivemeshError

__all__ = [
    "GuestRun",
    "GuestRunError",
    "TrioBlock",
    "current_guest_run",
    "guest_run",
    "is_coroutine_function",
    "run_on_loop",
]

T = TypeVar("T")
V = TypeVar("V")


class GuestRunError(LivemeshError, RuntimeError):
    """livemesh's trio guest run ended while asyncio code still depended on it.

    It ends on its own only if something stopped it from outside: a ``KeyboardInterrupt`` that
    trio delivered (a loop without asyncio's own Ctrl-C handling), or the loop closing with a
    ``livemesh.aio`` block still open."""


def is_coroutine_function(func: object) -> bool:
    """Whether calling ``func`` returns a coroutine: an ``async def``, a ``functools.partial`` of
    one, or an object whose ``__call__`` is one."""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    return callable(func) and inspect.iscoroutinefunction(type(func).__call__)


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
        await _wait_uncancellably(self._finished)

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
            await _wait_uncancellably(run._finished)
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


# ----------------------------------------------------------------------------- one block


class TrioBlock(Generic[V]):
    """An asyncio ``async with`` that holds a trio ``async with`` open in the guest run.

    ``setup(value, nursery, run)`` (optional) turns what the trio block yields into what the
    asyncio block gets, and may start helper tasks in ``nursery``, which lives inside the trio
    block and is cancelled before it exits. ``failure(value)`` (optional) names an error to raise
    when the trio block ended without one and the body raised nothing (a session failure that a
    helper task consumed before asyncio code saw it).

    * The asyncio body's exception is raised inside the trio block, so the trio code sees how
      its body ended (an error closes a pool at once instead of gracefully), and raised again
      here unless the trio block raised something else.
    * If the trio block ends by itself while the asyncio body runs (a session failed and
      cancelled its block), the asyncio task is cancelled, and its ``CancelledError`` becomes
      the trio block's error when it leaves the body (the way ``asyncio.timeout`` turns its own
      cancellation into ``TimeoutError``).
    * Exiting waits for the trio block to exit. Cancelling the asyncio task meanwhile cancels
      the trio block's exit (as a cancelled trio task would), waits for it, and re-raises.
    """

    __slots__ = (
        "_body_active",
        "_body_error",
        "_body_error_raised",
        "_cancelled_task",
        "_cm",
        "_entered",
        "_entered_ok",
        "_error",
        "_failure",
        "_finished",
        "_leave",
        "_run",
        "_scope",
        "_setup",
        "_task",
        "_use",
        "_value",
    )

    def __init__(
        self,
        cm: AbstractAsyncContextManager[Any],
        setup: Callable[[Any, trio.Nursery, GuestRun], Awaitable[V]] | None = None,
        failure: Callable[[V], BaseException | None] | None = None,
    ) -> None:
        self._cm = cm
        self._setup = setup
        self._failure = failure
        self._use = guest_run()
        self._scope = trio.CancelScope()
        self._leave = trio.Event()
        self._body_error: BaseException | None = None
        self._body_error_raised = False
        self._body_active = False
        self._cancelled_task = False
        self._error: BaseException | None = None
        self._task: asyncio.Task[Any] | None = None
        self._entered_ok = False
        self._entered: asyncio.Future[None]
        self._finished: asyncio.Future[None]
        self._value: V

    async def __aenter__(self) -> V:
        use = self._use
        run = self._run = await use.__aenter__()
        try:
            self._task = asyncio.current_task()
            self._entered = run.loop.create_future()
            self._finished = run.loop.create_future()
            run.nursery.start_soon(self._hold)
            try:
                await self._entered
            except asyncio.CancelledError:
                self._scope.cancel()
                await _wait_uncancellably(self._finished)
                raise
            if self._finished.done():  # entering failed, or the trio block ended at once
                raise self._ended_error()
        except BaseException:
            await use.__aexit__(None, None, None)
            raise
        self._body_active = True
        return self._value

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._body_active = False
        try:
            if self._finished.done():
                return self._ended_early(exc)
            self._body_error = exc
            self._leave.set()
            cancelled = await _wait_uncancellably(self._finished, on_cancel=self._scope.cancel)
            error = self._error
            if exc is not None:
                exc.__traceback__ = tb  # drop the trio frames its re-raise inside the block added
            if cancelled:
                raise asyncio.CancelledError from error
            if error is None:
                if exc is None:
                    failure = self._failure(self._value) if self._failure is not None else None
                    if failure is not None:
                        raise failure
                    return False
                # The trio block suppressed the body's exception (if it ever saw it: it may have
                # ended by itself just before): so does this one, but never a cancellation.
                return self._body_error_raised and not isinstance(exc, asyncio.CancelledError)
            if error is exc:
                return False
            raise error
        finally:
            await self._use.__aexit__(None, None, None)

    def _ended_early(self, exc: BaseException | None) -> bool:
        """``__aexit__`` after the trio block ended by itself while the body ran (and the task was
        cancelled for it): its error replaces our own cancellation, or is raised if the body
        carried on to a normal end; the body's own exceptions propagate."""
        ours = False
        if self._cancelled_task and self._task is not None:
            ours = self._task.uncancel() == 0
        if exc is None or (isinstance(exc, asyncio.CancelledError) and ours):
            raise self._ended_error() from None
        return False

    def _ended_error(self) -> BaseException:
        """Why the trio block ended by itself: its error, or the failure ``failure`` names."""
        if self._error is not None:
            return self._error
        if self._failure is not None and self._entered_ok:
            error = self._failure(self._value)
            if error is not None:
                return error
        return GuestRunError("the trio block ended while its asyncio block was still running")

    async def _hold(self) -> None:
        """The trio task that holds the trio block open for the asyncio block."""
        error: BaseException | None = None
        try:
            with self._scope:
                async with self._cm as value:
                    async with trio.open_nursery() as nursery:
                        self._value = await self._setup(value, nursery, self._run) if self._setup else value
                        self._entered_ok = True
                        self._entered.set_result(None)
                        await self._leave.wait()
                        nursery.cancel_scope.cancel()
                    if self._body_error is not None:
                        self._body_error_raised = True
                        raise self._body_error
        except trio.Cancelled:
            # not this block's own scope (that one absorbs its Cancelled): the run is stopping
            error = GuestRunError("livemesh's trio guest run stopped while a block was open")
        except BaseException as exc:
            error = exc
        finally:
            self._error = error
            self._finished.set_result(None)
            if not self._entered.done():
                self._entered.set_result(None)
            elif self._body_active and self._task is not None and not self._task.done():
                self._cancelled_task = True
                self._task.cancel()


# ----------------------------------------------------------------------------- trio awaits asyncio


async def run_on_loop(
    loop: asyncio.AbstractEventLoop,
    func: Callable[..., Coroutine[Any, Any, T]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    context: contextvars.Context | None = None,
) -> T:
    """(trio side) Run the asyncio coroutine function ``func`` as an asyncio task, wait for it.

    The task runs in a copy of ``context`` (the one captured where the asyncio caller opened the
    session or pool, so its context variables are visible), or of the current one. Cancelling
    this trio call cancels the task and waits for it to finish. Returns what ``func`` returned,
    raises what it raised; a task cancelled from outside livemesh raises :class:`GuestRunError`.
    """
    ctx = (context if context is not None else contextvars.copy_context()).copy()
    task = loop.create_task(func(*args, **kwargs), context=ctx)
    done = trio.Event()
    task.add_done_callback(lambda _: done.set())
    try:
        await done.wait()
    except BaseException:
        task.cancel()
        with trio.CancelScope(shield=True):
            await done.wait()
        raise
    if task.cancelled():
        raise GuestRunError(f"the asyncio task running {getattr(func, '__name__', func)!r} was cancelled")
    return task.result()


class OnLoop:
    """An asyncio coroutine function made awaitable from trio: each call is one asyncio task.

    What ``livemesh.aio`` puts in a session's config in place of an asyncio tool or callback
    (the session awaits it like any ``async def``; :func:`run_on_loop` does the crossing).
    """

    __slots__ = ("__wrapped__", "_context", "_loop")

    def __init__(
        self,
        func: Callable[..., Coroutine[Any, Any, Any]],
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context,
    ) -> None:
        self.__wrapped__ = func
        self._loop = loop
        self._context = context

    def __repr__(self) -> str:
        return f"<on the asyncio loop: {self.__wrapped__!r}>"

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return await run_on_loop(self._loop, self.__wrapped__, args, kwargs, self._context)


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


async def _wait_uncancellably(
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
