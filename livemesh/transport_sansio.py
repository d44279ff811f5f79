"""A second WebSocket engine behind :class:`livemesh.transport.Connection`: websockets' sans-I/O
protocol driven directly on a trio stream.

Why it exists (issue 7, ``bench/README.md``): trio-websocket runs a reader task and a memory
channel per connection and parses frames with wsproto in pure Python; measured end to end, most of
the client's CPU went to trio's scheduler (8-10 task switches per message). This engine has **no
task and no channel of its own**: :meth:`SansioConnection.receive` reads the socket in the
caller's task (the session's reader already is a dedicated reader task) and hands out every frame
parsed from one 64 KiB read before touching the socket again; :meth:`SansioConnection.send`
writes one frame with one write. Framing is ``websockets.protocol`` (``ClientProtocol`` for the
upgrade, then ``Protocol``, with its C masking), the library google-genai itself uses, so the
engine inherits its RFC 6455 conformance rather than hand-writing framing.

Socket I/O (issues 6/7: idle memory per session, CPU per message): on a plain socket the engine
reads and writes the non-blocking stdlib socket itself and parks in ``trio.lowlevel.wait_readable``
/ ``wait_writable`` only when the kernel says so, so an operation that completes at once costs no
scheduling round (a full checkpoint every ``_EAGER_OPS`` such operations keeps it fair). Over TLS
(``trio.SSLStream`` over a socket, once its handshake is done) it does the same beside the stream:
reads feed the stream's SSLObject and decrypt every complete record at once, writes encrypt with it,
both under the stream's own transport locks (``_TlsInternals`` says which internals; without them,
or while the stream does I/O of its own, the stream's public methods are used). The idle keepalive
runs inside a waiting :meth:`SansioConnection.receive` (``set_keepalive``), not in a task.

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
* writes are serialised by a FIFO send lock (a flag and a parking lot made on first contention);
  a frame is queued in the protocol only after the lock is held, so a send cancelled while
  waiting for the lock has queued nothing;
* a write cancelled (or failed) once bytes may have left poisons the connection: the stream is
  aborted at once, so the peer never sees anything after a partial frame (it sees 1006, as for a
  network drop), and ``close_info`` reports 1006.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import trio

try:
    import fcntl
    import termios
except ImportError:  # pragma: no cover - not Linux/macOS
    fcntl = None  # type: ignore[assignment]
    termios = None  # type: ignore[assignment]

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
    from websockets.protocol import Protocol

__all__ = ["SansioConnection", "open_connection"]

_MAX_FENCES: Final = 64
"""Unanswered :meth:`SansioConnection.send_fenced` pings kept per connection."""
_PING_PAYLOAD: Final = b"livemesh"
_NEVER: Final = float("inf")
_COMPACT_AT: Final = 64
"""Handed-out messages kept at the head of the list before it is compacted (see receive)."""
_EAGER_OPS: Final = 16
"""Socket operations in a row that may complete without a schedule point (see _yield_if_eager)."""

log = logging.getLogger("livemesh.transport")


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


class _DrainProbe:
    """The check :func:`drain_probe` returns: a slotted object rather than a closure over four
    cells and a buffer (a few hundred bytes less per idle connection)."""

    __slots__ = ("_fd", "_incoming", "_request", "_ssl_object")

    def __init__(self, fd: int, request: int, incoming: Any, ssl_object: Any) -> None:
        self._fd = fd
        self._request = request
        self._incoming = incoming
        self._ssl_object = ssl_object

    def __call__(self) -> bool:
        if self._incoming is not None and (self._incoming.pending or self._ssl_object.pending()):
            return False
        try:
            count = fcntl.ioctl(self._fd, self._request, b"\0\0\0\0")
        except OSError:
            return False
        return count == b"\0\0\0\0"


def drain_probe(stream: trio.abc.Stream) -> Callable[[], bool] | None:
    """A check that every byte the peer sent so far has been read from ``stream`` (the kernel's
    receive queue and, under TLS, trio's buffers are empty), or ``None`` where it cannot be told.

    Why: the session judges which of its messages a resumption handle covers by *when the handle
    arrived*. A frame read late (the reader was busy handing earlier messages to a slow consumer)
    must not be dated by the read, or messages sent after the handle was issued look covered and
    are lost on a move. With this check a read that had to wait dates its frames by the wake-up;
    any other read dates them no later than the last moment the buffers were seen empty.
    """
    if fcntl is None or termios is None or not hasattr(termios, "FIONREAD"):
        return None  # pragma: no cover - not Linux/macOS
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
    return _DrainProbe(sock.fileno(), termios.FIONREAD, incoming, ssl_object)


class _TlsInternals:
    """The parts of a ``trio.SSLStream`` the engine uses directly (see ``_read_tls``,
    ``_send_tls`` and ``_more_plaintext``).

    What is relied on (trio 0.35 checked; :func:`_tls_internals` returns ``None`` if any is
    missing, and the engine then goes through the stream's public methods only): ``_ssl_object``
    (the ``ssl.SSLObject``), ``_incoming`` / ``_outgoing`` (its two ``MemoryBIO``), ``_state``
    (an enum with members ``OK`` and ``BROKEN``), ``_handshook.done``, ``_inner_send_lock`` (the
    ``StrictFIFOLock`` ordering transport writes), ``_inner_recv_lock`` (the ``Lock`` held while
    the stream reads its transport) with the counter ``_inner_recv_count`` (bumped after each
    transport read, so a stream operation that waited for the lock retries with the new bytes
    instead of reading again) and ``_https_compatible``. The rules are ``SSLStream._retry``'s:
    interact with the SSLObject synchronously, send what it wrote under the transport-write lock
    before anything else, translate its errors the same way.
    """

    __slots__ = (
        "broken",
        "end",
        "handshaken",
        "https_compatible",
        "incoming",
        "ok",
        "outgoing",
        "recv_lock",
        "send_lock",
        "sock",
        "ssl_object",
        "stream",
    )

    def __init__(
        self,
        stream: Any,
        ssl_object: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        states: Any,
        sock: socket.socket | None,
    ) -> None:
        self.stream = stream
        self.ssl_object = ssl_object
        self.incoming = incoming
        self.outgoing = outgoing
        self.ok: object = states.OK
        self.broken: object = states.BROKEN
        self.send_lock: trio.StrictFIFOLock = stream._inner_send_lock
        self.recv_lock: trio.Lock = stream._inner_recv_lock
        self.https_compatible = bool(stream._https_compatible)
        self.sock = sock
        self.handshaken = False  # cached once seen: a handshake stays done
        # How decrypting ended, kept for every later read as the SSLObject would repeat it: an
        # SSLZeroReturnError made here for the peer's close_notify, else the SSL error raised.
        self.end: BaseException | None = None

    def _healthy(self) -> bool:
        if self.sock is None or self.stream._state is not self.ok:
            return False
        if not self.handshaken:
            self.handshaken = bool(self.stream._handshook.done)
        return self.handshaken

    def can_read_directly(self) -> bool:
        """True if a read may bypass ``SSLStream.receive_some``: the stream is over a plain
        socket, its handshake is done, it is healthy, and it is not reading its transport itself
        (a renegotiation in a fallback ``send_all``)."""
        return self._healthy() and not self.recv_lock.locked()

    def can_write_directly(self) -> bool:
        """True if a write may bypass ``SSLStream.send_all``: the handshake is done, the stream is
        healthy, and no transport write of its own is queued or in flight."""
        return self._healthy() and not self.send_lock.locked()

    def break_stream(self) -> None:
        """Mark the stream broken, as ``SSLStream._retry`` does after an SSL error or a write
        that may have been cut: every later stream operation raises ``BrokenResourceError``."""
        self.stream._state = self.broken


def _is_tls_eof(exc: BaseException) -> bool:
    """The peer closed TCP without close_notify (trio's ``_is_eof``, string check included)."""
    return isinstance(exc, ssl.SSLEOFError) or "UNEXPECTED_EOF_WHILE_READING" in str(
        getattr(exc, "strerror", None) or ""
    )


def _tls_internals(stream: trio.abc.Stream) -> _TlsInternals | None:
    """The internals of a ``trio.SSLStream`` (None otherwise, or for a trio without them)."""
    if not isinstance(stream, trio.SSLStream):
        return None
    ssl_object = getattr(stream, "_ssl_object", None)
    incoming = getattr(stream, "_incoming", None)
    outgoing = getattr(stream, "_outgoing", None)
    state = getattr(stream, "_state", None)
    states = type(state)
    if not (
        isinstance(ssl_object, ssl.SSLObject)
        and isinstance(incoming, ssl.MemoryBIO)
        and isinstance(outgoing, ssl.MemoryBIO)
        and getattr(states, "OK", None) is not None
        and getattr(states, "BROKEN", None) is not None
        and hasattr(getattr(stream, "_handshook", None), "done")
        and isinstance(getattr(stream, "_inner_send_lock", None), trio.StrictFIFOLock)
        and isinstance(getattr(stream, "_inner_recv_lock", None), trio.Lock)
        and isinstance(getattr(stream, "_inner_recv_count", None), int)
        and hasattr(stream, "_https_compatible")
    ):
        return None  # pragma: no cover - a trio without these internals
    return _TlsInternals(stream, ssl_object, incoming, outgoing, states, _raw_socket(stream.transport_stream))


def _raw_socket(stream: trio.abc.Stream) -> socket.socket | None:
    """The non-blocking stdlib socket under a plain ``trio.SocketStream`` (None for TLS or any
    other stream): the engine reads and writes it directly (see :meth:`SansioConnection._read_once`)."""
    if type(stream) is not trio.SocketStream:
        return None
    raw = getattr(stream.socket, "_sock", None)
    return raw if isinstance(raw, socket.socket) else None


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
    """:class:`~livemesh.transport.Connection` over a ``websockets`` ``Protocol`` on a trio stream.

    Made by :func:`open_connection`, which also closes it. Raises livemesh errors only.
    """

    __slots__ = (
        "_aborted",
        "_arrived",
        "_buffer_size",
        "_caught_up_at",
        "_closed_state",
        "_disconnect_timeout",
        "_eager",
        "_fence_count",
        "_fences",
        "_fragment_text",
        "_fragments",
        "_frames",
        "_keepalive",
        "_last_heard",
        "_messages",
        "_open_state",
        "_pinged_at",
        "_pongs",
        "_probe",
        "_progress",
        "_protocol",
        "_queue_size",
        "_reading",
        "_send_busy",
        "_send_waiters",
        "_sock",
        "_stream",
        "_taken",
        "_tls",
        "arrived_after",
        "received_index",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: Protocol,
        *,
        options: TransportOptions,
        frames: Any,
        states: Any,
    ) -> None:
        self._stream = stream
        self._sock = _raw_socket(stream)
        self._protocol = protocol
        self._frames = frames  # websockets.frames, imported lazily
        self._disconnect_timeout = options.disconnect_timeout
        self._queue_size = max(1, options.message_queue_size)
        self._buffer_size = options.receive_buffer_size
        # The send lock, made of a flag and a FIFO of waiters created on first contention (one
        # writer per session: almost never), not a StrictFIFOLock per connection.
        self._send_busy = False
        self._send_waiters: trio.lowlevel.ParkingLot | None = None
        # (message, arrival stamp: see ``arrived_after``), handed out from index _taken on: a list
        # (56 B empty) rather than a deque (~770 B even empty) on every idle connection
        self._messages: list[tuple[bytes | str, float | None]] = []
        self._taken = 0
        # a plain socket needs no probe: its reads tell (see _read_once)
        self._probe = drain_probe(stream) if self._sock is None else None
        self._tls = _tls_internals(stream)
        self._caught_up_at: float | None = (
            trio.current_time() if self._probe is not None or self._sock is not None else None
        )
        self.arrived_after: float | None = None
        """For the frame :meth:`receive` returned last: a time (``trio.current_time()``) no later
        than its arrival, give or take the scheduler's wake-up latency; ``None`` if this platform
        cannot tell (then only the time it was read is known)."""
        self.received_index = -1
        """0-based arrival number of the frame :meth:`receive` returned last (see :meth:`send_fenced`)."""
        self._arrived = 0  # data messages parsed so far
        self._fences: dict[bytes, int] = {}  # fence ping payload -> messages before its pong (-1: none yet)
        self._fence_count = 0
        self._fragments: list[bytes] = []
        self._fragment_text = False
        self._reading = False
        self._eager = 0  # socket operations in a row that did not wait (see _yield_if_eager)
        self._progress: trio.Event | None = None  # made only when a second task waits for a read
        self._pongs = 0  # pongs received so far: a ping waits for this to grow (several may wait)
        self._keepalive: tuple[float, float] | None = None  # (interval, pong timeout): set_keepalive
        self._last_heard = trio.current_time()  # when bytes last came from the peer
        self._pinged_at: float | None = None  # a keepalive ping waiting for any sign of life
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

    async def _yield_if_eager(self) -> None:
        """A cancellation point; a schedule point only every few socket operations that completed
        without waiting. Why: on a plain socket a read or write that the kernel satisfies at once
        costs no scheduling round here (trio's ``SocketStream`` spends one on each: ~1 of the ~5
        task steps per audio chunk), yet a task that always finds data ready must still let the
        others run and let deadlines fire."""
        if self._eager >= _EAGER_OPS:
            self._eager = 0
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()

    # ------------------------------------------------------------------------- the send lock

    async def _lock(self) -> None:
        """Take the send lock (FIFO); cancelled while waiting: not taken. Not a schedule point when
        uncontended (the caller's write yields if it has to)."""
        if self._send_busy:
            if self._send_waiters is None:
                self._send_waiters = trio.lowlevel.ParkingLot()
            await self._send_waiters.park()  # woken by _unlock, which handed the lock over
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._send_busy = True

    def _unlock(self) -> None:
        waiters = self._send_waiters
        if waiters:
            waiters.unpark()  # ownership passes to the first waiter: _send_busy stays set
        else:
            self._send_busy = False

    # ------------------------------------------------------------------------- writing

    async def _write_locked(self, *, whole: bool = False) -> None:
        """Send what the protocol queued; the caller holds the send lock. ``whole``: finish the
        write even if the caller is cancelled meanwhile, within ``disconnect_timeout`` (then
        ``BrokenResourceError``): see :meth:`_send_ping`."""
        data = b"".join(self._protocol.data_to_send())
        if not data:
            return
        try:
            sock = self._sock
            if sock is not None:
                await self._send_raw(sock, data, whole)
                return
            tls = self._tls
            if tls is not None and tls.can_write_directly():
                await self._send_tls(tls, data, whole)
                return
            await self._send_stream(data, whole)
        except BaseException:
            # Cancelled or failed with bytes possibly on the wire: the frame boundary is lost.
            self._abort()
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)
            raise

    async def _send_stream(self, data: bytes, whole: bool) -> None:
        """``send_all`` on the stream, shielded and bounded if ``whole``."""
        if not whole:
            await self._stream.send_all(data)
            return
        with trio.CancelScope(shield=True, deadline=trio.current_time() + self._disconnect_timeout) as scope:
            await self._stream.send_all(data)
        if scope.cancelled_caught:
            raise trio.BrokenResourceError("write timed out")

    async def _send_raw(self, sock: socket.socket, data: bytes, whole: bool = False) -> None:
        """Write ``data`` on a plain socket directly: a write the kernel takes whole returns with
        no scheduling round; only a full send buffer waits (for writability, as send_all does).
        ``whole``: that wait is shielded and bounded by ``disconnect_timeout``; a write that
        needs no wait costs no cancel scope (a shielded one with a deadline cost ~10-17 us)."""
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            self._eager += 1
            return
        self._eager = 0
        if not whole:
            await self._send_rest(sock, data, sent)
            return
        with trio.CancelScope(shield=True, deadline=trio.current_time() + self._disconnect_timeout) as scope:
            await self._send_rest(sock, data, sent)
        if scope.cancelled_caught:
            raise trio.BrokenResourceError("write timed out")

    @staticmethod
    async def _send_rest(sock: socket.socket, data: bytes, sent: int) -> None:
        view = memoryview(data)
        while sent < len(data):
            await trio.lowlevel.wait_writable(sock)
            try:
                sent += sock.send(view[sent:])
            except BlockingIOError:
                pass

    async def _send_tls(self, tls: _TlsInternals, data: bytes, whole: bool = False) -> None:
        """Encrypt ``data`` with the stream's SSLObject and write the records on its socket, under
        the stream's own transport-write lock, as ``SSLStream.send_all`` does, minus its retry
        machinery and the scheduling round after every write (~30 % of a TLS send's CPU,
        ``bench/ws_transport_micro.py --tls``). Only when :meth:`_TlsInternals.can_write_directly`."""
        try:
            tls.ssl_object.write(data)
        except ssl.SSLWantReadError:  # pragma: no cover - a renegotiation (TLS <= 1.2) wants the stream
            await self._send_stream(data, whole)
            return
        records = tls.outgoing.read()  # also anything a fallback read left to send
        assert tls.sock is not None
        tls.send_lock.acquire_nowait()  # free: checked by can_write_directly, nothing awaited since
        try:
            await self._send_raw(tls.sock, records, whole)
        finally:
            tls.send_lock.release()

    async def _send_frames(self, frames: Sequence[bytes], fence: bytes | None = None) -> None:
        if self._ended() or self._protocol.close_sent is not None:
            raise self._lost()
        await self._lock()  # cancelled while waiting here: nothing was queued
        try:
            # A cancellation that arrived while the lock was handed over is raised here, before
            # the frame is queued; from here to the first byte written there is no checkpoint.
            await self._yield_if_eager()
            if self._ended() or self._protocol.close_sent is not None:
                raise self._lost()
            for frame in frames:
                self._protocol.send_text(frame)
            if fence is not None:
                fences = self._fences
                if len(fences) >= _MAX_FENCES:  # never answered (a peer that ignores pings)
                    del fences[next(iter(fences))]
                fences[fence] = -1
                self._protocol.send_ping(fence)
            try:
                await self._write_locked()
            except _STREAM_ERRORS as exc:
                raise ConnectionLostError(f"send failed: {type(exc).__name__}", code=NO_CLOSE_FRAME) from None
        finally:
            self._unlock()

    async def send(self, data: bytes) -> None:
        """Send one JSON message as a text frame (the codec's UTF-8 bytes, never decoded).

        A cancellation point; on a plain socket a schedule point only when the write has to wait
        (or every few sends, see :meth:`_yield_if_eager`)."""
        await self._send_frames((data,))

    async def send_many(self, frames: Sequence[bytes]) -> None:
        """Send several messages as text frames with one write (one syscall, one TLS record
        batch): for a writer that drained several queued messages. All or nothing at the protocol
        level; a cancellation while the bytes are in flight aborts the connection like :meth:`send`.
        """
        if frames:
            await self._send_frames(frames)

    async def send_fenced(self, frames: Sequence[bytes]) -> bytes:
        """Send ``frames`` (maybe none) and then a ping, in one write, without waiting for the
        pong; returns the ping's token for :meth:`fence_result`. A message with
        ``received_index`` at or past that result came after the pong: where the server answers
        pings in order with consuming what came before them, it was sent after the server
        consumed everything sent before the ping. The caller's own reader reads the pong (no task
        waits for it) and the ping costs no write of its own. The oldest of more than 64
        unanswered fences is forgotten."""
        self._fence_count += 1
        token = b"livemesh-fence-%d" % self._fence_count
        await self._send_frames(frames, token)
        return token

    def fence_result(self, token: bytes) -> int | None:
        """How many data messages arrived before the pong of :meth:`send_fenced`'s ping
        ``token`` (the fence is then forgotten); ``None`` while it is unanswered (or forgotten)."""
        index = self._fences.get(token, -1)
        if index < 0:
            return None
        del self._fences[token]
        return index

    async def _flush_replies(self) -> None:
        """Send the protocol's automatic answers (pong, close echo) unless a writer is mid-send;
        a busy writer's lock must not stall the reader, the answer then leaves with the next write."""
        if self._send_busy or self._aborted:
            return
        await self._lock()
        try:
            await self._write_locked()
        finally:
            self._unlock()

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

    async def _receive_bytes(self, deadline: float) -> bytes | bytearray | None:
        """Bytes through the stream's public read (TLS before its handshake or while the stream
        reads itself, tests' memory streams; ``b""``: EOF), or ``None`` if ``deadline`` passed
        first (nothing was consumed)."""
        # Bounded whenever a keepalive is set, even with bytes unread: under TLS they may be a
        # record's head or a session ticket, and the read then waits for more (skipping the
        # scope when the drain probe saw bytes left a dead peer undetected mid-record). This
        # path is rare since TLS reads go beside the stream (_read_tls).
        if deadline == _NEVER:
            data = await self._stream.receive_some(self._buffer_size)
        else:
            with trio.move_on_at(deadline) as waited:
                data = await self._stream.receive_some(self._buffer_size)
            if waited.cancelled_caught:
                return None
        return self._more_plaintext(data) if self._tls is not None and data else data

    async def _wait_and_recv(self, sock: socket.socket, deadline: float) -> bytes | None:
        """Wait until the socket is readable, then read it; ``None`` if ``deadline`` passed first."""
        self._eager = 0
        while True:
            if deadline == _NEVER:
                await trio.lowlevel.wait_readable(sock)
            else:
                with trio.move_on_at(deadline):
                    await trio.lowlevel.wait_readable(sock)
            try:
                # Tried even past the deadline: bytes that came in time but were read late (a busy
                # scheduler woke us after it) are life, not silence (found in review).
                return sock.recv(self._buffer_size)
            except BlockingIOError:
                if trio.current_time() >= deadline:
                    return None
                continue  # a spurious wake-up

    async def _read_tls(
        self, tls: _TlsInternals, deadline: float
    ) -> tuple[bytes | bytearray, float | None] | None:
        """Plaintext read beside ``SSLStream.receive_some`` (only when
        :meth:`_TlsInternals.can_read_directly`), with the frames' arrival stamp; ``b""`` at EOF;
        ``None`` if ``deadline`` passed while waiting (no plaintext: a record's head may have
        been taken into the BIO, and counted as life). Raises the stream errors the stream's own
        read would.

        Why: ``SSLStream.receive_some`` costs a pass through its ``_retry`` machinery and a
        scheduling round per call, and returns one TLS record (<= 16 KiB) at a time; here the
        non-blocking socket is read as on a plain connection (park in ``wait_readable`` only on
        EAGAIN, holding the stream's transport-read lock meanwhile), the bytes go to the
        SSLObject's incoming BIO, and every complete record is decrypted at once. What the
        SSLObject writes meanwhile (the answer to a TLS 1.3 post-handshake CertificateRequest;
        OpenSSL answers a KeyUpdate with the next write) is sent under the stream's
        transport-write lock before any further read, as ``_retry`` does.

        Arrival dating as on a plain socket: a read that had to wait dates its frames by the
        wake-up; a read that drained the kernel's queue (fewer bytes than asked) leaves no
        complete record behind (all are decrypted), only a record's head whose frames complete
        later, so the time before it is a caught-up time for later frames."""
        stamp = self._caught_up_at
        if tls.end is not None:
            return self._tls_ended(tls), stamp
        sock = tls.sock
        assert sock is not None
        incoming = tls.incoming
        size = self._buffer_size
        while True:
            # (plaintext a fallback read left in the SSLObject counts too: see _more_plaintext)
            if incoming.pending or incoming.eof or tls.ssl_object.pending():
                data = self._decrypt(tls)
            else:
                data = b""
            if tls.outgoing.pending and (tls.end is None or isinstance(tls.end, ssl.SSLZeroReturnError)):
                # (after an SSL error OpenSSL queued an alert: _retry raises without sending it)
                try:
                    await self._flush_tls(tls)
                except _STREAM_ERRORS:
                    if not data:
                        raise
                    # The connection is gone (aborted), but what the peer sent before is handed
                    # out first, its close frame included, as a read through the stream would.
                    return data, stamp
            if data:
                return data, stamp
            if tls.end is not None:
                return self._tls_ended(tls), stamp
            if not tls.can_read_directly():
                # (only after the flush above awaited) a stream operation took over: read as it does
                got = await self._receive_bytes(deadline)
                return None if got is None else (got, stamp)
            before = trio.current_time()
            try:
                chunk = sock.recv(size)
            except BlockingIOError:
                lock = tls.recv_lock
                lock.acquire_nowait()  # free: checked by can_read_directly, nothing awaited since
                try:
                    got_bytes = await self._wait_and_recv(sock, deadline)
                    # A stream operation that waited for the lock meanwhile retries with these
                    # bytes instead of reading again (they are fed before it runs). A read that
                    # did not wait held no lock: nobody can have queued for it.
                    tls.stream._inner_recv_count += 1
                finally:
                    lock.release()
                if got_bytes is None:
                    return None
                chunk = got_bytes
                stamp = self._caught_up_at = trio.current_time()
            else:
                self._eager += 1
                if len(chunk) < size:
                    self._caught_up_at = before
            if chunk:
                incoming.write(chunk)
                # Any bytes are life, a record's head too (a record trickling in for longer
                # than the keepalive allows must not fail it: found in review).
                self._last_heard = trio.current_time()
                self._pinged_at = None
            else:
                incoming.write_eof()

    def _decrypt(self, tls: _TlsInternals) -> bytes | bytearray:
        """Every complete record in the incoming BIO, decrypted (``b""``: none). The end of the
        stream (close_notify, an SSL error, EOF without close_notify) is kept in ``tls.end``,
        after the data decrypted before it; an error marks the stream broken, as ``_retry``
        does."""
        ssl_object = tls.ssl_object
        incoming = tls.incoming
        size = self._buffer_size
        data: bytes | bytearray = b""
        parts: list[bytes] | None = None
        try:
            while True:
                more = ssl_object.read(size)
                if not more:  # the peer's close_notify
                    tls.end = ssl.SSLZeroReturnError("close_notify")
                    break
                if not data:
                    data = more
                elif parts is None:
                    parts = [data, more]  # type: ignore[list-item]
                else:
                    parts.append(more)
                if not (incoming.pending or incoming.eof or ssl_object.pending()):
                    # Nothing left to decrypt (OpenSSL takes one record at a time from the BIO,
                    # no read-ahead): skip the read that would only raise SSLWantReadError.
                    break
        except ssl.SSLWantReadError:
            pass  # every complete record is decrypted
        except (ssl.SSLError, ssl.CertificateError) as exc:
            tls.break_stream()
            tls.end = exc
        return data if parts is None else b"".join(parts)

    def _tls_ended(self, tls: _TlsInternals) -> bytes:
        """What ``SSLStream.receive_some`` gives once the stream ended: ``b""`` for close_notify
        (and, on an ``https_compatible`` stream as the engine opens, for EOF without it), else
        ``BrokenResourceError`` from the SSL error."""
        end = tls.end
        assert end is not None
        if isinstance(end, ssl.SSLZeroReturnError) or (tls.https_compatible and _is_tls_eof(end)):
            return b""
        raise trio.BrokenResourceError from end

    async def _flush_tls(self, tls: _TlsInternals) -> None:
        """Send what the SSLObject wrote while decrypting, under the stream's transport-write lock
        (FIFO: in line behind any write that took its records earlier, ahead of any later one).
        A failure or cancellation may have cut a record: the stream is broken and the connection
        aborted, as for a cut frame."""
        lock = tls.send_lock
        assert tls.sock is not None
        # The lock first: cancelled while waiting for it, nothing was taken from the BIO (the
        # records go out with the next write, which takes them ahead of its own) and the
        # connection lives on. Taking them first and aborting on that cancellation killed the
        # connection and cut another task's write in flight (found in review).
        if lock.locked():
            await lock.acquire()
        else:
            lock.acquire_nowait()
        try:
            records = tls.outgoing.read()
            if not records:  # a write that held the lock before us took them
                return
            try:
                await self._send_raw(tls.sock, records)
            except BaseException:
                tls.break_stream()
                self._abort()
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(self._stream)
                raise
        finally:
            lock.release()

    def _more_plaintext(self, data: bytes | bytearray) -> bytes | bytearray:
        """``data`` from an ``SSLStream`` read plus whatever else is already decryptable, up to the
        buffer size. Why: ``SSLStream.receive_some`` returns one TLS record (<= 16 KiB) per call,
        each call a scheduling round and a pass through its retry machinery, while one socket read
        usually brought several records (a 37 KB audio frame is three). Only records already
        received are decrypted here (no I/O); an incomplete record is left for the stream's next
        read; a close_notify or an SSL error is kept in ``tls.end`` for the next read, as in
        :meth:`_decrypt`."""
        assert self._tls is not None
        ssl_object, incoming = self._tls.ssl_object, self._tls.incoming
        limit = self._buffer_size
        parts: list[bytes | bytearray] | None = None
        size = len(data)
        while size < limit and (ssl_object.pending() or incoming.pending):
            try:
                more = ssl_object.read(limit - size)
            except ssl.SSLWantReadError:  # the rest of a record is still on its way
                break
            except (ssl.SSLError, ssl.CertificateError) as exc:
                # Kept for the next read (see _read_tls): the SSLObject would report it again
                # only as an EOF.
                self._tls.break_stream()
                self._tls.end = exc
                break
            if not more:
                self._tls.end = ssl.SSLZeroReturnError("close_notify")
                break
            if parts is None:
                parts = [data]
            parts.append(more)
            size += len(more)
        return data if parts is None else b"".join(parts)

    async def _read_once(self, deadline: float = _NEVER) -> bool:
        """One read fed to the protocol, in this task; wakes tasks waiting for a read. False if
        ``deadline`` passed before any bytes came (nothing read, nothing changed).

        Arrival dating (``arrived_after``): a read that had to wait dates its frames by the
        wake-up; any other read dates them no later than the last moment the buffers were seen
        empty (``_caught_up_at``). A plain socket is read directly and tells both by itself (EAGAIN:
        nothing unread; fewer bytes than asked: drained), other streams ask the drain probe."""
        # Marked as reading before the first checkpoint: a second task that found no read in
        # progress and yielded here too would otherwise read the same socket at once
        # (BusyResourceError; a waiting ping() and the reader race so under load).
        self._reading = True
        try:
            await self._yield_if_eager()
            stamp = self._caught_up_at
            data: bytes | bytearray | None
            sock = self._sock
            if sock is not None:
                # Like trio's own recv, without its two wrapper coroutines (parked on every idle
                # connection) and the scheduling round a read that finds data ready costs there.
                before = trio.current_time()
                try:
                    try:
                        ready = sock.recv(self._buffer_size)
                    except BlockingIOError:
                        data = await self._wait_and_recv(sock, deadline)
                        if data is None:
                            return False
                        # Woken by the first new bytes: the rest of that burst (read later, when
                        # it outgrows the buffer) arrived with or after them, TCP being in order.
                        stamp = self._caught_up_at = trio.current_time()
                    else:
                        data = ready
                        self._eager += 1
                        if len(ready) < self._buffer_size:
                            # drained by this read; its own frames keep the older bound
                            self._caught_up_at = before
                except _STREAM_ERRORS:
                    self._abort()
                    data = b""
                now = trio.current_time()
            elif (tls := self._tls) is not None and (tls.end is not None or tls.can_read_directly()):
                try:
                    got = await self._read_tls(tls, deadline)
                except _STREAM_ERRORS:
                    self._abort()
                    got = (b"", stamp)
                if got is None:
                    return False
                data, stamp = got
                now = trio.current_time()
            else:
                probe = self._probe
                waits = probe is not None and probe()  # nothing unread: this read waits for new bytes
                try:
                    data = await self._receive_bytes(deadline)
                except _STREAM_ERRORS:
                    self._abort()
                    data = b""
                if data is None:
                    return False
                now = trio.current_time()
                if probe is not None:
                    if waits:
                        stamp = self._caught_up_at = now
                    elif probe():
                        self._caught_up_at = now
            self._last_heard = now
            self._pinged_at = None
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
        return True

    async def _await_read(self) -> None:
        """Read once ourselves, or wait for the task that is reading to finish its read."""
        if self._reading:
            if self._progress is None:
                self._progress = trio.Event()
            await self._progress.wait()
        else:
            await self._read_once()

    def set_keepalive(self, *, interval: float | None, pong_timeout: float) -> bool:
        """Keep the connection proven alive from within :meth:`receive`, with no task of its own
        (a keepalive task costs ~3 KB per idle connection): while a receive waits and nothing has
        come from the peer for ``interval`` seconds, it sends a ping (without waiting for the pong:
        the same receive reads it), and raises :class:`ConnectionLostError` (1011) if nothing at
        all comes within ``pong_timeout`` after it. Any bytes from the peer count as life, as in
        :func:`livemesh.transport.keepalive`, whose place this takes. Only a waiting receive pings:
        a receiver that stopped reading (a slow consumer) sees no keepalive failure meanwhile.
        ``interval=None`` turns it off. Returns True (this engine supports it)."""
        self._keepalive = None if interval is None else (interval, pong_timeout)
        return True

    async def _keepalive_due(self) -> None:
        """The keepalive deadline passed while a receive waited: ping, or give up."""
        assert self._keepalive is not None
        pong_timeout = self._keepalive[1]
        if self._pinged_at is None:
            self._pinged_at = trio.current_time()
            await self._send_ping(_PING_PAYLOAD)
            return
        log.warning("keepalive: no pong and no traffic for %.1f s", pong_timeout)
        raise ConnectionLostError(f"keepalive: no pong within {pong_timeout:g} s", code=1011)

    def _keepalive_deadline(self) -> float:
        if self._keepalive is None:
            return _NEVER
        interval, pong_timeout = self._keepalive
        if self._pinged_at is not None:
            return self._pinged_at + pong_timeout
        return self._last_heard + interval

    async def receive(self) -> bytes | str:
        """The next server frame (``bytes`` for binary, ``str`` for text frames, as trio-websocket).

        A frame already parsed from an earlier read is returned without touching the socket (and
        without a checkpoint: the session's reader checkpoints when it hands the message on).
        Once the connection ended, raises the livemesh error for its close code.
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
            elif not await self._read_once(self._keepalive_deadline()):
                await self._keepalive_due()
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
        """Send a ping and wait for a pong (the reply to it or a later one); raises once closed."""
        seen = await self._send_ping(_PING_PAYLOAD)
        await self._read_until(lambda: self._pongs != seen)

    async def _send_ping(self, payload: bytes) -> int:
        """Send a ping with ``payload``; the number of pongs received before it."""
        if self._ended():
            raise self._lost()
        await self._lock()
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            seen = self._pongs
            if self._ended() or self._protocol.close_sent is not None:
                raise self._lost()
            self._protocol.send_ping(payload)
            # Written whole even if the caller is cancelled meanwhile (a ping() under a
            # timeout): a ping cut mid-write would poison a connection still in use (see
            # _write_locked). Bounded: a write stuck that long means the connection is dead.
            # The shield is only raised if the write has to wait (see _send_raw).
            try:
                await self._write_locked(whole=True)
            except _STREAM_ERRORS as exc:
                raise ConnectionLostError(f"ping failed: {type(exc).__name__}", code=NO_CLOSE_FRAME) from None
        finally:
            self._unlock()
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
        close and EOF, then close the socket; idempotent, never raises."""
        with trio.move_on_after(self._disconnect_timeout) as scope:
            scope.shield = True
            try:
                protocol = self._protocol
                if not self._aborted:
                    await self._lock()
                    try:
                        if not self._aborted:
                            if protocol.state is self._open_state:
                                protocol.send_close(code, reason)
                            await self._write_locked()  # also a close echo a busy writer held back
                    finally:
                        self._unlock()
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
        handshake = ws.client.ClientProtocol(uri, max_size=opts.max_message_bytes, logger=_PROTOCOL_LOG)
        request = handshake.connect()
        for name, value in headers:
            request.headers[name] = value
        handshake.send_request(request)
        await stream.send_all(b"".join(handshake.data_to_send()))
        # The upgrade is parsed by a ClientProtocol fed only up to the end of the response's
        # headers (a 101 has no body); the frames after it go to a plain Protocol made for the
        # open connection. Why: a ClientProtocol keeps the handshake's Response and Headers alive
        # in its parser for the connection's whole life (~1.5 KB per idle connection).
        pending = b""  # bytes read but not yet fed to the handshake protocol
        rest: bytes | None = None  # bytes after the response, once it was found
        events: list[Any] = []
        while not any(isinstance(event, ws.http11.Response) for event in events):
            data = await stream.receive_some(opts.receive_buffer_size)
            if data and rest is None:
                pending += data
                end = pending.find(b"\r\n\r\n")
                if end >= 0:
                    data, rest = pending[: end + 4], pending[end + 4 :]
                else:
                    data = b""
            if data:
                handshake.receive_data(data)
            elif rest is None:
                handshake.receive_eof()
            events = handshake.events_received()
            if rest is not None and not any(isinstance(event, ws.http11.Response) for event in events):
                # not a plain 101 (a refusal with a body): feed on to the handshake protocol
                handshake.receive_data(rest)
                events += handshake.events_received()
                rest = b""
            if not data and not events and rest is None:
                raise ConnectionLostError(
                    f"{redact_url(url)} closed during the handshake", code=NO_CLOSE_FRAME
                )
        if handshake.handshake_exc is not None:
            exc = handshake.handshake_exc
            if isinstance(exc, ws.exceptions.InvalidStatus):
                raise rejection_error(exc.response.status_code, url)
            raise ConnectionLostError(
                f"{redact_url(url)} answered with an invalid WebSocket handshake ({type(exc).__name__})",
                code=NO_CLOSE_FRAME,
            )
        if ssl_stream is not None and cache is not None and not ssl_stream.session_reused:
            # TLS 1.3 tickets come right after the server's handshake, before this response.
            # Only a full handshake's session is taken: reading ``session`` copies it through
            # DER (~200 us, the peer's certificate parsed again), a fifth of a resumed handshake
            # on every rotation; a resumed connection's ticket stays usable (stateless tickets,
            # as the service and OpenSSL issue). A server that refused a reused ticket gets a
            # full handshake, and its new session is kept.
            cache.put(ssl_stream.context, host, port, ssl_stream.session)
        # No extension or subprotocol is offered, so the open connection needs nothing the
        # handshake negotiated.
        protocol = ws.protocol.Protocol(
            ws.protocol.Side.CLIENT, max_size=opts.max_message_bytes, logger=_PROTOCOL_LOG
        )
        conn = SansioConnection(stream, protocol, options=opts, frames=ws.frames, states=ws.protocol.State)
        if rest:
            protocol.receive_data(rest)
            conn._absorb(protocol.events_received())
        return conn
    except BaseException:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)
        raise


class _Opening:
    """What :func:`open_connection` returns: an async context manager as a small slotted object
    rather than an ``asynccontextmanager`` generator, whose suspended frame every open connection
    would carry (a few hundred bytes per idle session)."""

    __slots__ = ("_conn", "_headers", "_options", "_url")

    def __init__(self, url: str, headers: Sequence[tuple[str, str]], options: TransportOptions) -> None:
        self._url = url
        self._headers = headers
        self._options = options
        self._conn: SansioConnection | None = None

    def __repr__(self) -> str:
        return f"<open_connection {redact_url(self._url)}>"

    async def __aenter__(self) -> Connection:
        opts = self._options
        ws = _websockets()
        url = self._url
        try:
            with trio.fail_after(opts.connect_timeout):
                self._conn = await _handshake(url, self._headers, opts, ws)
        except trio.TooSlowError:
            raise ConnectionLostError(
                f"connecting to {redact_url(url)} timed out", code=NO_CLOSE_FRAME
            ) from None
        except _STREAM_ERRORS as exc:
            raise ConnectionLostError(
                f"could not connect to {redact_url(url)} ({type(exc).__name__})", code=NO_CLOSE_FRAME
            ) from None
        return self._conn

    async def __aexit__(self, *exc_info: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()


def open_connection(
    url: str,
    headers: Sequence[tuple[str, str]] = (),
    *,
    options: TransportOptions | None = None,
) -> AbstractAsyncContextManager[Connection]:
    """Open a WebSocket to ``url`` with ``headers``; close it (bounded) when the block ends::

        async with open_connection(url, headers, options=options) as conn: ...

    Same contract as :func:`livemesh.transport.open_connection`: ``wss`` uses
    ``options.ssl_context`` (default: the system's verifying context) over ``trio.SSLStream``;
    ``connect_timeout`` bounds TCP, TLS and the upgrade; a refused upgrade is ``AuthError``
    (401/403), ``QuotaError`` (429), ``SetupRejectedError`` (400/404) or
    :class:`~livemesh.transport.ConnectionLostError`; network failures are ``ConnectionLostError``.
    No task is started: the block owns nothing but the socket, closed on exit even if cancelled.
    """
    return _Opening(url, headers, options or TransportOptions())
