"""TLS on public APIs: ``SocketIO`` driving a ``TlsState`` (an ``ssl.SSLObject`` over memory BIOs)
under the default engine, against a server ``SSLObject`` driven by hand on a socket pair, so a test
decides where records start and end, corrupts them, or asks for a post-handshake message."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
import trustme
import websockets.frames
from websockets.protocol import Protocol, Side, State

from livemesh.errors import ConfigError, SessionError
from livemesh.transport import CloseInfo, ConnectionLostError, TransportOptions
from livemesh.transport.options import TlsSessionCache
from livemesh.transport.sansio_engine import SansioConnection
from livemesh.transport.sockets import SocketIO
from livemesh.transport.tls import TlsState
from tests.transport.helpers import server_frame


@pytest.fixture(scope="module")
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client). The server may ask for the client's certificate after the handshake
    (TLS 1.3 post-handshake auth): the one message OpenSSL answers *while reading*."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    ca.configure_trust(server)
    server.verify_mode = ssl.CERT_OPTIONAL
    server.post_handshake_auth = True  # so the handshake itself asks for no certificate
    client = ssl.create_default_context()
    ca.configure_trust(client)
    ca.issue_cert("client.example").configure_cert(client)
    client.post_handshake_auth = True
    return server, client


class TlsPeer:
    """The server end: an ``ssl.SSLObject`` over a plain trio socket, driven by hand."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
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
        await self.stream.send_all(self.outgoing.read())  # the session tickets

    def records(self, data: bytes) -> bytes:
        """``data`` encrypted, in records of at most 16 KiB (after anything queued before)."""
        self.tls.write(data)
        return self.outgoing.read()

    async def read_some(self) -> None:
        """One socket read, decrypted and parsed (its frames appended to ``self.frames``)."""
        data = await self.stream.receive_some(1 << 16)
        assert data, "the client closed the connection"
        self.incoming.write(data)
        plaintext = b""
        try:
            while chunk := self.tls.read(1 << 16):
                plaintext += chunk
        except ssl.SSLWantReadError:
            pass
        self.protocol.receive_data(plaintext)
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
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], *, small_buffers: bool = False
) -> tuple[SansioConnection, TlsPeer]:
    """The default engine past TLS and the upgrade on one end of a socket pair, a peer on the other."""
    a, b = socket.socketpair()
    if small_buffers:  # a large write must wait for the peer
        for sock in (a, b):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    io = SocketIO(a, tls=TlsState(contexts[1], server_hostname="localhost"))
    peer = TlsPeer(b, contexts[0])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(io.handshake)
        nursery.start_soon(peer.handshake)
    protocol = Protocol(Side.CLIENT, state=State.OPEN, max_size=None)
    return SansioConnection(io, protocol, options=TransportOptions()), peer


async def finish(conn: SansioConnection, peer: TlsPeer) -> None:
    """Close both ends: the peer's first, so the client's close ends at its EOF (the peer here
    never answers a close frame)."""
    await trio.aclose_forcefully(peer.stream)
    await conn.aclose()


async def test_frames_spanning_many_records_arrive_whole_and_writes_stay_in_step(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    payloads = [b"a" * 200_000, b"b", b"c" * 70_000, b"d" * 16_379]  # 13 records, 1, 5, one exactly full
    with trio.fail_after(10):
        conn, peer = await tls_pair(contexts)
        async with trio.open_nursery() as nursery:  # beyond the socket buffers: sent while read
            nursery.start_soon(
                peer.stream.send_all, peer.records(b"".join(server_frame(1, p) for p in payloads))
            )
            got = [await conn.receive() for _ in payloads]
        assert got == [p.decode() for p in payloads]
        await conn.send(b'"reply"')
        assert [f.data for f in await peer.read_frames(1)] == [b'"reply"']
        await finish(conn, peer)


async def test_one_read_decrypts_every_record_it_brought(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 60 KB frame is four records that one socket read brings: one read hands it out."""
    reads: list[int] = []
    read_once = SansioConnection._read_once

    async def counting(self: SansioConnection, deadline: float = float("inf")) -> bool:
        reads.append(1)
        return await read_once(self, deadline)

    monkeypatch.setattr(SansioConnection, "_read_once", counting)
    with trio.fail_after(10):
        conn, peer = await tls_pair(contexts)
        await peer.stream.send_all(peer.records(server_frame(1, b"r" * 60_000)))
        assert await conn.receive() == "r" * 60_000
        assert reads == [1]
        await finish(conn, peer)


@pytest.mark.parametrize(
    "cut", [3, 5, 4000, -1], ids=["in-header", "after-header", "mid-record", "last-byte"]
)
async def test_a_record_cut_across_reads_waits_for_its_rest(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], cut: int
) -> None:
    with trio.fail_after(10):
        conn, peer = await tls_pair(contexts)
        records = peer.records(server_frame(1, b"x" * 10_000) + server_frame(1, b"second"))
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
        await finish(conn, peer)


def _corrupt(records: bytes) -> bytes:
    """The first record with a byte of its ciphertext flipped (its MAC fails)."""
    return records[:20] + bytes([records[20] ^ 0xFF]) + records[21:]


# ending -> (close code, connection aborted by a TLS error)
_ENDINGS = {
    "close_notify": (1006, False),
    "eof": (1006, False),  # EOF without close_notify is an end of stream (the close frame tells)
    "truncated": (1006, False),  # a record cut by EOF: the same
    "corrupt": (1006, True),
    "close-frame": (1000, False),
}


@pytest.mark.parametrize("ending", list(_ENDINGS))
async def test_endings(contexts: tuple[ssl.SSLContext, ssl.SSLContext], ending: str) -> None:
    """close_notify, EOF without it, a record cut by EOF, a corrupt record, a close frame: the data
    before them is delivered, then the close code; only a TLS error breaks the connection."""
    with trio.fail_after(10):
        conn, peer = await tls_pair(contexts)
        data = peer.records(server_frame(1, b"before"))
        if ending == "close_notify":
            with pytest.raises(ssl.SSLWantReadError):
                peer.tls.unwrap()  # queues close_notify, then would wait for the client's
            data += peer.outgoing.read()
        elif ending == "truncated":
            data += peer.records(server_frame(1, b"never"))[:-5]
        elif ending == "corrupt":
            data += _corrupt(peer.records(server_frame(1, b"never")))
        elif ending == "close-frame":
            data += peer.records(server_frame(8, (1000).to_bytes(2, "big") + b"bye"))
        await peer.stream.send_all(data)
        if ending != "close-frame":
            await peer.stream.aclose()
        assert await conn.receive() == "before"
        with pytest.raises(SessionError) as ended:
            await conn.receive()
        code, aborted = _ENDINGS[ending]
        assert ended.value.code == code
        assert conn.close_info is not None and conn.close_info.code == code
        assert conn._aborted is aborted
        await finish(conn, peer)


async def _answer_arrives_and_traffic_goes_on(conn: SansioConnection, peer: TlsPeer) -> None:
    """The peer gets the client's certificate (its answer to the peer's CertificateRequest; the
    test's time-out fires if the answer stayed in the client), then a frame from the client."""
    while not peer.tls.getpeercert():
        await peer.read_some()
    await conn.send(b'"after"')
    assert [f.data for f in await peer.read_frames(1)] == [b'"after"']


async def test_answers_written_while_reading_leave_before_the_next_read(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """A post-handshake CertificateRequest is answered by the client's SSLObject while it reads:
    the answer leaves at once, though the client writes nothing of its own."""
    with trio.fail_after(10):
        conn, peer = await tls_pair(contexts)
        assert peer.tls.getpeercert() is None
        peer.tls.verify_client_post_handshake()
        await peer.stream.send_all(peer.records(server_frame(1, b"hello")))
        assert await conn.receive() == "hello"
        await _answer_arrives_and_traffic_goes_on(conn, peer)
        await finish(conn, peer)


async def test_answers_written_while_reading_queue_behind_a_write_in_flight(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """A write in flight finishes its records first, then sends the reader's answer (else the
    answer would land inside a record and the peer's decryption fail); the reader does not wait."""
    with trio.fail_after(10):
        conn, peer = await tls_pair(contexts, small_buffers=True)
        big = b'"' + b"w" * 300_000 + b'"'
        got: list[bytes | str] = []

        async def receive_one() -> None:
            got.append(await conn.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, big)
            await trio.testing.wait_all_tasks_blocked()  # part written, waits for the peer
            peer.tls.verify_client_post_handshake()
            await peer.stream.send_all(peer.records(server_frame(1, b"hello")))
            nursery.start_soon(receive_one)
            await trio.testing.wait_all_tasks_blocked()
            assert got == ["hello"]  # handed out: its answer waits for the writer, not the reader
            assert [f.data for f in await peer.read_frames(1)] == [big]
        await _answer_arrives_and_traffic_goes_on(conn, peer)
        await finish(conn, peer)


async def test_messages_before_a_failed_answer_are_handed_out_with_the_close(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """[hello][CertificateRequest][world][close 1000], then the peer goes: the client's answer to
    the request cannot be written. What the peer sent still comes out, its close frame included."""
    with trio.fail_after(10):
        conn, peer = await tls_pair(contexts)
        data = peer.records(server_frame(1, b"hello"))
        peer.tls.verify_client_post_handshake()
        data += peer.records(server_frame(1, b"world"))
        data += peer.records(server_frame(8, (1000).to_bytes(2, "big") + b"bye"))
        await peer.stream.send_all(data)
        await peer.stream.aclose()
        got = []
        with pytest.raises(ConnectionLostError) as info:
            while True:
                got.append(await conn.receive())
        assert got == ["hello", "world"]
        assert info.value.code == 1000
        assert conn.close_info == CloseInfo(code=1000, reason="bye")
        await finish(conn, peer)


async def test_large_writes_wait_for_the_peer_and_arrive_whole_and_in_order(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    with trio.fail_after(10):
        conn, peer = await tls_pair(contexts, small_buffers=True)
        big = b'"' + b"t" * 300_000 + b'"'
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, big)
            await trio.testing.wait_all_tasks_blocked()  # part written, waits for the peer
            nursery.start_soon(conn.send, b'"next"')
            frames = await peer.read_frames(2)
        assert [f.data for f in frames] == [big, b'"next"']
        await conn.send_many([b'"a"', b'"b"'])
        assert [f.data for f in await peer.read_frames(2)] == [b'"a"', b'"b"']
        await finish(conn, peer)


async def test_keepalive_bounds_a_waiting_tls_read(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], autojump_clock: trio.testing.MockClock
) -> None:
    conn, peer = await tls_pair(contexts)
    conn.set_keepalive(interval=20, pong_timeout=60)
    got: list[bytes | str] = []

    async def receive_one() -> None:
        got.append(await conn.receive())

    with trio.fail_after(500):  # virtual seconds: a read the keepalive does not bound fails here
        await _keepalive_rounds(conn, peer, receive_one, got)
    await finish(conn, peer)


async def _keepalive_rounds(
    conn: SansioConnection, peer: TlsPeer, receive_one: Callable[[], Awaitable[None]], got: list[bytes | str]
) -> None:
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive_one)
        (ping,) = await peer.read_frames(1)  # after 20 s of silence
        assert ping.opcode is websockets.frames.Opcode.PING
        assert trio.current_time() - start == pytest.approx(20)
        await trio.sleep(50)  # a late pong still counts
        await peer.stream.send_all(peer.records(server_frame(0xA, bytes(ping.data)) + server_frame(1, b"hi")))
    assert got == ["hi"]
    start = trio.current_time()
    with pytest.raises(ConnectionLostError, match="keepalive") as lost:
        await conn.receive()
    assert lost.value.code == 1011
    assert trio.current_time() - start == pytest.approx(80)


async def test_a_frame_that_came_in_time_but_was_read_late_is_life(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], autojump_clock: trio.testing.MockClock
) -> None:
    """A keepalive ping is out (deadline in 0.5 s); a frame arrives at 0.4 s, but the reader is
    scheduled only at 0.6 s (a busy loop). That is life, not a keepalive failure."""
    conn, peer = await tls_pair(contexts)
    fd, frame = peer.stream.socket.fileno(), peer.records(server_frame(1, b"alive"))
    conn.set_keepalive(interval=10, pong_timeout=0.5)
    conn._keepalive.pinged_at = trio.current_time()  # a ping is out: the read is bounded at now + 0.5 s

    async def busy_peer() -> None:
        await trio.sleep(0.4)
        assert os.write(fd, frame) == len(frame)
        autojump_clock.jump(0.2)  # a busy loop: the reader is scheduled only past the deadline

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(busy_peer)
            assert await conn.receive() == "alive"
    await finish(conn, peer)


def test_the_session_cache_keeps_only_resumable_sessions_per_context_and_host() -> None:
    class Session:
        def __init__(self, has_ticket: bool) -> None:
            self.has_ticket = has_ticket

    cache = TlsSessionCache(max_hosts=2)
    context, other = ssl.create_default_context(), ssl.create_default_context()
    cache.put(context, "a", 443, Session(False))  # type: ignore[arg-type]
    assert cache.get(context, "a", 443) is None
    ticket = Session(True)
    cache.put(context, "a", 443, ticket)  # type: ignore[arg-type]
    assert cache.get(context, "a", 443) is ticket
    assert cache.get(other, "a", 443) is None  # a session resumes with its own context only
    cache.put(context, "b", 443, Session(True))  # type: ignore[arg-type]
    cache.put(context, "c", 443, Session(True))  # type: ignore[arg-type]
    assert cache.get(context, "a", 443) is None  # the oldest went
    assert repr(cache) == "<TlsSessionCache hosts=2>"
    assert cache.default_context() is cache.default_context()


@pytest.mark.parametrize("max_hosts", [0, -3, 2.5, True])
def test_a_session_cache_keeping_no_host_is_refused(max_hosts: object) -> None:
    # max_hosts=0 used to keep one host, silently; TransportOptions(tls_sessions=None) keeps none.
    wanted = f"TlsSessionCache.max_hosts must be an int >= 1, not {max_hosts!r}"
    with pytest.raises(ConfigError, match=wanted):
        TlsSessionCache(max_hosts=max_hosts)  # type: ignore[arg-type]
