"""``python -m livemesh serve`` as a process, and the context window."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

from livemesh import wire
from livemesh.emulator import EmulatorConfig, ServiceLimits, open_emulator
from tests.emulator.helpers import connect, sleep_until_closed, text_setup


async def test_serve_prints_url_first_and_exits_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    command = [
        sys.executable,
        "-m",
        "livemesh",
        "serve",
        "--port",
        "0",
        "--api-key",
        "k",
        "--tls",
        "--ca-out",
        str(ca),
    ]
    with trio.fail_after(20):
        process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some(1)
            assert chunk, "serve exited before printing its URL"
            line += chunk
        url = line.decode().strip().removeprefix("listening on ")
        assert url.startswith("wss://127.0.0.1:")
        path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=k"
        context = ssl.create_default_context(cafile=str(ca))
        async with open_websocket_url(url + path, ssl_context=context) as ws:
            await ws.send_message(wire.encode_client(wire.ClientMessage(setup=text_setup())).decode())
            assert wire.decode_server(await ws.get_message()).setup_complete is not None
        process.send_signal(signal.SIGINT)
        assert await process.wait() == 0


async def test_sliding_window_keeps_the_newest_turns() -> None:
    compression = wire.ContextWindowCompressionConfig(
        trigger_tokens=wire.Int64(40), sliding_window=wire.SlidingWindow(target_tokens=wire.Int64(20))
    )
    with trio.fail_after(5):
        async with (
            open_emulator() as emu,
            connect(emu, text_setup(context_window_compression=compression)) as c,
        ):
            for n in range(10):
                await c.ask(f"turn number {n}")
            kept = await c.ask_json("recall")
            assert 1 <= len(kept) < 10 and kept == [f"turn number {n}" for n in range(10 - len(kept), 10)]
            stats = await c.ask_json("stats")
            assert stats["compressions"] >= 1 and stats["turns"] == 10
            # what was cut is still accounted for: every turn consumed, once, in order
            assert stats["compressed_texts"] + stats["texts"] == [f"turn number {n}" for n in range(10)]


async def test_window_overflow_without_compression_ends_the_session() -> None:
    limits = ServiceLimits(context_window_default=50)
    with trio.fail_after(5):
        async with open_emulator(EmulatorConfig(limits=limits)) as emu, connect(emu, text_setup()) as c:
            await c.say("x" * 400)
            code, reason = await sleep_until_closed(c)
            assert code == 1007
            assert reason.startswith("The input token count (")
            assert reason.endswith("exceeds the maximum number of tokens allowed (50).")


def test_serve_refuses_an_out_of_range_value_with_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "livemesh", "serve", "--port", "0", "--drop-probability", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("livemesh serve: ") and "drop_probability" in done.stderr
    assert "Traceback" not in done.stderr and "listening" not in done.stdout
