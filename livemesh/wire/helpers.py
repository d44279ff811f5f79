"""Small sans-IO conveniences over the message classes (the ones the seed's examples use).

Readers (``extract_text``, ``extract_audio``, ``input_transcript``, ``output_transcript``) accept a
whole :class:`ServerMessage`, its :class:`ServerContent` or a bare :class:`Content` (a model turn),
so a receive loop can call them on every message without checking which kind arrived first; a
message that carries none of the wanted data gives ``""`` / ``[]``, never an error.

Builders (``client_content``, ``audio_input``, ``video_input``, ``text_input``) check their
arguments and raise :class:`~livemesh.errors.ConfigError` at the call, before anything reaches a
socket: a bad argument is the caller's bug (blame split as in h11), not a session failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import attrs
import pybase64

from livemesh.errors import ConfigError, DecodeError
from livemesh.wire import messages as m
from livemesh.wire.fields import unknown_keys

__all__ = [
    "TurnLike",
    "audio_input",
    "client_content",
    "extract_audio",
    "extract_text",
    "input_transcript",
    "is_media",
    "output_transcript",
    "response_parts",
    "split_media_chunks",
    "text_input",
    "video_input",
]

Source: TypeAlias = "m.ServerMessage | m.ServerContent | m.Content | None"
"""What the readers accept: a whole server message, its server content, or a model turn."""

TurnLike: TypeAlias = "m.Content | Mapping[str, Any]"
"""One turn for :func:`client_content`: a :class:`Content` or its JSON-like dict."""

BytesLike: TypeAlias = "bytes | bytearray | memoryview"
"""Media payloads: copied to ``bytes`` once, so a caller may reuse its buffer after the call."""

DEFAULT_INPUT_RATE = 16000
"""The Live API's native input sample rate (16-bit PCM, mono, little-endian)."""


# ----------------------------------------------------------------------------- readers


def _model_turn(source: Source) -> m.Content | None:
    if isinstance(source, m.ServerMessage):
        source = source.server_content
    if isinstance(source, m.ServerContent):
        return source.model_turn
    return source


def _server_content(source: m.ServerMessage | m.ServerContent | None) -> m.ServerContent | None:
    if isinstance(source, m.ServerMessage):
        return source.server_content
    return source


def extract_text(source: Source) -> str:
    """The model turn's text parts concatenated, thought parts skipped (as the SDK's ``.text``).

    Thoughts (``thought: true``, sent when ``includeThoughts`` is on) are the model's reasoning,
    not its answer, so they are left out; read ``model_turn.parts`` directly to see them.
    """
    turn = _model_turn(source)
    if turn is None or not turn.parts:
        return ""
    return "".join(part.text for part in turn.parts if part.text is not None and not part.thought)


def _is_audio(mime_type: str | None) -> bool:
    return mime_type is not None and mime_type[:6].lower() == "audio/"


def extract_audio(source: Source) -> list[bytes]:
    """The model turn's audio chunks in order (``inlineData`` parts with an ``audio/*`` MIME type).

    Chunks are returned separately rather than joined so a player can queue them without a copy;
    ``b"".join(...)`` them if one buffer is wanted. Output audio is 24 kHz 16-bit PCM mono.
    """
    turn = _model_turn(source)
    if turn is None or not turn.parts:
        return []
    return [
        part.inline_data.data
        for part in turn.parts
        if part.inline_data is not None and _is_audio(part.inline_data.mime_type)
    ]


def input_transcript(source: m.ServerMessage | m.ServerContent | None) -> str:
    """The text of the user's speech transcription in this message (``""`` if there is none).

    Transcriptions arrive in small increments independent of the model turn; concatenate them.
    """
    content = _server_content(source)
    if content is None or content.input_transcription is None:
        return ""
    return content.input_transcription.text or ""


def output_transcript(source: m.ServerMessage | m.ServerContent | None) -> str:
    """The text of the model's speech transcription in this message (``""`` if there is none)."""
    content = _server_content(source)
    if content is None or content.output_transcription is None:
        return ""
    return content.output_transcription.text or ""


# ----------------------------------------------------------------------------- builders


def _to_wire_json(value: Any) -> Any:
    # Turn dicts are Python-side values: inline data may be raw bytes and parts may be Part
    # objects, which the wire converter (it reads JSON, where bytes are base64) would refuse.
    # JSON values cannot hold bytes, so converting every bytes value is safe even inside
    # free-form function args.
    from livemesh.wire.codec import converter

    if attrs.has(type(value)):
        return converter.unstructure(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return pybase64.b64encode_as_string(bytes(value))
    if isinstance(value, Mapping):
        return {key: _to_wire_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_wire_json(item) for item in value]
    return value


def _to_content(turn: object, index: int) -> m.Content:
    if isinstance(turn, m.Content):
        return turn
    if isinstance(turn, str):
        return m.Content(parts=[m.Part(text=turn)], role="user")
    if isinstance(turn, Mapping):
        # Local import: codec imports messages, and helpers must stay importable from wire/__init__.
        from livemesh.wire.codec import converter

        unknown = unknown_keys(turn, m.Content)
        if unknown:
            raise ConfigError(f"turn {index}: " + "; ".join(map(str, unknown)))
        try:
            content = converter.structure(_to_wire_json(turn), m.Content)
        except DecodeError as exc:
            raise ConfigError(f"turn {index} is not a valid Content: {exc.reason}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"turn {index} is not a valid Content: {exc}") from None
        if not isinstance(content, m.Content):  # pragma: no cover - the converter's contract
            raise ConfigError(f"turn {index} is not a valid Content")
        return content
    raise ConfigError(
        f"turn {index} must be a str, a Content or a dict like "
        f"{{'role': 'user', 'parts': [{{'text': ...}}]}}, not {type(turn).__name__}"
    )


def client_content(
    turns: str | TurnLike | Sequence[str | TurnLike] | None,
    *,
    turn_complete: bool = True,
) -> m.ClientContent:
    """A ``clientContent`` from a string, one turn, or a list of turns (the seed's two forms).

    ``"Hi"`` becomes one user turn with one text part (``""`` none); dicts use the API's shape, in camelCase
    or snake_case (``{"role": "user", "parts": [{"text": "Hi"}]}``), and may carry raw bytes for
    ``inline_data.data``. ``turns=None`` or ``[]`` sends no content, only ``turnComplete``.
    ``turn_complete=False`` lets several messages build one turn before the model answers.
    """
    if not isinstance(turn_complete, bool):
        raise ConfigError(f"turn_complete must be a bool, not {type(turn_complete).__name__}")
    if turns is None:
        return m.ClientContent(turn_complete=turn_complete)
    if isinstance(turns, str) and not turns:
        # An empty text part is an invalid argument to the API; send no turn (as the SDK does).
        return m.ClientContent(turns=[], turn_complete=turn_complete)
    items: Sequence[object]
    if isinstance(turns, str | m.Content | Mapping):
        items = [turns]
    elif isinstance(turns, Sequence):
        items = turns
    else:
        raise ConfigError(
            f"turns must be a str, a Content, a dict or a list of them, not {type(turns).__name__}"
        )
    return m.ClientContent(
        turns=[_to_content(turn, index) for index, turn in enumerate(items)],
        turn_complete=turn_complete,
    )


def _check_bytes(name: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise ConfigError(f"{name} must be bytes, not {type(value).__name__}")


def audio_input(pcm: BytesLike, rate: int = DEFAULT_INPUT_RATE) -> m.RealtimeInput:
    """A ``realtimeInput.audio`` chunk of 16-bit little-endian mono PCM at ``rate`` Hz.

    The MIME type is ``audio/pcm;rate=N``, which is how the API learns the sample rate; 16 kHz
    is native and other rates are resampled by the service. An odd byte count cannot be 16-bit
    PCM and is refused here rather than producing noise on the other side.
    """
    data = _check_bytes("pcm", pcm)
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ConfigError(f"rate must be a positive int (Hz), not {rate!r}")
    if len(data) % 2:
        raise ConfigError(f"16-bit PCM needs an even number of bytes, got {len(data)}")
    return m.RealtimeInput(audio=m.Blob(data=data, mime_type=f"audio/pcm;rate={rate}"))


def video_input(frame: BytesLike, mime_type: str = "image/jpeg") -> m.RealtimeInput:
    """A ``realtimeInput.video`` frame: one encoded image (JPEG by default; about 1 FPS suits the API)."""
    data = _check_bytes("frame", frame)
    if not isinstance(mime_type, str) or not mime_type.lower().startswith(("image/", "video/")):
        raise ConfigError(f"mime_type must be an image/* or video/* type, not {mime_type!r}")
    return m.RealtimeInput(video=m.Blob(data=data, mime_type=mime_type))


def text_input(text: str) -> m.RealtimeInput:
    """A ``realtimeInput.text`` message (the way 3.x Live models want text, per the API notes)."""
    if not isinstance(text, str):
        raise ConfigError(f"text must be a str, not {type(text).__name__}")
    return m.RealtimeInput(text=text)


def split_media_chunks(rt: m.RealtimeInput) -> list[m.RealtimeInput]:
    """The same input without the deprecated ``mediaChunks``: one ``audio`` or ``video`` message
    per chunk, in order, after what else ``rt`` carried.

    Current models close the connection with 1007 on ``mediaChunks`` (aicc2025/sip-to-ai#5 and
    livekit/agents-js#1186 on GitHub), and every model takes ``realtimeInput.audio`` and
    ``realtimeInput.video``, so code written for the older field keeps working unchanged.

    Args:
        rt: A realtime input, maybe carrying ``media_chunks``.

    Returns:
        ``[rt]`` when it has no ``media_chunks``; else the input without them (if anything is
        left), then one message per chunk.

    Raises:
        ConfigError: A chunk is neither audio (``audio/*``) nor an image or video frame.
    """
    if rt.media_chunks is None:
        return [rt]
    out: list[m.RealtimeInput] = []
    rest = attrs.evolve(rt, media_chunks=None)
    if rest != m.RealtimeInput():
        out.append(rest)
    for index, blob in enumerate(rt.media_chunks):
        mime = (blob.mime_type or "").lower()
        if _is_audio(mime):
            out.append(m.RealtimeInput(audio=blob))
        elif mime.startswith(("image/", "video/")):
            out.append(m.RealtimeInput(video=blob))
        else:
            raise ConfigError(
                f"media_chunks[{index}] has MIME type {blob.mime_type!r}: send audio/* as audio=, "
                "image/* or video/* as video="
            )
    return out


_MEDIA = (m.FunctionResponsePart, m.Blob, m.FileData)


def is_media(value: object) -> bool:
    """Whether a tool's return value is media for ``FunctionResponse.parts``.

    Args:
        value: What a tool returned.

    Returns:
        True for a :class:`FunctionResponsePart`, :class:`Blob` or :class:`FileData`, or a
        non-empty list or tuple of only these.
    """
    if isinstance(value, _MEDIA):
        return True
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, _MEDIA) for v in value)


def response_parts(value: object, where: str = "parts") -> list[m.FunctionResponsePart]:
    """``FunctionResponse.parts`` (media a tool answers with: an image, audio, a file) from what a
    caller has at hand.

    Args:
        value: A :class:`FunctionResponsePart`, a :class:`Blob` (inline bytes), a
            :class:`FileData` (a file URI), a dict in ``FunctionResponsePart``'s shape (camelCase
            or snake_case; ``inline_data.data`` may be raw bytes), or a list of these.
        where: How error messages name ``value``.

    Returns:
        One part per item, in order.

    Raises:
        ConfigError: An item of another type, a dict key that names no field (with the closest
            field name), or a dict that is not a valid part.
    """
    from livemesh.wire.codec import converter

    items = value if isinstance(value, list | tuple) else [value]
    parts: list[m.FunctionResponsePart] = []
    for index, item in enumerate(items):
        name = f"{where}[{index}]"
        if isinstance(item, m.FunctionResponsePart):
            parts.append(item)
        elif isinstance(item, m.Blob):
            parts.append(m.FunctionResponsePart(inline_data=item))
        elif isinstance(item, m.FileData):
            parts.append(m.FunctionResponsePart(file_data=item))
        elif isinstance(item, Mapping):
            unknown = unknown_keys(item, m.FunctionResponsePart, name)
            if unknown:
                raise ConfigError("; ".join(map(str, unknown)))
            try:
                part = converter.structure(_to_wire_json(item), m.FunctionResponsePart)
            except DecodeError as exc:
                raise ConfigError(f"{name} is not a valid FunctionResponsePart: {exc.reason}") from None
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{name} is not a valid FunctionResponsePart: {exc}") from None
            parts.append(part)
        else:
            raise ConfigError(
                f"{name} must be a FunctionResponsePart, a Blob, a FileData or a dict, "
                f"not {type(item).__name__}"
            )
    return parts
