"""A scripted stand-in for the session actor, so supervision is tested without sockets.

``FakeConnect`` is what ``open_pool(connect=...)`` calls: it records every config it was given
and can be told to fail the next connects. A ``FakeSession`` offers what the pool uses of the real
``Session`` (``is_quiet``, ``connections``, ``wait_quiet``, ``rotate``, ``statistics``) and drives
the pool's hooks (``on_handle``, ``on_go_away``) when the test asks it to.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from livemesh import wire
from livemesh.session.config import SessionConfig
from livemesh.session.metrics import SessionCounters, SessionMetrics


class FakeSession:
    def __init__(self, config: SessionConfig, on_handle: Callable[[str], Awaitable[None] | None]) -> None:
        self.config = config
        self.on_handle = on_handle
        self.session_id = config.session_id or "fake"
        self.counters = SessionCounters(connections=1)
        self.rotated_at: list[float] = []
        self.closed = False
        self.generating = False
        self.resumable = False
        self.handle_value: str | None = None
        self.opened_at = trio.current_time()
        self._changed = trio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    @property
    def is_quiet(self) -> bool:
        return self.handle_value is not None and self.resumable and not self.generating

    @property
    def connections(self) -> int:
        return self.counters.connections

    async def wait_quiet(self) -> None:
        while not (self.is_quiet or self.closed):
            await self._changed.wait()

    def statistics(self) -> SessionMetrics:
        return self.counters.snapshot(session_id=self.session_id, state="open")

    async def rotate(self, reason: str = "requested") -> None:
        assert not self.generating, "rotated mid-generation"
        await trio.sleep(0.01)
        self.rotated_at.append(trio.current_time())
        self.counters.connections += 1
        self.counters.reconnects += 1
        self.counters.rotations += 1

    async def handle(self, handle: str) -> None:
        self.handle_value = handle
        self.resumable = True
        self.on_handle(handle)
        self._notify()
        await trio.lowlevel.checkpoint()

    async def generation(self) -> None:
        """A model turn starts: the service sends resumable=false, then content."""
        self.resumable = False
        self.generating = True
        self._notify()
        await trio.lowlevel.checkpoint()

    async def finish_generation(self, handle: str | None = "after-turn") -> None:
        """turnComplete, then (like the service) a fresh resumable handle."""
        self.generating = False
        self.counters.turns += 1
        self._notify()
        if handle is not None:
            await self.handle(handle)

    async def go_away(self, time_left: float) -> None:
        cb = self.config.callbacks.on_go_away
        assert cb is not None
        await cb(wire.GoAway(time_left=time_left))


@attrs.define
class FakeConnect:
    failures: list[BaseException] = attrs.Factory(list)
    configs: list[SessionConfig] = attrs.Factory(list)
    sessions: list[FakeSession] = attrs.Factory(list)
    open_now: int = 0
    opened: trio.Event = attrs.Factory(trio.Event)
    session_class: type[FakeSession] = FakeSession

    @asynccontextmanager
    async def __call__(
        self, config: SessionConfig, on_handle: Callable[[str], Awaitable[None] | None], rng: random.Random
    ) -> AsyncIterator[FakeSession]:
        self.configs.append(config)
        await trio.sleep(0.001)
        if self.failures:
            raise self.failures.pop(0)
        session = self.session_class(config, on_handle)
        self.sessions.append(session)
        self.open_now += 1
        self.opened.set()
        self.opened = trio.Event()
        try:
            yield session
        finally:
            self.open_now -= 1
            session.closed = True
            session._notify()


def config(**kw: object) -> SessionConfig:
    return SessionConfig(model="gemini-live-test", auth="test-key", session_resumption=True, **kw)  # type: ignore[arg-type]
