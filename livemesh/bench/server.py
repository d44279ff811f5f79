"""The emulator in its own process on a free loopback port, so client and server use both cores.

``python -m livemesh serve --port 0`` prints ``listening on ws://HOST:PORT`` (``wss://`` with
``--tls``) as its first line; :func:`open_emulator_process` waits for that line, yields the URL and,
when the block ends, interrupts the server (SIGINT: it exits cleanly on Ctrl-C) and kills it if it
has not gone within a grace period. With ``tls`` the emulator makes a throwaway CA (``--tls
--ca-out PATH``) whose PEM the clients trust; the file lives in a temporary directory removed with
the block.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final

import attrs
import trio

__all__ = ["EmulatorProcess", "StartupError", "emulator_args", "open_emulator_process", "process_cpu_s"]

_STARTUP_TIMEOUT_S: Final = 30.0
_STOP_GRACE_S: Final = 5.0
_LISTENING: Final = "listening on "


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of another process (Linux ``/proc``), None where unavailable.

    The bench reports the emulator's CPU next to the client's: if the server is saturated, the
    client's throughput says nothing about the client.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, ValueError, IndexError):
        return None


class StartupError(RuntimeError):
    """The emulator process exited or said something unexpected before listening."""


@attrs.frozen
class EmulatorProcess:
    url: str
    """``ws://127.0.0.1:PORT`` or ``wss://...``, without a path."""
    ca_file: str | None
    pid: int

    @property
    def http_url(self) -> str:
        return "http" + self.url[2:]


def emulator_args(
    *,
    lifetime_s: float | None = None,
    go_away_notice_s: float | None = None,
    handle_interval_s: float | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """``serve`` flags for the limits the bench shrinks (names from the emulator's CLI)."""
    args: list[str] = []
    if lifetime_s is not None:
        args += ["--connection-lifetime", f"{lifetime_s:g}"]
    if go_away_notice_s is not None:
        args += ["--go-away-notice", f"{go_away_notice_s:g}"]
    if handle_interval_s is not None:
        args += ["--resumption-update-interval", f"{handle_interval_s:g}"]
    return [*args, *extra]


async def _drain(stream: trio.abc.ReceiveStream, sink: list[bytes]) -> None:
    """Keep reading the server's output so a full pipe never blocks it; keep the tail for errors."""
    async for data in stream:
        sink.append(bytes(data))
        if len(sink) > 64:
            del sink[:32]


@asynccontextmanager
async def open_emulator_process(
    *,
    tls: bool = False,
    args: Sequence[str] = (),
    python: str = sys.executable,
) -> AsyncIterator[EmulatorProcess]:
    """Run ``python -m livemesh serve --host 127.0.0.1 --port 0 [--tls --ca-out F] *args``."""
    with tempfile.TemporaryDirectory(prefix="livemesh-bench-") as tmp:
        ca_file = os.path.join(tmp, "ca.pem") if tls else None
        command = [python, "-m", "livemesh", "serve", "--host", "127.0.0.1", "--port", "0"]
        if ca_file is not None:
            command += ["--tls", "--ca-out", ca_file]
        command += list(args)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        assert process.stdout is not None
        tail: list[bytes] = []
        try:
            url = await _read_url(process, tail)  # outside the nursery: a plain StartupError
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_drain, process.stdout, tail)
                yield EmulatorProcess(url=url, ca_file=ca_file, pid=process.pid)
                nursery.cancel_scope.cancel("bench finished")
        finally:
            await _stop(process)


async def _read_url(process: trio.Process, tail: list[bytes]) -> str:
    assert process.stdout is not None
    buffer = b""
    with trio.move_on_after(_STARTUP_TIMEOUT_S):
        while b"\n" not in buffer:
            data = await process.stdout.receive_some()
            if not data:
                break
            buffer += data
    first, _, rest = buffer.partition(b"\n")
    tail.append(rest)
    line = first.decode(errors="replace").strip()
    if not line.startswith(_LISTENING):
        raise StartupError(f"emulator did not start: {buffer.decode(errors='replace')[-2000:]!r}")
    url = line[len(_LISTENING) :].split()[0].rstrip("/")
    if not url.startswith(("ws://", "wss://")):
        raise StartupError(f"emulator printed an unexpected URL: {line!r}")
    return url


async def _stop(process: trio.Process) -> None:
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            try:
                process.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
            with trio.move_on_after(_STOP_GRACE_S):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()
