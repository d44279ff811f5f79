"""Prototype of a second WebSocket engine: websockets' sans-I/O protocol driven on a trio stream.

Measured by ``bench/ws_echo.py`` (engine ``sansio-trio``, client and server side) against
trio-websocket and the ``websockets`` asyncio client google-genai uses. The product version behind
the :class:`livemesh.transport.Connection` seam (livemesh errors, TLS, pings, bounded close,
cancellation) is ``livemesh/transport/sansio_engine.py``; ``bench/engine_compare.py`` measures it.

Why it can be faster than trio-websocket on the same trio stream:

* no reader task and no memory channel per connection: :meth:`WsConnection.get_message` reads the
  socket in the caller's task (the session's reader task already is a dedicated reader), and
  returns frames parsed in batches from one ``receive_some(64 KiB)``;
* websockets' frame parser with its C masking (``websockets.speedups``) instead of wsproto's
  pure-Python one; one ``send_all`` per message with no extra event objects.

Sending is serialised by a ``trio.StrictFIFOLock`` (several tasks may send); the parser's state is
only touched between awaits, so the reader and senders can share it on one trio thread. Pings are
answered by the protocol itself (its pong is flushed with the next send or read).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

RECEIVE_BUFFER = 65536


class ConnectionClosedError(Exception):
    pass


class WsConnection:
    """One WebSocket over a trio stream, client or server side."""

    def __init__(self, stream: trio.abc.Stream, protocol: ClientProtocol | ServerProtocol) -> None:
        self.stream = stream
        self.protocol = protocol
        self._send_lock = trio.StrictFIFOLock()
        self._messages: deque[str | bytes] = deque()
        self._fragments: list[bytes] = []
        self._fragment_text = False

    async def _flush(self) -> None:
        chunks = self.protocol.data_to_send()
        if not chunks:
            return
        data = b"".join(chunks)
        if data:
            async with self._send_lock:
                await self.stream.send_all(data)

    async def send_message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.protocol.send_text(message.encode())
        else:
            self.protocol.send_binary(message)
        await self._flush()

    def _absorb(self, events: list[Any]) -> None:
        for event in events:
            if not isinstance(event, Frame):
                continue
            if event.opcode is Opcode.TEXT or event.opcode is Opcode.BINARY:
                if event.fin:
                    self._messages.append(event.data.decode() if event.opcode is Opcode.TEXT else event.data)
                else:
                    self._fragment_text = event.opcode is Opcode.TEXT
                    self._fragments = [event.data]
            elif event.opcode is Opcode.CONT:
                self._fragments.append(event.data)
                if event.fin:
                    data = b"".join(self._fragments)
                    self._fragments = []
                    self._messages.append(data.decode() if self._fragment_text else data)

    async def get_message(self) -> str | bytes:
        while not self._messages:
            data = await self.stream.receive_some(RECEIVE_BUFFER)
            if not data:
                self.protocol.receive_eof()
            else:
                self.protocol.receive_data(data)
            self._absorb(self.protocol.events_received())
            await self._flush()  # pongs, close echo
            if not self._messages and (not data or self.protocol.close_code is not None):
                raise ConnectionClosedError(self.protocol.close_code)
        return self._messages.popleft()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        try:
            self.protocol.send_close(code, reason)
            await self._flush()
        except Exception:
            pass
        await self.stream.aclose()


@asynccontextmanager
async def open_sansio(host: str, port: int, path: str = "/") -> AsyncIterator[WsConnection]:
    stream = await trio.open_tcp_stream(host, port)
    protocol = ClientProtocol(parse_uri(f"ws://{host}:{port}{path}"), max_size=1 << 24)
    protocol.send_request(protocol.connect())
    conn = WsConnection(stream, protocol)
    await conn._flush()
    while True:
        data = await stream.receive_some(RECEIVE_BUFFER)
        if not data:
            raise ConnectionClosedError("handshake")
        protocol.receive_data(data)
        events = protocol.events_received()
        if any(isinstance(e, Response) for e in events):
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc
            conn._absorb(events)
            break
    try:
        yield conn
    finally:
        await conn.aclose()


Handler = Callable[[Callable[[], Awaitable[str | bytes]], Callable[[str], Awaitable[None]]], Awaitable[None]]


async def serve_sansio(handler: Handler, port_file: str) -> None:
    async def one(stream: trio.SocketStream) -> None:
        protocol = ServerProtocol(max_size=1 << 24)
        conn = WsConnection(stream, protocol)
        request: Request | None = None
        while request is None:
            data = await stream.receive_some(RECEIVE_BUFFER)
            if not data:
                return
            protocol.receive_data(data)
            for event in protocol.events_received():
                if isinstance(event, Request):
                    request = event
        protocol.send_response(protocol.accept(request))
        await conn._flush()
        async with stream:
            await handler(conn.get_message, conn.send_message)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    tmp = trio.Path(port_file + ".tmp")
    await tmp.write_text(str(port))
    await tmp.rename(port_file)
    await trio.serve_listeners(one, listeners)
