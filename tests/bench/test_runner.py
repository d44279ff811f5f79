"""The process plumbing: failures of a child say so instead of hanging or passing silently."""

from __future__ import annotations

import io
import json
import shutil

import pytest
import trio

from livemesh.bench.runner import RunnerError, emit, run_client
from livemesh.bench.server import StartupError, open_emulator_process, process_cpu_s
from livemesh.bench.workload import WorkloadSpec

FALSE = shutil.which("false") or "/bin/false"


def test_emit_writes_one_json_line() -> None:
    out = io.StringIO()
    emit({"progress": {"turns": 3}}, out)
    emit({"result": {"client": "x"}}, out)
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [{"progress": {"turns": 3}}, {"result": {"client": "x"}}]


async def test_a_failed_client_process_is_a_runner_error() -> None:
    spec = WorkloadSpec(url="ws://127.0.0.1:9", sessions=1, duration_s=1)
    with trio.fail_after(20), pytest.raises(RunnerError, match="exited with 1"):
        await run_client("livemesh", spec, python=FALSE)


async def test_an_emulator_that_never_listens_is_a_startup_error() -> None:
    with trio.fail_after(20), pytest.raises(StartupError, match="did not start"):
        async with open_emulator_process(python=FALSE):
            pass  # pragma: no cover - never reached


def test_cpu_of_a_process() -> None:
    import os

    cpu = process_cpu_s(os.getpid())
    assert cpu is not None and cpu > 0
    assert process_cpu_s(2**22 + 12345) is None  # no such process
