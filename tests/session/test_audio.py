"""The seed's audio streaming example: PCM in, VAD turns, audio out with both transcriptions."""

from __future__ import annotations

import array
import math

import trio

from livemesh.emulator.app import Emulator
from livemesh.session import open_session
from tests.session.conftest import AUDIO_MODEL, make_config


def tone(seconds: float, *, rate: int = 16000, amplitude: int = 3000) -> bytes:
    samples = array.array(
        "h", (int(amplitude * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate)))
    )
    return samples.tobytes()


def chunks(pcm: bytes, size: int = 3200) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


async def test_audio_streaming_with_transcription(emu: Emulator) -> None:
    heard: list[tuple[str, str]] = []

    def on_transcription(direction: str, transcription: object) -> None:
        heard.append((direction, getattr(transcription, "text", "") or ""))

    config = make_config(
        emu,
        model=AUDIO_MODEL,
        api_version="v1alpha",
        generation_config={
            "response_modalities": ["AUDIO"],
            "speech_config": {"voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}},
        },
        input_audio_transcription={},
        output_audio_transcription={},
        callbacks={"on_transcription": on_transcription},
    )
    speech = tone(0.5)
    silence = b"\x00\x00" * 16000  # 1 s: longer than the 500 ms end-of-speech silence
    with trio.fail_after(10):
        async with open_session(config) as session:
            for chunk in chunks(speech) + chunks(silence):
                await session.send_realtime_input(audio=chunk)
            turn = await session.receive_turn()
    assert turn.input_transcript.startswith("[audio 0.5")
    assert turn.output_transcript.startswith("You said: [audio")
    assert len(turn.audio) > 0 and len(turn.audio) % 2 == 0  # 24 kHz 16-bit PCM
    assert turn.audio_chunks >= 2
    assert ("input", turn.input_transcript) in heard
    assert any(direction == "output" for direction, _ in heard)


async def test_manual_vad_with_activity_signals(emu: Emulator) -> None:
    config = make_config(
        emu,
        model=AUDIO_MODEL,
        generation_config={"response_modalities": ["AUDIO"]},
        realtime_input_config={"automatic_activity_detection": {"disabled": True}},
        input_audio_transcription=True,
    )
    with trio.fail_after(10):
        async with open_session(config) as session:
            await session.send_realtime_input(activity_start=True)
            for chunk in chunks(tone(0.3)):
                await session.send_realtime_input(audio=chunk)
            await session.send_realtime_input(activity_end=True)
            turn = await session.receive_turn()
    assert turn.input_transcript.startswith("[audio 0.30s")
    assert turn.audio


async def test_video_frames_and_realtime_text(emu: Emulator) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 100 + b"\xff\xd9"
    with trio.fail_after(10):
        async with open_session(make_config(emu)) as session:
            await session.send_realtime_input(video=jpeg)
            await session.send_realtime_input(video={"data": jpeg, "mime_type": "image/jpeg"})
            await session.send_realtime_input(text="what do you see?")
            turn = await session.receive_turn()
            assert turn.text == "You said: what do you see?"
            await session.send_realtime_input(audio_stream_end=True)
            stats = emu.stats(session.server_session_id or "")
            assert stats.video_frames == 2
