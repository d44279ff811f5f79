"""Ctrl-C (a real SIGINT) while livemesh.aio blocks are open: under ``asyncio.run`` asyncio
cancels the main task and the blocks unwind; on a bare loop (default SIGINT handler) trio's
guest run takes it, ends, and the loop stops with ``KeyboardInterrupt``. Either way no guest
run is left and nothing is printed to stderr."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import asyncio, os, signal, sys
import livemesh.aio
from livemesh.aio import guest

# as started from a terminal (a parent started in the background may pass SIGINT on ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)

async def main():
    async with livemesh.aio.open_emulator() as emu:
        async with livemesh.aio.open_session(
            model="gemini-live-2.5-flash-preview", auth="k", base_url=emu.url, response_modalities=["TEXT"]
        ) as session:
            print(await session.ask("hi"), flush=True)
            asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGINT)
            try:
                await asyncio.sleep(3600)
            finally:
                print("body unwinding", flush=True)

try:
    if sys.argv[1] == "asyncio.run":
        asyncio.run(main())
    else:
        asyncio.new_event_loop().run_until_complete(main())
except KeyboardInterrupt:
    print("KeyboardInterrupt; guest runs left:", len(guest._RUNS), flush=True)
"""


@pytest.mark.parametrize("how", ["asyncio.run", "bare loop"])
def test_ctrl_c_unwinds_the_blocks_and_ends_the_guest_run(how: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, how], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stderr == ""
    assert done.stdout.splitlines() == [
        "You said: hi",
        "body unwinding",
        "KeyboardInterrupt; guest runs left: 0",
    ]
