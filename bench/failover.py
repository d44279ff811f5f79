"""Failover benchmark, standalone: ``python bench/failover.py --workers 3 --redis redis://127.0.0.1:6379``.

N worker processes share one emulator (served by this process), one Redis and one project
quota (each connection holds a lease; by default the limit equals --sessions, so takeovers wait
for the dead worker's leases to expire); worker 0 is
SIGKILLed ``--kill-one-at`` seconds in. Prints how many of its sessions the others resumed (each
exactly once, with a larger fencing token), and the turns lost and duplicated across all
sessions, read from the emulator's own record of every session's context. Exit status 0 only
if nothing was lost or duplicated and every session finished.

The same run is meant to be reachable as ``python -m livemesh bench --workers N --redis URL
--kill-one-at S`` (see :func:`livemesh.bench.failover.run_failover_bench`).
"""

from __future__ import annotations

import argparse
import json
import sys

import trio

from livemesh.bench.failover import render_report, run_failover_bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/failover.py", description=__doc__)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--redis", required=True, metavar="URL", help="redis://127.0.0.1:PORT/DB")
    parser.add_argument("--kill-one-at", type=float, default=3.0, metavar="S")
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--turns", type=int, default=20, help="numbered text turns per session")
    parser.add_argument("--turn-interval", type=float, default=0.25, metavar="S")
    parser.add_argument("--lease-ttl", type=float, default=3.0, metavar="S")
    parser.add_argument(
        "--quota-limit", type=int, default=None, help="fleet-wide session quota (default: --sessions)"
    )
    parser.add_argument("--json", dest="json_path", default=None, metavar="PATH")
    args = parser.parse_args(argv)
    report = trio.run(
        lambda: run_failover_bench(
            workers=args.workers,
            redis_url=args.redis,
            kill_one_at=args.kill_one_at,
            sessions=args.sessions,
            turns=args.turns,
            turn_interval_s=args.turn_interval,
            lease_ttl_s=args.lease_ttl,
            quota_limit=args.quota_limit,
        )
    )
    print(render_report(report))
    if args.json_path:
        with open(args.json_path, "w") as out:
            json.dump(report.as_json(), out, indent=2)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
