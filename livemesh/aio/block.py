"""An asyncio ``async with`` that holds a trio ``async with`` open in the loop's guest run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, TypeVar

import trio

from livemesh.aio.guest import GuestRun, GuestRunError, guest_run, wait_uncancellably

__all__ = ["TrioBlock"]

V = TypeVar("V")


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
                await wait_uncancellably(self._finished)
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
            cancelled = await wait_uncancellably(self._finished, on_cancel=self._scope.cancel)
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
