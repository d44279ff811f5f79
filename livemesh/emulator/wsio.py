"""Serving one TCP/TLS stream: HTTP requests through h11, a WebSocket upgrade through wsproto.

Both libraries are sans-IO, so this module owns every byte: it can drop a connection without a
close frame (a fault the service really shows), send a garbled frame, bound message sizes and
queues, and keep one connection's failure from touching any other. A WebSocket is a
:class:`WebSocketPeer`: a reader task and a writer task around bounded channels; the protocol
engine on top only calls :meth:`~WebSocketPeer.receive`, :meth:`~WebSocketPeer.send`,
:meth:`~WebSocketPeer.close` and :meth:`~WebSocketPeer.abort`.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import attrs
import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError as WsLocalError
from wsproto.utilities import RemoteProtocolError as WsRemoteError

from livemesh.emulator import closes
from livemesh.emulator.faults import MALFORMED_FRAME, Action, FaultPlan

log = logging.getLogger("livemesh.emulator")

RECEIVE_SIZE: Final = 65536
MAX_HEADER_BYTES: Final = 64 * 1024
MAX_BODY_BYTES: Final = 1024 * 1024
WRITE_BATCH: Final = 64


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
    WsRemoteError,
)
"""How a connection ends without anyone's bug: the client went away, was too slow, or spoke
HTTP/WebSocket wrongly. Not logged."""


async def serve_stream(
    stream: trio.abc.Stream,
    *,
    on_http: HttpHandler,
    accepts_upgrade: UpgradeFilter,
    on_websocket: UpgradeHandler,
    make_peer: Callable[[trio.abc.Stream, WSConnection, HttpRequest], WebSocketPeer],
    idle_timeout_s: float = 60.0,
) -> None:
    """Serve one accepted stream until it closes. Never raises (errors stop at this connection).

    Until a WebSocket is accepted, every read must arrive within ``idle_timeout_s`` (no idle or
    slow HTTP connection holds a task forever)."""
    try:
        await _serve_stream(stream, on_http, accepts_upgrade, on_websocket, make_peer, idle_timeout_s)
    except* _PEER_GONE:
        pass
    except* Exception as group:
        # The last-resort boundary: anything unexpected (alone, or in a group from this
        # connection's tasks, even one also carrying a Cancelled) ends this connection only.
        # ``except*`` lets the Cancelled parts, and only them, go on to their cancel scope.
        log.error("emulator connection failed", exc_info=group)
    finally:
        await trio.aclose_forcefully(stream)


async def _serve_stream(
    stream: trio.abc.Stream,
    on_http: HttpHandler,
    accepts_upgrade: UpgradeFilter,
    on_websocket: UpgradeHandler,
    make_peer: Callable[[trio.abc.Stream, WSConnection, HttpRequest], WebSocketPeer],
    idle_timeout_s: float,
) -> None:
    async def receive() -> bytes:
        with trio.fail_after(idle_timeout_s):
            return bytes(await stream.receive_some(RECEIVE_SIZE))

    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    raw = bytearray()  # everything received before the first request: replayed into wsproto
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


async def _upgrade(
    stream: trio.abc.Stream,
    raw: bytes,
    request: HttpRequest,
    accepts_upgrade: UpgradeFilter,
    on_websocket: UpgradeHandler,
    make_peer: Callable[[trio.abc.Stream, WSConnection, HttpRequest], WebSocketPeer],
) -> None:
    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(raw)
    for event in ws.events():
        if isinstance(event, Request):
            break
    else:
        return
    if not accepts_upgrade(request):
        await stream.send_all(ws.send(RejectConnection(status_code=404)))
        return
    await stream.send_all(ws.send(AcceptConnection()))
    peer = make_peer(stream, ws, request)
    await peer.run(lambda: on_websocket(request, peer))


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
    """A control frame to send (a pong or the answer to the client's close)."""

    event: Pong | CloseConnection


class WebSocketPeer:
    """One accepted WebSocket with a reader and a writer task (see the module docstring).

    Server frames are binary frames of JSON, in the order :meth:`send` was called. ``close_code``
    records how the connection ended (the code we sent or received; 1006 without a close frame).
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        ws: WSConnection,
        *,
        max_message_bytes: int,
        queue_size: int,
        close_timeout_s: float,
        faults: FaultPlan | None = None,
    ) -> None:
        self._stream = stream
        self._ws = ws
        self._max = max_message_bytes
        self._close_timeout = close_timeout_s
        self._faults = faults
        self._out_send, self._out_recv = trio.open_memory_channel[_Frame | _Close | _Reply](queue_size)
        # Client messages travel in lists, one per TCP read: one channel hop per read, not per
        # message (audio streams put a dozen messages in one read). Bounded by queue_size reads.
        self._in_send, self._in_recv = trio.open_memory_channel[list[bytes | str | _Reply]](queue_size)
        self._inbox: collections.deque[bytes | str | _Reply] = collections.deque()
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

    async def receive(self) -> bytes | str:
        """The next complete client message; :class:`ConnectionEnded` once the connection is closing.

        A ping is answered here, in order with the messages around it: its pong leaves only once
        the application asked for the message after it, i.e. consumed every message before it
        (the emulator's choice; the service's ordering of pongs is not documented). A client can
        then tell which handles were issued after the server consumed what it sent."""
        inbox = self._inbox
        while True:
            if not inbox:
                try:
                    inbox.extend(await self._in_recv.receive())
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    raise ConnectionEnded from None
            item = inbox.popleft()
            if not isinstance(item, _Reply):
                return item
            try:
                await self._out_send.send(item)
            except trio.ClosedResourceError:
                pass

    async def send(self, data: bytes, *, faultable: bool = True) -> None:
        """Queue one server frame (waits while the queue is full: backpressure). Dropped once
        closing, and when the connection ends while waiting (any task may call this, e.g. a
        test control, so it must not outlive the connection).

        Always a checkpoint, so the writer usually sends each message as its own write, as the
        service streams them; queueing a whole turn without one (one write per turn) was tried
        and reverted: it measured the emulator's batching, not the clients (bench/README.md)."""
        if self.closing:
            return
        try:
            await self._out_send.send(_Frame(data, faultable))
        except trio.ClosedResourceError:
            pass

    def try_send(self, data: bytes) -> bool:
        """Queue one server frame if there is room now (timers must not wait on a client that
        stopped reading); False if it was not queued."""
        if self.closing:
            return False
        try:
            self._out_send.send_nowait(_Frame(data, True))
        except (trio.WouldBlock, trio.ClosedResourceError):
            return False
        return True

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
            self._in_send.close()
            # Nothing drains the queue any more: a task still waiting to queue a frame (a
            # turn, a test control) gets ClosedResourceError, which send() and close() absorb.
            self._out_send.close()

    async def _serve(self, handler: Callable[[], Awaitable[None]]) -> None:
        try:
            await handler()
        except closes.Refusal as refusal:
            await self.close(refusal.code, refusal.reason)

    async def _reader(self) -> None:
        parts: list[bytes | str] = []
        size = 0
        try:
            while True:
                try:
                    data = bytes(await self._stream.receive_some(RECEIVE_SIZE))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    self._mark_ended(1006, "")
                    self.closing = True
                    self._done.set()
                    return
                try:
                    self._ws.receive_data(data)
                    events = list(self._ws.events())
                except (WsRemoteError, WsLocalError):
                    await self.close(1002, "Protocol error.")
                    return
                batch: list[bytes | str | _Reply] = []
                for event in events:
                    if isinstance(event, Message):
                        if self.closing:
                            continue
                        parts.append(event.data)
                        size += len(event.data)
                        if size > self._max:
                            await self.close(closes.TOO_BIG, closes.TEXT_TOO_BIG)
                            parts.clear()
                            continue
                        if event.message_finished:
                            if isinstance(event, TextMessage):
                                message: bytes | str = "".join(p for p in parts if isinstance(p, str))
                            else:
                                message = b"".join(p for p in parts if isinstance(p, bytes))
                            parts.clear()
                            size = 0
                            batch.append(message)
                    elif isinstance(event, Ping):
                        batch.append(_Reply(event.response()))  # answered in order (receive)
                    elif isinstance(event, CloseConnection):
                        if batch:
                            await self._in_send.send(batch)
                        if not self.closing:
                            self.closing = True
                            self._mark_ended(event.code, event.reason or "")
                        if self._ws.state is ConnectionState.REMOTE_CLOSING:
                            # Our close may be queued, but it is not sent: the client spoke
                            # first, so answer its close (``closing`` alone does not tell).
                            await self._answer_close(event)
                        else:
                            self._done.set()  # the answer to the close we sent
                        return
                if batch:
                    await self._in_send.send(batch)
        finally:
            self._in_send.close()

    async def _answer_close(self, event: CloseConnection) -> None:
        """Answer the client's close after the frames already queued, within the close timeout.

        The client has stopped reading, so the queue may never drain (the writer stuck in
        ``send_all``, the reply stuck behind a full queue): past the timeout the connection is
        dropped, so it cannot outlive the client's close."""
        with trio.move_on_after(self._close_timeout):
            await self._out_send.send(_Reply(event.response()))
            await self._done.wait()
            return
        self.abort()

    async def _writer(self) -> None:
        """Send queued frames in order. Frames already queued are sent with one ``send_all``
        (fewer syscalls and wakeups on both ends); with faults on, one frame at a time."""
        batch_limit = 1 if self._faults is not None else WRITE_BATCH
        try:
            async for first in self._out_recv:
                batch = [first]
                while len(batch) < batch_limit:
                    try:
                        batch.append(self._out_recv.receive_nowait())
                    except trio.WouldBlock:
                        break
                self._made_room()
                out = bytearray()
                finished = False
                for item in batch:
                    data, finished = await self._render(item)
                    if data is None:
                        return  # aborted
                    out += data
                if out:
                    await self._stream.send_all(out)
                if finished:
                    self._done.set()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The transport is gone: nothing queued can be sent any more, so end the whole
            # connection now (a reader blocked queueing a pong would otherwise wait forever).
            # Not our abort: the client vanished (closed_by_server stays as it was).
            self._mark_ended(1006, "")
            self.closing = True
            self._done.set()
            if self._scope is not None:
                self._scope.cancel()
        except WsLocalError:
            # :meth:`_render` checks the state before every wsproto send, so this is a bug; the
            # frame cannot be sent, so drop this connection (only this one) and say so.
            log.exception("emulator frame could not be sent")
            self.abort()
            self._done.set()

    async def _render(self, item: _Frame | _Close | _Reply) -> tuple[bytes | None, bool]:
        """The bytes for one queued item (None: the connection was aborted) and whether the
        close handshake is complete once they are sent.

        The WebSocket state is read again after every await: a fault's delay lets the reader
        take the client's close meanwhile, and wsproto refuses (``LocalProtocolError``) any
        data or close frame of ours once the peer has closed."""
        state = self._ws.state
        if isinstance(item, _Reply) and isinstance(item.event, CloseConnection):
            if state is ConnectionState.REMOTE_CLOSING:
                return self._ws.send(item.event), True
            return b"", True
        if state is not ConnectionState.OPEN:
            return b"", False
        if isinstance(item, _Close):
            return self._ws.send(CloseConnection(item.code, item.reason)), False
        if isinstance(item, _Reply):
            return self._ws.send(item.event), False
        payload = item.data
        if item.faultable and self._faults is not None:
            action, delay = self._faults.next()
            if delay > 0:
                await trio.sleep(delay)
                if self._ws.state is not ConnectionState.OPEN:
                    return b"", False  # the client closed while this frame was delayed
            if action is Action.DROP:
                self.abort()
                return None, False
            if action is Action.CLOSE:
                self.closing = True
                self.closed_by_server = True
                self._mark_ended(closes.INTERNAL, closes.TEXT_INTERNAL)
                return self._ws.send(CloseConnection(closes.INTERNAL, closes.TEXT_INTERNAL)), False
            if action is Action.MALFORMED:
                payload = MALFORMED_FRAME
        return self._ws.send(BytesMessage(data=payload)), False
