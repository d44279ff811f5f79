"""The session protocol as a synchronous state machine: events in, decisions out (h11's shape).

:class:`SessionCore` is everything a Live session decides, with no trio, no clock and no I/O: the
actor around it (``livemesh.session``) feeds it what happened, with the time it happened, and does
what it says. Its parts each keep one book: the tool ledger (``ledger``), the replay log
(``replay``), the ping proofs (``proofs``), the turns (``turns``) and the move in progress
(``moves``); its states and their transitions are in ``state``.

Events in (methods): ``start``, ``dial``/``opened``/``lost``/``left`` (connections), ``take``
(a message to send), ``next_write``/``wrote`` (the writer), ``frame`` (a server message, with
when it arrived and its arrival number), ``tool_done``/``tool_stopped``/``user_answer`` (tool
results), ``request_move``, ``request_close``, ``tick`` (time passes), ``fail``, ``finish``.

Decisions out: the writes (``next_write``: messages and whether a ping follows them), the
messages to deliver (every frame but a later connection's ``setupComplete``), the tool calls to
start or cancel (``tool_starts``, ``callback_calls``, ``tool_cancels``), whether input is held
(``holding``), when to leave and with what (``tick`` returns :class:`Step`; the handle is
``handle``, the replay plan is made by ``opened`` on the next connection), and the error to end
with (``error``, or an exception raised by the event that found it).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable

import attrs

from livemesh import wire
from livemesh.errors import (
    EncodeError,
    LivemeshError,
    LocalProtocolError,
    ReconnectError,
    SessionError,
    ToolCallLimitError,
)
from livemesh.session.core.config import CoreConfig
from livemesh.session.core.ledger import PendingCall, ToolLedger
from livemesh.session.core.moves import Action, Facts, Move
from livemesh.session.core.outgoing import Outgoing
from livemesh.session.core.proofs import BurstProofs
from livemesh.session.core.replay import ReplayLog, ReplayPlan
from livemesh.session.core.state import (
    SESSION_TRANSITIONS,
    MovePhase,
    SessionEvent,
    SessionState,
    next_state,
)
from livemesh.session.core.turns import TurnTracker
from livemesh.session.metrics import SessionCounters
from livemesh.telemetry import NOOP_SESSION, SessionProbe

__all__ = ["Opened", "SessionCore", "Step", "Write"]

_NO_QUEUE: deque[Outgoing] = deque(maxlen=0)
"""Shared by every core until its first queued message (appending to it would drop the message,
so only :meth:`SessionCore.take` appends, after replacing it)."""

# What ``frame`` tells the actor to do besides delivering the message (bit flags).
HANDLE = 1  # a new resumable handle was taken (``handle``): call the handle hook
TOOLS = 2  # calls to start (``tool_starts``, ``callback_calls``)
CANCELS = 4  # tool tasks to cancel (``tool_cancels``)
MOVER = 8  # the move (or a new one) has something to decide: run ``tick``
WRITER = 16  # something became sendable: the writer looks again
CHANGED = 32  # quiet/idle/moves may have changed: wake those waiting on them
LATENCY = 64  # a user turn's latency is in ``turn_latency``

FENCE_EVERY = 0.0
"""Seconds between the pings that keep the replay log proven while input streams."""


class Step(enum.Enum):
    """What the mover does after :meth:`SessionCore.tick`."""

    WAIT = "wait"  # until ``next_wake()`` or an event
    LEAVE = "leave"  # leave this connection at a frame boundary and resume with ``handle``
    CLOSE = "close"  # close: the flush is done (or timed out)


@attrs.define(slots=True)
class Write:
    """One write: ``batch`` (maybe empty), then a ping if ``fence``."""

    batch: list[Outgoing]
    fence: bool
    last: int


@attrs.frozen
class Opened:
    """What setting up a connection decided (for logs)."""

    first: bool
    plan: ReplayPlan | None
    void: tuple[PendingCall, ...]


def _answered_ids(message: wire.ClientMessage) -> tuple[str, ...]:
    if message.tool_response is None:
        return ()
    return tuple(r.id or "" for r in message.tool_response.function_responses or [])


def encode(message: wire.ClientMessage, call_ids: tuple[str, ...] = ()) -> Outgoing:
    """``message`` with its bytes (EncodeError if a value cannot be encoded)."""
    return Outgoing(message, wire.encode_client(message), call_ids)


class SessionCore:
    """One session's protocol state across its connections (see the module docstring)."""

    __slots__ = (
        "_dial_epoch",
        "_dialled_at",
        "_lost_at",
        "_owed_after_turn",
        "_priority",
        "_queue",
        "_replay_next",
        "attempt",
        "callback_calls",
        "close_deadline",
        "closing",
        "config",
        "conn_deadline",
        "conn_index",
        "connect_s",
        "connected",
        "counters",
        "error",
        "established",
        "handle",
        "handle_arrived_at",
        "handle_epoch",
        "handle_index",
        "handle_received_at",
        "handle_seq",
        "ledger",
        "lifetime_end",
        "move",
        "move_started",
        "moves_done",
        "planned",
        "probe",
        "proofs",
        "repeated_calls",
        "replay",
        "resumable",
        "rtt",
        "running_tools",
        "rx_index",
        "rx_seq",
        "started",
        "state",
        "streamed",
        "tool_cancels",
        "tool_starts",
        "turn_latency",
        "turns",
        "unresumable_seq",
        "writing",
    )

    def __init__(self, config: CoreConfig, *, resume_handle: str | None = None) -> None:
        self.config = config
        self.state = SessionState.NEW
        self.move = Move()
        self.turns = TurnTracker()
        self.ledger = ToolLedger()
        # streamed arguments (partialArgs) become whole calls before the ledger or a tool sees them
        self.streamed = wire.StreamedCalls(max_calls=config.max_calls_per_tool_call)
        self.replay = ReplayLog(limit_bytes=config.replay_limit_bytes)
        # bursts and user turns proven consumed by a ping (Gemini API; Vertex has exact indices)
        self.proofs = BurstProofs(enabled=not config.transparent and config.prove_by_ping)
        self.counters = SessionCounters()
        self.probe: SessionProbe = NOOP_SESSION  # telemetry: the actor sets the session's probe
        self._lost_at: float | None = None  # when a working connection dropped (telemetry)
        self.error: LivemeshError | None = None

        self.handle: str | None = resume_handle
        self.handle_epoch = 0
        self.handle_received_at = -1.0
        self.handle_arrived_at = -1.0
        self.handle_index = -1
        self.handle_seq = -1  # rx_seq of the newest resumable handle
        self.unresumable_seq = -1  # rx_seq of the newest "not resumable" update
        self.resumable = False

        self.connected = False
        self.started = False  # the first connection was set up
        self.established = False  # the current connection was set up
        self.writing = False
        self.closing = False
        self.close_deadline = math.inf
        self.conn_index = -1  # index of the newest message written on this connection
        self.conn_deadline = math.inf  # when the service cuts the current connection
        self.lifetime_end = math.inf
        self.rx_seq = 0  # server messages received so far (all connections): orders evidence
        self.rx_index = -1  # the engine's arrival number of the frame being processed
        self.rtt = 0.0
        self.connect_s = 0.0  # a connection's set-up time (TCP, TLS, upgrade, setup), smoothed
        self.moves_done = 0
        self.move_started: float | None = None
        self.attempt = 0
        self.planned = False
        self._dial_epoch = 0
        self._dialled_at = 0.0

        self._replay_next: deque[Outgoing] | tuple[()] = ()  # resent first on a new connection
        self._priority: list[Outgoing] = []  # tool answers (few): never held behind input
        # user input, held during moves (a deque made by the first message: an idle session's
        # empty deque would cost more than the rest of the core's state)
        self._queue: deque[Outgoing] = _NO_QUEUE
        self._owed_after_turn: list[PendingCall] = []

        # decisions for the actor, drained by it
        self.tool_starts: list[PendingCall] = []
        self.callback_calls: list[list[wire.FunctionCall]] = []
        self.tool_cancels: list[str] = []
        self.repeated_calls: list[str] = []
        self.turn_latency: float | None = None
        self.running_tools = 0

    def __repr__(self) -> str:
        return f"<SessionCore {self.state.value} move={self.move.phase.value} handles={self.handle_epoch}>"

    # ================================================================== transitions

    def _to(self, event: SessionEvent) -> None:
        self.state = next_state(SESSION_TRANSITIONS, self.state, event)

    def _require(self, *states: SessionState, event: str) -> None:
        if self.state not in states:
            raise LocalProtocolError(f"{event} is not legal in SessionState.{self.state.name}")

    # ================================================================== queries

    @property
    def finished(self) -> bool:
        return self.state in (SessionState.CLOSED, SessionState.FAILED)

    @property
    def is_quiet(self) -> bool:
        """A good moment to move: connected, resumable handle, nothing generating, no call pending."""
        turns = self.turns
        return (
            self.connected
            and self.handle is not None
            and self.resumable
            and not turns.generating
            and not turns.continuing
            and turns.awaiting_reply_since is None
            and not len(self.ledger)
        )

    @property
    def is_idle(self) -> bool:
        turns = self.turns
        return (
            not turns.generating
            and not turns.continuing
            and not len(self.ledger)
            and turns.awaiting_reply_since is None
        )

    def settle(self) -> float:
        config = self.config
        return min(max(2.0 * self.rtt, self.turns.lag, config.settle_min_s), config.settle_max_s)

    def tool_hold(self) -> bool:
        return self.config.hold_input_during_tool_calls and self.ledger.blocking_pending

    @property
    def holding(self) -> bool:
        """Input waits (a move's hold, no connection, a BLOCKING call)."""
        return self.move.holding or not self.connected or self.tool_hold()

    def queued(self) -> int:
        return len(self._queue)

    def queue_limit(self) -> int:
        """How many user messages may wait here before senders are made to wait."""
        return self.config.hold_limit if self.holding else 1

    def room(self, batch: int) -> bool:
        """Whether the writer may take another message from its outbox: up to ``batch`` for the
        next write, up to the hold limit while input is held (a move, no connection, a BLOCKING
        call); past it the outbox fills and senders wait. Tool answers never wait here: they
        reach the core directly (``take``), ahead of user input."""
        queued = len(self._queue)
        limit = self.config.hold_limit
        if queued < batch and queued < limit:
            return True  # room whether or not input is held (the usual case: asked per message)
        return queued < (limit if self.holding else batch)

    def in_turn(self) -> bool:
        """A turn is in flight: generating, an answer owed to a user turn, or a tool call pending."""
        return self.turns.in_turn_or_owed or bool(len(self.ledger))

    def user_speaking(self) -> bool:
        """The server withdrew resumability after its newest handle and turn, and no model turn or
        call followed: the user is speaking (no handle comes until the utterance ends)."""
        turns = self.turns
        return (
            self.unresumable_seq > max(self.handle_seq, turns.effect_seq)
            and not turns.generating
            and not len(self.ledger)
            and turns.awaiting_reply_since is None
        )

    def handle_fits_move(self) -> bool:
        """True if resuming from the newest handle and replaying the log is exact (input is held).

        A resumed context is the snapshot of the handle used, not everything consumed: a turn
        whose ``turnComplete`` the user already saw must be in that snapshot, or replaying its
        trigger answers it twice (and not replaying it loses it). So the handle must have been
        received after the newest ``turnComplete``. Then on Vertex ``transparent`` the index makes
        the rest exact; on the Gemini API no logged message may be ambiguous (sent before the
        handle arrived and not proven covered): a later handle is awaited for those.
        """
        if not (self.resumable and self.handle is not None and self.handle_seq > self.turns.effect_seq):
            return False
        if self.in_turn() or self.turns.awaiting_reply_since is not None:
            return False
        if self.config.transparent:
            return True
        return self.replay.ambiguous(self.handle_seq) == 0

    def facts(self) -> Facts:
        turns = self.turns
        return Facts(
            quiet=self.is_quiet,
            fits=self.handle_fits_move(),
            in_turn=self.in_turn(),
            generating_or_calls=turns.generating or bool(len(self.ledger)),
            resumable=self.resumable,
            speaking=self.user_speaking(),
            settle=self.settle(),
            early_hold_allowed=not self.config.transparent and self.config.hold_during_turn,
            turn_no=turns.turn_no,
            handle_seq=self.handle_seq,
            effect_at=turns.effect_at,
        )

    def final_at(self) -> float:
        return self.move.final_at(self.conn_deadline, self.connect_s)

    def next_wake(self, now: float) -> float:
        """When (after ``now``) the mover must call :meth:`tick` even if nothing else happens."""
        move = self.move
        if move.phase is MovePhase.IDLE:
            if self.config.timer and self.connected and not self.closing:
                return self.lifetime_end - self.config.margin_s
            return math.inf
        if move.phase is MovePhase.FLUSHING:
            return self.close_deadline
        return move.next_wake(now, self.final_at())

    # ================================================================== lifecycle

    def start(self) -> None:
        self._to(SessionEvent.START)
        self.probe.opened()

    def dial(self, now: float) -> str | None:
        """A connection is being opened: the handle its setup resumes from."""
        self._require(SessionState.CONNECTING, SessionState.MOVING, SessionState.CLOSING, event="dial")
        self.established = False
        if self.started:
            self.probe.reconnect()
        self._dial_epoch = self.handle_epoch
        self._dialled_at = now
        return self.handle

    def setup_answered(self, rtt: float, nbytes: int) -> bool:
        """``setupComplete`` arrived ``rtt`` s after the setup was sent; True on the first."""
        self.rtt = rtt if self.rtt == 0 else 0.7 * self.rtt + 0.3 * rtt
        self.counters.connections += 1
        self.counters.messages_in += 1
        self.counters.bytes_in += nbytes
        return self.counters.connections == 1

    def opened(self, now: float) -> Opened:
        """The connection is set up: decide what it must resend before anything else."""
        self._require(SessionState.CONNECTING, SessionState.MOVING, SessionState.CLOSING, event="opened")
        took = now - self._dialled_at
        self.connect_s = took if self.connect_s == 0 else 0.7 * self.connect_s + 0.3 * took
        first = not self.started
        resumed = self._dial_epoch > 0 or (first and self.handle is not None)
        self.established = True
        self.conn_index = -1
        self.turns.new_connection()
        self.streamed.clear()  # a call's pieces do not continue on another connection
        self.resumable = False
        self.writing = False
        if self.counters.connections > 1:
            self.counters.reconnects += 1
        void: list[PendingCall] = []
        void_ids: set[str] = set()
        if resumed and not first:
            void, void_ids = self.ledger.void_after(self._dial_epoch)
            self.tool_cancels.extend(p.id for p in void)
        # Answers to calls now void, or that the server cancelled, are not (re)sent.
        void_ids |= self.ledger.moot_ids()
        self.counters.void_calls += len(void)
        plan: ReplayPlan | None = None
        if not first:
            plan = self.replay.plan(
                void_call_ids=void_ids,
                exact=self.config.transparent,
                likely_lag=self.settle(),
                unproven_from=self.proofs.unproven_from,
                skip_media=not self.proofs.enabled,
            )
            replay = [encode(m, _answered_ids(m)) for m in plan.messages]
            if replay:
                if not isinstance(self._replay_next, deque):
                    self._replay_next = deque()
                self._replay_next.extendleft(reversed(replay))
            counters = self.counters
            counters.replayed += len(plan.messages)
            counters.replay_ambiguous += plan.ambiguous
            counters.replay_skipped += plan.skipped
            counters.replay_restored += plan.restored
            self.probe.replay(
                replayed=len(plan.messages),
                restored=plan.restored,
                ambiguous=plan.ambiguous,
                skipped=plan.skipped,
            )
        self.handle_index = -1
        self.proofs.reset()
        if void_ids:
            # Answers queued for calls that are now void must not be sent either.
            self._priority = [o for o in self._priority if not (set(o.call_ids) & void_ids)]
        if self.move_started is not None:
            self.counters.move_stall(now - self.move_started)
            self.probe.move_done(self.move.reason or "requested", now - self.move_started)
            self.move_started = None
        elif self._lost_at is not None:
            self.probe.move_done("drop", now - self._lost_at)
        self._lost_at = None
        if not first:
            self.moves_done += 1
        self.move.arrived()
        self.started = True
        self.connected = True
        self.attempt = 0
        self._to(SessionEvent.OPENED)
        # The service's clock starts when it answers the setup, a one-way trip before now.
        connected_at = now - self.rtt / 2
        self.lifetime_end = connected_at + self.config.connection_lifetime_s
        self.conn_deadline = self.lifetime_end
        return Opened(first=first, plan=plan, void=tuple(void))

    def left(self) -> None:
        """The connection was closed for a planned move: resume at once."""
        self.connected = False
        self.writing = False
        self.planned = True
        self.attempt = 0

    def unflushed(self) -> bool:
        """Input is queued, waiting to be resent, or not yet covered by a handle."""
        return bool(self._queue or self._priority or self._replay_next or len(self.replay))

    def wants_connection(self, now: float, unread: int = 0) -> bool:
        """Whether the session needs a connection: always while open; while closing, only to
        flush what the user sent (resuming, within ``close_timeout_s``) so nothing is lost."""
        if self.finished:
            return False
        if not self.closing:
            return True
        return (
            self.started
            and self.config.resumption
            and self.handle is not None
            and now < self.close_deadline
            and (bool(unread) or self.unflushed())
        )

    def lost(self, error: SessionError, now: float, unread: int = 0) -> int | None:
        """The connection ended without the session asking (a drop, a close, a dead keepalive).

        Returns the reconnect attempt to make (-1: at once, a planned move's first), or ``None``
        when the session ends (closed, nothing left to flush); raises :class:`ReconnectError`
        when it cannot resume."""
        self.connected = False
        self.writing = False
        self.probe.connection_closed(error.code)
        if self.closing and not self.wants_connection(now, unread):
            return None
        if self.established:
            self.attempt = 0  # that connection worked: this is a new failure, not a retry
            self.counters.drops += 1
            self._lost_at = now if self.started else None
        code, reason = error.code, error.reason
        if self.started and not self.config.resumption:
            raise ReconnectError(
                f"connection lost and session resumption is off: {error}", code=code, reason=reason
            )
        if self.started and self.handle is None:
            raise ReconnectError(
                f"connection lost before the server issued any resumption handle: {error}",
                code=code,
                reason=reason,
            )
        if self.attempt >= self.config.max_attempts:
            raise ReconnectError(
                f"gave up after {self.attempt} reconnect attempts: {error}", code=code, reason=reason
            )
        attempt = -1 if (self.planned and self.attempt == 0) else self.attempt
        self.attempt += 1
        self.planned = False
        self.established = False
        self._to(SessionEvent.LOST)
        return attempt

    def fail(self, error: LivemeshError) -> bool:
        """A fatal error; True if it is the session's first (the one it ends with)."""
        if self.error is not None:
            return False
        self.error = error
        self.probe.connection_closed(getattr(error, "code", None))
        if not self.finished:
            self.state = SessionState.FAILED if self.state is SessionState.NEW else self.state
            self._to(SessionEvent.FAIL) if self.state is not SessionState.FAILED else None
        return True

    def finish(self) -> None:
        """Every task is done: the session ends (failed if it has an error)."""
        self.connected = False
        if self.error is not None:
            self.state = SessionState.FAILED
        elif not self.finished:
            self._to(SessionEvent.FINISH)
        self.probe.closed(self.error)

    # ================================================================== the writer

    def take(self, out: Outgoing) -> None:
        """A message to send (a user's, or a tool answer): queued here until the writer sends it."""
        if out.priority:
            if out.call_ids and any(self.ledger.moot(cid) for cid in out.call_ids):
                return  # void after a resume (the context never issued it) or cancelled meanwhile
            self._priority.append(out)
            return
        queue = self._queue
        if queue is _NO_QUEUE:
            self._queue = queue = deque()
        queue.append(out)

    def count_held(self, waiting: int) -> None:
        """A user message is sent while input is held, ``waiting`` before it (for the metrics)."""
        if self.holding:
            self.counters.held += 1
            self.counters.held_max = max(self.counters.held_max, len(self._queue) + waiting + 1)

    def sendable(self) -> bool:
        if self._replay_next or self._priority:
            return True
        if self.move.holding or not self._queue:
            return False
        if self.tool_hold():
            return any(out.message.realtime_input is None for out in self._queue)
        return True

    def has_write(self) -> bool:
        """:meth:`next_write` would return something."""
        return self.connected and not self.writing and (self.sendable() or self.proofs.wants_fence())

    def _next_to_send(self) -> Outgoing | None:
        if isinstance(self._replay_next, deque) and self._replay_next:
            return self._replay_next.popleft()
        if self._priority:
            return self._priority.pop(0)
        if self.move.holding or not self._queue:
            return None
        if self.tool_hold():
            # Only realtime input waits for the answer; a clientContent may
            # overtake it (the API orders the two kinds independently anyway) and interrupt.
            for index, out in enumerate(self._queue):
                if out.message.realtime_input is None:
                    del self._queue[index]
                    return out
            return None
        return self._queue.popleft()

    def next_write(self, now: float, limit: int) -> Write | None:
        """What to write now (up to ``limit`` messages, then maybe a ping), or None: nothing."""
        if not self.connected or self.writing:
            return None
        batch: list[Outgoing] = []
        out = self._next_to_send()
        if out is not None:
            batch.append(out)
            while len(batch) < limit and (more := self._next_to_send()) is not None:
                batch.append(more)
        elif not self.proofs.wants_fence():
            return None
        # (an empty batch: caught up with a ping owed and nothing to carry it, e.g. a move's)
        first = self.conn_index + 1
        prove = False  # a user turn is in the batch: a ping after it proves it consumed
        manual_vad = self.config.manual_vad
        for item in batch:
            if item.triggers_turn:
                self.probe.turn_started(now)
            self.conn_index += 1
            self.replay.append(
                item.message, index=self.conn_index, sent_at=now, size=len(item.data), seq=self.rx_seq
            )
            if self.turns.sent(
                self.conn_index,
                triggers=item.triggers_turn,
                expects_reply=item.expects_reply,
                blocking_answer=item.blocking_answer,
                realtime=item.message.realtime_input is not None,
                manual_vad=manual_vad,
                now=now,
            ):
                prove = True
        last = self.conn_index
        more_waiting = self.sendable()
        proofs = self.proofs
        proofs.writing(first, last, burst=len(batch) > 1 or more_waiting, prove=prove)
        # Fence once caught up: a ping after every message of a burst, not after each batch; and
        # every FENCE_EVERY s while input streams (every write while a move is pending), so the
        # replay log stays proven: a handle read after its pong trims what came before it.
        fence = not more_waiting and (
            proofs.wants_fence()
            or proofs.due(last, now, 0.0 if self.move.phase is not MovePhase.IDLE else FENCE_EVERY)
        )
        self.writing = True
        return Write(batch, fence, last)

    def wrote(self, write: Write, token: bytes | None, now: float) -> int:
        """``write`` went out at ``now`` (``token``: its ping's); flags of what may now move on."""
        if token is not None:
            self.proofs.fence_sent(token, write.last, now)
        self.proofs.written(write.last)
        self.writing = False
        self.counters.messages_out += len(write.batch)
        self.counters.bytes_out += sum(len(item.data) for item in write.batch)
        return MOVER if self.move.phase is not MovePhase.IDLE else 0

    def flushed(self) -> bool:
        """Nothing waits to be written (and no write is in progress)."""
        return (
            not self._queue
            and not self._priority
            and not self._replay_next
            and not self.writing
            and not self.tool_hold()
        )

    # ================================================================== the reader

    def frame(
        self,
        message: wire.ServerMessage,
        now: float,
        arrived: float,
        index: int,
        nbytes: int,
        fence_result: Callable[[bytes], int | None] | None = None,
    ) -> int:
        """Bookkeeping for one server message; flags of what the actor must do besides delivering it.

        ``now`` is when it was read, ``arrived`` no later than when it reached us, ``index`` its
        arrival number on the connection, ``fence_result`` the connection's pong lookup."""
        self._require(SessionState.OPEN, SessionState.MOVING, SessionState.CLOSING, event="frame")
        self.rx_seq += 1
        self.rx_index = index
        counters = self.counters
        counters.messages_in += 1
        counters.bytes_in += nbytes
        flags = 0
        if message.usage_metadata is not None:
            self.probe.usage(message.usage_metadata)
        update = message.session_resumption_update
        if update is not None:
            flags |= self._on_resumption_update(update, now, arrived, fence_result)
        content = message.server_content
        turns = self.turns
        if content is not None or message.tool_call is not None:
            turns.answer_started(now)
        if content is not None:
            if content.model_turn is not None:
                flags |= self._turn_content(now)
                turns.model_text(content.model_turn.parts)
            heard = content.output_transcription
            if heard is not None:
                turns.heard(heard.text)
            if content.interrupted:
                counters.interruptions += 1
                flags |= self._on_interrupted()
            if content.turn_complete:
                flags |= self._on_turn_complete(content, now)
        if message.tool_call is not None:
            flags |= self._turn_content(now)
            turns.called()
            whole = self.streamed.feed_tool_call(message.tool_call)
            if whole:
                flags |= self._on_tool_call(wire.ToolCall(function_calls=whole), now)
        if message.tool_call_cancellation is not None:
            self.streamed.discard(message.tool_call_cancellation.ids or [])
            cancelled = self.ledger.cancel(message.tool_call_cancellation.ids or [])
            counters.tool_cancellations += len(cancelled)
            if cancelled:
                self.tool_cancels.extend(p.id for p in cancelled)
                for p in cancelled:
                    self.probe.tool_done(p.id, "cancelled", now)
                flags |= CANCELS | WRITER | CHANGED
        if message.go_away is not None:
            counters.go_aways += 1
            time_left = message.go_away.time_left
            self.probe.go_away(float(time_left) if time_left is not None else None)
            # From when it was read, not its arrival bound: a reader far behind a busy socket dates
            # frames seconds early, and a deadline that early forces every move at once (with its
            # input ambiguous); the pool's own rotation comes well before a goAway.
            deadline = now + (float(time_left) if time_left is not None else self.config.go_away_notice_s)
            self.conn_deadline = min(self.conn_deadline, deadline)
            if self.config.on_go_away:
                flags |= self.request_move("go_away", deadline)
        if flags & CHANGED and self.move.phase is not MovePhase.IDLE:
            flags |= MOVER
        return flags

    def _turn_content(self, now: float) -> int:
        """The model's content or a call arrived: a pending move holds input now."""
        first = not self.turns.generating
        if first:
            self.probe.first_chunk(now)
        self.turns.content()
        move = self.move
        if first and move.phase in (MovePhase.SEEKING, MovePhase.RELEASED) and move.hold_early(self.facts()):
            self.proofs.request_fence()
            return WRITER | MOVER | CHANGED
        return CHANGED if first else 0

    def _on_turn_complete(self, content: wire.ServerContent, now: float) -> int:
        turns = self.turns
        waiting = turns.awaiting_reply_since
        answered, keep, answer = turns.completed(
            cut=bool(content.interrupted), seq=self.rx_seq, now=now, calls_open=bool(len(self.ledger))
        )
        # IN_PROGRESS: the model turn ended but its interaction goes on (another model turn follows:
        # a NON_BLOCKING call's result, the answer to the input that interrupted), so it is no
        # quiet point for a move; the next turnComplete without it ends that.
        turns.continuing = content.interaction_status == wire.InteractionStatus.IN_PROGRESS
        if keep is not None and answer is not None:
            # The user saw this turn answered: a move that must replay it replays it as history.
            self.replay.answered(keep, answer)
        self.counters.turns += 1
        self.probe.turn_complete(now, interrupted=bool(content.interrupted))
        flags = CHANGED | WRITER
        if waiting is not None and answered:
            self.turn_latency = now - waiting
            flags |= LATENCY
        if self._owed_after_turn:
            self._settle_owed(now)
        return flags

    def _on_resumption_update(
        self,
        update: wire.SessionResumptionUpdate,
        now: float,
        arrived: float,
        fence_result: Callable[[bytes], int | None] | None,
    ) -> int:
        """Keep the newest resumable handle and judge which logged messages it covers.

        ``arrived`` (no later than the frame's arrival) bounds the handle's issue from above for
        trimming, ``now`` (when it was read) for what it surely does not cover: the reader may
        have read it long after it arrived, busy handing earlier messages to a slow consumer."""
        if self.move.leaving:
            # The move already chose the handle to resume from and how much to replay; a handle
            # read meanwhile must not change either: it would trim the log by its own timing, and
            # input the move judged surely not covered would become ambiguous (doubled).
            return 0
        self.resumable = bool(update.resumable)
        if not update.resumable:
            self.unresumable_seq = self.rx_seq
            return CHANGED
        if not update.new_handle:
            return CHANGED
        self.handle = update.new_handle
        self.handle_epoch += 1
        self.handle_received_at = now
        self.handle_arrived_at = arrived
        self.handle_index = self.rx_index
        self.handle_seq = self.rx_seq
        turns = self.turns
        index = update.last_consumed_client_message_index
        exact = self.config.transparent and index is not None
        waiting = turns.awaiting_reply_since
        settle = self.settle()
        if waiting is not None and not turns.generating:
            # A signal that may produce no turn (activityEnd, audioStreamEnd) must not block quiet
            # points forever. A user turn always produces one: only its turnComplete ends the wait.
            if exact:
                if turns.triggers and int(index or 0) >= turns.triggers[-1]:
                    turns.awaiting_reply_since = None  # consumed, resumable again: no turn
            elif not turns.sure_triggers and arrived - settle > waiting:
                turns.awaiting_reply_since = None
        if exact:
            self.replay.covered_through_index(int(index or 0))
        else:
            proofs = self.proofs
            if fence_result is not None:
                proofs.poll(fence_result)
            proven = proofs.on_handle(self.rx_index)
            owed = turns.owed
            if owed:
                # Consumed is not answered: a user turn (or a BLOCKING answer) whose turn has not
                # ended stays logged, or a move would resume from a context holding it with
                # nothing left to make the model answer it.
                proven = min(proven, min(owed) - 1)
            if proofs.enabled:
                # Proofs judge: only what a ping's pong proves is trimmed; the rest stays logged
                # however long ago it was sent (a server may read with any lag). A turn's end is
                # no such proof: with two user turns outstanding, which one it answered is a guess.
                self.replay.covered_through_index(proven)
            else:
                self.replay.covered_through_index(max(turns.evidence_index, proven))
                # Timing judges (prove_by_ping off): what was sent ``settle`` before the handle
                # arrived is taken as covered. A server whose reads lag more than that loses it.
                if proofs.unproven_from is not None:
                    owed = [*owed, proofs.unproven_from]
                stop = min(owed) if owed else None
                self.replay.covered_before(arrived, settle, received_at=now, stop_index=stop)
        self.replay.handle_read(self.rx_seq)
        return HANDLE | CHANGED

    # ================================================================== tools

    def _tool_non_blocking(self, name: str | None) -> bool:
        registered = self.config.tools.get(name or "")
        return registered if registered is not None else (name in self.config.non_blocking_names)

    def _on_tool_call(self, tool_call: wire.ToolCall, now: float) -> int:
        calls = tool_call.function_calls or []
        tools = self.config.tools
        config = self.config
        if len(calls) > config.max_calls_per_tool_call:
            raise ToolCallLimitError(
                f"a toolCall with {len(calls)} calls (max_calls_per_tool_call is "
                f"{config.max_calls_per_tool_call})"
            )
        tasks = sum(1 for call in calls if (call.name or "") in tools)
        if config.tool_callback and tasks < len(calls):
            tasks += 1  # the on_tool_call callback answers the rest, in one task
        if self.running_tools + tasks > config.max_running_tools:
            raise ToolCallLimitError(
                f"a toolCall would run {self.running_tools + tasks} tool calls at once "
                f"(max_running_tools is {config.max_running_tools})"
            )
        unhandled: list[wire.FunctionCall] = []
        flags = CHANGED | WRITER
        for call in calls:
            blocking = not self._tool_non_blocking(call.name)
            pending = self.ledger.open(
                call, blocking=blocking, now=now, handle_epoch=self.handle_epoch, turn=self.turns.turn_no
            )
            if pending is None:
                self.repeated_calls.append(call.id or "")
                continue
            self.counters.tool_calls += 1
            self.probe.tool_started(pending.id, call.name or "", now)
            if (call.name or "") in tools:
                self.tool_starts.append(pending)
                self.running_tools += 1
                flags |= TOOLS
            else:
                unhandled.append(call)
        if unhandled and self.config.tool_callback:
            self.callback_calls.append(unhandled)
            self.running_tools += 1
            flags |= TOOLS
        return flags

    def callback_done(self) -> None:
        """An ``on_tool_call`` batch returned."""
        self.running_tools = max(0, self.running_tools - 1)

    def _on_interrupted(self) -> int:
        self.turns.interrupted()
        self.probe.interrupted()
        if not self.config.cancel_tools_on_interrupt:
            return CHANGED
        for pending in self.ledger.of_turn(self.turns.turn_no):
            pending.interrupted = True
            self.tool_cancels.append(pending.id)  # the tool task owes it an answer unless cancelled
        return CHANGED | CANCELS

    def interrupted_answer(self, pending: PendingCall) -> wire.FunctionResponse:
        non_blocking = self.config.tools.get(pending.call.name or "")
        if non_blocking is None:
            non_blocking = not pending.blocking
        return wire.FunctionResponse(
            id=pending.call.id,
            name=pending.call.name,
            response={"error": "cancelled: the turn was interrupted"},
            scheduling=wire.Scheduling.SILENT if non_blocking else None,
        )

    def _settle_owed(self, now: float) -> None:
        """A turn ended: answer interrupted calls the server did not cancel (it would wait forever)."""
        owed, self._owed_after_turn = self._owed_after_turn, []
        for pending in owed:
            if self.ledger.state(pending.id) == "pending":
                out = self._answer(pending, self.interrupted_answer(pending), now)
                if out is not None:
                    self._priority.append(out)

    def _answer(self, pending: PendingCall, response: wire.FunctionResponse, now: float) -> Outgoing | None:
        """The one answer for ``pending`` if it is still owed (the ledger decides)."""
        if self.ledger.answer(pending.id) is None:
            return None
        self.counters.tool_done(now - pending.received_at)
        failed = response.response is not None and "error" in response.response
        outcome = "cancelled" if pending.interrupted else "error" if failed else "ok"
        self.probe.tool_done(pending.id, outcome, now)
        out = encode(
            wire.ClientMessage(tool_response=wire.ToolResponse(function_responses=[response])), (pending.id,)
        )
        out.blocking_answer = pending.blocking
        out.priority = True
        return out

    def tool_done(self, call_id: str, response: wire.FunctionResponse, now: float) -> Outgoing | None:
        """A session-run tool returned ``response``: the answer to send, if still owed."""
        self.running_tools = max(0, self.running_tools - 1)
        pending = self.ledger.get(call_id)
        if pending is None:
            return None
        if response.response is not None and "error" in response.response:
            self.counters.tool_errors += 1
        return self._answer(pending, response, now)

    def tool_stopped(self, call_id: str, now: float) -> Outgoing | None:
        """A session-run tool was cancelled (by :attr:`tool_cancels`): the answer now owed, if any."""
        self.running_tools = max(0, self.running_tools - 1)
        pending = self.ledger.get(call_id)
        if pending is None:
            return None  # cancelled by the server, answered by the user, or void after a resume
        if pending.interrupted and self.turns.turn_no <= pending.turn:
            self._owed_after_turn.append(pending)  # answered at turnComplete if still owed
            return None
        return self._answer(pending, self.interrupted_answer(pending), now)

    def callback_answers(self, responses: list[wire.FunctionResponse], now: float) -> list[Outgoing]:
        """What ``on_tool_call`` returned: the answers still owed."""
        out = []
        for response in responses:
            pending = self.ledger.get(response.id or "")
            if pending is not None:
                answer = self._answer(pending, response, now)
                if answer is not None:
                    out.append(answer)
        return out

    def user_answer(self, out: Outgoing, now: float) -> Outgoing | None:
        """The user answers calls (``send_tool_response``): the message to send (only the ids still
        owed; None if none is), after claiming each answer. Raises LocalProtocolError for an id no
        answer is owed to (unknown or already answered); a cancelled or void id is dropped."""
        states = {call_id: self.ledger.state(call_id) for call_id in out.call_ids}
        bad = {cid: st for cid, st in states.items() if st not in ("pending", "cancelled", "void")}
        if bad:
            raise LocalProtocolError(f"no answer is owed for call id(s) {bad}")
        owed = [cid for cid, st in states.items() if st == "pending"]
        if len(owed) != len(out.call_ids):
            tool_response = out.message.tool_response
            responses = tool_response.function_responses or [] if tool_response else []
            kept = [r for r in responses if r.id in owed]
            if not kept:
                return None
            message = wire.ClientMessage(tool_response=wire.ToolResponse(function_responses=kept))
            try:
                out = encode(message, tuple(owed))
            except EncodeError as exc:  # pragma: no cover - the whole message encoded already
                raise LocalProtocolError(str(exc)) from None
        for call_id in owed:
            pending = self.ledger.answer(call_id)
            if pending is not None:
                self.counters.tool_done(now - pending.received_at)
                self.probe.tool_done(call_id, "ok", now)
                out.blocking_answer = out.blocking_answer or pending.blocking
                self.tool_cancels.append(call_id)  # a user answered first: stop its tool
        out.priority = True
        return out

    # ================================================================== moves and closing

    def request_move(self, reason: str, deadline: float | None) -> int:
        """Move to a fresh connection (at the next good moment); flags (MOVER: run ``tick``)."""
        if self.finished:
            return 0
        self.move.want(reason, deadline)
        return MOVER | CHANGED

    def request_close(self, now: float) -> int:
        """Close: flush what is queued (bounded by ``close_timeout_s``), then end."""
        if self.closing:
            return 0
        self.closing = True
        self.close_deadline = now + self.config.close_timeout_s
        if self.state is SessionState.NEW:
            self._to(SessionEvent.CLOSE)
            return CHANGED
        if not self.finished:
            self._to(SessionEvent.CLOSE)
        self.move.close()
        return MOVER | WRITER | CHANGED

    def tick(self, now: float, unread: int = 0) -> Step:
        """Time passes (or something changed): advance the move or the close; what to do next.

        ``unread``: messages still on their way to the core (the actor's outbox): a close waits
        for them too."""
        move = self.move
        if move.phase is MovePhase.FLUSHING:
            return self._flush_step(now, unread)
        if move.phase is MovePhase.IDLE:
            if self.connected and self.config.timer and now >= self.lifetime_end - self.config.margin_s:
                self.request_move("timer", self.lifetime_end)
            elif move.reason is None:
                return Step.WAIT
        if move.phase is MovePhase.IDLE:
            if not self.connected:
                return Step.WAIT
            move.begin(now, self.connect_s, self.config.quiet_timeout_s)
            self.probe.move_started(move.reason or "requested")
            self.move_started = now
            if self.state is SessionState.OPEN:
                self._to(SessionEvent.MOVE)
        if move.phase is MovePhase.LEAVING:
            return Step.WAIT if self.writing else Step.LEAVE
        while True:
            action = move.step(
                self.facts(),
                now,
                self.final_at(),
                self.config.handle_timeout_s,
                self.connect_s,
                self.config.transparent,
            )
            if action is Action.HOLD:
                # A ping after everything sent so far: any handle read after its pong covers it
                # all, where timing cannot judge a reader far behind a busy socket.
                self.proofs.request_fence()
                continue
            if action is Action.RELEASE:
                self.counters.holds_released += 1
                continue
            break
        if move.leaving:
            return Step.WAIT if self.writing else Step.LEAVE
        return Step.WAIT

    def leaving(self) -> None:
        """The mover leaves now (the writer is idle): count it."""
        self.counters.rotations += 1
        self.connected = False

    def _flush_step(self, now: float, unread: int) -> Step:
        """Closing: what is queued goes out, then (with resumption) a handle covering all of it is
        awaited, so the ``resume_handle`` left behind for a handle store loses nothing."""
        if now >= self.close_deadline or not self.connected:
            return Step.CLOSE
        if unread or not self.flushed():
            return Step.WAIT
        if self.config.resumption and (len(self.replay) or not self.resumable):
            return Step.WAIT
        return Step.CLOSE
