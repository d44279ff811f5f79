"""The emulator's WebSocket layer at the byte level: frames a well-behaved library client never
sends (fragments, unmasked frames, oversize headers) and writes the kernel takes only in part.

A raw client here is websockets' sans-I/O ``ClientProtocol`` on a trio TCP stream, so every frame
is under the test's control.
"""

from __future__ import annotations

import socket
import ssl

import pytest
import trio
import trio.testing
import trustme
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from livemesh import wire
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.wsio import WebSocketPeer
from livemesh.transport.sockets import SocketIO
from livemesh.transport.streams import SocketIOStream
from livemesh.transport.tls import TlsState
from tests.emulator.helpers import GEMINI, text_setup


class RawClient:
    """A Live connection driven frame by frame."""

    def __init__(self, stream: trio.abc.Stream, protocol: ClientProtocol) -> None:
        self.stream = stream
        self.protocol = protocol

    async def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                await self.stream.send_all(data)

    async def frames(self) -> list[Frame]:
        """Frames from the next read(s): at least one, or [] at the end of the stream."""
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                self.protocol.receive_eof()
                return []
            self.protocol.receive_data(data)
            frames = [event for event in self.protocol.events_received() if isinstance(event, Frame)]
            if frames:
                return frames

    async def message(self) -> wire.ServerMessage:
        while True:
            for frame in await self.frames():
                if frame.opcode is Opcode.BINARY:
                    return wire.decode_server(bytes(frame.data))

    async def close_code(self) -> int | None:
        """Read to the end of the stream; the code of the server's close frame (None: none)."""
        code = None
        while frames := await self.frames():
            for frame in frames:
                if frame.opcode is Opcode.CLOSE:
                    code = int.from_bytes(frame.data[:2], "big")
        return code


async def raw_connect(url: str) -> RawClient:
    uri = parse_uri(url + GEMINI + "?key=test")
    stream = await trio.open_tcp_stream(uri.host, uri.port)
    protocol = ClientProtocol(uri)
    protocol.send_request(protocol.connect())
    client = RawClient(stream, protocol)
    await client.flush()
    while protocol.state is State.CONNECTING:
        data = await stream.receive_some(65536)
        assert data, "no handshake response"
        protocol.receive_data(data)
    assert protocol.state is State.OPEN, protocol.handshake_exc
    return client


SETUP = wire.encode_client(wire.ClientMessage(setup=text_setup()))


async def test_a_fragmented_message_is_reassembled_and_answered() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu:
            client = await raw_connect(emu.url)
            third = len(SETUP) // 3
            client.protocol.send_text(SETUP[:third], fin=False)
            client.protocol.send_ping(b"between fragments")  # control frames may interleave
            client.protocol.send_continuation(SETUP[third : 2 * third], fin=False)
            client.protocol.send_continuation(SETUP[2 * third :], fin=True)
            await client.flush()
            message = await client.message()
            assert message.setup_complete is not None
            await client.stream.aclose()


async def test_an_unmasked_client_frame_is_a_protocol_error() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu:
            client = await raw_connect(emu.url)
            await client.stream.send_all(Frame(Opcode.TEXT, SETUP).serialize(mask=False))
            assert await client.close_code() == 1002
            await emu.wait_idle()


async def test_a_frame_over_the_limit_is_refused_from_its_header() -> None:
    """1009 as soon as the header announces too much: the payload is never waited for."""
    with trio.fail_after(5):
        async with open_emulator(EmulatorConfig(max_frame_bytes=4096)) as emu:
            client = await raw_connect(emu.url)
            frame = Frame(Opcode.TEXT, b"x" * 100_000).serialize(mask=True)
            await client.stream.send_all(frame[:64])  # the header and a little payload only
            assert await client.close_code() == 1009
            await emu.wait_idle()


def _peer(server_stream: trio.abc.Stream, max_message_bytes: int = 1024) -> WebSocketPeer:
    """A peer over ``server_stream``: a TCP socket is taken over as ``serve_stream`` does (the
    direct path), a stream that already is a ``SocketIOStream`` (TLS) is used as it is."""
    if isinstance(server_stream, trio.SocketStream):
        server_stream = SocketIOStream(SocketIO.adopt(server_stream))
    return WebSocketPeer(
        server_stream,
        ServerProtocol(state=State.OPEN),
        max_message_bytes=max_message_bytes,
        queue_size=4,
        close_timeout_s=5.0,
    )


async def _binary_until_close(
    stream: trio.abc.Stream, client: RawClient | None = None
) -> tuple[list[bytes], int]:
    """Every binary message the server sent, in order, and its close code (answered)."""
    client = client or RawClient(stream, ClientProtocol(parse_uri("ws://x/"), state=State.OPEN))
    client.protocol.max_message_size = None
    received: list[bytes] = []
    close = None
    while close is None:
        frames = await client.frames()
        assert frames, "the stream ended without a close frame"
        for frame in frames:
            if frame.opcode is Opcode.BINARY:
                received.append(bytes(frame.data))
            elif frame.opcode is Opcode.CLOSE:
                close = int.from_bytes(frame.data[:2], "big")
    await client.flush()  # the protocol's answer to the close
    return received, close


async def _tls_pair(
    client_stream: trio.SocketStream, server_stream: trio.SocketStream
) -> tuple[trio.SSLStream[trio.SocketStream], SocketIOStream]:
    """Both ends of a TLS connection, past the handshake and one exchange each way (as after the
    HTTP upgrade): the client a trio ``SSLStream``, the server the emulator's own TLS layer."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    server = SocketIOStream(SocketIO.adopt(server_stream, tls=TlsState(server_context, server_side=True)))
    client = trio.SSLStream(client_stream, client_context, server_hostname="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.io.handshake)
        await client.do_handshake()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, b"upgrade?")
        assert await server.receive_some(100) == b"upgrade?"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.send_all, b"upgraded")
        assert await client.receive_some(100) == b"upgraded"
    return client, server


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
async def test_frames_written_in_part_arrive_whole_and_in_order(tls: bool) -> None:
    """A small send buffer and a client that reads only once the server is stuck: frames the
    kernel takes in part (a big one written directly by the sender, others by the writer task)
    still arrive whole, in order, before the close frame; over TLS too (the peer encrypts and
    writes the socket itself, so what the kernel leaves is ciphertext)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    big = 1 << 20  # more than the socket buffers hold: a direct write is cut short
    payloads = [bytes([n]) * (big if n % 4 == 0 else 20_000 + 997 * n) for n in range(10)]
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            client_stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", port)
            server_socket = await listeners[0].accept()
            server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            server_stream: trio.abc.Stream = server_socket
            if tls:
                assert isinstance(client_stream, trio.SocketStream)
                client_stream, server_stream = await _tls_pair(client_stream, server_socket)
            peer = _peer(server_stream)
            assert (peer._tls is not None) is tls  # the direct path, not a fallback
            go = trio.Event()

            async def handler() -> None:
                await go.wait()  # the writer is parked on its empty queue by now
                for payload in payloads:
                    await peer.send(payload)
                for payload in payloads:  # try_send too: queued, written at once, or refused
                    if not peer.try_send(payload):
                        await peer.send(payload)

            nursery.start_soon(peer.run, handler)
            await trio.testing.wait_all_tasks_blocked()
            go.set()
            await trio.testing.wait_all_tasks_blocked()  # the server is stuck on full buffers
            received, close = await _binary_until_close(client_stream)
            assert close == 1000
            assert received == payloads + payloads
            await client_stream.aclose()
    for listener in listeners:
        await listener.aclose()


async def test_a_cancelled_sender_writes_nothing() -> None:
    """A sender cancelled before it sends (a turn an interruption cancelled) writes no frame, even
    when the frame would be written directly (nothing queued, writer idle): like a channel send.
    Otherwise the cancelled turn's first chunk follows the ``interrupted``/``turnComplete`` that
    ended it, and a client counts it as the next turn's text."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            client_stream = await trio.open_tcp_stream("127.0.0.1", port)
            server_stream = await listeners[0].accept()
            peer = _peer(server_stream)
            go = trio.Event()

            async def handler() -> None:
                await go.wait()  # the writer is parked on its empty queue: a direct write
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await peer.send(b"cancelled")
                await peer.send(b"after")

            nursery.start_soon(peer.run, handler)
            await trio.testing.wait_all_tasks_blocked()
            go.set()
            received, _ = await _binary_until_close(client_stream)
            assert received == [b"after"]
            await client_stream.aclose()
    for listener in listeners:
        await listener.aclose()


async def test_tls_client_messages_of_any_size_arrive_whole_and_pings_in_order() -> None:
    """Over TLS the peer decrypts the socket's bytes itself: messages spread over many records
    and reads (and several in one read) arrive whole and in order, and a ping's pong follows the
    answers to every message sent before it."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    sizes = [10, 70_000, 5, 16_384, 16_385, 300_000, 1, 4_300, 4_300, 4_300]
    payloads = [bytes([n + 1]) * size for n, size in enumerate(sizes)]
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            client_stream, server_stream = await _tls_pair(tcp, await listeners[0].accept())
            peer = _peer(server_stream, max_message_bytes=1 << 20)
            assert peer._tls is not None

            async def echo_sizes() -> None:
                for _ in payloads:
                    message = await peer.receive()
                    await peer.send(len(message).to_bytes(4, "big") + message[:1])

            nursery.start_soon(peer.run, echo_sizes)
            client = RawClient(client_stream, ClientProtocol(parse_uri("wss://x/"), state=State.OPEN))
            client.protocol.max_message_size = None
            for n, payload in enumerate(payloads):
                client.protocol.send_binary(payload)
                if n == 6:
                    client.protocol.send_ping(b"fence")
            await client.flush()
            seen: list[bytes] = []
            while len(seen) < len(payloads) + 1:
                for frame in await client.frames():
                    if frame.opcode is Opcode.BINARY:
                        seen.append(bytes(frame.data))
                    elif frame.opcode is Opcode.PONG:
                        seen.append(b"pong " + bytes(frame.data))
            expected = [len(p).to_bytes(4, "big") + p[:1] for p in payloads]
            assert seen == [*expected[:7], b"pong fence", *expected[7:]]
            received, close = await _binary_until_close(client_stream, client)
            assert (received, close) == ([], 1000)
            await client_stream.aclose()
    for listener in listeners:
        await listener.aclose()
