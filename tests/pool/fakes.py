"""A scripted stand-in for the session actor, so supervision is tested without sockets.

``FakeConnect`` is what ``open_pool(connect=...)`` calls: it records every config it was given
and can be told to fail the next connects. A ``FakeSession`` feeds the pool's callbacks the way
the real session does (resumption updates, goAway, server messages) when the test asks it to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from livemesh import wire
from livemesh.session.config import SessionConfig
from livemesh.session.metrics import SessionCounters, SessionMetrics


class FakeSession:
    def __init__(self, config: SessionConfig, number: int) -> None:
        self.config = config
        self.number = number
        self.session_id = config.session_id or "fake"
        self.counters = SessionCounters(connections=1)
        self.rotated_at: list[float] = []
        self.closed = False
        self.generating = False
        self.opened_at = trio.current_time()

    @property
    def metrics(self) -> SessionMetrics:
        return self.counters.snapshot(session_id=self.session_id, state="open")

    async def rotate(self) -> None:
        assert not self.generating, "rotated mid-generation"
        await trio.sleep(0.01)
        self.rotated_at.append(trio.current_time())
        self.counters.connections += 1
        self.counters.rotations += 1

    async def handle(self, handle: str) -> None:
        cb = self.config.callbacks.on_session_resumption
        assert cb is not None
        await cb(wire.SessionResumptionUpdate(new_handle=handle, resumable=True))

    async def generation(self, resumable_after: bool = True) -> None:
        """A model turn as the pool sees it through callbacks: not resumable, content, complete."""
        on_resumption = self.config.callbacks.on_session_resumption
        on_message = self.config.callbacks.on_message
        assert on_resumption is not None and on_message is not None
        await on_resumption(wire.SessionResumptionUpdate(new_handle="", resumable=False))
        self.generating = True
        await on_message(
            wire.ServerMessage(
                server_content=wire.ServerContent(model_turn=wire.Content(parts=[wire.Part(text="x")]))
            )
        )

    async def finish_generation(self, handle: str | None = "after-turn") -> None:
        """turnComplete, then (like the service) a fresh resumable handle."""
        on_message = self.config.callbacks.on_message
        assert on_message is not None
        self.generating = False
        await on_message(wire.ServerMessage(server_content=wire.ServerContent(turn_complete=True)))
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

    @asynccontextmanager
    async def __call__(self, config: SessionConfig) -> AsyncIterator[FakeSession]:
        self.configs.append(config)
        await trio.sleep(0.001)
        if self.failures:
            raise self.failures.pop(0)
        session = FakeSession(config, len(self.sessions))
        self.sessions.append(session)
        self.open_now += 1
        self.opened.set()
        self.opened = trio.Event()
        try:
            yield session
        finally:
            self.open_now -= 1
            session.closed = True


def config(**kw: object) -> SessionConfig:
    return SessionConfig(model="gemini-live-test", auth="test-key", session_resumption=True, **kw)  # type: ignore[arg-type]
