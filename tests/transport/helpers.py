"""Peers for the transport tests: hand-made servers on 127.0.0.1 (well-behaved or not), socket
pairs with an engine on one end, and TLS contexts from a throwaway CA."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
import trustme
import websockets.frames
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State
from websockets.server import ServerProtocol

from livemesh.emulator.app import Emulator
from livemesh.transport import Engine, TransportOptions
from livemesh.transport.dial import Target
from livemesh.transport.sansio_engine import SansioConnection, open_sansio_connection
from livemesh.transport.sockets import SocketIO
from livemesh.transport.trio_websocket_engine import open_trio_websocket_connection

KEY = "transport-SECRET-key"


def server_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One unmasked frame (server to client)."""
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        return bytes([first, len(payload)]) + payload
    if len(payload) < 65536:
        return bytes([first, 126]) + len(payload).to_bytes(2, "big") + payload
    return bytes([first, 127]) + len(payload).to_bytes(8, "big") + payload


def text(payload: str) -> bytes:
    return server_frame(0x1, payload.encode())


class Tls:
    """A throwaway CA, a server context for ``names`` and a client context trusting the CA."""

    def __init__(self, *names: str) -> None:
        self.ca = trustme.CA()
        self.server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*(names or ("127.0.0.1", "localhost"))).configure_cert(self.server)
        self.client = ssl.create_default_context()
        self.ca.configure_trust(self.client)


def options_for(emu: Emulator, engine: Engine, **fields: Any) -> TransportOptions:
    context = ssl.create_default_context(cadata=emu.ca_pem.decode()) if emu.ca_pem else None
    return TransportOptions(ssl_context=context, engine=engine, **fields)


# ------------------------------------------------------------------ raw servers on 127.0.0.1

Handler = Callable[[trio.abc.Stream], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Serve ``handler`` (one call per accepted connection) on 127.0.0.1; yields the port."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port: int = listener.socket.getsockname()[1]

    async def serve(stream: trio.abc.Stream) -> None:
        if tls is not None:
            stream = trio.SSLStream(stream, tls, server_side=True, https_compatible=True)
        try:
            await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, serve, [listener])
        try:
            yield port
        finally:
            nursery.cancel_scope.cancel()


async def read_request(stream: trio.abc.Stream) -> tuple[ServerProtocol, Any]:
    """Read an upgrade request; the server protocol that parsed it and the request."""
    server = ServerProtocol(max_size=None)
    while True:
        data = await stream.receive_some(65536)
        assert data, "the client left before its request"
        server.receive_data(data)
        events = server.events_received()
        if events:
            return server, events[0]


async def accept(stream: trio.abc.Stream) -> tuple[bytes, Any]:
    """Read the upgrade request; the bytes of a 101 accepting it, and the request."""
    server, request = await read_request(stream)
    server.send_response(server.accept(request))
    return b"".join(server.data_to_send()), request


class ClientFrames:
    """Parses what the client sends after the upgrade (masked frames) with websockets' parser."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.protocol = Protocol(Side.SERVER, state=State.OPEN, max_size=None)

    async def next(self) -> list[Frame]:
        """The frames of the next read(s) (at least one), or [] at the end of the stream."""
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                return []
            self.protocol.receive_data(data)
            self.protocol.data_to_send()  # its own answers are not wanted here
            frames = [e for e in self.protocol.events_received() if isinstance(e, Frame)]
            if frames:
                return frames

    async def pings(self) -> AsyncIterator[bytes]:
        """The payload of every ping the client sends, until the end of the stream."""
        while frames := await self.next():
            for frame in frames:
                if frame.opcode is Opcode.PING:
                    yield bytes(frame.data)


# ------------------------------------------------------------------ engines on socket pairs


def socket_pair(kind: int = socket.SOCK_STREAM) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    for sock in (a, b):
        sock.setblocking(False)
    return a, b


def pair_dialer(sock: socket.socket, options: TransportOptions) -> Any:
    """A dialer handing the engine ``sock`` (one end of a pair) instead of dialing a URL."""

    async def dialer(url: str, target: Target, opts: TransportOptions) -> SocketIO:
        return SocketIO(sock, read_size=options.receive_buffer_size, write_timeout=options.disconnect_timeout)

    return dialer


def open_on(engine: Engine, sock: socket.socket, options: TransportOptions | None = None) -> Any:
    """Open ``engine``'s connection over ``sock`` (the peer must answer the upgrade)."""
    opts = options or TransportOptions(engine=engine)
    url = f"ws://peer/x?key={KEY}"
    if engine == "sansio":
        return open_sansio_connection(url, [("x-goog-api-key", KEY)], opts, dialer=pair_dialer(sock, opts))
    return open_trio_websocket_connection(
        url, [("x-goog-api-key", KEY)], opts, dialer=pair_dialer(sock, opts)
    )


def bare_sansio(sock: socket.socket, *, options: TransportOptions | None = None) -> SansioConnection:
    """A sans-I/O connection past its upgrade on ``sock``, to drive the byte level directly."""
    opts = options or TransportOptions()
    protocol = Protocol(Side.CLIENT, state=State.OPEN, max_size=opts.max_message_bytes)
    io = SocketIO(sock, read_size=opts.receive_buffer_size, write_timeout=opts.disconnect_timeout)
    return SansioConnection(io, protocol, options=opts)


class PairPeer:
    """The server end of a socket pair, driven by the test (plain bytes, no TLS)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        self.frames = ClientFrames(self.stream)
        self._read: list[Frame] = []

    async def accept(self) -> Any:
        """Answer the client's upgrade; the request."""
        response, request = await accept(self.stream)
        await self.stream.send_all(response)
        return request

    async def read_frames(self, count: int) -> list[Frame]:
        """The client's next ``count`` frames."""
        while len(self._read) < count:
            more = await self.frames.next()
            assert more, "the client closed the connection"
            self._read.extend(more)
        taken, self._read = self._read[:count], self._read[count:]
        return taken


@asynccontextmanager
async def engine_and_peer(
    engine: Engine, options: TransportOptions | None = None
) -> AsyncIterator[tuple[Any, PairPeer]]:
    """``engine``'s connection on one end of a socket pair, past the upgrade; the peer on the other."""
    a, b = socket_pair()
    peer = PairPeer(b)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer.accept)
        async with open_on(engine, a, options) as conn:
            yield conn, peer
            await peer.stream.aclose()


__all__ = [
    "KEY",
    "ClientFrames",
    "Handler",
    "PairPeer",
    "Tls",
    "accept",
    "bare_sansio",
    "engine_and_peer",
    "open_on",
    "options_for",
    "raw_server",
    "read_request",
    "server_frame",
    "socket_pair",
    "text",
    "websockets",
]
