"""``python -m livemesh bench``: many concurrent sessions with real traffic, optionally vs google-genai.

With no arguments: the emulator in a separate process on a free loopback port, a mixed workload
(200 sessions: text turns, real-time audio with audio answers, tool calls) for about 30 s, the
emulator's connection lifetime shrunk so every session rotates at least once, live progress, and a
summary table. Each client runs in its own process (:mod:`livemesh.bench.runner`), one after the
other against the same emulator, so each gets a core while the emulator has the other.

Exit status: 0 if nothing was lost, duplicated or errored; 1 otherwise; 2 on a usage problem
(e.g. ``--vs genai`` without google-genai installed); 130 when interrupted (Ctrl-C), after the
emulator and client processes have been stopped.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import trio
from rich.console import Console
from rich.live import Live

from livemesh.bench import report
from livemesh.bench.genai_client import MISSING_SDK
from livemesh.bench.progress import ProgressView
from livemesh.bench.runner import RunnerError, run_client
from livemesh.bench.server import StartupError, emulator_args, open_emulator_process, process_cpu_s
from livemesh.bench.workload import WORKLOADS, WorkloadSpec
from livemesh.telemetry.prometheus import MISSING_EXPORTER

__all__ = ["add_arguments", "run"]

DEFAULT_SESSIONS = 200
DEFAULT_DURATION_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS, help="concurrent sessions (200)")
    parser.add_argument(
        "--duration", type=float, default=DEFAULT_DURATION_S, help="seconds of traffic per client (30)"
    )
    parser.add_argument("--workload", choices=WORKLOADS, default="mixed", help="what sessions do (mixed)")
    parser.add_argument("--client", choices=("livemesh", "genai"), default="livemesh", help="which client")
    parser.add_argument(
        "--vs",
        choices=("genai",),
        default=None,
        help="run livemesh, then google-genai, same workload, side by side",
    )
    parser.add_argument("--tls", action="store_true", help="wss (implied by --vs genai and --client genai)")
    parser.add_argument(
        "--url", default=None, help="an external server (ws[s]://host[:port]) instead of the emulator"
    )
    parser.add_argument("--model", default=None, help="model name (default: a native-audio Live model)")
    parser.add_argument(
        "--json", dest="json_path", default=None, metavar="PATH", help="write results as JSON"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for session kinds and start times")
    parser.add_argument(
        "--lifetime",
        type=float,
        default=None,
        help="emulator connection lifetime in s (default: about a third of --duration, so sessions rotate)",
    )
    parser.add_argument(
        "--go-away-notice", type=float, default=None, help="emulator goAway notice in s (default: lifetime/2)"
    )
    parser.add_argument(
        "--audio-pace", type=float, default=1.0, help="1 = real-time audio, 0 = as fast as possible"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --vs: alternate the clients this many times (--duration each) and add each "
        "round's ratios and their medians (a shared machine's noise hits both clients alike)",
    )
    parser.add_argument("--ca-file", default=None, help="CA to trust for --url over wss")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="N",
        help="serve the livemesh client's OpenTelemetry metrics on http://127.0.0.1:N/metrics while it "
        "runs (needs livemesh[otel], opentelemetry-sdk and opentelemetry-exporter-prometheus)",
    )
    fleet = parser.add_argument_group(
        "failover across worker processes (needs livemesh[redis] and a Redis server)"
    )
    fleet.add_argument("--workers", type=int, default=None, metavar="N", help="worker processes (>= 2)")
    fleet.add_argument("--redis", default=None, metavar="URL", help="Redis shared by the workers")
    fleet.add_argument(
        "--kill-one-at", type=float, default=None, metavar="S", help="SIGKILL one worker after S s"
    )


def _default_lifetime(duration_s: float) -> float:
    # At least one rotation per session: the lifetime is well under the run; never below 2 s so a
    # turn (audio: ~1.5 s) fits between goAway and the deadline.
    return max(2.0, round(duration_s / 3, 1))


def _clients(args: argparse.Namespace) -> list[str]:
    if args.vs == "genai":
        return ["livemesh", "genai"]
    return [args.client]


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


async def _main(args: argparse.Namespace, console: Console, err: Console) -> int:
    clients = _clients(args)
    tls = bool(args.tls or "genai" in clients)
    lifetime = args.lifetime if args.lifetime is not None else _default_lifetime(args.duration)
    # Half the lifetime: the notice must outlast an audio turn (1 s of speech, 0.5 s of silence,
    # the spoken answer) under load, as the service's 60 s do; with a third (3.3 s) a move that
    # met the user speaking could not finish the turn in time (forced: a chunk doubled, counted).
    notice = args.go_away_notice if args.go_away_notice is not None else max(1.0, round(lifetime / 2, 1))
    results: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    async with AsyncExitStack() as stack:
        if args.url:
            url, ca_file = args.url.rstrip("/"), args.ca_file
            api_key = os.environ.get("GEMINI_API_KEY", "bench-key")
            server_pid: int | None = None
            server_lifetime: float | None = None
            server_notice: float | None = None
        else:
            # Periodic handles four times per goAway notice (how often the service issues them is
            # not documented): with the emulator's default, one per 5 s, a move on the shrunk
            # limits often finds no handle issued after it held its input before the connection
            # ends, and replays input that may be consumed already (bench/README.md, "Handles
            # and moves"). Both clients run against the same emulator.
            interval = round(max(0.1, notice / 4), 2)
            emu = await stack.enter_async_context(
                open_emulator_process(
                    tls=tls,
                    args=emulator_args(
                        lifetime_s=lifetime, go_away_notice_s=notice, handle_interval_s=interval
                    ),
                )
            )
            url, ca_file, api_key, server_pid = emu.url, emu.ca_file, "bench-key", emu.pid
            server_lifetime, server_notice = lifetime, notice
            err.print(
                f"emulator: {url} (pid {emu.pid}), connection lifetime {lifetime:g} s, "
                f"goAway {notice:g} s before, a resumption handle every {interval:g} s"
            )
        spec_kwargs: dict[str, Any] = {
            "url": url,
            "workload": args.workload,
            "sessions": args.sessions,
            "duration_s": args.duration,
            "seed": args.seed,
            "api_key": api_key,
            "ca_file": ca_file,
            "audio_pace": args.audio_pace,
            "lifetime_s": server_lifetime,
            "go_away_notice_s": server_notice,
            "verify": not args.url or _is_local(args.url),
            "metrics_port": args.metrics_port,
        }
        if args.metrics_port is not None:
            where = f"http://127.0.0.1:{args.metrics_port}/metrics"
            err.print(f"metrics: {where} (while the livemesh client runs)")
        if args.model:
            spec_kwargs["model"] = args.model
        spec = WorkloadSpec(**spec_kwargs)
        view = ProgressView()
        runs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {client: [] for client in clients}
        round_ratios: list[dict[str, float | None]] = []
        rounds = args.rounds if len(clients) == 2 else 1
        with Live(view, console=err, refresh_per_second=4, transient=True):
            for number in range(rounds):
                for client in clients:
                    name = client if rounds == 1 else f"{client} {number + 1}/{rounds}"
                    line = view.add(name, duration_s=args.duration, sessions=args.sessions)
                    cpu_before = process_cpu_s(server_pid) if server_pid else None
                    out = await run_client(client, spec, line.update)
                    cpu_after = process_cpu_s(server_pid) if server_pid else None
                    if cpu_before is not None and cpu_after is not None:
                        out["details"]["server_cpu_s"] = round(cpu_after - cpu_before, 2)
                    runs[client].append((out["result"], out["details"]))
                if len(clients) == 2:
                    (ours, ours_d), (theirs, theirs_d) = runs[clients[0]][-1], runs[clients[1]][-1]
                    round_ratios.append(report.ratios(ours, theirs, ours_d, theirs_d))
        for client in clients:
            result, detail = runs[client][0] if rounds == 1 else report.merge_rounds(runs[client])
            results.append(result)
            details.append(detail)
    ratio = report.ratios(results[0], results[1], details[0], details[1]) if len(results) == 2 else None
    title = f"livemesh bench: {args.workload}, {args.sessions} sessions, {args.duration:g} s" + (
        ", TLS" if tls else ""
    )
    if len(round_ratios) > 1:
        title += f", {len(round_ratios)} rounds each (sums; latency: median of rounds)"
    report.render_table(console, results, details, ratio, title=title, rounds=round_ratios)
    if args.json_path:
        report.write_json(args.json_path, results, ratio, round_ratios if len(round_ratios) > 1 else None)
    return 1 if any(report.failed(r) for r in results) else 0


def _first(group: BaseExceptionGroup, types: tuple[type[BaseException], ...]) -> BaseException | None:
    for exc in group.exceptions:
        if isinstance(exc, types):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first(exc, types)
            if found is not None:
                return found
    return None


def _have_genai() -> bool:
    try:
        return importlib.util.find_spec("google.genai") is not None
    except ImportError:  # no ``google`` namespace at all
        return False


def _have_prometheus_exporter() -> bool:
    try:
        needed = ("opentelemetry.sdk.metrics", "opentelemetry.exporter.prometheus", "prometheus_client")
        return all(importlib.util.find_spec(name) is not None for name in needed)
    except ImportError:  # no ``opentelemetry`` package at all
        return False


def _run_failover(args: argparse.Namespace, console: Console, err: Console) -> int:
    """``--workers N --redis URL``: N workers share one emulator and one Redis; one is SIGKILLed
    mid-run and the others must resume its sessions exactly once (livemesh.bench.failover)."""
    if not args.redis or args.workers < 2:
        err.print("--workers N (N >= 2) needs --redis URL")
        return 2
    try:
        from livemesh.bench.failover import render_report, run_failover_bench
    except ImportError:
        err.print("the failover bench needs: python -m pip install 'livemesh[redis]'")
        return 2
    kill_at = args.kill_one_at if args.kill_one_at is not None else args.duration / 3
    result = trio.run(
        functools.partial(
            run_failover_bench,
            workers=args.workers,
            redis_url=args.redis,
            kill_one_at=kill_at,
            sessions=args.sessions,
            turns=max(2, int(args.duration / 0.5)),
            turn_interval_s=0.5,
        )
    )
    console.print(render_report(result), highlight=False)
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as f:
            json.dump(result.as_json(), f, indent=2)
    return 0 if result.ok else 1


def run(args: argparse.Namespace) -> int:
    console = Console()
    err = Console(stderr=True)
    if args.workers is not None:
        return _run_failover(args, console, err)
    if args.sessions < 1 or not math.isfinite(args.duration) or args.duration <= 0 or args.rounds < 1:
        err.print("--sessions and --rounds must be >= 1 and --duration > 0")
        return 2
    if "genai" in _clients(args) and not _have_genai():
        err.print(MISSING_SDK)
        return 2
    if args.metrics_port is not None:
        if not 0 < args.metrics_port < 65536:
            err.print("--metrics-port must be a TCP port (1-65535)")
            return 2
        if not _have_prometheus_exporter():
            err.print(MISSING_EXPORTER)
            return 2
    try:
        return trio.run(_main, args, console, err)
    except (RunnerError, StartupError) as exc:
        err.print(f"[red]bench failed:[/red] {exc}", markup=True, highlight=False)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except BaseExceptionGroup as group:  # raised through the emulator process's nursery
        if group.subgroup(KeyboardInterrupt) is not None:  # Ctrl-C while the emulator ran
            err.print("interrupted")
            return 130
        failure = _first(group, (RunnerError, StartupError))
        if failure is None:
            raise
        err.print(f"[red]bench failed:[/red] {failure}", markup=True, highlight=False)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m livemesh.bench.cli`` (the package CLI dispatches to :func:`run`)."""
    parser = argparse.ArgumentParser(prog="livemesh bench")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
