"""A client runner in its own process: the spec goes in on stdin, progress and the result come out.

Both clients run the same way (``python -m livemesh.bench.livemesh_client`` or
``... .genai_client``, the spec as one JSON document on stdin), so neither pays for the parent's
live display, each has its own CPU and RSS figures, and an asyncio client and a trio client never
share an interpreter. The spec holds the API key, so it never travels on a command line, which any
local user can read (``ps``, ``/proc/PID/cmdline``). The child writes one JSON object per line on
stdout: ``{"progress": {...}}`` every ``progress_interval_s`` and finally
``{"result": {...}, "details": {...}}``; its stderr goes to a temporary file whose tail is shown if
it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any, Final, TextIO

import trio

from livemesh.bench.workload import WorkloadSpec

__all__ = ["CLIENT_MODULES", "RunnerError", "emit", "read_spec", "run_client"]

CLIENT_MODULES: Final = {
    "livemesh": "livemesh.bench.livemesh_client",
    "genai": "livemesh.bench.genai_client",
}

_MAX_LINE: Final = 1 << 20


class RunnerError(RuntimeError):
    """The client process failed before reporting a result (its stderr tail is the message)."""


def emit(obj: dict[str, Any], out: TextIO | None = None) -> None:
    """Child side: one JSON line on stdout, flushed at once (the parent displays it live)."""
    stream = out or sys.stdout
    stream.write(json.dumps(obj, separators=(",", ":")) + "\n")
    stream.flush()


def read_spec(stream: TextIO | None = None) -> WorkloadSpec:
    """Child side: the spec the parent wrote on stdin (never argv: it holds the API key)."""
    return WorkloadSpec.from_json((stream or sys.stdin).read())


async def run_client(
    client: str,
    spec: WorkloadSpec,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    *,
    python: str = sys.executable,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``client`` (``livemesh`` | ``genai``) with ``spec``; its ``{"result", "details"}`` object."""
    command = [python, "-m", CLIENT_MODULES[client]]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    with tempfile.TemporaryFile() as errfile:
        process = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=errfile, stdin=subprocess.PIPE, env=env
        )
        final: dict[str, Any] | None = None
        try:
            assert process.stdin is not None and process.stdout is not None
            async with process.stdin:
                try:
                    await process.stdin.send_all(spec.to_json().encode())
                except trio.BrokenResourceError:
                    pass  # the child exited without reading it: its exit status says why, below
            buffer = b""
            async for data in process.stdout:
                buffer += data
                while b"\n" in buffer:
                    line, _, buffer = buffer.partition(b"\n")
                    obj = json.loads(line)
                    if "progress" in obj and on_progress is not None:
                        on_progress(obj["progress"])
                    if "result" in obj:
                        final = obj
                if len(buffer) > _MAX_LINE:
                    raise RunnerError(f"{client} runner wrote an oversized line")
            await process.wait()
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                if process.stdout is not None:
                    await process.stdout.aclose()
        if final is None or process.returncode != 0:
            errfile.seek(0)
            tail = errfile.read()[-4000:].decode(errors="replace")
            raise RunnerError(f"{client} runner exited with {process.returncode}:\n{tail}")
        return final
