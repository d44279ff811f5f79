"""A pool's queue and quota backoffs, observed through its probe against the in-process emulator."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.errors import QuotaError
from livemesh.pool import open_pool
from livemesh.telemetry import names as n
from tests.session.conftest import make_config
from tests.telemetry.conftest import Recorded, labels

POOL = labels(gen_ai__provider__name="gcp.gemini")  # a pool serves any model: no model label


async def test_sessions_waiting_for_admission_are_observed(recorded: Recorded) -> None:
    async with open_emulator(EmulatorConfig()) as emu, open_pool(max_sessions=1) as pool:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                ready, release, admitted = trio.Event(), trio.Event(), trio.Event()

                async def first() -> None:
                    async with pool.session(make_config(emu)) as session:
                        await session.ask("hello")
                        ready.set()
                        await release.wait()

                async def second() -> None:
                    async with pool.session(make_config(emu)):
                        admitted.set()

                nursery.start_soon(first)
                await ready.wait()
                nursery.start_soon(second)
                await trio.testing.wait_all_tasks_blocked()  # the second waits for the first's slot
                assert pool.metrics().queued == 1
                assert recorded.metrics()[n.SESSIONS_QUEUED] == {POOL: 1}
                release.set()
                await admitted.wait()
            assert recorded.metrics()[n.SESSIONS_QUEUED] == {POOL: 0}
    # The pool closed: its queue is no longer observed.
    assert n.SESSIONS_QUEUED not in recorded.metrics()


async def test_a_quota_refusal_is_a_backoff(recorded: Recorded) -> None:
    async with open_emulator(EmulatorConfig(max_concurrent_per_key=1)) as emu:
        async with open_pool(max_sessions=2, quota_backoff_s=(0.01, 0.02)) as pool:
            with trio.fail_after(10):
                async with pool.session(make_config(emu)):
                    with pytest.raises(QuotaError):
                        async with pool.session(make_config(emu)):
                            pass  # pragma: no cover
    metrics = recorded.metrics()
    assert metrics[n.QUOTA_BACKOFFS] == {POOL: 1}
    model = {"gen_ai__provider__name": "gcp.gemini", "gen_ai__request__model": make_config(emu).model}
    assert metrics[n.SESSION_CLOSES] == {
        labels(**model, livemesh__engine="sansio"): 1,
        labels(**model, livemesh__engine="sansio", error__type="QuotaError"): 1,
    }
