"""Turn the public ``send_*`` arguments into encoded client messages, checking them at the call.

Everything here is synchronous and raises :class:`~livemesh.errors.ConfigError` (a bad argument)
or :class:`~livemesh.errors.LocalProtocolError` (a valid argument the protocol forbids in this
session, e.g. ``activity_start`` while automatic VAD is on) *before* anything is queued, so a
caller's bug never becomes a 1007 close of a live session. Messages are encoded here too: an
unencodable value (say a set inside tool args) fails at the call, and the writer task only moves
bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from livemesh import wire
from livemesh.errors import ConfigError, EncodeError, LocalProtocolError
from livemesh.session.core.core import encode as encode_checked
from livemesh.session.core.outgoing import Outgoing
from livemesh.wire import helpers

__all__ = ["Outgoing", "build_client_content", "build_realtime_input", "build_tool_response", "encode"]


def encode(message: wire.ClientMessage, call_ids: tuple[str, ...] = ()) -> Outgoing:
    """``message`` with its bytes; a value that cannot be encoded is the caller's ConfigError."""
    try:
        return encode_checked(message, call_ids)
    except EncodeError as exc:
        raise ConfigError(f"cannot send this {message.kind}: {exc}") from None


def build_client_content(turns: Any, *, turn_complete: bool) -> Outgoing:
    content = helpers.client_content(turns, turn_complete=turn_complete)
    return encode(wire.ClientMessage(client_content=content))


def _blob(value: Any, name: str, default_mime: str) -> wire.Blob:
    if isinstance(value, wire.Blob):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return wire.Blob(data=bytes(value), mime_type=default_mime)
    if isinstance(value, Mapping):
        data = value.get("data")
        mime = value.get("mime_type", value.get("mimeType", default_mime))
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ConfigError(f"{name}['data'] must be bytes, not {type(data).__name__}")
        if not isinstance(mime, str):
            raise ConfigError(f"{name}['mime_type'] must be a str")
        return wire.Blob(data=bytes(data), mime_type=mime)
    raise ConfigError(
        f"{name} must be bytes, a Blob or {{'data': bytes, 'mime_type': str}}, not {type(value).__name__}"
    )


def build_realtime_input(
    *,
    audio: Any = None,
    video: Any = None,
    text: str | None = None,
    activity_start: bool = False,
    activity_end: bool = False,
    audio_stream_end: bool = False,
    audio_rate: int = 16000,
    manual_vad: bool,
) -> Outgoing:
    """One ``realtimeInput`` carrying exactly one of the arguments.

    ``audio`` is raw 16-bit little-endian PCM (``audio/pcm;rate=audio_rate``), a ``Blob`` or the
    seed's ``{"data": ..., "mime_type": ...}``; ``video`` an encoded frame (JPEG by default).
    ``activity_start``/``activity_end`` need automatic VAD disabled, ``audio_stream_end`` needs it
    on: the mismatch is refused here rather than silently ignored there.
    """
    for flag_name, flag in (
        ("activity_start", activity_start),
        ("activity_end", activity_end),
        ("audio_stream_end", audio_stream_end),
    ):
        if not isinstance(flag, bool):
            raise ConfigError(f"{flag_name} must be a bool, not {type(flag).__name__}")
    given = [
        name
        for name, value in (
            ("audio", audio is not None),
            ("video", video is not None),
            ("text", text is not None),
            ("activity_start", activity_start),
            ("activity_end", activity_end),
            ("audio_stream_end", audio_stream_end),
        )
        if value
    ]
    if len(given) != 1:
        raise ConfigError(
            "send_realtime_input takes exactly one of audio=, video=, text=, activity_start=True, "
            f"activity_end=True, audio_stream_end=True (got {given or 'none'})"
        )
    rt: wire.RealtimeInput
    if audio is not None:
        if isinstance(audio, bytes | bytearray | memoryview):
            rt = helpers.audio_input(bytes(audio), audio_rate)
        else:
            blob = _blob(audio, "audio", f"audio/pcm;rate={audio_rate}")
            if not (blob.mime_type or "").lower().startswith("audio/"):
                raise ConfigError(f"audio mime_type must be audio/*, not {blob.mime_type!r}")
            rt = wire.RealtimeInput(audio=blob)
    elif video is not None:
        if isinstance(video, bytes | bytearray | memoryview):
            rt = helpers.video_input(bytes(video))
        else:
            rt = wire.RealtimeInput(video=_blob(video, "video", "image/jpeg"))
    elif text is not None:
        rt = helpers.text_input(text)
    elif activity_start or activity_end:
        if not manual_vad:
            raise LocalProtocolError(
                "activity_start/activity_end need automatic VAD disabled: "
                "realtime_input_config={'automatic_activity_detection': {'disabled': True}}"
            )
        rt = (
            wire.RealtimeInput(activity_start=wire.ActivityStart())
            if activity_start
            else wire.RealtimeInput(activity_end=wire.ActivityEnd())
        )
    else:
        if manual_vad:
            raise LocalProtocolError("audio_stream_end is only used with automatic VAD (it is disabled here)")
        rt = wire.RealtimeInput(audio_stream_end=True)
    return encode(wire.ClientMessage(realtime_input=rt))


def _parts(value: Any, index: int) -> list[wire.FunctionResponsePart] | None:
    """``parts`` of a response dict: media (parts, blobs, file data or their dicts), or ``None``."""
    if value is None:
        return None
    return wire.response_parts(value, f"responses[{index}].parts")


def _response(value: Any, index: int, scheduling: str | None) -> wire.FunctionResponse:
    if isinstance(value, wire.FunctionResponse):
        response = value
    elif isinstance(value, Mapping):
        # Every FunctionResponse field in either spelling, checked at any depth (parts too): a
        # misspelt key is named with the closest field, before anything is sent.
        unknown = wire.unknown_keys(value, wire.FunctionResponse, f"responses[{index}]")
        if unknown:
            raise ConfigError("; ".join(map(str, unknown)))
        body = value.get("response", {})
        if not isinstance(body, Mapping):
            body = {"result": body}
        sched = value.get("scheduling")
        if sched is not None and not isinstance(sched, str):
            sched = getattr(sched, "value", str(sched)).upper()
        response = wire.FunctionResponse(
            id=value.get("id"),
            name=value.get("name"),
            response=dict(body),
            scheduling=sched.upper() if isinstance(sched, str) else None,
            will_continue=value.get("will_continue", value.get("willContinue")),
            parts=_parts(value.get("parts"), index),
        )
    else:
        raise ConfigError(
            f"responses[{index}] must be a FunctionResponse or {{'id', 'name', 'response'}}, "
            f"not {type(value).__name__}"
        )
    if not isinstance(response.id, str) or not response.id:
        raise ConfigError(f"responses[{index}] needs the call's id (the Gemini API requires it)")
    if scheduling is not None and response.scheduling is None:
        response = attrs.evolve(response, scheduling=scheduling)
    if response.scheduling not in (
        None,
        wire.Scheduling.SILENT,
        wire.Scheduling.WHEN_IDLE,
        wire.Scheduling.INTERRUPT,
    ):
        raise ConfigError(f"responses[{index}].scheduling must be SILENT, WHEN_IDLE or INTERRUPT")
    return response


def build_tool_response(responses: Any, *, scheduling: str | None = None) -> Outgoing:
    """A ``toolResponse`` from one response or a list (FunctionResponse objects or dicts)."""
    if isinstance(scheduling, str):
        scheduling = scheduling.upper().lstrip(":")
    items: Sequence[Any]
    if isinstance(responses, wire.FunctionResponse | Mapping):
        items = [responses]
    elif isinstance(responses, Sequence) and not isinstance(responses, str | bytes):
        items = responses
    else:
        raise ConfigError(
            f"responses must be a FunctionResponse, a dict or a list of them, not {type(responses).__name__}"
        )
    if not items:
        raise ConfigError("send_tool_response needs at least one response")
    built = [_response(value, index, scheduling) for index, value in enumerate(items)]
    ids = tuple(r.id or "" for r in built)
    if len(set(ids)) != len(ids):
        raise ConfigError("one response per call id")
    return encode(wire.ClientMessage(tool_response=wire.ToolResponse(function_responses=built)), ids)
