"""A scripted Live API server: plays given server messages to whatever client connects.

The emulator (:mod:`livemesh.emulator`) *behaves* like the service; a scripted server only plays
back what a test hands it, which is what a property test needs: a hypothesis-drawn stream of
server messages reaches the client under test over a real WebSocket, exactly as drawn, and the
test then looks at what the client did (its handler's state, what it sent back).

The server speaks the service's framing: it waits for the client's ``setup``, answers it with
``setupComplete`` (unless the script starts with its own), then plays the script; server
messages go out as binary frames of camelCase JSON. It accepts any path and any credentials and
never records either (a path is kept without its query string, where keys travel). WebSocket
framing is trio-websocket's (``wrap_server_stream`` over a trio TCP stream the server owns, so
:class:`~livemesh.testing.Drop` can close the TCP connection without a close frame).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal, TypeAlias

import attrs
import orjson
import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, wrap_server_stream

from livemesh import wire
from livemesh._groups import unwrap_group
from livemesh.errors import DecodeError
from livemesh.testing.script import ClientProtocolError, Close, Drop, Expect, Step
from livemesh.wire import messages as m

__all__ = [
    "LIVE_PATH",
    "ScriptedConnection",
    "ScriptedServer",
    "ScriptedServerFactory",
    "open_scripted_server",
]

LIVE_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
"""The Gemini API's Live path; a scripted server accepts any other path too."""

_INVALID_ARGUMENT = "Request contains an invalid argument."
_STEP_TYPES = (m.ServerMessage, bytes, str, Mapping, Close, Drop, Expect)


@attrs.define(eq=False, repr=False)
class ScriptedConnection:
    """One client connection to a :class:`ScriptedServer`, as the server saw it.

    Attributes:
        index: 0 for the first connection, 1 for the next (a reconnect or a resumption) ...
        path: The request path, without its query string.
        setup: The client's ``setup`` (``None`` until it arrived).
        received: Every client message after the setup, in arrival order.
        sent: Every step the server sent (server messages and raw frames), in order, the
            automatic ``setupComplete`` included.
        errors: What the client got wrong: a frame that does not decode, a first message that
            is not ``setup``, a second ``setup``. The server closes the connection with 1007 on
            the first, as the service does.
        played: The script has run to its end, or the connection ended first.
        closed: The connection has ended.
        close_code: The code the connection ended with (1006 for a drop, ``None`` if not known).
    """

    index: int
    path: str
    setup: m.Setup | None = None
    received: list[m.ClientMessage] = attrs.Factory(list)
    sent: list[m.ServerMessage | bytes | str] = attrs.Factory(list)
    errors: list[str] = attrs.Factory(list)
    played: bool = False
    closed: bool = False
    close_code: int | None = None

    def __repr__(self) -> str:
        state = f"closed {self.close_code}" if self.closed else "open"
        return (
            f"<ScriptedConnection {self.index} {self.path} {len(self.received)} received, "
            f"{len(self.sent)} sent, {state}>"
        )


@attrs.define(eq=False)
class _Live:
    """A connection's I/O handles, kept off the public record."""

    record: ScriptedConnection
    websocket: WebSocketConnection
    stream: trio.abc.Stream


class ScriptedServer:
    """A running scripted server (made by :func:`open_scripted_server`).

    Attributes:
        url: ``ws://HOST:PORT``: pass it as a livemesh session's ``base_url`` (the client adds
            the Live path); :attr:`live_url` is the whole URL for other clients.
        connections: Every connection made so far, in order.
    """

    def __init__(
        self,
        host: str,
        port: int,
        scripts: Sequence[Sequence[Step]],
        *,
        answer_setup: bool,
        text_frames: bool,
        await_tool_responses: bool,
    ) -> None:
        self.url = f"ws://{host}:{port}"
        self.connections: list[ScriptedConnection] = []
        self._scripts = scripts
        self._answer_setup = answer_setup
        self._text_frames = text_frames
        self._await_tool_responses = await_tool_responses
        self._live: dict[int, _Live] = {}
        self._changed = trio.Event()

    def __repr__(self) -> str:
        return f"<ScriptedServer {self.url} {len(self.connections)} connection(s)>"

    @property
    def live_url(self) -> str:
        """The whole URL of the Live endpoint (any path works; this is the Gemini API's)."""
        return self.url + LIVE_PATH

    @property
    def received(self) -> list[m.ClientMessage]:
        """Every client message after the setups, on every connection, connection by connection."""
        return [message for conn in self.connections for message in conn.received]

    @property
    def sent(self) -> list[m.ServerMessage | bytes | str]:
        """Every step sent, on every connection, connection by connection."""
        return [step for conn in self.connections for step in conn.sent]

    def unanswered_calls(self) -> list[str]:
        """Ids of function calls the server sent that the client has not answered.

        A call the server cancelled (``toolCallCancellation``) is not owed an answer. Calls sent
        as raw frames are not tracked.

        Returns:
            The ids in the order the calls were sent.
        """
        called: list[str] = []
        cancelled: set[str] = set()
        for step in self.sent:
            if not isinstance(step, m.ServerMessage):
                continue
            if step.tool_call is not None:
                called.extend(call.id or "" for call in step.tool_call.function_calls or ())
            if step.tool_call_cancellation is not None:
                cancelled.update(step.tool_call_cancellation.ids or ())
        answered = _answered(self.received)
        return [call_id for call_id in called if call_id not in cancelled and call_id not in answered]

    # ------------------------------------------------------------------ waiting

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` is true; it is checked again whenever anything happens
        (a connection, a message either way, a close). Bound the wait with ``trio.fail_after``.

        Args:
            condition: A function of no arguments, e.g. ``lambda: len(server.received) >= 2``.
        """
        while True:
            changed = self._changed
            if condition():
                return
            await changed.wait()

    async def wait_played(self) -> None:
        """Wait until every script has been played to its end (or its connection ended first)."""
        count = len(self._scripts)
        await self.wait_for(
            lambda: len(self.connections) >= count and all(c.played for c in self.connections[:count])
        )

    # ------------------------------------------------------------------ faults

    async def send(
        self, step: m.ServerMessage | bytes | str | Mapping[str, Any], *, connection: int | None = None
    ) -> None:
        """Send one server message (or raw frame) now, outside the script.

        Args:
            step: A server message, or a raw frame (``bytes``, ``str``, a JSON object).
            connection: The connection's index; ``None`` for every open connection.
        """
        _check_step(step, allowed=(m.ServerMessage, bytes, str, Mapping))
        for live in self._select(connection):
            await self._send_frame(live, step)

    async def send_go_away(self, time_left: float = 1.0, *, connection: int | None = None) -> None:
        """Send ``goAway`` now, as the service does before it ends a connection.

        Args:
            time_left: Seconds the client is told it has left.
            connection: The connection's index; ``None`` for every open connection.
        """
        await self.send(
            m.ServerMessage(go_away=m.GoAway(time_left=m.Duration(time_left))), connection=connection
        )

    async def drop(self, *, connection: int | None = None) -> None:
        """Drop connections now: TCP closed with no close frame (the client sees 1006).

        Args:
            connection: The connection's index; ``None`` for every open connection.
        """
        for live in self._select(connection):
            await trio.aclose_forcefully(live.stream)

    async def close(
        self, code: int = 1011, reason: str = "Internal error occurred.", *, connection: int | None = None
    ) -> None:
        """Close connections now with a close frame.

        Args:
            code: The close code.
            reason: The close reason.
            connection: The connection's index; ``None`` for every open connection.
        """
        step = Close(code, reason)  # checks the code and the reason's length
        for live in self._select(connection):
            await live.websocket.aclose(step.code, step.reason)

    def _select(self, index: int | None) -> list[_Live]:
        if index is None:
            return list(self._live.values())
        if not 0 <= index < len(self.connections):
            raise ValueError(f"no connection {index}: {len(self.connections)} made so far")
        live = self._live.get(index)
        return [] if live is None else [live]

    # ------------------------------------------------------------------ serving

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _serve(self, stream: trio.SocketStream) -> None:
        """Serve one TCP connection (the listener's handler)."""
        try:
            async with trio.open_nursery() as nursery:
                try:
                    request = await wrap_server_stream(
                        nursery, stream, max_message_size=wire.DEFAULT_MAX_FRAME_BYTES
                    )
                    websocket = await request.accept()
                except (ConnectionClosed, HandshakeError, trio.BrokenResourceError):
                    nursery.cancel_scope.cancel()
                    return
                record = ScriptedConnection(index=len(self.connections), path=request.path.split("?", 1)[0])
                self.connections.append(record)
                live = _Live(record, websocket, stream)
                self._live[record.index] = live
                self._notify()
                nursery.start_soon(self._read, live)
                script = self._scripts[record.index] if record.index < len(self._scripts) else ()
                try:
                    await self._play(live, script)
                finally:
                    record.played = True
                    self._notify()
        finally:
            self._live = {i: v for i, v in self._live.items() if v.stream is not stream}
            await trio.aclose_forcefully(stream)

    async def _read(self, live: _Live) -> None:
        record = live.record
        try:
            while True:
                frame = await live.websocket.get_message()
                problem = self._take(record, frame)
                self._notify()
                if problem:
                    await live.websocket.aclose(1007, _INVALID_ARGUMENT)
                    return
        except ConnectionClosed as exc:
            record.close_code = exc.reason.code if exc.reason is not None else None
        finally:
            record.closed = True
            self._notify()

    def _take(self, record: ScriptedConnection, frame: bytes | str) -> bool:
        """Record one client frame; ``True`` if it breaks the protocol (the service closes 1007)."""
        try:
            # trio-websocket hands binary messages over as bytearray; the codec takes bytes or str
            message = wire.decode_client(bytes(frame) if isinstance(frame, bytearray) else frame)
        except DecodeError as exc:
            record.errors.append(f"a frame does not decode: {exc}")
            return True
        if record.setup is None:
            if message.setup is None:
                record.errors.append(f"the first message is {message.kind!r}, not 'setup'")
                return True
            record.setup = message.setup
            return False
        if message.setup is not None:
            record.errors.append("a second 'setup' on one connection")
            return True
        record.received.append(message)
        return False

    async def _play(self, live: _Live, script: Sequence[Step]) -> None:
        record = live.record
        await self.wait_for(lambda: record.setup is not None or record.closed)
        if record.setup is None:
            return  # closed before its setup: nothing to play
        first = script[0] if script else None
        own_setup_complete = isinstance(first, m.ServerMessage) and first.setup_complete is not None
        if self._answer_setup and not own_setup_complete:
            if not await self._send_frame(live, m.ServerMessage(setup_complete=m.SetupComplete())):
                return
        cursor = 0
        for step in script:
            if record.closed:
                return
            if isinstance(step, Expect):
                cursor = await self._expect(record, step, cursor)
                if cursor < 0:
                    return
            elif isinstance(step, Close):
                await live.websocket.aclose(step.code, step.reason)
                return
            elif isinstance(step, Drop):
                await trio.aclose_forcefully(live.stream)
                return
            elif not await self._send_frame(live, step):
                return
            elif self._await_tool_responses and isinstance(step, m.ServerMessage) and step.tool_call:
                await self._await_answers(record, step.tool_call)

    async def _await_answers(self, record: ScriptedConnection, tool_call: m.ToolCall) -> None:
        ids = {call.id for call in tool_call.function_calls or ()}
        await self.wait_for(lambda: record.closed or ids <= _answered(record.received))

    async def _expect(self, record: ScriptedConnection, step: Expect, cursor: int) -> int:
        """The index after the first message from ``cursor`` on that matches; -1 if the connection
        ended first."""

        def match() -> int | None:
            received = record.received
            return next((i for i in range(cursor, len(received)) if step.matches(received[i])), None)

        await self.wait_for(lambda: match() is not None or record.closed)
        found = match()
        return -1 if found is None else found + 1

    async def _send_frame(self, live: _Live, step: m.ServerMessage | bytes | str | Mapping[str, Any]) -> bool:
        if isinstance(step, m.ServerMessage):
            frame: bytes | str = wire.encode_server(step)
        elif isinstance(step, Mapping):
            frame = orjson.dumps(step)
        else:
            frame = step
        if self._text_frames and isinstance(frame, bytes) and not isinstance(step, bytes):
            frame = frame.decode("utf-8")
        try:
            await live.websocket.send_message(frame)
        except ConnectionClosed:
            return False
        live.record.sent.append(step if not isinstance(step, Mapping) else frame)
        self._notify()
        return True


def _answered(messages: Iterable[m.ClientMessage]) -> set[str | None]:
    return {
        response.id
        for message in messages
        if message.tool_response is not None
        for response in message.tool_response.function_responses or ()
    }


def _check_step(step: object, allowed: tuple[type, ...] = _STEP_TYPES) -> None:
    if not isinstance(step, allowed):
        names = ", ".join(t.__name__ for t in allowed)
        raise TypeError(f"a script step must be one of {names}; got {type(step).__name__}")


@asynccontextmanager
async def open_scripted_server(
    *scripts: Iterable[Step],
    answer_setup: bool = True,
    await_tool_responses: bool = False,
    frames: Literal["binary", "text"] = "binary",
    strict: bool = True,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[ScriptedServer]:
    """Serve scripted Live API connections for the duration of the block.

    The n-th WebSocket connection plays the n-th script; connections beyond the last script get
    an empty one (their setup is answered, then they stay open, recording what the client
    sends). Each connection waits for the client's ``setup`` and answers it with
    ``setupComplete`` (unless ``answer_setup`` is false or the script starts with a server
    message carrying ``setupComplete``), then plays its steps in order (see
    :mod:`livemesh.testing.script`). After its last step a connection stays open until the client
    closes it or the block ends. Leaving the block stops the server and drops what is still open.

    Args:
        *scripts: One script (an iterable of steps) per connection, in connection order; a
            hypothesis-drawn stream of server messages is a script.
        answer_setup: Send ``setupComplete`` when the setup arrives.
        await_tool_responses: After a ``toolCall``, play on only once the client has answered
            every call in it, as the service does for BLOCKING calls (a client that never
            answers then stalls its script: bound the test with ``trio.fail_after``).
        frames: Send server messages as ``"binary"`` frames (as the service does) or ``"text"``.
        strict: Raise :class:`~livemesh.testing.ClientProtocolError` when the block ends if a
            client broke the protocol (see :attr:`ScriptedConnection.errors`).
        host: The address to listen on.
        port: The port (0: any free one).

    Yields:
        The running :class:`ScriptedServer`.

    Raises:
        TypeError: A step is not a server message, a raw frame, :class:`Close`, :class:`Drop`
            or :class:`Expect` (raised before the server starts).
        ValueError: ``frames`` is neither ``"binary"`` nor ``"text"``.
        ClientProtocolError: With ``strict``, a client broke the protocol.
    """
    if frames not in ("binary", "text"):
        raise ValueError(f"frames must be 'binary' or 'text', not {frames!r}")
    materialized = [list(script) for script in scripts]
    for script in materialized:
        for step in script:
            _check_step(step)
    listeners = await trio.open_tcp_listeners(port, host=host)
    if port == 0:
        for extra in listeners[1:]:  # "localhost" may bind two families, each on its own port
            await extra.aclose()
        listeners = listeners[:1]
    bound = listeners[0].socket.getsockname()[1]
    server = ScriptedServer(
        host,
        bound,
        materialized,
        answer_setup=answer_setup,
        text_frames=frames == "text",
        await_tool_responses=await_tool_responses,
    )
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, server._serve, listeners)
            try:
                yield server
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The block's own error (an AssertionError in a test) comes back as itself.
        raise unwrap_group(group, body_error) from None
    if strict:
        problems = [f"connection {c.index}: {e}" for c in server.connections for e in c.errors]
        if problems:
            raise ClientProtocolError("the client broke the protocol: " + "; ".join(problems))


ScriptedServerFactory: TypeAlias = Callable[..., AbstractAsyncContextManager[ScriptedServer]]
"""The type of :func:`open_scripted_server`, which the ``scripted_server`` fixture returns."""
