"""The sans-I/O core as the stateful tests' client, driven synchronously.

:class:`CoreClient` plays the actor's part with no trio at all: what the actor's writer, reader,
mover and tool runner do with the core's decisions, it does in the same order, until nothing
more can happen (:meth:`CoreClient.settle`). Time is a number the test moves. So the stateful
machine (tests/session/stateful.py) can explore thousands of interleavings a second.
"""

from __future__ import annotations

import collections
from typing import Any

from livemesh import wire
from livemesh.errors import LivemeshError, ReconnectError
from livemesh.session import SessionConfig, SessionMetrics
from livemesh.session.builders import build_client_content, build_realtime_input
from livemesh.session.core import SessionCore, Step
from livemesh.session.core.core import CANCELS, TOOLS
from livemesh.session.core.ledger import PendingCall
from livemesh.session.lifecycle import core_config
from tests.session.servermodel import ServerConn, ServerModel, audio_payload, text_payload

WRITE_BATCH = 32


class CoreClient:
    """A session made of the core and this synchronous glue (see the module docstring)."""

    def __init__(self, model: ServerModel, config: SessionConfig) -> None:
        self.model = model
        self.config = config
        self.core = SessionCore(core_config(config.evolve(tools=[_lookup_declaration()])))
        self.clock = 0.0
        self.accepted: list[int] = []
        self.accepted_at: dict[int, float] = {}
        self.error: BaseException | None = None
        self.closed = False
        self._waiting: collections.deque[tuple[str, int, bool]] = collections.deque()
        self.conn: ServerConn | None = None
        self.permits = 0
        self.received_index = -1
        self.retry_at: float | None = None
        self.tools: collections.deque[tuple[PendingCall, float]] = collections.deque()
        self._fences = 0
        self._write_failed = False

    # ------------------------------------------------------------------ the connection manager

    def start(self) -> None:
        self.core.start()
        self._connect()
        self.settle()

    def _connect(self) -> None:
        core = self.core
        self.retry_at = None
        self._write_failed = False
        handle = core.dial(self.clock)
        self.model.now = self.clock
        self.conn = self.model.setup(handle)
        self.permits = 2  # setupComplete and the handle right after it
        self.received_index = -1
        data, _ = self.model.read_frame(self.conn)
        self.permits -= 1
        self.received_index += 1
        assert wire.decode_server(data).setup_complete is not None
        core.setup_answered(0.0, len(data))
        core.opened(self.clock)
        self._cancel_tools()

    def _lost(self) -> None:
        """The connection ended under the session: resume (after the retry delay) or end."""
        core = self.core
        self.conn = None
        try:
            attempt = core.lost(_dropped(), self.clock)
        except ReconnectError as exc:
            self._fail(exc)
            return
        if attempt is None:
            self._finish()
            return
        delay = 0.0 if attempt < 0 else self.config.retry.delay(attempt, lambda: 0.5)
        self.retry_at = self.clock + delay

    def _fail(self, exc: LivemeshError) -> None:
        self.core.fail(exc)
        self.error = exc
        self._finish()

    def _finish(self) -> None:
        if self.conn is not None:
            self.model.closed_by_client(self.conn)
            self.conn = None
        self.core.finish()
        self.closed = True

    # ------------------------------------------------------------------ one pass of every task

    def settle(self) -> None:
        """Run the glue until nothing more can happen without the test (or time) moving on."""
        for _ in range(100_000):
            if not self._pass():
                self.model.client_settled()
                return
        raise AssertionError("the core never settled")

    def _pass(self) -> bool:
        if self.closed:
            return False
        core = self.core
        moved = False
        if self.conn is None:
            if self.retry_at is not None and self.clock >= self.retry_at:
                if core.wants_connection(self.clock):
                    self._connect()
                    return True
                self._finish()
                return True
            if core.closing and not core.wants_connection(self.clock):
                self._finish()
                return True
            moved |= self._user()
            return moved
        moved |= self._user()
        moved |= self._write()
        moved |= self._read()
        moved |= self._move()
        conn = self.conn
        if conn is not None and not conn.alive and (self._write_failed or not conn.outbound):
            self._lost()
            return True
        return moved

    def _user(self) -> bool:
        """Blocked senders go on as room appears (first come, first served)."""
        core = self.core
        moved = False
        while self._waiting:
            if core.closing or core.finished:
                self._waiting.clear()  # SessionClosedError for each: not accepted
                return True
            if core.queued() >= core.queue_limit() + self.config.outbox_size:
                return moved
            kind, ident, flag = self._waiting.popleft()
            if kind == "audio":
                out = build_realtime_input(audio=audio_payload(ident, flag), manual_vad=False)
            else:
                out = build_client_content(text_payload(ident, call=flag), turn_complete=True)
            core.count_held(0)
            core.take(out)
            self.accepted.append(ident)
            self.accepted_at[ident] = self.clock
            moved = True
        return moved

    def _write(self) -> bool:
        core, conn = self.core, self.conn
        assert conn is not None
        moved = False
        while (write := core.next_write(self.clock, WRITE_BATCH)) is not None:
            moved = True
            self.model.now = self.clock
            token: bytes | None = None
            if not conn.alive:
                self._write_failed = True
                core.wrote(write, None, self.clock)
                return True
            for item in write.batch:
                self.model.wrote(conn, item.data)
            if write.fence:
                self._fences += 1
                token = b"fence-%d-%d" % (conn.number, self._fences)
                self.model.pinged(conn, token)
            core.wrote(write, token, self.clock)
        return moved

    def _read(self) -> bool:
        conn = self.conn
        assert conn is not None
        moved = False
        while conn.outbound and self.permits > 0 and self.conn is conn and not self.closed:
            self.permits -= 1
            data, arrived = self.model.read_frame(conn)
            self.received_index += 1
            message = wire.decode_server(data)
            flags = self.core.frame(
                message, self.clock, min(arrived, self.clock), self.received_index, len(data),
                fence_result=lambda token: conn.pongs.pop(token, None),
            )
            self._apply(flags)
            moved = True
            self._write()
            self._move()
        return moved

    def _apply(self, flags: int) -> None:
        core = self.core
        if flags & CANCELS:
            self._cancel_tools()
        if flags & TOOLS:
            for pending in core.tool_starts:
                self.tools.append((pending, self.clock))
            core.tool_starts.clear()
            core.callback_calls.clear()
        core.repeated_calls.clear()
        core.turn_latency = None

    def _cancel_tools(self) -> None:
        core = self.core
        cancelled = set(core.tool_cancels)
        core.tool_cancels.clear()
        if not cancelled:
            return
        running = [(p, t) for p, t in self.tools if p.id in cancelled]
        self.tools = collections.deque((p, t) for p, t in self.tools if p.id not in cancelled)
        for pending, _ in running:
            out = core.tool_stopped(pending.id, self.clock)
            if out is not None:
                core.take(out)

    def _move(self) -> bool:
        core, conn = self.core, self.conn
        if conn is None:
            return False
        step = core.tick(self.clock)
        if step is Step.LEAVE:
            core.leaving()
            self.model.closed_by_client(conn)
            self.conn = None
            core.left()
            self._connect()
            return True
        if step is Step.CLOSE:
            self._finish()
            return True
        return False

    # ------------------------------------------------------------------ what the test drives

    def now(self) -> float:
        return self.clock

    def next_timer(self) -> float:
        timers = [self.core.next_wake(self.clock) if self.conn is not None else float("inf")]
        if self.retry_at is not None:
            timers.append(self.retry_at)
        if self.core.closing:
            timers.append(self.core.close_deadline)
        return min((t for t in timers if t > self.clock), default=float("inf"))

    def advance_to(self, when: float) -> None:
        self.clock = max(self.clock, when)
        self.settle()

    def send_audio(self, ident: int, speech: bool) -> None:
        self._command("audio", ident, speech)

    def send_text(self, ident: int, call: bool = False) -> None:
        self._command("text", ident, call)

    def _command(self, kind: str, ident: int, flag: bool) -> None:
        if self.closed or self.core.closing:
            return
        self._waiting.append((kind, ident, flag))
        self.settle()

    def grant_reads(self, n: int) -> None:
        self.permits += n
        self.settle()

    def readable(self) -> int:
        return len(self.conn.outbound) if self.conn is not None else 0

    def unread_since(self) -> float | None:
        if self.conn is None or not self.conn.outbound:
            return None
        return self.conn.outbound[0][1]

    def finish_tool(self) -> bool:
        if not self.tools:
            return False
        pending, _ = self.tools.popleft()
        response = wire.FunctionResponse(id=pending.id, name=pending.call.name, response={"n": 1})
        out = self.core.tool_done(pending.id, response, self.clock)
        if out is not None:
            self.core.take(out)
        self.settle()
        return True

    def tool_started_at(self) -> float | None:
        return self.tools[0][1] if self.tools else None

    def rotate(self) -> None:
        if not self.closed and not self.core.closing:
            self.core.request_move("requested", None)
            self.settle()

    def begin_close(self) -> None:
        if not self.closed:
            self.core.request_close(self.clock)
            self.settle()

    def statistics(self) -> SessionMetrics:
        core = self.core
        core.counters.replay_overflow = core.replay.overflow
        return core.counters.snapshot(session_id="core", state=core.state.value)

    def stop(self) -> None:
        pass


def _dropped() -> Any:
    from livemesh.transport import ConnectionLostError

    return ConnectionLostError("the model dropped the connection", code=1006)


def _lookup_declaration() -> Any:
    from livemesh.session import function_tool

    async def lookup(n: int) -> dict[str, Any]:
        return {"n": n}

    return function_tool(lookup)
