"""The session actor: one Live session as trio tasks around bounded queues, moving itself between
connections without losing or doubling anything.

Tasks (all in nurseries the caller can see)::

    session nursery (only once a tool needs a task: most sessions have none)
      tool calls     one task per call, each in its own cancel scope
    connection manager (the body of Session.run): connect, setup, serve, move, retry
      connection nursery (one per WebSocket)
        reader     frames -> decode -> bookkeeping -> callbacks -> inbox -> async for
        writer     replay queue, tool answers, send queue -> the socket (one writer = ordering),
                   with a ping after bursts, user turns and a move's hold (ledger.BurstProofs)
        mover      waits for goAway / the connection's age / rotate() / close, then leaves cleanly
        keepalive  pings when idle (only where the engine cannot do it within receive)

Senders append to the send queue themselves (bounded: a full queue blocks them, in order). How
and when a session moves is in :mod:`livemesh.session.moving`; which sent messages a handle
covers, in :mod:`livemesh.session.ledger`.

Fatal errors (bad frames, refused setup, expired handle, retries exhausted) end the session with a
typed :class:`~livemesh.errors.SessionError`: raised by ``async for``/``receive``/``send_*``, by
``Session.run`` (the pool's entry point) and by the ``open_session`` block.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from livemesh import wire
from livemesh._groups import unwrap_group
from livemesh.auth import Auth, redact, secrets_of
from livemesh.endpoints import live_headers
from livemesh.errors import (
    ConfigError,
    DecodeError,
    LivemeshError,
    LocalProtocolError,
    ReconnectError,
    RemoteProtocolError,
    ServiceClosedError,
    SessionClosedError,
    SessionError,
    SetupRejectedError,
)
from livemesh.session.callbacks import call_callback
from livemesh.session.config import SessionConfig
from livemesh.session.core import CoreConfig, MovePhase, Outgoing, SessionCore, Step
from livemesh.session.core.core import CANCELS, HANDLE, LATENCY, MOVER, TOOLS, Opened
from livemesh.session.core.ledger import PendingCall
from livemesh.session.inbox import Inbox
from livemesh.session.metrics import SessionMetrics
from livemesh.session.moving import Epoch
from livemesh.session.sending import (
    build_client_content,
    build_realtime_input,
    build_tool_response,
    encode,
)
from livemesh.session.tools import FunctionTool, run_tool
from livemesh.session.turns import Turn, TurnBuilder
from livemesh.transport import Connection, ConnectionLostError, keepalive, open_connection

__all__ = ["HandleHook", "Session", "open_session"]

log = logging.getLogger("livemesh.session")

HandleHook = Callable[[str], Awaitable[None] | None]
"""Called with every new resumable handle (a handle store's ``save``)."""

ConnectFn = Callable[[str, list[tuple[str, str]]], Any]
"""``(url, headers) -> async context manager yielding a Connection`` (the transport seam)."""


_WRITE_BATCH = 32
"""At most this many queued messages go out in one write."""


class _SessionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['session_id'] if self.extra else '?'}] {msg}", kwargs


class Session:
    """One Live API session. Create it with :func:`open_session`, or for a supervisor::

        session = Session(config)
        await nursery.start(session.run)     # returns once the first setupComplete arrived
        ...
        await session.aclose()               # flush, close frame, tasks done

    Sending methods queue a message (waiting if the outbox is full) and return; receiving is
    ``async for message in session`` or the helpers :meth:`receive`, :meth:`receive_turn`.
    """

    def __init__(
        self,
        config: SessionConfig,
        *,
        on_handle: HandleHook | None = None,
        rng: random.Random | None = None,
        connect: ConnectFn | None = None,
        on_turn_latency: Callable[[float], None] | None = None,
    ) -> None:
        """``on_turn_latency`` (e.g. a histogram's ``observe``) is called synchronously with the
        seconds from a user turn's send to its ``turnComplete``; it must not block."""
        if not isinstance(config, SessionConfig):
            raise ConfigError(f"config must be a SessionConfig, not {type(config).__name__}")
        self.config = config
        self.session_id: str = config.session_id or "ls-" + secrets.token_hex(4)
        """livemesh's name for this session in logs and metrics (see also :attr:`server_session_id`)."""
        self.server_session_id: str | None = None
        self._log = _SessionLog(log, {"session_id": self.session_id})
        self._on_handle = on_handle
        self._on_turn_latency = on_turn_latency
        self._rng = rng  # made on first retry if not given: 2.5 KiB an idle session does not need
        self._connect: ConnectFn = connect or (
            lambda url, headers: open_connection(url, headers, options=config.transport)
        )
        self._auth: Auth | None = None
        self._tools: dict[str, FunctionTool] = {t.name: t for t in config.function_tools}
        self._core = SessionCore(core_config(config), resume_handle=config.resume_handle)
        self._manual_vad = self._core.config.manual_vad

        # No outbox channel and no pump task: senders append to the core themselves (one task
        # switch less per message, ~4 KB less per idle session); _send_line keeps them FIFO.
        self._send_line: deque[object] | None = None  # tokens of blocked senders, made on first wait
        self._send_closed = False
        # One bounded FIFO for both ends (see livemesh/session/inbox.py): ~1 KB less per session
        # than a memory channel pair, and no scheduling round per hand-over that does not wait.
        self._inbox_send = self._inbox_recv = Inbox[wire.ServerMessage](config.inbox_size)
        self._stash: wire.ServerMessage | None = None  # a delivery interrupted by a move
        self._scopes: dict[str, trio.CancelScope] = {}  # running tool calls

        self._error_seen = False
        self._changed = trio.Event()
        self._finished = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._epoch: Epoch | None = None
        self._body_scope: trio.CancelScope | None = None
        self._mover_wake = trio.Event()

    def __repr__(self) -> str:
        return f"<Session {self.session_id} {self.state} model={self.config.model!r}>"

    # ================================================================== public: state

    @property
    def state(self) -> str:
        """``new``, ``connecting``, ``open``, ``moving``, ``closing``, ``closed`` or ``failed``."""
        return self._core.state.value

    @property
    def _started(self) -> bool:
        return self._core.started

    @property
    def _error(self) -> LivemeshError | None:
        return self._core.error

    @property
    def resume_handle(self) -> str | None:
        """The newest resumable handle (never replaced by the empty one sent during generation)."""
        return self._core.handle

    @property
    def is_quiet(self) -> bool:
        """A good moment to move: connected, resumable handle, nothing generating, no call pending."""
        return self._core.is_quiet

    @property
    def is_idle(self) -> bool:
        """Nothing in flight: no generation, no tool call pending, no answer awaited."""
        return self._core.is_idle

    @property
    def error(self) -> LivemeshError | None:
        """Why the session failed (``None`` while healthy or after a normal close)."""
        return self._core.error

    def statistics(self) -> SessionMetrics:
        """A frozen snapshot of this session's counters (cheap; call it any time)."""
        core = self._core
        core.counters.replay_overflow = core.replay.overflow
        return core.counters.snapshot(session_id=self.session_id, state=self.state)

    metrics = property(statistics)

    @property
    def connections(self) -> int:
        """Connections this session has opened so far (``statistics().connections``, without the
        snapshot: a supervisor reads it on every handle to notice moves the session made itself)."""
        return self._core.counters.connections

    def _ended(self) -> bool:
        return self._core.finished

    async def wait_quiet(self) -> None:
        """Wait until :attr:`is_quiet` (for a supervisor choosing when to rotate)."""
        await self._wait_for(lambda: self.is_quiet or self._ended())

    async def rotate(self, reason: str = "requested", *, deadline: float | None = None) -> None:
        """Move to a fresh connection now (at the next quiet point) and wait until it is done.

        Nothing sent is lost or doubled and ``async for`` continues unbroken. ``deadline`` (a
        ``trio.current_time()`` value, e.g. when the pool knows the connection will be cut) bounds
        the waits for a quiet point and a fresh handle. Raises the session's error if it fails
        meanwhile, :class:`SessionClosedError` if it is closed.
        """
        self._check_open()
        target = self._core.moves_done + 1
        self._apply(self._core.request_move(reason, deadline))
        await self._wait_for(lambda: self._core.moves_done >= target or self._ended())
        self._check_open()

    async def wait_moved(self, moves: int = 1) -> None:
        """Wait until the session has moved to a new connection ``moves`` times in all (planned
        moves and reconnects after drops); returns at once if it already has.

        For tests and tools that trigger a move (``emu.send_go_away``) and need it done before
        checking something. Raises the session's error if it fails meanwhile,
        :class:`SessionClosedError` if it closes first.
        """
        if not isinstance(moves, int) or isinstance(moves, bool) or moves < 0:
            raise ConfigError(f"moves must be a non-negative int, not {moves!r}")
        await self._wait_for(lambda: self._core.moves_done >= moves or self._ended())
        if self._core.moves_done < moves:
            self._check_open()
            raise SessionClosedError("the session closed before moving")

    # ================================================================== public: sending

    async def send_client_content(self, turns: Any = None, *, turn_complete: bool = True) -> None:
        """Append ordered turns to the context (a str is one user turn); interrupts a generation."""
        await self._send(build_client_content(turns, turn_complete=turn_complete))

    async def send_realtime_input(
        self,
        *,
        audio: Any = None,
        video: Any = None,
        text: str | None = None,
        activity_start: bool = False,
        activity_end: bool = False,
        audio_stream_end: bool = False,
        audio_rate: int = 16000,
    ) -> None:
        """Stream one piece of realtime input: exactly one keyword per call.

        ``audio`` is 16-bit little-endian PCM at ``audio_rate`` Hz (16 kHz native), ``video`` an
        encoded frame (JPEG), ``text`` realtime text; the flags are VAD signals.
        """
        out = build_realtime_input(
            audio=audio,
            video=video,
            text=text,
            activity_start=activity_start,
            activity_end=activity_end,
            audio_stream_end=audio_stream_end,
            audio_rate=audio_rate,
            manual_vad=self._manual_vad,
        )
        await self._send(out)
        if video is not None:
            self._core.counters.video_frames += 1

    async def send_tool_response(self, responses: Any, *, scheduling: str | None = None) -> None:
        """Answer tool calls yourself (calls no registered function handles).

        Each id must be owed an answer: an unknown or already answered id raises
        :class:`LocalProtocolError`; an id the server cancelled is silently dropped.
        """
        self._check_open()
        built = build_tool_response(responses, scheduling=scheduling)
        out = self._core.user_answer(built, trio.current_time())
        self._cancel_tools()
        if out is not None:
            self._push(out)

    async def send(self, message: wire.ClientMessage) -> None:
        """Send a raw client message (escape hatch; tool responses should use send_tool_response)."""
        if not isinstance(message, wire.ClientMessage) or message.kind in ("", "setup"):
            raise ConfigError("send() takes a ClientMessage other than setup")
        if message.tool_response is not None:
            await self.send_tool_response(message.tool_response.function_responses or [])
            return
        await self._send(encode(message))

    def _has_room(self) -> bool:
        core = self._core
        return core.queued() < core.queue_limit() + self.config.outbox_size

    async def _send(self, out: Outgoing) -> None:
        """Queue ``out`` for the writer; wait (first come, first served) while the queue is full."""
        self._check_open()
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._send_closed and not self._send_line and self._has_room():
            self._push(out)
            return
        if self._send_line is None:
            self._send_line = deque()
        line = self._send_line
        token = object()
        line.append(token)
        try:
            await self._wait_for(lambda: self._send_closed or (line[0] is token and self._has_room()))
        finally:
            line.remove(token)
            self._notify()  # the next sender in line re-checks
        if self._send_closed:
            self._check_open()
            raise SessionClosedError("the session is closing")
        self._push(out)

    def _push(self, out: Outgoing) -> None:
        self._core.take(out)
        self._notify()
        if self._core.move.phase is not MovePhase.IDLE:
            self._wake_mover()

    def _check_open(self) -> None:
        error = self._core.error
        if error is not None:
            self._error_seen = True
            raise SessionClosedError(
                f"the session failed: {error}",
                code=getattr(error, "code", None),
                reason=getattr(error, "reason", None),
            ) from error
        if self._core.closing or self.state in ("closed", "closing"):
            raise SessionClosedError("the session is closed")

    # ================================================================== public: receiving

    async def receive(self) -> wire.ServerMessage:
        """The next server message; raises the session's error, or SessionClosedError when closed."""
        try:
            return await self._inbox_recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            if self._error is not None:
                self._error_seen = True
                raise self._error from None
            raise SessionClosedError("the session is closed") from None

    def __aiter__(self) -> AsyncIterator[wire.ServerMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[wire.ServerMessage]:
        while True:
            try:
                message = await self._inbox_recv.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                if self._error is not None:
                    self._error_seen = True
                    raise self._error from None
                return
            yield message

    async def receive_turn(self) -> Turn:
        """Collect messages up to the next ``turnComplete``: text, audio, transcripts, tool calls."""
        builder = TurnBuilder()
        while True:
            message = await self.receive()
            if builder.add(message):
                return builder.build()

    async def ask(self, text: str) -> str:
        """Send one user text turn and return the text (or output transcript) of the answer."""
        await self.send_client_content(text)
        turn = await self.receive_turn()
        return turn.text or turn.output_transcript

    # ================================================================== lifecycle

    async def aclose(self) -> None:
        """Flush what is queued (bounded by ``close_timeout``), send a close frame, end every task."""
        core = self._core
        if core.state.value == "new":
            core.request_close(trio.current_time())
            self._finished.set()
            return
        if not core.closing:
            self._send_closed = True
            self._apply(core.request_close(trio.current_time()))
            self._notify()
        await self._finished.wait()

    async def run(self, *, task_status: trio.TaskStatus[Session] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the session until it is closed (returns) or fails (raises a :class:`SessionError`).

        ``task_status.started(self)`` is called once the first connection is set up, so
        ``await nursery.start(session.run)`` returns a ready session; a setup failure is raised
        from ``nursery.start`` itself.
        """
        if self.state != "new":
            raise LocalProtocolError("a Session runs once")
        self._core.start()
        try:
            self._auth = self.config.resolved_auth()
            if not (self._tools or self.config.callbacks.on_tool_call is not None):
                # Nothing can start a task here (tool calls only run registered functions or the
                # on_tool_call callback): no nursery, ~1.5 KB less per session.
                try:
                    await self._manage(task_status)
                except LivemeshError as exc:
                    self._fail(exc)
            else:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    try:
                        await self._manage(task_status)
                    except LivemeshError as exc:
                        self._fail(exc)  # caught here, not as a group outside the nursery
                    finally:
                        nursery.cancel_scope.cancel()
        except LivemeshError as exc:
            self._fail(exc)
        finally:
            with trio.CancelScope(shield=True):
                await self._finish()
        if self._error is not None:
            raise self._error

    def _fail(self, exc: LivemeshError) -> None:
        if self._core.fail(self._scrubbed(exc)):
            self._log.warning("session failed: %s", self._core.error)

    def _scrubbed(self, exc: LivemeshError) -> LivemeshError:
        """``exc`` with any credential the server may have echoed replaced by ``<redacted>``."""
        secrets = secrets_of(self._auth) if self._auth is not None else ()
        text = str(exc)
        reason = getattr(exc, "reason", None)
        if not any(secret and (secret in text or (reason and secret in reason)) for secret in secrets):
            return exc
        clean: LivemeshError
        if isinstance(exc, SessionError):
            clean = type(exc)(
                redact(text, *secrets), code=exc.code, reason=redact(reason, *secrets) if reason else reason
            )
        else:
            clean = type(exc)(redact(text, *secrets))
        clean.__cause__ = None
        return clean

    async def _finish(self) -> None:
        self._core.finish()
        failed = self._error is not None
        self._inbox_send.close()
        self._send_closed = True
        self._notify()
        callbacks = self.config.callbacks
        if failed:
            await self._safe_callback(callbacks.on_error, self._error)
        await self._safe_callback(callbacks.on_close, self._error)
        self._finished.set()

    # ================================================================== connection manager

    async def _manage(self, task_status: trio.TaskStatus[Session]) -> None:
        """Connect, serve, move, retry: the session's life as a loop over connections."""
        core = self._core
        while True:
            if core.started and not core.wants_connection(trio.current_time()):
                return
            if core.closing and core.error is not None:
                return
            try:
                status = task_status if not core.started else None
                with trio.move_on_at(core.close_deadline if core.started else math.inf):
                    outcome = await self._connection(status)
                    if outcome == "close":
                        return
                    core.left()
                    continue
                return  # closing, and the flush found no time left
            except ConnectionLostError as exc:
                attempt = core.lost(exc, trio.current_time())
                if attempt is None:
                    return
                if attempt < 0:
                    delay = 0.0
                else:
                    if self._rng is None:
                        self._rng = random.Random()
                    delay = self.config.retry.delay(attempt, self._rng.random)
                self._log.info(
                    "connection lost (%s); reconnect attempt %d in %.3f s",
                    self._scrubbed(exc),
                    core.attempt,
                    delay,
                )
                self._notify()
                with trio.move_on_after(delay):
                    await self._wait_for(lambda: core.closing)

    async def _connection(self, task_status: trio.TaskStatus[Session] | None) -> str:
        """Connect, set up (resuming if we have a handle), serve until the connection ends."""
        assert self._auth is not None
        core = self._core
        config = self.config
        url = config.url(self._auth)
        headers = await live_headers(self._auth)
        handle = core.dial(trio.current_time())
        resuming = handle is not None
        async with self._connect(url, headers) as conn:
            try:
                try:
                    await self._handshake(conn, handle)
                except ServiceClosedError as exc:
                    # Before setupComplete a fatal close refuses the setup itself.
                    raise SetupRejectedError(str(exc), code=exc.code, reason=exc.reason) from None
            except SetupRejectedError as exc:
                if resuming and task_status is None:
                    raise ReconnectError(
                        f"resuming failed (handle expired or unknown?): {exc}",
                        code=exc.code,
                        reason=exc.reason,
                    ) from None
                raise
            opened = core.opened(trio.current_time())
            self._log_opened(opened)
            self._cancel_tools()
            if task_status is not None:
                task_status.started(self)
            self._notify()
            epoch = Epoch(scope=trio.CancelScope())
            self._epoch = epoch
            self._mover_wake = trio.Event()
            can_fence = getattr(conn, "send_fenced", None) is not None
            if not can_fence:
                core.proofs.disable()
            with epoch.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guard, epoch, self._reader(conn))
                    nursery.start_soon(self._guard, epoch, self._writer(conn))
                    nursery.start_soon(self._guard, epoch, self._mover(epoch))
                    # The sans-I/O engine keeps the connection alive from within the reader's
                    # receive: no keepalive task (~3 KB per idle session).
                    set_keepalive = getattr(conn, "set_keepalive", None)
                    if set_keepalive is None or not set_keepalive(
                        interval=config.keepalive_interval, pong_timeout=config.keepalive_timeout
                    ):
                        nursery.start_soon(
                            self._guard,
                            epoch,
                            keepalive(
                                conn,
                                interval=config.keepalive_interval,
                                pong_timeout=config.keepalive_timeout,
                                last_activity=lambda: self._last_activity,
                            ),
                        )
            self._epoch = None
            if epoch.error is not None:
                raise epoch.error
            if epoch.outcome is None:  # pragma: no cover - the epoch only ends via finish/fail
                raise ConnectionLostError("connection ended without a reason")
            await conn.aclose(1000, "")
            return epoch.outcome

    def _log_opened(self, opened: Opened) -> None:
        for pending in opened.void:
            self._log.info("tool call %s (%s) is void after resuming", pending.id, pending.call.name)
        plan = opened.plan
        if plan is not None and (plan.messages or plan.ambiguous or plan.dropped_void or plan.skipped):
            self._log.info(
                "replaying %d message(s), %d ambiguous, %d answered turns as history; %d media chunks "
                "skipped; %d void answers dropped",
                len(plan.messages),
                plan.ambiguous,
                plan.restored,
                plan.skipped,
                plan.dropped_void,
            )

    async def _guard(self, epoch: Epoch, coro: Awaitable[None]) -> None:
        try:
            await coro
        except LivemeshError as exc:
            epoch.fail(exc)

    async def _handshake(self, conn: Connection, handle: str | None) -> None:
        assert self._auth is not None
        setup = self.config.setup(self._auth, handle=handle)
        start = trio.current_time()
        await conn.send(wire.encode_client(wire.ClientMessage(setup=setup)))
        with trio.move_on_after(self.config.setup_timeout) as scope:
            raw = await conn.receive()
        if scope.cancelled_caught:
            raise ConnectionLostError(f"no setupComplete within {self.config.setup_timeout:g} s", code=1006)
        message = self._decode(raw)
        if message.setup_complete is None:
            raise RemoteProtocolError(f"expected setupComplete, got {message.kind or 'an empty message'}")
        self.server_session_id = message.setup_complete.session_id or self.server_session_id
        if self._core.setup_answered(trio.current_time() - start, len(raw)):
            self._deliver_nowait(message)

    # ================================================================== task: writer

    async def _writer(self, conn: Connection) -> None:
        # A writer that fell behind sends what queued up meanwhile in one write (one syscall, one
        # scheduling round for the lot) where the engine offers ``send_many`` (sans-I/O).
        send_many: Callable[[list[bytes]], Awaitable[None]] | None = getattr(conn, "send_many", None)
        # A ping owed after a burst, a user turn or a move's hold (BurstProofs) goes in the same
        # write as the last messages it follows; the reader reads its pong, nothing waits for it.
        send_fenced: Callable[[list[bytes]], Awaitable[bytes]] | None = getattr(conn, "send_fenced", None)
        core = self._core
        limit = _WRITE_BATCH if send_many is not None else 1
        while True:
            write = core.next_write(trio.current_time(), limit)
            if write is None:
                await self._wait_for(core.has_write)
                continue
            self._notify()  # room in the queue for a waiting sender
            token: bytes | None = None
            batch = write.batch
            try:
                if write.fence and send_fenced is not None:
                    token = await send_fenced([item.data for item in batch])
                elif len(batch) == 1 or send_many is None:
                    await conn.send(batch[0].data)
                else:
                    await send_many([item.data for item in batch])
            finally:
                flags = core.wrote(write, token, trio.current_time())
                self._apply(flags)

    def _wake_mover(self) -> None:
        self._mover_wake.set()

    # ================================================================== task: reader

    def _decode(self, raw: bytes | str) -> wire.ServerMessage:
        try:
            return wire.decode_server(raw, max_size=self.config.transport.max_message_bytes)
        except DecodeError as exc:
            self._core.counters.decode_errors += 1
            raise RemoteProtocolError(f"malformed server frame: {exc.reason}") from None

    async def _reader(self, conn: Connection) -> None:
        fence_result = getattr(conn, "fence_result", None)  # the pongs of the writer's fences
        core = self._core
        if self._stash is not None:
            stashed = self._stash
            try:
                await self._inbox_send.send(stashed)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass
            self._stash = None
        while True:
            raw = await conn.receive()
            now = trio.current_time()
            self._last_activity = now
            # When the frame arrived, not when it was read: the reader may have spent seconds
            # handing earlier messages to a slow consumer (see the core's handle dating).
            arrived = conn.arrived_after
            message = self._decode(raw)
            flags = core.frame(
                message,
                now,
                now if arrived is None else min(arrived, now),
                conn.received_index,
                len(raw),
                fence_result,
            )
            if flags:
                self._apply(flags)
            await self._callbacks(message, flags)
            await self._deliver(message)

    _last_activity = 0.0

    def _apply(self, flags: int) -> None:
        """Act on what the core decided (the flags of an event)."""
        if not flags:
            return
        core = self._core
        if flags & CANCELS:
            self._cancel_tools()
        if flags & TOOLS:
            self._start_tools()
        if flags & MOVER:
            self._wake_mover()
        if flags & LATENCY:
            latency, core.turn_latency = core.turn_latency, None
            if latency is not None and self._on_turn_latency is not None:
                try:
                    self._on_turn_latency(latency)
                except Exception as exc:
                    core.counters.callback_errors += 1
                    self._log.warning("on_turn_latency raised %s", type(exc).__name__)
        self._notify()

    async def _callbacks(self, message: wire.ServerMessage, flags: int) -> None:
        """The message's callbacks, in the order the bookkeeping ran."""
        callbacks = self.config.callbacks
        update = message.session_resumption_update
        if update is not None:
            if flags & HANDLE and self._on_handle is not None and update.new_handle:
                try:
                    await call_callback(self._on_handle, update.new_handle, log=self._log)
                except Exception as exc:
                    self._core.counters.callback_errors += 1
                    self._log.warning("handle hook raised %s", type(exc).__name__)
            await self._safe_callback(callbacks.on_session_resumption, update)
        content = message.server_content
        if content is not None:
            if content.input_transcription is not None:
                await self._safe_callback(callbacks.on_transcription, "input", content.input_transcription)
            if content.output_transcription is not None:
                await self._safe_callback(callbacks.on_transcription, "output", content.output_transcription)
        if message.tool_call_cancellation is not None:
            await self._safe_callback(
                callbacks.on_tool_call_cancellation, list(message.tool_call_cancellation.ids or [])
            )
        if message.go_away is not None:
            time_left = message.go_away.time_left
            self._log.info(
                "goAway: %.3f s left",
                float(time_left) if time_left is not None else self.config.limits.go_away_notice_s,
            )
            await self._safe_callback(callbacks.on_go_away, message.go_away)
        if message.voice_activity is not None:
            await self._safe_callback(callbacks.on_voice_activity, message.voice_activity)
        await self._safe_callback(callbacks.on_message, message)

    async def _deliver(self, message: wire.ServerMessage) -> None:
        if message.setup_complete is not None:
            return  # only the first connection's setupComplete reaches the user
        try:
            # With room in the inbox no scheduling round (the receiver is woken all the same): one
            # task step less per message. The reader still yields: receive() is a cancellation
            # point and waits (or yields every few reads) at the socket.
            self._inbox_send.send_nowait(message)
            return
        except trio.WouldBlock:
            pass
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return
        try:
            await self._inbox_send.send(message)
        except trio.Cancelled:
            self._stash = message  # moving on: the next connection's reader delivers it first
            raise
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def _deliver_nowait(self, message: wire.ServerMessage) -> None:
        try:
            self._inbox_send.send_nowait(message)
        except trio.WouldBlock:
            self._stash = message

    # ================================================================== task: mover

    async def _mover(self, epoch: Epoch) -> None:
        """Wait for a reason to leave this connection, then leave at the right moment (the core
        decides; this task only sleeps until the core's next deadline or an event)."""
        core = self._core
        was = core.move.phase
        while True:
            step = core.tick(trio.current_time())
            phase = core.move.phase
            if phase is not was:
                self._log_phase(was, phase)
                was = phase
                self._notify()
            if step is Step.LEAVE:
                core.leaving()
                self._log.info(
                    "moving to a new connection (%s) after %.3f s",
                    core.move.reason or "requested",
                    trio.current_time() - core.move.started_at,
                )
                epoch.finish("move")
                return
            if step is Step.CLOSE:
                epoch.finish("close")
                return
            wake = self._mover_wake
            with trio.move_on_at(core.next_wake(trio.current_time())):
                await wake.wait()
            if wake is self._mover_wake:
                self._mover_wake = trio.Event()

    def _log_phase(self, was: MovePhase, phase: MovePhase) -> None:
        core = self._core
        if phase is MovePhase.SEEKING and was is MovePhase.IDLE and core.move.reason == "timer":
            self._log.info("connection age limit: rotating")
        elif phase is MovePhase.HOLDING_EARLY:
            self._log.debug("holding input for the move while the model answers")
        elif phase is MovePhase.RELEASED:
            self._log.debug("the user is speaking: held input let through until the utterance ends")
        elif phase is MovePhase.SEEKING and was is MovePhase.HOLDING_EARLY:
            self._log.debug("no handle after the turn: held input let through")
        elif phase is MovePhase.LEAVING:
            if core.move.forced:
                self._log.debug("the connection's end is near: moving with the newest handle as it is")
            self._log.debug(
                "hold at %.4f, newest handle received at %.4f (arrived %.4f, frame %d), "
                "%d logged (newest sent at %.4f), forced: %s",
                core.move.hold_at,
                core.handle_received_at,
                core.handle_arrived_at,
                core.handle_index,
                len(core.replay),
                core.replay.newest_sent_at(),
                core.move.forced,
            )

    # ================================================================== tools

    def _start_tools(self) -> None:
        core = self._core
        for call_id in core.repeated_calls:
            self._log.warning("repeated tool call id %s ignored", call_id)
        core.repeated_calls.clear()
        starts, core.tool_starts = core.tool_starts, []
        batches, core.callback_calls = core.callback_calls, []
        for pending in starts:
            tool = self._tools[pending.call.name or ""]
            assert self._nursery is not None  # made by run() whenever tools are registered
            core.running_tools += 1
            self._nursery.start_soon(self._run_call, pending, tool)
        for calls in batches:
            assert self._nursery is not None  # made by run() whenever the callback is set
            self._nursery.start_soon(self._run_callback_calls, calls)

    def _cancel_tools(self) -> None:
        core = self._core
        for call_id in core.tool_cancels:
            scope = self._scopes.get(call_id)
            if scope is not None:
                scope.cancel()
        core.tool_cancels.clear()

    async def _run_call(self, pending: PendingCall, tool: FunctionTool) -> None:
        core = self._core
        response: wire.FunctionResponse | None = None
        with trio.CancelScope() as scope:
            self._scopes[pending.id] = scope
            try:
                response = await run_tool(tool, pending.call)
            finally:
                del self._scopes[pending.id]
        now = trio.current_time()
        if response is None:
            out = core.tool_stopped(pending.id, now)
        else:
            out = core.tool_done(pending.id, response, now)
        if out is not None:
            self._push(out)
        else:
            self._notify()

    async def _run_callback_calls(self, calls: list[wire.FunctionCall]) -> None:
        try:
            result = await call_callback(
                self.config.callbacks.on_tool_call, wire.ToolCall(function_calls=calls), log=self._log
            )
        except Exception as exc:
            self._core.counters.callback_errors += 1
            self._log.warning("on_tool_call raised %s; answering with errors", type(exc).__name__)
            result = [
                wire.FunctionResponse(
                    id=c.id, name=c.name, response={"error": f"{type(exc).__name__}: {exc}"}
                )
                for c in calls
            ]
            await self._safe_callback(self.config.callbacks.on_error, exc)
        if result is None:
            return  # the callback answers later with send_tool_response
        if (
            isinstance(result, tuple)
            and len(result) == 2
            and result[0] in ("tool_response", ":tool_response")
        ):
            result = result[1]  # the seed's {:tool_response, responses}
        try:
            out = build_tool_response(result)
        except ConfigError as exc:
            self._log.warning("on_tool_call returned an unusable value: %s", exc)
            return
        responses = out.message.tool_response.function_responses or [] if out.message.tool_response else []
        for answer in self._core.callback_answers(list(responses), trio.current_time()):
            self._push(answer)

    # ================================================================== small helpers

    def _notify(self) -> None:
        """Something changed: wake every task waiting in :meth:`_wait_for` to re-check."""
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    async def _safe_callback(self, fn: Any, *args: Any) -> None:
        if fn is None:
            return
        try:
            await call_callback(fn, *args, log=self._log)
        except Exception as exc:
            self._core.counters.callback_errors += 1
            self._log.warning(
                "callback %s raised %s", getattr(fn, "__name__", fn), type(exc).__name__, exc_info=True
            )
            if fn is not self.config.callbacks.on_error:
                try:
                    await call_callback(self.config.callbacks.on_error, exc, log=self._log)
                except Exception:
                    self._core.counters.callback_errors += 1


def core_config(config: SessionConfig) -> CoreConfig:
    """The core's view of ``config``."""
    rotation = config.rotation
    limits = config.limits
    activity = (
        config.realtime_input_config.automatic_activity_detection if config.realtime_input_config else None
    )
    return CoreConfig(
        transparent=config.transparent,
        resumption=config.resumption_enabled,
        prove_by_ping=rotation.prove_by_ping,
        hold_during_turn=rotation.hold_during_turn,
        on_go_away=rotation.on_go_away,
        timer=rotation.timer,
        margin_s=rotation.margin_s,
        quiet_timeout_s=rotation.quiet_timeout_s,
        handle_timeout_s=rotation.handle_timeout_s,
        settle_min_s=rotation.settle_min_s,
        settle_max_s=rotation.settle_max_s,
        connection_lifetime_s=limits.connection_lifetime_s,
        go_away_notice_s=limits.go_away_notice_s,
        close_timeout_s=config.close_timeout,
        hold_input_during_tool_calls=config.hold_input_during_tool_calls,
        cancel_tools_on_interrupt=config.cancel_tools_on_interrupt,
        manual_vad=bool(activity is not None and activity.disabled),
        hold_limit=config.hold_limit,
        replay_limit_bytes=config.replay_limit_bytes,
        max_attempts=config.retry.max_attempts,
        tools={t.name: t.non_blocking for t in config.function_tools},
        non_blocking_names=config.non_blocking_names,
        tool_callback=config.callbacks.on_tool_call is not None,
    )


# ====================================================================== open_session


@asynccontextmanager
async def open_session(
    config: SessionConfig | Mapping[str, Any] | None = None,
    /,
    *,
    on_handle: HandleHook | None = None,
    rng: random.Random | None = None,
    **options: Any,
) -> AsyncIterator[Session]:
    """Open a Live session for the duration of the block::

        async with livemesh.open_session(model="gemini-2.0-flash-live-001",
                                         response_modalities=["TEXT"]) as s:
            await s.send_client_content("Hello")
            turn = await s.receive_turn()

    ``config`` is a :class:`SessionConfig` or a dict of its options (seed or google-genai
    spellings); keyword ``options`` are merged in. The block's tasks run in a nursery that belongs
    to it; leaving the block flushes queued input, sends a close frame and ends every task. If the
    session fails, the block is cancelled and the :class:`SessionError` is raised from it.
    """
    session = Session(SessionConfig.build(config, **options), on_handle=on_handle, rng=rng)
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(_run_quietly, session)
            with trio.CancelScope() as body_scope:
                session._body_scope = body_scope
                try:
                    yield session
                except BaseException as exc:
                    body_error = exc
                    raise
            with trio.CancelScope(shield=True):
                await session.aclose()
    except BaseExceptionGroup as group:
        raise unwrap_group(group, body_error) from None
    if session.error is not None and not session._error_seen:
        raise session.error


async def _run_quietly(
    session: Session, *, task_status: trio.TaskStatus[Session] = trio.TASK_STATUS_IGNORED
) -> None:
    """``session.run`` for :func:`open_session`: a failure after start cancels the block instead of
    raising inside the nursery (the block then raises it, unwrapped)."""
    try:
        await session.run(task_status=task_status)
    except LivemeshError:
        if not session._started:
            raise
        if session._body_scope is not None:
            session._body_scope.cancel()
