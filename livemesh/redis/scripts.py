"""The Lua scripts behind handles, quota and ownership: each one decision, atomic in Redis.

Rules every script follows (why they are safe to retry and to run on a Cluster):

* **Redis's clock, not the caller's**: ``now`` comes from ``TIME`` inside the script, so workers
  with skewed clocks agree on which lease expired. (Redis >= 5 replicates script effects, which
  makes ``TIME`` in a writing script legal.)
* **Idempotent**: a claim, a lease or a queue ticket carries a client-generated id; running the
  same call twice (a retry after the reply was lost with a dropped connection) returns the same
  result instead of taking a second slot or a second token.
* **One slot**: all KEYS of one call share a hash tag (``prefix:{tag}:...``), as Redis Cluster
  requires for multi-key scripts.

Numbers travel as strings (Redis truncates Lua numbers to integers on the way out).
"""

from __future__ import annotations

__all__ = [
    "HANDLE_SAVE",
    "OWN_CLAIM",
    "OWN_ORPHANS",
    "OWN_OWNERS",
    "OWN_RELEASE",
    "OWN_RENEW",
    "OWN_WRITE_STATE",
    "QUOTA_ACQUIRE",
    "QUOTA_PAUSE",
    "QUOTA_RELEASE",
    "QUOTA_RENEW",
]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

HANDLE_SAVE = (
    _NOW
    + """
-- KEYS: handle hash, owner hash. ARGV: handle, seq, ttl_ms, token ('' = unfenced).
-- Returns 1 stored, 0 refused (an equal or newer handle is stored), -1 fenced out.
if ARGV[4] ~= '' then
  if redis.call('HGET', KEYS[2], 'token') ~= ARGV[4] then return -1 end
end
local cur = redis.call('HMGET', KEYS[1], 'seq', 'h')
local seq = tonumber(ARGV[2])
if cur[1] then
  local stored = tonumber(cur[1])
  if seq < stored then return 0 end
  if seq == stored and cur[2] ~= ARGV[1] then return 0 end
end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'seq', ARGV[2], 'at', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
)
"""Store a handle unless an equal or newer one is stored, or the writer's fencing token is stale
(:meth:`RedisHandleStore.save <livemesh.redis.RedisHandleStore.save>`)."""

QUOTA_ACQUIRE = (
    _NOW
    + """
-- KEYS: leases zset (id -> expiry), queue zset (id -> ticket number), alive zset (id -> waiter
-- expiry), ticket counter, pause flag. ARGV: limit, lease_ttl_ms, id, waiter_ttl_ms, mode
-- ('try' | 'wait'). While the pause flag lives (the service refused for quota), no new lease is
-- granted: the project holds no free slot.
-- Returns {1, 0} granted, {0, rank} queued at rank (0 = next), {0, -1} refused (mode 'try').
local limit = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[5]) == 1 then limit = 0 end
local id = ARGV[3]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, gone in ipairs(dead) do
  redis.call('ZREM', KEYS[2], gone)
  redis.call('ZREM', KEYS[3], gone)
end
if redis.call('ZSCORE', KEYS[1], id) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
  return {1, 0}
end
local free = limit - redis.call('ZCARD', KEYS[1])
local rank = redis.call('ZRANK', KEYS[2], id)
if not rank then
  if free > 0 and redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
    return {1, 0}
  end
  if ARGV[5] ~= 'wait' then return {0, -1} end
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), id)
  rank = redis.call('ZCARD', KEYS[2]) - 1
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), id)
if rank < free then
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
  return {1, 0}
end
return {0, rank}
"""
)
"""Sweep expired leases and dead waiters, then grant a slot or queue the caller in arrival order
(:meth:`DistributedQuota.acquire <livemesh.redis.DistributedQuota.acquire>`)."""

QUOTA_PAUSE = """
-- KEYS: pause flag, strike counter. ARGV: base_ms, max_ms. The service refused a session for
-- quota: pause new grants fleet-wide for min(max, base * 2^(strikes-1)) ms (never shortening a
-- longer pause already set). Returns the pause in ms.
local strikes = redis.call('INCR', KEYS[2])
local pause = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) * 2 ^ (strikes - 1))
redis.call('PEXPIRE', KEYS[2], math.floor(tonumber(ARGV[2]) * 4))
if redis.call('PTTL', KEYS[1]) < pause then
  redis.call('SET', KEYS[1], '1', 'PX', math.floor(pause))
end
return math.floor(pause)
"""
"""Pause the project's new grants fleet-wide after the service refused a session for quota,
doubling per consecutive refusal (:meth:`DistributedQuota.note_refusal
<livemesh.redis.DistributedQuota.note_refusal>`)."""

QUOTA_RENEW = (
    _NOW
    + """
-- KEYS: leases zset. ARGV: limit, lease_ttl_ms, id1, id2, ...
-- Per id: 1 extended, 2 reinstated (lost with a Redis restart, room left), 0 lost (no room).
local limit = tonumber(ARGV[1])
local exp = now + tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], exp, ARGV[i])
    out[#out + 1] = 1
  elseif redis.call('ZCARD', KEYS[1]) < limit then
    redis.call('ZADD', KEYS[1], exp, ARGV[i])
    out[#out + 1] = 2
  else
    out[#out + 1] = 0
  end
end
return out
"""
)
"""Extend a process's leases, reinstating those Redis lost while the project has room (the quota's
heartbeat)."""

QUOTA_RELEASE = """
-- KEYS: leases, queue, alive. ARGV: id. Frees a lease or withdraws a ticket (either or both).
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
"""
"""Free a lease or withdraw a queue ticket (both are safe to repeat)."""

OWN_CLAIM = (
    _NOW
    + """
-- KEYS: owner hash, fence counter, live zset. ARGV: worker, ttl_ms, grace_ms, claim id,
-- conversation id, fence_ttl_ms.
-- Returns {1, token, previous owner or ''} claimed, {0, token, owner, expiry} held by another.
-- The previous owner is stored with the claim, so a retry of the same claim (its reply was lost)
-- gets the same answer as the first run.
local o = redis.call('HMGET', KEYS[1], 'owner', 'token', 'exp', 'claim', 'prev')
if o[1] then
  if o[4] == ARGV[4] then return {1, o[2], o[5] or ''} end
  if tonumber(o[3]) + tonumber(ARGV[3]) > now then return {0, o[2], o[1], o[3]} end
end
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
local exp = now + tonumber(ARGV[2])
local prev = o[1] or ''
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', token, 'exp', exp, 'claim', ARGV[4], 'prev', prev)
redis.call('ZADD', KEYS[3], exp, ARGV[5])
return {1, tostring(token), prev}
"""
)
"""Claim a conversation that is free or whose lease expired, raising its fencing token
(:meth:`Ownership.claim <livemesh.redis.Ownership.claim>`)."""

OWN_RENEW = (
    _NOW
    + """
-- KEYS: live zset, then n owner hashes, then n fence counters. ARGV: worker, ttl_ms, fence_ttl_ms,
-- then n pairs (conversation id, token).
-- Per conversation: 1 renewed, 2 reinstated (its entry vanished with a Redis restart and no newer
-- token was issued), 0 lost (another worker holds a newer token).
local n = (#KEYS - 1) / 2
local exp = now + tonumber(ARGV[2])
local out = {}
for i = 1, n do
  local conv, token = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local o = redis.call('HMGET', KEYS[1 + i], 'owner', 'token')
  local status = 0
  if o[1] == ARGV[1] and o[2] == token then
    redis.call('HSET', KEYS[1 + i], 'exp', exp)
    status = 1
  elseif not o[1] and tonumber(redis.call('GET', KEYS[1 + n + i]) or '0') <= tonumber(token) then
    redis.call('SET', KEYS[1 + n + i], token, 'PX', ARGV[3])
    redis.call('HSET', KEYS[1 + i], 'owner', ARGV[1], 'token', token, 'exp', exp, 'claim', 'reinstated')
    status = 2
  end
  if status > 0 then redis.call('ZADD', KEYS[1], exp, conv) end
  out[#out + 1] = status
end
return out
"""
)
"""Renew a worker's leases, reinstating entries a Redis restart lost unless a newer token was issued
(the ownership heartbeat)."""

OWN_RELEASE = """
-- KEYS: owner hash, live zset, state hash. ARGV: token, conversation id, finished ('1' | '0').
-- Only the current token may release. Finished: off the live set, state dropped. Otherwise a
-- handover: listed with score 0, an orphan for the next scan.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('DEL', KEYS[3])
else
  redis.call('ZADD', KEYS[2], 0, ARGV[2])
end
return 1
"""
"""Give a conversation up if the token is still current: finished, or handed over as an orphan."""

OWN_ORPHANS = (
    _NOW
    + """
-- KEYS: live zset. ARGV: grace_ms, max count. Conversations whose owner's lease ran out.
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, tonumber(ARGV[2]))
"""
)
"""Conversations whose owner's lease ran out at least ``grace_ms`` ago, longest expired first."""

OWN_OWNERS = """
-- KEYS: owner hashes. Returns a flat list owner1, token1, owner2, token2, ... ('' when free):
-- one consistent snapshot of who owns what.
local out = {}
for i = 1, #KEYS do
  local o = redis.call('HMGET', KEYS[i], 'owner', 'token')
  out[#out + 1] = o[1] or ''
  out[#out + 1] = o[2] or ''
end
return out
"""
"""One consistent snapshot of the owner and token of many conversations."""

OWN_WRITE_STATE = """
-- KEYS: owner hash, state hash. ARGV: token, ttl_ms, field1, value1, ... Fenced: only the current
-- owner's token writes. Returns 1 written, 0 fenced out.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""
"""Write conversation state, fenced: only the current owner's token writes."""
