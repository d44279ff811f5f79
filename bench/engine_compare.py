"""The livemesh client end to end on its two WebSocket engines: trio-websocket vs the sans-I/O engine.

    python bench/engine_compare.py [--sessions 50] [--duration 8] [--workload text] [--tls]

Runs the real session actor and pool (``livemesh.bench.livemesh_client``) against the emulator in
a separate process, once per engine (``TransportOptions(engine=...)``), each in a fresh client
process (with ``--tls``, google-genai's runner too, as the reference). Both engines run over the
same socket and TLS layer and implement the same ``Connection`` protocol, fences included, so the
difference is the engines' own cost.
Prints client CPU per message and throughput per engine; CPU per message is the figure to trust on
a shared machine (throughput also depends on how much CPU the process was given).
"""

from __future__ import annotations

import argparse
import json
import sys

import trio


def child(engine: str, spec_json: str) -> None:
    import functools

    from livemesh.bench import livemesh_client
    from livemesh.bench.workload import WorkloadSpec
    from livemesh.transport import TransportOptions

    # (bench-only: the client builds its options itself, so its name for them is swapped)
    livemesh_client.TransportOptions = functools.partial(TransportOptions, engine=engine)  # type: ignore[misc]
    out = trio.run(livemesh_client.amain, WorkloadSpec.from_json(spec_json))
    print(json.dumps(out))


async def parent(args: argparse.Namespace) -> None:
    from livemesh.bench.runner import run_client
    from livemesh.bench.server import open_emulator_process
    from livemesh.bench.workload import WorkloadSpec

    flags = ["--connection-lifetime", str(args.lifetime), "--go-away-notice", str(args.lifetime / 3)]
    async with open_emulator_process(tls=args.tls, args=flags) as emu:
        spec = WorkloadSpec(
            url=emu.url,
            ca_file=emu.ca_file,
            sessions=args.sessions,
            duration_s=args.duration,
            workload=args.workload,
            lifetime_s=args.lifetime,
            go_away_notice_s=args.lifetime / 3,
            progress_interval_s=3600,
        )
        print(
            f"{args.workload}, {args.sessions} sessions, {args.duration:g} s, {'wss' if args.tls else 'ws'}"
        )
        print(
            f"{'engine':<16} {'turns/s':>8} {'msgs/s':>8} {'us/msg':>7} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'lost':>5} {'dup':>4} {'err':>4}"
        )
        engines = ["trio-websocket", "sansio"] + (["google-genai"] if args.tls else [])
        for _ in range(args.repeat):
            for engine in engines:
                if engine == "google-genai":  # the reference; the SDK only speaks wss with a key
                    r = (await run_client("genai", spec))["result"]
                else:
                    proc = await trio.run_process(
                        [sys.executable, __file__, "--child", engine, spec.to_json()],
                        capture_stdout=True,
                        check=True,
                    )
                    r = json.loads(proc.stdout.decode().strip().splitlines()[-1])["result"]
                msgs = r["messages_sent"] + r["messages_received"]
                lat = r["turn_latency_ms"]
                print(
                    f"{engine:<16} {r['turns'] / r['duration_s']:>8.0f} {msgs / r['duration_s']:>8.0f} "
                    f"{r['client_cpu_s'] / max(1, msgs) * 1e6:>7.0f} {lat['p50']:>7.1f} {lat['p99']:>7.1f} "
                    f"{r['lost']:>5} {r['duplicated']:>4} {r['errors']:>4}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--workload", default="text")
    parser.add_argument("--lifetime", type=float, default=1000.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    trio.run(parent, args)


if __name__ == "__main__":
    main()
