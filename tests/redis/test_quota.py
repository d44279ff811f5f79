"""The distributed quota against a real Redis: never exceeded across processes, FIFO, timeouts,
slots of a SIGKILLed worker coming back within the lease expiry, the pool's connect wrapper."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from livemesh.auth import ApiKey
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.errors import ConfigError, QuotaError
from livemesh.redis import QuotaTimeoutError, RedisBackend, open_quota
from livemesh.redis.quota import DistributedQuota, quota_connect
from livemesh.session.config import RetryPolicy, SessionConfig
from tests.redis.conftest import RedisServer

ROOT = Path(__file__).resolve().parents[2]


async def _spawn(mode: str, spec: dict[str, Any]) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.redis.workers", mode, json.dumps(spec)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def _read_line(process: trio.Process) -> dict[str, Any]:
    assert process.stdout is not None
    buffer = b""
    while b"\n" not in buffer:
        chunk = await process.stdout.receive_some()
        assert chunk, f"worker exited early ({process.returncode})"
        buffer += chunk
    result: dict[str, Any] = json.loads(buffer.split(b"\n", 1)[0])
    return result


async def test_never_exceeded_by_200_claimants_in_4_processes(redis_server: RedisServer, prefix: str) -> None:
    limit = 5
    results: list[dict[str, Any]] = []
    with trio.fail_after(45):
        processes = [
            await _spawn(
                "claimants",
                {
                    "url": redis_server.url,
                    "prefix": prefix,
                    "project": "p",
                    "limit": limit,
                    "n": 50,
                    "seed": i,
                    "poll_s": 0.05,
                },
            )
            for i in range(4)
        ]
        try:
            for process in processes:
                results.append(await _read_line(process))
                assert await process.wait() == 0
        finally:
            for process in processes:
                if process.returncode is None:
                    process.kill()
    assert sum(r["granted"] for r in results) == 200
    assert max(r["max_seen"] for r in results) == limit  # reached, never exceeded


async def test_waiters_are_served_in_arrival_order_and_time_out_with_their_position(
    backend: RedisBackend,
) -> None:
    async with open_quota(backend, "fifo", 1, lease_ttl_s=5, poll_s=0.01) as quota:
        first = await quota.acquire(timeout=1)
        assert await quota.try_acquire() is None
        order: list[int] = []
        queued: list[trio.Event] = [trio.Event() for _ in range(5)]

        async def waiter(i: int) -> None:
            async with quota.slot(timeout=20):
                order.append(i)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(waiter, i)
                    while (await quota.usage())[1] < i + 1:  # noqa: ASYNC110 (queued in Redis)
                        await trio.sleep(0.005)
                    queued[i].set()
                with pytest.raises(QuotaTimeoutError) as info:
                    await quota.acquire(timeout=0.2)
                assert info.value.position == 5 and info.value.limit == 1
                await quota.release(first)
        assert order == [0, 1, 2, 3, 4]
        assert await quota.usage() == (0, 0)  # every lease released, the timed-out ticket withdrawn


async def test_a_killed_workers_slots_return_within_the_lease_expiry(
    redis_server: RedisServer, backend: RedisBackend
) -> None:
    ttl = 1.0
    spec = {
        "url": redis_server.url,
        "prefix": backend.prefix,
        "project": "k",
        "limit": 3,
        "n": 3,
        "ttl_s": ttl,
    }
    async with open_quota(backend, "k", 3, lease_ttl_s=5, poll_s=0.02) as quota:
        with trio.fail_after(20):
            process = await _spawn("hold", spec)
            try:
                assert await _read_line(process) == {"held": 3}
                assert await quota.try_acquire() is None  # full while the worker lives
                process.send_signal(signal.SIGKILL)
                killed_at = trio.current_time()
                await process.wait()
                lease = await quota.acquire(timeout=ttl + 2)
                waited = trio.current_time() - killed_at
            finally:
                if process.returncode is None:
                    process.kill()
        assert waited <= ttl + 0.5, waited
        await quota.release(lease)


async def test_quota_connect_holds_a_lease_for_each_connection(backend: RedisBackend) -> None:
    opened: list[int] = []

    def fake_connect(config: Any, on_handle: Any, rng: Any) -> Any:
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def cm() -> Any:
            opened.append((await quota.usage())[0])
            yield "session"

        return cm()

    async with open_quota(backend, "wrap", 2, lease_ttl_s=5) as quota:
        connect = quota_connect(quota, fake_connect, timeout=0.2)
        async with connect(None, None, None) as first, connect(None, None, None) as second:  # type: ignore[arg-type]
            assert (first, second) == ("session", "session")
            with pytest.raises(QuotaTimeoutError):
                async with connect(None, None, None):  # type: ignore[arg-type]
                    pass
        assert opened == [1, 2]
        assert await quota.usage() == (0, 0)


async def test_a_service_quota_refusal_pauses_grants_fleet_wide(backend: RedisBackend) -> None:
    """The limit is set too high (2) for the service (1 per key): the refused connection pauses the
    project's grants for every worker, although Redis still counts a free slot."""
    config = SessionConfig(
        model="gemini-2.0-flash-live-001",
        auth=ApiKey("k"),
        base_url="",
        generation_config={"response_modalities": ["TEXT"]},
        retry=RetryPolicy(max_attempts=1),
    )
    async with open_emulator(EmulatorConfig(max_concurrent_per_key=1)) as emu:
        config = config.evolve(base_url=emu.url)
        async with open_quota(backend, "svc", 2, lease_ttl_s=5, refusal_pause_s=(0.5, 5.0)) as quota:
            connect = quota_connect(quota, timeout=1)
            with trio.fail_after(15):
                async with connect(config, None, random.Random(1)) as first:
                    assert await first.ask("hello") == "You said: hello"
                    with pytest.raises(QuotaError):
                        async with connect(config, None, random.Random(2)):
                            pass
                    assert await quota.try_acquire() is None  # paused, though a slot is free
                    assert await backend.client.pttl(backend.key("quota:svc", "pause")) > 0
                    other = await quota.acquire(timeout=3)  # granted once the pause ran out
                    await quota.release(other)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"project": ""}, "project must be a non-empty string without braces"),
        ({"project": "a{b}"}, "without braces"),  # it is the keys' Cluster hash tag
        ({"project": "a}"}, "without braces"),
        ({"limit": 0}, "limit must be an int >= 1, not 0"),
        ({"limit": True}, "limit must be an int >= 1, not True"),
        ({"lease_ttl_s": 0}, "lease_ttl_s must be a finite number of seconds >= 0.001, not 0"),
        ({"poll_s": float("inf")}, "poll_s must be"),
        ({"waiter_ttl_s": 0}, "waiter_ttl_s must be a finite number of seconds >= 0.001, not 0"),
        ({"waiter_ttl_s": -2.0}, "waiter_ttl_s must be"),
        ({"refusal_pause_s": (-1.0, 60.0)}, r"refusal_pause_s\[0\] must be"),
        ({"refusal_pause_s": (0.0001, 60.0)}, r"refusal_pause_s\[0\] must be"),  # 0 ms in Redis
        ({"refusal_pause_s": (1.0, float("nan"))}, r"refusal_pause_s\[1\] must be"),
        ({"refusal_pause_s": (60.0, 1.0)}, "first <= longest"),
        ({"refusal_pause_s": (1.0,)}, r"a \(first, longest\) pair"),
    ],
)
async def test_bad_quota_settings_are_config_errors_before_anything_is_sent(
    backend: RedisBackend, settings: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"project": "p", "limit": 1, **settings}
    with pytest.raises(ConfigError, match=message):
        DistributedQuota(backend, **arguments)
    with pytest.raises(ConfigError, match=message):
        async with open_quota(backend, **arguments):
            raise AssertionError("the block must not run")
    assert await backend.client.keys(f"{backend.prefix}:*") == set()
