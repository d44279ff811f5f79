"""A second WebSocket engine behind :class:`livemesh.transport.Connection`: websockets' sans-I/O
protocol driven directly on a trio stream.

Why it exists (issue 7, ``bench/README.md``): trio-websocket runs a reader task and a memory
channel per connection and parses frames with wsproto in pure Python; measured end to end, most of
the client's CPU went to trio's scheduler (8-10 task switches per message). This engine has **no
task and no channel of its own**: :meth:`SansioConnection.receive` reads the socket in the
caller's task (the session's reader already is a dedicated reader task) and hands out every frame
parsed from one 64 KiB read before touching the socket again; :meth:`SansioConnection.send`
writes one frame with one ``send_all``. Framing is ``websockets.protocol`` (``ClientProtocol``,
with its C masking), the library google-genai itself uses, so the engine inherits its RFC 6455
conformance rather than hand-writing framing.

It is a drop-in for :func:`livemesh.transport.open_connection` (same signature, same
:class:`~livemesh.transport.TransportOptions`, same livemesh errors): close codes go through
:func:`livemesh.transport.close_error` / :func:`~livemesh.transport.classify_close`, so the session
actor cannot tell the engines apart. ``websockets`` is imported lazily: it is not a core
dependency, and a missing one is a :class:`~livemesh.errors.ConfigError` when a connection is
opened, not an import error for everyone.

Concurrency without a task (all of it runs on one trio thread, the protocol object is only touched
between awaits):

* one task reads at a time. A second task that needs bytes from the network (``ping`` waiting for
  its pong, ``aclose`` waiting for the peer's close frame, a second receiver) waits for the
  current reader's next read instead of reading itself; when nobody reads it reads itself. So
  ``ping`` works with or without a concurrent ``receive``, as trio-websocket's does;
* writes are serialised by a ``trio.StrictFIFOLock``; a frame is queued in the protocol only after
  the lock is held, so a send cancelled while waiting for the lock has queued nothing;
* a write cancelled (or failed) once bytes may have left poisons the connection: the stream is
  aborted at once, so the peer never sees anything after a partial frame (it sees 1006, as for a
  network drop), and ``close_info`` reports 1006.
"""

from __future__ import annotations

import array
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import trio

from livemesh.errors import ConfigError, SessionError
from livemesh.transport import (
    NO_CLOSE_FRAME,
    CloseInfo,
    Connection,
    ConnectionLostError,
    TransportOptions,
    close_error,
    redact_url,
    rejection_error,
)

if TYPE_CHECKING:
    from websockets.client import ClientProtocol

__all__ = ["SansioConnection", "open_connection"]

_PING_PAYLOAD: Final = b"livemesh"


class _NoDebugLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger handed to websockets' protocol: it logs the request line and headers (an API key
    in ``?key=`` or ``x-goog-api-key``) and every frame at DEBUG, so DEBUG is never passed on;
    its warnings and errors (a parser bug) still reach ``livemesh.transport``."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        pass


_PROTOCOL_LOG: Final = _NoDebugLogger(logging.getLogger("livemesh.transport"), {})

_STREAM_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def drain_probe(stream: trio.abc.Stream) -> Callable[[], bool] | None:
    """A check that every byte the peer sent so far has been read from ``stream`` (the kernel's
    receive queue and, under TLS, trio's buffers are empty), or ``None`` where it cannot be told.

    Why: the session judges which of its messages a resumption handle covers by *when the handle
    arrived*. A frame read late (the reader was busy handing earlier messages to a slow consumer)
    must not be dated by the read, or messages sent after the handle was issued look covered and
    are lost on a move. With this check a read that had to wait dates its frames by the wake-up;
    any other read dates them no later than the last moment the buffers were seen empty.
    """
    try:
        import fcntl
        import termios

        request = termios.FIONREAD
    except (ImportError, AttributeError):  # pragma: no cover - not Linux/macOS
        return None
    incoming: Any = None
    ssl_object: Any = None
    transport: Any = stream
    if isinstance(stream, trio.SSLStream):
        # trio keeps received ciphertext in a MemoryBIO and OpenSSL the decrypted rest of a record
        incoming = getattr(stream, "_incoming", None)
        ssl_object = getattr(stream, "_ssl_object", None)
        if not isinstance(incoming, ssl.MemoryBIO) or not isinstance(ssl_object, ssl.SSLObject):
            return None  # pragma: no cover - a trio without these internals: fall back to read times
        transport = stream.transport_stream
    sock = getattr(transport, "socket", None)
    if sock is None:
        return None
    fd = sock.fileno()
    count = array.array("i", [0])

    def drained() -> bool:
        if incoming is not None and (incoming.pending or ssl_object.pending()):
            return False
        try:
            fcntl.ioctl(fd, request, count, True)
        except OSError:
            return False
        return count[0] == 0

    return drained


def _websockets() -> Any:
    """The ``websockets`` modules this engine needs, or a :class:`ConfigError` saying how to get them."""
    try:
        import websockets.client
        import websockets.exceptions
        import websockets.frames
        import websockets.http11
        import websockets.protocol
        import websockets.uri
    except ImportError:
        raise ConfigError(
            "the 'sansio' WebSocket engine needs the 'websockets' package (pip install 'websockets>=13'); "
            "the default trio-websocket engine does not"
        ) from None
    return websockets


class SansioConnection:
    """:class:`~livemesh.transport.Connection` over a ``websockets`` ``ClientProtocol`` on a trio stream.

    Made by :func:`open_connection`, which also closes it. Raises livemesh errors only.
    """

    __slots__ = (
        "_aborted",
        "_arrived",
        "_buffer_size",
        "_caught_up_at",
        "_closed_state",
        "_disconnect_timeout",
        "_fence_count",
        "_fences",
        "_fragment_text",
        "_fragments",
        "_frames",
        "_messages",
        "_open_state",
        "_pongs",
        "_probe",
        "_progress",
        "_protocol",
        "_queue_size",
        "_reading",
        "_send_lock",
        "_stream",
        "arrived_after",
        "received_index",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: ClientProtocol,
        *,
        options: TransportOptions,
        frames: Any,
        states: Any,
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._frames = frames  # websockets.frames, imported lazily
        self._disconnect_timeout = options.disconnect_timeout
        self._queue_size = max(1, options.message_queue_size)
        self._buffer_size = options.receive_buffer_size
        self._send_lock = trio.StrictFIFOLock()
        # (message, arrival stamp: see ``arrived_after``); one deque, not two: ~770 B per connection
        self._messages: deque[tuple[bytes | str, float | None]] = deque()
        self._probe = drain_probe(stream)
        self._caught_up_at: float | None = trio.current_time() if self._probe is not None else None
        self.arrived_after: float | None = None
        self.received_index = -1
        """0-based arrival number of the frame :meth:`receive` returned last (see :meth:`fence`)."""
        self._arrived = 0  # data messages parsed so far
        self._fences: dict[bytes, int] = {}  # fence ping payload -> messages before its pong (-1: none yet)
        self._fence_count = 0
        """For the frame :meth:`receive` returned last: a time (``trio.current_time()``) no later
        than its arrival, give or take the scheduler's wake-up latency; ``None`` if this platform
        cannot tell (then only the time it was read is known)."""
        self._fragments: list[bytes] = []
        self._fragment_text = False
        self._reading = False
        self._progress: trio.Event | None = None  # made only when a second task waits for a read
        self._pongs = 0  # pongs received so far: a ping waits for this to grow (several may wait)
        self._open_state = states.OPEN  # websockets.protocol.State, imported lazily
        self._closed_state = states.CLOSED  # reached once the peer's EOF was fed to the protocol
        self._aborted = False

    def __repr__(self) -> str:
        return f"<SansioConnection closed={self.close_info!r}>"

    # ------------------------------------------------------------------------- state

    @property
    def close_info(self) -> CloseInfo | None:
        """``None`` while open; the peer's close frame once it came; 1006 when none did."""
        protocol = self._protocol
        if protocol.close_rcvd is not None:
            return CloseInfo(code=protocol.close_rcvd.code, reason=protocol.close_rcvd.reason)
        sent = protocol.close_sent
        if sent is not None and sent.code not in (1000, 1001):
            # we failed the connection (1002 bad frame, 1007 bad UTF-8, 1009 too big): that is the
            # reason, whatever the network did afterwards
            return CloseInfo(code=sent.code, reason=sent.reason)
        if self._aborted or protocol.state is self._closed_state:
            return CloseInfo()
        return None

    def _ended(self) -> bool:
        protocol = self._protocol
        return self._aborted or protocol.close_rcvd is not None or protocol.state is self._closed_state

    def _lost(self) -> SessionError:
        return close_error(self.close_info or CloseInfo())

    def _abort(self) -> None:
        """Forget the stream after a partial write or a network error: nothing may follow."""
        self._aborted = True

    # ------------------------------------------------------------------------- writing

    async def _write_locked(self) -> None:
        """Send what the protocol queued; the caller holds the send lock."""
        data = b"".join(self._protocol.data_to_send())
        if not data:
            return
        try:
            await self._stream.send_all(data)
        except BaseException:
            # Cancelled or failed with bytes possibly on the wire: the frame boundary is lost.
            self._abort()
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)
            raise

    async def _send_frames(self, frames: Sequence[bytes]) -> None:
        if self._ended() or self._protocol.close_sent is not None:
            raise self._lost()
        lock = self._send_lock
        if lock.locked():
            await lock.acquire()  # cancelled while waiting here: nothing was queued
        else:
            # Uncontended (the usual case: one writer per session): take it without the
            # scheduling round ``acquire`` costs; send_all below yields anyway.
            await trio.lowlevel.checkpoint_if_cancelled()
            lock.acquire_nowait()
        try:
            # A cancellation that arrived while the lock was handed over is raised here, before
            # the frame is queued; from here to the first byte written there is no checkpoint.
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._ended() or self._protocol.close_sent is not None:
                raise self._lost()
            for frame in frames:
                self._protocol.send_text(frame)
            try:
                await self._write_locked()
            except _STREAM_ERRORS as exc:
                raise ConnectionLostError(f"send failed: {type(exc).__name__}", code=NO_CLOSE_FRAME) from None
        finally:
            lock.release()

    async def send(self, data: bytes) -> None:
        """Send one JSON message as a text frame (the codec's UTF-8 bytes, never decoded)."""
        await self._send_frames((data,))

    async def send_many(self, frames: Sequence[bytes]) -> None:
        """Send several messages as text frames with one ``send_all`` (one syscall, one TLS record
        batch): for a writer that drained several queued messages. All or nothing at the protocol
        level; a cancellation while the bytes are in flight aborts the connection like :meth:`send`.
        """
        if frames:
            await self._send_frames(frames)

    async def _flush_replies(self) -> None:
        """Send the protocol's automatic answers (pong, close echo) unless a writer is mid-send;
        a busy writer's lock must not stall the reader, the answer then leaves with the next write."""
        if self._send_lock.locked() or self._aborted:
            return
        async with self._send_lock:
            await self._write_locked()

    # ------------------------------------------------------------------------- reading

    def _absorb(self, events: list[Any], stamp: float | None = None) -> None:
        """Queue complete messages (reassembling fragments) and count pongs from parsed frames."""
        opcode = self._frames.Opcode
        try:
            for event in events:
                op = event.opcode
                if op is opcode.BINARY or op is opcode.TEXT:
                    if event.fin:
                        self._messages.append(
                            (event.data.decode() if op is opcode.TEXT else event.data, stamp)
                        )
                        self._arrived += 1
                    else:
                        self._fragment_text = op is opcode.TEXT
                        self._fragments = [event.data]
                elif op is opcode.CONT:
                    self._fragments.append(event.data)
                    if event.fin:
                        data = b"".join(self._fragments)
                        self._fragments = []
                        self._messages.append((data.decode() if self._fragment_text else data, stamp))
                        self._arrived += 1
                elif op is opcode.PONG:
                    self._pongs += 1
                    payload = bytes(event.data)  # websockets hands frame data as a bytearray
                    if self._fences.get(payload) == -1:
                        self._fences[payload] = self._arrived
        except UnicodeDecodeError:
            # websockets' protocol leaves UTF-8 checks to its I/O layer, which is us (RFC 6455 8.1)
            self._protocol.fail(1007, "invalid UTF-8 in a text frame")

    async def _read_once(self) -> None:
        """One ``receive_some`` fed to the protocol, in this task; wakes tasks waiting for a read."""
        self._reading = True
        probe = self._probe
        try:
            waits = probe is not None and probe()  # nothing unread: this read waits for new bytes
            try:
                data = await self._stream.receive_some(self._buffer_size)
            except _STREAM_ERRORS:
                self._abort()
                data = b""
            stamp = self._caught_up_at
            if probe is not None:
                now = trio.current_time()
                if waits:
                    # Woken by the first new bytes: the rest of that burst (read later, when it
                    # outgrows the buffer) arrived with or after them, TCP being in order.
                    stamp = self._caught_up_at = now
                elif probe():
                    self._caught_up_at = now  # this read's frames keep the older bound
            protocol = self._protocol
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            events = protocol.events_received()
            self._absorb(events, stamp)
        finally:
            self._reading = False
            if self._progress is not None:
                self._progress.set()
                self._progress = None
        if not self._aborted and protocol.writes:  # a pong or the echo of the peer's close
            try:
                await self._flush_replies()
            except _STREAM_ERRORS:
                self._abort()

    async def _await_read(self) -> None:
        """Read once ourselves, or wait for the task that is reading to finish its read."""
        if self._reading:
            if self._progress is None:
                self._progress = trio.Event()
            await self._progress.wait()
        else:
            await self._read_once()

    async def receive(self) -> bytes | str:
        """The next server frame (``bytes`` for binary, ``str`` for text frames, as trio-websocket).

        A frame already parsed from an earlier read is returned without touching the socket (and
        without a checkpoint: the session's reader checkpoints when it hands the message on).
        Once the connection ended, raises the livemesh error for its close code.
        """
        messages = self._messages
        while not messages:
            if self._ended():
                raise self._lost()
            await self._await_read()
        message, self.arrived_after = messages.popleft()
        self.received_index += 1
        return message

    async def ping(self) -> None:
        """Send a ping and wait for a pong (the reply to it or a later one); raises once closed."""
        seen = await self._send_ping(_PING_PAYLOAD)
        await self._read_until(lambda: self._pongs != seen)

    async def fence(self) -> int:
        """Send a ping and wait for *its* pong (matched by payload); return how many data messages
        arrived before that pong, so a message with ``received_index`` at or past the result came
        after it. Where the server answers pings in order with consuming what came before them,
        such a message was sent after the server consumed everything sent before the ping."""
        self._fence_count += 1
        payload = b"livemesh-fence-%d" % self._fence_count
        fences = self._fences
        fences[payload] = -1
        try:
            await self._send_ping(payload)
            await self._read_until(lambda: fences[payload] >= 0)
            return fences[payload]
        finally:
            del fences[payload]

    async def _send_ping(self, payload: bytes) -> int:
        """Send a ping with ``payload``; the number of pongs received before it."""
        if self._ended():
            raise self._lost()
        async with self._send_lock:
            await trio.lowlevel.checkpoint_if_cancelled()
            seen = self._pongs
            if self._ended() or self._protocol.close_sent is not None:
                raise self._lost()
            self._protocol.send_ping(payload)
            # Written whole even if the caller is cancelled meanwhile (a move cancels its fence
            # ping): a ping cut mid-write would poison a connection still in use (see
            # _write_locked). Bounded: a write stuck that long means the connection is dead.
            with trio.CancelScope(shield=True, deadline=trio.current_time() + self._disconnect_timeout):
                try:
                    await self._write_locked()
                except _STREAM_ERRORS as exc:
                    raise ConnectionLostError(
                        f"ping failed: {type(exc).__name__}", code=NO_CLOSE_FRAME
                    ) from None
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._aborted:
            raise self._lost()
        return seen

    async def _read_until(self, done: Callable[[], bool]) -> None:
        """Read (or wait for the reading task's reads) until ``done()``; raises once closed."""
        while not done():
            if self._ended():
                raise self._lost()
            if len(self._messages) >= self._queue_size and not self._reading:
                # Backpressure as trio-websocket's bounded queue: nobody consumes messages, so do
                # not read more; wait until a receiver reads (keepalive bounds this wait).
                self._progress = self._progress or trio.Event()
                await self._progress.wait()
                continue
            await self._await_read()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame, wait (bounded by ``disconnect_timeout``, shielded) for the peer's
        close and EOF, then close the socket; idempotent, never raises."""
        with trio.move_on_after(self._disconnect_timeout) as scope:
            scope.shield = True
            try:
                protocol = self._protocol
                if not self._aborted:
                    async with self._send_lock:
                        if not self._aborted:
                            if protocol.state is self._open_state:
                                protocol.send_close(code, reason)
                            await self._write_locked()  # also a close echo a busy writer held back
                while not self._aborted and protocol.state is not self._closed_state:
                    await self._await_read()  # the peer's close frame, then its EOF
            except _STREAM_ERRORS:
                pass
            except Exception:  # websockets' InvalidState after a race with the peer's close
                pass
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self._stream)
        if self._protocol.close_rcvd is None:
            self._aborted = True


async def _handshake(
    url: str, headers: Sequence[tuple[str, str]], opts: TransportOptions, ws: Any
) -> SansioConnection:
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(f"not a WebSocket URL: {redact_url(url)}")
    try:
        uri = ws.uri.parse_uri(url)
    except ws.exceptions.InvalidURI:
        raise ConfigError(f"not a valid WebSocket URL: {redact_url(url)}") from None
    host = parts.hostname
    port = parts.port or (443 if secure else 80)
    stream: trio.abc.Stream
    cache = opts.tls_sessions
    ssl_stream: trio.SSLStream[trio.SocketStream] | None = None
    if secure:
        context = opts.ssl_context or (cache.default_context() if cache else ssl.create_default_context())
        ssl_stream = await trio.open_ssl_over_tcp_stream(
            host, port, ssl_context=context, https_compatible=True
        )
        offered = cache.get(context, host, port) if cache else None
        if offered is not None:
            ssl_stream.session = offered  # resumed by the handshake (first I/O) if the server agrees
        stream = ssl_stream
    else:
        stream = await trio.open_tcp_stream(host, port)
    try:
        protocol = ws.client.ClientProtocol(uri, max_size=opts.max_message_bytes, logger=_PROTOCOL_LOG)
        request = protocol.connect()
        for name, value in headers:
            request.headers[name] = value
        protocol.send_request(request)
        await stream.send_all(b"".join(protocol.data_to_send()))
        events: list[Any] = []
        while not any(isinstance(event, ws.http11.Response) for event in events):
            data = await stream.receive_some(opts.receive_buffer_size)
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            events = protocol.events_received()
            if not data and not events:
                raise ConnectionLostError(
                    f"{redact_url(url)} closed during the handshake", code=NO_CLOSE_FRAME
                )
        if protocol.handshake_exc is not None:
            exc = protocol.handshake_exc
            if isinstance(exc, ws.exceptions.InvalidStatus):
                raise rejection_error(exc.response.status_code, url)
            raise ConnectionLostError(
                f"{redact_url(url)} answered with an invalid WebSocket handshake ({type(exc).__name__})",
                code=NO_CLOSE_FRAME,
            )
        if ssl_stream is not None and cache is not None:
            # TLS 1.3 tickets come right after the server's handshake, before this response
            cache.put(ssl_stream.context, host, port, ssl_stream.session)
        conn = SansioConnection(stream, protocol, options=opts, frames=ws.frames, states=ws.protocol.State)
        conn._absorb([event for event in events if isinstance(event, ws.frames.Frame)])
        return conn
    except BaseException:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)
        raise


@asynccontextmanager
async def open_connection(
    url: str,
    headers: Sequence[tuple[str, str]] = (),
    *,
    options: TransportOptions | None = None,
) -> AsyncIterator[Connection]:
    """Open a WebSocket to ``url`` with ``headers``; close it (bounded) when the block ends.

    Same contract as :func:`livemesh.transport.open_connection`: ``wss`` uses
    ``options.ssl_context`` (default: the system's verifying context) over ``trio.SSLStream``;
    ``connect_timeout`` bounds TCP, TLS and the upgrade; a refused upgrade is ``AuthError``
    (401/403), ``QuotaError`` (429), ``SetupRejectedError`` (400/404) or
    :class:`~livemesh.transport.ConnectionLostError`; network failures are ``ConnectionLostError``.
    No task is started: the block owns nothing but the socket, closed on exit even if cancelled.
    """
    opts = options or TransportOptions()
    ws = _websockets()
    where = redact_url(url)
    try:
        with trio.fail_after(opts.connect_timeout):
            conn = await _handshake(url, headers, opts, ws)
    except trio.TooSlowError:
        raise ConnectionLostError(f"connecting to {where} timed out", code=NO_CLOSE_FRAME) from None
    except _STREAM_ERRORS as exc:
        raise ConnectionLostError(
            f"could not connect to {where} ({type(exc).__name__})", code=NO_CLOSE_FRAME
        ) from None
    try:
        yield conn
    finally:
        await conn.aclose()
