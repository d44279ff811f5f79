"""The default WebSocket engine: websockets' sans-I/O protocol driven on a
:class:`~livemesh.transport.sockets.SocketIO`, with no task and no channel of its own.

Why (``bench/engine_compare.py``): trio-websocket runs a reader task and a memory channel per
connection and parses frames with wsproto in pure Python; most of the client's CPU then went to
trio's scheduler. Here :meth:`SansioConnection.receive` reads the socket in the caller's task (the
session's reader already is a dedicated reader task) and hands out every frame parsed from one
64 KiB read before touching the socket again; :meth:`SansioConnection.send` writes one frame with
one write. Framing is ``websockets.protocol`` (``ClientProtocol`` for the upgrade, then
``Protocol``, with its C masking), the library google-genai itself uses, so the engine inherits
its RFC 6455 conformance rather than hand-writing framing.

Concurrency without a task (all of it runs on one trio thread; the protocol object is only
touched between awaits):

* one task reads at a time. A second task that needs bytes from the network (``ping`` waiting for
  its pong, ``aclose`` waiting for the peer's close frame, a second receiver) waits for the
  current reader's next read instead of reading itself; when nobody reads it reads itself;
* writes are serialised by the socket's FIFO lock; a frame is queued in the protocol only after
  the lock is held, so a send cancelled while waiting for the lock has queued nothing;
* a write cancelled (or failed) once bytes may have left poisons the connection: the socket is
  closed at once, so the peer never sees anything after a partial frame (it sees 1006, as for a
  network drop), and ``close_info`` reports 1006.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

import trio
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus, InvalidURI
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import Protocol, Side, State
from websockets.uri import parse_uri

from livemesh.errors import ConfigError, SessionError
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
from livemesh.transport.liveness import Keepalive
from livemesh.transport.options import TransportOptions
from livemesh.transport.sockets import NEVER, SocketIO

__all__ = ["SansioConnection", "open_sansio_connection"]

_PING_PAYLOAD: Final = b"livemesh"
_COMPACT_AT: Final = 64
"""Handed-out messages kept at the head of the list before it is compacted (see receive)."""
_MAX_RESPONSE_HEAD: Final = 64 * 1024
"""Bytes of an upgrade answer's head accepted before giving up on finding its end."""
_IO_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError)

log = logging.getLogger("livemesh.transport")


class _NoDebugLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger handed to websockets' protocol: it logs the request line and headers (an API key
    in ``?key=`` or ``x-goog-api-key``) and every frame at DEBUG, so DEBUG is never passed on;
    its warnings and errors (a parser bug) still reach ``livemesh.transport``."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        pass


_PROTOCOL_LOG: Final = _NoDebugLogger(log, {})


class SansioConnection:
    """:class:`~livemesh.transport.Connection` over a ``websockets`` ``Protocol`` on a socket.

    Made by :func:`open_sansio_connection`, which also closes it. Raises livemesh errors only.

    Args:
        io: The connected socket (past TLS), which this connection closes.
        protocol: websockets' protocol in the OPEN state.
        options: The transport options (queue size, close timeout).
        redactor: Scrubs the credentials the connection sent from what the peer sends back.
    """

    __slots__ = (
        "_aborted",
        "_arrived",
        "_disconnect_timeout",
        "_fences",
        "_fragment_text",
        "_fragments",
        "_io",
        "_keepalive",
        "_messages",
        "_pongs",
        "_progress",
        "_protocol",
        "_queue_size",
        "_reading",
        "_redact",
        "_replies",
        "_taken",
        "arrived_after",
        "received_index",
    )

    def __init__(
        self,
        io: SocketIO,
        protocol: Protocol,
        *,
        options: TransportOptions,
        redactor: Redactor | None = None,
    ) -> None:
        self._io = io
        self._protocol = protocol
        self._redact = redactor or Redactor()
        self._disconnect_timeout = options.disconnect_timeout
        self._queue_size = options.message_queue_size  # >= 1 (TransportOptions validates it)
        # (message, arrival stamp: see ``arrived_after``), handed out from index _taken on: a list
        # (56 B empty) rather than a deque (~770 B even empty) on every idle connection
        self._messages: list[tuple[bytes | str, float]] = []
        self._taken = 0
        self.arrived_after: float | None = None
        """For the frame :meth:`receive` returned last: a time no later than its arrival (see
        :attr:`~livemesh.transport.sockets.SocketIO.stamp`)."""
        self.received_index = -1
        """0-based arrival number of the frame :meth:`receive` returned last."""
        self._arrived = 0  # data messages parsed so far
        self._fences: Fences | None = None  # made by the first fence (an idle connection has none)
        self._fragments: list[bytes] = []
        self._fragment_text = False
        self._reading = False
        self._progress: trio.Event | None = None  # made only when a second task waits for a read
        self._pongs = 0  # pongs received so far: a ping waits for this to grow (several may wait)
        self._keepalive = Keepalive()
        self._replies = b""  # the protocol's answers taken out while a writer held the lock
        self._aborted = False

    def __repr__(self) -> str:
        return f"<SansioConnection closed={self.close_info!r}>"

    # ------------------------------------------------------------------ state

    @property
    def close_info(self) -> CloseInfo | None:
        """``None`` while open; the peer's close frame once it came; 1006 when none did."""
        protocol = self._protocol
        if protocol.close_rcvd is not None:
            return self._redact.close_info(protocol.close_rcvd.code, protocol.close_rcvd.reason)
        sent = protocol.close_sent
        if sent is not None and sent.code not in (1000, 1001):
            # we failed the connection (1002 bad frame, 1007 bad UTF-8, 1009 too big): that is the
            # reason, whatever the network did afterwards
            return CloseInfo(code=sent.code, reason=sent.reason)
        if self._aborted or protocol.state is State.CLOSED:
            return CloseInfo()
        return None

    def _ended(self) -> bool:
        protocol = self._protocol
        return self._aborted or protocol.close_rcvd is not None or protocol.state is State.CLOSED

    def _lost(self) -> SessionError:
        return close_error(self.close_info or CloseInfo())

    def _abort(self) -> None:
        """Forget the socket after a partial write or a network error: nothing may follow."""
        self._aborted = True
        self._io.close()

    # ------------------------------------------------------------------ writing

    async def _write_locked(self, *, whole: bool = False) -> None:
        """Send what the protocol queued (and what it queues meanwhile: a pong the reader could
        not send while this write held the lock); the caller holds the lock. ``whole``: finish
        the write even if the caller is cancelled meanwhile (see :meth:`SocketIO.send_locked`)."""
        protocol, io = self._protocol, self._io
        try:
            while True:
                data = b"".join(protocol.data_to_send())
                if self._replies:  # taken from the protocol earlier: they go first
                    data, self._replies = self._replies + data, b""
                if not data:
                    return
                await io.send_locked(data, whole=whole)
        except BaseException:
            # Cancelled or failed with bytes possibly on the wire: the frame boundary is lost.
            self._abort()
            raise

    async def _send_frames(self, frames: Sequence[bytes], fence: bytes | None = None) -> None:
        if self._ended() or self._protocol.close_sent is not None:
            raise self._lost()
        io = self._io
        await io.lock()  # cancelled while waiting here: nothing was queued
        try:
            # A cancellation that arrived while the lock was handed over is raised here, before
            # the frame is queued; from here to the first byte written there is no checkpoint.
            await io.yield_if_eager()
            if self._ended() or self._protocol.close_sent is not None:
                raise self._lost()
            for frame in frames:
                self._protocol.send_text(frame)
            if fence is not None:
                self._protocol.send_ping(fence)
            try:
                await self._write_locked()
            except _IO_ERRORS as exc:
                raise ConnectionLostError(f"send failed: {type(exc).__name__}", code=NO_CLOSE_FRAME) from None
        finally:
            io.unlock()

    async def send(self, data: bytes) -> None:
        """Send one JSON message as a text frame (the codec's UTF-8 bytes, never decoded).

        A cancellation point; a schedule point only when the write has to wait (or every few
        operations, see :meth:`SocketIO.yield_if_eager`).

        Args:
            data: The message.

        Raises:
            SessionError: The connection has ended.
        """
        await self._send_frames((data,))

    async def send_many(self, frames: Sequence[bytes]) -> None:
        """Send several messages as text frames with one write. All or nothing at the protocol
        level; a cancellation while the bytes are in flight aborts the connection like :meth:`send`.

        Args:
            frames: The messages, in order.

        Raises:
            SessionError: The connection has ended.
        """
        if frames:
            await self._send_frames(frames)

    async def send_fenced(self, frames: Sequence[bytes]) -> bytes:
        """Send ``frames`` and then a ping in one write, without waiting for the pong (the
        caller's own reader reads it); the oldest of more than 64 unanswered fences is forgotten.

        Args:
            frames: Messages to send ahead of the ping.

        Returns:
            The ping's token for :meth:`fence_result`.

        Raises:
            SessionError: The connection has ended.
        """
        if self._fences is None:
            self._fences = Fences()
        token = self._fences.open()
        await self._send_frames(frames, token)
        return token

    def fence_result(self, token: bytes) -> int | None:
        """Data messages that arrived before the pong of ``token``'s ping (exact here: the pong
        is counted where it was parsed, in order with the messages); ``None`` while unanswered.

        Args:
            token: What :meth:`send_fenced` returned.

        Returns:
            The count, once (the fence is then forgotten), or ``None``.
        """
        return None if self._fences is None else self._fences.result(token)

    async def _flush_replies(self) -> None:
        """Send the protocol's automatic answers (pong, close echo) a read produced, unless a
        writer holds the lock: they are then kept for the holder, which sends them after its own
        write (:meth:`_write_locked`). Nothing to send (almost every read): no lock, no await."""
        replies = self._protocol.data_to_send()
        if not replies:
            return
        self._replies += b"".join(replies)
        io = self._io
        if io.locked or self._aborted:
            return
        await io.lock()  # free: no checkpoint since it was checked
        try:
            await self._write_locked()
        finally:
            io.unlock()

    # ------------------------------------------------------------------ reading

    def _absorb(self, events: list[Any], stamp: float) -> None:
        """Queue complete messages (reassembling fragments) and count pongs from parsed frames."""
        try:
            for event in events:
                op = event.opcode
                if op is Opcode.BINARY or op is Opcode.TEXT:
                    if event.fin:
                        self._messages.append(
                            (event.data.decode() if op is Opcode.TEXT else event.data, stamp)
                        )
                        self._arrived += 1
                    else:
                        self._fragment_text = op is Opcode.TEXT
                        self._fragments = [event.data]
                elif op is Opcode.CONT:
                    self._fragments.append(event.data)
                    if event.fin:
                        data = b"".join(self._fragments)
                        self._fragments = []
                        self._messages.append((data.decode() if self._fragment_text else data, stamp))
                        self._arrived += 1
                elif op is Opcode.PONG:
                    self._pongs += 1
                    # (websockets hands frame data as a bytearray)
                    if self._fences is not None:
                        self._fences.answered(bytes(event.data), self._arrived)
        except UnicodeDecodeError:
            # websockets' protocol leaves UTF-8 checks to its I/O layer, which is us (RFC 6455 8.1)
            self._protocol.fail(1007, "invalid UTF-8 in a text frame")

    async def _read_once(self, deadline: float = NEVER) -> bool:
        """One read fed to the protocol, in this task; wakes tasks waiting for a read. False if
        ``deadline`` passed before any bytes came (nothing parsed, nothing changed)."""
        # Marked as reading before the first checkpoint: a second task that found no read in
        # progress and yielded here too would otherwise read the same socket at once.
        self._reading = True
        try:
            io = self._io
            await io.yield_if_eager()
            try:
                data = await io.receive(deadline)
            except _IO_ERRORS:
                self._abort()
                data = b""
            if data is None:
                return False
            protocol = self._protocol
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            events = protocol.events_received()
            if events:
                self._keepalive.heard()  # a parsed frame is life; bytes alone are not
                self._absorb(events, io.stamp)
        finally:
            self._reading = False
            if self._progress is not None:
                self._progress.set()
                self._progress = None
        if not self._aborted:  # a pong or the echo of the peer's close
            try:
                await self._flush_replies()
            except _IO_ERRORS:
                pass  # (aborted: the next read or write reports it)
        return True

    async def _await_read(self) -> None:
        """Read once ourselves, or wait for the task that is reading to finish its read."""
        if self._reading:
            if self._progress is None:
                self._progress = trio.Event()
            await self._progress.wait()
        else:
            await self._read_once()

    def set_keepalive(self, *, interval: float | None, pong_timeout: float, by_caller: bool = False) -> None:
        """Keep the connection proven alive from within a waiting :meth:`receive` (no task: a
        keepalive task cost ~3 KB per idle connection), or from the caller's :meth:`keepalive`;
        see :meth:`livemesh.transport.Connection.set_keepalive`.

        Args:
            interval: Seconds without a parsed frame before a ping; ``None``: off.
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
        silent for ``interval``; the reading receive parses the pong.

        Raises:
            SessionError: The connection has ended, or no frame came within ``pong_timeout``
                of the ping (:class:`~livemesh.transport.ConnectionLostError`).
        """
        if self._ended():
            raise self._lost()
        if self._keepalive.check(self._reading):
            await self._send_ping(_PING_PAYLOAD)

    async def receive(self) -> bytes | str:
        """The next server message (``bytes`` for binary, ``str`` for text frames).

        A message already parsed from an earlier read is returned without touching the socket
        (and without a checkpoint: the session's reader checkpoints when it hands it on).

        Returns:
            The message.

        Raises:
            SessionError: The connection has ended (the livemesh error for its close code), or
                the keepalive found it dead.
        """
        messages = self._messages
        while self._taken == len(messages):
            if self._taken:
                messages.clear()
                self._taken = 0
            if self._ended():
                raise self._lost()
            if self._reading:
                await self._await_read()
            elif not await self._read_once(self._keepalive.receive_deadline()) and self._keepalive.due():
                await self._send_ping(_PING_PAYLOAD)  # the same receive reads its pong
        message, self.arrived_after = messages[self._taken]
        self._taken += 1
        if self._taken == len(messages):
            messages.clear()  # drop the references now: audio frames are tens of KiB
            self._taken = 0
        elif self._taken >= _COMPACT_AT:
            # A ping's reads kept adding while this receiver never caught up: do not let the
            # handed-out prefix grow with them.
            del messages[: self._taken]
            self._taken = 0
        self.received_index += 1
        return message

    def _unread(self) -> int:
        return len(self._messages) - self._taken

    async def ping(self) -> None:
        """Send a ping and wait for a pong (the reply to it or a later one).

        Raises:
            SessionError: The connection has ended.
        """
        seen = await self._send_ping(_PING_PAYLOAD)
        await self._read_until(lambda: self._pongs != seen)

    async def _send_ping(self, payload: bytes) -> int:
        """Send a ping with ``payload``; the number of pongs received before it."""
        if self._ended():
            raise self._lost()
        io = self._io
        await io.lock()
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            seen = self._pongs
            if self._ended() or self._protocol.close_sent is not None:
                raise self._lost()
            self._protocol.send_ping(payload)
            # Written whole even if the caller is cancelled meanwhile (a ping() under a timeout):
            # a ping cut mid-write would poison a connection still in use. Bounded: a write stuck
            # that long means the connection is dead. The shield is only raised if the write has
            # to wait (see SocketIO.send_locked).
            try:
                await self._write_locked(whole=True)
            except _IO_ERRORS as exc:
                raise ConnectionLostError(f"ping failed: {type(exc).__name__}", code=NO_CLOSE_FRAME) from None
        finally:
            io.unlock()
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._aborted:
            raise self._lost()
        return seen

    async def _read_until(self, done: Callable[[], bool]) -> None:
        """Read (or wait for the reading task's reads) until ``done()``; raises once closed."""
        while not done():
            if self._ended():
                raise self._lost()
            if self._unread() >= self._queue_size and not self._reading:
                # Backpressure as trio-websocket's bounded queue: nobody consumes messages, so do
                # not read more; wait until a receiver reads (keepalive bounds this wait).
                if self._progress is None:  # (an Event has no truth value: `or` raised)
                    self._progress = trio.Event()
                await self._progress.wait()
                continue
            await self._await_read()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame, wait (bounded by ``disconnect_timeout``, shielded) for the peer's
        close and EOF, then close the socket; idempotent, never raises.

        Args:
            code: The close code to send.
            reason: The close frame's text.
        """
        protocol, io = self._protocol, self._io
        with trio.move_on_after(self._disconnect_timeout) as scope:
            scope.shield = True
            try:
                if not self._aborted:
                    await io.lock()
                    try:
                        if not self._aborted:
                            if protocol.state is State.OPEN:
                                protocol.send_close(code, reason)
                            await self._write_locked()  # also a close echo a busy writer held back
                    finally:
                        io.unlock()
                while not self._aborted and protocol.state is not State.CLOSED:
                    await self._await_read()  # the peer's close frame, then its EOF
            except _IO_ERRORS:
                pass
            except Exception:  # websockets' InvalidState after a race with the peer's close
                pass
        io.close()
        if protocol.close_rcvd is None:
            self._aborted = True


# ---------------------------------------------------------------------- opening


def _answered(handshake: ClientProtocol) -> bool:
    """True if what was fed since the last call completed the upgrade's answer."""
    return any(isinstance(event, Response) for event in handshake.events_received())


async def _upgrade(
    url: str, target: Target, headers: Sequence[tuple[str, str]], options: TransportOptions, io: SocketIO
) -> SansioConnection:
    """The WebSocket upgrade over ``io``, then the open connection.

    The upgrade is parsed by a ``ClientProtocol`` fed only up to the end of the answer's headers
    (a 101 has no body); the frames after it go to a plain ``Protocol`` made for the open
    connection. Why: a ``ClientProtocol`` keeps the handshake's Response and Headers alive in its
    parser for the connection's whole life (~1.5 KB per idle connection). No extension or
    subprotocol is offered, so the open connection needs nothing the handshake negotiated.
    """
    try:
        uri = parse_uri(url)
    except InvalidURI:
        raise ConfigError(f"not a valid WebSocket URL: {redact_url(url)}") from None
    handshake = ClientProtocol(uri, max_size=options.max_message_bytes, logger=_PROTOCOL_LOG)
    request = handshake.connect()
    for name, value in headers:
        request.headers[name] = value
    handshake.send_request(request)
    await io.lock()
    try:
        await io.send_locked(b"".join(handshake.data_to_send()))
    finally:
        io.unlock()
    head = bytearray()  # the answer so far, until its headers end
    rest = b""  # bytes after the headers of a 101: the first frames
    in_body = False  # a refusal's body follows: everything read goes to the handshake protocol
    while True:
        data = await io.receive()
        if not data:  # the end of the stream (None only with a deadline)
            if not in_body:
                handshake.receive_data(bytes(head))
            handshake.receive_eof()
            if not _answered(handshake):
                raise ConnectionLostError(
                    f"{redact_url(url)} closed during the handshake", code=NO_CLOSE_FRAME
                )
            break
        if in_body:
            handshake.receive_data(data)
        else:
            head += data
            end = head.find(b"\r\n\r\n")
            if end < 0:  # the headers' end is still on its way: read on (any number of reads)
                if len(head) > _MAX_RESPONSE_HEAD:
                    raise ConnectionLostError(
                        f"{redact_url(url)} answered the upgrade with an endless header", code=NO_CLOSE_FRAME
                    )
                continue
            handshake.receive_data(bytes(head[: end + 4]))
            rest = bytes(head[end + 4 :])
            if _answered(handshake):
                break
            # not a plain 101 (a refusal with a body): feed on to the handshake protocol
            in_body = True
            handshake.receive_data(rest)
            rest = b""
        if _answered(handshake):
            break
    exc = handshake.handshake_exc
    if exc is not None:
        if isinstance(exc, InvalidStatus):
            raise rejection_error(exc.response.status_code, url)
        raise ConnectionLostError(
            f"{redact_url(url)} answered with an invalid WebSocket handshake ({type(exc).__name__})",
            code=NO_CLOSE_FRAME,
        )
    keep_tls_session(io, target, options)
    protocol = Protocol(Side.CLIENT, max_size=options.max_message_bytes, logger=_PROTOCOL_LOG)
    conn = SansioConnection(io, protocol, options=options, redactor=Redactor.for_request(url, headers))
    if rest:
        protocol.receive_data(rest)
        conn._absorb(protocol.events_received(), io.stamp)
    return conn


class _Opening:
    """What :func:`open_sansio_connection` returns: an async context manager as a small slotted
    object rather than an ``asynccontextmanager`` generator, whose suspended frame every open
    connection would carry (a few hundred bytes per idle session)."""

    __slots__ = ("_conn", "_dialer", "_headers", "_options", "_url")

    def __init__(
        self, url: str, headers: Sequence[tuple[str, str]], options: TransportOptions, dialer: Dialer
    ) -> None:
        self._url = url
        self._headers = headers
        self._options = options
        self._dialer = dialer
        self._conn: SansioConnection | None = None

    def __repr__(self) -> str:
        return f"<open_connection {redact_url(self._url)}>"

    async def __aenter__(self) -> SansioConnection:
        url, options = self._url, self._options
        target = Target.parse(url)
        try:
            with trio.fail_after(options.connect_timeout):
                io = await self._dialer(url, target, options)
                try:
                    self._conn = await _upgrade(url, target, self._headers, options, io)
                except BaseException:
                    io.close()
                    raise
        except trio.TooSlowError:
            raise ConnectionLostError(
                f"connecting to {redact_url(url)} timed out", code=NO_CLOSE_FRAME
            ) from None
        except _IO_ERRORS as exc:
            raise ConnectionLostError(
                f"could not connect to {redact_url(url)} ({type(exc).__name__})", code=NO_CLOSE_FRAME
            ) from None
        return self._conn

    async def __aexit__(self, *exc_info: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()


def open_sansio_connection(
    url: str, headers: Sequence[tuple[str, str]], options: TransportOptions, *, dialer: Dialer = dial
) -> _Opening:
    """Open a WebSocket on the sans-I/O engine; close it (bounded) when the block ends.

    No task is started: the block owns nothing but the socket, closed on exit even if cancelled.

    Args:
        url: The ``ws://`` or ``wss://`` URL.
        headers: Extra request headers (credentials).
        options: The transport options.
        dialer: Opens the socket (TCP and TLS to the URL's host).

    Returns:
        An async context manager yielding a :class:`SansioConnection`.
    """
    return _Opening(url, headers, options, dialer)
