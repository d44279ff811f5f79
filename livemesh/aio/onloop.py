"""trio awaits asyncio: an asyncio coroutine function run as an asyncio task from trio code.

What tools, callbacks, handle stores and handlers written for asyncio need: livemesh's trio code
awaits them where it runs, inside trio, and an asyncio coroutine must run on its loop instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import trio

from livemesh.aio.guest import GuestRunError

__all__ = ["OnLoop", "is_coroutine_function", "run_on_loop"]

T = TypeVar("T")


def is_coroutine_function(func: object) -> bool:
    """Whether calling ``func`` returns a coroutine: an ``async def``, a ``functools.partial`` of
    one, or an object whose ``__call__`` is one."""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    return callable(func) and inspect.iscoroutinefunction(type(func).__call__)


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
