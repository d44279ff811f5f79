"""A livemesh session for asyncio code: :class:`Session` and :func:`open_session`.

The session itself is livemesh's trio actor, running in the loop's guest run; this module gives
asyncio code the same methods. Sends go through the session's :class:`~livemesh.aio.streams.Outbox`,
messages arrive through its :class:`~livemesh.aio.streams.Mailbox`; moves and closing are calls
into trio (:meth:`~livemesh.aio.guest.GuestRun.call`). Cancelling an asyncio receive cancels only
that wait: the message stays queued.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio

from livemesh import wire
from livemesh.aio.adapt import adapt_callable, adapt_config
from livemesh.aio.block import TrioBlock
from livemesh.aio.guest import GuestRun, guest_run
from livemesh.aio.streams import Mailbox, Outbox
from livemesh.errors import LivemeshError, SessionClosedError
from livemesh.session import Session as TrioSession
from livemesh.session import SessionConfig, SessionMetrics, Turn
from livemesh.session import open_session as trio_open_session
from livemesh.session.turns import TurnBuilder, check_can_ask

__all__ = ["Session", "open_session"]


class Session:
    """A livemesh session for asyncio code (see :func:`open_session` and ``Pool.session``).

    The methods are those of :class:`livemesh.Session`, with the same arguments, results and
    exceptions; the coroutines are asyncio's. The session runs in the loop's trio guest run:
    its reader, writer and tools keep running while asyncio code does other work.
    """

    __slots__ = ("_mailbox", "_outbox", "_run", "_session")

    def __init__(self, session: TrioSession, run: GuestRun, mailbox: Mailbox, outbox: Outbox) -> None:
        self._session = session
        self._run = run
        self._mailbox = mailbox
        self._outbox = outbox

    def __repr__(self) -> str:
        return f"<asyncio {self._session!r}>"

    # ------------------------------------------------------------------ state (plain reads)

    @property
    def trio_session(self) -> TrioSession:
        """The trio session behind this one (its synchronous members may be used from asyncio code;
        await its coroutines with :func:`livemesh.aio.run_trio`)."""
        return self._session

    @property
    def session_id(self) -> str:
        """livemesh's name for this session in logs and metrics."""
        return self._session.session_id

    @property
    def server_session_id(self) -> str | None:
        """The service's id of the session (``setupComplete.sessionId``), stable across moves."""
        return self._session.server_session_id

    @property
    def config(self) -> SessionConfig:
        """The session's configuration (asyncio tools and callbacks appear wrapped for trio)."""
        return self._session.config

    @property
    def state(self) -> str:
        """``new``, ``connecting``, ``open``, ``moving``, ``closing``, ``closed`` or ``failed``."""
        return self._session.state

    @property
    def resume_handle(self) -> str | None:
        """The newest resumable handle."""
        return self._session.resume_handle

    @property
    def error(self) -> LivemeshError | None:
        """Why the session failed (``None`` while healthy or after a normal close)."""
        return self._session.error

    def statistics(self) -> SessionMetrics:
        """A frozen snapshot of this session's counters (cheap; call it any time)."""
        return self._session.statistics()

    # ------------------------------------------------------------------ sending

    async def send_client_content(self, turns: Any = None, *, turn_complete: bool = True) -> None:
        """Append ordered turns to the context (a str is one user turn); interrupts a generation.

        Args:
            turns: A str (one user turn), a ``wire.Content``, or a list of turns.
            turn_complete: Whether the model should answer now.

        Raises:
            ConfigError: ``turns`` is not something a turn can be made of.
            SessionClosedError: The session is closed or failed.
        """
        await self._send(self._session.send_client_content, turns, turn_complete=turn_complete)

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

        Returns once the message is queued for the session's writer (waiting while its outbox
        is full), as the trio method does.

        Args:
            audio: 16-bit little-endian PCM at ``audio_rate`` Hz.
            video: One encoded frame (JPEG).
            text: Realtime text.
            activity_start: The user started speaking (automatic VAD off).
            activity_end: The user stopped speaking (automatic VAD off).
            audio_stream_end: The microphone paused (automatic VAD on).
            audio_rate: The sample rate of ``audio``.

        Raises:
            ConfigError: Not exactly one input, or a bad value.
            SessionClosedError: The session is closed or failed.
        """
        await self._send(
            self._session.send_realtime_input,
            audio=audio,
            video=video,
            text=text,
            activity_start=activity_start,
            activity_end=activity_end,
            audio_stream_end=audio_stream_end,
            audio_rate=audio_rate,
        )

    async def send_tool_response(self, responses: Any, *, scheduling: str | None = None) -> None:
        """Answer tool calls yourself (calls no registered function handles).

        Args:
            responses: ``FunctionResponse`` objects or dicts with ``id``, ``name``, ``response``.
            scheduling: For NON_BLOCKING calls: ``SILENT``, ``WHEN_IDLE`` or ``INTERRUPT``.

        Raises:
            LocalProtocolError: An id is not owed an answer.
            SessionClosedError: The session is closed or failed.
        """
        await self._send(self._session.send_tool_response, responses, scheduling=scheduling)

    async def send(self, message: wire.ClientMessage) -> None:
        """Send a raw client message (escape hatch; tool responses should use send_tool_response).

        Args:
            message: Any ``wire.ClientMessage`` but ``setup``.

        Raises:
            ConfigError: ``message`` is not a ClientMessage, or is a setup.
            SessionClosedError: The session is closed or failed.
        """
        await self._send(self._session.send, message)

    async def _send(self, method: Callable[..., Awaitable[None]], *args: Any, **kwargs: Any) -> None:
        if self._outbox.closed:  # the block is over: the trio session raises its own error
            async with guest_run() as run:
                await run.call(method, *args, **kwargs)
            return
        await self._outbox.send(method, *args, **kwargs)

    # ------------------------------------------------------------------ receiving

    async def receive(self) -> wire.ServerMessage:
        """The next server message.

        Cancelling the waiting task cancels only the wait (no message is lost).

        Returns:
            The next message, in arrival order, unbroken across moves.

        Raises:
            SessionClosedError: The session closed normally and every message was received.
            SessionError: The session failed (the same error the trio session raises).
        """
        message = await self._mailbox.next()
        if message is None:
            raise SessionClosedError("the session is closed")
        return message

    def __aiter__(self) -> Session:
        return self

    async def __anext__(self) -> wire.ServerMessage:
        message = await self._mailbox.next()
        if message is None:
            raise StopAsyncIteration
        return message

    async def receive_turn(self) -> Turn:
        """Collect messages up to the end of the next interaction: text, audio, transcripts, tool calls.

        The interaction ends where the trio session's ``receive_turn`` ends it (``interactionStatus``
        IDLE on models that send it, else ``turnComplete``).

        Returns:
            The turn (``Turn.messages`` holds every message it was made of).

        Raises:
            SessionClosedError: The session closed before the turn completed.
            SessionError: The session failed.
            RemoteProtocolError: A streamed function call's pieces could not be assembled.
        """
        builder = TurnBuilder()
        while True:
            if builder.add(await self.receive()):
                return builder.build()

    async def ask(self, text: str) -> str:
        """Send one user text turn and return the text (or output transcript) of the answer.

        Args:
            text: The user's turn.

        Returns:
            The answer's text, or its output transcription for an audio model.

        Raises:
            ConfigError: The session answers in AUDIO without ``output_audio_transcription``.
            SessionClosedError: The session is closed or failed.
        """
        check_can_ask(self._session.config)
        await self.send_client_content(text)
        turn = await self.receive_turn()
        return turn.text or turn.output_transcript

    # ------------------------------------------------------------------ moves and lifecycle

    async def rotate(self, reason: str = "requested", *, deadline: float | None = None) -> None:
        """Move to a fresh connection now (at the next quiet point) and wait until it is done.

        Args:
            reason: Why (for logs and metrics).
            deadline: A ``trio.current_time()`` value bounding the waits (asyncio code may call
                ``trio.current_time()`` while a livemesh.aio block is open).

        Raises:
            SessionClosedError: The session is closed, or failed meanwhile.
        """
        await self._run.call(self._session.rotate, reason, deadline=deadline)

    async def wait_moved(self, moves: int = 1) -> None:
        """Wait until the session has moved to a new connection ``moves`` times in all.

        Args:
            moves: How many moves (planned moves and reconnects) to wait for, counted from the start.

        Raises:
            ConfigError: ``moves`` is not a non-negative int.
            SessionClosedError: The session closed first.
        """
        await self._run.call(self._session.wait_moved, moves)

    async def wait_quiet(self) -> None:
        """Wait until the session is at a quiet point (no generation, no pending call)."""
        await self._run.call(self._session.wait_quiet)

    async def aclose(self) -> None:
        """Flush what is queued (bounded by ``close_timeout``), send a close frame, end every task."""
        await self._run.call(self._session.aclose)

    def _undelivered_error(self) -> LivemeshError | None:
        """The session's failure if no asyncio code has been told about it."""
        return None if self._mailbox.error_delivered else self._session.error


async def start_session(session: TrioSession, nursery: trio.Nursery, run: GuestRun) -> Session:
    """(trio) The asyncio face of ``session``, its pump and sender started in ``nursery``."""
    mailbox, outbox = Mailbox(), Outbox()
    nursery.start_soon(mailbox.pump, session, name=f"livemesh.aio pump {session.session_id}")
    nursery.start_soon(outbox.run, name=f"livemesh.aio sender {session.session_id}")
    return Session(session, run, mailbox, outbox)


def open_session(
    config: SessionConfig | Mapping[str, Any] | None = None,
    /,
    *,
    on_handle: Callable[[str], Awaitable[None] | None] | None = None,
    rng: random.Random | None = None,
    **options: Any,
) -> AbstractAsyncContextManager[Session]:
    """Open a Live session for the duration of an asyncio ``async with`` block.

    ``async with livemesh.aio.open_session(model="gemini-3.8-live", output_audio_transcription={}) as s:``
    takes what :func:`livemesh.open_session` takes. Tools, callbacks and ``on_handle`` written
    as ``async def`` run as asyncio tasks on the loop (in a copy of the context where this was
    called); plain functions run as they do under trio (tools in a worker thread, callbacks on
    the loop's thread, so they must not block).

    Args:
        config: A ``SessionConfig`` or a dict of its options.
        on_handle: Called with every new resumable handle (plain or asyncio function).
        rng: Randomness for retry jitter.
        **options: ``SessionConfig`` fields, merged into ``config``.

    Returns:
        An async context manager yielding the :class:`Session`.

    Raises:
        ConfigError: A bad option, at the call, before anything connects.
        SessionError: From the block: the session could not open, or failed while the block ran
            (the block is then cancelled and the error raised from it, as with trio).
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    built = adapt_config(SessionConfig.build(config, **options), loop, context)
    hook = adapt_callable(on_handle, loop, context)
    return TrioBlock(
        trio_open_session(built, on_handle=hook, rng=rng),
        setup=start_session,
        failure=Session._undelivered_error,
    )
