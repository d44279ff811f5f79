"""Per-message codec cost, livemesh vs google-genai vs bare orjson + base64, in one run.

    python bench/codec.py [--number 20000] [--repeat 7]

(a) decode a 100 ms 24 kHz audio server message (4,800 bytes of PCM in ``inlineData``);
(b) encode a 100 ms 16 kHz ``realtimeInput`` audio message (3,200 bytes of PCM);
(c) decode a small text chunk (``modelTurn`` with one text part);
(d) decode (c) with three members livemesh does not model, at three depths (kept in ``extra``:
    the cost of never throwing a field away);
(e) decode a current model's message carrying audio, its output transcription and
    ``turnComplete`` + ``interactionStatus`` together;
(f) decode ``turnComplete`` with ``usageMetadata`` (the last message of every turn).

(c) to (f) are livemesh only, from raw JSON, so the same script measures an older checkout too.

    python bench/codec.py --pair /path/to/old/checkout .

A/B of two checkouts (each with its ``.venv``) in one sitting: livemesh's cases (a) to (f) in
both trees' interpreters, pinned to one CPU, measured alternately; it prints the median of the
per-round ratios B/A, which another process's load disturbs far less than two separate runs.

google-genai's paths are its public ``AsyncSession`` (``google.genai.live``) over a stand-in
socket that hands it the frame and keeps what it sends: receive is one step of
``session.receive()``, send is ``session.send_realtime_input(audio=...)``, each run to completion
without an event loop (nothing in them waits). That is the SDK's whole per-message path, as a
user pays it, through public names only. Every contender's output is checked against the others
before timing. Figures are medians of ``--repeat`` runs of
``--number`` calls (per call, in microseconds); read the ratios, not the absolute numbers: this
machine is shared and noisy (``--cpu`` times CPU time, which another process's load disturbs less).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
import timeit
import types as pytypes
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
import pybase64

from livemesh import wire

_TIMER = time.perf_counter

T = TypeVar("T")


def _now(awaitable: Awaitable[T]) -> T:
    """Run a coroutine that never waits to its end, without an event loop."""
    coroutine = awaitable.__await__()
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise RuntimeError("the SDK waited for something")


class _Socket:
    """What ``AsyncSession`` uses of its websocket: ``recv`` (the frame, every time) and ``send``."""

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self.sent = ""

    async def recv(self, decode: bool = True) -> bytes:
        return self.frame

    async def send(self, message: str) -> None:
        self.sent = message


def _median_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat, timer=_TIMER)) / number * 1e6


def livemesh_frames(out_pcm: bytes) -> dict[str, bytes]:
    """The server frames of cases (a) and (c) to (f), written as raw JSON (any livemesh reads them)."""
    audio = {
        "inlineData": {"mimeType": "audio/pcm;rate=24000", "data": pybase64.b64encode_as_string(out_pcm)}
    }
    text = "Hello there, how can I help?"
    return {
        "a": orjson.dumps({"serverContent": {"modelTurn": {"role": "model", "parts": [audio]}}}),
        "c": orjson.dumps({"serverContent": {"modelTurn": {"role": "model", "parts": [{"text": text}]}}}),
        "d": orjson.dumps(
            {
                "serverContent": {
                    "modelTurn": {"role": "model", "parts": [{"text": text, "zPart": 1}]},
                    "zContent": {"a": [1, 2]},
                },
                "zTop": "x",
            }
        ),
        "e": orjson.dumps(
            {
                "serverContent": {
                    "modelTurn": {"role": "model", "parts": [audio]},
                    "outputTranscription": {"text": "Hello there"},
                    "turnComplete": True,
                    "interactionStatus": "IDLE",
                }
            }
        ),
        "f": orjson.dumps(
            {
                "serverContent": {"turnComplete": True},
                "usageMetadata": {"promptTokenCount": 10, "responseTokenCount": 5, "totalTokenCount": 15},
            }
        ),
    }


PAIR_CASES = ("a", "b", "c", "d", "e", "f")


def worker() -> None:
    """``--worker``: time livemesh's cases on request, one line ``CASE CALLS`` in, microseconds
    per call (this process's CPU time) out; run by ``--pair`` in each tree's interpreter."""
    frames = livemesh_frames(os.urandom(4_800))
    blob = wire.Blob(os.urandom(3_200), "audio/pcm;rate=16000")
    calls: dict[str, Callable[[], object]] = {
        k: (lambda f=f: wire.decode_server(f)) for k, f in frames.items()
    }
    calls["b"] = lambda: wire.encode_client(wire.ClientMessage(realtime_input=wire.RealtimeInput(audio=blob)))
    for line in sys.stdin:
        case, count = line.split()
        fn = calls[case]
        for _ in range(200):
            fn()
        start = time.process_time()
        for _ in range(int(count)):
            fn()
        print((time.process_time() - start) / int(count) * 1e6, flush=True)


def pair(tree_a: str, tree_b: str, rounds: int, cpu: str) -> None:
    """``--pair A B``: livemesh's cases in tree A's and tree B's interpreters (``TREE/.venv``), both
    pinned to one CPU, measured alternately ``rounds`` times; the median of the per-round ratios
    B/A cancels what another process's load does to both."""
    workers = {
        tree: subprocess.Popen(
            ["taskset", "-c", cpu, f"{tree}/.venv/bin/python", __file__, "--worker"],
            cwd=tree,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for tree in (tree_a, tree_b)
    }

    def measure(tree: str, case: str) -> float:
        proc = workers[tree]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"{case} 3000\n")
        proc.stdin.flush()
        return float(proc.stdout.readline())

    print(f"B = {tree_b}, A = {tree_a}, {rounds} alternating rounds on CPU {cpu}")
    for case in PAIR_CASES:
        a_us, b_us, ratios = [], [], []
        for index in range(rounds):
            order = (tree_a, tree_b) if index % 2 == 0 else (tree_b, tree_a)
            got = {tree: measure(tree, case) for tree in order}
            a_us.append(got[tree_a])
            b_us.append(got[tree_b])
            ratios.append(got[tree_b] / got[tree_a])
        low, _, high = statistics.quantiles(ratios, n=4)
        print(
            f"  ({case}) A {statistics.median(a_us):6.2f} us  B {statistics.median(b_us):6.2f} us  "
            f"B/A {statistics.median(ratios):.3f} (quartiles {low:.3f}-{high:.3f})"
        )
    for proc in workers.values():
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", metavar="PATH", help="also write the medians (us) as JSON here")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time with this process's CPU time instead of the wall clock (steadier on a shared machine)",
    )
    parser.add_argument("--pair", nargs=2, metavar=("TREE_A", "TREE_B"), help="A/B two checkouts (see below)")
    parser.add_argument("--rounds", type=int, default=30, help="alternating rounds of --pair")
    parser.add_argument("--pin", default="0", metavar="CPU", help="the CPU --pair pins both workers to")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    if args.pair:
        pair(*args.pair, rounds=args.rounds, cpu=args.pin)
        return
    global _TIMER
    if args.cpu:
        _TIMER = time.process_time

    from google.genai import types
    from google.genai.live import AsyncSession

    out_pcm = os.urandom(4_800)  # 100 ms of 24 kHz 16-bit mono
    in_pcm = os.urandom(3_200)  # 100 ms of 16 kHz 16-bit mono
    server_frame = wire.encode_server(
        wire.ServerMessage(
            server_content=wire.ServerContent(
                model_turn=wire.Content(
                    role="model", parts=[wire.Part(inline_data=wire.Blob(out_pcm, "audio/pcm;rate=24000"))]
                )
            )
        )
    )
    in_blob = wire.Blob(in_pcm, "audio/pcm;rate=16000")

    # ---- (a) decode
    def livemesh_decode() -> bytes:
        msg = wire.decode_server(server_frame)
        assert msg.server_content and msg.server_content.model_turn and msg.server_content.model_turn.parts
        blob = msg.server_content.model_turn.parts[0].inline_data
        assert blob is not None
        return blob.data

    # The Gemini API flavour (``vertexai=False``) is all the session asks of its API client here.
    socket = _Socket(server_frame)
    session = AsyncSession(api_client=pytypes.SimpleNamespace(vertexai=False), websocket=socket)  # type: ignore[arg-type]
    received = session.receive()  # an audio message never completes a turn: it yields on

    def genai_decode() -> bytes:
        msg = _now(received.__anext__())
        data = msg.server_content.model_turn.parts[0].inline_data.data  # type: ignore[union-attr,index]
        assert data is not None
        return data

    def bare_decode() -> bytes:
        obj = orjson.loads(server_frame)
        return pybase64.b64decode(obj["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"])

    def bare_stdlib_decode() -> bytes:
        obj = orjson.loads(server_frame)
        return base64.b64decode(obj["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"])

    decoders = {
        "livemesh": livemesh_decode,
        "google-genai": genai_decode,
        "orjson+pybase64": bare_decode,
        "orjson+stdlib b64": bare_stdlib_decode,
    }
    for name, fn in decoders.items():
        assert fn() == out_pcm, name

    # ---- (b) encode
    def livemesh_encode() -> bytes:
        return wire.encode_client(wire.ClientMessage(realtime_input=wire.RealtimeInput(audio=in_blob)))

    def genai_encode() -> str:
        _now(session.send_realtime_input(audio=types.Blob(data=in_pcm, mime_type="audio/pcm;rate=16000")))
        return socket.sent

    def bare_encode() -> bytes:
        return orjson.dumps(
            {
                "realtimeInput": {
                    "audio": {"data": pybase64.b64encode_as_string(in_pcm), "mimeType": in_blob.mime_type}
                }
            }
        )

    encoders: dict[str, Callable[[], Any]] = {
        "livemesh": livemesh_encode,
        "google-genai": genai_encode,
        "orjson+pybase64": bare_encode,
    }
    for name, fn in encoders.items():
        decoded = wire.decode_client(fn())
        assert decoded.realtime_input and decoded.realtime_input.audio, name
        assert decoded.realtime_input.audio.data == in_pcm, name

    # ---- (c) to (f): livemesh only, frames written as raw JSON
    frames = livemesh_frames(out_pcm)
    extra_cases = {
        "decode text (c)": frames["c"],
        "decode + unknown fields (d)": frames["d"],
        "decode audio+transcript (e)": frames["e"],
        "decode turnComplete (f)": frames["f"],
    }
    for frame in extra_cases.values():
        wire.decode_server(frame)

    results: dict[str, dict[str, float]] = {"decode (a)": {}, "encode (b)": {}}
    for name, fn in decoders.items():
        results["decode (a)"][name] = _median_us(fn, args.number, args.repeat)
    for name, fn in encoders.items():
        results["encode (b)"][name] = _median_us(fn, args.number, args.repeat)

    for case, frame in extra_cases.items():
        results[case] = {
            "livemesh": _median_us(lambda f=frame: wire.decode_server(f), args.number, args.repeat)
        }

    print(f"median per message, us ({args.repeat} x {args.number} calls)")
    for case, row in results.items():
        ours = row["livemesh"]
        print(f"\n{case}")
        for name, us in row.items():
            print(f"  {name:<20} {us:8.2f} us   {us / ours:6.2f}x livemesh's time")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    a, b = results["decode (a)"], results["encode (b)"]
    print("\nratios (targets: >= 8x google-genai, <= 2x bare orjson + pybase64)")
    print(
        f"  decode (a): {a['google-genai'] / a['livemesh']:.1f}x faster than google-genai, "
        f"{a['livemesh'] / a['orjson+pybase64']:.2f}x bare"
    )
    print(
        f"  encode (b): {b['google-genai'] / b['livemesh']:.1f}x faster than google-genai, "
        f"{b['livemesh'] / b['orjson+pybase64']:.2f}x bare"
    )


if __name__ == "__main__":
    main()
