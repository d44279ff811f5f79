"""The second WebSocket engine: trio-websocket's connection over the same socket and TLS layer.

trio-websocket is the engine the design card names; it runs a reader task per connection (in the
nursery of this engine's ``open`` block, so nothing outlives it) that parses frames with wsproto
and queues messages in a bounded channel. It sits on a
:class:`~livemesh.transport.streams.SocketIOStream`, so TLS, certificate checks and their errors
are exactly the default engine's, and it implements the whole
:class:`~livemesh.transport.Connection` protocol through trio-websocket's public API:

* ``send_many`` and ``send_fenced`` cork the stream: the messages (and the fence's ping) leave in
  one write;
* a ping that is not waited for (a fence's, the keepalive's) is ``WebSocketConnection.ping``
  stopped as soon as its frame is handed over (the stream says when), so no task waits for pongs;
* arrival stamps, fence counts and liveness come from a
  :class:`~livemesh.transport.frame_scanner.FrameScanner` watching the bytes trio-websocket's
  reader reads: trio-websocket exposes neither when a message arrived nor where a pong fell
  among the messages (its queue of messages read ahead is private), and without them fences
  could only be bounded (a proof then waited for a handle several messages later, which a move
  holding input may never get);
* the keepalive runs inside a waiting :meth:`TrioWebsocketConnection.receive`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final, NoReturn

import trio
import trio_websocket

from livemesh._groups import unwrap_group
from livemesh.errors import SessionError
from livemesh.transport.dial import Dialer, Target, dial, keep_tls_session
from livemesh.transport.errors import (
    NO_CLOSE_FRAME,
    CloseInfo,
    ConnectionLostError,
    Redactor,
    close_error,
    redact_url,
    rejection_error,
)
from livemesh.transport.fences import Fences
from livemesh.transport.frame_scanner import FrameScanner
from livemesh.transport.liveness import Keepalive
from livemesh.transport.options import TransportOptions
from livemesh.transport.sockets import SocketIO
from livemesh.transport.streams import SocketIOStream

__all__ = ["TrioWebsocketConnection", "open_trio_websocket_connection"]

log = logging.getLogger("livemesh.transport")


class _NoDebugRecords(logging.Filter):
    """trio-websocket logs every close reason (a server may echo a credential in it) and every ping
    at DEBUG on its own logger, which no caller can replace: DEBUG records there are dropped, as
    the default engine never passes DEBUG to websockets' logger. Its warnings still go through."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_TRIO_WEBSOCKET_LOG: Final = logging.getLogger("trio-websocket")
if not any(isinstance(f, _NoDebugRecords) for f in _TRIO_WEBSOCKET_LOG.filters):
    _TRIO_WEBSOCKET_LOG.addFilter(_NoDebugRecords())

_IO_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError)
_CLOSED: Final = (trio_websocket.ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError)


class TrioWebsocketConnection:
    """:class:`~livemesh.transport.Connection` over a ``trio_websocket.WebSocketConnection``.

    Made by :func:`open_trio_websocket_connection`, which also closes it. Raises livemesh errors
    only.

    Args:
        stream: The stream trio-websocket runs on (its socket is this connection's).
        nursery: The nursery of the ``open`` block, where trio-websocket's reader runs.
        options: The transport options.
        redactor: Scrubs the credentials the connection sent from what the peer sends back.
    """

    __slots__ = (
        "_disconnect_timeout",
        "_fences",
        "_handed_out",
        "_handshake_scope",
        "_keepalive",
        "_nursery",
        "_pings",
        "_read_done",
        "_receiving",
        "_redact",
        "_scanner",
        "_stream",
        "_stream_ended",
        "_ws",
        "arrived_after",
        "received_index",
    )

    def __init__(
        self, stream: SocketIOStream, nursery: trio.Nursery, *, options: TransportOptions, redactor: Redactor
    ) -> None:
        self._stream = stream
        self._nursery = nursery
        self._redact = redactor
        self._disconnect_timeout = options.disconnect_timeout
        self._ws: trio_websocket.WebSocketConnection | None = None
        self._handshake_scope: trio.CancelScope | None = None
        self._fences = Fences()
        self._keepalive = Keepalive()
        self._receiving = False  # a receive waits for a message (the caller-driven keepalive's rule)
        self._scanner = FrameScanner(self._fences, self._keepalive, opened_at=stream.io.caught_up_at)
        self._handed_out = 0
        self._pings = 0
        self._read_done: trio.Event | None = None  # made when ping() waits for the reader's progress
        self._stream_ended = False
        self.arrived_after: float | None = None
        """For the message :meth:`receive` returned last: a time no later than its arrival (see
        :attr:`~livemesh.transport.sockets.SocketIO.stamp`)."""
        self.received_index = -1
        """0-based arrival number of the message :meth:`receive` returned last."""
        stream.observer = self

    def __repr__(self) -> str:
        return f"<TrioWebsocketConnection closed={self.close_info!r}>"

    # ------------------------------------------------------------------ the stream's reads

    def read_started(self) -> None:
        """(:class:`~livemesh.transport.streams.ReadObserver`) trio-websocket starts a read: it has
        handled everything read before (a close frame, say)."""
        self._progress()

    def read_finished(self, data: bytes | None, stamp: float) -> None:
        """(:class:`~livemesh.transport.streams.ReadObserver`) a read ended: its frames are
        scanned (or the upgrade is given up, if the stream ended before its answer)."""
        if data:
            self._scanner.feed(data, stamp)
        else:
            self._stream_ended = True
            if self._handshake_scope is not None:
                # trio-websocket's reader stops, but its open would wait for an answer until the
                # connect timeout.
                self._handshake_scope.cancel()
        self._progress()

    def _progress(self) -> None:
        if self._read_done is not None:
            self._read_done.set()
            self._read_done = None

    # ------------------------------------------------------------------ state

    @property
    def _socket(self) -> trio_websocket.WebSocketConnection:
        ws = self._ws
        assert ws is not None, "used before the upgrade"
        return ws

    @property
    def close_info(self) -> CloseInfo | None:
        """``None`` while open; how it ended afterwards (1006 without a close frame)."""
        ws = self._ws
        closed = None if ws is None else ws.closed
        if closed is None:
            return None if not self._stream.io.closed else CloseInfo()
        return self._redact.close_info(closed.code, closed.reason or "")

    def _lost(self, exc: BaseException | None = None) -> SessionError:
        info = self.close_info
        if info is None and isinstance(exc, trio_websocket.ConnectionClosed) and exc.reason is not None:
            info = self._redact.close_info(exc.reason.code, exc.reason.reason or "")
        return close_error(info or CloseInfo())

    def _fail(self, what: str, exc: BaseException) -> NoReturn:
        if isinstance(exc, trio_websocket.ConnectionClosed):
            raise self._lost(exc) from None
        self._stream.io.close()
        raise ConnectionLostError(f"{what} failed: {type(exc).__name__}", code=NO_CLOSE_FRAME) from None

    # ------------------------------------------------------------------ writing

    async def send(self, data: bytes) -> None:
        """Send one JSON message as a text frame.

        Args:
            data: The message.

        Raises:
            SessionError: The connection has ended.
        """
        try:
            await self._socket.send_message(data.decode())
        except _CLOSED as exc:
            self._fail("send", exc)

    async def send_many(self, frames: Sequence[bytes]) -> None:
        """Send several messages as text frames with one write (the stream is corked meanwhile).

        Args:
            frames: The messages, in order.

        Raises:
            SessionError: The connection has ended.
        """
        if frames:
            await self._send_corked(frames, None)

    async def send_fenced(self, frames: Sequence[bytes]) -> bytes:
        """Send ``frames`` and then a ping in one write, without waiting for the pong.

        Args:
            frames: Messages to send ahead of the ping.

        Returns:
            The ping's token for :meth:`fence_result`.

        Raises:
            SessionError: The connection has ended.
        """
        token = self._fences.open()
        await self._send_corked(frames, token)
        return token

    async def _send_corked(self, frames: Sequence[bytes], ping: bytes | None) -> None:
        ws, stream = self._socket, self._stream
        await trio.lowlevel.checkpoint_if_cancelled()
        stream.cork()
        try:
            for frame in frames:
                await ws.send_message(frame.decode())
            if ping is not None:
                await self._ping_without_waiting(ping)
        except BaseException as exc:
            # A message may be taken by trio-websocket and kept by the cork: writing none of
            # them now would lose it, writing some would cut the batch: the connection ends.
            stream.io.close()
            if isinstance(exc, _CLOSED):
                self._fail("send", exc)
            raise
        try:
            await stream.uncork()
        except _IO_ERRORS as exc:
            self._fail("send", exc)

    async def _ping_without_waiting(self, payload: bytes) -> None:
        """``WebSocketConnection.ping``, stopped once its frame is handed to the stream (kept by
        the cork, or written); the scanner sees the pong. trio-websocket keeps the payload in its
        table of pings until that pong (or a later one) comes."""
        stream = self._stream
        with trio.CancelScope() as scope:
            stream.on_write(scope.cancel)
            try:
                await self._socket.ping(payload)
            finally:
                stream.on_write(None)

    def fence_result(self, token: bytes) -> int | None:
        """Data messages that arrived before the pong of ``token``'s ping (exact: the scanner
        sees where the pong fell among the messages); ``None`` while unanswered.

        Args:
            token: What :meth:`send_fenced` returned.

        Returns:
            The count, once (the fence is then forgotten), or ``None``.
        """
        return self._fences.result(token)

    # ------------------------------------------------------------------ reading

    def set_keepalive(self, *, interval: float | None, pong_timeout: float, by_caller: bool = False) -> None:
        """Keep the connection proven alive while a :meth:`receive` waits, or from the caller's
        :meth:`keepalive` (see :meth:`livemesh.transport.Connection.set_keepalive`).

        Args:
            interval: Seconds without a complete frame before a ping; ``None``: off.
            pong_timeout: Seconds to wait for any frame after the ping.
            by_caller: The caller awaits :meth:`keepalive` at :meth:`keepalive_deadline`.
        """
        self._keepalive.configure(interval, pong_timeout, by_caller=by_caller)

    def keepalive_deadline(self) -> float:
        """When the caller must next await :meth:`keepalive` (``inf``: the keepalive is off).

        Returns:
            A ``trio.current_time()`` value.
        """
        return self._keepalive.deadline()

    async def keepalive(self) -> None:
        """Run the keepalive rule now (``by_caller``): send its ping if the connection has been
        silent for ``interval``.

        Raises:
            SessionError: No frame came within ``pong_timeout`` of the ping
                (:class:`~livemesh.transport.ConnectionLostError`).
        """
        # Only while a receive waits: with none (a slow consumer), trio-websocket's queue may be
        # full and its reader stopped, the pong unread.
        if self._keepalive.check(self._receiving):
            await self._keepalive_ping()

    async def receive(self) -> bytes | str:
        """The next server message (``str`` for a text frame, ``bytes`` for a binary one).

        Returns:
            The message.

        Raises:
            SessionError: The connection has ended (the livemesh error for its close code), or
                the keepalive found it dead.
        """
        ws, keepalive = self._socket, self._keepalive
        while True:
            deadline = keepalive.receive_deadline()
            self._receiving = True
            try:
                if deadline == math.inf:
                    message = await ws.get_message()
                    break
                with trio.move_on_at(deadline):
                    message = await ws.get_message()
                    break
            except trio_websocket.ConnectionClosed as exc:
                raise self._lost(exc) from None
            finally:
                self._receiving = False
            if keepalive.due():
                await self._keepalive_ping()
        self.received_index = self._handed_out
        self._handed_out += 1
        self.arrived_after = self._scanner.next_stamp()
        return message

    async def _keepalive_ping(self) -> None:
        """The keepalive's ping, written (within the pong timeout: a write stuck longer cuts the
        connection) but not waited for: any frame the scanner sees afterwards is life."""
        keepalive = self._keepalive
        assert keepalive.pinged_at is not None
        with trio.move_on_at(keepalive.pinged_at + keepalive.pong_timeout):
            try:
                await self._ping_without_waiting(self._ping_token())
            except _CLOSED:
                pass  # the next get_message reports it

    def _ping_token(self) -> bytes:
        self._pings += 1
        return b"livemesh-ping-%d" % self._pings

    async def ping(self) -> None:
        """Send a ping and wait for a pong (the reply to it or a later one), as the scanner sees
        them. Not trio-websocket's own wait: a ping in flight when the connection closes is never
        woken there.

        Raises:
            SessionError: The connection has ended.
        """
        ws, scanner = self._socket, self._scanner
        seen = scanner.pongs
        try:
            await self._ping_without_waiting(self._ping_token())
        except _CLOSED as exc:
            self._fail("ping", exc)
        while scanner.pongs == seen:
            if ws.closed is not None or self._stream_ended or self._stream.io.closed:
                raise self._lost()
            if self._read_done is None:
                self._read_done = trio.Event()
            await self._read_done.wait()

    async def open(
        self, url: str, target: Target, headers: Sequence[tuple[str, str]], options: TransportOptions
    ) -> None:
        """The WebSocket upgrade (trio-websocket's ``wrap_client_stream``), its reader task in the
        connection's nursery.

        Args:
            url: The URL (for error messages, redacted).
            target: Its parsed parts.
            headers: Extra request headers.
            options: The transport options.

        Raises:
            ConnectionLostError: The peer closed the stream before answering.
        """
        extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        stream = self._stream
        with trio.CancelScope() as scope:
            self._handshake_scope = scope
            self._ws = await trio_websocket.wrap_client_stream(
                self._nursery,
                stream,  # type: ignore[arg-type]  # any trio stream (its docstring)
                target.host_header,
                target.resource,
                extra_headers=extra,
                message_queue_size=options.message_queue_size,
                max_message_size=options.max_message_bytes,
                receive_buffer_size=options.receive_buffer_size,
            )
        self._handshake_scope = None
        if scope.cancelled_caught:
            raise ConnectionLostError(f"{redact_url(url)} closed during the handshake", code=NO_CLOSE_FRAME)
        keep_tls_session(stream.io, target, options)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and wait (bounded by ``disconnect_timeout``, shielded) for the
        peer's; then close the socket. Idempotent, never raises.

        Args:
            code: The close code to send.
            reason: The close frame's text.
        """
        ws = self._ws
        if ws is not None:
            with trio.move_on_after(self._disconnect_timeout) as scope:
                scope.shield = True
                try:
                    await ws.aclose(code, reason or None)
                except (*_CLOSED, trio_websocket.HandshakeError):
                    pass
        self._stream.io.close()


def _reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` as it was (its context and cause kept, not the group it was found in)."""
    context, cause, suppress = exc.__context__, exc.__cause__, exc.__suppress_context__
    try:
        raise exc
    finally:
        exc.__context__, exc.__cause__, exc.__suppress_context__ = context, cause, suppress
        del exc


def _opening_error(exc: BaseException, url: str) -> BaseException:
    """What a failure before the connection opened becomes (other exceptions as they are)."""
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return rejection_error(exc.status_code, url)
    if isinstance(exc, trio.TooSlowError):
        return ConnectionLostError(f"connecting to {redact_url(url)} timed out", code=NO_CLOSE_FRAME)
    if isinstance(exc, (*_IO_ERRORS, trio_websocket.HandshakeError)):
        return ConnectionLostError(
            f"could not connect to {redact_url(url)} ({type(exc).__name__})", code=NO_CLOSE_FRAME
        )
    return exc


@asynccontextmanager
async def open_trio_websocket_connection(
    url: str, headers: Sequence[tuple[str, str]], options: TransportOptions, *, dialer: Dialer = dial
) -> AsyncIterator[TrioWebsocketConnection]:
    """Open a WebSocket on the trio-websocket engine; close it (bounded) when the block ends.

    trio-websocket's reader task, fence pings and keepalive pings run in a nursery inside this
    block: nothing outlives it.

    Args:
        url: The ``ws://`` or ``wss://`` URL.
        headers: Extra request headers (credentials).
        options: The transport options.
        dialer: Opens the socket (TCP and TLS to the URL's host).

    Yields:
        The open connection.
    """
    target = Target.parse(url)
    opened = False
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(options.connect_timeout):
                io: SocketIO = await dialer(url, target, options)
                stream = SocketIOStream(io)
                conn = TrioWebsocketConnection(
                    stream, nursery, options=options, redactor=Redactor.for_request(url, headers)
                )
                try:
                    await conn.open(url, target, headers, options)
                except BaseException:
                    io.close()
                    raise
            opened = True
            try:
                yield conn
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                await conn.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        inner = unwrap_group(group, body_error)
        if inner is group:
            raise
        if opened:
            _reraise(inner)
        failure = _opening_error(inner, url)
        if failure is inner:
            _reraise(inner)
        raise failure from None
