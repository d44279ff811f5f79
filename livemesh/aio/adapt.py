"""asyncio functions in a session's or pool's settings, made callable from the trio side.

livemesh's trio code awaits a tool's, a callback's or a handle store's coroutine where it runs:
inside trio. A coroutine written for asyncio (``await asyncio.sleep``, an asyncio database
client) must run on the asyncio loop instead, so ``livemesh.aio`` replaces each ``async``
function it is given by an :class:`~livemesh.aio.guest.OnLoop` before the settings reach trio.
Declarations are made from the original function first (name, docstring, signature), so the
model sees exactly what it would see under trio. Plain functions are left alone: the session
runs plain tools in a worker thread and calls plain callbacks on the loop's thread.

In ``livemesh.aio`` every ``async def`` you pass is taken as asyncio code.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from livemesh.aio.onloop import OnLoop, is_coroutine_function, run_on_loop
from livemesh.errors import ConfigError
from livemesh.pool import HandleStore, MemoryHandleStore, StoredHandle
from livemesh.session import Callbacks, FunctionTool, SessionConfig, function_tool

__all__ = ["LoopHandleStore", "adapt_callable", "adapt_config", "adapt_handle_store", "check_sync"]

F = TypeVar("F")


def adapt_callable(func: F, loop: asyncio.AbstractEventLoop, context: contextvars.Context) -> F:
    """``func`` itself if it is plain (or ``None``), else an :class:`OnLoop` that runs it on ``loop``."""
    if func is None or isinstance(func, OnLoop) or not is_coroutine_function(func):
        return func
    wrapped: Any = OnLoop(func, loop, context)  # type: ignore[arg-type]
    return wrapped  # type: ignore[no-any-return]


def _adapt_tool(spec: Any, loop: asyncio.AbstractEventLoop, context: contextvars.Context) -> Any:
    if isinstance(spec, FunctionTool):
        if spec.is_async and not isinstance(spec.func, OnLoop):
            return attrs.evolve(spec, func=OnLoop(spec.func, loop, context))
        return spec
    if callable(spec) and is_coroutine_function(spec):
        tool = function_tool(spec)  # declared from the asyncio function itself
        return attrs.evolve(tool, func=OnLoop(spec, loop, context))
    return spec


def adapt_config(
    config: SessionConfig, loop: asyncio.AbstractEventLoop, context: contextvars.Context
) -> SessionConfig:
    """``config`` with its asyncio tools and callbacks made to run on ``loop``.

    Raises:
        ConfigError: A tool cannot be declared (the same check ``SessionConfig`` makes).
    """
    changes: dict[str, Any] = {}
    tools = tuple(_adapt_tool(spec, loop, context) for spec in config.tools)
    if any(new is not old for new, old in zip(tools, config.tools, strict=True)):
        changes["tools"] = tools
    callbacks = {
        field.name: adapt_callable(getattr(config.callbacks, field.name), loop, context)
        for field in attrs.fields(Callbacks)
    }
    if any(value is not getattr(config.callbacks, name) for name, value in callbacks.items()):
        changes["callbacks"] = Callbacks(**callbacks)
    return config.evolve(**changes) if changes else config


class LoopHandleStore:
    """A :class:`~livemesh.pool.HandleStore` written for asyncio, used by the pool from trio: each
    method runs as an asyncio task on the loop (an asyncio database client stays on its loop)."""

    __slots__ = ("_context", "_loop", "store")

    def __init__(self, store: HandleStore, loop: asyncio.AbstractEventLoop, context: contextvars.Context):
        self.store = store
        self._loop = loop
        self._context = context

    def __repr__(self) -> str:
        return f"<on the asyncio loop: {self.store!r}>"

    async def save(self, conversation_id: str, handle: StoredHandle) -> bool:
        """Store ``handle`` unless a newer one is stored; True if stored."""
        return await run_on_loop(self._loop, self.store.save, (conversation_id, handle), {}, self._context)

    async def load(self, conversation_id: str) -> StoredHandle | None:
        """The newest unexpired handle of the conversation, or None."""
        return await run_on_loop(self._loop, self.store.load, (conversation_id,), {}, self._context)

    async def delete(self, conversation_id: str) -> None:
        """Forget the conversation."""
        await run_on_loop(self._loop, self.store.delete, (conversation_id,), {}, self._context)


def adapt_handle_store(
    store: HandleStore | None, loop: asyncio.AbstractEventLoop, context: contextvars.Context
) -> HandleStore | None:
    """An asyncio ``store`` wrapped to run on ``loop``; livemesh's in-memory store (no I/O, no
    loop) and ``None`` as they are."""
    if store is None or isinstance(store, MemoryHandleStore | LoopHandleStore):
        return store
    if not isinstance(store, HandleStore):
        raise ConfigError(f"handle_store must implement save, load and delete, not {type(store).__name__}")
    return LoopHandleStore(store, loop, context)


def check_sync(name: str, func: Callable[..., Any] | None) -> None:
    """Refuse an ``async`` function where livemesh calls a hook synchronously.

    Raises:
        ConfigError: ``func`` is a coroutine function (its coroutine would never run).
    """
    if func is not None and is_coroutine_function(func):
        raise ConfigError(
            f"{name} is called synchronously (it must not block): pass a plain function, not an async one"
        )
