"""A scripted answer as server messages: text chunks, or a tone with output transcription, and
plausible usage metadata (pure functions: the connection adds the timing)."""

from __future__ import annotations

from functools import lru_cache

import attrs

from livemesh import wire
from livemesh.emulator import model
from livemesh.emulator.context import Context

AUDIO_MIME_OUT = "audio/pcm;rate=24000"


@attrs.frozen
class Reply:
    """``steps``: the messages of each chunk, sent ``chunk_interval_s`` apart (``bytes``: a
    message encoded already)."""

    steps: list[list[wire.ServerMessage | bytes]]
    response_tokens: int
    modality: str


def _content(**fields: object) -> wire.ServerMessage:
    return wire.ServerMessage(server_content=wire.ServerContent(**fields))  # type: ignore[arg-type]


def render(text: str, *, audio: bool, transcribe: bool, count: int, chars_per_s: float) -> Reply:
    """``text`` in ``count`` chunks: TEXT parts, or AUDIO parts of a tone as long as the text takes
    to say (each followed by its ``outputTranscription`` piece if ``transcribe``)."""
    pieces = model.split_chunks(text, count)
    steps: list[list[wire.ServerMessage | bytes]] = []
    if audio:
        frames, nbytes = _audio_frames(len(text), chars_per_s, len(pieces))
        for index, frame in enumerate(frames):
            step: list[wire.ServerMessage | bytes] = [frame]
            if transcribe and index < len(pieces):
                step.append(_content(output_transcription=wire.Transcription(text=pieces[index])))
            steps.append(step)
        seconds = nbytes / 2 / model.OUTPUT_RATE
        return Reply(steps, max(1, round(seconds * model.AUDIO_TOKENS_PER_S)), wire.Modality.AUDIO)
    for piece in pieces:
        steps.append([_content(model_turn=wire.Content(parts=[wire.Part(text=piece)], role="model"))])
    return Reply(steps, model.text_tokens(text), wire.Modality.TEXT)


@lru_cache(maxsize=32)
def _audio_frames(chars: int, chars_per_s: float, count: int) -> tuple[tuple[bytes, ...], int]:
    """The encoded ``modelTurn`` messages of a tone as long as ``chars`` characters take to say,
    in ``count`` chunks, and the tone's size in bytes.

    Cached: the tone depends only on the text's length, and base64-encoding it was most of a
    spoken turn's CPU (about 100 us a turn; a few distinct lengths cover a whole benchmark)."""
    sound = model.tone(chars / chars_per_s)
    frames = []
    for chunk in model.split_bytes(sound, count):
        part = wire.Part(inline_data=wire.Blob(data=chunk, mime_type=AUDIO_MIME_OUT))
        frames.append(wire.encode_server(_content(model_turn=wire.Content(parts=[part], role="model"))))
    return tuple(frames), len(sound)


def usage(context: Context, response_tokens: int, modality: str) -> wire.UsageMetadata:
    """Usage by modality: the context's estimated tokens, all audio received, video frames."""
    text_tokens = context.tokens()
    audio_tokens = round(context.audio_bytes / 2 / 16_000 * model.AUDIO_TOKENS_PER_S)
    video_tokens = context.video_frames * model.VIDEO_TOKENS_PER_FRAME
    prompt = text_tokens + audio_tokens + video_tokens
    details = [wire.ModalityTokenCount(modality=wire.Modality.TEXT, token_count=text_tokens)]
    if audio_tokens:
        details.append(wire.ModalityTokenCount(modality=wire.Modality.AUDIO, token_count=audio_tokens))
    if video_tokens:
        details.append(wire.ModalityTokenCount(modality="VIDEO", token_count=video_tokens))
    return wire.UsageMetadata(
        prompt_token_count=prompt,
        response_token_count=response_tokens,
        total_token_count=prompt + response_tokens,
        prompt_tokens_details=details,
        response_tokens_details=[wire.ModalityTokenCount(modality=modality, token_count=response_tokens)],
    )
