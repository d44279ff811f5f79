"""Serving one TCP/TLS stream: HTTP requests through h11, a WebSocket through websockets' sans-I/O
``ServerProtocol`` (the opening handshake and every client frame).

Both libraries are sans-IO, so this module owns every byte: it can drop a connection without a
close frame (a fault the service really shows), send a garbled frame, bound message sizes and
queues, and keep one connection's failure from touching any other. A WebSocket is a
:class:`WebSocketPeer`: a reader task and a writer task around bounded channels; the protocol
engine on top only calls :meth:`~WebSocketPeer.receive`, :meth:`~WebSocketPeer.send`,
:meth:`~WebSocketPeer.close` and :meth:`~WebSocketPeer.abort`.

Why websockets and not wsproto (measured, ``bench/emulator_throughput.py``):
wsproto parsed a 4 KB audio frame in 25 us of pure Python (unmasking included), websockets in 8 us,
and the parser was the emulator's largest single cost. (Cutting the common client frame out of the
stream by hand saved ~7 % more and was reverted: framing is websockets' job.) The peer, not the
protocol object, decides what goes out and when: the protocol's own replies (a pong the moment a
ping is parsed, the echo of a close, the close it sends when failing) are discarded, because this
peer answers a ping only after the engine consumed the messages before it and answers a close
after the frames already queued. Server frames are unmasked, so a data frame is a 2-10 byte header
(``struct``) before the payload, written into the writer's batch with no intermediate copy;
control frames go through ``websockets.frames.Frame.serialize``.

The socket and TLS are the client's own layer (:class:`~livemesh.transport.sockets.SocketIO`, TLS
as :class:`~livemesh.transport.tls.TlsState`): :func:`serve_stream` takes the accepted socket over
(a listener's ``trio.SocketStream``, or the socket under a ``trio.SSLStream`` whose context then
drives TLS here), and past the upgrade the peer reads and writes it directly, encrypting and
decrypting itself: trio's stream methods cost a scheduling round per call and, for TLS, a retry
loop that was 29 % of the emulator's CPU in the TLS bench (``bench/emulator_throughput.py``).
"""

from __future__ import annotations

import collections
import logging
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import attrs
import h11
import trio
from websockets.exceptions import PayloadTooBig
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol

from livemesh.emulator import closes
from livemesh.emulator.faults import MALFORMED_FRAME, Action, FaultPlan
from livemesh.transport.sockets import SocketIO
from livemesh.transport.streams import SocketIOStream
from livemesh.transport.tls import TlsState

log = logging.getLogger("livemesh.emulator")

RECEIVE_SIZE: Final = 65536
MAX_HEADER_BYTES: Final = 64 * 1024
MAX_BODY_BYTES: Final = 1024 * 1024
WRITE_BATCH: Final = 64
_DECRYPT_ALL: Final = 1 << 30
"""Plaintext asked of TLS per pass: everything the records received so far hold."""


@attrs.frozen
class HttpRequest:
    """A parsed HTTP request; header names are lowercase (values may hold secrets: no repr)."""

    method: str
    target: str
    headers: dict[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(default=b"", repr=False)


@attrs.frozen
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=UTF-8"


HttpHandler = Callable[[HttpRequest], Awaitable[HttpResponse]]
UpgradeHandler = Callable[[HttpRequest, "WebSocketPeer"], Awaitable[None]]
UpgradeFilter = Callable[[HttpRequest], bool]


class ConnectionEnded(Exception):
    """The WebSocket is closed (close handshake, EOF or abort): no more client messages."""


_PEER_GONE: Final = (
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
    h11.ProtocolError,
)
"""How a connection ends without anyone's bug: the client went away, was too slow, or spoke
HTTP/WebSocket wrongly. Not logged."""


async def serve_stream(
    stream: trio.abc.Stream,
    *,
    on_http: HttpHandler,
    accepts_upgrade: UpgradeFilter,
    on_websocket: UpgradeHandler,
    make_peer: Callable[[trio.abc.Stream, ServerProtocol, HttpRequest], WebSocketPeer],
    idle_timeout_s: float = 60.0,
) -> None:
    """Serve one accepted stream until it closes. Never raises (errors stop at this connection).

    Until a WebSocket is accepted, every read must arrive within ``idle_timeout_s`` (no idle or
    slow HTTP connection holds a task forever)."""
    owned = _take_over(stream)
    try:
        if isinstance(owned, SocketIOStream) and owned.io.tls is not None:
            await _tls_handshake(owned.io, idle_timeout_s)
        await _serve_stream(owned, on_http, accepts_upgrade, on_websocket, make_peer, idle_timeout_s)
    except* _PEER_GONE:
        pass
    except* Exception as group:
        # The last-resort boundary: anything unexpected (alone, or in a group from this
        # connection's tasks, even one also carrying a Cancelled) ends this connection only.
        # ``except*`` lets the Cancelled parts, and only them, go on to their cancel scope.
        log.error("emulator connection failed", exc_info=group)
    finally:
        if isinstance(owned, SocketIOStream):
            # No close_notify: the peer's writer does not take the socket's lock, so a record it
            # left half written may be on the wire.
            owned.io.close(notify=False)
        await trio.aclose_forcefully(stream)


def _take_over(stream: trio.abc.Stream) -> trio.abc.Stream:
    """The accepted socket as a :class:`SocketIOStream` this module drives (any other stream as
    it is). A ``trio.SSLStream`` fresh from its listener has done no I/O: its public ``context``
    drives TLS here instead, over the socket under it."""
    if isinstance(stream, trio.SocketStream):
        return SocketIOStream(SocketIO.adopt(stream))
    if isinstance(stream, trio.SSLStream) and isinstance(stream.transport_stream, trio.SocketStream):
        try:
            stream.version()
        except trio.NeedHandshakeError:
            tls = TlsState(stream.context, server_side=True)
            return SocketIOStream(SocketIO.adopt(stream.transport_stream, tls=tls))
    return stream


async def _tls_handshake(io: SocketIO, timeout_s: float) -> None:
    """The server's side of the TLS handshake, bounded like any read before the upgrade; a client
    that fails it (a refused certificate, a protocol mismatch) is gone, not a bug here."""
    try:
        with trio.fail_after(timeout_s):
            await io.handshake()
    except ssl.SSLError as exc:
        raise trio.BrokenResourceError("TLS handshake failed") from exc


async def _serve_stream(
    stream: trio.abc.Stream,
    on_http: HttpHandler,
    accepts_upgrade: UpgradeFilter,
    on_websocket: UpgradeHandler,
    make_peer: Callable[[trio.abc.Stream, ServerProtocol, HttpRequest], WebSocketPeer],
    idle_timeout_s: float,
) -> None:
    async def receive() -> bytes:
        with trio.fail_after(idle_timeout_s):
            return bytes(await stream.receive_some(RECEIVE_SIZE))

    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    raw = bytearray()  # everything received before the first request: replayed into websockets
    first = True
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await receive()
            if first:
                raw += data
            conn.receive_data(data)
            continue
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return
        if not isinstance(event, h11.Request):
            return
        request = HttpRequest(
            event.method.decode(),
            event.target.decode("latin-1"),
            {name.decode().lower(): value.decode("latin-1") for name, value in event.headers},
        )
        if request.headers.get("upgrade", "").lower() == "websocket":
            if "sec-websocket-key" not in request.headers or request.method != "GET":
                await _respond(stream, conn, HttpResponse(400, b'{"error": {"code": 400}}'))
                return
            if first:
                await _upgrade(stream, bytes(raw), request, accepts_upgrade, on_websocket, make_peer)
            return
        first = False
        raw.clear()
        body = bytearray()
        while True:
            part = conn.next_event()
            if part is h11.NEED_DATA:
                conn.receive_data(await receive())
                continue
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > MAX_BODY_BYTES:
                    await _respond(stream, conn, HttpResponse(413, b'{"error": {"code": 413}}'))
                    return
                continue
            break
        if not isinstance(part, h11.EndOfMessage):
            return
        try:
            response = await on_http(attrs.evolve(request, body=bytes(body)))
        except Exception:
            log.exception("emulator REST handler failed")
            response = HttpResponse(500, b'{"error": {"code": 500, "status": "INTERNAL"}}')
        await _respond(stream, conn, response)
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return
        conn.start_next_cycle()


async def _respond(stream: trio.abc.Stream, conn: h11.Connection, response: HttpResponse) -> None:
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        ("server", "livemesh-emulator"),
    ]
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    data = (data or b"") + (conn.send(h11.Data(data=response.body)) or b"")
    data += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)


class _QuietLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger handed to websockets' protocol: at DEBUG it logs the request line and headers
    (an API key in ``?key=`` or ``x-goog-api-key``) and every frame, so DEBUG is never passed on,
    and its INFO lines ("connection open") are noise at thousands of connections; its warnings
    and errors (a parser bug) still reach ``livemesh.emulator``."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.INFO and self.logger.isEnabledFor(level)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        pass

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        pass


_PROTOCOL_LOG: Final = _QuietLogger(log, {})


async def _upgrade(
    stream: trio.abc.Stream,
    raw: bytes,
    request: HttpRequest,
    accepts_upgrade: UpgradeFilter,
    on_websocket: UpgradeHandler,
    make_peer: Callable[[trio.abc.Stream, ServerProtocol, HttpRequest], WebSocketPeer],
) -> None:
    protocol = ServerProtocol(max_size=None, logger=_PROTOCOL_LOG)
    protocol.receive_data(raw)
    events = protocol.events_received()
    # Frames pipelined behind the request were parsed already; anything the protocol wrote for
    # them (a pong) must not precede the handshake response: dropped (the peer answers itself).
    protocol.data_to_send()
    if not events or not isinstance(events[0], WsRequest):
        return
    if accepts_upgrade(request):
        response = protocol.accept(events[0])
    else:
        response = protocol.reject(404, "")
    protocol.send_response(response)
    await stream.send_all(b"".join(protocol.data_to_send()))
    if response.status_code != 101:
        return
    peer = make_peer(stream, protocol, request)
    peer.pipelined = [event for event in events[1:] if isinstance(event, Frame)]
    await peer.run(lambda: on_websocket(request, peer))


_HEAD_SMALL: Final = struct.Struct("!BB")
_HEAD_MEDIUM: Final = struct.Struct("!BBH")
_HEAD_LARGE: Final = struct.Struct("!BBQ")
_FIN_BINARY: Final = 0x80 | Opcode.BINARY


def _data_frame_head(length: int) -> bytes:
    """The RFC 6455 header of one unmasked, final binary frame of ``length`` payload bytes."""
    if length < 126:
        return _HEAD_SMALL.pack(_FIN_BINARY, length)
    if length < 65536:
        return _HEAD_MEDIUM.pack(_FIN_BINARY, 126, length)
    return _HEAD_LARGE.pack(_FIN_BINARY, 127, length)


def _control_frame(opcode: Opcode, payload: bytes) -> bytes:
    return Frame(opcode, payload).serialize(mask=False)


def _close_frame(code: int, reason: str) -> bytes:
    return _control_frame(Opcode.CLOSE, Close(code, reason).serialize())


def _direct_io(stream: trio.abc.Stream) -> tuple[SocketIO | None, TlsState | None]:
    """The socket the peer reads and writes itself, and the TLS state to encrypt and decrypt with
    (``(None, None)``: a stream this module did not take over, used through its own methods)."""
    if isinstance(stream, SocketIOStream) and not stream.io.closed:
        return stream.io, stream.io.tls
    return None, None


@attrs.frozen
class _Frame:
    data: bytes
    faultable: bool


@attrs.frozen
class _Close:
    code: int
    reason: str


@attrs.frozen
class _Reply:
    """A control frame to send, serialised (a pong, or the answer to the client's close)."""

    frame: bytes
    closes: bool = False


_FLUSH: Final = _Reply(b"")
"""Queued to wake the writer for the rest of a frame written in part (``_pending``)."""


class WebSocketPeer:
    """One accepted WebSocket with a reader and a writer task (see the module docstring).

    Server frames are binary frames of JSON, in the order :meth:`send` was called. ``close_code``
    records how the connection ended (the code we sent or received; 1006 without a close frame).
    Client messages are handed out as ``bytes`` (text frames too: the codec reads UTF-8 bytes
    directly, and invalid UTF-8 fails its decode like any malformed JSON).
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: ServerProtocol,
        *,
        max_message_bytes: int,
        queue_size: int,
        close_timeout_s: float,
        faults: FaultPlan | None = None,
    ) -> None:
        self._stream = stream
        # The socket is read and written directly (see _receive_some), encrypting and decrypting
        # here over TLS (_direct_io).
        self._io, self._tls = _direct_io(stream)
        self._tls_ended = False  # close_notify or a TLS error seen: end of stream after the rest
        self._drained = False  # the last read was short: wait before the next (_receive_some)
        self._protocol = protocol
        # The protocol refuses a message over the limit from its header (no buffering of it).
        protocol.max_message_size = max_message_bytes
        self.pipelined: list[Frame] = []
        """Frames parsed with the handshake request (sent before its response): read first."""
        self._close_timeout = close_timeout_s
        self._faults = faults
        # The WebSocket closing handshake as this peer sees it: a close frame written by the
        # writer (not merely queued), and one received by the reader. Data frames go out only
        # while neither happened.
        self._close_sent = False
        self._close_received = False
        self._pending = b""
        """Bytes for the socket (encrypted already over TLS) the writer sends before anything
        else: the rest of a frame :meth:`_write_now` could not write at once, or what TLS sent
        while decrypting (:meth:`_decrypt`)."""
        self._out_send, self._out_recv = trio.open_memory_channel[_Frame | _Close | _Reply](queue_size)
        self._writer_idle = False
        """The writer is parked on an empty queue and nothing was queued since: every put into
        the queue clears it (a flag instead of the channel's statistics(), which builds an
        object per call, once per frame sent)."""
        # Client messages (and pongs due in their order) from the reader to the engine: a deque
        # and two parking lots rather than a memory channel, so handing over a TCP read's
        # messages costs the reader no scheduling round (a channel send is a checkpoint) and no
        # per-item objects; measured with py-spy, the channel hop was ~10 % of the emulator's
        # CPU. Bounded: the reader waits while ``4 * queue_size`` items are unconsumed (the
        # channel held ``queue_size`` reads of up to a dozen audio messages each).
        self._inbox: collections.deque[bytes | _Reply] = collections.deque()
        self._inbox_limit = 4 * queue_size
        self._inbox_closed = False
        self._receiver: trio.lowlevel.Task | None = None  # the engine, waiting for an item
        self._inbox_room = trio.lowlevel.ParkingLot()  # the reader, waiting for room
        self._done = trio.Event()
        self._room: trio.Event | None = None  # made when a sender waits for room (wait_room)
        self._scope: trio.CancelScope | None = None
        self.closing = False
        self.closed_by_server = False
        """True if this side started the close (a close frame, a fault, an abort)."""
        self.aborted = False
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.on_end: Callable[[], None] | None = None

    # ------------------------------------------------------------------ engine side

    async def receive(self) -> bytes:
        """The next complete client message; :class:`ConnectionEnded` once the connection is closing.

        A ping is answered here, in order with the messages around it: its pong leaves only once
        the application asked for the message after it, i.e. consumed every message before it
        (the emulator's choice; the service's ordering of pongs is not documented). A client can
        then tell which handles were issued after the server consumed what it sent."""
        inbox = self._inbox
        while True:
            if not inbox:
                if self._inbox_closed:
                    raise ConnectionEnded
                await self._wait_for_inbox()
                continue
            item = inbox.popleft()
            if self._inbox_room and len(inbox) <= self._inbox_limit // 2:
                # Half empty before the reader resumes: woken at the first free slot, it read
                # a few messages at a time and parked again (a wake-up per message when a
                # client streams faster than the engine consumes).
                self._inbox_room.unpark_all()
            if not isinstance(item, _Reply):
                return item
            if self._write_now(item.frame, b""):
                continue
            self._writer_idle = False
            try:
                await self._out_send.send(item)
            except trio.ClosedResourceError:
                pass

    async def _wait_for_inbox(self) -> None:
        """Sleep until the reader queued an item or closed the inbox. The task itself is kept
        and rescheduled (:meth:`_wake_receiver`), not a ParkingLot: one wake-up per client
        message in a live session, and the lot's bookkeeping was ~2 % of the emulator's samples."""
        if self._receiver is not None:
            raise trio.BusyResourceError("another task is already receiving")
        self._receiver = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self._abort_wait)

    def _abort_wait(self, _: object) -> trio.lowlevel.Abort:
        self._receiver = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _wake_receiver(self) -> None:
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            trio.lowlevel.reschedule(receiver)

    async def send(self, data: bytes, *, faultable: bool = True) -> None:
        """Queue one server frame (waits while the queue is full: backpressure). Dropped once
        closing, and when the connection ends while waiting (any task may call this, e.g. a
        test control, so it must not outlive the connection).

        Always a checkpoint, so the writer usually sends each message as its own write, as the
        service streams them; queueing a whole turn without one (one write per turn) was tried
        and reverted: it measured the emulator's batching, not the clients (bench/README.md).
        When nothing is queued or being written, the frame is written here at once instead
        (:meth:`_write_now`): the same single write, without waking the writer task.

        Like a channel send, a caller already cancelled sends nothing: a turn cancelled by an
        interruption must not write a frame after the ``interrupted``/``turnComplete`` that
        ended it (it would open the next turn). A frame written is never followed by Cancelled."""
        if self.closing:
            return
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._write_now(_data_frame_head(len(data)), data):
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        self._writer_idle = False
        try:
            await self._out_send.send(_Frame(data, faultable))
        except trio.ClosedResourceError:
            pass

    def try_send(self, data: bytes) -> bool:
        """Queue one server frame if there is room now (timers must not wait on a client that
        stopped reading); False if it was not queued."""
        if self.closing:
            return False
        if self._write_now(_data_frame_head(len(data)), data):
            return True
        self._writer_idle = False
        try:
            self._out_send.send_nowait(_Frame(data, True))
        except (trio.WouldBlock, trio.ClosedResourceError):
            return False
        return True

    def _write_now(self, head: bytes, payload: bytes) -> bool:
        """Write one frame straight to the socket if that keeps every ordering rule: a socket of
        our own (TCP, or TLS through :func:`_direct_io`), no fault plan (faults decide per frame
        in the writer), no close frame sent or received, nothing queued, and the writer parked
        on an empty queue (not holding a frame it was handed, not finishing an earlier write).
        What the kernel does not take at once is left to the writer (``_pending``, ahead of
        anything queued later), so the caller never waits on the socket and a cancellation
        cannot cut a frame in two. True if the frame is dealt with (written, handed on, or
        dropped because the client is gone).

        Why: with one message per write, the writer task (its wake-up, its send's checkpoint, its
        return to the queue) was 12-14 % of the emulator's py-spy samples at 150-250 sessions."""
        io = self._io
        if io is None or self._faults is not None or self._pending:
            return False
        if self._close_sent or self._close_received or not self._writer_idle:
            return False
        try:
            if self._tls is None:
                data = None
                written = io.sendv_nowait((head, payload))
            else:
                data = self._seal(head + payload)
                written = io.send_nowait(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._transport_gone()
            return True
        if data is None:
            if written == len(head) + len(payload):
                return True
            data = head + payload
        elif written == len(data):
            return True
        self._pending = data[written:]
        self._writer_idle = False
        self._out_send.send_nowait(_FLUSH)  # wakes the writer: the queue was empty
        return True

    def _seal(self, plaintext: bytes | bytearray) -> bytes:
        """``plaintext`` as TLS records to put on the socket (only with ``_tls``); a memory BIO
        takes any amount, so this never waits. ``BrokenResourceError`` if TLS has failed."""
        assert self._tls is not None
        try:
            return self._tls.encrypt(plaintext)
        except ssl.SSLError as exc:
            raise trio.BrokenResourceError from exc

    def _decrypt(self, tls: TlsState) -> bytes:
        """Every byte of plaintext the TLS records received so far hold (``b""``: none yet).

        Reads while the incoming BIO or the SSLObject has bytes, so a record is decrypted in the
        read that received its end and nothing stays buffered for later (the usual exit costs no
        ``SSLWantReadError``; a partial record raises it once). A close_notify or a TLS error
        sets ``_tls_ended``: the stream ends after the plaintext returned. Bytes TLS wants to
        send meanwhile (its answer to a client's key update) go out through ``_pending``."""
        data = tls.decrypt(_DECRYPT_ALL)
        if tls.end is not None:
            # close_notify, or an alert, a bad record, EOF inside a record: the peer is gone
            self._tls_ended = True
        if tls.outgoing.pending:
            self._send_raw_later(tls.take_output())
        return data

    def _send_raw_later(self, data: bytes) -> None:
        """Queue bytes already encrypted for the socket behind what is pending (the writer sends
        them: woken here if it is parked on an empty queue, else it finds them after its
        current write)."""
        self._pending += data
        if self._writer_idle:
            self._writer_idle = False
            try:
                self._out_send.send_nowait(_FLUSH)
            except (trio.WouldBlock, trio.ClosedResourceError):
                pass

    def has_room(self) -> bool:
        stats = self._out_send.statistics()
        return stats.current_buffer_used < stats.max_buffer_size

    async def wait_room(self) -> None:
        """Wait until a frame can be queued at once (or the connection is closing), so a caller can
        build a frame and queue it without a scheduling point in between: a resumption handle is
        then queued in the order its snapshot was taken (after a pong queued before it, before
        one queued after), which is what a client's fence ping relies on."""
        while not self.has_room() and not self.closing and not self._done.is_set():
            if self._room is None:
                self._room = trio.Event()
            await self._room.wait()

    def _made_room(self) -> None:
        if self._room is not None:
            self._room.set()
            self._room = None

    async def close(self, code: int, reason: str) -> None:
        """Start the close handshake with ``code``/``reason`` after the frames already queued."""
        if self.closing:
            return
        self.closing = True
        self.closed_by_server = True
        self._mark_ended(code, reason)
        with trio.move_on_after(self._close_timeout):
            self._writer_idle = False
            try:
                await self._out_send.send(_Close(code, closes.fit_reason(reason)))
            except trio.ClosedResourceError:
                pass  # the connection ended meanwhile
            return
        self.abort()

    def abort(self) -> None:
        """Drop the connection now: no close frame (the client sees 1006)."""
        if not self.closing:
            self.closed_by_server = True
        self.closing = True
        self.aborted = True
        self._mark_ended(1006, "")
        if self._scope is not None:
            self._scope.cancel()

    def _mark_ended(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        if self.on_end is not None:
            callback, self.on_end = self.on_end, None
            callback()

    # ------------------------------------------------------------------ tasks

    async def run(self, handler: Callable[[], Awaitable[None]]) -> None:
        """Run reader, writer and ``handler`` until the connection is closed; never raises."""
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                nursery.start_soon(self._reader)
                nursery.start_soon(self._writer)
                failed = False
                try:
                    await self._serve(handler)
                except* (ConnectionEnded, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                except* Exception as group:
                    # The engine's bug ends this connection with 1011, like the service's own
                    # internal errors; Cancelled parts go on (``except*`` re-raises them).
                    log.error("emulator session failed", exc_info=group)
                    failed = True
                if failed:
                    await self.close(closes.INTERNAL, closes.TEXT_INTERNAL)
                await self.close(1000, "")
                with trio.move_on_after(self._close_timeout):
                    await self._done.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._mark_ended(1006, "")
            self.closing = True
            self._close_inbox()
            # Nothing drains the queue any more: a task still waiting to queue a frame (a
            # turn, a test control) gets ClosedResourceError, which send() and close() absorb.
            self._out_send.close()

    async def _serve(self, handler: Callable[[], Awaitable[None]]) -> None:
        try:
            await handler()
        except closes.Refusal as refusal:
            await self.close(refusal.code, refusal.reason)

    async def _reader(self) -> None:
        protocol = self._protocol
        parts: list[bytes] = []
        frames: list[Frame] = self.pipelined
        self.pipelined = []
        try:
            while True:
                if not frames:
                    try:
                        data = await self._receive_some()
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        data = b""
                    if not data:
                        self._mark_ended(1006, "")
                        self.closing = True
                        self._done.set()
                        return
                    protocol.receive_data(data)
                    # Past the handshake the protocol's events are frames only.
                    frames = cast(list[Frame], protocol.events_received())
                    # The protocol's own replies (pongs, a close echo, the close of a failure):
                    # this peer sends its own, in order (module docstring).
                    protocol.data_to_send()
                batch: list[bytes | _Reply] = []
                for frame in frames:
                    opcode = frame.opcode
                    if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
                        if self.closing:
                            continue
                        data = bytes(frame.data)  # bytes already: no copy
                        if frame.fin and not parts:
                            batch.append(data)
                        else:
                            parts.append(data)
                            if frame.fin:
                                batch.append(b"".join(parts))
                                parts.clear()
                    elif opcode is Opcode.PING:
                        # Answered in order (receive).
                        batch.append(_Reply(_control_frame(Opcode.PONG, bytes(frame.data))))
                    elif opcode is Opcode.CLOSE:
                        if batch:
                            await self._deliver(batch)
                        received = protocol.close_rcvd
                        code = received.code if received is not None else 1005
                        reason = received.reason if received is not None else ""
                        if not self.closing:
                            self.closing = True
                            self._mark_ended(code, reason)
                        self._close_received = True
                        if not self._close_sent:
                            # Our close may be queued, but it is not sent: the client spoke
                            # first, so answer its close (``closing`` alone does not tell).
                            echo = _control_frame(Opcode.CLOSE, bytes(frame.data))
                            await self._answer_close(_Reply(echo, True))
                        else:
                            self._done.set()  # the answer to the close we sent
                        return
                frames = []
                if batch:
                    await self._deliver(batch)
                failure = protocol.parser_exc
                if failure is not None:
                    if isinstance(failure, PayloadTooBig):
                        await self.close(closes.TOO_BIG, closes.TEXT_TOO_BIG)
                    elif isinstance(failure, UnicodeDecodeError):
                        await self.close(1007, "Invalid UTF-8 in a close reason.")
                    else:
                        await self.close(1002, "Protocol error.")
                    return
        finally:
            self._close_inbox()

    async def _deliver(self, batch: list[bytes | _Reply]) -> None:
        """Hand one read's messages to the engine, after waiting for room (backpressure: the
        reader stops reading the socket while the engine is behind)."""
        while len(self._inbox) >= self._inbox_limit and not self._inbox_closed:
            await self._inbox_room.park()
        if self._inbox_closed:
            return
        self._inbox.extend(batch)
        self._wake_receiver()

    def _close_inbox(self) -> None:
        """No more client messages: the engine gets :class:`ConnectionEnded` after the ones queued."""
        self._inbox_closed = True
        self._wake_receiver()
        self._inbox_room.unpark_all()

    async def _receive_some(self) -> bytes:
        """The next bytes from the client (``b""``: end of stream), decrypted over TLS.

        Over TLS the socket's bytes go into the TLS state and every complete record is
        decrypted at once (:meth:`_decrypt`); a read that completes no record (part of a large
        frame) reads on. See :meth:`_read_socket` for the socket side."""
        io = self._io
        if io is None:
            return bytes(await self._stream.receive_some(RECEIVE_SIZE))
        tls = self._tls
        if tls is None:
            return await self._read_socket(io)
        data = self._decrypt(tls)  # plaintext read with the upgrade request, if any
        if data:
            await trio.lowlevel.checkpoint()
            return data
        while not self._tls_ended:
            raw = await self._read_socket(io)
            if not raw:
                return b""
            tls.feed(raw)
            data = self._decrypt(tls)
            if data:
                return data
        return b""

    async def _read_socket(self, io: SocketIO) -> bytes:
        """The next bytes on the socket (``b""``: end of stream).

        The peer reads the socket itself and waits for readability only when nothing is there:
        trio's ``receive_some`` adds a scheduling round after every successful read (a
        checkpoint) and a context manager or two, measured as a fifth of the reader's time when
        each read carries one audio message. A read that succeeds without waiting still yields
        once (:func:`trio.lowlevel.checkpoint`), so a client sending faster than the emulator
        parses cannot starve the other connections. The socket is closed only after
        :meth:`run` (closing it wakes a wait on it with ``ClosedResourceError``).

        A read shorter than the buffer most likely emptied the socket, so the next one waits
        first instead of paying a failing read (a syscall and an exception per message when a
        client streams one message at a time); epoll is level-triggered, so bytes that arrived
        meanwhile wake the wait at once."""
        waited = False
        if self._drained:
            await io.wait_readable()
            waited = True
        while True:
            data = io.recv_nowait(RECEIVE_SIZE)  # Broken/ClosedResourceError: the client is gone
            if data is None:
                await io.wait_readable()
                waited = True
                continue
            self._drained = len(data) < RECEIVE_SIZE
            if not waited:
                await trio.lowlevel.checkpoint()
            return data

    async def _send_all(self, data: bytes | bytearray) -> None:
        """Write ``data`` whole (the counterpart of :meth:`_read_socket`: straight to the socket,
        already encrypted over TLS, waiting for writability only while the client's buffer is
        full; no checkpoint when it all went at once, as the writer's next wait for its queue is
        one)."""
        io = self._io
        if io is None:
            await self._stream.send_all(data)
            return
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                written = io.send_nowait(view[sent:])  # Broken/ClosedResourceError: gone
                if not written:
                    await io.wait_writable()
                sent += written

    async def _answer_close(self, reply: _Reply) -> None:
        """Answer the client's close after the frames already queued, within the close timeout.

        The client has stopped reading, so the queue may never drain (the writer stuck in
        ``send_all``, the reply stuck behind a full queue): past the timeout the connection is
        dropped, so it cannot outlive the client's close."""
        with trio.move_on_after(self._close_timeout):
            self._writer_idle = False
            await self._out_send.send(reply)
            await self._done.wait()
            return
        self.abort()

    async def _writer(self) -> None:
        """Send queued frames in order. Frames already queued are sent with one ``send_all``
        (fewer syscalls and wakeups on both ends); with faults on, one frame at a time."""
        batch_limit = 1 if self._faults is not None else WRITE_BATCH
        receive_nowait = self._out_recv.receive_nowait
        receive = self._out_recv.receive
        try:
            while True:
                try:
                    first = receive_nowait()
                except trio.WouldBlock:
                    self._writer_idle = True
                    try:
                        first = await receive()
                    finally:
                        self._writer_idle = False
                batch = [first]
                while len(batch) < batch_limit:
                    try:
                        batch.append(receive_nowait())
                    except trio.WouldBlock:
                        break
                self._made_room()
                out = bytearray()  # plaintext frames (encrypted below over TLS)
                finished = False
                for item in batch:
                    if type(item) is not _Frame or self._close_sent or self._close_received:
                        data, finished = self._render(item)
                        out += data
                    elif item.faultable and self._faults is not None:
                        rendered = await self._render_faulty(item)
                        if rendered is None:
                            return  # aborted
                        out += rendered
                    else:
                        # The common case inline: header and payload straight into the batch.
                        out += _data_frame_head(len(item.data))
                        out += item.data
                # What _write_now left unwritten, or TLS bytes of the reader, goes first.
                raw: bytes | bytearray = self._pending
                self._pending = b""
                if out:
                    sealed = out if self._tls is None else self._seal(out)
                    raw = raw + sealed if raw else sealed
                while raw:
                    await self._send_all(raw)
                    raw, self._pending = self._pending, b""  # the reader's, queued meanwhile
                if finished:
                    self._done.set()
        except trio.EndOfChannel:
            pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._transport_gone()

    def _transport_gone(self) -> None:
        """The transport is gone: nothing queued can be sent any more, so end the whole
        connection now (a reader blocked queueing a pong would otherwise wait forever).
        Not our abort: the client vanished (closed_by_server stays as it was)."""
        self._mark_ended(1006, "")
        self.closing = True
        self._done.set()
        if self._scope is not None:
            self._scope.cancel()

    def _render(self, item: _Frame | _Close | _Reply) -> tuple[bytes, bool]:
        """The bytes for one queued item other than a data frame of an open connection, and
        whether the close handshake is complete once they are sent (data frames of a closing
        connection are dropped: a close frame was sent or received)."""
        if isinstance(item, _Reply) and item.closes:
            if self._close_received and not self._close_sent:
                self._close_sent = True
                return item.frame, True
            return b"", True
        if self._close_sent or self._close_received:
            return b"", False
        if isinstance(item, _Close):
            self._close_sent = True
            return _close_frame(item.code, item.reason), False
        if isinstance(item, _Reply):
            return item.frame, False
        return _data_frame_head(len(item.data)) + item.data, False

    async def _render_faulty(self, item: _Frame) -> bytes | None:
        """A data frame through the fault plan: the bytes to send (None: the connection was
        aborted). The closing state is read again after the delay: the reader may have taken the
        client's close meanwhile, and no data frame may follow a close frame."""
        assert self._faults is not None
        payload = item.data
        action, delay = self._faults.next()
        if delay > 0:
            await trio.sleep(delay)
            if self._close_sent or self._close_received:
                return b""  # the client closed while this frame was delayed
        if action is Action.DROP:
            self.abort()
            return None
        if action is Action.CLOSE:
            self.closing = True
            self.closed_by_server = True
            self._mark_ended(closes.INTERNAL, closes.TEXT_INTERNAL)
            self._close_sent = True
            return _close_frame(closes.INTERNAL, closes.TEXT_INTERNAL)
        if action is Action.MALFORMED:
            payload = MALFORMED_FRAME
        return _data_frame_head(len(payload)) + payload
