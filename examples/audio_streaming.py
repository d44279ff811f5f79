"""Stream a WAV file to the model in real time and save the spoken reply (the seed's
``12_live_audio_streaming``).

    python examples/audio_streaming.py                       # synthesized input, emulator
    python examples/audio_streaming.py --input me.wav --output reply.wav
    python examples/audio_streaming.py --fast                # don't pace the audio (CI)
    python examples/audio_streaming.py --real --input me.wav # the Gemini Live API

Input: a 16-bit PCM WAV at any rate (16 kHz is native; other rates are sent as
``audio/pcm;rate=N``); stereo is mixed down to its first channel. Without ``--input`` the example
synthesizes 1.5 s of a speech-like signal (a voiced buzz in syllable-sized bursts). Output: the
model's 24 kHz 16-bit mono PCM reply, written with the stdlib ``wave`` module.

One task sends, another receives, both in one nursery: the reply (and the transcriptions, which
the seed gets from an ``on_transcription`` callback) streams in while the microphone-like input is
still being sent, as it would in a voice app. The sender paces chunks with ``trio.sleep_until`` on
absolute times, so a slow iteration does not make the stream drift behind real time.
"""

from __future__ import annotations

import array
import math
import wave
from pathlib import Path

import trio
from _target import live_target, parser

import livemesh
from livemesh.wire import helpers

INPUT_RATE = 16_000
OUTPUT_RATE = 24_000
CHUNK_S = 0.04  # 40 ms of audio per realtimeInput message


def synthesize_speech_like(seconds: float = 1.5, rate: int = INPUT_RATE) -> bytes:
    """A voiced buzz (140 Hz with falling harmonics) in four-per-second syllables, with 150 ms of
    silence either side: loud enough for a voice detector, and clearly not a pure tone."""
    lead = int(0.15 * rate)
    body = int((seconds - 0.3) * rate)
    samples = array.array("h", bytes(2 * lead))
    for i in range(body):
        t = i / rate
        syllable = 0.25 + 0.75 * abs(math.sin(math.pi * 4 * t))
        voice = sum(math.sin(2 * math.pi * 140 * k * t) / k for k in range(1, 6))
        samples.append(int(5000 * syllable * voice))
    samples.extend(array.array("h", bytes(2 * lead)))
    return samples.tobytes()


def read_wav(path: Path) -> tuple[bytes, int]:
    """16-bit PCM frames (first channel only) and the sample rate."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise SystemExit(f"{path}: need 16-bit PCM, got {8 * wav.getsampwidth()}-bit")
        frames = wav.readframes(wav.getnframes())
        channels, rate = wav.getnchannels(), wav.getframerate()
    if channels > 1:
        frames = array.array("h", frames)[::channels].tobytes()
    return frames, rate


def write_wav(path: Path, pcm: bytes, rate: int = OUTPUT_RATE) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)


async def send_audio(session: livemesh.Session, pcm: bytes, rate: int, speed: float) -> None:
    """Send ``pcm`` in 40 ms chunks at ``speed`` x real time (``inf``: as fast as possible)."""
    step = 2 * int(rate * CHUNK_S)
    start = trio.current_time()
    for n, offset in enumerate(range(0, len(pcm), step)):
        if speed != math.inf:
            await trio.sleep_until(start + n * CHUNK_S / speed)
        await session.send_realtime_input(audio=pcm[offset : offset + step], audio_rate=rate)
    await session.send_realtime_input(audio_stream_end=True)  # "the user stopped talking"
    print(f"sent {len(pcm) / 2 / rate:.2f} s of audio in {trio.current_time() - start:.2f} s")


async def receive_reply(session: livemesh.Session) -> bytes:
    """Collect the reply's audio until ``turnComplete``, printing transcriptions as they come."""
    audio: list[bytes] = []
    speaking = False
    async for message in session:
        audio.extend(helpers.extract_audio(message))
        if heard := helpers.input_transcript(message):
            print(f"user (transcribed): {heard}")
        if spoken := helpers.output_transcript(message):
            print(spoken if speaking else f"model (transcript): {spoken}", end="", flush=True)
            speaking = True
        if message.server_content is not None and message.server_content.turn_complete:
            print()
            break
    return b"".join(audio)


async def main(input_path: Path | None, output_path: Path, speed: float, real: bool) -> None:
    if input_path is None:
        pcm, rate = synthesize_speech_like(), INPUT_RATE
        print(f"input: {len(pcm) / 2 / rate:.2f} s of synthesized speech-like audio at {rate} Hz")
    else:
        pcm, rate = read_wav(input_path)
        print(f"input: {input_path} ({len(pcm) / 2 / rate:.2f} s at {rate} Hz)")
    async with live_target(real, "audio") as target:
        print(f"model: {target.options['model']}")
        async with livemesh.open_session(
            **target.options,
            response_modalities=["AUDIO"],
            speech_config={"voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}},
            input_audio_transcription=True,
            output_audio_transcription=True,
        ) as session:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_audio, session, pcm, rate, speed)
                reply = await receive_reply(session)
    write_wav(output_path, reply)
    print(f"reply: {len(reply) / 2 / OUTPUT_RATE:.2f} s of {OUTPUT_RATE} Hz audio written to {output_path}")


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--input", type=Path, help="a 16-bit PCM WAV file (default: synthesized)")
    p.add_argument("--output", type=Path, default=Path("reply.wav"), help="where to write the reply")
    p.add_argument("--speed", type=float, default=1.0, help="time scale of the stream (2 = twice real time)")
    p.add_argument("--fast", action="store_true", help="send the audio as fast as possible")
    args = p.parse_args()
    if args.speed <= 0:
        p.error("--speed must be positive")
    trio.run(main, args.input, args.output, math.inf if args.fast else args.speed, args.real)
