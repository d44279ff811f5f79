"""examples/web_voice.py: the asyncio backend, its token endpoint, and the page in a real browser.

The browser tests drive Debian's ``chromium`` with playwright (``executable_path``: no browser
download) and a fake microphone playing a WAV file. Without chromium or playwright they skip,
saying how to install them; with ``LIVEMESH_REQUIRE_BROWSER=1`` (CI: ``.ci/browser``) a missing
browser fails instead.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

import livemesh
import livemesh.aio
from livemesh.emulator import EmulatorConfig
from tests.aio.helpers import run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_voice", EXAMPLES / "web_voice.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


web_voice = load_example()

# Replies stream over 2 s in 20 chunks (so a second utterance lands while the first reply is
# still coming: a barge-in), spoken slowly (5 characters a second: the page has several seconds
# of reply queued when it is interrupted).
EMULATOR = EmulatorConfig(
    first_chunk_delay_s=0.05, chunk_interval_s=0.1, chunks_per_reply=20, speech_chars_per_s=5
)


def speech_like(seconds: float, rate: int) -> array.array[int]:
    """A voiced buzz in syllable-sized bursts (loud enough for the emulator's VAD)."""
    samples = array.array("h")
    for i in range(int(seconds * rate)):
        t = i / rate
        syllable = 0.25 + 0.75 * abs(math.sin(math.pi * 4 * t))
        voice = sum(math.sin(2 * math.pi * 140 * k * t) / k for k in range(1, 6))
        samples.append(int(6000 * syllable * voice))
    return samples


@contextlib.asynccontextmanager
async def serving(**app_options: Any) -> AsyncIterator[tuple[str, Any]]:
    """The example's app on a free port, in this loop; yields (base URL, the app)."""
    app = web_voice.create_app(**app_options)
    listener = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with httpx.AsyncClient() as client:  # the lifespan has run once a request is answered
            url = f"http://127.0.0.1:{listener.getsockname()[1]}"
            assert (await client.get(url + "/")).status_code == 200
        yield url, app
    finally:
        server.should_exit = True
        await task


# Runs a script as a terminal would: Ctrl-C raises KeyboardInterrupt (a parent started in the
# background, as a CI step may be, passes SIGINT on ignored).
AS_FROM_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def test_web_voice_runs_as_a_user_runs_it() -> None:
    """``python examples/web_voice.py --port 0``: serves the page and its files, mints tokens, and
    stops on Ctrl-C with exit status 130 and nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    proc = subprocess.Popen(
        [sys.executable, "-c", AS_FROM_A_TERMINAL, str(EXAMPLES / "web_voice.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:") and line.rstrip().endswith("(the emulator)")
        url = line.split()[2]
        with httpx.Client(base_url=url, timeout=30) as client:
            page = client.get("/")
            assert page.status_code == 200 and '<script type="module" src="/static/app.js">' in page.text
            worklet = client.get("/static/pcm-recorder.js")
            assert worklet.status_code == 200 and 'registerProcessor("pcm-recorder"' in worklet.text
            minted = client.post("/api/token").json()
            assert minted["token"].startswith("auth_tokens/") and minted["token"] not in minted["url"]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err == ""


def test_the_relay_carries_a_conversation_with_a_barge_in() -> None:
    """The backend's protocol, spoken by a Python client instead of a page: 16 kHz PCM up, 24 kHz
    PCM and events down; the second utterance interrupts the first reply; every byte sent was
    consumed by the emulator's context."""
    chunk = 640  # 40 ms at 16 kHz
    speech = speech_like(1.0, 16_000).tobytes()
    silence = bytes(2 * 16_000)  # 1 s: the VAD ends the utterance after 0.5 s

    async def say(ws: Any, pcm: bytes) -> int:
        for offset in range(0, len(pcm), 2 * chunk):
            await ws.send(pcm[offset : offset + 2 * chunk])
        return len(pcm)

    async def main() -> None:
        async with serving(emulator=EMULATOR) as (url, app):
            backend = app.state.backend
            sent = 0
            events: list[dict[str, Any]] = []
            reply_audio = 0
            async with websockets.connect(url.replace("http", "ws") + "/ws/voice") as ws:
                assert json.loads(await ws.recv())["type"] == "ready"
                sent += await say(ws, speech + silence)
                while True:  # until the reply's first audio: the model is speaking
                    frame = await ws.recv()
                    if isinstance(frame, bytes):
                        reply_audio += len(frame)
                        break
                    events.append(json.loads(frame))
                sent += await say(ws, speech + silence)  # speak over it
                while sum(e["type"] == "turn_complete" for e in events) < 2:
                    frame = await ws.recv()
                    if isinstance(frame, bytes):
                        reply_audio += len(frame)
                    else:
                        events.append(json.loads(frame))
                await ws.send(json.dumps({"type": "stop"}))
            await backend.finished.wait()
            await livemesh.aio.run_trio(backend.emulator.wait_idle)
            stats = backend.emulator.stats(backend.conversations[0])
        kinds = [e["type"] for e in events]
        assert kinds[0] == "input_transcript" and events[0]["text"].startswith("[audio 1.")
        assert kinds.index("interrupted") < kinds.index("turn_complete")  # the first reply was cut
        assert reply_audio > 0 and "output_transcript" in kinds
        assert stats.audio_bytes == sent and stats.turns == 2

    run(main, timeout=60)


def test_the_token_endpoint_mints_one_use_tokens_locked_to_the_config() -> None:
    async def main() -> None:
        async with serving(emulator=EMULATOR) as (url, app):
            async with httpx.AsyncClient(base_url=url) as client:
                reply = await client.post("/api/token")
            assert reply.headers["cache-control"] == "no-store"
            minted = reply.json()
            token = livemesh.EphemeralToken(minted["token"])
            emu = app.state.backend.emulator
            # The client asks for no transcription; the token locks the backend's configuration
            # (AUDIO answers with their transcription), so the transcript arrives anyway.
            options = {"model": minted["model"].removeprefix("models/"), "base_url": emu.url}
            async with livemesh.aio.open_session(**options, auth=token) as s:
                await s.send_client_content("hello")
                turn = await s.receive_turn()
                assert turn.audio and turn.output_transcript == "You said: hello" and not turn.text
            with pytest.raises(livemesh.AuthError):  # one use
                async with livemesh.aio.open_session(**options, auth=token):
                    pytest.fail("a used token opened a second session")

    run(main)


# ----------------------------------------------------------------------------- in a real browser

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # root, as in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def browser_or_skip() -> str:
    """The chromium binary, or skip (fail under LIVEMESH_REQUIRE_BROWSER=1) saying how to get it."""
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("python -m pip install -e '.[browser]'")
    chromium = shutil.which("chromium")
    if chromium is None:
        missing.append("apt-get install -y chromium")
    if missing:
        message = "the browser test needs Debian's chromium and playwright: " + " && ".join(missing)
        if os.environ.get("LIVEMESH_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    assert chromium is not None
    return chromium


def fake_microphone(path: Path) -> Path:
    """A WAV the fake microphone loops: 1 s of speech-like sound, then 2 s of silence. Each
    utterance ends a turn; the next one starts while the slow reply is still playing."""
    rate = 48_000
    samples = speech_like(1.0, rate)
    samples.extend(array.array("h", bytes(2 * 2 * rate)))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return path


@pytest.mark.parametrize("mode", ["relay", "direct"])
def test_the_page_in_chromium(mode: str, tmp_path: Path) -> None:
    """The page captures the fake microphone, streams it (through the backend, or straight to
    the emulator with an ephemeral token), plays the reply, stops playing on ``interrupted``;
    the emulator's context consumed every byte the page sent."""
    chromium = browser_or_skip()
    from playwright.async_api import async_playwright

    wav = fake_microphone(tmp_path / "speech.wav")

    async def main() -> None:
        async with serving(emulator=EMULATOR) as (url, app), async_playwright() as playwright:
            backend = app.state.backend
            browser = await playwright.chromium.launch_persistent_context(
                tmp_path / "profile",  # a fresh --user-data-dir
                executable_path=chromium,
                args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}"],
            )
            page = await browser.new_page()
            await page.goto(url + "/")
            await page.check(f"input[value={mode}]")
            await page.click("#start")
            # Until a reply was played to its end and a later one was cut off by the user.
            await page.wait_for_function(
                "window.voice.playedSeconds > 0 && window.voice.interruptions > 0", timeout=30_000
            )
            await page.click("#stop")
            await page.wait_for_function("window.voice.ended", timeout=10_000)
            voice = await page.evaluate("window.voice")
            await browser.close()
            await livemesh.aio.run_trio(backend.emulator.wait_idle)
            (session_id,) = backend.emulator.session_ids()
            stats = backend.emulator.stats(session_id)
        assert voice["mode"] == mode and voice["errors"] == []
        assert voice["receivedBytes"] > 0 and voice["playedSeconds"] > 0  # reply audio, played
        assert voice["interruptions"] >= 1 and voice["stoppedSources"] >= 1  # barge-in cut playback
        assert stats.turns >= 2
        assert (stats.audio_bytes, stats.audio_chunks) == (voice["sentBytes"], voice["sentChunks"])

    run(main, timeout=90)
