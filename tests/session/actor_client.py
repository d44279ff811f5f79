"""The session actor as the stateful tests' client: a real :class:`~livemesh.session.Session`,
running in a trio loop of its own thread, talking to :class:`~tests.session.servermodel.ServerModel`
through :class:`ModelConnection`.

hypothesis.stateful rules are synchronous; each one here enters the trio thread
(``trio.from_thread.run``), does its step, and waits until every session task is blocked again
(``wait_all_tasks_blocked``), so a rule sees the session settled. Time is a
``trio.testing.MockClock`` that only the test moves, one pending deadline at a time.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio
import trio.testing

from livemesh.errors import LivemeshError, SessionError
from livemesh.session import Session, SessionConfig, SessionMetrics, function_tool
from livemesh.transport import CloseInfo, ConnectionLostError
from tests.session.conftest import NoKeepalive
from tests.session.servermodel import ServerConn, ServerModel, audio_payload, text_payload

T = TypeVar("T")


class TrioThread:
    """A trio loop in a daemon thread; :meth:`run` calls into it and waits for the result."""

    def __init__(self) -> None:
        self.clock = trio.testing.MockClock()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="stateful-trio")
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        try:
            trio.run(self._main, clock=self.clock)
        except BaseException as exc:  # reported by the next run()
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def run(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self._failure is not None:
            raise AssertionError("the trio loop died") from self._failure
        return trio.from_thread.run(afn, *args, trio_token=self.token)

    def close(self) -> None:
        if self._failure is None and self._thread.is_alive():

            async def stop() -> None:
                self._stop.set()

            trio.from_thread.run(stop, trio_token=self.token)
        self._thread.join(timeout=10)


class ModelConnection(NoKeepalive):
    """The :class:`~livemesh.transport.Connection` the session sees; the model is the peer.

    A frame the server emitted has *arrived*; the session reads it only when the test grants a
    read (``permits``), so reads lag as much as the test likes."""

    def __init__(self, model: ServerModel, handle_of: Callable[[bytes], str | None]) -> None:
        self.model = model
        self.conn: ServerConn | None = None
        self._handle_of = handle_of
        self.permits = 2  # setupComplete and the handle right after it
        self.arrived_after: float | None = None
        self.received_index = -1
        self._fences = 0
        self._wake = trio.Event()
        self.closed = False

    @property
    def close_info(self) -> CloseInfo | None:
        return None

    def _check(self) -> ServerConn:
        if self.closed or (self.conn is not None and not self.conn.alive):
            raise ConnectionLostError("the model dropped the connection", code=1006)
        assert self.conn is not None
        return self.conn

    async def send(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        if self.conn is None:
            self.model.now = trio.current_time()
            self.conn = self.model.setup(self._handle_of(data))
            self.wake()
            return
        conn = self._check()
        self.model.now = trio.current_time()
        self.model.wrote(conn, data)

    async def send_many(self, frames: list[bytes]) -> None:
        await trio.lowlevel.checkpoint()
        conn = self._check()
        self.model.now = trio.current_time()
        for data in frames:
            self.model.wrote(conn, data)

    async def send_fenced(self, frames: list[bytes]) -> bytes:
        await self.send_many(frames)
        conn = self._check()
        self._fences += 1
        token = b"fence-%d-%d" % (conn.number, self._fences)
        self.model.pinged(conn, token)
        return token

    def fence_result(self, token: bytes) -> int | None:
        if self.conn is None:
            return None
        return self.conn.pongs.pop(token, None)

    async def ping(self) -> None:
        await trio.lowlevel.checkpoint()

    def wake(self) -> None:
        self._wake.set()
        self._wake = trio.Event()

    def readable(self) -> int:
        conn = self.conn
        return len(conn.outbound) if conn is not None else 0

    async def receive(self) -> bytes:
        while True:
            conn = self.conn
            if self.closed:
                raise ConnectionLostError("closed", code=1000)
            if conn is not None and conn.outbound and self.permits > 0:
                self.permits -= 1
                data, arrived = self.model.read_frame(conn)
                self.arrived_after = arrived
                self.received_index += 1
                return data
            if conn is not None and not conn.alive and not conn.outbound:
                raise ConnectionLostError("the model dropped the connection", code=1006)
            await self._wake.wait()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        if self.conn is not None:
            self.model.now = trio.current_time()
            self.model.closed_by_client(self.conn)
        self.closed = True
        self.wake()


def _resume_handle(data: bytes) -> str | None:
    from livemesh import wire

    setup = wire.decode_client(data).setup
    assert setup is not None, "the first client message must be setup"
    resumption = setup.session_resumption
    return resumption.handle if resumption is not None else None


class ActorClient:
    """The real session actor, driven by the stateful test (see the module docstring)."""

    def __init__(self, model: ServerModel, config: SessionConfig) -> None:
        self.model = model
        self.trio = TrioThread()
        self.tools: collections.deque[tuple[trio.Event, float]] = collections.deque()
        self.accepted: list[int] = []
        self.accepted_at: dict[int, float] = {}
        self.connections: list[ModelConnection] = []
        self.error: BaseException | None = None
        self.closed = False

        async def lookup(n: int) -> dict[str, Any]:
            done = trio.Event()
            self.tools.append((done, trio.current_time()))
            await done.wait()
            return {"n": n}

        config = config.evolve(tools=[function_tool(lookup)])
        self.session = Session(config, connect=self._connect)
        self._commands: tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]] | None = None

    @asynccontextmanager
    async def _connect(self, url: str, headers: list[tuple[str, str]]) -> AsyncIterator[ModelConnection]:
        conn = ModelConnection(self.model, _resume_handle)
        self.connections.append(conn)
        try:
            yield conn
        finally:
            await conn.aclose()

    # ------------------------------------------------------------------ driving

    def start(self) -> None:
        self.trio.run(self._start)

    async def _start(self) -> None:
        self._commands = trio.open_memory_channel(10_000)

        async def run_session() -> None:
            try:
                await self.session.run()
            except LivemeshError as exc:
                self.error = exc

        async def user() -> None:
            assert self._commands is not None
            async for kind, ident, flag in self._commands[1]:
                try:
                    if kind == "audio":
                        await self.session.send_realtime_input(audio=audio_payload(ident, flag))
                    else:
                        await self.session.send_client_content(text_payload(ident, call=flag))
                except SessionError:
                    continue  # the session failed or closed: not accepted
                self.accepted.append(ident)
                self.accepted_at[ident] = trio.current_time()

        async def drain() -> None:
            try:
                async for _ in self.session:
                    pass
            except LivemeshError:
                pass

        self.trio.nursery.start_soon(run_session)
        self.trio.nursery.start_soon(user)
        self.trio.nursery.start_soon(drain)
        await trio.testing.wait_all_tasks_blocked()

    def settle(self) -> None:
        self.trio.run(self._settle)

    async def _settle(self) -> None:
        for conn in self.connections:
            conn.wake()
        await trio.testing.wait_all_tasks_blocked()
        self.model.now = trio.current_time()
        self.model.client_settled()

    def now(self) -> float:
        return self.trio.run(self._now)

    @staticmethod
    async def _now() -> float:
        return trio.current_time()

    def next_timer(self) -> float:
        return self.trio.run(self._next_timer)

    @staticmethod
    async def _next_timer() -> float:
        await trio.testing.wait_all_tasks_blocked()
        return trio.current_time() + trio.lowlevel.current_statistics().seconds_to_next_deadline

    def advance_to(self, when: float) -> None:
        """Move the clock to ``when`` (never past a pending deadline: call again for the rest)."""
        self.trio.run(self._advance_to, when)

    async def _advance_to(self, when: float) -> None:
        await trio.testing.wait_all_tasks_blocked()
        now = trio.current_time()
        if when > now:
            self.trio.clock.jump(when - now)
        await self._settle()

    def send_audio(self, ident: int, speech: bool) -> None:
        self.trio.run(self._command, ("audio", ident, speech))

    def send_text(self, ident: int, call: bool = False) -> None:
        self.trio.run(self._command, ("text", ident, call))

    async def _command(self, command: tuple[str, int, bool]) -> None:
        assert self._commands is not None
        self._commands[0].send_nowait(command)
        await self._settle()

    def grant_reads(self, n: int) -> None:
        self.trio.run(self._grant, n)

    async def _grant(self, n: int) -> None:
        if self.connections:
            conn = self.connections[-1]
            conn.permits += n
            conn.wake()
        await self._settle()

    def readable(self) -> int:
        return self.connections[-1].readable() if self.connections else 0

    def unread_since(self) -> float | None:
        """When the oldest frame the session has not read arrived (None: none waiting)."""
        if not self.connections or self.connections[-1].conn is None:
            return None
        outbound = self.connections[-1].conn.outbound
        return outbound[0][1] if outbound else None

    def finish_tool(self) -> bool:
        return self.trio.run(self._finish_tool)

    async def _finish_tool(self) -> bool:
        if not self.tools:
            return False
        self.tools.popleft()[0].set()
        await self._settle()
        return True

    def tool_started_at(self) -> float | None:
        return self.tools[0][1] if self.tools else None

    def rotate(self) -> None:
        self.trio.run(self._rotate)

    async def _rotate(self) -> None:
        async def rotate() -> None:
            try:
                await self.session.rotate()
            except LivemeshError:
                pass

        self.trio.nursery.start_soon(rotate)
        await self._settle()

    def begin_close(self) -> None:
        self.trio.run(self._begin_close)

    async def _begin_close(self) -> None:
        async def close() -> None:
            await self.session.aclose()
            self.closed = True

        self.trio.nursery.start_soon(close)
        await self._settle()

    def statistics(self) -> SessionMetrics:
        return self.session.statistics()

    def stop(self) -> None:
        self.trio.close()
