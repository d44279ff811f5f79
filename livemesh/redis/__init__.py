"""livemesh past one machine: shared resumption handles, a per-project quota and failover on Redis.

Needs the ``redis`` extra (coredis, an anyio-based Redis client that runs under trio). Works with
Redis >= 6.2 or Valkey. Pieces, each usable alone:

* :class:`RedisHandleStore`: the pool's ``HandleStore`` on Redis (TTL, atomic monotonic saves,
  optional fencing);
* :func:`open_quota` / :class:`DistributedQuota`: per-project session leases with expiry,
  heartbeat and a fleet-wide FIFO queue with timeouts; :func:`quota_connect` plugs it into
  ``open_pool(connect=...)``;
* :func:`open_ownership` / :class:`Ownership`: one owner per conversation (lease + fencing token),
  orphan discovery and takeover after a worker dies;
* the ``--workers N --redis URL --kill-one-at S`` benchmark of all three is
  :func:`livemesh.bench.failover.run_failover_bench` (benchmark tooling: it serves the emulator).

A worker, in full:

```python
async with open_redis("redis://10.0.0.5:6379/0") as backend, \\
           open_ownership(backend, lease_ttl_s=10) as owners, \\
           open_quota(backend, project="my-project", limit=100) as quota:
    store = RedisHandleStore(backend, fence=owners.token)
    async with open_pool(handle_store=store, connect=quota_connect(quota, timeout=30)) as pool:
        async with owners.own(conversation_id):          # claim; released at the end
            async with pool.session(config, conversation_id=conversation_id) as s:
                ...                                       # resumes from the stored handle
```

Failure model: a Redis outage raises :class:`RedisUnavailableError` from the operation that needed
Redis (after a bounded retry with backoff); heartbeats log it and try again, and live sessions
keep running on their WebSocket connections. Every script is idempotent, so retries are safe.

## Redis Cluster

Build the coredis cluster client yourself and wrap it (``decode_responses=True`` is required):

```python
client = coredis.RedisCluster.from_url("redis://node-a:7000", decode_responses=True)
async with client:
    backend = RedisBackend(client, prefix="livemesh")
```

Keys carry hash tags so each script touches one slot: a project's quota lives in the slot of
``{quota:PROJECT}``; handles, owners, fencing counters and state of one prefix live in the slot of
``{fleet}``. The single fleet slot is deliberate: a fenced handle save must read the owner's token
and write the handle atomically, and a worker renews all its leases in one script. One shard
easily carries this (a few small scripts per session per minute); to spread a very large fleet
over shards, run several prefixes (e.g. one per region or tenant).

## Redis Sentinel

Ask Sentinel for the primary and wrap that client; coredis follows failovers (a ``READONLY`` or
connection error during the switch is retried by :class:`RedisBackend` within its budget):

```python
sentinel = coredis.sentinel.Sentinel([("sentinel-1", 26379), ("sentinel-2", 26379)],
                                     decode_responses=True)
async with sentinel:
    backend = RedisBackend(sentinel.primary_for("livemesh"))
```

Leases are judged by Redis's clock (``TIME`` inside scripts), never a worker's. Asynchronous
replication means a Sentinel failover can lose the last writes: a lost lease is reinstated by its
holder's next heartbeat (if the project has room), a lost handle by the session's next handle, and
fencing tokens are raised back to the live owner's token, so they never go backwards. Use
``appendonly yes`` on the primary if losing the newest handle across a restart matters to you.
"""

from livemesh.redis._client import RedisBackend as RedisBackend
from livemesh.redis._client import RedisRetry as RedisRetry
from livemesh.redis._client import open_redis as open_redis
from livemesh.redis.errors import OwnershipError as OwnershipError
from livemesh.redis.errors import OwnershipLostError as OwnershipLostError
from livemesh.redis.errors import QuotaLostError as QuotaLostError
from livemesh.redis.errors import QuotaTimeoutError as QuotaTimeoutError
from livemesh.redis.errors import RedisError as RedisError
from livemesh.redis.errors import RedisUnavailableError as RedisUnavailableError
from livemesh.redis.handles import RedisHandleStore as RedisHandleStore
from livemesh.redis.ownership import Claim as Claim
from livemesh.redis.ownership import Ownership as Ownership
from livemesh.redis.ownership import open_ownership as open_ownership
from livemesh.redis.quota import DistributedQuota as DistributedQuota
from livemesh.redis.quota import QuotaLease as QuotaLease
from livemesh.redis.quota import open_quota as open_quota
from livemesh.redis.quota import quota_connect as quota_connect

__all__ = [
    "Claim",
    "DistributedQuota",
    "Ownership",
    "OwnershipError",
    "OwnershipLostError",
    "QuotaLease",
    "QuotaLostError",
    "QuotaTimeoutError",
    "RedisBackend",
    "RedisError",
    "RedisHandleStore",
    "RedisRetry",
    "RedisUnavailableError",
    "open_ownership",
    "open_quota",
    "open_redis",
    "quota_connect",
]
