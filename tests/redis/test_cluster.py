"""The same scripts on Redis Cluster (one local node owning every slot, so CROSSSLOT is enforced):
every multi-key script keeps its keys in one hash slot."""

from __future__ import annotations

import subprocess

import coredis
import trio

from livemesh.pool.handles import StoredHandle
from livemesh.redis import RedisBackend, RedisHandleStore, open_ownership, open_quota
from tests.redis.conftest import RedisServer, redis_binary
from tests.redis.helpers import eventually


def _cluster_ok(server: RedisServer) -> bool:
    out = subprocess.run(
        [redis_binary("redis-cli"), "-p", str(server.port), "cluster", "info"],
        capture_output=True,
        timeout=10,
        check=True,
    )
    return b"cluster_state:ok" in out.stdout


async def test_handles_quota_and_ownership_run_on_a_cluster(cluster_redis: RedisServer) -> None:
    async def ready() -> bool:
        return await trio.to_thread.run_sync(_cluster_ok, cluster_redis)

    await eventually(ready, timeout=10, every=0.05)
    client = coredis.RedisCluster("127.0.0.1", cluster_redis.port, decode_responses=True)
    async with client:
        backend = RedisBackend(client, prefix="lm")
        with trio.fail_after(20):
            async with open_ownership(backend, worker_id="a", lease_ttl_s=0.5) as owners:
                store = RedisHandleStore(backend, fence=owners.token)
                claim = await owners.claim("conv")
                assert await store.save("conv", StoredHandle("h1", 1))
                assert not await store.save("conv", StoredHandle("h0", 0))
                await owners.write_state(claim, {"acked": 3})
                assert (await owners.read_state("conv"))["acked"] == "3"
                await owners.renew()
                assert await owners.owners_of(["conv", "x"]) == {
                    "conv": ("a", claim.token),
                    "x": (None, None),
                }
                assert owners.statistics().renewals >= 1 and owners.statistics().lost == 0
                assert await owners.release(claim, finished=False)
                assert "conv" in await owners.orphans()
            async with open_quota(backend, "proj", 1, lease_ttl_s=5, poll_s=0.01) as quota:
                async with quota.slot(timeout=1):
                    assert await quota.try_acquire() is None
                    await quota.renew()
                assert await quota.usage() == (0, 0)
            loaded = await store.load("conv")
            assert loaded is not None and loaded.seq == 1
