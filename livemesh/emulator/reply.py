"""A scripted answer as server messages: text chunks, or a tone with output transcription, and
plausible usage metadata (pure functions: the connection adds the timing)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import attrs
import orjson

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


def render(
    text: str, *, audio: bool, transcribe: bool, count: int, chars_per_s: float, combined: bool = False
) -> Reply:
    """``text`` in ``count`` chunks: TEXT parts, or AUDIO parts of a tone as long as the text takes
    to say, each with its ``outputTranscription`` piece if ``transcribe``: in a message of its own
    after the audio, or in the same ``serverContent`` with ``combined`` (current models)."""
    pieces = model.split_chunks(text, count)
    steps: list[list[wire.ServerMessage | bytes]] = []
    if audio:
        if combined:
            return _combined(text, pieces, transcribe, chars_per_s)
        frames, nbytes = _audio_frames(len(text), chars_per_s, len(pieces))
        for index, frame in enumerate(frames):
            step: list[wire.ServerMessage | bytes] = [frame]
            if transcribe and index < len(pieces):
                step.append(_content(output_transcription=wire.Transcription(text=pieces[index])))
            steps.append(step)
        return Reply(steps, _audio_tokens(nbytes), wire.Modality.AUDIO)
    for piece in pieces:
        # Written directly: the general encoder walks every field of Part (twenty of them), and a
        # text chunk is the message the emulator sends most.
        steps.append(
            [orjson.dumps({"serverContent": {"modelTurn": {"parts": [{"text": piece}], "role": "model"}}})]
        )
    return Reply(steps, model.text_tokens(text), wire.Modality.TEXT)


def _combined(text: str, pieces: list[str], transcribe: bool, chars_per_s: float) -> Reply:
    chunks = _audio_chunks(len(text), chars_per_s, len(pieces))
    steps: list[list[wire.ServerMessage | bytes]] = []
    for index, chunk in enumerate(chunks):
        part = wire.Part(inline_data=wire.Blob(data=chunk, mime_type=AUDIO_MIME_OUT))
        heard = wire.Transcription(text=pieces[index]) if transcribe and index < len(pieces) else None
        steps.append(
            [_content(model_turn=wire.Content(parts=[part], role="model"), output_transcription=heard)]
        )
    return Reply(steps, _audio_tokens(sum(map(len, chunks))), wire.Modality.AUDIO)


def _audio_tokens(nbytes: int) -> int:
    seconds = nbytes / 2 / model.OUTPUT_RATE
    return max(1, round(seconds * model.AUDIO_TOKENS_PER_S))


@lru_cache(maxsize=32)
def _audio_chunks(chars: int, chars_per_s: float, count: int) -> tuple[bytes, ...]:
    """A tone as long as ``chars`` characters take to say, in ``count`` chunks."""
    return tuple(model.split_bytes(model.tone(chars / chars_per_s), count))


@lru_cache(maxsize=32)
def _audio_frames(chars: int, chars_per_s: float, count: int) -> tuple[tuple[bytes, ...], int]:
    """The encoded ``modelTurn`` messages of :func:`_audio_chunks`, and the tone's size in bytes.

    Cached: the tone depends only on the text's length, and base64-encoding it was most of a
    spoken turn's CPU (about 100 us a turn; a few distinct lengths cover a whole benchmark)."""
    frames = []
    chunks = _audio_chunks(chars, chars_per_s, count)
    for chunk in chunks:
        part = wire.Part(inline_data=wire.Blob(data=chunk, mime_type=AUDIO_MIME_OUT))
        frames.append(wire.encode_server(_content(model_turn=wire.Content(parts=[part], role="model"))))
    return tuple(frames), sum(map(len, chunks))


def streamed_call(call_id: str, name: str, args: dict[str, Any]) -> list[wire.FunctionCall]:
    """A function call as a stream of pieces: one ``FunctionCall`` per argument leaf (a string in
    two pieces, the first with ``PartialArg.will_continue``), each with ``will_continue=True``,
    then a last one with ``will_continue=False`` and no arguments. Empty objects and lists, which
    no JSON path leaf can carry, are left out; the client assembles ``args`` from the pieces."""
    pieces: list[wire.FunctionCall] = []
    for path, value in _leaves(args, "$"):
        for arg in _partial_args(path, value):
            pieces.append(wire.FunctionCall(name=name, id=call_id, partial_args=[arg], will_continue=True))
    pieces.append(wire.FunctionCall(name=name, id=call_id, will_continue=False))
    return pieces


def _leaves(value: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _leaves(item, f"{path}[{index}]")]
    return [(path, value)]


def _partial_args(path: str, value: Any) -> list[wire.PartialArg]:
    if isinstance(value, str):
        half = len(value) // 2
        return [
            wire.PartialArg(json_path=path, string_value=value[:half], will_continue=True),
            wire.PartialArg(json_path=path, string_value=value[half:]),
        ]
    if isinstance(value, bool):
        return [wire.PartialArg(json_path=path, bool_value=value)]
    if isinstance(value, int | float):
        return [wire.PartialArg(json_path=path, number_value=float(value))]
    return [wire.PartialArg(json_path=path, null_value=wire.NullValue("NULL_VALUE"))]


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
