"""What livemesh.aio costs over native trio: per message sent, per message received, per
crossing, and in live audio sessions one process holds.

Both clients run the same workload against the same emulator, in a SECOND process
(``python -m livemesh serve``), alternately in one sitting (trio, asyncio, trio, asyncio, ...):
``trio.run`` with the trio API, then ``asyncio.run`` with ``livemesh.aio`` (livemesh's trio code
as a guest of the asyncio loop). Ratios are asyncio / trio: above 1 means asyncio costs more.

1. **Crossing.** ``await livemesh.aio.run_trio(noop)`` from asyncio against ``await noop()`` in
   trio: one caller in a loop (each call waits for trio to wake: the latency of a crossing), and
   100 concurrent callers (crossings batched into one trio wake-up).
2. **Send.** ``send_realtime_input`` of 100 ms of silent 16 kHz audio (no turns, no replies):
   one session sending back to back, and 50 sessions at once. Client CPU per message (the
   whole process: the encode and socket writes are the same in both, the difference is the API).
3. **Receive.** One user text turn answered in 200 text chunks (``--chunks-per-reply 200``,
   no delay): client CPU per server message received with ``async for``, one session and 20.
4. **Live audio** (``--levels``). ``bench/pool_scale.py``'s ramp, its native trio level as is,
   and the same level written for asyncio (asyncio handlers in ``livemesh.aio.open_pool``, an
   asyncio metronome): N pooled sessions stream real-time audio and receive spoken answers; a
   level passes with p99 send lag under 100 ms, nothing lost, every answer received.
5. **Idle footprint** (``--idle N``). RSS per idle pooled session, each API in a fresh process.

Usage::

    python bench/aio_overhead.py                     # 1-3, three rounds
    python bench/aio_overhead.py --levels 100,200,300 --seconds 10 --rounds 1
    python bench/aio_overhead.py --skip-micro --levels 200,400
    python bench/aio_overhead.py --skip-micro --idle 1000   # idle KB per pooled session

Prints a table (and ``--json PATH`` writes the figures) with ``uptime``'s load average at the
start and the end: on a shared machine read the ratios, measured side by side, not the absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import math
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import trio
from hdrh.histogram import HdrHistogram

import livemesh
import livemesh.aio
from livemesh.pool import RestartPolicy, RotationConfig
from livemesh.session import open_session


def _pool_scale() -> ModuleType:
    """bench/pool_scale.py (the live-audio workload, its emulator process and its judge)."""
    spec = importlib.util.spec_from_file_location("pool_scale", Path(__file__).with_name("pool_scale.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pool_scale"] = module  # attrs classes in it need their module importable
    spec.loader.exec_module(module)
    return module


ps = _pool_scale()

TEXT_MODEL = "gemini-live-2.5-flash-preview"
REPLY_CHUNKS = 200


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@attrs.define
class Sample:
    """One measurement: ``count`` operations in ``wall`` seconds using ``cpu`` CPU seconds."""

    count: int
    wall: float
    cpu: float

    @property
    def us_wall(self) -> float:
        return self.wall / self.count * 1e6

    @property
    def us_cpu(self) -> float:
        return self.cpu / self.count * 1e6


class Timer:
    def __enter__(self) -> Timer:
        self.t0, self.c0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.t0, cpu_seconds() - self.c0

    def sample(self, count: int) -> Sample:
        return Sample(count, self.wall, self.cpu)


# ----------------------------------------------------------------------------- 1. crossings


async def _noop() -> None:
    await trio.lowlevel.checkpoint()


async def trio_calls(n: int, callers: int) -> Sample:
    async def caller(k: int) -> None:
        for _ in range(k):
            await _noop()

    with Timer() as timer:
        async with trio.open_nursery() as nursery:
            for _ in range(callers):
                nursery.start_soon(caller, n // callers)
    return timer.sample(n // callers * callers)


async def aio_calls(n: int, callers: int) -> Sample:
    async def caller(k: int) -> None:
        for _ in range(k):
            await livemesh.aio.run_trio(_noop)

    async with livemesh.aio.trio_block(_nothing()):  # the guest run stays up between calls
        with Timer() as timer:
            await asyncio.gather(*(caller(n // callers) for _ in range(callers)))
    return timer.sample(n // callers * callers)


class _nothing:  # a trio async context manager that does nothing (holds the guest run up)
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


# ----------------------------------------------------------------------------- 2. sending


def audio_config(url: str) -> livemesh.SessionConfig:
    return ps.session_config(url)


async def trio_send(url: str, sessions: int, per_session: int) -> Sample:
    """Every session opened first; timed from "go" until every session's last send returned."""
    opened, finished = 0, 0
    ready, go, done, release = trio.Event(), trio.Event(), trio.Event(), trio.Event()

    async def one() -> None:
        nonlocal opened, finished
        async with open_session(audio_config(url)) as session:
            opened += 1
            if opened == sessions:
                ready.set()
            await go.wait()
            for _ in range(per_session):
                await session.send_realtime_input(audio=ps.SILENCE)
            finished += 1
            if finished == sessions:
                done.set()
            await release.wait()

    async with trio.open_nursery() as nursery:
        for _ in range(sessions):
            nursery.start_soon(one)
        await ready.wait()
        gc.collect()
        with Timer() as timer:
            go.set()
            await done.wait()
        release.set()
    return timer.sample(sessions * per_session)


async def aio_send(url: str, sessions: int, per_session: int) -> Sample:
    """:func:`trio_send` with ``livemesh.aio`` sessions and asyncio tasks."""
    opened, finished = 0, 0
    ready, go, done, release = asyncio.Event(), asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def one() -> None:
        nonlocal opened, finished
        async with livemesh.aio.open_session(audio_config(url)) as session:
            opened += 1
            if opened == sessions:
                ready.set()
            await go.wait()
            for _ in range(per_session):
                await session.send_realtime_input(audio=ps.SILENCE)
            finished += 1
            if finished == sessions:
                done.set()
            await release.wait()

    async with asyncio.TaskGroup() as group:
        for _ in range(sessions):
            group.create_task(one())
        await ready.wait()
        gc.collect()
        with Timer() as timer:
            go.set()
            await done.wait()
        release.set()
    return timer.sample(sessions * per_session)


# ----------------------------------------------------------------------------- 3. receiving


def text_config(url: str) -> livemesh.SessionConfig:
    return livemesh.SessionConfig(
        model=TEXT_MODEL,
        auth=livemesh.ApiKey("bench-key"),
        base_url=url,
        generation_config={"response_modalities": ["TEXT"]},
        context_window_compression={"sliding_window": {}},
        setup_timeout=120.0,
    )


async def trio_receive(url: str, sessions: int, turns: int) -> Sample:
    received = 0

    async def one() -> None:
        nonlocal received
        async with open_session(text_config(url)) as session:
            for _ in range(turns):
                await session.send_client_content("hello")
                async for message in session:
                    received += 1
                    content = message.server_content
                    if content is not None and content.turn_complete:
                        break

    gc.collect()
    with Timer() as timer:
        async with trio.open_nursery() as nursery:
            for _ in range(sessions):
                nursery.start_soon(one)
    return timer.sample(received)


async def aio_receive(url: str, sessions: int, turns: int) -> Sample:
    received = 0

    async def one() -> None:
        nonlocal received
        async with livemesh.aio.open_session(text_config(url)) as session:
            for _ in range(turns):
                await session.send_client_content("hello")
                async for message in session:
                    received += 1
                    content = message.server_content
                    if content is not None and content.turn_complete:
                        break

    async with livemesh.aio.trio_block(_nothing()):
        gc.collect()
        with Timer() as timer:
            await asyncio.gather(*(one() for _ in range(sessions)))
    return timer.sample(received)


# ----------------------------------------------------------------------------- 4. live audio


class AioMetronome:
    """``pool_scale.Metronome`` for asyncio: one timer wakes every session due at each 5 ms step."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.base = math.inf
        self._waiting: dict[int, list[asyncio.Future[None]]] = {}

    def due(self, step: int) -> float:
        return self.base + step * ps.GRID_S

    async def wait(self, step: int) -> None:
        if self.loop.time() >= self.due(step):
            await asyncio.sleep(0)
            return
        future = self.loop.create_future()
        self._waiting.setdefault(step, []).append(future)
        await future

    async def run(self) -> None:
        step = 0
        while True:
            await asyncio.sleep(max(0.0, self.due(step) - self.loop.time()))
            reached = int((self.loop.time() - self.base) / ps.GRID_S)
            for due in range(step, reached + 1):
                for future in self._waiting.pop(due, ()):
                    if not future.done():
                        future.set_result(None)
            step = reached + 1


async def aio_live_level(url: str, server_pid: int, n: int, seconds: float, seed: int) -> Any:
    """``pool_scale.live_level`` with asyncio handlers in a ``livemesh.aio`` pool."""
    loop = asyncio.get_running_loop()
    result = ps.LiveResult(sessions=n)
    lag = HdrHistogram(1, 60_000_000, 2)
    rng = random.Random(seed)
    go = asyncio.Event()
    metronome = AioMetronome(loop)
    connected = 0
    all_connected = asyncio.Event()
    measuring_from = [math.inf]

    async def handler(session: livemesh.aio.Session) -> None:
        nonlocal connected
        connected += 1
        if connected == n:
            all_connected.set()
        await go.wait()
        first = rng.randrange(ps.TICKS_PER_CHUNK)
        phase = rng.randrange(len(ps.PATTERN))
        start = metronome.due(first)
        sent_chunks = sent_bytes = answered = audio_in = 0

        async def receive() -> None:
            nonlocal answered, audio_in
            while True:
                message = await session.receive()
                content = message.server_content
                if content is None:
                    continue
                for part in (content.model_turn.parts or []) if content.model_turn is not None else []:
                    if part.inline_data is not None and part.inline_data.data:
                        audio_in += len(part.inline_data.data)
                if content.turn_complete and not content.interrupted:
                    answered += 1

        receiver = asyncio.create_task(receive())
        try:
            k = 0
            while True:
                step = first + k * ps.TICKS_PER_CHUNK
                due = metronome.due(step)
                if due - start >= seconds:
                    break
                await metronome.wait(step)
                chunk = ps.PATTERN[(k + phase) % len(ps.PATTERN)]
                await session.send_realtime_input(audio=chunk)
                now = loop.time()
                if due >= measuring_from[0]:
                    lag.record_value(max(1, min(60_000_000, round((now - due) * 1e6))))
                sent_chunks += 1
                sent_bytes += len(chunk)
                k += 1
            await asyncio.sleep(1.5)
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
        async with asyncio.timeout(60):
            await session.send_client_content("stats")
            stats: dict[str, Any] | None = None
            text = ""
            while stats is None:
                message = await session.receive()
                content = message.server_content
                if content is None:
                    continue
                if content.output_transcription is not None and content.output_transcription.text:
                    text += content.output_transcription.text
                if content.turn_complete:
                    stats = ps._stats_or_none(text)
                    text = ""
        result.chunks += sent_chunks
        result.turns_answered += answered
        result.audio_in_bytes += audio_in
        if (
            stats["audio_chunks"] != sent_chunks
            or stats["audio_bytes"] != sent_bytes
            or answered < stats["turns"]
        ):
            result.lost_sessions += 1

    def on_error(failure: Any) -> None:
        result.failed_sessions += 1

    t0 = time.monotonic()
    async with livemesh.aio.open_pool(
        max_sessions=n,
        connect_rate=400.0,
        connect_burst=50,
        restart=RestartPolicy(max_restarts=0),
        rotation=RotationConfig(enabled=False),
        on_session_error=on_error,
        seed=seed,
    ) as pool:
        handles = [await pool.start(ps.session_config(url), handler) for _ in range(n)]
        try:
            async with asyncio.timeout(120):
                await all_connected.wait()
        except TimeoutError:
            pass
        result.connected = connected
        result.connect_s = time.monotonic() - t0
        gc.collect()
        gc.freeze()
        metronome.base = loop.time()
        go.set()
        measuring_from[0] = loop.time() + 1.0
        c1, s1, t1 = cpu_seconds(), ps.proc_cpu_seconds(server_pid), time.monotonic()
        sampler = asyncio.create_task(livemesh.aio.run_trio(ps._sample_cpu, result, server_pid, seconds))
        clock = asyncio.create_task(metronome.run())
        for handle in handles:
            await handle.wait()
        clock.cancel()
        await asyncio.gather(clock, sampler, return_exceptions=True)
        c2, s2, t2 = cpu_seconds(), ps.proc_cpu_seconds(server_pid), time.monotonic()
    gc.unfreeze()
    wall = t2 - t1
    result.client_cpu = (c2 - c1) / wall
    result.server_cpu = (s2 - s1) / wall
    if lag.get_total_count():
        result.lag_p50_ms = lag.get_value_at_percentile(50) / 1000
        result.lag_p99_ms = lag.get_value_at_percentile(99) / 1000
        result.lag_max_ms = lag.get_max_value() / 1000
    return result


# ----------------------------------------------------------------------------- 5. idle footprint


async def trio_idle(url: str, n: int) -> float:
    """KB of RSS per idle pooled session (lent with ``pool.session``), trio."""
    opened = 0
    all_open, release = trio.Event(), trio.Event()
    config = ps.session_config(url, keepalive_interval=600.0, keepalive_timeout=600.0)

    async def one(pool: livemesh.Pool) -> None:
        nonlocal opened
        async with pool.session(config):
            opened += 1
            if opened == n:
                all_open.set()
            await release.wait()

    async with livemesh.open_pool(max_sessions=n + 1, connect_rate=300.0, connect_burst=50) as pool:
        async with pool.session(config):
            pass  # warm up
        gc.collect()
        before = ps.rss_bytes()
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(one, pool)
            await all_open.wait()
            await trio.sleep(1.0)
            gc.collect()
            after = ps.rss_bytes()
            release.set()
    return (after - before) / n / 1024


async def aio_idle(url: str, n: int) -> float:
    """:func:`trio_idle` with ``livemesh.aio`` (each session also has a pump and a sender)."""
    opened = 0
    all_open, release = asyncio.Event(), asyncio.Event()
    config = ps.session_config(url, keepalive_interval=600.0, keepalive_timeout=600.0)

    async def one(pool: livemesh.aio.Pool) -> None:
        nonlocal opened
        async with pool.session(config):
            opened += 1
            if opened == n:
                all_open.set()
            await release.wait()

    async with livemesh.aio.open_pool(max_sessions=n + 1, connect_rate=300.0, connect_burst=50) as pool:
        async with pool.session(config):
            pass
        gc.collect()
        before = ps.rss_bytes()
        async with asyncio.TaskGroup() as group:
            for _ in range(n):
                group.create_task(one(pool))
            await all_open.wait()
            await asyncio.sleep(1.0)
            gc.collect()
            after = ps.rss_bytes()
            release.set()
    return (after - before) / n / 1024


def idle_child(api: str, url: str, n: int) -> None:
    """``--idle-child API URL N``: one idle measurement in this (fresh) process; prints KB."""
    ps.raise_fd_limit(2 * n + 200)
    kb = trio.run(trio_idle, url, n) if api == "trio" else asyncio.run(aio_idle(url, n))
    print(f"{kb:.2f}")


def idle(url: str, n: int, rounds: int) -> dict[str, Any]:
    """Idle KB per session, trio and asyncio alternately, each in a fresh child process."""
    import subprocess

    runs: dict[str, list[float]] = {"trio": [], "asyncio": []}
    for _ in range(rounds):
        for api in runs:
            out = subprocess.run(
                [sys.executable, __file__, "--idle-child", api, url, str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[api].append(float(out.stdout.strip().splitlines()[-1]))
    trio_kb, aio_kb = statistics.median(runs["trio"]), statistics.median(runs["asyncio"])
    print(
        f"\nidle pooled session, {n} sessions: trio {trio_kb:.1f} KB, asyncio {aio_kb:.1f} KB "
        f"(+{aio_kb - trio_kb:.1f} KB; runs {runs})",
        flush=True,
    )
    return {"sessions": n, "trio_kb": trio_kb, "aio_kb": aio_kb, "runs": runs}


# ----------------------------------------------------------------------------- the sitting


def alternate(
    rounds: int,
    trio_fn: Callable[..., Awaitable[Sample]],
    aio_fn: Callable[..., Awaitable[Sample]],
    *args: Any,
) -> tuple[list[Sample], list[Sample]]:
    """Run ``trio_fn(*args)`` under trio and ``aio_fn(*args)`` under asyncio alternately."""
    native: list[Sample] = []
    guest: list[Sample] = []
    for _ in range(rounds):
        native.append(trio.run(trio_fn, *args))
        guest.append(asyncio.run(aio_fn(*args)))
    return native, guest


def row(name: str, native: list[Sample], guest: list[Sample], what: str) -> dict[str, Any]:
    def median(samples: list[Sample], attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in samples)

    figures = {
        "name": name,
        "unit": what,
        "trio_us_cpu": median(native, "us_cpu"),
        "aio_us_cpu": median(guest, "us_cpu"),
        "trio_us_wall": median(native, "us_wall"),
        "aio_us_wall": median(guest, "us_wall"),
        "ratios_cpu": [g.us_cpu / n.us_cpu for n, g in zip(native, guest, strict=True)],
    }
    figures["ratio_cpu"] = figures["aio_us_cpu"] / figures["trio_us_cpu"]
    figures["ratio_wall"] = figures["aio_us_wall"] / figures["trio_us_wall"]
    print(
        f"{name:<34} {figures['trio_us_cpu']:8.1f} {figures['aio_us_cpu']:8.1f} {figures['ratio_cpu']:6.2f}x"
        f"   {figures['trio_us_wall']:8.1f} {figures['aio_us_wall']:8.1f} {figures['ratio_wall']:6.2f}x"
        f"   ({', '.join(f'{r:.2f}' for r in figures['ratios_cpu'])})",
        flush=True,
    )
    return figures


def micro(url: str, rounds: int) -> list[dict[str, Any]]:
    print(
        f"\n{'per operation (us)':<34} {'trio':>8} {'asyncio':>8} {'ratio':>7}   {'wall: trio':>8} "
        f"{'asyncio':>8} {'ratio':>7}   (CPU ratio per round)"
    )
    print(f"{'':<34} {'CPU':>8} {'CPU':>8}")
    rows = []
    for callers, n in ((1, 20_000), (100, 50_000)):
        native, guest = alternate(rounds, trio_calls, aio_calls, n, callers)
        rows.append(row(f"crossing, {callers} caller(s)", native, guest, "call"))
    for sessions, per in ((1, 3000), (50, 100)):
        native, guest = alternate(rounds, trio_send, aio_send, url, sessions, per)
        rows.append(row(f"send 100 ms audio, {sessions} session(s)", native, guest, "message"))
    for sessions, turns in ((1, 20), (20, 3)):
        native, guest = alternate(rounds, trio_receive, aio_receive, url, sessions, turns)
        rows.append(row(f"receive, {sessions} session(s)", native, guest, "message"))
    return rows


def live(url: str, pid: int, levels: list[int], seconds: float, seed: int) -> list[dict[str, Any]]:
    print(
        f"\n{'live audio':<12} {'api':<8} {'pass':<5} {'p50 ms':>7} {'p99 ms':>7} {'lost':>5} {'failed':>6} "
        f"{'client CPU':>10} {'ms/session-s':>12}"
    )
    out = []
    for n in levels:
        for api in ("trio", "asyncio"):
            gc.collect()
            if api == "trio":
                result = trio.run(ps.live_level, url, pid, n, seconds, seed)
            else:
                result = asyncio.run(aio_live_level(url, pid, n, seconds, seed))
            per_session_ms = result.client_cpu_streaming / n * 1000 if result.client_cpu_streaming else 0.0
            print(
                f"{n:<12} {api:<8} {'yes' if result.passed else 'NO':<5} {result.lag_p50_ms:7.1f} "
                f"{result.lag_p99_ms:7.1f} {result.lost_sessions:5d} {result.failed_sessions:6d} "
                f"{result.client_cpu_streaming:10.2f} {per_session_ms:12.2f}",
                flush=True,
            )
            out.append({"sessions": n, "api": api, "passed": result.passed, **attrs.asdict(result)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternations of trio and asyncio per figure")
    parser.add_argument("--skip-micro", action="store_true", help="only the live audio levels")
    parser.add_argument("--levels", default="", help="live audio levels, e.g. 100,200,300 (default: none)")
    parser.add_argument("--seconds", type=float, default=10.0, help="streaming time per live level")
    parser.add_argument("--idle", type=int, default=0, help="idle footprint with N sessions (0: skip)")
    parser.add_argument("--idle-child", nargs=3, metavar=("API", "URL", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if args.idle_child:
        api, url, n = args.idle_child
        idle_child(api, url, int(n))
        return 0
    levels = [int(x) for x in args.levels.split(",") if x]
    report: dict[str, Any] = {"load_before": load_average()}
    print(f"load average (1, 5, 15 min) before: {report['load_before']}; {os.cpu_count()} CPUs")
    ps.raise_fd_limit(4 * max([100, *levels]) + 1000)
    with ps.emulator_process("--chunks-per-reply", str(REPLY_CHUNKS)) as (url, pid):
        if not args.skip_micro:
            report["micro"] = micro(url, args.rounds)
    if levels or args.idle:
        with ps.emulator_process() as (url, pid):
            if levels:
                report["live"] = live(url, pid, levels, args.seconds, args.seed)
            if args.idle:
                report["idle"] = idle(url, args.idle, args.rounds)
    report["load_after"] = load_average()
    print(f"\nload average after: {report['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
