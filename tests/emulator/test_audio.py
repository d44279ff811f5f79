"""Audio in (VAD, manual activity, audioStreamEnd, transcription) and AUDIO replies."""

from __future__ import annotations

import array
import math

import trio

from livemesh import wire
from livemesh.emulator import EmulatorConfig, open_emulator
from tests.emulator.helpers import Client, connect, session_of, text_setup

RATE = 16_000
CHUNK = RATE // 10  # 100 ms


def speech(ms: int, rate: int = RATE) -> bytes:
    n = rate * ms // 1000
    return array.array("h", (int(6000 * math.sin(2 * math.pi * 300 * i / rate)) for i in range(n))).tobytes()


def silence(ms: int, rate: int = RATE) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)


async def stream(c: Client, pcm: bytes, rate: int = RATE) -> int:
    step = 2 * rate // 10
    count = 0
    for start in range(0, len(pcm), step):
        await c.audio(pcm[start : start + step], rate)
        count += 1
    return count


def audio_setup(**fields: object) -> wire.Setup:
    return text_setup(
        generation_config=wire.GenerationConfig(response_modalities=["AUDIO"]),
        input_audio_transcription=wire.AudioTranscriptionConfig(),
        output_audio_transcription=wire.AudioTranscriptionConfig(),
        **fields,
    )


async def test_vad_turn_with_transcriptions_and_audio_reply() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, audio_setup()) as c:
            pcm = speech(400) + silence(600)
            chunks = await stream(c, pcm)
            seen, _ = await c.until("turn_complete")
            inputs = [
                m.server_content.input_transcription
                for m in seen
                if m.server_content and m.server_content.input_transcription
            ]
            assert len(inputs) == 1 and inputs[0].text is not None
            assert inputs[0].text.startswith("[audio 0.4")
            audio = b"".join(
                p.inline_data.data
                for m in seen
                if m.server_content and m.server_content.model_turn
                for p in m.server_content.model_turn.parts or []
                if p.inline_data
            )
            mimes = {
                p.inline_data.mime_type
                for m in seen
                if m.server_content and m.server_content.model_turn
                for p in m.server_content.model_turn.parts or []
                if p.inline_data
            }
            assert mimes == {"audio/pcm;rate=24000"}
            outputs = "".join(
                m.server_content.output_transcription.text or ""
                for m in seen
                if m.server_content and m.server_content.output_transcription
            )
            assert outputs == "You said: " + inputs[0].text
            assert len(audio) == 2 * round(len(outputs) / 15.0 * 24_000)
            stats = emu.stats(session_of(c))
            assert stats.audio_bytes == len(pcm) and stats.audio_chunks == chunks == stats.messages
            assert stats.turns == 1


async def test_silence_makes_no_turn_and_audio_stream_end_flushes() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup()) as c:
            await stream(c, silence(500))
            await stream(c, speech(300, rate=24_000), rate=24_000)
            await c.send(wire.ClientMessage(realtime_input=wire.RealtimeInput(audio_stream_end=True)))
            text, _ = await c.turn_text()
            assert text.startswith("You said: [audio 0.3")
            assert await c.ask_json("recall") == [text.removeprefix("You said: ")]
            assert emu.stats(session_of(c)).turns == 1


async def test_manual_activity_start_end() -> None:
    disabled = wire.RealtimeInputConfig(
        automatic_activity_detection=wire.AutomaticActivityDetection(disabled=True)
    )
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup(realtime_input_config=disabled)) as c:
            await stream(c, speech(200))  # outside an activity window: counted, no turn
            await c.send(
                wire.ClientMessage(realtime_input=wire.RealtimeInput(activity_start=wire.ActivityStart()))
            )
            await stream(c, silence(500))
            await c.send(
                wire.ClientMessage(realtime_input=wire.RealtimeInput(activity_end=wire.ActivityEnd()))
            )
            text, _ = await c.turn_text()
            assert text == "You said: [audio 0.50s, 16000 bytes]"
            stats = emu.stats(session_of(c))
            assert stats.turns == 1 and stats.audio_bytes == 6400 + 16000 and stats.messages == 2 + 5 + 2


async def test_barge_in_interrupts_generation() -> None:

    config = EmulatorConfig(chunks_per_reply=50, chunk_interval_s=0.02)
    with trio.fail_after(5):
        async with open_emulator(config) as emu, connect(emu, text_setup()) as c:
            await c.say("a long answer please")
            await c.until("server_content")
            await stream(c, speech(100))
            seen, _ = await c.until("turn_complete")
            contents = [m.server_content for m in seen if m.server_content]
            assert any(s.interrupted for s in contents)
            assert not any(s.generation_complete for s in contents)


async def test_explicit_vad_signal() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, connect(emu, text_setup(explicit_vad_signal=True)) as c:
            await stream(c, speech(200) + silence(600))
            seen, _ = await c.until("turn_complete")
            signals = [
                m.voice_activity_detection_signal.vad_signal_type
                for m in seen
                if m.voice_activity_detection_signal
            ]
            activity = [m.voice_activity.type for m in seen if m.voice_activity]
            assert signals == ["VAD_SIGNAL_TYPE_SOS", "VAD_SIGNAL_TYPE_EOS"]
            assert activity == ["ACTIVITY_START", "ACTIVITY_END"]


async def test_speech_start_says_not_resumable_once_and_the_turn_ends_resumable() -> None:
    """No handle while the user speaks (the VAD state lives on the connection), and the client is
    told so when speech starts, once, as during generation: a client waiting for a quiet point to
    move then keeps streaming until the utterance ends instead of holding it forever."""
    with trio.fail_after(5):
        async with (
            open_emulator() as emu,
            connect(emu, audio_setup(session_resumption=wire.SessionResumptionConfig())) as c,
        ):
            _, first = await c.until("session_resumption_update")  # after setupComplete
            assert first.session_resumption_update is not None and first.session_resumption_update.resumable
            await stream(c, speech(300))
            _, update = await c.until("session_resumption_update")
            assert update.session_resumption_update == wire.SessionResumptionUpdate(
                new_handle="", resumable=False
            )
            await stream(c, speech(300) + silence(600))
            seen, _ = await c.until("turn_complete")
            updates = [m.session_resumption_update for m in seen if m.session_resumption_update]
            assert all(not u.resumable for u in updates)  # at most the one for the model's turn
            _, after = await c.until("session_resumption_update")
            assert after.session_resumption_update is not None and after.session_resumption_update.resumable


async def test_a_ping_is_answered_after_the_messages_before_it_were_consumed() -> None:
    """The pong leaves only once everything sent before the ping was consumed (in order): a
    client that sees a handle after its pong knows that handle covers what it sent before."""
    with trio.fail_after(10):
        async with open_emulator() as emu, connect(emu, audio_setup()) as c:
            chunks = 60
            for _ in range(chunks):
                await c.audio(silence(100))
            await c.ws.ping(b"fence")
            assert emu.stats(session_of(c)).audio_chunks == chunks
