"""How many real-time audio sessions one livemesh client process holds, and what an idle one costs.

Two measurements, each against the emulator running in a SECOND process
(``python -m livemesh serve --port 0``), so client and server do not share a core:

1. **Live audio ramp.** For each level N, N pooled sessions stream 16 kHz 16-bit PCM in 100 ms
   chunks on a real-time schedule (1 s of "speech", then 1 s of silence, so the emulator's VAD
   ends a turn every 2 s and streams a spoken answer back: 24 kHz PCM); sessions start at random
   points of that cycle and of the 100 ms chunk clock, as independent callers would. Each chunk
   *send lag* is ``time the send call returned - time the chunk was due``; the level passes if
   the p99 lag is under 100 ms and nothing was lost (the server's ``stats`` count every chunk
   and byte sent, and every detected turn was answered). The ramp stops at the first failing
   level; the last passing one is the figure.
2. **Idle RSS.** N sessions connected and set up, then nothing: ``(RSS - RSS before) / N`` for
   N = 1,000 and 10,000 (``/proc/self/statm``; the fd limit is raised with ``setrlimit``).

Usage::

    python bench/pool_scale.py                       # ramp 100..1000, idle 1000 and 10000
    python bench/pool_scale.py --levels 200,500 --seconds 10 --idle 1000
    python bench/pool_scale.py --skip-live           # only the idle RSS figures

Prints one line per level and a JSON summary at the end (``--json PATH`` writes it too).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio
from hdrh.histogram import HdrHistogram

from livemesh.auth import ApiKey
from livemesh.pool import RestartPolicy, RotationConfig, open_pool
from livemesh.session import RetryPolicy, Session, SessionConfig

CHUNK_S = 0.1
RATE = 16_000
CHUNK_BYTES = int(RATE * CHUNK_S) * 2
AUDIO_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"


def _tone(amplitude: int) -> bytes:
    """One 100 ms chunk of a 440 Hz tone (amplitude 0 = silence)."""
    samples = (int(amplitude * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(CHUNK_BYTES // 2))
    return b"".join(s.to_bytes(2, "little", signed=True) for s in samples)


SPEECH = _tone(6000)
SILENCE = _tone(0)
PATTERN = [SPEECH] * 10 + [SILENCE] * 10  # a 1 s utterance, then the 1 s pause that ends the turn


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def emulator_process(*extra: str) -> Iterator[tuple[str, int]]:
    """``python -m livemesh serve --port 0`` in a subprocess; yields (ws url, pid)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "livemesh", "serve", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"emulator did not start: {line!r}")
        yield line.removeprefix("listening on "), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def session_config(url: str, **options: Any) -> SessionConfig:
    return SessionConfig(
        model=AUDIO_MODEL,
        auth=ApiKey("bench-key"),
        base_url=url,
        generation_config={"response_modalities": ["AUDIO"]},
        output_audio_transcription=True,
        session_resumption=True,
        retry=RetryPolicy(max_attempts=8, base_delay=0.05, max_delay=1.0),
        setup_timeout=120.0,
        **options,
    )


# ----------------------------------------------------------------------------- live audio


@attrs.define
class LiveResult:
    sessions: int
    connected: int = 0
    connect_s: float = 0.0
    chunks: int = 0
    lag_p50_ms: float = 0.0
    lag_p99_ms: float = 0.0
    lag_max_ms: float = 0.0
    turns_answered: int = 0
    audio_in_bytes: int = 0
    lost_sessions: int = 0
    failed_sessions: int = 0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    client_cpu_streaming: float = 0.0
    server_cpu_streaming: float = 0.0
    client_cpu_peak: float = 0.0
    server_cpu_peak: float = 0.0
    other_cpu_streaming: float = 0.0
    """CPU used by every other process on the machine meanwhile (a shared box: the lag is only
    comparable between runs when this is near zero)."""

    @property
    def passed(self) -> bool:
        return (
            self.connected == self.sessions
            and self.lag_p99_ms < 100.0
            and self.lost_sessions == 0
            and self.failed_sessions == 0
        )


GRID_S = 0.005
"""The chunk clocks' grid: each session's 100 ms clock starts at a random 5 ms step."""
TICKS_PER_CHUNK = round(CHUNK_S / GRID_S)


class Metronome:
    """One timer for every session's chunk clock: a session parks until its chunk's step, and the
    metronome wakes all sessions due at each step. A timer per session per chunk
    (``trio.sleep_until``: a deadline, then a Cancelled raised and caught to wake) was ~15 % of the
    client's CPU at 200 sessions: harness cost, which an app fed by a real audio source (it waits
    on a socket read) does not pay. Lag is still measured from the exact due time."""

    def __init__(self) -> None:
        self.base = math.inf
        self._lots: dict[int, trio.lowlevel.ParkingLot] = {}

    def due(self, step: int) -> float:
        return self.base + step * GRID_S

    async def wait(self, step: int) -> None:
        if trio.current_time() >= self.due(step):
            await trio.lowlevel.checkpoint()
            return
        lot = self._lots.get(step)
        if lot is None:
            lot = self._lots[step] = trio.lowlevel.ParkingLot()
        await lot.park()

    async def run(self) -> None:
        step = 0
        while True:
            await trio.sleep_until(self.due(step))
            reached = int((trio.current_time() - self.base) / GRID_S)
            for due in range(step, reached + 1):
                lot = self._lots.pop(due, None)
                if lot is not None:
                    lot.unpark_all()
            step = reached + 1


async def live_level(
    url: str, server_pid: int, n: int, seconds: float, seed: int, gc_mode: str = "freeze"
) -> LiveResult:
    result = LiveResult(sessions=n)
    lag = HdrHistogram(1, 60_000_000, 2)  # microseconds
    rng = random.Random(seed)
    go = trio.Event()
    metronome = Metronome()
    connected = 0
    all_connected = trio.Event()
    measuring_from = [math.inf]

    async def handler(session: Session) -> None:
        nonlocal connected
        connected += 1
        if connected == n:
            all_connected.set()
        await go.wait()
        first = rng.randrange(TICKS_PER_CHUNK)  # real callers are not phase-locked: neither the
        phase = rng.randrange(len(PATTERN))  # chunk clock nor where they are in their speech cycle
        start = metronome.due(first)
        sent_chunks = sent_bytes = 0
        answered = 0
        audio_in = 0

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

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            k = 0
            while True:
                step = first + k * TICKS_PER_CHUNK
                due = metronome.due(step)
                if due - start >= seconds:
                    break
                await metronome.wait(step)
                chunk = PATTERN[(k + phase) % len(PATTERN)]
                await session.send_realtime_input(audio=chunk)
                now = trio.current_time()
                if due >= measuring_from[0]:
                    lag.record_value(max(1, min(60_000_000, round((now - due) * 1e6))))
                sent_chunks += 1
                sent_bytes += len(chunk)
                k += 1
            await trio.sleep(1.5)  # let the last turn's answer finish streaming (not measured)
            nursery.cancel_scope.cancel()
        # The server's own counts: every chunk and byte sent arrived exactly once. The answer to
        # the last utterance may still be streaming (or be interrupted by this turn): skip turns
        # until one is the stats JSON.
        with trio.fail_after(60):
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
                    stats = _stats_or_none(text)
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

    cpu0, server0 = resource.getrusage(resource.RUSAGE_SELF), proc_cpu_seconds(server_pid)
    t0 = time.monotonic()
    async with open_pool(
        max_sessions=n,
        connect_rate=400.0,
        connect_burst=50,
        restart=RestartPolicy(max_restarts=0),
        rotation=RotationConfig(enabled=False),
        on_session_error=on_error,
        seed=seed,
    ) as pool:
        handles = [await pool.start(session_config(url), handler) for _ in range(n)]
        with trio.move_on_after(120):
            await all_connected.wait()
        result.connected = connected
        result.connect_s = time.monotonic() - t0
        if gc_mode == "freeze":
            # Park every object alive now (sessions, connections, tasks) outside the collector:
            # a full collection otherwise walks all of them, a pause that grows with the session
            # count (86 ms at 50 sessions here) and shows up directly as send lag.
            gc.collect()
            gc.freeze()
        elif gc_mode == "off":
            gc.disable()
        metronome.base = trio.current_time()
        go.set()
        measuring_from[0] = trio.current_time() + 1.0  # skip the first second (all start at once)
        cpu1, server1, t1 = (
            resource.getrusage(resource.RUSAGE_SELF),
            proc_cpu_seconds(server_pid),
            time.monotonic(),
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_sample_cpu, result, server_pid, seconds)
            async with trio.open_nursery() as clock:
                clock.start_soon(metronome.run)
                for handle in handles:
                    await handle.wait()
                clock.cancel_scope.cancel()
        cpu2, server2, t2 = (
            resource.getrusage(resource.RUSAGE_SELF),
            proc_cpu_seconds(server_pid),
            time.monotonic(),
        )
    del cpu0, server0
    gc.unfreeze()
    gc.enable()
    wall = t2 - t1
    result.client_cpu = (cpu2.ru_utime + cpu2.ru_stime - cpu1.ru_utime - cpu1.ru_stime) / wall
    result.server_cpu = (server2 - server1) / wall
    if lag.get_total_count():
        result.lag_p50_ms = lag.get_value_at_percentile(50) / 1000
        result.lag_p99_ms = lag.get_value_at_percentile(99) / 1000
        result.lag_max_ms = lag.get_max_value() / 1000
    return result


def _machine_busy_seconds() -> float:
    """CPU seconds all processes used so far (/proc/stat: user+nice+system+irq+softirq+steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _stats_or_none(text: str) -> dict[str, Any] | None:
    """The emulator's ``stats`` answer, or None for any other turn's transcript."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "audio_chunks" in value else None


def _self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _sample_cpu(result: LiveResult, server_pid: int, seconds: float) -> None:
    """Client and server CPU while streaming (skipping the first second, as the lag does): the
    whole-level average also covers the tail and the stats turn and understates saturation.
    Samples every 0.5 s; the peak is the busiest 1 s window."""
    samples: list[tuple[float, float, float, float]] = []
    start = time.monotonic()
    await trio.sleep(1.0)
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        samples.append((now, _self_cpu_seconds(), proc_cpu_seconds(server_pid), _machine_busy_seconds()))
        await trio.sleep(0.5)
    if len(samples) < 3:
        return
    (t0, c0, s0, m0), (tn, cn, sn, mn) = samples[0], samples[-1]
    result.client_cpu_streaming = (cn - c0) / (tn - t0)
    result.server_cpu_streaming = (sn - s0) / (tn - t0)
    result.other_cpu_streaming = max(
        0.0, (mn - m0) / (tn - t0) - result.client_cpu_streaming - result.server_cpu_streaming
    )
    for (ta, ca, sa, _), (tb, cb, sb, _) in zip(samples, samples[2:], strict=False):
        result.client_cpu_peak = max(result.client_cpu_peak, (cb - ca) / (tb - ta))
        result.server_cpu_peak = max(result.server_cpu_peak, (sb - sa) / (tb - ta))


# ----------------------------------------------------------------------------- idle RSS


@attrs.define
class IdleResult:
    sessions: int
    connected: int = 0
    connect_s: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0

    @property
    def per_session_kb(self) -> float:
        return (self.rss_after_mb - self.rss_before_mb) * 1024 / max(1, self.connected)


async def idle_bare(url: str, n: int, seed: int) -> IdleResult:
    """The same idle sessions with plain ``open_session`` in one nursery: the pool's own share is
    the difference between this and :func:`idle_level`."""
    from livemesh.session import open_session

    result = IdleResult(sessions=n)
    connected = 0
    all_connected = trio.Event()
    release = trio.Event()
    config = session_config(url, keepalive_interval=600.0, keepalive_timeout=600.0)
    limiter = trio.CapacityLimiter(50)

    async def one() -> None:
        nonlocal connected
        async with limiter:
            session_cm = open_session(config)
            session = await session_cm.__aenter__()
        try:
            connected += 1
            if connected == n:
                all_connected.set()
            await release.wait()
        finally:
            await session_cm.__aexit__(None, None, None)
        del session

    async with trio.open_nursery() as nursery:
        async with open_session(config):
            pass  # warm up
        result.rss_before_mb = rss_bytes() / 2**20
        t0 = time.monotonic()
        for _ in range(n):
            nursery.start_soon(one)
        with trio.move_on_after(600):
            await all_connected.wait()
        result.connect_s = time.monotonic() - t0
        result.connected = connected
        await trio.sleep(2.0)
        result.rss_after_mb = rss_bytes() / 2**20
        release.set()
    return result


async def idle_level(url: str, n: int, seed: int) -> IdleResult:
    result = IdleResult(sessions=n)
    connected = 0
    all_connected = trio.Event()
    release = trio.Event()

    async def handler(session: Session) -> None:
        nonlocal connected
        connected += 1
        if connected == n:
            all_connected.set()
        await release.wait()

    config = session_config(url, keepalive_interval=600.0, keepalive_timeout=600.0)
    async with open_pool(
        max_sessions=n + 10,
        connect_rate=300.0,
        connect_burst=50,
        restart=RestartPolicy(max_restarts=0),
        seed=seed,
    ) as pool:
        # warm up: import and allocate everything one session needs, then measure the baseline
        async def brief(session: Session) -> None:
            await trio.sleep(0.2)

        warm = await pool.start(config, brief)
        await warm.wait()
        result.rss_before_mb = rss_bytes() / 2**20
        t0 = time.monotonic()
        for _ in range(n):
            await pool.start(config, handler)
        with trio.move_on_after(600):
            await all_connected.wait()
        result.connect_s = time.monotonic() - t0
        result.connected = connected
        await trio.sleep(2.0)  # let connection setup garbage settle
        result.rss_after_mb = rss_bytes() / 2**20
        release.set()
    return result


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--levels", default="100,200,400,600,800,1000,1200", help="live session counts to try"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="streaming time per level")
    parser.add_argument("--idle", default="1000,10000", help="idle session counts for the RSS figure")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument(
        "--idle-bare",
        action="store_true",
        help="also measure idle sessions without the pool (open_session only)",
    )
    parser.add_argument("--idle-mode", choices=["pool", "bare"], help=argparse.SUPPRESS)  # one fresh child
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--gc",
        choices=["freeze", "default", "off"],
        default="freeze",
        help="collector during the live phase: gc.freeze() once connected (default), untouched, or off",
    )
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)

    levels = [int(x) for x in args.levels.split(",") if x]
    idle = [int(x) for x in args.idle.split(",") if x]
    fd_limit = raise_fd_limit(2 * max([*levels, *idle, 1]) + 1000)  # inherited by the emulator
    summary: dict[str, Any] = {"fd_limit": fd_limit, "live": [], "idle": []}
    print(f"fd limit {fd_limit}; {os.cpu_count()} cores", flush=True)

    if not args.skip_live:
        with emulator_process(
            "--max-sessions", str(max(levels) + 100), "--resumption-update-interval", "5"
        ) as (
            url,
            pid,
        ):
            best = 0
            for n in levels:
                res = trio.run(live_level, url, pid, n, args.seconds, args.seed, args.gc)
                summary["live"].append({**attrs.asdict(res), "passed": res.passed})
                print(
                    f"live {n:5d}: connected {res.connected} in {res.connect_s:5.1f}s, "
                    f"send lag p50 {res.lag_p50_ms:6.1f} ms p99 {res.lag_p99_ms:7.1f} ms "
                    f"max {res.lag_max_ms:7.1f} ms, turns answered {res.turns_answered}, "
                    f"lost {res.lost_sessions}, failed {res.failed_sessions}, "
                    f"cpu while streaming (mean/peak) client {res.client_cpu_streaming:4.0%}/"
                    f"{res.client_cpu_peak:4.0%} "
                    f"server {res.server_cpu_streaming:4.0%}/{res.server_cpu_peak:4.0%} "
                    f"(CPU ms per session-second: client {1000 * res.client_cpu_streaming / n:.2f}, "
                    f"server {1000 * res.server_cpu_streaming / n:.2f}), "
                    f"other processes {res.other_cpu_streaming:4.0%} "
                    f"-> {'PASS' if res.passed else 'FAIL'}",
                    flush=True,
                )
                if not res.passed:
                    break
                best = n
            summary["live_max_sessions"] = best
            print(f"max live audio sessions with p99 send lag < 100 ms and zero loss: {best}", flush=True)

    if args.idle_mode is not None:  # a child process measuring one idle figure from a clean heap
        (n,) = idle
        measure = idle_level if args.idle_mode == "pool" else idle_bare
        extra = ("--max-sessions", str(n + 100), "--resumption-update-interval", "3600")
        with emulator_process(*extra) as (url, _pid):
            res_idle = trio.run(measure, url, n, args.seed)
        summary["idle"].append(
            {**attrs.asdict(res_idle), "mode": args.idle_mode, "per_session_kb": res_idle.per_session_kb}
        )
    elif not args.skip_idle:
        for n in idle:
            for mode in ["pool", *(["bare"] if args.idle_bare else [])]:
                with tempfile.NamedTemporaryFile(suffix=".json") as out:
                    command = [sys.executable, __file__, "--skip-live", "--idle", str(n), "--idle-mode", mode]
                    subprocess.run(
                        [*command, "--seed", str(args.seed), "--json", out.name],
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                    (item,) = json.load(open(out.name))["idle"]
                summary["idle"].append(item)
                print(
                    f"idle {mode} {n:6d}: connected {item['connected']} in {item['connect_s']:5.1f}s, "
                    f"RSS {item['rss_before_mb']:.1f} -> {item['rss_after_mb']:.1f} MB, "
                    f"{item['per_session_kb']:.1f} KB per idle session",
                    flush=True,
                )

    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
