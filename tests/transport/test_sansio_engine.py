"""The default engine's own I/O paths: direct socket reads and writes, the write lock, cancellation
mid-frame, and the upgrade handing bytes after the 101 to the open connection. Driven over a
socket pair with a hand-made peer, so every byte is checked."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing
from websockets.frames import Opcode

from livemesh.errors import AuthError, ServiceClosedError
from livemesh.transport import CloseInfo, ConnectionLostError, TransportOptions, open_connection
from livemesh.transport.sansio_engine import SansioConnection
from tests.transport.helpers import PairPeer, bare_sansio, raw_server, read_request, server_frame, socket_pair


def make_pair(*, small_buffers: bool, read_size: int = 64) -> tuple[SansioConnection, PairPeer]:
    a, b = socket_pair()
    if small_buffers:  # large writes must wait for the peer
        for sock in (a, b):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return bare_sansio(a, options=TransportOptions(receive_buffer_size=read_size)), PairPeer(b)


async def finish(conn: SansioConnection, peer: PairPeer) -> None:
    await trio.aclose_forcefully(peer.stream)  # first: the client's close then ends at its EOF
    await conn.aclose()


async def test_a_large_write_waits_for_the_peer_and_arrives_whole() -> None:
    conn, peer = make_pair(small_buffers=True)
    big = b'"' + b"x" * 500_000 + b'"'  # far beyond the socket buffers: written in many parts
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, big)
            await trio.testing.wait_all_tasks_blocked()  # written in part, waits for the peer
            nursery.start_soon(conn.send, b'"after"')  # waits for the lock, leaves second
            first, second = await peer.read_frames(2)
    assert (first.data, second.data) == (big, b'"after"')
    assert conn.close_info is None
    await finish(conn, peer)


async def test_a_write_cancelled_mid_frame_aborts_the_connection() -> None:
    """The peer never sees bytes after a partial frame: the socket is closed at once."""
    conn, peer = make_pair(small_buffers=True)
    with trio.fail_after(10):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.send, b'"' + b"x" * 500_000 + b'"')
                await trio.testing.wait_all_tasks_blocked()  # parked on a full send buffer
                scope.cancel()
        assert conn.close_info == CloseInfo(1006, "")
        with pytest.raises(ConnectionLostError):
            await conn.send(b"{}")
        received = b""  # the peer sees the partial frame, then EOF: nothing follows it
        while chunk := await peer.stream.receive_some(1 << 16):
            received += chunk
        assert 0 < len(received) < 500_000
    await finish(conn, peer)


async def test_a_sender_cancelled_while_waiting_for_the_lock_queues_nothing() -> None:
    conn, peer = make_pair(small_buffers=True)
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
    await finish(conn, peer)


async def test_reads_that_never_wait_still_let_other_tasks_run() -> None:
    conn, peer = make_pair(small_buffers=False)
    count = 1000  # ~6 KB of small frames already in the socket: ~100 reads of 64 bytes, none waits
    await peer.stream.send_all(b"".join(server_frame(1, b"m%d" % i) for i in range(count)))
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
    await finish(conn, peer)


async def test_many_frames_from_one_read_are_handed_out_in_order() -> None:
    conn, peer = make_pair(small_buffers=False, read_size=1 << 16)
    count = 500  # all parsed from one read; the handed-out head of the list is compacted on the way
    await peer.stream.send_all(b"".join(server_frame(1, b"f%d" % i) for i in range(count)))
    with trio.fail_after(10):
        assert [await conn.receive() for _ in range(count)] == [f"f{i}" for i in range(count)]
        assert conn.received_index == count - 1
    await finish(conn, peer)


async def test_invalid_utf8_in_a_text_frame_fails_the_connection_with_1007() -> None:
    conn, peer = make_pair(small_buffers=False)
    with trio.fail_after(5):
        await peer.stream.send_all(b"\x81\x02\xff\xfe")  # unmasked text frame, 2 bytes of invalid UTF-8
        await peer.stream.aclose()
        with pytest.raises(ServiceClosedError) as bad:
            await conn.receive()
        assert bad.value.code == 1007
    await conn.aclose()


async def test_a_whole_write_that_waits_finishes_though_its_caller_is_cancelled() -> None:
    """A ping's write (``whole``) that must wait for the peer is shielded, so a cancelled caller
    does not cut the frame."""
    conn, peer = make_pair(small_buffers=True)
    io = conn._io
    stuffed = 0
    try:
        while True:
            stuffed += io.sock.send(b"s" * 1024)  # fill the socket: the next write has to wait
    except BlockingIOError:
        pass
    payload = b"p" * 10_000
    caller = trio.CancelScope()

    async def write() -> None:
        with caller:
            await io.send_locked(payload, whole=True)

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
    await finish(conn, peer)


async def test_a_whole_write_stuck_past_the_disconnect_timeout_is_broken(
    autojump_clock: trio.testing.MockClock,
) -> None:
    conn, peer = make_pair(small_buffers=True)
    io = conn._io
    try:
        while True:
            io.sock.send(b"s" * 1024)
    except BlockingIOError:
        pass
    start = trio.current_time()
    with trio.fail_after(500), pytest.raises(trio.BrokenResourceError):
        await io.send_locked(b"p" * 10_000, whole=True)
    assert trio.current_time() - start == pytest.approx(TransportOptions().disconnect_timeout)
    await finish(conn, peer)


async def test_a_ping_finishes_its_write_though_its_caller_is_cancelled() -> None:
    conn, peer = make_pair(small_buffers=True)
    io = conn._io
    stuffed = 0
    try:
        while True:
            stuffed += io.sock.send(b"s" * 1024)  # the ping's write has to wait
    except BlockingIOError:
        pass
    caller = trio.CancelScope()

    async def ping() -> None:
        with caller:
            await conn.ping()

    ping_size = 2 + 4 + len(b"livemesh")  # header, mask, payload
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ping)
            await trio.testing.wait_all_tasks_blocked()  # its write waits for the peer
            caller.cancel()
            received = b""
            while len(received) < stuffed + ping_size:
                received += await peer.stream.receive_some(1 << 16)
        assert len(received) == stuffed + ping_size
        assert received[stuffed] == 0x80 | Opcode.PING  # the whole ping, after the stuffing
        assert caller.cancelled_caught  # cancelled after the write, while waiting for the pong
        assert conn.close_info is None  # not cut, so not aborted
    await finish(conn, peer)


async def test_frames_in_the_same_read_as_the_101_are_kept() -> None:
    async def server(stream: trio.abc.Stream) -> None:
        protocol, request = await read_request(stream)
        protocol.send_response(protocol.accept(request))
        protocol.send_text(b"first")
        protocol.send_binary(b"second")
        protocol.send_text(b"third")
        data = b"".join(protocol.data_to_send())
        cut = len(data) - 4  # the third frame cut across two writes
        await stream.send_all(data[:cut])  # the 101, two frames and part of the third at once
        await trio.testing.wait_all_tasks_blocked()  # the client waits for the rest
        await stream.send_all(data[cut:])
        while data := await stream.receive_some(4096):  # until the close handshake is done
            protocol.receive_data(data)
            for chunk in protocol.data_to_send():
                if not chunk:
                    return  # websockets' signal to close the TCP connection
                await stream.send_all(chunk)

    with trio.fail_after(10):
        async with raw_server(server) as port:
            async with open_connection(f"ws://127.0.0.1:{port}/x") as conn:
                assert await conn.receive() == "first"
                assert await conn.receive() == b"second"
                assert await conn.receive() == "third"


async def test_a_refusal_with_a_body_in_pieces_is_mapped() -> None:
    body = b'{"error": "forbidden"}' * 50
    response = (
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )

    async def server(stream: trio.abc.Stream) -> None:
        await read_request(stream)
        for start in range(0, len(response), 100):
            await stream.send_all(response[start : start + 100])
            await trio.testing.wait_all_tasks_blocked()
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with raw_server(server) as port:
            with pytest.raises(AuthError) as refused:
                async with open_connection(f"ws://127.0.0.1:{port}/x?key=SECRET"):
                    pass  # pragma: no cover
    assert refused.value.code == 403
    assert "SECRET" not in str(refused.value)


async def test_a_peer_closing_during_the_upgrade_is_a_connection_loss() -> None:
    async def server(stream: trio.abc.Stream) -> None:
        await read_request(stream)
        await stream.send_all(b"HTTP/1.1 101 Switching")  # and gone

    with trio.fail_after(10):
        async with raw_server(server) as port:
            with pytest.raises(ConnectionLostError, match="closed during the handshake"):
                async with open_connection(f"ws://127.0.0.1:{port}/x"):
                    pass  # pragma: no cover


async def test_pongs_are_answered_with_the_next_write_when_a_writer_holds_the_lock() -> None:
    """A server ping read while a write is in flight is answered right after that write (the
    reader does not wait for the lock, the writer sends the pong before releasing it)."""
    conn, peer = make_pair(small_buffers=True, read_size=1 << 16)
    big = b'"' + b"z" * 300_000 + b'"'
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.send, big)
            await trio.testing.wait_all_tasks_blocked()  # part written, holds the lock
            await peer.stream.send_all(server_frame(0x9, b"server-ping") + server_frame(1, b"hi"))
            assert await conn.receive() == "hi"
            first, pong = await peer.read_frames(2)
        assert (first.data, pong.opcode, bytes(pong.data)) == (big, Opcode.PONG, b"server-ping")
    await finish(conn, peer)
