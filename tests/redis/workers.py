"""Subprocess workers for the multi-process Redis tests: ``python -m tests.redis.workers MODE JSON``.

* ``claimants``: ``n`` concurrent tasks each take one slot of the project quota, mark it in a
  shared Redis counter (``INCR``, the highest value seen is the true concurrency), hold it briefly
  and give it back; prints ``{"granted", "max_seen"}``.
* ``hold``: takes ``n`` slots and prints ``{"held": n}``, then waits to be SIGKILLed.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import trio

from livemesh.redis import open_quota, open_redis


async def claimants(spec: dict[str, Any]) -> None:
    rng = random.Random(spec["seed"])
    async with open_redis(spec["url"], prefix=spec["prefix"]) as backend:
        counter = backend.key("test", "in-use")
        async with open_quota(
            backend, spec["project"], spec["limit"], lease_ttl_s=5.0, poll_s=spec["poll_s"], rng=rng
        ) as quota:
            granted = 0
            max_seen = 0

            async def one() -> None:
                nonlocal granted, max_seen
                async with quota.slot(timeout=60):
                    now = await backend.client.incr(counter)
                    max_seen = max(max_seen, now)
                    granted += 1
                    await trio.sleep(rng.uniform(0.002, 0.01))  # the "session" doing work
                    await backend.client.decr(counter)

            async with trio.open_nursery() as nursery:
                for _ in range(spec["n"]):
                    nursery.start_soon(one)
    print(json.dumps({"granted": granted, "max_seen": max_seen}), flush=True)


async def hold(spec: dict[str, Any]) -> None:
    async with open_redis(spec["url"], prefix=spec["prefix"]) as backend:
        async with open_quota(backend, spec["project"], spec["limit"], lease_ttl_s=spec["ttl_s"]) as quota:
            for _ in range(spec["n"]):
                await quota.acquire(timeout=10)
            print(json.dumps({"held": spec["n"]}), flush=True)
            await trio.sleep_forever()


def main() -> None:
    mode, spec = sys.argv[1], json.loads(sys.argv[2])
    trio.run({"claimants": claimants, "hold": hold}[mode], spec)


if __name__ == "__main__":
    main()
