"""Redis restarting mid-run (killed, its data gone): a clear typed error while it is away, the
session keeps talking on its connection, and afterwards leases and handles come back."""

from __future__ import annotations

import json

import pytest
import trio

from livemesh import wire
from livemesh.auth import ApiKey
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.pool.pool import open_pool
from livemesh.redis import (
    RedisHandleStore,
    RedisRetry,
    RedisUnavailableError,
    open_ownership,
    open_quota,
    open_redis,
    quota_connect,
)
from livemesh.session.config import RetryPolicy, SessionConfig
from tests.redis.conftest import RedisServer
from tests.redis.helpers import eventually


async def test_redis_restart_mid_run_degrades_then_recovers_without_losing_the_session(
    fresh_redis: RedisServer,
) -> None:
    async with (
        open_emulator(EmulatorConfig(resumption_update_interval_s=0.2)) as emu,
        open_redis(fresh_redis.url, prefix="restart", retry=RedisRetry(budget_s=0.5)) as backend,
        open_ownership(backend, worker_id="w1", lease_ttl_s=1.0) as owners,
        open_quota(backend, "proj", 2, lease_ttl_s=1.0) as quota,
    ):
        store = RedisHandleStore(backend, fence=owners.token)
        config = SessionConfig(
            model="gemini-2.0-flash-live-001",
            auth=ApiKey("k"),
            base_url=emu.url,
            generation_config={"response_modalities": ["TEXT"]},
            session_resumption=wire.SessionResumptionConfig(),
            retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
        )
        with trio.fail_after(40):
            async with (
                open_pool(handle_store=store, connect=quota_connect(quota, timeout=5)) as pool,
                owners.own("conv") as claim,
                pool.session(config, conversation_id="conv") as session,
            ):
                assert await session.ask("turn 1") == "You said: turn 1"

                async def handle_saved() -> bool:
                    return await store.load("conv") is not None

                await eventually(handle_saved)

                fresh_redis.stop(kill=True)  # no persistence: every key is gone with it
                with pytest.raises(RedisUnavailableError) as info:
                    await store.load("conv")
                assert info.value.what == "handle load" and info.value.attempts >= 1
                # The session does not need Redis to talk: two turns while it is away.
                assert await session.ask("turn 2") == "You said: turn 2"
                assert await session.ask("turn 3") == "You said: turn 3"

                async def heartbeats_failed() -> bool:
                    return (
                        owners.statistics().heartbeat_failures > 0
                        and quota.statistics().heartbeat_failures > 0
                    )

                await eventually(heartbeats_failed)

                fresh_redis.start()

                async def reinstated() -> bool:
                    return owners.statistics().reinstated > 0 and quota.statistics().reinstated > 0

                await eventually(reinstated)  # the leases Redis lost are back, same token
                assert await owners.owner_of("conv") == ("w1", claim.token)
                assert await quota.usage() == (1, 0)

                assert await session.ask("turn 4") == "You said: turn 4"
                await eventually(handle_saved)  # the next handle reached the restarted Redis
                assert json.loads(await session.ask("recall")) == ["turn 1", "turn 2", "turn 3", "turn 4"]
                assert session.statistics().reconnects == 0  # never left its connection
                assert not claim.lost
