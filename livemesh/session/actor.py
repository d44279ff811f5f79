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

Senders append to the send queue themselves (bounded: a full queue blocks them, in order). How
and when a session moves is in :mod:`livemesh.session.moving`; which sent messages a handle
covers, in :mod:`livemesh.session.ledger`.

Fatal errors (bad frames, refused setup, expired handle, retries exhausted) end the session with a
typed :class:`~livemesh.errors.SessionError`: raised by ``async for``/``receive``/``send_*``, by
``Session.run`` (the pool's entry point) and by the ``open_session`` block.
"""

from __future__ import annotations

import logging
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
from livemesh.session.inbox import Inbox
from livemesh.session.ledger import BurstProofs, PendingCall, ReplayLog, ToolLedger
from livemesh.session.metrics import SessionCounters, SessionMetrics
from livemesh.session.moving import Epoch, Moves
from livemesh.session.sending import (
    Outgoing,
    build_client_content,
    build_realtime_input,
    build_tool_response,
    encode,
)
from livemesh.session.tools import FunctionTool, run_tool
from livemesh.session.turns import Turn, TurnBuilder
from livemesh.transport import Connection, ConnectionLostError, open_connection

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


class Session(Moves):
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
        activity = (
            config.realtime_input_config.automatic_activity_detection
            if config.realtime_input_config
            else None
        )
        self._manual_vad = bool(activity is not None and activity.disabled)

        # No outbox channel and no pump task: senders append to _queue themselves (one task
        # switch less per message, ~4 KB less per idle session); _send_line keeps them FIFO.
        self._send_line: deque[object] | None = None  # tokens of blocked senders, made on first wait
        self._send_closed = False
        # One bounded FIFO for both ends (see livemesh/session/inbox.py): ~1 KB less per session
        # than a memory channel pair, and no scheduling round per hand-over that does not wait.
        self._inbox_send = self._inbox_recv = Inbox[wire.ServerMessage](config.inbox_size)
        self._queue: deque[Outgoing] = deque()  # queued by senders, waiting for the writer
        self._priority: list[Outgoing] = []  # tool answers (few): never held behind input
        # resent first on a new connection; a deque only once there is something to replay (an
        # empty deque is ~770 B, and most sessions never replay)
        self._replay_next: deque[Outgoing] | tuple[()] = ()
        self._stash: wire.ServerMessage | None = None  # a delivery interrupted by a move
        self._ledger = ToolLedger()
        self._replay = ReplayLog(limit_bytes=config.replay_limit_bytes)
        # bursts and user turns proven consumed by a ping (Gemini API; Vertex has exact indices)
        self._proofs = BurstProofs(enabled=not config.transparent and config.rotation.prove_by_ping)
        self._fence_result: Callable[[bytes], int | None] | None = None
        self._counters = SessionCounters()

        self._handle: str | None = config.resume_handle
        self._handle_epoch = 0
        self._handle_received_at = -1.0
        self._handle_arrived_at = -1.0
        self._resumable = False
        self._generating = False
        self._awaiting_reply_since: float | None = None
        self._turn_no = 0
        self._hold_planned = False
        self._early_hold_for: int | None = None  # the turn a move's early hold was taken for
        self._rtt = 0.0
        self._connect_s = 0.0  # a connection's set-up time (TCP, TLS, upgrade, setup), smoothed
        self._conn_index = -1
        self._sending = False
        self._connected = False

        self._state = "new"
        self._error: LivemeshError | None = None
        self._error_seen = False
        self._closing = False
        self._move_reason: str | None = None
        self._move_deadline: float | None = None
        self._moves_done = 0
        self._changed = trio.Event()
        self._finished = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._epoch: Epoch | None = None
        self._body_scope: trio.CancelScope | None = None
        self._started = False
        self._established = False
        self._move_started: float | None = None
        self._owed_after_turn: list[PendingCall] = []
        self._move_wanted = trio.Event()  # set by goAway, the timer, rotate() and aclose()
        self._triggers: list[int] = []  # indices of turn triggers sent since the last turnComplete
        self._answer_indices: list[int] = []  # indices of BLOCKING answers sent since then
        self._evidence_index = -1  # every message up to this index is known consumed (this connection)
        self._voiced = False  # audio went out since the last turnComplete, with the server's VAD on
        self._sure_triggers: list[int] = []  # indices of user turns sent whose turnComplete is owed
        # The answer text of the turn in progress while a user turn's answer is owed (model text,
        # else the output transcription): kept with that turn in the replay log once complete.
        self._answer_text: list[str] | None = None
        self._answer_heard: list[str] | None = None
        self._turn_called = False  # the turn in progress made a tool call: its answer is not plain text
        # Whether the turn in progress answers the user's outstanding turns: None until its first
        # content, then whether a trigger was outstanding when it began (an unprompted turn, e.g. a
        # NON_BLOCKING tool's result, does not); and whether it was interrupted (its turnComplete
        # then ends it, not the turn the interruption was for).
        self._turn_answers: bool | None = None
        self._turn_interrupted = False
        self._rx_seq = 0  # server messages received so far (all connections): orders evidence
        self._handle_seq = -1  # _rx_seq of the newest resumable handle
        self._unresumable_seq = -1  # _rx_seq of the newest "not resumable" update
        self._effect_seq = 0  # _rx_seq of the newest turnComplete (an effect the user has seen)
        self._lag = 0.0  # trigger sent -> first answer received: round trip plus server backlog
        self._lag_samples: list[float] = []  # the last few (their max is _lag: backlog comes in bursts)
        self._conn_deadline = float("inf")  # when the service cuts the current connection
        self._final_scope: tuple[trio.CancelScope, float] | None = None  # a move's deadline, its start
        self._rx_index = -1  # the engine's arrival number of the frame being processed
        self._handle_index = -1  # ... of the newest resumable handle
        self._fence: tuple[int, float] | None = None  # (frames before our ping's pong, ping sent at)
        self._leaving = False  # a move decided its handle and replay: later handles are ignored
        self._non_blocking_names = config.non_blocking_names

    def __repr__(self) -> str:
        return f"<Session {self.session_id} {self._state} model={self.config.model!r}>"

    # ================================================================== public: state

    @property
    def state(self) -> str:
        """``new``, ``connecting``, ``open``, ``moving``, ``closing``, ``closed`` or ``failed``."""
        return self._state

    @property
    def resume_handle(self) -> str | None:
        """The newest resumable handle (never replaced by the empty one sent during generation)."""
        return self._handle

    @property
    def is_quiet(self) -> bool:
        """A good moment to move: connected, resumable handle, nothing generating, no call pending."""
        return (
            self._connected
            and self._handle is not None
            and self._resumable
            and not self._generating
            and self._awaiting_reply_since is None
            and not len(self._ledger)
        )

    @property
    def is_idle(self) -> bool:
        """Nothing in flight: no generation, no tool call pending, no answer awaited."""
        return not self._generating and not len(self._ledger) and self._awaiting_reply_since is None

    @property
    def error(self) -> LivemeshError | None:
        """Why the session failed (``None`` while healthy or after a normal close)."""
        return self._error

    def statistics(self) -> SessionMetrics:
        """A frozen snapshot of this session's counters (cheap; call it any time)."""
        self._counters.replay_overflow = self._replay.overflow
        return self._counters.snapshot(session_id=self.session_id, state=self._state)

    metrics = property(statistics)

    @property
    def connections(self) -> int:
        """Connections this session has opened so far (``statistics().connections``, without the
        snapshot: a supervisor reads it on every handle to notice moves the session made itself)."""
        return self._counters.connections

    async def wait_quiet(self) -> None:
        """Wait until :attr:`is_quiet` (for a supervisor choosing when to rotate)."""
        await self._wait_for(lambda: self.is_quiet or self._state in ("closed", "failed"))

    async def rotate(self, reason: str = "requested", *, deadline: float | None = None) -> None:
        """Move to a fresh connection now (at the next quiet point) and wait until it is done.

        Nothing sent is lost or doubled and ``async for`` continues unbroken. ``deadline`` (a
        ``trio.current_time()`` value, e.g. when the pool knows the connection will be cut) bounds
        the waits for a quiet point and a fresh handle. Raises the session's error if it fails
        meanwhile, :class:`SessionClosedError` if it is closed.
        """
        self._check_open()
        target = self._moves_done + 1
        self._request_move(reason, deadline)
        await self._wait_for(lambda: self._moves_done >= target or self._state in ("closed", "failed"))
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
        await self._wait_for(lambda: self._moves_done >= moves or self._state in ("closed", "failed"))
        if self._moves_done < moves:
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
            self._counters.video_frames += 1

    async def send_tool_response(self, responses: Any, *, scheduling: str | None = None) -> None:
        """Answer tool calls yourself (calls no registered function handles).

        Each id must be owed an answer: an unknown or already answered id raises
        :class:`LocalProtocolError`; an id the server cancelled is silently dropped.
        """
        self._check_open()
        out = build_tool_response(responses, scheduling=scheduling)
        states = {call_id: self._ledger.state(call_id) for call_id in out.call_ids}
        bad = {cid: st for cid, st in states.items() if st not in ("pending", "cancelled", "void")}
        if bad:
            raise LocalProtocolError(f"no answer is owed for call id(s) {bad}")
        owed = [cid for cid, st in states.items() if st == "pending"]
        if len(owed) != len(out.call_ids):
            responses_list = (
                out.message.tool_response.function_responses or [] if out.message.tool_response else []
            )
            kept = [r for r in responses_list if r.id in owed]
            if not kept:
                return
            out = encode(
                wire.ClientMessage(tool_response=wire.ToolResponse(function_responses=kept)), tuple(owed)
            )
        now = trio.current_time()
        for call_id in owed:
            pending = self._ledger.answer(call_id)
            if pending is not None:
                self._counters.tool_done(now - pending.received_at)
                out.blocking_answer = out.blocking_answer or pending.blocking
        self._push_priority(out)

    async def send(self, message: wire.ClientMessage) -> None:
        """Send a raw client message (escape hatch; tool responses should use send_tool_response)."""
        if not isinstance(message, wire.ClientMessage) or message.kind in ("", "setup"):
            raise ConfigError("send() takes a ClientMessage other than setup")
        if message.tool_response is not None:
            await self.send_tool_response(message.tool_response.function_responses or [])
            return
        await self._send(encode(message))

    def _has_room(self) -> bool:
        return len(self._queue) < self._queue_limit() + self.config.outbox_size

    async def _send(self, out: Outgoing) -> None:
        """Queue ``out`` for the writer; wait (first come, first served) while the queue is full.

        A cancellation point, but a schedule point only when it has to wait: the writer is woken
        and the caller carries on (a producer that never waits still yields once the queue holds
        ``outbox_size`` messages beyond the writer's window).
        """
        self._check_open()
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._send_closed and not self._send_line and self._has_room():
            self._enqueue(out)
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
        self._enqueue(out)

    def _enqueue(self, out: Outgoing) -> None:
        self._queue.append(out)
        if self._holding():
            self._counters.held += 1
            self._counters.held_max = max(self._counters.held_max, len(self._queue))
        self._notify()

    def _check_open(self) -> None:
        if self._error is not None:
            self._error_seen = True
            raise SessionClosedError(
                f"the session failed: {self._error}",
                code=getattr(self._error, "code", None),
                reason=getattr(self._error, "reason", None),
            ) from self._error
        if self._closing or self._state in ("closed", "closing"):
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
        if self._state in ("new",):
            self._state = "closed"
            self._finished.set()
            return
        if not self._closing:
            self._closing = True
            self._send_closed = True
            self._move_wanted.set()
            self._notify()
        await self._finished.wait()

    async def run(self, *, task_status: trio.TaskStatus[Session] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the session until it is closed (returns) or fails (raises a :class:`SessionError`).

        ``task_status.started(self)`` is called once the first connection is set up, so
        ``await nursery.start(session.run)`` returns a ready session; a setup failure is raised
        from ``nursery.start`` itself.
        """
        if self._state != "new":
            raise LocalProtocolError("a Session runs once")
        self._state = "connecting"
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
        if self._error is None:
            self._error = self._scrubbed(exc)
            self._log.warning("session failed: %s", self._error)

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
        failed = self._error is not None
        self._state = "failed" if failed else "closed"
        self._connected = False
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
        retry = self.config.retry
        attempt = 0
        planned = False
        while True:
            if self._closing and (self._started or self._error is not None):
                return
            resuming = self._handle is not None
            handle_epoch = self._handle_epoch
            self._established = False
            try:
                status = task_status if not self._started else None
                outcome = await self._connection(status, resuming, handle_epoch)
            except ConnectionLostError as exc:
                self._connected = False
                if self._closing:
                    return
                if self._established:
                    attempt = 0  # that connection worked: this is a new failure, not a retry
                    self._counters.drops += 1
                if self._started and not self.config.resumption_enabled:
                    raise ReconnectError(
                        f"connection lost and session resumption is off: {exc}",
                        code=exc.code,
                        reason=exc.reason,
                    ) from None
                if self._started and self._handle is None:
                    raise ReconnectError(
                        f"connection lost before the server issued any resumption handle: {exc}",
                        code=exc.code,
                        reason=exc.reason,
                    ) from None
                if attempt >= retry.max_attempts:
                    raise ReconnectError(
                        f"gave up after {attempt} reconnect attempts: {exc}", code=exc.code, reason=exc.reason
                    ) from None
                if self._rng is None:
                    self._rng = random.Random()
                delay = 0.0 if (planned and attempt == 0) else retry.delay(attempt, self._rng.random)
                attempt += 1
                self._state = "connecting"
                self._log.info(
                    "connection lost (%s); reconnect attempt %d in %.3f s",
                    self._scrubbed(exc),
                    attempt,
                    delay,
                )
                with trio.move_on_after(delay):
                    await self._wait_for(lambda: self._closing)
                planned = False
                continue
            attempt = 0
            if outcome == "close":
                return
            planned = True

    async def _connection(
        self, task_status: trio.TaskStatus[Session] | None, resuming: bool, handle_epoch: int
    ) -> str:
        """Connect, set up (resuming if we have a handle), serve until the connection ends."""
        assert self._auth is not None
        config = self.config
        url = config.url(self._auth)
        headers = await live_headers(self._auth)
        handle = self._handle
        self._state = "connecting" if task_status is not None else "moving"
        dialled = trio.current_time()
        async with self._connect(url, headers) as conn:
            try:
                try:
                    await self._handshake(conn, handle)
                except ServiceClosedError as exc:
                    # Before setupComplete a fatal close refuses the setup itself.
                    raise SetupRejectedError(str(exc), code=exc.code, reason=exc.reason) from None
            except SetupRejectedError as exc:
                if resuming and handle is not None and task_status is None:
                    raise ReconnectError(
                        f"resuming failed (handle expired or unknown?): {exc}",
                        code=exc.code,
                        reason=exc.reason,
                    ) from None
                raise
            self._established = True
            took = trio.current_time() - dialled
            self._connect_s = took if self._connect_s == 0 else 0.7 * self._connect_s + 0.3 * took
            self._after_setup(resuming, handle_epoch)
            if task_status is not None:
                self._started = True
                task_status.started(self)
            self._state = "open"
            self._connected = True
            self._notify()
            epoch = Epoch(scope=trio.CancelScope())
            self._epoch = epoch
            # The service's clock starts when it answers the setup, a one-way trip before now.
            # (Counting from when the setup was sent erred early by a whole backlogged round trip
            # and forced moves mid-turn; a goAway still brings the end forward when it comes.)
            connected_at = trio.current_time() - self._rtt / 2
            self._conn_deadline = connected_at + config.limits.connection_lifetime_s
            last_activity = [trio.current_time()]
            with epoch.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guard, epoch, self._reader(conn, last_activity))
                    nursery.start_soon(self._guard, epoch, self._writer(conn))
                    nursery.start_soon(self._guard, epoch, self._mover(epoch, connected_at))
                    # The engine keeps the connection alive from within the reader's receive:
                    # no keepalive task (~3 KB per idle session).
                    conn.set_keepalive(
                        interval=config.keepalive_interval, pong_timeout=config.keepalive_timeout
                    )
            self._epoch = None
            self._connected = False
            if epoch.error is not None:
                raise epoch.error
            if epoch.outcome is None:  # pragma: no cover - the epoch only ends via finish/fail
                raise ConnectionLostError("connection ended without a reason")
            if epoch.outcome in ("move", "close"):
                await self._wait_writer_idle()
                await conn.aclose(1000, "")
            return epoch.outcome

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
        rtt = trio.current_time() - start
        self._rtt = rtt if self._rtt == 0 else 0.7 * self._rtt + 0.3 * rtt
        self.server_session_id = message.setup_complete.session_id or self.server_session_id
        self._counters.connections += 1
        self._counters.messages_in += 1
        self._counters.bytes_in += len(raw)
        if self._counters.connections == 1:
            self._deliver_nowait(message)

    def _after_setup(self, resumed: bool, handle_epoch: int) -> None:
        """Decide what the new connection must resend before anything else (synchronously)."""
        self._conn_index = -1
        self._evidence_index = -1
        self._voiced = False
        self._triggers = []
        self._sure_triggers = []
        self._answer_indices = []
        self._generating = False
        self._awaiting_reply_since = None
        self._answer_text = self._answer_heard = None
        self._turn_called = False
        self._turn_answers = None
        self._turn_interrupted = False
        self._resumable = False
        if self._counters.connections > 1:
            self._counters.reconnects += 1
        void = self._ledger.void_after(handle_epoch) if resumed else []
        for pending in void:
            self._log.info("tool call %s (%s) is void after resuming", pending.id, pending.call.name)
        self._counters.void_calls += len(void)
        plan = self._replay.plan(
            void_call_ids={p.id for p in void},
            exact=self.config.transparent,
            likely_lag=self._settle(),
            unproven_from=self._proofs.unproven_from,
        )
        if plan.messages or plan.ambiguous or plan.dropped_void or plan.skipped:
            self._log.info(
                "replaying %d message(s), %d ambiguous, %d answered turns as history; %d media chunks "
                "skipped; %d void answers dropped",
                len(plan.messages),
                plan.ambiguous,
                plan.restored,
                plan.skipped,
                plan.dropped_void,
            )
        replay = [encode(m, _answered_ids(m)) for m in plan.messages]
        self._handle_index = -1
        self._leaving = False
        self._proofs.reset()
        if replay:
            if not isinstance(self._replay_next, deque):
                self._replay_next = deque()
            self._replay_next.extendleft(reversed(replay))
        self._counters.replayed += len(plan.messages)
        self._counters.replay_ambiguous += plan.ambiguous
        self._counters.replay_skipped += plan.skipped
        self._counters.replay_restored += plan.restored
        # Answers queued for calls that are now void must not be sent either.
        if void:
            void_ids = {p.id for p in void}
            self._priority = [o for o in self._priority if not (set(o.call_ids) & void_ids)]
        now = trio.current_time()
        if self._move_started is not None:
            self._counters.move_stall(now - self._move_started)
            self._move_started = None
        if self._counters.connections > 1:
            self._moves_done += 1
        self._move_reason = None
        self._move_deadline = None
        self._hold_planned = False
        if not self._closing:
            self._move_wanted = trio.Event()

    # ================================================================== task: writer

    def _holding(self) -> bool:
        return self._hold_planned or not self._connected or self._tool_hold()

    def _tool_hold(self) -> bool:
        return self.config.hold_input_during_tool_calls and self._ledger.blocking_pending

    def _queue_limit(self) -> int:
        return self.config.hold_limit if self._holding() else 1

    def _has_sendable(self) -> bool:
        if self._replay_next or self._priority:
            return True
        if self._hold_planned or not self._queue:
            return False
        if self._tool_hold():
            return any(out.message.realtime_input is None for out in self._queue)
        return True

    def _next_to_send(self) -> Outgoing | None:
        if isinstance(self._replay_next, deque) and self._replay_next:
            return self._replay_next.popleft()
        if self._priority:
            return self._priority.pop(0)
        if self._hold_planned or not self._queue:
            return None
        if self._tool_hold():
            # Only realtime input waits for the answer; a clientContent may
            # overtake it (the API orders the two kinds independently anyway) and interrupt.
            for index, out in enumerate(self._queue):
                if out.message.realtime_input is None:
                    del self._queue[index]
                    self._notify()
                    return out
            return None
        out = self._queue.popleft()
        self._notify()  # room in the queue for a waiting sender
        return out

    async def _writer(self, conn: Connection) -> None:
        # A writer that fell behind sends what queued up meanwhile in one write (one syscall, one
        # scheduling round for the lot) where the engine offers ``send_many`` (sans-I/O).
        send_many = conn.send_many
        # A ping owed after a burst, a user turn or a move's hold (BurstProofs) goes in the same
        # write as the last messages it follows; the reader reads its pong, nothing waits for it.
        send_fenced = conn.send_fenced
        proofs = self._proofs
        while True:
            out = self._next_to_send()
            batch: list[Outgoing] = []
            if out is not None:
                batch.append(out)
                while len(batch) < _WRITE_BATCH and (more := self._next_to_send()) is not None:
                    batch.append(more)
            elif not proofs.wants_fence():
                await self._wait_for(self._writer_has_work)
                continue
            # (an empty batch: caught up with a ping owed and nothing to carry it, e.g. a move's)
            now = trio.current_time()
            first = self._conn_index + 1
            prove = False  # a user turn is in the batch: a ping after it proves it consumed
            for item in batch:
                self._conn_index += 1
                self._replay.append(item.message, index=self._conn_index, sent_at=now, size=len(item.data))
                if item.triggers_turn:
                    self._awaiting_reply_since = now
                    self._triggers.append(self._conn_index)
                    if item.expects_reply:
                        self._sure_triggers.append(self._conn_index)
                        prove = True
                elif item.blocking_answer:
                    self._answer_indices.append(self._conn_index)
                elif not self._manual_vad and item.message.realtime_input is not None:
                    self._voiced = True
            last = self._conn_index
            more_waiting = self._has_sendable()
            proofs.writing(first, last, burst=len(batch) > 1 or more_waiting, prove=prove)
            # Fence once caught up: a ping after every message of a burst, not after each batch.
            fence = not more_waiting and proofs.wants_fence()
            self._sending = True
            try:
                if fence:
                    proofs.fence_sent(await send_fenced([item.data for item in batch]), last)
                elif len(batch) == 1:
                    await conn.send(batch[0].data)
                else:
                    await send_many([item.data for item in batch])
                proofs.written(last)
            finally:
                self._sending = False
                if self._closing or self._move_reason is not None:
                    self._notify()
            self._counters.messages_out += len(batch)
            self._counters.bytes_out += sum(len(item.data) for item in batch)

    def _writer_has_work(self) -> bool:
        return self._has_sendable() or self._proofs.wants_fence()

    async def _wait_writer_idle(self) -> None:
        with trio.move_on_after(1.0):
            await self._wait_for(lambda: not self._sending)

    def _push_priority(self, out: Outgoing) -> None:
        self._priority.append(out)
        self._notify()

    # ================================================================== task: reader

    def _decode(self, raw: bytes | str) -> wire.ServerMessage:
        try:
            return wire.decode_server(raw, max_size=self.config.transport.max_message_bytes)
        except DecodeError as exc:
            self._counters.decode_errors += 1
            raise RemoteProtocolError(f"malformed server frame: {exc.reason}") from None

    async def _reader(self, conn: Connection, last_activity: list[float]) -> None:
        self._fence_result = conn.fence_result  # the pongs of the writer's fences
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
            # When the frame arrived, not when it was read: the reader may have spent seconds
            # handing earlier messages to a slow consumer (see _on_resumption_update).
            arrived = conn.arrived_after
            self._rx_index = conn.received_index
            last_activity[0] = now
            message = self._decode(raw)
            self._rx_seq += 1
            self._counters.messages_in += 1
            self._counters.bytes_in += len(raw)
            await self._process(message, now, now if arrived is None else min(arrived, now))
            await self._deliver(message)

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

    async def _process(self, message: wire.ServerMessage, now: float, arrived: float | None = None) -> None:
        """Bookkeeping for one server message, then its callbacks (in arrival order).

        ``now`` is when it was read, ``arrived`` no later than when it reached us (``now`` if the
        engine cannot tell): timing that judges what the server had seen uses the latter."""
        arrived = now if arrived is None else arrived
        callbacks = self.config.callbacks
        update = message.session_resumption_update
        if update is not None:
            await self._on_resumption_update(update, now, arrived)
            await self._safe_callback(callbacks.on_session_resumption, update)
        content = message.server_content
        if (content is not None or message.tool_call is not None) and not self._generating:
            waiting = self._awaiting_reply_since
            if waiting is not None and self._sure_triggers:
                # The first answer to a user turn bounds the round trip *including* the server's
                # queueing delay, which the setup round trip misses on a backlogged server.
                self._lag_samples.append(now - waiting)
                del self._lag_samples[:-8]
                self._lag = max(self._lag_samples)
        if content is not None:
            if content.model_turn is not None:
                self._turn_content()
                if self._sure_triggers:
                    for part in content.model_turn.parts or ():
                        if part.text and not part.thought:
                            if self._answer_text is None:
                                self._answer_text = []
                            self._answer_text.append(part.text)
            heard = content.output_transcription
            if heard is not None and heard.text and self._sure_triggers:
                if self._answer_heard is None:
                    self._answer_heard = []
                self._answer_heard.append(heard.text)
            if content.interrupted:
                self._counters.interruptions += 1
                self._on_interrupted()
            if content.turn_complete:
                # The turn that ends answered the outstanding user turns only if it began while
                # they were outstanding and was not cut short: an unprompted turn interrupted for
                # a user turn ends (interrupted, then turnComplete) before that turn's answer.
                cut = content.interrupted or self._turn_interrupted
                answered = not cut and self._turn_answers is not False
                if answered and len(self._triggers) == 1 and not self._voiced:
                    # The one trigger outstanding was answered: it and everything before it were
                    # consumed, and so were the BLOCKING answers the turn waited for. The next
                    # handle surely covers them (evidence beats timing). Not if audio went out
                    # since the last turn: the server's VAD may have made a turn of it, and this
                    # may be that turn's end, the trigger still unread (taking it as evidence
                    # lost every message up to a trigger sent in a burst after a move).
                    self._evidence_index = max(self._evidence_index, self._triggers[0], *self._answer_indices)
                    if self._sure_triggers == self._triggers and not self._turn_called:
                        self._keep_answer(self._triggers[0])
                self._answer_text = self._answer_heard = None
                self._turn_called = False
                self._turn_answers = None
                self._turn_interrupted = False
                self._voiced = False
                still_owed = not answered and bool(self._sure_triggers)  # the next turn answers them
                if not still_owed:
                    self._triggers.clear()
                    self._sure_triggers.clear()
                    self._answer_indices.clear()
                self._effect_seq = self._rx_seq
                self._counters.turns += 1
                self._turn_no += 1
                waiting = self._awaiting_reply_since
                if waiting is not None and self._on_turn_latency is not None and answered:
                    try:
                        self._on_turn_latency(now - waiting)
                    except Exception as exc:
                        self._counters.callback_errors += 1
                        self._log.warning("on_turn_latency raised %s", type(exc).__name__)
                self._generating = False
                self._awaiting_reply_since = now if still_owed else None
                if self._owed_after_turn:
                    self._settle_owed()
            if content.input_transcription is not None:
                await self._safe_callback(callbacks.on_transcription, "input", content.input_transcription)
            if content.output_transcription is not None:
                await self._safe_callback(callbacks.on_transcription, "output", content.output_transcription)
            self._notify()
        if message.tool_call is not None:
            self._turn_content()
            self._turn_called = True
            self._on_tool_call(message.tool_call, now)
        if message.tool_call_cancellation is not None:
            ids = message.tool_call_cancellation.ids or []
            cancelled = self._ledger.cancel(ids)
            self._counters.tool_cancellations += len(cancelled)
            self._notify()
            await self._safe_callback(callbacks.on_tool_call_cancellation, list(ids))
        if message.go_away is not None:
            self._counters.go_aways += 1
            time_left = message.go_away.time_left
            # From when it was read, not its arrival bound: a reader far behind a busy socket
            # dates frames seconds early, and a deadline that early forces every move at once
            # (with its input ambiguous); the pool's own rotation comes well before a goAway.
            deadline = now + (
                float(time_left) if time_left is not None else self.config.limits.go_away_notice_s
            )
            self._log.info("goAway: %.3f s left", deadline - now)
            if self.config.rotation.on_go_away:
                self._request_move("go_away", deadline)
            await self._safe_callback(callbacks.on_go_away, message.go_away)
        if message.voice_activity is not None:
            await self._safe_callback(callbacks.on_voice_activity, message.voice_activity)
        await self._safe_callback(callbacks.on_message, message)

    async def _on_resumption_update(
        self, update: wire.SessionResumptionUpdate, now: float, arrived: float
    ) -> None:
        """Keep the newest resumable handle and judge which logged messages it covers.

        ``arrived`` (no later than the frame's arrival) bounds the handle's issue from above for
        trimming, ``now`` (when it was read) for what it surely does not cover: the reader may
        have read it long after it arrived, busy handing earlier messages to a slow consumer."""
        epoch = self._epoch
        if self._leaving or (epoch is not None and (epoch.outcome is not None or epoch.error is not None)):
            # The mover already chose the handle to resume from and how much to replay; a handle
            # read meanwhile (the mover may still wait for a send in flight) must not change
            # either: it would trim the log by its own timing, and input the move judged surely
            # not covered by the chosen handle would become ambiguous under the new one (doubled).
            return
        self._resumable = bool(update.resumable)
        if not update.resumable:
            self._unresumable_seq = self._rx_seq
        if update.resumable and update.new_handle:
            self._handle = update.new_handle
            self._handle_epoch += 1
            self._handle_received_at = now
            self._handle_arrived_at = arrived
            self._handle_index = self._rx_index
            self._handle_seq = self._rx_seq
            index = update.last_consumed_client_message_index
            exact = self.config.transparent and index is not None
            waiting = self._awaiting_reply_since
            if waiting is not None and not self._generating:
                # A signal that may produce no turn (activityEnd, audioStreamEnd) must not block
                # quiet points forever. A user turn always produces one: only its turnComplete
                # ends the wait (a handle issued before the server read it proves nothing).
                if exact:
                    if self._triggers and int(index or 0) >= self._triggers[-1]:
                        self._awaiting_reply_since = None  # consumed, resumable again: no turn
                elif not self._sure_triggers and arrived - self._settle() > waiting:
                    self._awaiting_reply_since = None
            if exact:
                self._replay.covered_through_index(int(index or 0))
            else:
                before = len(self._replay)
                if self._fence_result is not None:
                    self._proofs.poll(self._fence_result)
                proven = self._proofs.on_handle(self._rx_index)
                owed = self._sure_triggers + self._answer_indices
                if owed:
                    # Consumed is not answered: a user turn (or a BLOCKING answer) whose turn has
                    # not ended stays logged, or a move would resume from a context holding it
                    # with nothing left to make the model answer it.
                    proven = min(proven, min(owed) - 1)
                self._replay.covered_through_index(max(self._evidence_index, proven))
                if self._proofs.unproven_from is not None:
                    owed = [*owed, self._proofs.unproven_from]
                self._replay.covered_before(
                    arrived, self._settle(), received_at=now, stop_index=min(owed) if owed else None
                )
                self._log.debug(
                    "handle #%d: %d logged message(s) taken as covered, %d kept (settle %.4f s)",
                    self._handle_epoch,
                    before - len(self._replay),
                    len(self._replay),
                    self._settle(),
                )
            if self._on_handle is not None:
                try:
                    await call_callback(self._on_handle, update.new_handle, log=self._log)
                except Exception as exc:
                    self._counters.callback_errors += 1
                    self._log.warning("handle hook raised %s", type(exc).__name__)
        self._notify()

    def _turn_content(self) -> None:
        """The model's content or a call arrived: a turn is in progress (the first of it decides
        whether it answers the user's outstanding turns), and a pending move holds input now."""
        if self._turn_answers is None:
            self._turn_answers = bool(self._triggers)
        self._generating = True
        if self._state == "moving":
            self._hold_early()

    def _keep_answer(self, index: int) -> None:
        """The user turn sent as message ``index`` was answered (the user saw it): note the
        answer with it, so a move that must replay the turn replays it as history instead of
        having it answered again (see ReplayLog.answered)."""
        text = "".join(self._answer_text or self._answer_heard or ())
        parts = [wire.Part(text=text)] if text else []
        self._replay.answered(index, wire.Content(role="model", parts=parts))

    def _settle(self) -> float:
        policy = self.config.rotation
        return min(max(2.0 * self._rtt, self._lag, policy.settle_min_s), policy.settle_max_s)

    # ================================================================== tools

    def _on_tool_call(self, tool_call: wire.ToolCall, now: float) -> None:
        unhandled: list[wire.FunctionCall] = []
        for call in tool_call.function_calls or []:
            tool = self._tools.get(call.name or "")
            blocking = not (tool.non_blocking if tool is not None else self._declared_non_blocking(call.name))
            pending = self._ledger.open(
                call, blocking=blocking, now=now, handle_epoch=self._handle_epoch, turn=self._turn_no
            )
            if pending is None:
                self._log.warning("repeated tool call id %s ignored", call.id)
                continue
            self._counters.tool_calls += 1
            if tool is not None:
                assert self._nursery is not None  # made by run() whenever tools are registered
                self._nursery.start_soon(self._run_call, pending, tool)
            else:
                unhandled.append(call)
        if unhandled and self.config.callbacks.on_tool_call is not None:
            assert self._nursery is not None  # made by run() whenever the callback is set
            self._nursery.start_soon(self._run_callback_calls, unhandled)
        self._notify()

    def _declared_non_blocking(self, name: str | None) -> bool:
        return name in self._non_blocking_names

    async def _run_call(self, pending: PendingCall, tool: FunctionTool) -> None:
        with trio.CancelScope() as scope:
            pending.scope = scope
            response = await run_tool(tool, pending.call)
            if response.response is not None and "error" in response.response:
                self._counters.tool_errors += 1
        if scope.cancelled_caught:
            if self._ledger.state(pending.id) != "pending":
                return  # cancelled by the server, answered by the user, or void after a resume
            if pending.interrupted and self._turn_no <= pending.turn:
                self._owed_after_turn.append(pending)  # answered at turnComplete if still owed
                return
            response = self._interrupted_answer(pending)
        self._answer(pending, response)

    def _interrupted_answer(self, pending: PendingCall) -> wire.FunctionResponse:
        tool = self._tools.get(pending.call.name or "")
        non_blocking = tool.non_blocking if tool is not None else not pending.blocking
        return wire.FunctionResponse(
            id=pending.call.id,
            name=pending.call.name,
            response={"error": "cancelled: the turn was interrupted"},
            scheduling=wire.Scheduling.SILENT if non_blocking else None,
        )

    def _settle_owed(self) -> None:
        """A turn ended: answer interrupted calls the server did not cancel (it would wait forever)."""
        owed, self._owed_after_turn = self._owed_after_turn, []
        for pending in owed:
            if self._ledger.state(pending.id) == "pending":
                self._answer(pending, self._interrupted_answer(pending))

    async def _run_callback_calls(self, calls: list[wire.FunctionCall]) -> None:
        try:
            result = await call_callback(
                self.config.callbacks.on_tool_call, wire.ToolCall(function_calls=calls), log=self._log
            )
        except Exception as exc:
            self._counters.callback_errors += 1
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
        for response in (
            out.message.tool_response.function_responses or [] if out.message.tool_response else []
        ):
            pending = self._ledger.get(response.id or "")
            if pending is not None:
                self._answer(pending, response)

    def _answer(self, pending: PendingCall, response: wire.FunctionResponse) -> None:
        """Send the one answer for ``pending`` if it is still owed (the ledger decides)."""
        if self._ledger.answer(pending.id) is None:
            return
        self._counters.tool_done(trio.current_time() - pending.received_at)
        out = encode(
            wire.ClientMessage(tool_response=wire.ToolResponse(function_responses=[response])), (pending.id,)
        )
        out.blocking_answer = pending.blocking
        self._push_priority(out)

    def _on_interrupted(self) -> None:
        self._turn_interrupted = True
        self._generating = False
        self._awaiting_reply_since = None
        if not self.config.cancel_tools_on_interrupt:
            return
        for pending in self._ledger.of_turn(self._turn_no):
            pending.interrupted = True
            if pending.scope is not None:
                pending.scope.cancel()  # _run_call owes it an answer unless the server cancels it

    async def _flush_for_close(self) -> None:
        """Send what is queued, then (with resumption) wait for a handle covering all of it, so the
        ``resume_handle`` left behind for a handle store loses nothing. Bounded by close_timeout."""
        self._hold_planned = False
        self._notify()
        with trio.move_on_after(self.config.close_timeout):
            await self._wait_for(
                lambda: (
                    not self._send_line
                    and not self._queue
                    and not self._priority
                    and not self._replay_next
                    and not self._sending
                    and not (self._hold_planned or self._tool_hold())
                )
            )
            if self.config.resumption_enabled:
                await self._wait_for(lambda: not len(self._replay) and self._resumable)

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
            self._counters.callback_errors += 1
            self._log.warning(
                "callback %s raised %s", getattr(fn, "__name__", fn), type(exc).__name__, exc_info=True
            )
            if fn is not self.config.callbacks.on_error:
                try:
                    await call_callback(self.config.callbacks.on_error, exc, log=self._log)
                except Exception:
                    self._counters.callback_errors += 1


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


def _answered_ids(message: wire.ClientMessage) -> tuple[str, ...]:
    if message.tool_response is None:
        return ()
    return tuple(r.id or "" for r in message.tool_response.function_responses or [])
