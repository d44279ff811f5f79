"""The physical limit for our frames: raw WebSocket throughput and round trip, per engine.

    python bench/ws_echo.py [--size 4096] [--count 20000] [--repeat 3] [--engines ...]

Server in a separate process (so client and server each have a core, as in the bench), client
here, loopback, ``--size``-byte text messages. Per engine:

* ``one-way``: the client sends ``--count`` messages back to back; the server counts them and
  answers once at the end; messages/s = count / time until that answer;
* ``echo``: the client sends ``--count`` messages from one task and reads the echoes from another
  (pipelined, the shape of a live session); messages/s = count / time to the last echo;
* ``rtt``: one message, wait for its echo, 2,000 times; p50 and p99 in microseconds.

Engines: ``trio-websocket`` with its default 4 KiB receive buffer and with 64 KiB (what
livemesh uses), ``websockets`` (asyncio; what google-genai uses), ``sansio-trio``
(websockets' sans-I/O protocol driven directly on a trio stream, the prototype of a
second engine, see bench/ws_sansio_trio.py), and ``tcp`` (trio, length-prefixed, no WebSocket: the
floor). Figures are medians of ``--repeat`` runs; read the ratios, this machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

ENGINES = ("trio-websocket-4k", "trio-websocket-64k", "sansio-trio", "websockets", "tcp")
DONE = "done"
_HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------- servers


def serve(engine: str, port_file: str) -> None:
    """Server side of ``engine``: echo mode echoes every message; one-way counts until "done"."""
    if engine == "websockets":
        asyncio.run(_serve_websockets(port_file))
    else:
        trio.run(_serve_trio, engine, port_file)


def _write_port(port_file: str, port: int) -> None:
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(port_file + ".tmp", port_file)


async def _serve_websockets(port_file: str) -> None:
    from websockets.asyncio.server import serve as ws_serve

    async def handler(ws: Any) -> None:
        mode = await ws.recv()
        if mode == "echo":
            async for msg in ws:
                await ws.send(msg)
        else:
            count = 0
            async for msg in ws:
                if msg == DONE:
                    await ws.send(str(count))
                    count = 0
                else:
                    count += 1

    async with ws_serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        _write_port(port_file, port)
        await server.serve_forever()


async def _serve_trio(engine: str, port_file: str) -> None:
    if engine == "tcp":
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        _write_port(port_file, listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(_tcp_handler, listeners)
        return
    if engine == "sansio-trio":
        sys.path.insert(0, _HERE)
        from ws_sansio_trio import serve_sansio  # type: ignore[import-not-found]

        await serve_sansio(_generic_handler, port_file)
        return
    import trio_websocket

    buf = 65536 if engine.endswith("64k") else 4096

    async def handler(request: Any) -> None:
        ws = await request.accept()
        await _generic_handler(ws.get_message, ws.send_message)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            lambda task_status=trio.TASK_STATUS_IGNORED: trio_websocket.serve_websocket(
                handler,
                "127.0.0.1",
                0,
                None,
                max_message_size=1 << 24,
                receive_buffer_size=buf,
                task_status=task_status,
            )
        )
        _write_port(port_file, server.port)


async def _generic_handler(
    recv: Callable[[], Awaitable[str | bytes]], send: Callable[[str], Awaitable[None]]
) -> None:
    try:
        mode = await recv()
        if mode == "echo":
            while True:
                await send(str(await recv()))
        count = 0
        while True:
            msg = await recv()
            if msg == DONE:
                await send(str(count))
                count = 0
            else:
                count += 1
    except Exception:
        return


async def _tcp_handler(stream: trio.SocketStream) -> None:
    reader = _TcpFramer(stream)
    try:
        mode = await reader.recv()
        while True:
            msg = await reader.recv()
            if mode == b"echo":
                await reader.send(msg)
            elif msg == DONE.encode():
                await reader.send(b"ok")
    except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
        return


class _TcpFramer:
    """4-byte length prefix framing over a trio stream (the no-WebSocket floor)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(struct.pack("!I", len(data)) + data)

    async def recv(self) -> bytes:
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack_from("!I", self.buf)
                if len(self.buf) >= 4 + n:
                    msg = bytes(self.buf[4 : 4 + n])
                    del self.buf[: 4 + n]
                    return msg
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError
            self.buf += data


# ----------------------------------------------------------------------------- clients


async def _measure_generic(
    send: Callable[[Any], Awaitable[None]],
    recv: Callable[[], Awaitable[Any]],
    spawn_pair: Callable[[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]], Awaitable[None]],
    payload: Any,
    mode: str,
    count: int,
) -> float:
    await send(mode)
    if mode == "one-way":
        start = time.perf_counter()
        for _ in range(count):
            await send(payload)
        await send(DONE if isinstance(payload, str) else DONE.encode())
        await recv()
        return count / (time.perf_counter() - start)

    async def sender() -> None:
        for _ in range(count):
            await send(payload)

    async def receiver() -> None:
        for _ in range(count):
            await recv()

    start = time.perf_counter()
    await spawn_pair(sender, receiver)
    return count / (time.perf_counter() - start)


async def _rtt_generic(
    send: Callable[[Any], Awaitable[None]], recv: Callable[[], Awaitable[Any]], payload: Any, n: int
) -> tuple[float, float]:
    await send("echo" if isinstance(payload, str) else b"echo")
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await send(payload)
        await recv()
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


async def _trio_pair(a: Callable[[], Awaitable[None]], b: Callable[[], Awaitable[None]]) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a)
        nursery.start_soon(b)


async def _asyncio_pair(a: Callable[[], Awaitable[None]], b: Callable[[], Awaitable[None]]) -> None:
    await asyncio.gather(a(), b())


async def _client_trio(engine: str, port: int, what: str, size: int, count: int) -> Any:
    payload = "x" * size
    if engine == "tcp":
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        framer = _TcpFramer(stream)
        data = payload.encode()
        mode = b"echo" if what in ("echo", "rtt") else b"one-way"

        async def send(m: Any) -> None:
            await framer.send(m if isinstance(m, bytes) else m.encode())

        async with stream:
            if what == "rtt":
                return await _rtt_generic(send, framer.recv, data, 2000)
            return await _measure_generic(send, framer.recv, _trio_pair, data, mode.decode(), count)
    if engine == "sansio-trio":
        sys.path.insert(0, _HERE)
        from ws_sansio_trio import open_sansio  # type: ignore[import-not-found]

        async with open_sansio("127.0.0.1", port) as ws:
            if what == "rtt":
                return await _rtt_generic(ws.send_message, ws.get_message, payload, 2000)
            return await _measure_generic(ws.send_message, ws.get_message, _trio_pair, payload, what, count)
    import trio_websocket

    buf = 65536 if engine.endswith("64k") else 4096
    async with trio_websocket.open_websocket(
        "127.0.0.1", port, "/", use_ssl=False, receive_buffer_size=buf, max_message_size=1 << 24
    ) as ws:
        if what == "rtt":
            return await _rtt_generic(ws.send_message, ws.get_message, payload, 2000)
        return await _measure_generic(ws.send_message, ws.get_message, _trio_pair, payload, what, count)


async def _client_websockets(port: int, what: str, size: int, count: int) -> Any:
    from websockets.asyncio.client import connect

    payload = "x" * size
    async with connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None) as ws:
        if what == "rtt":
            return await _rtt_generic(ws.send, ws.recv, payload, 2000)
        return await _measure_generic(ws.send, ws.recv, _asyncio_pair, payload, what, count)


def measure(engine: str, what: str, size: int, count: int) -> Any:
    with _server(engine) as port:
        if engine == "websockets":
            return asyncio.run(_client_websockets(port, what, size, count))
        return trio.run(_client_trio, engine, port, what, size, count)


class _server:
    """The server process of one engine, for one measurement (a fresh process each time)."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.port_file = f"/tmp/ws_echo_{os.getpid()}_{engine}.port"

    def __enter__(self) -> int:
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", self.engine, self.port_file])
        deadline = time.monotonic() + 20
        while not os.path.exists(self.port_file):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{self.engine} server did not start")
            time.sleep(0.02)
        with open(self.port_file) as f:
            return int(f.read())

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()
        if os.path.exists(self.port_file):
            os.remove(self.port_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--serve", nargs=2, metavar=("ENGINE", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    results: dict[str, dict[str, float]] = {}
    print(f"{args.size}-byte messages, {args.count} per run, median of {args.repeat}")
    print(f"{'engine':<20} {'one-way msg/s':>14} {'echo msg/s':>12} {'rtt p50 us':>11} {'rtt p99 us':>11}")
    for engine in args.engines:
        one = statistics.median(measure(engine, "one-way", args.size, args.count) for _ in range(args.repeat))
        echo = statistics.median(measure(engine, "echo", args.size, args.count) for _ in range(args.repeat))
        rtts = [measure(engine, "rtt", args.size, 0) for _ in range(args.repeat)]
        p50 = statistics.median(r[0] for r in rtts)
        p99 = statistics.median(r[1] for r in rtts)
        results[engine] = {"one_way_msgs_per_s": one, "echo_msgs_per_s": echo}
        results[engine].update({"rtt_p50_us": p50, "rtt_p99_us": p99})
        print(f"{engine:<20} {one:>14,.0f} {echo:>12,.0f} {p50:>11,.0f} {p99:>11,.0f}", flush=True)
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump({"size": args.size, "count": args.count, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
