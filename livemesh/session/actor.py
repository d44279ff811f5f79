"""The session actor: one Live session as trio tasks on memory channels around a sans-I/O core,
moving itself between connections without losing or doubling anything.

Tasks (all in nurseries the caller can see)::

    session nursery (Session.run)
      tool runner   calls from the reader, one cancel scope each; answers to the core
      connection manager: connect, set up, serve, move, retry (connections.py)
        connection nursery (one per WebSocket)
          reader    frames -> decode -> core -> callbacks -> inbox -> async for (reader.py)
          writer    outbox -> core -> the socket, with pings the core wants (writer.py)
          mover     sleeps until the core decides to leave or close (mover.py)

What they share, and the channels between them, is in :mod:`livemesh.session.links`; every
decision (what to send when, what a handle covers, when to hold input and leave, what to
replay, which tool calls are owed) is the core's (:mod:`livemesh.session.core`).

Fatal errors (bad frames, refused setup, expired handle, retries exhausted) end the session with a
typed :class:`~livemesh.errors.SessionError`: raised by ``async for``/``receive``/``send_*``, by
``Session.run`` (the pool's entry point) and by the ``open_session`` block.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

from livemesh import telemetry, wire
from livemesh.auth import VertexAI
from livemesh.errors import ConfigError, LivemeshError, LocalProtocolError, SessionClosedError
from livemesh.session.builders import build_client_content, build_realtime_input, build_tool_response, encode
from livemesh.session.config import SessionConfig
from livemesh.session.connections import ConnectFn
from livemesh.session.core import Outgoing, SessionCore
from livemesh.session.lifecycle import Lifecycle, core_config
from livemesh.session.links import Links
from livemesh.session.metrics import SessionMetrics
from livemesh.session.reader import HandleHook
from livemesh.session.turns import Turn, TurnBuilder, check_can_ask
from livemesh.transport import open_connection

__all__ = ["HandleHook", "Session"]

log = logging.getLogger("livemesh.session")

_EAGER_RECEIVES = 16
"""Messages :meth:`Session.receive` may take in a row without yielding to the scheduler."""


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
        self._core = SessionCore(core_config(config), resume_handle=config.resume_handle)
        self._core.probe = telemetry.session_probe(
            self.session_id,
            model=config.model,
            api="vertex" if isinstance(config.auth, VertexAI) else "gemini",
            engine=config.transport.engine,
            counters=self._core.counters,
        )
        outbox, outbox_out = trio.open_memory_channel[Outgoing | None](config.outbox_size)
        inbox_in, inbox = trio.open_memory_channel[wire.ServerMessage](config.inbox_size)
        self._links = Links(
            core=self._core,
            config=config,
            log=_SessionLog(log, {"session_id": self.session_id}),
            outbox=outbox,
            outbox_out=outbox_out,
            inbox_in=inbox_in,
            inbox=inbox,
            on_turn_latency=on_turn_latency,
        )
        self._life = Lifecycle(
            self._links,
            connect or (lambda url, headers: open_connection(url, headers, options=config.transport)),
            on_handle,
            rng,
        )
        self._error_seen = False
        self._eager = 0  # messages received in a row without a schedule point (_next_message)
        self._body_scope: trio.CancelScope | None = None

    def __repr__(self) -> str:
        return f"<Session {self.session_id} {self.state} model={self.config.model!r}>"

    # ================================================================== public: state

    @property
    def state(self) -> str:
        """``new``, ``connecting``, ``open``, ``moving``, ``closing``, ``closed`` or ``failed``."""
        return self._core.state.value

    @property
    def server_session_id(self) -> str | None:
        """The service's id for this session (``setupComplete.sessionId``), once known."""
        connections = self._life.connections
        return connections.server_session_id if connections is not None else None

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

    async def _wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` (re-checked whenever the session's state changes)."""
        while not (predicate() or self._core.finished):
            await self._links.wait_changed()

    async def wait_quiet(self) -> None:
        """Wait until :attr:`is_quiet` (for a supervisor choosing when to rotate)."""
        await self._wait_for(lambda: self.is_quiet)

    async def rotate(self, reason: str = "requested", *, deadline: float | None = None) -> None:
        """Move to a fresh connection now (at the next quiet point) and wait until it is done.

        Nothing sent is lost or doubled and ``async for`` continues unbroken. ``deadline`` (a
        ``trio.current_time()`` value, e.g. when the pool knows the connection will be cut) bounds
        the waits for a quiet point and a fresh handle. Raises the session's error if it fails
        meanwhile, :class:`SessionClosedError` if it is closed.
        """
        self._check_open()
        target = self._core.moves_done + 1
        self._links.apply(self._core.request_move(reason, deadline))
        await self._wait_for(lambda: self._core.moves_done >= target)
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
        await self._wait_for(lambda: self._core.moves_done >= moves)
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
            manual_vad=self._core.config.manual_vad,
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
        await trio.lowlevel.checkpoint_if_cancelled()  # before the answer is claimed, not after
        out = self._core.user_answer(built, trio.current_time())
        self._links.cancel_tools()
        if out is not None:
            # Straight to the core, ahead of user input (never behind input a BLOCKING call holds).
            self._links.push(out)

    async def send(self, message: wire.ClientMessage) -> None:
        """Send a raw client message (escape hatch; tool responses should use send_tool_response)."""
        if not isinstance(message, wire.ClientMessage) or message.kind in ("", "setup"):
            raise ConfigError("send() takes a ClientMessage other than setup")
        if message.tool_response is not None:
            await self.send_tool_response(message.tool_response.function_responses or [])
            return
        if message.realtime_input is not None and message.realtime_input.media_chunks is not None:
            # Deprecated mediaChunks closes the connection with 1007 on current models: the same
            # media goes as realtimeInput.audio / video, which every model takes.
            for realtime_input in wire.split_media_chunks(message.realtime_input):
                await self._send(encode(wire.ClientMessage(realtime_input=realtime_input)))
            return
        await self._send(encode(message))

    async def _send(self, out: Outgoing) -> None:
        """Put ``out`` in the outbox for the writer; wait (first come, first served) while it is
        full. A cancellation point, but a schedule point only when it has to wait."""
        self._check_open()
        await trio.lowlevel.checkpoint_if_cancelled()
        outbox = self._links.outbox
        core = self._core
        if core.holding and not out.priority:  # (statistics() builds an object: only when counted)
            core.count_held(outbox.statistics().current_buffer_used)
        try:
            try:
                outbox.send_nowait(out)
            except trio.WouldBlock:
                await outbox.send(out)
            self._links.unsent += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._check_open()
            raise SessionClosedError("the session is closing") from None

    def _check_open(self) -> None:
        error = self._core.error
        if error is not None:
            self._error_seen = True
            raise SessionClosedError(
                f"the session failed: {error}",
                code=getattr(error, "code", None),
                reason=getattr(error, "reason", None),
            ) from error
        if self._core.closing or self._core.finished:
            raise SessionClosedError("the session is closed")

    # ================================================================== public: receiving

    async def receive(self) -> wire.ServerMessage:
        """The next server message; raises the session's error, or SessionClosedError when closed."""
        try:
            return await self._next_message()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            self._raise_error()
            raise SessionClosedError("the session is closed") from None

    async def _next_message(self) -> wire.ServerMessage:
        """The inbox's next message. A cancellation point; a schedule point only when it has to
        wait, or every ``_EAGER_RECEIVES`` messages taken in a row (so a consumer that always
        finds one still lets others run): trio's ``receive`` yields even when a message is
        waiting, a scheduling round per message. ``Links.unread`` says whether one is waiting,
        so a consumer that keeps up waits at once (no ``WouldBlock`` raised and caught first)."""
        links = self._links
        inbox = links.inbox
        if self._eager >= _EAGER_RECEIVES or links.unread <= 0:
            self._eager = 0
            message = await inbox.receive()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                message = inbox.receive_nowait()
            except trio.WouldBlock:
                self._eager = 0
                message = await inbox.receive()
            else:
                self._eager += 1
        links.unread -= 1
        return message

    def _raise_error(self) -> None:
        if self._core.error is not None:
            self._error_seen = True
            raise self._core.error from None

    def __aiter__(self) -> AsyncIterator[wire.ServerMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[wire.ServerMessage]:
        while True:
            try:
                message = await self._next_message()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                self._raise_error()
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
        """Send one user text turn and return the text (or output transcript) of the answer.

        The answer is the whole interaction (:meth:`receive_turn`): on models that send
        ``interactionStatus``, up to IDLE. An AUDIO answer's text is its output transcription, so
        a session answering in AUDIO needs ``output_audio_transcription`` for this (refused at the
        call otherwise, rather than returning ``""``).
        """
        check_can_ask(self.config)
        await self.send_client_content(text)
        turn = await self.receive_turn()
        return turn.text or turn.output_transcript

    # ================================================================== lifecycle

    async def aclose(self) -> None:
        """Flush what is queued (bounded by ``close_timeout``), send a close frame, end every task."""
        core = self._core
        if core.state.value == "new":
            core.request_close(trio.current_time())
            self._life.finished.set()
            return
        if not core.closing and not core.finished:
            self._links.apply(core.request_close(trio.current_time()))
            self._links.outbox.close()  # senders from now on (and those waiting) get SessionClosedError
        await self._life.finished.wait()

    async def run(self, *, task_status: trio.TaskStatus[Session] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the session until it is closed (returns) or fails (raises a :class:`SessionError`).

        ``task_status.started(self)`` is called once the first connection is set up, so
        ``await nursery.start(session.run)`` returns a ready session; a setup failure is raised
        from ``nursery.start`` itself.
        """
        if self.state != "new":
            raise LocalProtocolError("a Session runs once")
        await self._life.run(lambda: task_status.started(self))
