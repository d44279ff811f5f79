"""The sans-I/O engine's own I/O paths (issue 6/7): direct socket reads and writes, the send lock,
keepalive from within ``receive``, and the handshake handing bytes after the 101 to the open
connection. Driven over a real socketpair with a hand-made peer, so every byte is checked."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trio
import trio.testing
import websockets.frames
import websockets.protocol
from websockets.protocol import Protocol, Side, State

from livemesh.errors import AuthError, SessionError
from livemesh.transport import CloseInfo, ConnectionLostError, TransportOptions
from livemesh.transport_sansio import SansioConnection, drain_probe, open_connection
from tests.test_transport_sansio import bare_connection


def _server_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked frame, FIN set (server to client)."""
    if len(payload) < 126:
        return bytes([0x80 | opcode, len(payload)]) + payload
    return bytes([0x80 | opcode, 127]) + len(payload).to_bytes(8, "big") + payload


class Peer:
    """The server end of a socketpair: parses what the client sent with websockets' own parser."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.protocol = Protocol(Side.SERVER, state=State.OPEN, max_size=None)
        self.frames: list[websockets.frames.Frame] = []

    async def read_frames(self, count: int) -> list[websockets.frames.Frame]:
        while len(self.frames) < count:
            data = await self.stream.receive_some(1 << 16)
            assert data, "the client closed the connection"
            self.protocol.receive_data(data)
            self.frames.extend(
                e for e in self.protocol.events_received() if isinstance(e, websockets.frames.Frame)
            )
            self.protocol.data_to_send()  # its automatic answers are not wanted here
        taken, self.frames = self.frames[:count], self.frames[count:]
        return taken


def make_pair(*, small_buffers: bool, read_size: int = 64) -> tuple[SansioConnection, Peer]:
    a, b = trio.socket.socketpair()
    if small_buffers:  # large writes must wait for the peer
        for sock in (a, b):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn = bare_connection(trio.SocketStream(a), options=TransportOptions(receive_buffer_size=read_size))
    return conn, Peer(trio.SocketStream(b))


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SansioConnection, Peer]]:
    conn, peer = make_pair(small_buffers=True)
    yield conn, peer
    await trio.aclose_forcefully(peer.stream)  # first: the client's close then ends at its EOF
    await conn.aclose()


async def test_a_large_write_waits_for_the_peer_and_arrives_whole(
    pair: tuple[SansioConnection, Peer],
) -> None:
    conn, peer = pair
    big = b'"' + b"x" * 500_000 + b'"'  # far beyond the socket buffers: written in many parts
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, big)
            await trio.testing.wait_all_tasks_blocked()  # written in part, waits for the peer
            nursery.start_soon(conn.send, b'"after"')  # waits for the lock, leaves second
            (first, second) = await peer.read_frames(2)
    assert (first.data, second.data) == (big, b'"after"')
    assert conn.close_info is None


async def test_a_write_cancelled_while_the_peer_reads_nothing_aborts(
    pair: tuple[SansioConnection, Peer],
) -> None:
    conn, peer = pair
    with trio.fail_after(10):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.send, b'"' + b"x" * 500_000 + b'"')
                await trio.testing.wait_all_tasks_blocked()  # parked on a full send buffer
                scope.cancel()
        assert conn.close_info == CloseInfo(1006, "")
        with pytest.raises(ConnectionLostError):
            await conn.send(b"{}")
        # the peer sees the partial frame, then EOF: nothing follows it
        received = b""
        while chunk := await peer.stream.receive_some(1 << 16):
            received += chunk
        assert 0 < len(received) < 500_000


async def test_a_sender_cancelled_while_waiting_for_the_lock_queues_nothing(
    pair: tuple[SansioConnection, Peer],
) -> None:
    conn, peer = pair
    big = b'"' + b"y" * 200_000 + b'"'
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, big)
            await trio.testing.wait_all_tasks_blocked()  # holds the lock, waits for the peer
            with trio.CancelScope() as waiting:
                nursery.start_soon(conn.send, b'"third"')  # queued behind the cancelled one
                await trio.testing.wait_all_tasks_blocked()
                waiting.cancel()
                await conn.send(b'"never"')
            assert waiting.cancelled_caught
            frames = await peer.read_frames(2)
    assert [f.data for f in frames] == [big, b'"third"']
    await conn.send(b'"still usable"')
    assert [f.data for f in await peer.read_frames(1)] == [b'"still usable"']


async def test_reads_that_never_wait_still_let_other_tasks_run() -> None:
    conn, peer = make_pair(small_buffers=False)
    count = 1000  # ~6 KB of small frames already in the socket: ~100 reads of 64 bytes, none waits
    await peer.stream.send_all(b"".join(_server_frame(1, b"m%d" % i) for i in range(count)))
    progress: list[int] = []
    received: list[bytes | str] = []

    async def watch() -> None:
        while len(received) < count:
            progress.append(len(received))
            await trio.lowlevel.checkpoint()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            for _ in range(count):
                received.append(await conn.receive())  # 64-byte reads of bytes already there
    assert received == [f"m{i}" for i in range(count)]
    assert any(0 < p < count for p in progress)  # the reader yielded along the way
    await trio.aclose_forcefully(peer.stream)
    await conn.aclose()


async def test_keepalive_pings_an_idle_connection_and_a_pong_keeps_it(
    pair: tuple[SansioConnection, Peer], autojump_clock: trio.testing.MockClock
) -> None:
    conn, peer = pair
    assert conn.set_keepalive(interval=20, pong_timeout=60)
    got: list[bytes | str] = []
    async with trio.open_nursery() as nursery:
        start = trio.current_time()

        async def receive() -> None:
            got.append(await conn.receive())

        nursery.start_soon(receive)
        for _ in range(3):
            (ping,) = await peer.read_frames(1)  # one ping per idle interval, answered late
            assert ping.opcode is websockets.frames.Opcode.PING
            await trio.sleep(50)
            await peer.stream.send_all(_server_frame(0xA, bytes(ping.data)))
        assert trio.current_time() - start >= 3 * 20
        await peer.stream.send_all(_server_frame(1, b"hello"))
    assert got == ["hello"]


async def test_keepalive_does_not_ping_while_traffic_flows(
    pair: tuple[SansioConnection, Peer], autojump_clock: trio.testing.MockClock
) -> None:
    conn, peer = pair
    conn.set_keepalive(interval=20, pong_timeout=60)
    for i in range(10):
        await trio.sleep(15)
        await peer.stream.send_all(_server_frame(1, b"%d" % i))
        assert await conn.receive() == str(i)
    nothing_unread = drain_probe(peer.stream)
    assert nothing_unread is not None and nothing_unread()  # the client wrote nothing: no ping


async def test_keepalive_gives_up_without_pong_or_traffic(
    pair: tuple[SansioConnection, Peer], autojump_clock: trio.testing.MockClock
) -> None:
    conn, peer = pair
    conn.set_keepalive(interval=20, pong_timeout=60)
    start = trio.current_time()
    with pytest.raises(ConnectionLostError, match="keepalive") as lost:
        await conn.receive()
    assert lost.value.code == 1011
    assert trio.current_time() - start == pytest.approx(80)
    assert (await peer.read_frames(1))[0].opcode is websockets.frames.Opcode.PING


async def _raw_server(response: bytes, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Answers one upgrade request with ``response`` (in one write), then waits for EOF."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    task_status.started(listener.socket.getsockname()[1])
    async with listener:
        stream = await listener.accept()
        async with stream:
            request = b""
            while b"\r\n\r\n" not in request:
                request += await stream.receive_some(4096)
            await stream.send_all(response)
            while await stream.receive_some(4096):
                pass


async def test_frames_in_the_same_read_as_the_101_are_kept() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(_accepting_server)
            async with open_connection(f"ws://127.0.0.1:{port}/x") as conn:
                assert await conn.receive() == "first"
                assert await conn.receive() == b"second"
                assert await conn.receive() == "third"


async def _accepting_server(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    from websockets.server import ServerProtocol

    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    task_status.started(listener.socket.getsockname()[1])
    async with listener:
        stream = await listener.accept()
        async with stream:
            server = ServerProtocol()
            request = None
            while request is None:
                server.receive_data(await stream.receive_some(4096))
                request = next(iter(server.events_received()), None)
            server.send_response(server.accept(request))  # type: ignore[arg-type]
            server.send_text(b"first")
            server.send_binary(b"second")
            server.send_text(b"third")
            data = b"".join(server.data_to_send())
            cut = len(data) - 4  # the third frame cut across two writes
            await stream.send_all(data[:cut])  # the 101, two frames and part of the third at once
            await trio.testing.wait_all_tasks_blocked()  # the client waits for the rest
            await stream.send_all(data[cut:])
            while data := await stream.receive_some(4096):  # until the close handshake is done
                server.receive_data(data)
                for chunk in server.data_to_send():
                    if not chunk:
                        return  # websockets' signal to close the TCP connection
                    await stream.send_all(chunk)


async def test_a_refusal_with_a_body_is_mapped() -> None:
    body = b'{"error": "forbidden"}' * 50
    response = (
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(_raw_server, response)
            with pytest.raises(AuthError) as refused:
                async with open_connection(f"ws://127.0.0.1:{port}/x?key=SECRET"):
                    pass  # pragma: no cover
            assert refused.value.code == 403
            assert "SECRET" not in str(refused.value)


async def test_many_frames_from_one_read_are_handed_out_in_order() -> None:
    conn, peer = make_pair(small_buffers=False, read_size=1 << 16)
    count = 500  # all parsed from one read; the handed-out head of the list is compacted on the way
    await peer.stream.send_all(b"".join(_server_frame(1, b"f%d" % i) for i in range(count)))
    with trio.fail_after(10):
        assert [await conn.receive() for _ in range(count)] == [f"f{i}" for i in range(count)]
        assert conn.received_index == count - 1
    await trio.aclose_forcefully(peer.stream)
    await conn.aclose()


async def test_tls_writes_beside_the_stream_arrive_whole_and_in_order() -> None:
    """Over TLS the engine encrypts and writes records itself (beside SSLStream.send_all): a write
    far beyond the socket buffers waits for the peer; frames, pings and the close keep their order
    and decrypt on the other side."""
    import trustme

    a, b = trio.socket.socketpair()
    for sock in (a, b):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    client = trio.SSLStream(trio.SocketStream(a), client_ctx, server_hostname="localhost")
    server = trio.SSLStream(trio.SocketStream(b), server_ctx, server_side=True)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.do_handshake)
            nursery.start_soon(server.do_handshake)
        conn = bare_connection(client)
        peer = Peer(server)  # type: ignore[arg-type]
        big = b'"' + b"t" * 300_000 + b'"'
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, big)
            await trio.testing.wait_all_tasks_blocked()  # part written, waits for the peer
            nursery.start_soon(conn.send, b'"next"')
            frames = await peer.read_frames(2)
        assert [f.data for f in frames] == [big, b'"next"']
        await conn.send_many([b'"a"', b'"b"'])
        await peer.stream.send_all(_server_frame(1, b"from the server"))  # read through SSLStream
        assert await conn.receive() == "from the server"
        assert [f.data for f in await peer.read_frames(2)] == [b'"a"', b'"b"']
    await trio.aclose_forcefully(server)
    await trio.aclose_forcefully(client)


# ----------------------------------------------------------------------------- TLS reads
#
# Over TLS the engine reads the socket itself and decrypts with the stream's SSLObject (beside
# SSLStream.receive_some). The peer here is a hand-driven server SSLObject on a plain socket, so a
# test decides where records start and end, corrupts them, or asks for a post-handshake message.


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts. The server may ask for the client's certificate after the
    handshake (TLS 1.3 post-handshake auth): the one message OpenSSL answers *while reading*."""
    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_OPTIONAL
    server_ctx.post_handshake_auth = True  # so the handshake itself asks for no certificate
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    ca.issue_cert("client.example").configure_cert(client_ctx)
    client_ctx.post_handshake_auth = True
    return server_ctx, client_ctx


class TlsPeer:
    """The server end: an ``ssl.SSLObject`` over a plain trio socket, driven by hand."""

    def __init__(self, stream: trio.SocketStream, context: ssl.SSLContext) -> None:
        self.stream = stream
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.protocol = Protocol(Side.SERVER, state=State.OPEN, max_size=None)
        self.frames: list[websockets.frames.Frame] = []

    async def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self.stream.send_all(self.outgoing.read())
                self.incoming.write(await self.stream.receive_some(1 << 16))
        await self.stream.send_all(self.outgoing.read())  # Finished's answer: the session tickets

    def records(self, data: bytes) -> bytes:
        """``data`` encrypted, cut into records of at most 16 KiB (plus anything queued before)."""
        self.tls.write(data)
        return self.outgoing.read()

    def _plaintext(self) -> bytes:
        out = b""
        try:
            while chunk := self.tls.read(1 << 16):
                out += chunk
        except ssl.SSLWantReadError:
            pass
        return out

    async def read_some(self) -> None:
        """One socket read, decrypted and parsed (its frames appended to ``self.frames``)."""
        data = await self.stream.receive_some(1 << 16)
        assert data, "the client closed the connection"
        self.incoming.write(data)
        self.protocol.receive_data(self._plaintext())
        self.frames.extend(
            e for e in self.protocol.events_received() if isinstance(e, websockets.frames.Frame)
        )
        self.protocol.data_to_send()

    async def read_frames(self, count: int) -> list[websockets.frames.Frame]:
        while len(self.frames) < count:
            await self.read_some()
        taken, self.frames = self.frames[:count], self.frames[count:]
        return taken


async def tls_pair(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    *,
    https_compatible: bool = True,
    handshake: bool = True,
    small_buffers: bool = False,
    read_size: int = 1 << 16,
) -> tuple[SansioConnection, TlsPeer, trio.SSLStream[trio.SocketStream]]:
    a, b = trio.socket.socketpair()
    if small_buffers:  # a large write must wait for the peer
        for sock in (a, b):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client = trio.SSLStream(
        trio.SocketStream(a), contexts[1], server_hostname="localhost", https_compatible=https_compatible
    )
    peer = TlsPeer(trio.SocketStream(b), contexts[0])
    if handshake:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.do_handshake)
            nursery.start_soon(peer.handshake)
    conn = bare_connection(client, options=TransportOptions(receive_buffer_size=read_size), max_size=None)
    return conn, peer, client


@pytest.fixture
def stream_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of ``SSLStream.receive_some`` (the public path the engine reads beside)."""
    calls: list[int] = []
    public = trio.SSLStream.receive_some

    async def counting(
        self: trio.SSLStream[trio.abc.Stream], max_bytes: int | None = None
    ) -> bytes | bytearray:
        calls.append(1)
        return await public(self, max_bytes)

    monkeypatch.setattr(trio.SSLStream, "receive_some", counting)
    return calls


async def test_tls_frames_spanning_many_records_are_read_beside_the_stream(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], stream_reads: list[int]
) -> None:
    payloads = [b"a" * 200_000, b"b", b"c" * 70_000, b"d" * 16_379]  # 13 records, 1, 5, one exactly full
    with trio.fail_after(10):
        conn, peer, client = await tls_pair(tls_contexts)
        async with trio.open_nursery() as nursery:  # beyond the socket buffers: sent while read
            nursery.start_soon(
                peer.stream.send_all, peer.records(b"".join(_server_frame(1, p) for p in payloads))
            )
            got = [await conn.receive() for _ in payloads]
        assert got == [p.decode() for p in payloads]
        assert stream_reads == []  # every read went beside SSLStream.receive_some
        await conn.send(b'"reply"')  # and writes still encrypt in step with the reads' SSLObject
        assert [f.data for f in await peer.read_frames(1)] == [b'"reply"']
    await trio.aclose_forcefully(client)
    await trio.aclose_forcefully(peer.stream)


async def test_one_tls_read_decrypts_every_record_it_brought(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 60 KB frame is four records that one socket read brings: one read hands it out (the
    stream's own read returns one record per call: four reads and scheduling rounds)."""
    reads: list[int] = []
    read_once = SansioConnection._read_once

    async def counting(self: SansioConnection, deadline: float = float("inf")) -> bool:
        reads.append(1)
        return await read_once(self, deadline)

    monkeypatch.setattr(SansioConnection, "_read_once", counting)
    with trio.fail_after(10):
        conn, peer, client = await tls_pair(tls_contexts)
        await peer.stream.send_all(peer.records(_server_frame(1, b"r" * 60_000)))
        assert await conn.receive() == "r" * 60_000
        assert reads == [1]
    await trio.aclose_forcefully(client)
    await trio.aclose_forcefully(peer.stream)


@pytest.mark.parametrize(
    "cut", [3, 5, 4000, -1], ids=["in-header", "after-header", "mid-record", "last-byte"]
)
async def test_a_tls_record_cut_across_reads_waits_for_its_rest(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], stream_reads: list[int], cut: int
) -> None:
    with trio.fail_after(10):
        conn, peer, client = await tls_pair(tls_contexts)
        records = peer.records(_server_frame(1, b"x" * 10_000) + _server_frame(1, b"second"))
        got: list[bytes | str] = []

        async def receive_two() -> None:
            got.append(await conn.receive())
            got.append(await conn.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_two)
            await peer.stream.send_all(records[:cut])
            await trio.testing.wait_all_tasks_blocked()  # the reader has the head, waits for the rest
            assert got == []
            await peer.stream.send_all(records[cut:])
        assert got == ["x" * 10_000, "second"]
        assert stream_reads == []
    await trio.aclose_forcefully(client)
    await trio.aclose_forcefully(peer.stream)


def _corrupt(records: bytes) -> bytes:
    """The first record with a byte of its ciphertext flipped (its MAC fails)."""
    return records[:20] + bytes([records[20] ^ 0xFF]) + records[21:]


# (ending, https_compatible) -> (close code, the stream broken afterwards, connection aborted)
_ENDINGS = {
    ("close_notify", True): (1006, False, False),
    ("eof", True): (1006, True, False),  # https_compatible: EOF without close_notify is an EOF
    ("eof", False): (1006, True, True),  # else SSLStream raises BrokenResourceError
    ("truncated", True): (1006, True, False),
    ("corrupt", True): (1006, True, True),
    ("close-frame", True): (1000, False, False),
}


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "through-SSLStream"])
@pytest.mark.parametrize(("ending", "https_compatible"), list(_ENDINGS))
async def test_tls_endings_come_out_as_through_the_stream(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    stream_reads: list[int],
    monkeypatch: pytest.MonkeyPatch,
    direct: bool,
    ending: str,
    https_compatible: bool,
) -> None:
    """close_notify, EOF without it, a record cut by EOF, a corrupt record, a close frame: the data
    before them is delivered, then the same close code, stream state and abort either way."""
    from livemesh.transport_sansio import _TlsInternals

    if not direct:
        monkeypatch.setattr(_TlsInternals, "can_read_directly", lambda self: False)
    with trio.fail_after(10):
        conn, peer, client = await tls_pair(tls_contexts, https_compatible=https_compatible)
        data = peer.records(_server_frame(1, b"before"))
        if ending == "close_notify":
            with pytest.raises(ssl.SSLWantReadError):
                peer.tls.unwrap()  # queues close_notify, then would wait for the client's
            data += peer.outgoing.read()
        elif ending == "truncated":
            data += peer.records(_server_frame(1, b"never"))[:-5]
        elif ending == "corrupt":
            data += _corrupt(peer.records(_server_frame(1, b"never")))
        elif ending == "close-frame":
            data += peer.records(_server_frame(8, (1000).to_bytes(2, "big") + b"bye"))
        await peer.stream.send_all(data)
        if ending != "close-frame":
            await peer.stream.aclose()
        assert await conn.receive() == "before"
        with pytest.raises(SessionError) as ended:
            await conn.receive()
        code, broken, aborted = _ENDINGS[ending, https_compatible]
        assert ended.value.code == code
        assert conn.close_info is not None and conn.close_info.code == code
        assert (client._state.name == "BROKEN") is broken
        assert conn._aborted is aborted
        assert (stream_reads == []) is direct
    await trio.aclose_forcefully(peer.stream)  # first: the client's close then ends at its EOF
    await conn.aclose()


async def test_tls_reads_go_through_the_stream_while_it_reads_itself(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], stream_reads: list[int]
) -> None:
    """While SSLStream holds its transport-read lock (a fallback operation reading: here the test
    holds it), the engine leaves the socket alone and reads through the stream, which waits."""
    with trio.fail_after(10):
        conn, peer, client = await tls_pair(tls_contexts)
        raw = client.transport_stream.socket
        got: list[bytes | str] = []

        async def receive_one() -> None:
            got.append(await conn.receive())

        async with trio.open_nursery() as nursery:
            async with client._inner_recv_lock:
                nursery.start_soon(receive_one)
                await peer.stream.send_all(peer.records(_server_frame(1, b"held")))
                await trio.testing.wait_all_tasks_blocked()
                assert got == []  # not read beside the stream: the bytes wait in the kernel
                assert await raw.recv(1, socket.MSG_PEEK)
                assert stream_reads == [1]
        assert got == ["held"]
        await peer.stream.send_all(peer.records(_server_frame(1, b"free")))
        assert await conn.receive() == "free"
        assert stream_reads == [1]  # the lock is free again: beside the stream
    await trio.aclose_forcefully(client)
    await trio.aclose_forcefully(peer.stream)


async def test_tls_handshake_not_done_goes_through_the_stream_first(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], stream_reads: list[int]
) -> None:
    with trio.fail_after(10):
        conn, peer, client = await tls_pair(tls_contexts, handshake=False)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.handshake)
            await conn.send(b'"first"')  # SSLStream.send_all does the handshake
        await peer.stream.send_all(peer.records(_server_frame(1, b"one")))
        assert await conn.receive() == "one"
        reads = len(stream_reads)
        await peer.stream.send_all(peer.records(_server_frame(1, b"two")))
        assert await conn.receive() == "two"
        assert len(stream_reads) == reads  # beside the stream from now on
        assert [f.data for f in await peer.read_frames(1)] == [b'"first"']
    await trio.aclose_forcefully(client)
    await trio.aclose_forcefully(peer.stream)


async def _answer_arrives_and_traffic_goes_on(conn: SansioConnection, peer: TlsPeer) -> None:
    """The peer gets the client's certificate (its answer to the peer's CertificateRequest; the
    test's time-out fires if the answer stayed in the client), then a frame from the client."""
    while not peer.tls.getpeercert():
        await peer.read_some()
    await conn.send(b'"after"')
    assert [f.data for f in await peer.read_frames(1)] == [b'"after"']


async def test_tls_answers_written_while_reading_leave_before_the_next_read(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], stream_reads: list[int]
) -> None:
    """A post-handshake CertificateRequest is answered by the client's SSLObject while it reads:
    the answer leaves at once, though the client writes nothing of its own."""
    with trio.fail_after(10):
        conn, peer, client = await tls_pair(tls_contexts)
        assert peer.tls.getpeercert() is None
        peer.tls.verify_client_post_handshake()
        await peer.stream.send_all(peer.records(_server_frame(1, b"hello")))
        assert await conn.receive() == "hello"
        await _answer_arrives_and_traffic_goes_on(conn, peer)
        assert stream_reads == []
    await trio.aclose_forcefully(client)
    await trio.aclose_forcefully(peer.stream)


async def test_tls_answers_written_while_reading_queue_behind_a_write_in_flight(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """The reader's answer waits for the stream's write lock: a write in flight finishes its
    records first (else the answer would land inside a record and the peer's decryption fail)."""
    with trio.fail_after(10):
        conn, peer, client = await tls_pair(tls_contexts, small_buffers=True)
        big = b'"' + b"w" * 300_000 + b'"'
        got: list[bytes | str] = []

        async def receive_one() -> None:
            got.append(await conn.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, big)
            await trio.testing.wait_all_tasks_blocked()  # part written, waits for the peer
            peer.tls.verify_client_post_handshake()
            await peer.stream.send_all(peer.records(_server_frame(1, b"hello")))
            nursery.start_soon(receive_one)
            await trio.testing.wait_all_tasks_blocked()
            assert got == []  # decrypted, but its answer waits behind the write
            assert [f.data for f in await peer.read_frames(1)] == [big]
        assert got == ["hello"]
        await _answer_arrives_and_traffic_goes_on(conn, peer)
    await trio.aclose_forcefully(client)
    await trio.aclose_forcefully(peer.stream)


async def test_tls_keepalive_bounds_a_waiting_read(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    stream_reads: list[int],
    autojump_clock: trio.testing.MockClock,
) -> None:
    conn, peer, client = await tls_pair(tls_contexts)
    conn.set_keepalive(interval=20, pong_timeout=60)
    got: list[bytes | str] = []
    start = trio.current_time()

    async def receive_one() -> None:
        got.append(await conn.receive())

    with trio.fail_after(500):  # virtual seconds: a read the keepalive does not bound fails here
        await _keepalive_rounds(conn, peer, receive_one, got, start)
    assert stream_reads == []
    await trio.aclose_forcefully(client)
    await trio.aclose_forcefully(peer.stream)


async def _keepalive_rounds(
    conn: SansioConnection,
    peer: TlsPeer,
    receive_one: Callable[[], Awaitable[None]],
    got: list[bytes | str],
    start: float,
) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive_one)
        (ping,) = await peer.read_frames(1)  # after 20 s of silence
        assert ping.opcode is websockets.frames.Opcode.PING
        assert trio.current_time() - start == pytest.approx(20)
        await trio.sleep(50)  # a late pong still counts
        await peer.stream.send_all(
            peer.records(_server_frame(0xA, bytes(ping.data)) + _server_frame(1, b"hi"))
        )
    assert got == ["hi"]
    start = trio.current_time()
    with pytest.raises(ConnectionLostError, match="keepalive") as lost:
        await conn.receive()
    assert lost.value.code == 1011
    assert trio.current_time() - start == pytest.approx(80)


# ----------------------------------------------------------------------------- whole writes


async def test_a_whole_write_that_waits_finishes_though_its_caller_is_cancelled() -> None:
    """A ping's write (``whole``) that must wait for the peer is shielded, so a cancelled caller
    does not cut the frame; a write the kernel takes at once needs no cancel scope at all."""
    conn, peer = make_pair(small_buffers=True)
    sock = conn._sock
    assert sock is not None
    stuffed = 0
    try:
        while True:
            stuffed += sock.send(b"s" * 1024)  # fill the socket: the next write has to wait
    except BlockingIOError:
        pass
    payload = b"p" * 10_000
    caller = trio.CancelScope()

    async def write() -> None:
        with caller:
            await conn._send_raw(sock, payload, True)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write)
            await trio.testing.wait_all_tasks_blocked()  # parked on writability
            caller.cancel()
            received = b""
            while len(received) < stuffed + len(payload):
                received += await peer.stream.receive_some(1 << 16)
        assert received == b"s" * stuffed + payload
        assert not caller.cancelled_caught  # the write ran to its end under the shield
    await trio.aclose_forcefully(peer.stream)
    await conn.aclose()


async def test_a_whole_write_stuck_past_the_disconnect_timeout_is_broken(
    autojump_clock: trio.testing.MockClock,
) -> None:
    conn, peer = make_pair(small_buffers=True)
    sock = conn._sock
    assert sock is not None
    try:
        while True:
            sock.send(b"s" * 1024)
    except BlockingIOError:
        pass
    start = trio.current_time()
    with trio.fail_after(500), pytest.raises(trio.BrokenResourceError):
        await conn._send_raw(sock, b"p" * 10_000, True)
    assert trio.current_time() - start == pytest.approx(TransportOptions().disconnect_timeout)
    await trio.aclose_forcefully(peer.stream)
    await conn.aclose()


async def test_a_ping_through_a_stream_finishes_its_write_though_its_caller_is_cancelled() -> None:
    """The same for a stream that is not a plain socket (``send_all`` waits for the peer here)."""
    client, server = trio.testing.lockstep_stream_pair()
    conn = bare_connection(client)
    peer = Peer(server)  # type: ignore[arg-type]
    caller = trio.CancelScope()

    async def ping() -> None:
        with caller:
            await conn.ping()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ping)
            await trio.testing.wait_all_tasks_blocked()  # its send_all waits for the peer
            caller.cancel()
            (frame,) = await peer.read_frames(1)
        assert frame.opcode is websockets.frames.Opcode.PING
        assert caller.cancelled_caught  # cancelled after the write, while waiting for the pong
        assert conn.close_info is None  # not cut, so not aborted
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, b'"still usable"')
            assert [f.data for f in await peer.read_frames(1)] == [b'"still usable"']


# ----------------------------------------------------------------------------- review findings


async def test_tls_messages_before_a_failed_answer_are_handed_out_with_the_close(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """[hello][CertificateRequest][world][close 1000], then the peer goes: the client's answer to
    the request cannot be written. What the peer sent still comes out, its close frame included
    (1000, not 1006), as through the stream."""
    with trio.fail_after(10):
        conn, peer, client = await tls_pair(tls_contexts)
        data = peer.records(_server_frame(1, b"hello"))
        peer.tls.verify_client_post_handshake()
        data += peer.records(_server_frame(1, b"world"))
        data += peer.records(_server_frame(8, (1000).to_bytes(2, "big") + b"bye"))
        await peer.stream.send_all(data)
        await peer.stream.aclose()
        got = []
        with pytest.raises(ConnectionLostError) as info:
            while True:
                got.append(await conn.receive())
        assert got == ["hello", "world"]
        assert info.value.code == 1000
        assert conn.close_info == CloseInfo(code=1000, reason="bye")
    await trio.aclose_forcefully(client)


async def test_tls_receive_cancelled_while_its_answer_waits_leaves_the_connection_alive(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """The reader's answer to a post-handshake request waits behind a write in flight; the
    receive is cancelled meanwhile. Nothing was taken from the SSLObject's output: the connection
    lives on and the write in flight arrives whole."""
    with trio.fail_after(10):
        conn, peer, client = await tls_pair(tls_contexts, small_buffers=True)
        big = b'"' + b"w" * 300_000 + b'"'
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, big)
            await trio.testing.wait_all_tasks_blocked()
            peer.tls.verify_client_post_handshake()
            await peer.stream.send_all(peer.records(_server_frame(1, b"hello")))
            with trio.move_on_after(0.2):
                await conn.receive()
            assert not conn._aborted
            assert [f.data for f in await peer.read_frames(1)] == [big]
        assert conn.close_info is None
    await trio.aclose_forcefully(client)
    await trio.aclose_forcefully(peer.stream)


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
async def test_bytes_that_came_in_time_but_were_read_late_are_life(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], tls: bool, autojump_clock: trio.testing.MockClock
) -> None:
    """A keepalive ping is out (deadline in 0.5 s); the pong-or-anything arrives at 0.4 s, but the
    reader is scheduled only at 0.6 s (a busy loop). That is life, not a keepalive failure."""
    if tls:
        conn, tls_peer, client = await tls_pair(tls_contexts)
        fd, frame = tls_peer.stream.socket.fileno(), tls_peer.records(_server_frame(1, b"alive"))
    else:
        conn, peer = make_pair(small_buffers=False, read_size=1 << 16)
        fd, frame = peer.stream.socket.fileno(), _server_frame(1, b"alive")
    conn.set_keepalive(interval=10, pong_timeout=0.5)
    conn._pinged_at = trio.current_time()  # a ping is out: the read is bounded at now + 0.5 s

    async def busy_peer() -> None:
        await trio.sleep(0.4)
        assert os.write(fd, frame) == len(frame)
        autojump_clock.jump(0.2)  # a busy loop: the reader is scheduled only past the deadline

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(busy_peer)
            assert await conn.receive() == "alive"
    if tls:
        await trio.aclose_forcefully(client)


async def test_tls_record_trickling_in_is_life(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], autojump_clock: trio.testing.MockClock
) -> None:
    """One 16 KB record arriving 400 bytes every 5 s (200 s in all) with a 20 s + 20 s keepalive:
    any bytes are life, a record's head too."""
    conn, peer, client = await tls_pair(tls_contexts)
    conn.set_keepalive(interval=20, pong_timeout=20)
    data = peer.records(_server_frame(2, b"x" * 16_000))

    async def trickle() -> None:
        for i in range(0, len(data), 400):
            await peer.stream.send_all(data[i : i + 400])
            await trio.sleep(5)

    with trio.fail_after(500):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle)
            message = await conn.receive()
            nursery.cancel_scope.cancel()
    assert len(message) == 16_000
    await trio.aclose_forcefully(client)
