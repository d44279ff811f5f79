"""Every example runs as a newcomer would run it (``python examples/NAME.py``) against its
in-process emulator, and says what its docstring promises."""

from __future__ import annotations

import json
import os
import sys
import wave
from pathlib import Path

import trio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def run_example(name: str, *args: str) -> list[str]:
    """Run one example to completion; its stdout lines (stderr must be empty: no warnings)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    with trio.fail_after(30):
        done = await trio.run_process(
            [sys.executable, str(EXAMPLES / name), *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err
    assert err == ""
    return out.splitlines()


async def test_text_chat() -> None:
    lines = await run_example("text_chat.py")
    assert "You said: What is machine learning?" in lines
    recall = lines[lines.index("> recall") + 1]
    assert json.loads(recall) == [
        "What is machine learning?",
        "Give me one everyday example of it, in one sentence.",
    ]
    assert lines[-1] == "turns: 3"


async def test_audio_streaming_synthesized_input(tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    lines = await run_example("audio_streaming.py", "--fast", "--output", str(out))
    heard = next(line for line in lines if line.startswith("user (transcribed): [audio "))
    spoken = next(line for line in lines if line.startswith("model (transcript): "))
    assert spoken == "model (transcript): You said: " + heard.removeprefix("user (transcribed): ")
    with wave.open(str(out), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
        seconds = wav.getnframes() / 24_000
    # The emulator speaks len(text) / 15 characters per second.
    assert abs(seconds - len(spoken.removeprefix("model (transcript): ")) / 15) < 0.01
    assert f"reply: {seconds:.2f} s of 24000 Hz audio written to {out}" in lines


async def test_audio_streaming_reads_a_stereo_wav_at_another_rate(tmp_path: Path) -> None:
    """A 1 s stereo 8 kHz file: the first channel is sent as audio/pcm;rate=8000."""
    source = tmp_path / "in.wav"
    frames = bytearray()
    for i in range(8000):
        loud = 3000 if 800 <= i < 7200 and (i // 20) % 2 else -3000 if 800 <= i < 7200 else 0
        frames += loud.to_bytes(2, "little", signed=True) + (0).to_bytes(2, "little")
    with wave.open(str(source), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(frames))
    lines = await run_example(
        "audio_streaming.py", "--speed", "50", "--input", str(source), "--output", str(tmp_path / "o.wav")
    )
    assert f"input: {source} (1.00 s at 8000 Hz)" in lines
    heard = next(line for line in lines if line.startswith("user (transcribed): "))
    assert heard.startswith("user (transcribed): [audio ") and " bytes]" in heard


async def test_audio_streaming_refuses_8_bit_wav(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    with wave.open(str(source), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(bytes(800))
    with trio.fail_after(30):
        done = await trio.run_process(
            [sys.executable, str(EXAMPLES / "audio_streaming.py"), "--input", str(source)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 1
    assert b"need 16-bit PCM, got 8-bit" in done.stderr


async def test_session_resumption() -> None:
    lines = await run_example("session_resumption.py")
    assert lines[:2] == ["> My name is Alice.", "You said: My name is Alice."]
    assert "-- connections=3 rotations=1 drops=1" in lines
    recalls = [lines[i + 1] for i, line in enumerate(lines) if line == "> recall"]
    # Once after the planned move and the abrupt drop, once in a new session from the handle.
    assert [json.loads(r) for r in recalls] == [["My name is Alice."], ["My name is Alice."]]
    assert lines.index("-- a new session, resumed from the handle") < len(lines) - 2


async def test_function_calling_with_telemetry() -> None:
    lines = await run_example("function_calling.py")
    assert '  [tool] get_stock_price({"symbol": "AAPL"})' in lines
    assert 'get_stock_price returned {"currency": "USD", "price": 178.5, "symbol": "AAPL"}' in lines
    assert 'convert_currency returned {"amount": 164.22, "currency": "EUR"}' in lines
    assert 'get_stock_price returned {"error": "KeyError: \'NOPE\'"}' in lines
    telemetry = dict(part.split("=") for part in lines[-1].removeprefix("telemetry: ").split())
    assert telemetry["tool_calls"] == "3"
    assert telemetry["tool_errors"] == "1"
    assert telemetry["turns"] == "3"
    # get_stock_price sleeps 50 ms: the max latency covers it.
    assert float(telemetry["latency_max"].removesuffix("ms")) >= 50.0


async def test_real_without_a_key_says_so() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    with trio.fail_after(30):
        done = await trio.run_process(
            [sys.executable, str(EXAMPLES / "text_chat.py"), "--real"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )
    assert done.returncode == 1
    assert done.stderr.decode().strip() == "--real needs GEMINI_API_KEY in the environment"


def test_examples_are_all_tested() -> None:
    tested = {"text_chat.py", "audio_streaming.py", "session_resumption.py", "function_calling.py"}
    tested.add("web_voice.py")  # an asyncio server and a page: tests/examples/test_web_voice.py
    assert {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")} == tested
