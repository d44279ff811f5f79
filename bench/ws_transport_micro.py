"""CPU per message of the client's WebSocket engine alone, in one process (no emulator, no session).

    python bench/ws_transport_micro.py [--messages 20000] [--size 3200] [--tls] [--rounds 5]

One :class:`livemesh.transport.sansio_engine.SansioConnection` on one end of a socket pair (or TLS
over it with ``--tls``: livemesh's own TLS layer, an ``ssl.SSLObject`` it drives); the other end is
a bare peer that sends pre-built server frames and discards what it reads (a ``trio.SSLStream``
under TLS, so its share of the process's CPU is the same whatever the client). Three patterns,
each ``--messages`` long:

* ``send``: the client sends text frames of ``--size`` bytes (an audio chunk's JSON), one awaited
  ``send`` each, as the session's writer does;
* ``ping-pong``: the peer sends one frame, the client receives it and sends one back: every
  message waits for the other side, as in a live session's request/answer traffic;
* ``receive``: the peer streams frames of ``--size`` bytes (encrypted before the clock starts by a
  server ``ssl.SSLObject``, put on the plain socket as they are), the client receives them: the
  client's read path almost alone.

Prints ``process_time`` microseconds per message (median of ``--rounds``), and scheduler steps per
message (a trio Instrument): the figure that does not move with the machine's other load. Run it
with ``PYTHONPATH`` pointing at two checkouts to compare engine versions.
"""

from __future__ import annotations

import argparse
import socket
import ssl
import statistics
import time
from typing import Any

import trio
import trustme
from websockets.protocol import Protocol, Side, State

from livemesh.transport import TransportOptions
from livemesh.transport.sansio_engine import SansioConnection
from livemesh.transport.sockets import SocketIO
from livemesh.transport.tls import TlsState


class _Steps(trio.abc.Instrument):
    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1


def _frame(payload: bytes) -> bytes:
    """One unmasked server text frame."""
    n = len(payload)
    if n < 126:
        return bytes([0x81, n]) + payload
    if n < 65536:
        return bytes([0x81, 126]) + n.to_bytes(2, "big") + payload
    return bytes([0x81, 127]) + n.to_bytes(8, "big") + payload


def _contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


def _client(sock: socket.socket, client_ctx: ssl.SSLContext | None) -> SansioConnection:
    tls = None if client_ctx is None else TlsState(client_ctx, server_hostname="localhost")
    io = SocketIO(sock, tls=tls)
    return SansioConnection(
        io, Protocol(Side.CLIENT, state=State.OPEN, max_size=None), options=TransportOptions()
    )


async def _pair(tls: bool) -> tuple[SansioConnection, trio.abc.Stream]:
    """The client on one end; the peer, a trio stream (``SSLStream`` under TLS), on the other."""
    a, b = socket.socketpair()
    server: trio.abc.Stream = trio.SocketStream(trio.socket.from_stdlib_socket(b))
    if not tls:
        return _client(a, None), server
    server_ctx, client_ctx = _contexts()
    conn = _client(a, client_ctx)
    server = trio.SSLStream(server, server_ctx, server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn._io.handshake)
        nursery.start_soon(server.do_handshake)  # type: ignore[attr-defined]
    return conn, server


async def _drain(server: trio.abc.Stream, until: int) -> None:
    got = 0
    while got < until:
        data = await server.receive_some(1 << 16)
        if not data:
            return
        got += len(data)


async def run_send(tls: bool, messages: int, size: int, steps: _Steps) -> tuple[float, float]:
    conn, server = await _pair(tls)
    payload = b'"' + b"a" * (size - 2) + b'"'
    wire_bytes = messages * (size + 8)  # masked client frames: 8 bytes of header and mask here
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_drain, server, wire_bytes)
        cpu, s0 = time.process_time(), steps.steps
        for _ in range(messages):
            await conn.send(payload)
        cpu, n = time.process_time() - cpu, steps.steps - s0
    await trio.aclose_forcefully(server)
    await conn.aclose()
    return cpu, n


async def run_ping_pong(tls: bool, messages: int, size: int, steps: _Steps) -> tuple[float, float]:
    conn, server = await _pair(tls)
    frame = _frame(b'"' + b"s" * (size - 2) + b'"')
    reply = b'"' + b"c" * (size - 2) + b'"'
    turns = trio.Semaphore(0)

    async def peer() -> None:
        for _ in range(messages):
            await server.send_all(frame)
            await turns.acquire()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_drain, server, messages * (size + 8))
        cpu, s0 = time.process_time(), steps.steps
        nursery.start_soon(peer)
        for _ in range(messages):
            await conn.receive()
            await conn.send(reply)
            turns.release()
        cpu, n = time.process_time() - cpu, steps.steps - s0
    await trio.aclose_forcefully(server)
    await conn.aclose()
    return cpu, n


async def run_receive(tls: bool, messages: int, size: int, steps: _Steps) -> tuple[float, float]:
    frames = _frame(b'"' + b"r" * (size - 2) + b'"') * messages
    a, b = socket.socketpair()
    raw = trio.SocketStream(trio.socket.from_stdlib_socket(b))
    if tls:
        # Encrypted up front by a server SSLObject (livemesh's TLS layer on the peer's socket), so
        # the timed part holds the client's decryption but not the server's encryption.
        server_ctx, client_ctx = _contexts()
        conn = _client(a, client_ctx)
        peer = SocketIO(b, tls=TlsState(server_ctx, server_side=True))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn._io.handshake)
            nursery.start_soon(peer.handshake)
        assert peer.tls is not None
        frames = peer.tls.encrypt(frames)
    else:
        conn = _client(a, None)
    async with trio.open_nursery() as nursery:
        cpu, s0 = time.process_time(), steps.steps
        nursery.start_soon(raw.send_all, frames)
        for _ in range(messages):
            await conn.receive()
        cpu, n = time.process_time() - cpu, steps.steps - s0
    await trio.aclose_forcefully(raw)
    await conn.aclose()
    return cpu, n


async def main(args: argparse.Namespace) -> dict[str, Any]:
    steps = _Steps()
    trio.lowlevel.add_instrument(steps)
    out: dict[str, Any] = {}
    patterns = (("send", run_send, 1), ("ping-pong", run_ping_pong, 2), ("receive", run_receive, 1))
    for name, fn, per in patterns:
        cpus: list[float] = []
        step_counts: list[float] = []
        for _ in range(args.rounds):
            cpu, n = await fn(args.tls, args.messages, args.size, steps)
            cpus.append(1e6 * cpu / (args.messages * per))
            step_counts.append(n / (args.messages * per))
        out[name] = {
            "us_per_message": statistics.median(cpus),
            "steps_per_message": statistics.median(step_counts),
        }
        rounds = " ".join(f"{c:.1f}" for c in cpus)
        print(
            f"{name:10s} {'tls' if args.tls else 'tcp'}: {statistics.median(cpus):6.1f} us/message "
            f"(rounds {rounds}), {statistics.median(step_counts):.2f} steps/message"
        )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=3_200)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    trio.run(main, parser.parse_args())
