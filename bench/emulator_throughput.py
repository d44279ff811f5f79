"""How many messages/s the emulator serves (it is the other side of every benchmark).

The server runs in its own process (``python -m livemesh serve``, or ``--server hypercorn``: a
minimal hypercorn-trio ASGI app that only decodes client frames, as a framework baseline). The
client process opens ``--connections`` sessions; each streams ``--messages`` realtime audio
chunks (100 ms of 16 kHz PCM, about 4.3 KB of JSON) and then asks ``stats`` (emulator) to prove
all were consumed; in ``--kind text`` each connection asks for replies of 100 chunks and counts
what comes back. Reported: wall-clock messages/s and messages per server CPU-second (the
server's capacity, whatever the client's speed).

    python bench/emulator_throughput.py --connections 50 --messages 400 --kind audio
    python bench/emulator_throughput.py --kind text
    python bench/emulator_throughput.py --server hypercorn
    python bench/emulator_throughput.py --kind live --connections 200 --seconds 20

``--kind live`` is ``bench/pool_scale.py``'s live workload with a thin client: every connection
streams 100 ms chunks of 16 kHz audio on a real-time clock (1 s of tone, 1 s of silence, from a
random phase), so each TCP read carries about one message, the VAD ends a turn every 2 s and a
spoken answer (AUDIO, output transcription, resumption handles) streams back. The workload is
fixed (chunks and turns do not depend on timing), so the server's CPU per session-second and
per message (in + out) compare runs on a noisy machine better than pool_scale's lag figure.
A/B two emulator builds by running from each tree (``python -m livemesh serve`` is imported
from the current directory): ``cd /tmp/old && python /path/to/bench/emulator_throughput.py ...``.
``--live-model gemini-3.8-live`` runs the live workload on the current model (answers carry audio
and transcription in one message, and ``interactionStatus``); the default model is one every
emulator build serves, so such A/B runs compare like with like.

Read ``messages_per_server_cpu_s`` (audio, text) or ``server_cpu_us_per_message`` (live): the
server's CPU, whatever the client's speed; wall-clock figures are bound by the client process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from typing import Any

import attrs
import trio
from trio_websocket import open_websocket_url

from livemesh import wire

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=bench"
SETUP = wire.ClientMessage(
    setup=wire.Setup(
        model="models/gemini-live-2.5-flash-preview",
        generation_config=wire.GenerationConfig(response_modalities=["TEXT"]),
    )
)
AUDIO = wire.encode_client(
    wire.ClientMessage(
        realtime_input=wire.RealtimeInput(
            audio=wire.Blob(data=b"\x01\x00" * 1600, mime_type="audio/pcm;rate=16000")
        )
    )
).decode()


LIVE_MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"
LIVE_SETUP = wire.ClientMessage(
    setup=wire.Setup(
        model=f"models/{LIVE_MODEL}",
        generation_config=wire.GenerationConfig(response_modalities=["AUDIO"]),
        output_audio_transcription=wire.AudioTranscriptionConfig(),
        session_resumption=wire.SessionResumptionConfig(),
    )
)


def _audio_chunk(amplitude: int) -> str:
    """One 100 ms realtimeInput message of a 440 Hz tone at 16 kHz (amplitude 0: silence)."""
    pcm = b"".join(
        int(amplitude * math.sin(2 * math.pi * 440 * i / 16_000)).to_bytes(2, "little", signed=True)
        for i in range(1600)
    )
    blob = wire.Blob(data=pcm, mime_type="audio/pcm;rate=16000")
    return wire.encode_client(wire.ClientMessage(realtime_input=wire.RealtimeInput(audio=blob))).decode()


def turn(text: str) -> str:
    content = wire.Content(parts=[wire.Part(text=text)], role="user")
    return wire.encode_client(
        wire.ClientMessage(client_content=wire.ClientContent(turns=[content], turn_complete=True))
    ).decode()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_session(url: str, kind: str, messages: int, counts: list[int], check: bool) -> None:
    async with open_websocket_url(url + PATH, message_queue_size=4096) as ws:
        await ws.send_message(wire.encode_client(SETUP).decode())
        await ws.get_message()
        if kind == "audio":
            for _ in range(messages):
                await ws.send_message(AUDIO)
            counts[0] += messages
            if check:
                await ws.send_message(turn("stats"))
                text = ""
                while True:
                    message = wire.decode_server(await ws.get_message())
                    content = message.server_content
                    if content and content.model_turn:
                        text += "".join(p.text or "" for p in content.model_turn.parts or [])
                    if content and content.turn_complete:
                        break
                assert json.loads(text)["audio_chunks"] == messages, text
        else:
            received = 0
            for n in range(max(1, messages // 100)):
                await ws.send_message(turn(f"turn {n} " + "x" * 200))  # 100 chunks of reply
                counts[0] += 1
                while True:
                    message = wire.decode_server(await ws.get_message())
                    received += 1
                    if message.server_content and message.server_content.turn_complete:
                        break
            counts[0] += received


@attrs.define
class _Live:
    """The live callers' shared counters and barriers (all connected; all done streaming)."""

    connections: int
    connected: int = 0
    done: int = 0
    messages_in: int = 0
    messages_out: int = 0
    all_connected: trio.Event = attrs.Factory(trio.Event)
    go: trio.Event = attrs.Factory(trio.Event)
    all_done: trio.Event = attrs.Factory(trio.Event)
    stop: trio.Event = attrs.Factory(trio.Event)


async def live_session(
    url: str, seconds: float, phase: int, offset: float, live: _Live, setup: wire.ClientMessage
) -> None:
    """One real-time audio caller (see the module docstring); counts messages both ways."""
    pattern = [_LOUD] * 10 + [_QUIET] * 10
    async with open_websocket_url(url + PATH, message_queue_size=4096) as ws:
        await ws.send_message(wire.encode_client(setup).decode())
        await ws.get_message()
        live.connected += 1
        if live.connected == live.connections:
            live.all_connected.set()
        await live.go.wait()

        async def receive() -> None:
            while True:
                await ws.get_message()
                live.messages_out += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            start = trio.current_time() + offset
            chunks = round(seconds / 0.1)
            for k in range(chunks):
                await trio.sleep_until(start + k * 0.1)
                await ws.send_message(pattern[(k + phase) % len(pattern)])
                live.messages_in += 1
            await trio.sleep(1.0)  # the last answer streams back (timed: a fixed workload)
            live.done += 1
            if live.done == live.connections:
                live.all_done.set()
            await live.stop.wait()  # closing is not measured
            nursery.cancel_scope.cancel()


async def live_client(url: str, args: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    live = _Live(args.connections)
    rng = random.Random(args.seed)
    assert LIVE_SETUP.setup is not None
    setup = wire.ClientMessage(setup=attrs.evolve(LIVE_SETUP.setup, model=f"models/{args.live_model}"))
    async with trio.open_nursery() as nursery:
        for _ in range(args.connections):
            phase, offset = rng.randrange(20), rng.random() * 0.1
            nursery.start_soon(live_session, url, args.seconds, phase, offset, live, setup)
        await live.all_connected.wait()
        cpu0 = cpu_seconds(server_pid)
        start = time.perf_counter()
        live.go.set()
        await live.all_done.wait()
        elapsed = time.perf_counter() - start
        server_cpu = cpu_seconds(server_pid) - cpu0
        messages = live.messages_in + live.messages_out
        live.stop.set()
    session_seconds = args.connections * args.seconds
    return {
        "server": args.server,
        "kind": "live",
        "connections": args.connections,
        "seconds": round(elapsed, 3),
        "messages_in": live.messages_in,
        "messages_out": live.messages_out,
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_ms_per_session_s": round(1000 * server_cpu / session_seconds, 3),
        "server_cpu_us_per_message": round(1e6 * server_cpu / messages, 1) if messages else None,
    }


_LOUD = _audio_chunk(6000)
_QUIET = _audio_chunk(0)


async def client(url: str, args: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    if args.kind == "live":
        return await live_client(url, args, server_pid)
    counts = [0]
    cpu0 = cpu_seconds(server_pid)
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(args.connections):
            nursery.start_soon(one_session, url, args.kind, args.messages, counts, args.server == "emulator")
    elapsed = time.perf_counter() - start
    server_cpu = cpu_seconds(server_pid) - cpu0
    return {
        "server": args.server,
        "kind": args.kind,
        "connections": args.connections,
        "messages": counts[0],
        "seconds": round(elapsed, 3),
        "messages_per_s": round(counts[0] / elapsed),
        "server_cpu_s": round(server_cpu, 3),
        "messages_per_server_cpu_s": round(counts[0] / server_cpu) if server_cpu else None,
    }


# ---------------------------------------------------------------------------- hypercorn baseline


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts the WebSocket, answers the setup, decodes every frame, answers text turns with 100
    frames: the least a Live server must do, on hypercorn's trio worker."""
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    chunk = wire.encode_server(
        wire.ServerMessage(
            server_content=wire.ServerContent(model_turn=wire.Content(parts=[wire.Part(text="x")]))
        )
    )
    done = wire.encode_server(wire.ServerMessage(server_content=wire.ServerContent(turn_complete=True)))
    while True:
        event = await receive()
        if event["type"] != "websocket.receive":
            return
        message = wire.decode_client(event.get("bytes") or event.get("text"))
        if message.setup is not None:
            await send(
                {
                    "type": "websocket.send",
                    "bytes": wire.encode_server(wire.ServerMessage(setup_complete=wire.SetupComplete())),
                }
            )
        elif message.client_content is not None:
            for _ in range(98):
                await send({"type": "websocket.send", "bytes": chunk})
            await send({"type": "websocket.send", "bytes": done})


def serve_hypercorn() -> None:
    try:
        from hypercorn.config import Config
        from hypercorn.trio import serve
    except ImportError:
        raise SystemExit("--server hypercorn needs hypercorn: python -m pip install hypercorn") from None

    async def main() -> None:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.loglevel = "WARNING"
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve, asgi_app, config)
            print("listening on " + binds[0].replace("http://", "ws://"), flush=True)

    trio.run(main)


def run_client_processes(url: str, args: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    """``--client-processes`` children against one server: the server's throughput when one client
    process is not enough to saturate it."""
    child = [sys.executable, __file__, "--client-of", url, "--kind", args.kind, "--server", args.server]
    child += ["--connections", str(args.connections), "--messages", str(args.messages)]
    cpu0 = cpu_seconds(server_pid)
    start = time.perf_counter()
    procs = [subprocess.Popen(child, stdout=subprocess.PIPE, text=True) for _ in range(args.client_processes)]
    outputs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    elapsed = time.perf_counter() - start
    server_cpu = cpu_seconds(server_pid) - cpu0
    messages = sum(o["messages"] for o in outputs)
    return {
        "server": args.server,
        "kind": args.kind,
        "client_processes": args.client_processes,
        "connections": args.connections * args.client_processes,
        "messages": messages,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(messages / elapsed),
        "server_cpu_s": round(server_cpu, 3),
        "messages_per_server_cpu_s": round(messages / server_cpu) if server_cpu else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--messages", type=int, default=400, help="per connection")
    parser.add_argument("--kind", choices=["audio", "text", "live"], default="audio")
    parser.add_argument("--seconds", type=float, default=20.0, help="streaming time (--kind live)")
    parser.add_argument("--seed", type=int, default=0, help="phases of the callers (--kind live)")
    parser.add_argument("--live-model", default=LIVE_MODEL, help="the model of --kind live")
    parser.add_argument("--server", choices=["emulator", "hypercorn"], default="emulator")
    parser.add_argument(
        "--client-processes", type=int, default=1, help="client processes, each with --connections"
    )
    parser.add_argument("--serve-hypercorn", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client-of", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hypercorn:
        serve_hypercorn()
        return 0
    if args.client_of:  # a child client process: counts only (the parent measures the server)
        print(json.dumps(trio.run(client, args.client_of, args, os.getpid())), flush=True)
        return 0
    if args.server == "emulator":
        command = [sys.executable, "-m", "livemesh", "serve", "--port", "0"]
        if args.kind == "live":  # as bench/pool_scale.py serves it
            command += ["--max-sessions", str(args.connections + 100), "--resumption-update-interval", "5"]
        else:
            command += ["--chunks-per-reply", "100"]
    else:
        command = [sys.executable, __file__, "--serve-hypercorn"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline().strip()
            url = line.removeprefix("listening on ")
            if args.client_processes == 1:
                result = trio.run(client, url, args, server.pid)
            else:
                result = run_client_processes(url, args, server.pid)
            print(json.dumps(result))
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
