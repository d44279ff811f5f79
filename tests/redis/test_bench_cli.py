"""``python -m livemesh bench --workers N --redis URL --kill-one-at S``: the failover mode end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.redis.conftest import RedisServer


def test_bench_failover_mode_resumes_the_killed_workers_sessions(
    fresh_redis: RedisServer, tmp_path: Path
) -> None:
    out = tmp_path / "failover.json"
    cmd = [
        sys.executable, "-m", "livemesh", "bench",
        "--workers", "2", "--redis", fresh_redis.url,
        "--sessions", "6", "--duration", "4", "--kill-one-at", "1.5",
        "--json", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["ok"] is True
    assert report["killed_sessions"] >= 1
    assert report["fencing_ok"] == report["killed_sessions"]
    assert "verdict" in proc.stdout


def test_bench_failover_mode_needs_redis() -> None:
    cmd = [sys.executable, "-m", "livemesh", "bench", "--workers", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--redis URL" in proc.stderr
