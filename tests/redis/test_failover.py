"""A SIGKILLed worker's sessions resume in other worker processes, exactly once, context intact.

Runs the failover benchmark small: 2 worker processes, the emulator served by this test. The
report is computed from Redis (who owned what when the worker died, the fencing tokens) and
from the emulator's own record of each session's context (``stats``: the user turns in order).
"""

from __future__ import annotations

from livemesh.bench.failover import render_report, run_failover_bench
from livemesh.emulator import EmulatorConfig, open_emulator
from tests.redis.conftest import RedisServer


async def test_killed_workers_sessions_resume_elsewhere_with_context_intact(
    redis_server: RedisServer,
) -> None:
    async with open_emulator(EmulatorConfig(resumption_update_interval_s=1.0)) as emu:
        report = await run_failover_bench(
            workers=2,
            redis_url=redis_server.url,
            kill_one_at=1.0,
            sessions=6,
            turns=8,
            turn_interval_s=0.15,
            lease_ttl_s=1.0,
            timeout_s=50,
            emulator=emu,
        )
    summary = render_report(report)
    assert report.killed_sessions >= 1, summary  # it died holding live sessions
    assert report.resumed_by_others == report.killed_sessions, summary
    assert report.takeovers_exactly_once == report.killed_sessions, summary
    assert report.fencing_ok == report.killed_sessions, summary
    assert report.finished == report.sessions == report.contexts_intact, summary
    assert (report.lost_turns, report.duplicated_turns, report.errors) == (0, 0, 0), summary
    assert report.emulator_resumptions >= report.resumed_with_context >= 1, summary
    assert not report.unexpected_resumptions, summary
    assert 0 < report.max_quota_in_use <= report.quota_limit == report.sessions, summary
    assert report.ok
